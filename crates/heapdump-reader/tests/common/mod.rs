//! Hand-built dumps shared by the tests and the fuzz seed generator.
//!
//! The main fixture is a little-endian 64-bit dump whose graph is known
//! exactly (see [`fixture`]).

#![allow(dead_code)]

use heapdump_format::builder::{Body, DumpBuilder, EndCounts, Module, ModuleRange, Params, Stats};
use heapdump_format::tag;

/// Object addresses of the fixture, in address order (= ObjectId order).
pub const A: u64 = 0x1000;
pub const B: u64 = 0x2000;
pub const C: u64 = 0x3000;
pub const D: u64 = 0x4000;
/// Only 4-aligned: its first aligned word is at offset 4.
pub const E: u64 = 0x5004;

pub const SEGMENT: u64 = 0x10_0000;
pub const STACK_POINTER: u64 = 0x7fff_0000;

/// Little-endian 64-bit words.
pub fn words(values: &[u64]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

pub fn params() -> Params<'static> {
    Params {
        pointer_size: 8,
        big_endian: false,
        arch: "x86_64",
        os: "linux",
        pid: 4242,
        time_unix_ns: 1_700_000_000_123_456_789,
        executable: "/usr/bin/service",
        build_id: &[0xde, 0xad, 0xbe, 0xef],
        writer: "heapdump 0.1.0",
        contents_mode: heapdump_format::ContentsMode::Full,
        sample_rate: 1,
        short_site_frames: 0,
    }
}

/// The fixture dump. Its objects, written out of address order:
///
/// | id | address | size | site | words |
/// |---|---|---|---|---|
/// | 0 | A 0x1000 | 32 | 1 | B, C+8 (interior), A+16 (self), B again (deduped) |
/// | 1 | B 0x2000 | 16 | 2 | C+24 (one past C's end: not a reference), 7 |
/// | 2 | C 0x3000 | 24 | - | A, B+16 (one past B's end: no), D+11 (D's last byte) |
/// | 3 | D 0x4000 | 12 | - | B, then 4 bytes (not a whole word) |
/// | 4 | E 0x5004 | 20 | - | 4 bytes, C at offset 4, A at offset 12 |
///
/// E's record carries two extra trailing body bytes (a newer minor version's
/// field), an unknown tag-42 record sits between objects, and STATS also has
/// an extra field.
///
/// Roots: segment of module 0 at 0x100000 `[0, B+8, 0x9999]`; thread 42
/// "main" stack at 0x7fff0000 `[D, E+12, 0xdead]`.
pub fn fixture() -> Vec<u8> {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&params()).unwrap();
    dump.module(&Module {
        module_id: 0,
        path: "/usr/bin/service",
        build_id: &[0xde, 0xad, 0xbe, 0xef],
        load_bias: 0x5555_0000_0000,
        ranges: &[
            ModuleRange {
                start: 0x5555_0000_0000,
                size: 0x1000,
                flags: 5,
            },
            ModuleRange {
                start: SEGMENT,
                size: 24,
                flags: 3,
            },
        ],
    })
    .unwrap();
    dump.root_segment(0, SEGMENT, &words(&[0, B + 8, 0x9999]))
        .unwrap();
    dump.root_thread_stack(42, "main", STACK_POINTER, &words(&[D, E + 12, 0xdead]))
        .unwrap();
    dump.stack(1, &[0x5555_0000_1111, 0x5555_0000_2222])
        .unwrap();
    dump.stack(2, &[0x5555_0000_3333]).unwrap();

    dump.object(C, 0, &words(&[A, B + 16, D + 11])).unwrap();
    dump.object(A, 1, &words(&[B, C + 8, A + 16, B])).unwrap();
    dump.record(42, &[1, 2, 3]).unwrap();
    let mut d = words(&[B]);
    d.extend_from_slice(&(A as u32).to_le_bytes());
    dump.object(D, 0, &d).unwrap();
    dump.object(B, 2, &words(&[C + 24, 7])).unwrap();

    let mut e = vec![0xff; 4];
    e.extend(words(&[C, A]));
    let mut body = Body::new();
    body.uvarint(E)
        .uvarint(20)
        .uvarint(0)
        .bytes(&e)
        .raw(&[5, 6]);
    dump.record(tag::OBJECT, body.as_slice()).unwrap();

    let stats = Stats {
        live_bytes: 104,
        live_objects: 5,
        allocated_bytes: 1000,
        allocated_objects: 50,
        freed_bytes: 896,
        freed_objects: 45,
        peak_live_bytes: 2000,
        tracker_bytes: 4096,
        threads: None,
    };
    let mut body = Body::new();
    body.uvarint(stats.live_bytes)
        .uvarint(stats.live_objects)
        .uvarint(stats.allocated_bytes)
        .uvarint(stats.allocated_objects)
        .uvarint(stats.freed_bytes)
        .uvarint(stats.freed_objects)
        .uvarint(stats.peak_live_bytes)
        .uvarint(stats.tracker_bytes)
        .uvarint(77);
    dump.record(tag::STATS, body.as_slice()).unwrap();

    // E was written with `record`, which counts it as a record only.
    let counts = dump.counts();
    let mut bytes = dump
        .finish_with(EndCounts {
            object_count: counts.object_count + 1,
            object_bytes: counts.object_bytes + 20,
            ..counts
        })
        .unwrap();
    // The unknown record (tag 42), E's bytes after its contents and the
    // STATS field after the known ones are what a newer minor version may
    // add: the file says it is one (1.1), or the reader refuses them.
    set_minor_version(&mut bytes, heapdump_format::VERSION_MINOR + 1);
    bytes
}

/// Sets the minor version in the header of a heapdump-rs dump.
pub fn set_minor_version(bytes: &mut [u8], minor: u16) {
    bytes[14..16].copy_from_slice(&minor.to_le_bytes());
}

/// A big-endian 32-bit dump: two objects pointing at each other, a stack
/// root pointing at the first.
pub fn fixture_be32() -> Vec<u8> {
    let be = |values: &[u32]| -> Vec<u8> {
        values
            .iter()
            .flat_map(|value| value.to_be_bytes())
            .collect()
    };
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&Params {
        pointer_size: 4,
        big_endian: true,
        arch: "powerpc",
        ..params()
    })
    .unwrap();
    dump.root_thread_stack(7, "", 0x8000, &be(&[0x100]))
        .unwrap();
    dump.object(0x100, 0, &be(&[0x204, 0])).unwrap();
    dump.object(0x200, 0, &be(&[0, 0x100, 0x107])).unwrap();
    dump.finish().unwrap()
}

/// Header and PARAMS only, no END: append records to this to build bad
/// files by hand.
pub fn prefix() -> Vec<u8> {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&params()).unwrap();
    dump.into_inner_unfinished().unwrap()
}

/// Appends a record with `body` to `bytes`.
pub fn push_record(bytes: &mut Vec<u8>, tag: u64, body: &[u8]) {
    let mut header = Body::new();
    header.uvarint(tag).uvarint(body.len() as u64);
    bytes.extend_from_slice(header.as_slice());
    bytes.extend_from_slice(body);
}

/// Appends an END record with the given counts.
pub fn push_end(bytes: &mut Vec<u8>, records: u64, objects: u64, object_bytes: u64) {
    let mut body = Body::new();
    body.uvarint(records).uvarint(objects).uvarint(object_bytes);
    push_record(bytes, tag::END, body.as_slice());
}
