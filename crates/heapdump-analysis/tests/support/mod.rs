//! What the analysis tests share: hand-built dumps of a given shape,
//! written with the format's `DumpBuilder` and read back as the CLI reads
//! them.

#![allow(dead_code)] // Each test binary uses its own part.

use heapdump_format::builder::{DumpBuilder, Module, Params};
use heapdump_reader::{parse, HeapGraph};

/// Where object 0 sits; object `i` sits at [`address`]`(i)`.
pub const BASE: u64 = 0x10_0000;
/// The root segment's address.
pub const SEGMENT: u64 = 0x7000_0000;

/// Object `index`'s address: `BASE + 64 * index`.
pub fn address(index: u32) -> u64 {
    BASE + 64 * u64::from(index)
}

/// A dump whose object `i` sits at [`address`]`(i)`, holds pointers to
/// the objects `edges[i]` (then zero padding up to `size`), and whose root
/// segment points at `roots`; objects at even indices were allocated at
/// stack 7, the others not sampled.
pub fn dump_bytes(edges: &[Vec<u32>], roots: &[u32], size: usize) -> Vec<u8> {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&Params::default()).unwrap();
    dump.module(&Module::default()).unwrap();
    let segment: Vec<u8> = roots
        .iter()
        .flat_map(|&root| address(root).to_le_bytes())
        .collect();
    dump.root_segment(0, SEGMENT, &segment).unwrap();
    dump.stack(7, &[0x4000, 0x4100]).unwrap();
    let mut contents = Vec::new();
    for (index, targets) in edges.iter().enumerate() {
        contents.clear();
        contents.extend(
            targets
                .iter()
                .flat_map(|&target| address(target).to_le_bytes()),
        );
        contents.resize(contents.len().max(size), 0);
        dump.object(
            address(index as u32),
            if index % 2 == 0 { 7 } else { 0 },
            &contents,
        )
        .unwrap();
    }
    dump.finish().unwrap()
}

/// The graph of a dump written by [`dump_bytes`].
pub fn read(bytes: &[u8]) -> HeapGraph<'_> {
    HeapGraph::build(parse(bytes, &mut |_, _| {}).unwrap(), &mut |_, _| {})
}
