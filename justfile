# Everyday recipes. `just` is optional: each recipe is one plain command.

# Build the sample service, dump it, and summarise the dump.
demo:
    cargo run --release -q -p leaky-service -- --out target/leaky-service.hdump && cargo run --release -q -p heapdump-cli -- summary target/leaky-service.hdump

# Run every test (what CI runs).
test:
    cargo test --workspace --release

# Format and lint as CI does.
check:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --release -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q

# Writer benchmarks: allocation overhead and dump speed (see docs/PERFORMANCE.md).
bench:
    cargo bench -p heapdump --bench alloc_overhead
    cargo bench -p heapdump --bench dump_speed

# Regenerate the committed Go heap dumps (samples/go/dumps) with Go 1.19 and Go 1.26.
go-dumps:
    samples/go/regen-dumps.sh

# Summarise any dump.
summary DUMP:
    cargo run --release -q -p heapdump-cli -- summary {{DUMP}}

# Fuzz the reader (needs a nightly toolchain and cargo-fuzz).
fuzz:
    cd fuzz && cargo fuzz run read_dump
