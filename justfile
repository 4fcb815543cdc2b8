# Everyday recipes. `just` is optional: each recipe is one plain command.

# Build the sample service, dump it at the default settings, and print its leak report (the README's quick start).
demo:
    cargo run --release -q -p leaky-service -- --out target/leaky-service.hdump && cargo run --release -q -p heapdump-cli -- leaks target/leaky-service.hdump

# Install heapdump, dumptodot and dumptohprof into ~/.cargo/bin, with bash, zsh and fish completions and the man page under ~/.local/share.
install:
    cargo install --path crates/heapdump-cli
    mkdir -p ~/.local/share/bash-completion/completions ~/.local/share/zsh/site-functions ~/.local/share/fish/vendor_completions.d ~/.local/share/man/man1
    heapdump completions bash > ~/.local/share/bash-completion/completions/heapdump
    heapdump completions zsh > ~/.local/share/zsh/site-functions/_heapdump
    heapdump completions fish > ~/.local/share/fish/vendor_completions.d/heapdump.fish
    heapdump man > ~/.local/share/man/man1/heapdump.1

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
