//! Writes the test fixtures, and the committed Go heap dumps
//! (`samples/go/dumps/*.godump`), as seed inputs for the `read_dump` fuzz
//! target:
//!
//! ```text
//! cargo run -p heapdump-reader --example fuzz_seeds -- fuzz/corpus/read_dump
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus/read_dump".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let mut end_only = common::prefix();
    common::push_end(&mut end_only, 1, 0, 0);
    let seeds = [
        ("fixture.hdump", common::fixture()),
        ("be32.hdump", common::fixture_be32()),
        ("params_only.hdump", end_only),
    ];
    for (name, bytes) in seeds {
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        println!("{}", path.display());
    }
    // Go dumps: each whole, and its first 64 KiB (header, params, types,
    // itabs, the first objects) as a smaller seed for -max_len runs.
    let go_dumps = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/go/dumps");
    for name in ["go1.19.godump", "go1.26.godump"] {
        let bytes = std::fs::read(go_dumps.join(name))?;
        let path = dir.join(name);
        std::fs::write(&path, &bytes)?;
        println!("{}", path.display());
        let head = &bytes[..bytes.len().min(64 << 10)];
        let path = dir.join(format!("{name}.head"));
        std::fs::write(&path, head)?;
        println!("{}", path.display());
    }
    Ok(())
}
