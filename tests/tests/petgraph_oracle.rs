//! petgraph as an oracle for our dominators and reachability, run on the
//! `HeapGraph` itself through its petgraph visit traits (no copy):
//! `petgraph::algo::dominators::simple_fast` from the virtual root
//! (`HeapNode::Root`) must give every object the immediate dominator that
//! `heapdump_analysis::analyze` (semi-NCA over our CSR) gives it, and a
//! petgraph `Dfs` and `Bfs` from the virtual root must reach exactly the
//! objects `analyze` counts as reachable.
//!
//! Dumps: the sample service run in-process with the tracker installed
//! (conservative scan, an unreachable `Rc` cycle), the committed Go 1.19 and
//! Go 1.26 dumps (exact pointers, named roots), and a synthetic dump from
//! `DumpBuilder` shaped like a real heap (the analysis benchmark's
//! generator: skewed hubs, an ownership forest, back and cross pointers).
//! All small or medium: `simple_fast` keeps a hash set of predecessors per
//! node and iterates to a fixed point, too slow for millions of objects.

use std::path::{Path, PathBuf};
use std::time::Instant;

use heapdump_analysis::{analyze, Dominator};
use heapdump_reader::{DumpFile, HeapGraph, HeapNode};
use heapdump_tests::{read_graph, temp_path};
use leaky_service::{leak_a_cycle, scrub_stack, Service};
use petgraph::algo::dominators::simple_fast;
use petgraph::visit::{Bfs, Dfs, NodeCount};

#[path = "../../crates/heapdump-analysis/benches/support/synthetic.rs"]
#[allow(dead_code)]
mod synthetic;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// Checks petgraph's dominators and searches against `analyze` on `graph`;
/// `reachable_at_least` keeps the check from passing on a trivial graph.
fn check(label: &str, graph: &HeapGraph<'_>, reachable_at_least: u64) {
    let started = Instant::now();
    let analysis = analyze(graph);
    let ours = started.elapsed();

    let started = Instant::now();
    let dominators = simple_fast(graph, HeapNode::Root);
    let theirs = started.elapsed();

    let mut mismatches = Vec::new();
    let mut dominated_by_object = 0u64;
    for (id, _) in graph.objects() {
        let expected = analysis
            .immediate_dominator(id)
            .map(|dominator| match dominator {
                Dominator::Root => HeapNode::Root,
                Dominator::Object(object) => HeapNode::Object(object),
            });
        let got = dominators.immediate_dominator(HeapNode::Object(id));
        dominated_by_object += u64::from(matches!(got, Some(HeapNode::Object(_))));
        if got != expected {
            mismatches.push((id, expected, got));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{label}: {} of {} objects have another immediate dominator in petgraph; first: {:?}",
        mismatches.len(),
        graph.object_count(),
        &mismatches[..mismatches.len().min(10)],
    );
    assert_eq!(dominators.root(), HeapNode::Root);
    assert_eq!(dominators.immediate_dominator(HeapNode::Root), None);

    let reachable = analysis.reachable_objects();
    assert!(
        reachable >= reachable_at_least,
        "{label}: only {reachable} reachable objects"
    );
    assert!(
        dominated_by_object > 0,
        "{label}: every object is dominated by the root only (a trivial test)"
    );

    // Searches: every node they reach is the root or a reachable object.
    let mut dfs = Dfs::new(graph, HeapNode::Root);
    let mut dfs_objects = 0u64;
    while let Some(node) = dfs.next(graph) {
        if let Some(id) = node.object() {
            assert!(analysis.node(id).is_some(), "{label}: DFS reached {id}");
            dfs_objects += 1;
        }
    }
    let mut bfs = Bfs::new(graph, HeapNode::Root);
    let mut bfs_objects = 0u64;
    while let Some(node) = bfs.next(graph) {
        if let Some(id) = node.object() {
            assert!(analysis.node(id).is_some(), "{label}: BFS reached {id}");
            bfs_objects += 1;
        }
    }
    assert_eq!(dfs_objects, reachable, "{label}: DFS");
    assert_eq!(bfs_objects, reachable, "{label}: BFS");
    assert_eq!(graph.node_count(), graph.object_count() + 1);

    eprintln!(
        "{label}: {} objects, {} references, {reachable} reachable, \
         {dominated_by_object} dominated by an object; analyze {ours:.1?}, simple_fast {theirs:.1?}",
        graph.object_count(),
        graph.reference_count(),
    );
}

fn go_dump(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/go/dumps")
        .join(name)
}

#[test]
fn sample_service_dump() {
    let mut service = Service::new();
    service.handle_many(2_000);
    let cycle = leak_a_cycle();
    scrub_stack();
    let path = temp_path("petgraph-oracle");
    heapdump::write_file(&path).unwrap();
    let file = DumpFile::open(&path).unwrap();
    let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {}).unwrap();
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    // The cycle's objects are in the dump; `check` compares every object's
    // dominator, reachable or not. (Whether the cycle is unreachable is not
    // asserted here: the other tests of this binary run on other threads,
    // and a stale copy of a pointer on one of their stacks, a root, can keep
    // it alive. tests/leaky_service.rs checks that in a process of its own.)
    for &negated in &cycle {
        assert!(graph.object_at(!negated as u64).is_some(), "the cycle");
    }
    check("sample service", &graph, 2_000);
    drop(graph);
    drop(file);
    std::fs::remove_file(&path).unwrap();
    drop(service);
}

#[test]
fn go_1_19_dump() {
    read_graph(&go_dump("go1.19.godump"), |graph| {
        check("go1.19", graph, 1_000);
    });
}

#[test]
fn go_1_26_dump() {
    read_graph(&go_dump("go1.26.godump"), |graph| {
        check("go1.26", graph, 1_000);
    });
}

#[test]
fn synthetic_dump() {
    let mut bytes = Vec::new();
    synthetic::write(&mut bytes, 100_000, 0x0dd5).unwrap();
    let dump = heapdump_reader::parse(&bytes, &mut |_, _| {}).unwrap();
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    check("synthetic", &graph, 100_000);
}
