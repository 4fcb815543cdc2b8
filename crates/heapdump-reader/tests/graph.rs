//! A hand-built dump parses to exactly the expected dump, graph and summary.

mod common;

use common::*;
use heapdump_analysis::Summary;
use heapdump_reader::{
    parse, ContentsMode, HeapGraph, ObjectId, RootId, RootKind, RootReference, StackId,
};

fn build(bytes: &[u8]) -> HeapGraph<'_> {
    let mut calls = Vec::new();
    let dump = parse(bytes, &mut |done, total| calls.push((done, total))).unwrap();
    assert_eq!(
        calls.last(),
        Some(&(bytes.len() as u64, bytes.len() as u64))
    );
    assert!(calls.windows(2).all(|pair| pair[0].0 <= pair[1].0));
    let mut last = (0, 0);
    let graph = HeapGraph::build(dump, &mut |done, total| last = (done, total));
    assert_eq!(last.0, last.1);
    graph
}

#[test]
fn fixture_parses_to_the_expected_dump() {
    let bytes = fixture();
    let graph = build(&bytes);
    let dump = graph.dump();

    let info = &dump.info;
    assert_eq!(info.format, "heapdump-rs");
    // A newer minor version than the reader's (its appended record and
    // fields are skipped, and said so).
    let (ours, newer) = (
        heapdump_format::VERSION_MINOR,
        heapdump_format::VERSION_MINOR + 1,
    );
    assert_eq!(info.format_version, format!("1.{newer}"));
    assert_eq!(
        dump.warnings,
        [format!(
            "the dump is format version 1.{newer}, newer than this reader's 1.{ours}: \
             skipped 1 records and 6 bytes of fields it does not know"
        )]
    );
    assert_eq!(info.pointer_size, 8);
    assert!(!info.big_endian);
    assert_eq!(info.arch, "x86_64");
    assert_eq!(info.os, "linux");
    assert_eq!(info.pid, 4242);
    assert_eq!(info.time_unix_ns, 1_700_000_000_123_456_789);
    assert_eq!(info.executable, "/usr/bin/service");
    assert_eq!(info.build_id, [0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(info.writer, "heapdump 0.1.0");
    assert_eq!(info.contents_mode, ContentsMode::Full);
    assert_eq!(info.sample_rate, 1);

    assert_eq!(dump.modules.len(), 1);
    let module = &dump.modules[0];
    assert_eq!(module.id, 0);
    assert_eq!(module.path, "/usr/bin/service");
    assert_eq!(module.load_bias, 0x5555_0000_0000);
    assert_eq!(module.ranges.len(), 2);
    assert_eq!(module.ranges[1].start, SEGMENT);
    assert_eq!(module.ranges[1].flags, 3);

    assert_eq!(dump.roots.len(), 2);
    assert_eq!(dump.roots[0].kind, RootKind::Segment { module_id: 0 });
    assert_eq!(dump.roots[0].address, SEGMENT);
    assert_eq!(dump.roots[0].contents, &words(&[0, B + 8, 0x9999])[..]);
    assert_eq!(
        dump.roots[1].kind,
        RootKind::ThreadStack {
            thread_id: 42,
            name: "main".into()
        }
    );
    assert_eq!(dump.roots[1].address, STACK_POINTER);

    assert_eq!(dump.stacks.len(), 2);
    let one = StackId::new(1).unwrap();
    assert_eq!(
        dump.stack(one).unwrap().pcs,
        [0x5555_0000_1111, 0x5555_0000_2222]
    );
    assert_eq!(
        dump.stack(StackId::new(2).unwrap()).unwrap().pcs,
        [0x5555_0000_3333]
    );
    assert!(dump.stack(StackId::new(3).unwrap()).is_none());

    let layout: Vec<(u64, u64, Option<u64>)> = dump
        .objects
        .iter()
        .map(|o| (o.address, o.size, o.site.map(StackId::get)))
        .collect();
    assert_eq!(
        layout,
        [
            (A, 32, Some(1)),
            (B, 16, Some(2)),
            (C, 24, None),
            (D, 12, None),
            (E, 20, None)
        ]
    );
    for object in &dump.objects {
        assert_eq!(dump.contents(object).len() as u64, object.size);
    }
    // Contents are borrowed from the file, not copied.
    let file = bytes.as_ptr_range();
    assert_eq!(dump.data.as_ptr_range(), file);
    assert!(dump
        .objects
        .iter()
        .all(|o| file.contains(&dump.contents(o).as_ptr())));

    let stats = dump.stats.unwrap();
    assert_eq!(stats.live_objects, 5);
    assert_eq!(stats.live_bytes, 104);
    assert_eq!(stats.tracker_bytes, 4096);
    assert_eq!(dump.live_bytes(), 104);
}

#[test]
fn fixture_has_exactly_the_expected_references() {
    let bytes = fixture();
    let graph = build(&bytes);
    assert_eq!(graph.object_count(), 5);

    let references = |id: u32| -> Vec<(u32, u32)> {
        graph
            .references(ObjectId(id))
            .map(|(target, offset)| (target.0, offset))
            .collect()
    };
    // A: self at 16, B at 0 (the second B at 24 deduplicated), C interior at 8.
    assert_eq!(references(0), [(0, 16), (1, 0), (2, 8)]);
    // B: one past C's end is not inside C.
    assert_eq!(references(1), []);
    // C: A at 0; one past B's end is not B; D's last byte is D.
    assert_eq!(references(2), [(0, 0), (3, 16)]);
    // D: the trailing 4 bytes are not a word.
    assert_eq!(references(3), [(1, 0)]);
    // E: words aligned in the address space, so offsets 4 and 12.
    assert_eq!(references(4), [(0, 12), (2, 4)]);
    assert_eq!(references(5), []);
    assert_eq!(graph.reference_count(), 8);

    assert_eq!(
        graph.root_references(),
        [
            RootReference {
                root: RootId(0),
                offset: 8,
                target: ObjectId(1)
            },
            RootReference {
                root: RootId(1),
                offset: 0,
                target: ObjectId(3)
            },
            RootReference {
                root: RootId(1),
                offset: 8,
                target: ObjectId(4)
            },
        ]
    );
    assert_eq!(graph.root(RootId(1)).unwrap().address, STACK_POINTER);
    assert!(graph.root(RootId(2)).is_none());

    // The CSR agrees.
    assert_eq!(graph.csr().node_count(), 5);
    assert_eq!(graph.csr().edge_count(), 8);
}

#[test]
fn object_at_finds_interior_addresses() {
    let bytes = fixture();
    let graph = build(&bytes);
    let cases = [
        (0, None),
        (A - 1, None),
        (A, Some(0)),
        (A + 31, Some(0)),
        (A + 32, None),
        (B + 15, Some(1)),
        (B + 16, None),
        (E - 1, None),
        (E, Some(4)),
        (E + 19, Some(4)),
        (E + 20, None),
        (u64::MAX, None),
    ];
    for (address, expected) in cases {
        assert_eq!(
            graph.object_at(address),
            expected.map(ObjectId),
            "address {address:#x}"
        );
    }
    let (id, object) = graph.objects().nth(2).unwrap();
    assert_eq!((id, object.address), (ObjectId(2), C));
    assert_eq!(graph.object(ObjectId(4)).unwrap().address, E);
    assert!(graph.object(ObjectId(5)).is_none());
}

#[test]
fn summary_of_fixture() {
    let bytes = fixture();
    let graph = build(&bytes);
    let summary = Summary::compute(&graph, 10);
    assert_eq!(summary.module_count, 1);
    assert_eq!(summary.roots.segments, 1);
    assert_eq!(summary.roots.segment_bytes, 24);
    assert_eq!(summary.roots.thread_stacks, 1);
    assert_eq!(summary.roots.thread_stack_bytes, 24);
    assert_eq!(summary.object_count, 5);
    assert_eq!(summary.live_bytes, 104);
    assert_eq!(summary.reference_count, 8);
    assert_eq!(summary.root_reference_count, 3);
    assert!(summary.stats_agreement.unwrap().all());
    assert_eq!(summary.site_count, 2);

    let sites: Vec<(u64, u64, u64)> = summary
        .top_sites
        .iter()
        .map(|s| (s.stack_id.get(), s.totals.objects, s.totals.bytes))
        .collect();
    assert_eq!(sites, [(1, 1, 32), (2, 1, 16)]);
    assert_eq!(
        summary.top_sites[0].pcs,
        ["0x555500001111", "0x555500002222"]
    );
    assert_eq!(summary.not_sampled.objects, 3);
    assert_eq!(summary.not_sampled.bytes, 56);

    let classes: Vec<(&str, u64, u64)> = summary
        .size_classes
        .iter()
        .map(|c| (c.label.as_str(), c.totals.objects, c.totals.bytes))
        .collect();
    assert_eq!(classes, [("1..=16", 2, 28), ("17..=32", 3, 76)]);

    let top_one = Summary::compute(&graph, 1);
    assert_eq!(top_one.top_sites.len(), 1);
    assert_eq!(top_one.site_count, 2);

    // JSON has the small metadata in readable form.
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["info"]["build_id"], "deadbeef");
    assert_eq!(json["info"]["contents_mode"], "full");
    assert_eq!(json["top_sites"][0]["stack_id"], 1);
    assert_eq!(json["top_sites"][0]["bytes"], 32);
    assert_eq!(json["size_classes"][1]["label"], "17..=32");
}

#[test]
fn stats_disagreement_is_reported() {
    let mut dump = heapdump_format::builder::DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&params()).unwrap();
    dump.object(0x100, 0, &[0; 8]).unwrap();
    dump.stats(&heapdump_format::builder::Stats {
        live_bytes: 8,
        live_objects: 2,
        ..Default::default()
    })
    .unwrap();
    let bytes = dump.finish().unwrap();
    let graph = build(&bytes);
    let agreement = Summary::compute(&graph, 10).stats_agreement.unwrap();
    assert!(!agreement.objects);
    assert!(agreement.bytes);
}

