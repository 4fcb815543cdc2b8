//! An HPROF file of more than 4 GiB: four `HEAP DUMP SEGMENT`s, each
//! holding one `byte[]` of 1.2 GB (left as holes in a sparse file, so the
//! test needs neither the disk space nor the memory), then a segment past
//! the 4 GiB mark with a small `byte[]` and a root for every array. The
//! decoder borrows array contents from the mapped file without reading
//! them, so parsing touches only the records' headers: every array is at
//! its offset (the last one past 2³² bytes, its contents read back
//! exactly), with its size, reachable from its root.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

use heapdump_reader::formats::hprof::{sub, tag};
use heapdump_reader::{parse, DumpFile, HeapGraph};

const BIG: u64 = 1_200_000_000;
const BIG_ARRAYS: u64 = 4;
/// HPROF's basic type code of `byte`.
const BYTE: u8 = 8;
const TAIL: &[u8] = b"read from past 4 GiB";

fn record_header(file: &mut File, tag: u8, length: u64) {
    let mut header = vec![tag];
    header.extend_from_slice(&0u32.to_be_bytes());
    header.extend_from_slice(&u32::try_from(length).unwrap().to_be_bytes());
    file.write_all(&header).unwrap();
}

/// A PRIMITIVE ARRAY DUMP's header: id, stack serial, length, type.
fn array_header(id: u64, length: u64) -> Vec<u8> {
    let mut out = vec![sub::PRIMITIVE_ARRAY_DUMP];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&u32::try_from(length).unwrap().to_be_bytes());
    out.push(BYTE);
    out
}

fn root(id: u64) -> Vec<u8> {
    let mut out = vec![sub::ROOT_JNI_GLOBAL];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(id + 1).to_be_bytes());
    out
}

/// Removes the file when the test ends, passed or failed.
struct Removed(std::path::PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn an_hprof_file_over_4_gib_parses() {
    let path =
        std::env::temp_dir().join(format!("heapdump-hprof-4gib-{}.hprof", std::process::id()));
    let _removed = Removed(path.clone());
    let mut file = File::create(&path).unwrap();
    let mut header = b"JAVA PROFILE 1.0.2\0".to_vec();
    header.extend_from_slice(&8u32.to_be_bytes());
    header.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
    file.write_all(&header).unwrap();
    // Ids are addresses: far enough apart for 1.2 GB arrays.
    let ids: Vec<u64> = (0..=BIG_ARRAYS).map(|i| (i + 1) << 32).collect();
    for &id in &ids[..BIG_ARRAYS as usize] {
        let head = array_header(id, BIG);
        record_header(&mut file, tag::HEAP_DUMP_SEGMENT, head.len() as u64 + BIG);
        file.write_all(&head).unwrap();
        // The contents: a hole.
        file.seek(SeekFrom::Current(BIG as i64)).unwrap();
    }
    let tail_at = file.stream_position().unwrap();
    assert!(tail_at > 1 << 32, "the last segment starts past 4 GiB");
    let mut body = array_header(ids[BIG_ARRAYS as usize], TAIL.len() as u64);
    body.extend_from_slice(TAIL);
    for &id in &ids {
        body.extend(root(id));
    }
    record_header(&mut file, tag::HEAP_DUMP_SEGMENT, body.len() as u64);
    file.write_all(&body).unwrap();
    record_header(&mut file, tag::HEAP_DUMP_END, 0);
    let length = file.stream_position().unwrap();
    drop(file);

    let mapped = DumpFile::open(&path).unwrap();
    assert_eq!(mapped.bytes().len() as u64, length);
    let dump = parse(mapped.bytes(), &mut |_, _| {}).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(dump.objects.len() as u64, BIG_ARRAYS + 1);
    for (object, &id) in dump.objects.iter().zip(&ids) {
        assert_eq!(object.address, id);
        assert_eq!(dump.class_name(&dump.object_class(object)), "byte[]");
    }
    let big = &dump.objects[0];
    assert_eq!(big.contents_len(), BIG);
    assert!(big.size >= BIG, "{}", big.size);
    let last = &dump.objects[BIG_ARRAYS as usize];
    assert!(last.contents_at > 1 << 32, "{:#x}", last.contents_at);
    assert_eq!(dump.contents(last), TAIL);
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    assert_eq!(graph.root_references().len() as u64, BIG_ARRAYS + 1);
    drop(graph);
    drop(mapped);
}
