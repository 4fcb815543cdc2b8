//! The planning rules on a small synthetic heap: exact totals, one sample
//! per stack and labels, runs of one class collapsed, long chains cut, and
//! a profile.proto that decodes to the same samples.

use std::io::Read;

use heapdump_format::builder::{DumpBuilder, Module, ModuleRange, Params};
use heapdump_reader::{parse, HeapGraph};
use heapdump_symbols::RootNamer;

use super::*;

const LIST: u64 = 1000;
const CHAIN: u64 = 200;

/// A thread stack holding a linked list of 1000 32-byte nodes and a chain
/// of 200 objects alternating 48 and 64 bytes; one 24-byte object nobody
/// holds.
fn heap() -> Vec<u8> {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&Params {
        executable: "/srv/app",
        ..Params::default()
    })
    .unwrap();
    dump.module(&Module {
        path: "/srv/app",
        build_id: &[0xab, 0xcd],
        ranges: &[ModuleRange {
            start: 0x4000,
            size: 0x1000,
            flags: 5,
        }],
        ..Module::default()
    })
    .unwrap();
    let mut stack = Vec::new();
    stack.extend_from_slice(&0x10000u64.to_le_bytes());
    stack.extend_from_slice(&0x50000u64.to_le_bytes());
    dump.root_thread_stack(1, "main", 0x9000, &stack).unwrap();
    dump.stack(5, &[0x4010, 0x4020]).unwrap();
    dump.stack(6, &[0x4030, 0x4020]).unwrap();
    for i in 0..LIST {
        let next = if i + 1 < LIST {
            0x10000 + (i + 1) * 32
        } else {
            0
        };
        let mut contents = vec![0u8; 32];
        contents[..8].copy_from_slice(&next.to_le_bytes());
        dump.object(0x10000 + i * 32, 5, &contents).unwrap();
    }
    for i in 0..CHAIN {
        let next = if i + 1 < CHAIN {
            0x50000 + (i + 1) * 64
        } else {
            0
        };
        let mut contents = vec![0u8; if i % 2 == 0 { 48 } else { 64 }];
        contents[..8].copy_from_slice(&next.to_le_bytes());
        dump.object(0x50000 + i * 64, 6, &contents).unwrap();
    }
    dump.object(0x90000, 0, &[0; 24]).unwrap();
    dump.finish().unwrap()
}

const BYTES: u64 = LIST * 32 + CHAIN / 2 * (48 + 64) + 24;
const OBJECTS: u64 = LIST + CHAIN + 1;

/// A decoded sample: (location ids, values).
type Decoded = (Vec<u64>, Vec<u64>);

/// The samples of a gzip-compressed profile.proto: (locations, values),
/// and the string table, decoded by hand.
fn decode(gz: &[u8]) -> (Vec<Decoded>, Vec<String>) {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut bytes)
        .unwrap();
    fn varint(bytes: &[u8], at: &mut usize) -> u64 {
        let (value, len) = heapdump_format::get_uvarint(&bytes[*at..]).unwrap();
        *at += len;
        value
    }
    /// (field, varint or bytes).
    type Field<'a> = (u64, Result<u64, &'a [u8]>);
    fn fields(bytes: &[u8]) -> Vec<Field<'_>> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            let key = varint(bytes, &mut at);
            match key & 7 {
                0 => out.push((key >> 3, Ok(varint(bytes, &mut at)))),
                2 => {
                    let len = varint(bytes, &mut at) as usize;
                    out.push((key >> 3, Err(&bytes[at..at + len])));
                    at += len;
                }
                wire => panic!("wire type {wire}"),
            }
        }
        out
    }
    fn packed(bytes: &[u8]) -> Vec<u64> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            out.push(varint(bytes, &mut at));
        }
        out
    }
    let mut samples = Vec::new();
    let mut strings = Vec::new();
    for (field, value) in fields(&bytes) {
        match (field, value) {
            (2, Err(sample)) => {
                let mut locations = Vec::new();
                let mut values = Vec::new();
                for (field, value) in fields(sample) {
                    match (field, value) {
                        (1, Err(list)) => locations = packed(list),
                        (2, Err(list)) => values = packed(list),
                        _ => {}
                    }
                }
                samples.push((locations, values));
            }
            (6, Err(text)) => strings.push(String::from_utf8(text.to_vec()).unwrap()),
            _ => {}
        }
    }
    (samples, strings)
}

