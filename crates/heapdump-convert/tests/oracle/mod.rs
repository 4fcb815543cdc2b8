//! The external oracles the converters are checked against: VisualVM's heap
//! library (through `tests/java/HprofCheck.java`) and Graphviz's `dot`.
//!
//! When a tool is missing the test prints a loud skip and passes, unless
//! `HEAPDUMP_REQUIRE_ORACLES=1` is set (CI), where it fails.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

#[path = "visualvm.rs"]
mod visualvm;
pub use visualvm::*;

use heapdump_analysis::Analysis;
use heapdump_convert::hprof::{Plan, Report};
use heapdump_reader::HeapGraph;

/// Checks that VisualVM's view of an HPROF file written from `graph`
/// (default options: unreachable objects left out) agrees with heapdump's
/// own numbers: histogram, total bytes, retained sizes of the biggest
/// objects (of every object, with `view.objects`), GC roots. Prints the
/// evidence.
pub fn compare(
    label: &str,
    graph: &HeapGraph<'_>,
    plan: &Plan<'_, '_>,
    report: &Report,
    analysis: &Analysis,
    view: &VisualVmView,
) {
    // Totals: VisualVM's live bytes are heapdump's reachable bytes.
    assert_eq!(
        view.bytes,
        analysis.reachable_bytes(),
        "{label}: total live bytes"
    );
    assert_eq!(view.bytes, report.bytes, "{label}: bytes written");
    assert_eq!(
        analysis.reachable_objects(),
        report.objects,
        "{label}: objects written"
    );
    assert_eq!(
        view.instances,
        report.objects + report.threads,
        "{label}: VisualVM's instances are the objects and the thread objects"
    );

    // Histogram, class by class.
    let mut expected: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for class in plan.classes() {
        expected.insert(class.name.clone(), (class.instances, class.bytes));
    }
    // Independently of the plan: group heapdump's reachable objects by the
    // plan's class names and sizes.
    let mut recount: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (id, object) in graph.objects() {
        if analysis.node(id).is_none() {
            continue;
        }
        let class = plan.class_of(id).expect("a reachable object has a class");
        assert_eq!(class.size, object.size, "{label}: class size of {id}");
        let entry = recount.entry(class.name.clone()).or_default();
        entry.0 += 1;
        entry.1 += object.size;
    }
    assert_eq!(recount, expected, "{label}: plan histogram");
    for (name, &(count, bytes)) in &expected {
        let seen = view.classes.get(name).copied();
        assert_eq!(
            seen.map(|(count, bytes, _)| (count, bytes)),
            Some((count, bytes)),
            "{label}: VisualVM histogram entry for {name:?}"
        );
    }
    for (name, &(count, bytes, _)) in &view.classes {
        if !expected.contains_key(name) {
            assert_eq!(bytes, 0, "{label}: synthetic class {name} has bytes");
            if name != "java.lang.Thread" {
                assert_eq!(count, 0, "{label}: synthetic class {name} has instances");
            }
        }
    }
    // By heapdump's own grouping (the classes of `heapdump top`).
    let classifier = heapdump_analysis::Classifier::new(graph, heapdump_analysis::Grouping::Class);
    let mut ours: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for (id, object) in graph.objects() {
        if analysis.node(id).is_some() {
            let entry = ours.entry(classifier.group_of(object)).or_default();
            entry.0 += 1;
            entry.1 += object.size;
        }
    }
    // Every object of one HPROF class is in one of heapdump's groups.
    let mut group_of_class: HashMap<String, usize> = HashMap::new();
    for (id, object) in graph.objects() {
        if let Some(class) = plan.class_of(id) {
            let group = classifier.group_of(object);
            let first = *group_of_class.entry(class.name.clone()).or_insert(group);
            assert_eq!(first, group, "{label}: class {} spans groups", class.name);
        }
    }
    let mut theirs: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for class in plan.classes() {
        let &(count, bytes, _) = view.classes.get(&class.name).unwrap();
        let group = group_of_class[&class.name];
        let entry = theirs.entry(group).or_default();
        entry.0 += count;
        entry.1 += bytes;
    }
    assert_eq!(theirs, ours, "{label}: histogram by heapdump's classes");

    // Retained sizes of the biggest objects.
    let object_ids: HashMap<u64, heapdump_reader::ObjectId> = graph
        .objects()
        .map(|(id, object)| (object.address, id))
        .collect();
    let theirs: Vec<&(u64, String, u64, u64)> = view
        .biggest
        .iter()
        .filter(|(id, ..)| object_ids.contains_key(id))
        .take(10)
        .collect();
    assert!(
        !theirs.is_empty(),
        "{label}: VisualVM lists no biggest objects"
    );
    let mut our_sizes: Vec<u64> = graph
        .objects()
        .filter_map(|(id, _)| analysis.retained_size_of(id))
        .collect();
    our_sizes.sort_unstable_by(|a, b| b.cmp(a));
    our_sizes.truncate(theirs.len());
    eprintln!(
        "{label}: the {} biggest objects by retained size:",
        theirs.len()
    );
    eprintln!(
        "  {:>18} {:>24} {:>10} {:>12} {:>12}",
        "address", "class", "shallow", "VisualVM", "heapdump"
    );
    for (id, class, shallow, retained) in &theirs {
        let object = object_ids[id];
        let ours = analysis.retained_size_of(object);
        eprintln!(
            "  {id:#18x} {class:>24} {shallow:>10} {retained:>12} {:>12}",
            ours.unwrap_or(0)
        );
        assert_eq!(
            *shallow,
            graph.object(object).unwrap().size,
            "{label}: shallow size of {id:#x}"
        );
        assert_eq!(Some(*retained), ours, "{label}: retained size of {id:#x}");
    }
    let their_sizes: Vec<u64> = theirs.iter().map(|entry| entry.3).collect();
    assert_eq!(
        their_sizes, our_sizes,
        "{label}: the 10 biggest retained sizes"
    );

    // Every object, when the checker listed them all.
    if !view.objects.is_empty() {
        let mut checked = 0u64;
        let mut differ = Vec::new();
        for (id, object) in graph.objects() {
            let Some(retained) = analysis.retained_size_of(id) else {
                assert!(!view.objects.contains_key(&object.address));
                continue;
            };
            let (_, shallow, their_retained) = view
                .objects
                .get(&object.address)
                .unwrap_or_else(|| panic!("{label}: VisualVM lacks {:#x}", object.address));
            assert_eq!(
                *shallow, object.size,
                "{label}: shallow size of {:#x}",
                object.address
            );
            if *their_retained != retained {
                differ.push((object.address, object.size, *their_retained, retained));
            }
            checked += 1;
        }
        for (address, size, theirs, ours) in differ.iter().take(30) {
            eprintln!("  differs: {address:#x} size {size}: VisualVM {theirs}, heapdump {ours}");
        }
        assert!(
            differ.is_empty(),
            "{label}: {} retained sizes differ",
            differ.len()
        );
        eprintln!("{label}: shallow and retained sizes of all {checked} objects agree");
    }

    // GC roots.
    let total: u64 = view.roots.values().sum();
    assert_eq!(total, report.gc_roots, "{label}: GC roots {:?}", view.roots);
    let sticky = view.roots.get("sticky class").copied().unwrap_or(0);
    assert_eq!(
        sticky as usize,
        view.classes.len(),
        "{label}: every class is a sticky root"
    );
    assert_eq!(
        view.roots.get("thread object").copied().unwrap_or(0),
        report.threads,
        "{label}: thread roots"
    );
    eprintln!(
        "{label}: VisualVM sees {} objects + {} threads, {} bytes (heapdump: {} reachable objects, {} bytes), {} classes, roots {:?}",
        view.instances - report.threads,
        report.threads,
        view.bytes,
        analysis.reachable_objects(),
        analysis.reachable_bytes(),
        view.classes.len(),
        view.roots
    );
}

