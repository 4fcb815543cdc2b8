//! Any bytes: parsing must return `Ok` or `Err`, never panic, hang or
//! allocate from an unchecked count; a dump that parses must also build its
//! graph, analysis, summary and waste report, and name its roots, object
//! classes, strings and fields. `parse` dispatches on the header, so this
//! covers every format (heapdump-rs, Go's `go1.7 heap dump` and Java's
//! HPROF; seed all three, see fuzz/README.md).

#![no_main]

use heapdump_reader::{parse, HeapGraph};
use heapdump_symbols::RootNamer;
use heapdump_analysis::waste::{waste, WasteOptions};
use heapdump_analysis::{analyze, Summary};
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
        let namer = RootNamer::without_binary();
        for reference in graph.root_references().iter().take(100) {
            assert!(!namer.reference_name(&graph, reference).is_empty());
        }
        let dump = graph.dump();
        for object in dump.objects.iter().take(100) {
            assert!(dump
                .class_name(&dump.object_class(object))
                .starts_with(|c: char| c != ' '));
            let _ = dump.object_text(object);
            for offset in [0, 4, 8, 16] {
                let _ = dump.field_name(object, offset);
            }
        }
        let analysis = analyze(&graph);
        let report = waste(&graph, &analysis, &WasteOptions::default());
        assert!(report.strings.rows.len() <= 20 && report.values.rows.len() <= 20);
    }
});