#[test]
fn big_endian_32_bit_dump() {
    let bytes = fixture_be32();
    let graph = build(&bytes);
    assert_eq!(graph.dump().info.pointer_size, 4);
    assert!(graph.dump().info.big_endian);
    let references: Vec<Vec<(ObjectId, u32)>> = (0..2)
        .map(|id| graph.references(ObjectId(id)).collect())
        .collect();
    assert_eq!(references[0], [(ObjectId(1), 0)]);
    assert_eq!(references[1], [(ObjectId(0), 4)]);
    assert_eq!(
        graph.root_references(),
        [RootReference {
            root: RootId(0),
            offset: 0,
            target: ObjectId(0)
        }]
    );
    assert!(graph.dump().stats.is_none());
    assert!(Summary::compute(&graph, 10).stats_agreement.is_none());
}

#[test]
fn an_empty_dump_is_fine() {
    let mut dump = heapdump_format::builder::DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&params()).unwrap();
    let bytes = dump.finish().unwrap();
    let graph = build(&bytes);
    assert_eq!(graph.object_count(), 0);
    assert_eq!(graph.object_at(0), None);
    assert_eq!(graph.references(ObjectId(0)).count(), 0);
    let summary = Summary::compute(&graph, 10);
    assert_eq!(summary.object_count, 0);
    assert!(summary.size_classes.is_empty());
}

#[test]
fn many_objects_in_reverse_order_are_sorted_and_linked() {
    // A linked list written backwards, big enough for several parallel tasks.
    let n = 50_000u64;
    let base = 0x10_0000u64;
    let mut dump = heapdump_format::builder::DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&params()).unwrap();
    for i in (0..n).rev() {
        let next = if i + 1 < n {
            base + (i + 1) * 32 + 8
        } else {
            0
        };
        dump.object(base + i * 32, 0, &words(&[next, i, 0]))
            .unwrap();
    }
    let bytes = dump.finish().unwrap();
    let graph = build(&bytes);
    assert_eq!(graph.object_count(), n as usize);
    assert_eq!(graph.reference_count(), n as usize - 1);
    for i in 0..n as u32 - 1 {
        let refs: Vec<_> = graph.references(ObjectId(i)).collect();
        assert_eq!(refs, [(ObjectId(i + 1), 0)]);
    }
    assert_eq!(graph.object_at(base + 32 * 7 + 23), Some(ObjectId(7)));
    assert_eq!(graph.object_at(base + 32 * 7 + 24), None);
}
