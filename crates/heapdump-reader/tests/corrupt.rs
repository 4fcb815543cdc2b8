//! Bad input gives errors that name the offset, never a panic or a huge
//! allocation.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use heapdump_analysis::Summary;
use heapdump_format::builder::{Body, DumpBuilder, EndCounts};
use heapdump_format::tag;
use heapdump_reader::{parse, Error, ErrorKind, HeapGraph};

/// The system allocator, remembering the largest single allocation, so the
/// tests can check that no count from a file sizes an allocation.
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

/// No allocation in these tests needs more than this; a count taken from a
/// corrupt file would.
const ALLOCATION_LIMIT: usize = 64 << 20;

fn assert_no_huge_allocation() {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < ALLOCATION_LIMIT,
        "an allocation of {largest} bytes"
    );
}

fn parse_err(bytes: &[u8]) -> Error {
    match parse(bytes, &mut |_, _| {}) {
        Ok(_) => panic!("a bad dump parsed"),
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("at byte offset {}: ", err.offset)),
                "{message}"
            );
            err
        }
    }
}

/// Parses, and if that works, builds the graph and summary: none may panic.
fn exercise(bytes: &[u8]) -> bool {
    match parse(bytes, &mut |_, _| {}) {
        Ok(dump) => {
            let graph = HeapGraph::build(dump, &mut |_, _| {});
            let summary = Summary::compute(&graph, 5);
            assert_eq!(summary.object_count, graph.object_count() as u64);
            true
        }
        Err(err) => {
            assert!(err.to_string().contains("at byte offset"), "{err}");
            false
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = fixture();
    for len in 0..bytes.len() {
        let err = parse_err(&bytes[..len]);
        assert!(err.offset <= len as u64, "len {len}: {err}");
    }
    assert!(exercise(&bytes));
    let bytes = fixture_be32();
    for len in 0..bytes.len() {
        parse_err(&bytes[..len]);
    }
    assert_no_huge_allocation();
}

/// xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let original = fixture();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for _ in 0..4000 {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            let byte = match rng.below(4) {
                0 => 0xff,
                1 => 0x80,
                2 => 0,
                _ => rng.next() as u8,
            };
            bytes[at] = if byte == 0 || byte == 0xff || byte == 0x80 {
                byte
            } else {
                bytes[at] ^ byte
            };
        }
        if exercise(&bytes) {
            parsed += 1;
        }
    }
    // Some flips land in contents and still parse.
    assert!(parsed > 0);
    assert_no_huge_allocation();
}

#[test]
fn huge_counts_do_not_allocate() {
    for (tag, fields) in [
        // STACK id 1 with u64::MAX frames.
        (tag::STACK, vec![1, u64::MAX]),
        // MODULE with u64::MAX ranges.
        (tag::MODULE, vec![0, 0, 0, 0, u64::MAX]),
    ] {
        let mut bytes = prefix();
        let mut body = Body::new();
        for field in fields {
            body.uvarint(field);
        }
        body.raw(&[1; 8]);
        push_record(&mut bytes, tag, body.as_slice());
        push_end(&mut bytes, 2, 0, 0);
        let err = parse_err(&bytes);
        assert!(matches!(err.kind, ErrorKind::Truncated { .. }), "{err}");
    }
    assert_no_huge_allocation();
}

#[test]
fn record_length_past_the_end() {
    let mut bytes = prefix();
    let len_offset = bytes.len() as u64 + 1;
    let mut record = Body::new();
    record.uvarint(tag::OBJECT).uvarint(99_999).raw(&[1, 2, 3]);
    bytes.extend_from_slice(record.as_slice());
    let err = parse_err(&bytes);
    assert_eq!(err.offset, len_offset);
    assert!(matches!(
        err.kind,
        ErrorKind::LengthPastEnd { len: 99_999, .. }
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "at byte offset {len_offset}: record body of 99999 bytes runs past the end of the \
             file ({} bytes)",
            bytes.len()
        )
    );
}

