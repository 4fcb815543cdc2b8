//! Writes the test fixtures as seed inputs for the `read_dump` fuzz target:
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
    Ok(())
}
