//! Minor versions of heapdump-rs: a 1.0 file (before short sites) still
//! reads, and a 1.1 file's short sites are marked as such.

mod common;

use common::*;
use heapdump_format::builder::{Body, DumpBuilder, Params};
use heapdump_format::tag;
use heapdump_reader::{parse, ErrorKind, StackId};

/// A dump as a 1.0 writer wrote it: PARAMS without `short_site_frames`,
/// STACK without `short`.
fn version_1_0() -> Vec<u8> {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    let mut params = Body::new();
    params
        .uvarint(8)
        .bool(false)
        .string("x86_64")
        .string("linux")
        .uvarint(4242)
        .uvarint(1)
        .string("/usr/bin/service")
        .bytes(&[0xde, 0xad])
        .string("heapdump 0.1.0")
        .uvarint(0)
        .uvarint(524_288);
    dump.record(tag::PARAMS, params.as_slice()).unwrap();
    let mut stack = Body::new();
    stack
        .uvarint(7)
        .uvarint(2)
        .uvarint(0x40_1000)
        .uvarint(0x40_2000);
    dump.record(tag::STACK, stack.as_slice()).unwrap();
    dump.object(0x1000, 7, &[0; 16]).unwrap();
    dump.object(0x2000, 0, &[0; 8]).unwrap();
    let mut bytes = dump.finish().unwrap();
    set_minor_version(&mut bytes, 0);
    bytes
}

#[test]
fn a_1_0_dump_reads_without_the_appended_fields() {
    let bytes = version_1_0();
    let dump = parse(&bytes, &mut |_, _| {}).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(dump.info.format_version, "1.0");
    assert!(dump.warnings.is_empty(), "{:?}", dump.warnings);
    assert_eq!(dump.info.sample_rate, 524_288);
    let stack = dump.stack(StackId::new(7).unwrap()).unwrap();
    assert_eq!(stack.pcs, [0x40_1000, 0x40_2000]);
    assert!(!stack.short);
    assert_eq!(dump.objects.len(), 2);
    assert!(dump.objects[1].site.is_none());
    // Sites are sampled: the reports' hint stays.
    assert!(dump.capabilities.every_site_hint.is_some());

    // The same records in a file that says 1.1 lack the 1.1 fields: the
    // STACK ends before its `short`.
    let mut as_1_1 = bytes.clone();
    set_minor_version(&mut as_1_1, 1);
    let error = parse(&as_1_1, &mut |_, _| {}).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Truncated { .. }), "{error}");
}

#[test]
fn short_sites_of_a_1_1_dump_are_marked() {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&Params {
        sample_rate: 524_288,
        short_site_frames: 5,
        ..params()
    })
    .unwrap();
    dump.stack(1, &[0x40_1000, 0x40_2000, 0x40_3000]).unwrap();
    dump.short_site(2, &[0x40_1000, 0x40_2000]).unwrap();
    dump.object(0x1000, 1, &[0; 16]).unwrap();
    dump.object(0x2000, 2, &[0; 8]).unwrap();
    let bytes = dump.finish().unwrap();
    let dump = parse(&bytes, &mut |_, _| {}).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        dump.info.format_version,
        format!("1.{}", heapdump_format::VERSION_MINOR)
    );
    let full = dump.stack(StackId::new(1).unwrap()).unwrap();
    let short = dump.stack(StackId::new(2).unwrap()).unwrap();
    assert!(!full.short);
    assert!(short.short);
    assert_eq!(short.pcs, [0x40_1000, 0x40_2000]);
    assert!(dump.objects.iter().all(|object| object.site.is_some()));
    // Every object has a site: no hint to dump at rate 1 for them.
    assert_eq!(dump.capabilities.every_site_hint, None);

    // A `short` that is not a bool is corrupt.
    let mut bad = DumpBuilder::new(Vec::new()).unwrap();
    bad.params(&params()).unwrap();
    let mut stack = Body::new();
    stack.uvarint(1).uvarint(1).uvarint(0x40_1000).uvarint(2);
    bad.record(tag::STACK, stack.as_slice()).unwrap();
    let error = parse(&bad.finish().unwrap(), &mut |_, _| {}).unwrap_err();
    assert!(error.to_string().contains("short"), "{error}");
}
