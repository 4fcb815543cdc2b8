// Command goheap builds a heap of known shape, writes a Go heap dump with
// runtime/debug.WriteHeapDump, and prints the facts it built as JSON, so
// tests can check heapdump's reader against the real Go runtime.
//
//	go run . -out heap.godump > facts.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"unsafe"
)

// Entry is a value of the cache: the payload is the bulk of the heap.
type Entry struct {
	ID      int64
	Payload []byte
}

// Node is a singly linked list node.
type Node struct {
	Value int64
	Next  *Node
}

// Tree is a binary tree node.
type Tree struct {
	Left, Right *Tree
	Depth       int64
}

// CycleNode points at another CycleNode; two of them form a cycle.
type CycleNode struct {
	Peer *CycleNode
	Tag  [4]int64
}

// Big is larger than 512 bytes and has pointers: from Go 1.22 on, its heap
// copy starts with a malloc header naming its type. Held in an interface,
// it has an itab, so the dump has a type record for it.
type Big struct {
	Ptrs [100]*int64
	N    int64
}

// String makes Big a fmt.Stringer.
func (b Big) String() string { return fmt.Sprint(b.N) }

// Finalized has a finalizer.
type Finalized struct{ Data [8]int64 }

var (
	cache     map[int64]*Entry
	listHead  *Node
	treeRoot  *Tree
	cycle     *CycleNode
	shown     fmt.Stringer
	finalized *Finalized
	// labels is a small map: a single group of Go 1.24+'s Swiss tables
	// (no directory), a single bucket before.
	labels    map[string]*Node
	holderMsg = make(chan struct{})
	holderUp  = make(chan uintptr)
	// memstats is read to measure what the cache adds to the heap; a
	// global, so reading it allocates nothing.
	memstats runtime.MemStats
)

// heapAlloc collects garbage and returns the bytes of live heap objects
// (whole size-class slots, as the dump records them).
func heapAlloc() uint64 {
	runtime.GC()
	runtime.ReadMemStats(&memstats)
	return memstats.HeapAlloc
}

func buildTree(depth int64) *Tree {
	if depth == 0 {
		return nil
	}
	return &Tree{Left: buildTree(depth - 1), Right: buildTree(depth - 1), Depth: depth}
}

// holder keeps a slice alive on its own stack while blocked.
//
//go:noinline
func holder(size int) {
	held := make([]byte, size)
	for i := range held {
		held[i] = byte(i)
	}
	holderUp <- uintptr(unsafe.Pointer(&held[0]))
	<-holderMsg
	runtime.KeepAlive(held)
}

func addr[T any](p *T) uintptr { return uintptr(unsafe.Pointer(p)) }

// Facts is what the program built, printed as JSON.
type Facts struct {
	GoVersion      string    `json:"go_version"`
	CacheEntries   int       `json:"cache_entries"`
	PayloadBytes   int       `json:"payload_bytes"`
	EntryBytes     uintptr   `json:"entry_bytes"`
	CacheObjects   uint64    `json:"cache_heap_objects"`
	CacheBytes     uint64    `json:"cache_heap_bytes"`
	CacheMapBytes  uint64    `json:"cache_map_heap_bytes"`
	EntryAddrs     []uintptr `json:"entry_addrs"`
	PayloadAddrs   []uintptr `json:"payload_addrs"`
	ListLen        int       `json:"list_len"`
	ListAddrs      []uintptr `json:"list_addrs"`
	TreeDepth      int       `json:"tree_depth"`
	TreeRoot       uintptr   `json:"tree_root"`
	CycleAddrs     []uintptr `json:"cycle_addrs"`
	HeldSliceAddr  uintptr   `json:"held_slice_addr"`
	HeldSliceBytes int       `json:"held_slice_bytes"`
	HolderFunction string    `json:"holder_function"`
	Globals        []string  `json:"globals"`
	BigAddr        uintptr   `json:"big_addr"`
	BigType        string    `json:"big_type"`
	FinalizedAddr  uintptr   `json:"finalized_addr"`
	// TypeCounts is how many heap objects of each struct type the program
	// built and keeps.
	TypeCounts map[string]int `json:"type_counts"`
	DumpPath   string         `json:"dump_path"`
}

