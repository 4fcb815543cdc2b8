//! HPROF output over 4 GiB: a synthetic graph of 17,500 objects of
//! 255,992 bytes (4.48 GB of objects, sharing one contents buffer so the
//! test needs little memory) plus one object with 80,000 pointer words is
//! converted into a sink that parses the record stream as it arrives and
//! keeps nothing: every record length must tile the stream exactly (a
//! wrapped `u4` would break the tiling), every segment must be non-empty
//! and at most 1 MiB unless it holds a single large sub-record, and the
//! file must end with HEAP DUMP END. Runs in CI: it takes seconds.

use std::io::{self, Write};

use heapdump_convert::hprof::{self, Plan, Representation};
use heapdump_reader::{Dump, DumpInfo, HeapGraph, Object, PointerOffsets, Root, RootKind};
use heapdump_symbols::RootNamer;

const OBJECTS: u64 = 17_500;
const OBJECT_SIZE: u64 = 255_992;
const BIG_WORDS: u64 = 80_000;

/// Parses HPROF as it is written.
#[derive(Default)]
struct RecordChecker {
    header: Vec<u8>,
    /// Bytes of the current record header read so far.
    record_header: Vec<u8>,
    /// Body bytes left in the current record.
    body_left: u64,
    total: u64,
    records: u64,
    segments: u64,
    largest_segment: u64,
    big_segments: u64,
    tags: Vec<u8>,
    ended: bool,
}

impl Write for RecordChecker {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let written = buf.len();
        self.total += written as u64;
        while !buf.is_empty() {
            if self.header.len() < 31 {
                let take = (31 - self.header.len()).min(buf.len());
                self.header.extend_from_slice(&buf[..take]);
                buf = &buf[take..];
                continue;
            }
            if self.body_left > 0 {
                let take = (self.body_left as usize).min(buf.len());
                self.body_left -= take as u64;
                buf = &buf[take..];
                continue;
            }
            let take = (9 - self.record_header.len()).min(buf.len());
            self.record_header.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.record_header.len() == 9 {
                assert!(!self.ended, "a record after HEAP DUMP END");
                let tag = self.record_header[0];
                let len = u32::from_be_bytes(self.record_header[5..9].try_into().unwrap());
                self.records += 1;
                if self.tags.last() != Some(&tag) {
                    self.tags.push(tag);
                }
                match tag {
                    0x1C => {
                        assert!(len > 0, "empty segment");
                        self.segments += 1;
                        self.largest_segment = self.largest_segment.max(u64::from(len));
                        if len > 1 << 20 {
                            // Only the big object's OBJECT ARRAY DUMP.
                            let elements = (BIG_WORDS * 8 - 8) / 4;
                            assert_eq!(u64::from(len), 1 + 8 + 4 + 4 + 8 + 8 * elements);
                            self.big_segments += 1;
                        }
                    }
                    0x2C => {
                        assert_eq!(len, 0);
                        self.ended = true;
                    }
                    _ => {}
                }
                self.body_left = u64::from(len);
                self.record_header.clear();
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn info() -> DumpInfo {
    DumpInfo {
        format: "synthetic",
        format_version: "1".to_owned(),
        pointer_size: 8,
        arch: "x86_64".to_owned(),
        os: "linux".to_owned(),
        pid: 1,
        writer: "hprof_large test".to_owned(),
        sample_rate: 1,
        ..DumpInfo::default()
    }
}

#[test]
fn hprof_over_4_gib_is_well_formed() {
    let base = 0x10_0000_0000u64;
    let stride = OBJECT_SIZE.div_ceil(4096) * 4096;
    // Every small object shares the first OBJECT_SIZE bytes of `data` (and
    // one pointer list); the big one's contents follow.
    let big_address = base + OBJECTS * stride;
    let mut data = vec![0x11u8; OBJECT_SIZE as usize];
    data.extend((0..BIG_WORDS).flat_map(|word| (base + (word % OBJECTS) * stride).to_le_bytes()));
    let no_pointers = PointerOffsets::encode([]);
    let all_words = PointerOffsets::encode((0..BIG_WORDS).map(|word| word * 8));
    let mut dump = Dump::new(info());
    dump.data = &data;
    let none = dump.push_pointer_list(PointerOffsets::from_field_list(&no_pointers));
    for index in 0..OBJECTS {
        let mut object = Object::new(base + index * stride, OBJECT_SIZE, None, 0);
        object.set_pointer_list(none);
        dump.objects.push(object);
    }
    // One object whose every word points at one of the others: more
    // pointer words than a class can declare fields, so an Object[].
    let mut big = Object::new(big_address, BIG_WORDS * 8, None, OBJECT_SIZE);
    big.set_pointer_list(dump.push_pointer_list(PointerOffsets::from_field_list(&all_words)));
    dump.objects.push(big);
    // A root holding every object.
    let mut root = Root::new(
        RootKind::Other {
            description: "synthetic".to_owned(),
        },
        0x1000,
        &[],
    );
    root.values = dump.objects.iter().map(|object| object.address).collect();
    dump.roots.push(root);

    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let plan = Plan::new(
        &graph,
        &RootNamer::without_binary(),
        &hprof::Options::default(),
    );
    assert_eq!(plan.objects(), OBJECTS + 1);
    let big_class = plan
        .class_of(graph.object_at(big_address).unwrap())
        .unwrap();
    assert_eq!(
        big_class.representation,
        Representation::ObjectArray {
            elements: (BIG_WORDS * 8 - 8) / 4,
            positional: true,
        }
    );
    let mut checker = RecordChecker::default();
    let mut calls = 0u64;
    let report = plan
        .write(&mut checker, &mut |_, _| calls += 1)
        .expect("write");
    assert!(checker.ended, "HEAP DUMP END");
    assert_eq!(checker.body_left, 0);
    assert!(checker.record_header.is_empty());
    assert_eq!(checker.total, report.file_bytes);
    assert!(
        report.file_bytes > 4 << 30,
        "the file is over 4 GiB: {}",
        report.file_bytes
    );
    assert_eq!(report.bytes, OBJECTS * OBJECT_SIZE + BIG_WORDS * 8);
    assert_eq!(checker.big_segments, 1);
    assert!(checker.largest_segment < 4 << 30);
    assert_eq!(report.segments, checker.segments);
    // Strings, classes and traces first, then only segments, then the end.
    assert_eq!(checker.tags, vec![0x01, 0x02, 0x05, 0x1C, 0x2C]);
    assert!(calls > 100, "progress is reported as objects are written");
    eprintln!(
        "{} bytes of HPROF in {} records, {} segments (largest {} bytes)",
        report.file_bytes, checker.records, checker.segments, checker.largest_segment
    );
}