/// Whether `dot` is installed (or a loud skip / failure).
pub fn dot() -> Option<()> {
    if runs("dot", "-V") {
        Some(())
    } else {
        missing("Graphviz's `dot` is missing")
    }
}

/// Lays `dot_source` out as SVG with `dot`; panics with dot's message on
/// failure. Returns the SVG's size.
pub fn dot_svg(dot_source: &Path) -> usize {
    let output = Command::new("dot")
        .arg("-Tsvg")
        .arg(dot_source)
        .output()
        .expect("run dot");
    assert!(
        output.status.success(),
        "dot -Tsvg {} failed:\n{}",
        dot_source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.stderr.windows(7).any(|w| w == b"Warning"),
        "dot warned: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout.len()
}

/// The top-level records of an HPROF file: (tag, body length). Checks the
/// header and that the records tile the file exactly.
pub fn hprof_records(bytes: &[u8]) -> Vec<(u8, u32)> {
    assert!(bytes.starts_with(b"JAVA PROFILE 1.0.2\0"), "header");
    let id_size = u32::from_be_bytes(bytes[19..23].try_into().unwrap());
    assert_eq!(id_size, 8, "id size");
    let mut at = 31usize;
    let mut out = Vec::new();
    while at < bytes.len() {
        assert!(at + 9 <= bytes.len(), "truncated record header at {at}");
        let len = u32::from_be_bytes(bytes[at + 5..at + 9].try_into().unwrap());
        out.push((bytes[at], len));
        at += 9 + len as usize;
    }
    assert_eq!(at, bytes.len(), "records run past the end");
    out
}

/// Checks the record order VisualVM and MAT need: no top-level record
/// between segments, no empty or oversized segment, HEAP DUMP END last.
pub fn check_record_layout(records: &[(u8, u32)], segment_limit: u32) {
    let first = records
        .iter()
        .position(|(tag, _)| *tag == 0x1C)
        .expect("a segment");
    let end = records.len() - 1;
    assert_eq!(records[end], (0x2C, 0), "HEAP DUMP END last");
    for (index, &(tag, len)) in records.iter().enumerate() {
        if index < first {
            assert!(
                matches!(tag, 0x01 | 0x02 | 0x04 | 0x05),
                "tag {tag:#x} before the heap"
            );
        } else if index < end {
            assert_eq!(tag, 0x1C, "record {index} between segments");
            assert!(len > 0, "empty segment");
            assert!(len <= segment_limit, "segment of {len} bytes");
        }
    }
}
