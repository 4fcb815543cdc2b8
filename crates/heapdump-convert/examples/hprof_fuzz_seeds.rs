//! Writes HPROF seed inputs for the `read_dump` fuzz target (fuzz/README.md):
//! the committed Go heap dumps (`samples/go/dumps`) converted to HPROF by
//! heapdump's own converter, and, when `javac` and `java` are on the PATH,
//! a dump the JDK writes of `tests/java/LeakyCache.java` (with 20
//! sessions); each whole and its records that fit in the first 64 KiB (the
//! header, names, classes and what heap records fit: a whole file too) as
//! a smaller seed for `-max_len` runs.
//!
//! ```text
//! cargo run --release -p heapdump-convert --example hprof_fuzz_seeds -- fuzz/corpus/read_dump
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use heapdump_convert::hprof::{write_hprof, Options};
use heapdump_reader::{parse, DumpFile, HeapGraph};
use heapdump_symbols::RootNamer;

/// The first bytes of each seed, written as a seed of their own.
const HEAD: usize = 64 << 10;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn write_seed(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    for (name, bytes) in [
        (name.to_owned(), bytes),
        (format!("{name}.head"), whole_records(bytes, HEAD)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        println!("{}", path.display());
    }
    Ok(())
}

/// The longest prefix of HPROF `bytes` of at most `max` bytes that ends
/// at a record boundary: a valid file of its own.
fn whole_records(bytes: &[u8], max: usize) -> &[u8] {
    // The header: the version string, its NUL, u4 id size, u8 time.
    let Some(mut end) = bytes.iter().position(|&b| b == 0).map(|nul| nul + 13) else {
        return &[];
    };
    loop {
        // Each record: u1 tag, u4 time, u4 body length, the body.
        let length = bytes
            .get(end + 5..end + 9)
            .and_then(|field| field.try_into().ok())
            .map(u32::from_be_bytes);
        let next = match length {
            Some(length) => end + 9 + length as usize,
            None => break,
        };
        if next > max.min(bytes.len()) {
            break;
        }
        end = next;
    }
    &bytes[..end.min(bytes.len())]
}

/// A JDK-written dump of LeakyCache, or `None` without a JDK.
fn jdk_dump(work: &Path) -> Result<Option<Vec<u8>>> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/java/LeakyCache.java");
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if !runs("javac") || !runs("java") {
        eprintln!("no javac or java on the PATH: no JDK-written seed");
        return Ok(None);
    }
    std::fs::create_dir_all(work)?;
    let compiled = Command::new("javac")
        .arg("-d")
        .arg(work)
        .arg(&source)
        .status()?;
    if !compiled.success() {
        return Err("javac failed".into());
    }
    let dump = work.join("leaky-cache.hprof");
    let _ = std::fs::remove_file(&dump);
    let ran = Command::new("java")
        .arg("-cp")
        .arg(work)
        .arg("LeakyCache")
        .arg(&dump)
        .arg("20")
        .output()?;
    if !ran.status.success() {
        return Err(format!("java: {}", String::from_utf8_lossy(&ran.stderr)).into());
    }
    let bytes = std::fs::read(&dump)?;
    std::fs::remove_file(&dump)?;
    Ok(Some(bytes))
}

fn main() -> Result<()> {
    let dir = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus/read_dump".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let go_dumps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/go/dumps");
    for name in ["go1.19", "go1.26"] {
        let file = DumpFile::open(go_dumps.join(format!("{name}.godump")))?;
        let graph = HeapGraph::build(parse(file.bytes(), &mut |_, _| {})?, &mut |_, _| {});
        let mut hprof = Vec::new();
        write_hprof(
            &graph,
            &RootNamer::without_binary(),
            &Options {
                keep_unreachable: true,
                // Small segments: several of them even in the head.
                segment_bytes: 64 << 10,
            },
            &mut hprof,
            &mut |_, _| {},
        )?;
        write_seed(&dir, &format!("{name}.hprof"), &hprof)?;
    }
    let work = std::env::temp_dir().join(format!("heapdump-hprof-seeds-{}", std::process::id()));
    let jdk = jdk_dump(&work);
    let _ = std::fs::remove_dir_all(&work);
    if let Some(bytes) = jdk? {
        write_seed(&dir, "jdk17-leaky-cache.hprof", &bytes)?;
    }
    Ok(())
}