#[test]
fn sites_count_every_object_once() {
    let bytes = heap();
    let dump = parse(&bytes, &mut |_, _| {}).unwrap();
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let plan = Plan::sites(&graph, &Options::default());
    let report = plan.report();
    assert_eq!((report.objects, report.bytes), (OBJECTS, BYTES));
    assert_eq!(
        (
            report.site_not_recorded_objects,
            report.site_not_recorded_bytes
        ),
        (1, 24)
    );
    // Site 5 (one class), site 6 (two classes), not recorded.
    assert_eq!(report.samples, 4, "{report:?}");
    let mut file = Vec::new();
    plan.write_pprof(&mut file).unwrap();
    let (samples, strings) = decode(&file);
    assert_eq!(samples.len(), 4);
    let objects: u64 = samples.iter().map(|(_, values)| values[0]).sum();
    let bytes: u64 = samples.iter().map(|(_, values)| values[1]).sum();
    assert_eq!((objects, bytes), (OBJECTS, BYTES));
    assert!(strings.iter().any(|s| s == SITE_NOT_RECORDED));
    assert!(strings.iter().any(|s| s == "inuse_space"));
    assert!(strings.iter().any(|s| s == "abcd"), "build-id: {strings:?}");
    // Unsymbolised: two locations per site, leaf first.
    assert!(samples.iter().any(|(locations, _)| locations.len() == 2));

    let mut folded = Vec::new();
    plan.write_collapsed(CollapsedValue::Bytes, &mut folded)
        .unwrap();
    let text = String::from_utf8(folded).unwrap();
    let total: u64 = text
        .lines()
        .map(|line| line.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, BYTES, "{text}");
    assert!(text.contains("0x4020;0x4010 32000"), "{text}");
}

#[test]
fn retention_collapses_runs_and_cuts_long_chains() {
    let bytes = heap();
    let dump = parse(&bytes, &mut |_, _| {}).unwrap();
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let analysis = heapdump_analysis::analyze(&graph);
    let options = Options { max_depth: 10 };
    let plan = Plan::retention(&graph, &analysis, &RootNamer::without_binary(), &options);
    let report = plan.report();
    assert_eq!((report.objects, report.bytes), (OBJECTS, BYTES));
    // The list is one frame: every node after the head merges into it.
    assert_eq!(report.collapsed_objects, LIST - 1, "{report:?}");
    // Two root frames, 7 classes, then the cut frame for the rest.
    assert_eq!(report.cut_objects, CHAIN - 7, "{report:?}");
    assert_eq!(
        (report.unreachable_objects, report.unreachable_bytes),
        (1, 24)
    );

    let mut folded = Vec::new();
    plan.write_collapsed(CollapsedValue::Objects, &mut folded)
        .unwrap();
    let text = String::from_utf8(folded).unwrap();
    let lines: Vec<(&str, u64)> = text
        .lines()
        .map(|line| {
            let (stack, value) = line.rsplit_once(' ').unwrap();
            (stack, value.parse().unwrap())
        })
        .collect();
    assert_eq!(lines.iter().map(|l| l.1).sum::<u64>(), OBJECTS, "{text}");
    let root = "thread 1 \"main\" stack;thread 1 \"main\" stack +0x0";
    assert!(
        lines.contains(&(&format!("{root};obj32[?]"), LIST)),
        "{text}"
    );
    assert!(
        lines.iter().any(|(stack, value)| stack
            .ends_with("(deeper dominators: chain cut at 10 frames)")
            && *value == CHAIN - 7
            && stack.split(';').count() == 10),
        "{text}"
    );
    assert!(
        text.contains("(unreachable: directly unreachable);obj24[?] 1"),
        "{text}"
    );

    let mut file = Vec::new();
    plan.write_pprof(&mut file).unwrap();
    let (samples, _) = decode(&file);
    assert_eq!(samples.len() as u64, report.samples);
    let bytes: u64 = samples.iter().map(|(_, values)| values[1]).sum();
    assert_eq!(bytes, BYTES);
    assert!(samples.iter().all(|(locations, _)| locations.len() <= 10));
}