#[test]
fn contents_length_past_the_record() {
    let mut bytes = prefix();
    let mut body = Body::new();
    body.uvarint(0x100).uvarint(100).uvarint(0);
    // The contents length field: the body starts 2 bytes into the record.
    let contents_offset = bytes.len() as u64 + 2 + body.as_slice().len() as u64;
    body.uvarint(100).raw(&[0; 8]);
    push_record(&mut bytes, tag::OBJECT, body.as_slice());
    push_end(&mut bytes, 2, 1, 100);
    let err = parse_err(&bytes);
    assert_eq!(err.offset, contents_offset);
    assert!(
        err.to_string()
            .ends_with("contents of 100 bytes runs past the end of the OBJECT record (13 bytes)"),
        "{err}"
    );
}

#[test]
fn bad_magic_is_an_unknown_format() {
    let mut bytes = fixture();
    bytes[0] = b'H';
    let err = parse_err(&bytes);
    assert!(matches!(err.kind, ErrorKind::UnknownFormat { .. }));
    assert!(
        err.to_string().contains("first bytes: 48 65 61 70"),
        "{err}"
    );
    assert!(err.to_string().contains("heapdump-rs"), "{err}");
}

#[test]
fn unknown_major_version_is_unsupported() {
    let mut bytes = fixture();
    bytes[12] = 2;
    set_minor_version(&mut bytes, 0);
    let err = parse_err(&bytes);
    assert_eq!(err.offset, 12);
    assert!(matches!(
        err.kind,
        ErrorKind::UnsupportedVersion { major: 2, .. }
    ));
    assert_eq!(
        err.to_string(),
        "at byte offset 12: heapdump-rs version 2.0 is not supported \
         (this reader reads major version 1)"
    );
    // A newer minor version is fine.
    let mut bytes = fixture();
    bytes[14] = 7;
    let dump = parse(&bytes, &mut |_, _| {}).unwrap();
    assert_eq!(dump.info.format_version, "1.7");
}

#[test]
fn missing_end_is_detected() {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&params()).unwrap();
    dump.object(0x100, 0, &[0; 8]).unwrap();
    let bytes = dump.into_inner_unfinished().unwrap();
    let err = parse_err(&bytes);
    assert_eq!(err.offset, bytes.len() as u64);
    assert!(matches!(err.kind, ErrorKind::MissingEnd));

    // Header only: not even PARAMS.
    let err = parse_err(&heapdump_format::header());
    assert!(matches!(err.kind, ErrorKind::MissingParams));
}

#[test]
fn end_count_mismatches_are_detected() {
    let right = EndCounts {
        record_count: 3,
        object_count: 2,
        object_bytes: 24,
    };
    let cases = [
        (
            EndCounts {
                record_count: 4,
                ..right
            },
            "END says 4 records, but the file has 3",
        ),
        (
            EndCounts {
                object_count: 3,
                ..right
            },
            "END says 3 OBJECT records, but the file has 2",
        ),
        (
            EndCounts {
                object_bytes: 25,
                ..right
            },
            "END says 25 object bytes, but the file has 24",
        ),
    ];
    for (counts, message) in cases {
        let mut dump = DumpBuilder::new(Vec::new()).unwrap();
        dump.params(&params()).unwrap();
        dump.object(0x100, 0, &[0; 8]).unwrap();
        dump.object(0x200, 0, &[0; 16]).unwrap();
        assert_eq!(dump.counts(), right);
        let bytes = dump.finish_with(counts).unwrap();
        let err = parse_err(&bytes);
        assert!(matches!(err.kind, ErrorKind::CountMismatch { .. }), "{err}");
        assert!(err.to_string().ends_with(message), "{err}");
    }
}

#[test]
fn trailing_bytes_after_end() {
    let mut bytes = fixture();
    let end = bytes.len() as u64;
    bytes.extend_from_slice(&[0, 0]);
    let err = parse_err(&bytes);
    assert_eq!(err.offset, end);
    assert!(matches!(err.kind, ErrorKind::TrailingBytes { count: 2 }));
}

#[test]
fn params_must_come_first_and_once() {
    let mut bytes = heapdump_format::header().to_vec();
    push_record(&mut bytes, 42, &[]);
    let err = parse_err(&bytes);
    assert_eq!(err.offset, 16);
    assert!(matches!(
        err.kind,
        ErrorKind::ParamsNotFirst { tag: 42, .. }
    ));

    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&params()).unwrap();
    dump.params(&params()).unwrap();
    let err = parse_err(&dump.finish().unwrap());
    assert!(matches!(
        err.kind,
        ErrorKind::DuplicateRecord { name: "PARAMS" }
    ));
}

