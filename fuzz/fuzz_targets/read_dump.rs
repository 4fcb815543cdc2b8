//! Any bytes: parsing must return `Ok` or `Err`, never panic, hang or
//! allocate from an unchecked count; a dump that parses must also build its
//! graph and summary.

#![no_main]

use heapdump_reader::{parse, HeapGraph, Summary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(dump) = parse(data, &mut |_, _| {}) {
        let graph = HeapGraph::build(dump, &mut |_, _| {});
        let summary = Summary::compute(&graph, 10);
        assert_eq!(summary.object_count, graph.object_count() as u64);
        for (id, _) in graph.objects() {
            for (target, _) in graph.references(id) {
                assert!(graph.object(target).is_some());
            }
        }
    }
});
