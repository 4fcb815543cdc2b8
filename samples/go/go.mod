module heapdump.invalid/goheap

go 1.19