func main() {
	// Sample every allocation's site (memprof buckets and alloc samples in
	// the dump); set before anything else allocates.
	runtime.MemProfileRate = 1
	out := flag.String("out", "heap.godump", "where to write the heap dump")
	entries := flag.Int("entries", 1000, "cache entries")
	payload := flag.Int("payload", 256, "bytes per cache payload")
	listLen := flag.Int("list", 500, "linked list length")
	depth := flag.Int("depth", 8, "binary tree depth")
	heldBytes := flag.Int("held", 64<<10, "bytes of the slice a blocked goroutine holds")
	flag.Parse()

	facts := Facts{
		GoVersion: runtime.Version(), CacheEntries: *entries, PayloadBytes: *payload,
		ListLen: *listLen, TreeDepth: *depth, HeldSliceBytes: *heldBytes,
		HolderFunction: "main.holder", DumpPath: *out,
		Globals: []string{"main.cache", "main.listHead", "main.treeRoot", "main.cycle", "main.shown",
			"main.finalized", "main.labels"},
		BigType: "main.Big",
	}
	// The cache, built in two measured steps (each a full GC and a
	// memstats read, with nothing else allocating): the entries and their
	// payloads, held meanwhile by a slice allocated before the first
	// measurement, then the map that holds them. The heap growth counts
	// whole size-class slots, like the dump; the slice is garbage by the
	// time the dump is written.
	facts.EntryBytes = unsafe.Sizeof(Entry{})
	built := make([]*Entry, *entries)
	heapAlloc()
	heapAlloc()
	start := heapAlloc()
	objects0 := memstats.HeapObjects
	for i := range built {
		e := &Entry{ID: int64(i), Payload: make([]byte, *payload)}
		e.Payload[0] = byte(i)
		built[i] = e
	}
	withEntries := heapAlloc()
	cache = make(map[int64]*Entry)
	for i, e := range built {
		cache[int64(i)] = e
	}
	withMap := heapAlloc()
	facts.CacheObjects = memstats.HeapObjects - objects0
	facts.CacheBytes = withMap - start
	facts.CacheMapBytes = withMap - withEntries
	for _, e := range built {
		facts.EntryAddrs = append(facts.EntryAddrs, addr(e))
		facts.PayloadAddrs = append(facts.PayloadAddrs, uintptr(unsafe.Pointer(&e.Payload[0])))
	}
	for i := *listLen - 1; i >= 0; i-- {
		listHead = &Node{Value: int64(i), Next: listHead}
	}
	for n := listHead; n != nil; n = n.Next {
		facts.ListAddrs = append(facts.ListAddrs, addr(n))
	}
	treeRoot = buildTree(int64(*depth))
	facts.TreeRoot = addr(treeRoot)
	a, b := &CycleNode{}, &CycleNode{}
	a.Peer, b.Peer = b, a
	cycle = a
	facts.CycleAddrs = []uintptr{addr(a), addr(b)}

	one := int64(1)
	big := Big{N: 7}
	big.Ptrs[0] = &one
	shown = big // copies big to the heap: an object of type main.Big
	facts.BigAddr = uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&shown))[1])
	finalized = &Finalized{}
	runtime.SetFinalizer(finalized, func(*Finalized) {})
	facts.FinalizedAddr = addr(finalized)

	labels = map[string]*Node{"head": listHead, "second": listHead.Next, "third": listHead.Next.Next}
	facts.TypeCounts = map[string]int{
		"main.Entry": *entries, "main.Node": *listLen, "main.Tree": 1<<*depth - 1,
		"main.CycleNode": 2, "main.Big": 1, "main.Finalized": 1,
	}

	go holder(*heldBytes)
	facts.HeldSliceAddr = <-holderUp

	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goheap:", err)
		os.Exit(1)
	}
	// One full collection, and no other until the dump is written: the
	// dump's objects are then exactly what the memstats record counts.
	debug.SetGCPercent(-1)
	runtime.GC()
	debug.WriteHeapDump(f.Fd())
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "goheap:", err)
		os.Exit(1)
	}
	close(holderMsg)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(facts); err != nil {
		fmt.Fprintln(os.Stderr, "goheap:", err)
		os.Exit(1)
	}
}