fn one_object_dump(object: impl FnOnce(&mut DumpBuilder<Vec<u8>>)) -> Vec<u8> {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&params()).unwrap();
    object(&mut dump);
    dump.finish().unwrap()
}

#[test]
fn object_naming_a_missing_stack() {
    let bytes = one_object_dump(|dump| {
        dump.stack(1, &[0x10]).unwrap();
        dump.object(0x100, 9, &[0; 8]).unwrap();
    });
    let err = parse_err(&bytes);
    assert!(
        matches!(
            err.kind,
            ErrorKind::BadValue {
                field: "stack_id",
                value: 9,
                ..
            }
        ),
        "{err}"
    );
    // The offset is that of the stack_id field: the byte holding 9.
    assert_eq!(bytes[err.offset as usize], 9);
    assert!(err.to_string().contains("no STACK record has this id"));
}

#[test]
fn objects_may_name_stacks_written_later() {
    let bytes = one_object_dump(|dump| {
        dump.object(0x100, 3, &[0; 8]).unwrap();
        dump.stack(3, &[0x10]).unwrap();
    });
    assert!(exercise(&bytes));
}

#[test]
fn overlapping_and_duplicate_objects() {
    let bytes = one_object_dump(|dump| {
        dump.object(0x100, 0, &[0; 16]).unwrap();
        dump.object(0x108, 0, &[0; 8]).unwrap();
    });
    let err = parse_err(&bytes);
    assert!(
        matches!(
            err.kind,
            ErrorKind::OverlappingObjects {
                first: 0x100,
                first_size: 16,
                second: 0x108
            }
        ),
        "{err}"
    );

    let bytes = one_object_dump(|dump| {
        dump.object(0x200, 0, &[0; 8]).unwrap();
        dump.object(0x100, 0, &[0; 8]).unwrap();
        dump.object(0x200, 0, &[0; 8]).unwrap();
    });
    let err = parse_err(&bytes);
    assert!(
        matches!(err.kind, ErrorKind::DuplicateObject { address: 0x200 }),
        "{err}"
    );

    // Adjacent objects are fine.
    let bytes = one_object_dump(|dump| {
        dump.object(0x108, 0, &[0; 8]).unwrap();
        dump.object(0x100, 0, &[0; 8]).unwrap();
    });
    assert!(exercise(&bytes));
}

#[test]
fn contents_must_match_size() {
    let bytes = one_object_dump(|dump| {
        dump.object_with_size(0x100, 16, 0, &[0; 8]).unwrap();
    });
    let err = parse_err(&bytes);
    assert!(
        matches!(
            err.kind,
            ErrorKind::ContentsSizeMismatch {
                address: 0x100,
                size: 16,
                contents_len: 8
            }
        ),
        "{err}"
    );
}

