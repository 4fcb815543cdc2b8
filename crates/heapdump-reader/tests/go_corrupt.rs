//! Real Go heap dumps (samples/go/dumps), cut short and corrupted: every
//! failure is an `Error` with an offset inside the file, never a panic or a
//! huge allocation; what still parses builds its graph and summary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use heapdump_analysis::Summary;
use heapdump_reader::{parse, ErrorKind, HeapGraph};

/// The system allocator, remembering the largest single allocation.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// No allocation here needs more than this (the dumps are under 1 MiB); a
/// count taken from a corrupt file would.
const ALLOCATION_LIMIT: usize = 16 << 20;

fn sample(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples/go/dumps")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses `bytes`; an error must point inside the file and print with its
/// offset; a dump must build its graph and summary.
fn parse_any(bytes: &[u8]) -> bool {
    match parse(bytes, &mut |_, _| {}) {
        Ok(dump) => {
            let graph = HeapGraph::build(dump, &mut |_, _| {});
            let summary = Summary::compute(&graph, 5);
            assert_eq!(summary.object_count, graph.object_count() as u64);
            true
        }
        Err(err) => {
            assert!(err.offset <= bytes.len() as u64, "{err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("at byte offset {}: ", err.offset)),
                "{err}"
            );
            false
        }
    }
}

/// Cut points: every prefix of the first and last 2 KiB (header, params,
/// types, first objects; memstats, profile, samples, EOF) and 1,000 more
/// spread over the file.
fn cuts(len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..len.min(2048)).collect();
    cuts.extend(len.saturating_sub(2048)..len);
    cuts.extend((0..1000).map(|i| i * len / 1000));
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

fn truncations(name: &str) {
    let bytes = sample(name);
    assert!(parse_any(&bytes), "{name} parses whole");
    for cut in cuts(bytes.len()) {
        let prefix = &bytes[..cut];
        let err = match parse(prefix, &mut |_, _| {}) {
            Ok(_) => panic!("{name}: a {cut}-byte prefix parsed"),
            Err(err) => err,
        };
        assert!(err.offset <= cut as u64, "{name} cut at {cut}: {err}");
        if cut >= 17 {
            assert!(
                matches!(
                    err.kind,
                    ErrorKind::Truncated { .. }
                        | ErrorKind::LengthPastEnd { .. }
                        | ErrorKind::MissingEnd
                        | ErrorKind::MissingParams
                ),
                "{name} cut at {cut}: {err}"
            );
        }
    }
    assert!(LARGEST.load(Ordering::Relaxed) < ALLOCATION_LIMIT);
}

/// A deterministic xorshift, for corruption positions.
fn positions(len: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % len as u64) as usize
        })
        .collect()
}

fn corruptions(name: &str) {
    let bytes = sample(name);
    let mut parsed = 0;
    // Every byte of the first 2 KiB, and 1,500 random bytes elsewhere, each
    // flipped three ways; and 200 runs of 16 random bytes overwritten.
    let mut places: Vec<usize> = (0..bytes.len().min(2048)).collect();
    places.extend(positions(bytes.len(), 1500, 0x9e37_79b9_7f4a_7c15));
    for &index in &places {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[index] ^= flip;
            parsed += usize::from(parse_any(&bad));
        }
    }
    for (n, &start) in positions(bytes.len(), 200, 42).iter().enumerate() {
        let mut bad = bytes.clone();
        let end = (start + 16).min(bad.len());
        for (i, byte) in bad[start..end].iter_mut().enumerate() {
            *byte = (n * 31 + i * 7) as u8 | 0x80;
        }
        parsed += usize::from(parse_any(&bad));
    }
    assert!(LARGEST.load(Ordering::Relaxed) < ALLOCATION_LIMIT);
    // Most single flips land in object contents and still parse.
    assert!(parsed > 0);
    eprintln!("{name}: {parsed} corrupted copies still parsed");
}

#[test]
fn go1_19_truncated() {
    truncations("go1.19.godump");
}

#[test]
fn go1_26_truncated() {
    truncations("go1.26.godump");
}

#[test]
fn go1_19_corrupted() {
    corruptions("go1.19.godump");
}

#[test]
fn go1_26_corrupted() {
    corruptions("go1.26.godump");
}

#[test]
fn an_unknown_tag_names_itself_and_its_offset() {
    let mut bytes = sample("go1.26.godump");
    // Replace the final EOF (tag 0) with tag 99.
    let last = bytes.len() - 1;
    assert_eq!(bytes[last], 0);
    bytes[last] = 99;
    let err = parse(&bytes, &mut |_, _| {}).unwrap_err();
    assert_eq!(err.offset, last as u64);
    assert!(matches!(err.kind, ErrorKind::UnknownTag { tag: 99, .. }));
    assert!(err.to_string().contains("tag 99"), "{err}");
}
