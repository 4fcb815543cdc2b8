//! Helpers shared by the end-to-end tests in `tests/tests/`.
//!
//! Each test file is its own program that installs `heapdump::Tracker` as
//! its global allocator, builds a heap, writes dumps, and reads them back
//! with `heapdump-reader`.

pub mod inner_allocator;

use std::path::{Path, PathBuf};

use heapdump_reader::{DumpFile, HeapGraph};

/// A fresh path in the temporary directory, unique to this process and name.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("heapdump-test-{}-{name}.hdump", std::process::id()))
}

/// Maps, parses and builds the graph of the dump at `path`, then hands it to
/// `check`. Panics with the reader's error message if the dump is invalid.
pub fn read_graph<R>(path: &Path, check: impl FnOnce(&HeapGraph<'_>) -> R) -> R {
    let file = DumpFile::open(path).unwrap_or_else(|error| panic!("{error}"));
    let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {})
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    check(&graph)
}

/// The facts JSON the Go sample (samples/go) prints about the heap it built.
pub struct Facts(pub serde_json::Value);

impl Facts {
    /// Reads a facts file.
    pub fn read(path: &Path) -> Facts {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        Facts(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}")))
    }

    /// A number.
    pub fn u64(&self, key: &str) -> u64 {
        self.0[key]
            .as_u64()
            .unwrap_or_else(|| panic!("facts: no {key}"))
    }

    /// A string.
    pub fn str(&self, key: &str) -> &str {
        self.0[key]
            .as_str()
            .unwrap_or_else(|| panic!("facts: no {key}"))
    }

    /// A list of numbers.
    pub fn list(&self, key: &str) -> Vec<u64> {
        self.0[key]
            .as_array()
            .unwrap_or_else(|| panic!("facts: no {key}"))
            .iter()
            .map(|value| value.as_u64().unwrap())
            .collect()
    }
}