#[test]
fn objects_may_not_wrap_the_address_space() {
    let bytes = one_object_dump(|dump| {
        dump.object(u64::MAX - 3, 0, &[0; 8]).unwrap();
    });
    let err = parse_err(&bytes);
    assert!(
        matches!(
            err.kind,
            ErrorKind::BadValue {
                field: "address",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn segment_of_an_unknown_module() {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&params()).unwrap();
    dump.root_segment(3, 0x1000, &[0; 8]).unwrap();
    let err = parse_err(&dump.finish().unwrap());
    assert!(
        matches!(
            err.kind,
            ErrorKind::BadValue {
                field: "module_id",
                value: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_params_values() {
    use heapdump_format::builder::Params;
    let bad = |params: Params<'_>| {
        let mut dump = DumpBuilder::new(Vec::new()).unwrap();
        dump.params(&params).unwrap();
        parse_err(&dump.finish().unwrap())
    };
    let err = bad(Params {
        pointer_size: 3,
        ..params()
    });
    assert_eq!(err.offset, 18, "{err}");
    assert_eq!(
        err.to_string(),
        "at byte offset 18: bad pointer_size 3: must be 4 or 8"
    );

    // contents_mode 2 and big_endian 2 need hand-built bodies.
    let mut bytes = heapdump_format::header().to_vec();
    let mut body = Body::new();
    body.uvarint(8).uvarint(2);
    push_record(&mut bytes, tag::PARAMS, body.as_slice());
    let err = parse_err(&bytes);
    assert!(
        matches!(
            err.kind,
            ErrorKind::BadValue {
                field: "big_endian",
                value: 2,
                ..
            }
        ),
        "{err}"
    );

    let mut bytes = heapdump_format::header().to_vec();
    let mut body = Body::new();
    body.uvarint(8)
        .bool(false)
        .string("x86_64")
        .string("linux")
        .uvarint(1)
        .uvarint(0)
        .string("")
        .bytes(&[])
        .string("w")
        .uvarint(2)
        .uvarint(1);
    push_record(&mut bytes, tag::PARAMS, body.as_slice());
    push_end(&mut bytes, 1, 0, 0);
    let err = parse_err(&bytes);
    assert!(
        matches!(
            err.kind,
            ErrorKind::BadValue {
                field: "contents_mode",
                value: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn uvarint_overflow_in_a_record_header() {
    let mut bytes = prefix();
    let at = bytes.len() as u64;
    bytes.extend_from_slice(&[0xff; 11]);
    let err = parse_err(&bytes);
    assert_eq!(err.offset, at);
    assert!(matches!(err.kind, ErrorKind::UvarintOverflow { .. }));
}

#[test]
fn stack_id_zero_and_duplicates() {
    let bytes = one_object_dump(|dump| dump.stack(0, &[1]).unwrap());
    assert!(matches!(
        parse_err(&bytes).kind,
        ErrorKind::BadValue {
            field: "stack_id",
            value: 0,
            ..
        }
    ));
    let bytes = one_object_dump(|dump| {
        dump.stack(5, &[1]).unwrap();
        dump.stack(5, &[2]).unwrap();
    });
    assert!(matches!(
        parse_err(&bytes).kind,
        ErrorKind::BadValue {
            field: "stack_id",
            value: 5,
            ..
        }
    ));
}

/// Objects are decoded in parallel runs of 65,536 records, after a first
/// pass over every other record. Errors must still come out as one pass in
/// file order would report them: the earliest in the file wins.
#[test]
fn the_first_error_in_the_file_wins_across_parallel_runs() {
    const OBJECTS: u64 = 150_000;
    // Every object record: tag, length, address, size 8, stack 0, 8 bytes.
    let build = |bad: &[u64], bad_stats: bool| {
        let mut bytes = prefix();
        let mut offsets = Vec::new();
        for index in 0..OBJECTS {
            let mut body = Body::new();
            let size = if bad.contains(&index) { 7 } else { 8 };
            body.uvarint(0x1000 + index * 16).uvarint(size).uvarint(0);
            let contents_offset = bytes.len() as u64 + 2 + body.as_slice().len() as u64;
            body.uvarint(8).raw(&index.to_le_bytes());
            push_record(&mut bytes, tag::OBJECT, body.as_slice());
            offsets.push(contents_offset);
        }
        let stats_offset = bytes.len() as u64 + 2;
        if bad_stats {
            // A STATS body that ends inside its first field.
            push_record(&mut bytes, tag::STATS, &[0x80]);
        }
        push_end(
            &mut bytes,
            1 + OBJECTS + u64::from(bad_stats),
            OBJECTS,
            OBJECTS * 8,
        );
        (bytes, offsets, stats_offset)
    };

    let (bytes, _, _) = build(&[], false);
    let dump = parse(&bytes, &mut |_, _| {}).unwrap();
    assert_eq!(dump.objects.len() as u64, OBJECTS);
    assert!(dump
        .objects
        .iter()
        .enumerate()
        .all(
            |(index, object)| object.address == 0x1000 + index as u64 * 16
                && dump.contents(object) == (index as u64).to_le_bytes()
        ));

    // Two bad objects in different runs, the later one in an earlier-
    // finishing position: the first in the file is reported.
    let (bytes, offsets, _) = build(&[140_000, 70_000], false);
    let err = parse_err(&bytes);
    assert_eq!(err.offset, offsets[70_000], "{err}");
    assert!(
        matches!(err.kind, ErrorKind::ContentsSizeMismatch { .. }),
        "{err}"
    );

    // A bad object before a bad STATS record: the object.
    let (bytes, offsets, _) = build(&[100_000], true);
    let err = parse_err(&bytes);
    assert_eq!(err.offset, offsets[100_000], "{err}");

    // A bad STATS record and good objects: the STATS record.
    let (bytes, _, stats_offset) = build(&[], true);
    let err = parse_err(&bytes);
    assert!(err.offset >= stats_offset, "{err}");
    assert!(matches!(err.kind, ErrorKind::Truncated { .. }), "{err}");
}

/// A file of the reader's own version: `fixture()` without what a newer
/// minor version may append.
fn own_version_dump() -> Vec<u8> {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&params()).unwrap();
    dump.module(&heapdump_format::builder::Module {
        module_id: 0,
        path: "/usr/bin/service",
        build_id: &[],
        load_bias: 0,
        ranges: &[],
    })
    .unwrap();
    dump.root_segment(0, 0x10_0000, &0x1000u64.to_le_bytes())
        .unwrap();
    dump.object(0x1000, 0, &[0; 16]).unwrap();
    dump.stats(&heapdump_format::builder::Stats::default())
        .unwrap();
    dump.finish().unwrap()
}

/// Offset of the first record with `tag` after the header.
fn record_offset(bytes: &[u8], wanted: u64) -> usize {
    let mut at = 16;
    loop {
        let (tag, tag_len) = heapdump_format::get_uvarint(&bytes[at..]).unwrap();
        let (len, len_len) = heapdump_format::get_uvarint(&bytes[at + tag_len..]).unwrap();
        if tag == wanted {
            return at;
        }
        at += tag_len + len_len + len as usize;
    }
}

#[test]
fn own_version_refuses_unknown_tags() {
    let bytes = own_version_dump();
    parse(&bytes, &mut |_, _| {}).unwrap();
    // A ROOT_SEGMENT or STATS record whose tag was damaged used to be
    // skipped as a newer record: the segment's references were lost and
    // the analyses reported its objects unreachable, with exit 0.
    for damaged in [tag::ROOT_SEGMENT, tag::STATS] {
        let mut bad = bytes.clone();
        let at = record_offset(&bad, damaged);
        bad[at] = 42;
        let err = parse_err(&bad);
        assert_eq!(err.offset, at as u64, "{err}");
        assert!(
            matches!(err.kind, ErrorKind::UnknownTag { tag: 42, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("unknown heapdump-rs record tag 42"),
            "{err}"
        );
        // The same bytes in a newer minor version are skipped, and said so.
        set_minor_version(&mut bad, heapdump_format::VERSION_MINOR + 1);
        let dump = parse(&bad, &mut |_, _| {}).unwrap();
        assert_eq!(dump.warnings.len(), 1, "{:?}", dump.warnings);
    }
}

#[test]
fn own_version_refuses_bytes_after_the_known_fields() {
    // A STATS record one byte longer, an OBJECT with a byte after its
    // contents: corrupt in version 1.0, appended fields in 1.1.
    for (record, extra) in [(tag::STATS, 9u64), (tag::OBJECT, 1)] {
        let mut bytes = prefix();
        let mut body = Body::new();
        if record == tag::STATS {
            for field in 0..10 + extra {
                body.uvarint(field);
            }
        } else {
            body.uvarint(0x1000)
                .uvarint(8)
                .uvarint(0)
                .bytes(&[0; 8])
                .raw(&[7]);
        }
        let record_start = bytes.len();
        push_record(&mut bytes, record, body.as_slice());
        let objects = u64::from(record == tag::OBJECT);
        push_end(&mut bytes, 2, objects, 8 * objects);
        let err = parse_err(&bytes);
        assert!(
            matches!(err.kind, ErrorKind::LeftoverBytes { .. }),
            "{}: {err}",
            tag::name(record)
        );
        assert!(err.offset > record_start as u64 && err.offset < bytes.len() as u64);
        assert!(
            err.to_string().contains("bytes follow the fields of a"),
            "{err}"
        );
        set_minor_version(&mut bytes, heapdump_format::VERSION_MINOR + 1);
        let dump = parse(&bytes, &mut |_, _| {}).unwrap();
        assert!(dump.warnings[0].contains("bytes of fields it does not know"));
    }
}
