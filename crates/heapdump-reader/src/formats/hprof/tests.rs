//! Unit tests of the HPROF decoder on small hand-built files.

use super::*;

/// Writes a small HPROF file by hand: with `id_size` 4 or 8.
pub(crate) struct Writer {
    id_size: u8,
    out: Vec<u8>,
    heap: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(version: &str, id_size: u8) -> Writer {
        let mut out = version.as_bytes().to_vec();
        out.push(0);
        out.extend_from_slice(&u32::from(id_size).to_be_bytes());
        out.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        Writer {
            id_size,
            out,
            heap: Vec::new(),
        }
    }

    fn id(&self, buf: &mut Vec<u8>, id: u64) {
        if self.id_size == 4 {
            buf.extend_from_slice(&(id as u32).to_be_bytes());
        } else {
            buf.extend_from_slice(&id.to_be_bytes());
        }
    }

    fn record(&mut self, tag: u8, body: &[u8]) {
        self.out.push(tag);
        self.out.extend_from_slice(&0u32.to_be_bytes());
        self.out
            .extend_from_slice(&(body.len() as u32).to_be_bytes());
        self.out.extend_from_slice(body);
    }

    pub(crate) fn string(&mut self, id: u64, text: &str) {
        let mut body = Vec::new();
        self.id(&mut body, id);
        body.extend_from_slice(text.as_bytes());
        self.record(tag::UTF8, &body);
    }

    pub(crate) fn load_class(&mut self, serial: u32, class: u64, name: u64) {
        let mut body = serial.to_be_bytes().to_vec();
        self.id(&mut body, class);
        body.extend_from_slice(&1u32.to_be_bytes());
        self.id(&mut body, name);
        self.record(tag::LOAD_CLASS, &body);
    }

    pub(crate) fn frame(&mut self, id: u64, method: u64, source: u64, class_serial: u32) {
        let mut body = Vec::new();
        self.id(&mut body, id);
        self.id(&mut body, method);
        self.id(&mut body, 0);
        self.id(&mut body, source);
        body.extend_from_slice(&class_serial.to_be_bytes());
        body.extend_from_slice(&42u32.to_be_bytes());
        self.record(tag::STACK_FRAME, &body);
    }

    pub(crate) fn trace(&mut self, serial: u32, thread: u32, frames: &[u64]) {
        let mut body = serial.to_be_bytes().to_vec();
        body.extend_from_slice(&thread.to_be_bytes());
        body.extend_from_slice(&(frames.len() as u32).to_be_bytes());
        for &frame in frames {
            self.id(&mut body, frame);
        }
        self.record(tag::STACK_TRACE, &body);
    }

    /// A CLASS DUMP: statics `(name, type, value)`, fields `(name, type)`.
    pub(crate) fn class_dump(
        &mut self,
        class: u64,
        super_id: u64,
        statics: &[(u64, u8, u64)],
        fields: &[(u64, u8)],
    ) {
        let mut body = vec![sub::CLASS_DUMP];
        self.id(&mut body, class);
        body.extend_from_slice(&1u32.to_be_bytes());
        self.id(&mut body, super_id);
        for _ in 0..5 {
            self.id(&mut body, 0);
        }
        body.extend_from_slice(&0u32.to_be_bytes());
        // One constant pool entry.
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&7u16.to_be_bytes());
        body.push(10);
        body.extend_from_slice(&5u32.to_be_bytes());
        body.extend_from_slice(&(statics.len() as u16).to_be_bytes());
        for &(name, code, value) in statics {
            self.id(&mut body, name);
            body.push(code);
            match code {
                2 => self.id(&mut body, value),
                10 => body.extend_from_slice(&(value as u32).to_be_bytes()),
                _ => unreachable!(),
            }
        }
        body.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for &(name, code) in fields {
            self.id(&mut body, name);
            body.push(code);
        }
        self.heap.extend_from_slice(&body);
    }

    pub(crate) fn instance(&mut self, id: u64, class: u64, values: &[u8]) {
        let mut body = vec![sub::INSTANCE_DUMP];
        self.id(&mut body, id);
        body.extend_from_slice(&1u32.to_be_bytes());
        self.id(&mut body, class);
        body.extend_from_slice(&(values.len() as u32).to_be_bytes());
        body.extend_from_slice(values);
        self.heap.extend_from_slice(&body);
    }

    pub(crate) fn id_bytes(&self, id: u64) -> Vec<u8> {
        let mut out = Vec::new();
        self.id(&mut out, id);
        out
    }

    pub(crate) fn object_array(&mut self, id: u64, class: u64, elements: &[u64]) {
        let mut body = vec![sub::OBJECT_ARRAY_DUMP];
        self.id(&mut body, id);
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&(elements.len() as u32).to_be_bytes());
        self.id(&mut body, class);
        for &element in elements {
            self.id(&mut body, element);
        }
        self.heap.extend_from_slice(&body);
    }

    pub(crate) fn byte_array(&mut self, id: u64, data: &[u8]) {
        let mut body = vec![sub::PRIMITIVE_ARRAY_DUMP];
        self.id(&mut body, id);
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&(data.len() as u32).to_be_bytes());
        body.push(8);
        body.extend_from_slice(data);
        self.heap.extend_from_slice(&body);
    }

    /// A root sub-record with `extra` u4 fields.
    pub(crate) fn root(&mut self, tag: u8, id: u64, extra: &[u32]) {
        let mut body = vec![tag];
        self.id(&mut body, id);
        if tag == sub::ROOT_JNI_GLOBAL {
            self.id(&mut body, 0x99);
        }
        for value in extra {
            body.extend_from_slice(&value.to_be_bytes());
        }
        self.heap.extend_from_slice(&body);
    }

    /// Closes the sub-records written so far as a HEAP DUMP SEGMENT; the
    /// next ones go to a new segment.
    pub(crate) fn segment(&mut self) {
        let heap = std::mem::take(&mut self.heap);
        self.record(tag::HEAP_DUMP_SEGMENT, &heap);
    }

    /// Closes the heap as one segment (and HEAP DUMP END) and returns the file.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let heap = std::mem::take(&mut self.heap);
        self.record(tag::HEAP_DUMP_SEGMENT, &heap);
        self.record(tag::HEAP_DUMP_END, &[]);
        self.out
    }

    /// An unknown top-level record, to be skipped.
    pub(crate) fn unknown(&mut self) {
        self.record(0x42, &[1, 2, 3]);
    }
}

/// A small heap: class Object (0x100), class Main (0x200) with static
/// CACHE → a Holder (0x1000), class Holder (0x300, fields: int n, Object
/// ref), class Object[] (0x400), a byte[]; roots for every kind; a thread
/// with one frame.
pub(crate) fn sample(id_size: u8) -> Vec<u8> {
    let mut w = Writer::new("JAVA PROFILE 1.0.2", id_size);
    for (id, text) in [
        (1, "java/lang/Object"),
        (2, "Main"),
        (3, "Main$Holder"),
        (4, "[Ljava/lang/Object;"),
        (5, "CACHE"),
        (6, "n"),
        (7, "ref"),
        (8, "run"),
        (9, "Main.java"),
        (10, "COUNT"),
        (11, "[B"),
    ] {
        w.string(id, text);
    }
    w.load_class(1, 0x100, 1);
    w.load_class(2, 0x200, 2);
    w.load_class(3, 0x300, 3);
    w.load_class(4, 0x400, 4);
    w.load_class(5, 0x500, 11);
    w.unknown();
    w.frame(0x77, 8, 9, 2);
    w.trace(1, 0, &[]);
    w.trace(2, 1, &[0x77]);
    w.class_dump(0x100, 0, &[], &[]);
    w.class_dump(0x200, 0x100, &[(10, 10, 3), (5, 2, 0x1000)], &[]);
    w.class_dump(0x300, 0x100, &[], &[(6, 10), (7, 2)]);
    w.class_dump(0x400, 0x100, &[], &[]);
    w.class_dump(0x500, 0x100, &[], &[]);
    let mut values = 7u32.to_be_bytes().to_vec();
    values.extend(w.id_bytes(0x2000));
    w.instance(0x1000, 0x300, &values);
    w.object_array(0x2000, 0x400, &[0x3000, 0, 0x1000]);
    w.byte_array(0x3000, b"hello");
    w.instance(0x4000, 0x300, &{
        let mut v = 1u32.to_be_bytes().to_vec();
        v.extend(w.id_bytes(0));
        v
    });
    w.root(sub::ROOT_STICKY_CLASS, 0x200, &[]);
    w.root(sub::ROOT_THREAD_OBJECT, 0x4000, &[1, 2]);
    w.root(sub::ROOT_JAVA_FRAME, 0x3000, &[1, 0]);
    w.root(sub::ROOT_JNI_GLOBAL, 0x2000, &[]);
    w.root(sub::ROOT_MONITOR_USED, 0x1000, &[]);
    w.root(sub::ROOT_UNKNOWN, 0x1000, &[]);
    w.finish()
}

fn parse_ok(bytes: &[u8]) -> Dump<'_> {
    crate::parse(bytes, &mut |_, _| {}).unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn names_are_java_names() {
    assert_eq!(
        java_name("java/util/HashMap$Node"),
        "java.util.HashMap$Node"
    );
    assert_eq!(java_name("[B"), "byte[]");
    assert_eq!(java_name("[[Ljava/lang/String;"), "java.lang.String[][]");
}

#[test]
fn reads_a_small_dump_with_both_id_sizes() {
    for id_size in [4u8, 8] {
        let bytes = sample(id_size);
        let dump = parse_ok(&bytes);
        assert_eq!(dump.info.format, "hprof");
        assert_eq!(dump.info.pointer_size, id_size);
        assert!(dump.info.big_endian);
        // 5 class objects and 4 objects.
        assert_eq!(dump.objects.len(), 9);
        let object = |address: u64| {
            dump.objects
                .iter()
                .find(|object| object.address == address)
                .unwrap()
        };
        let name = |address: u64| dump.class_name(&dump.object_class(object(address)));
        assert_eq!(name(0x1000), "Main$Holder");
        assert_eq!(name(0x2000), "java.lang.Object[]");
        assert_eq!(name(0x3000), "byte[]");
        assert_eq!(name(0x200), "class Main");
        // Sizes: 4-byte ids have 8-byte headers and 4-byte references; 8-byte
        // ids without compressed oops 16 and 8.
        let (header, reference) = if id_size == 4 { (8, 4) } else { (16, 8) };
        assert_eq!(object(0x1000).size, align8(header + 4 + reference));
        assert_eq!(object(0x2000).size, align8(header + 4 + 3 * reference));
        assert_eq!(object(0x3000).size, align8(header + 4 + 5));
        assert_eq!(object(0x200).size, 0);
        // Exact references, by graph.
        let graph = crate::HeapGraph::build(dump.clone(), &mut |_, _| {});
        let id_of = |address: u64| graph.object_at(address).unwrap();
        let targets = |address: u64| -> Vec<u64> {
            graph
                .references(id_of(address))
                .map(|(target, _)| graph.object(target).unwrap().address)
                .collect()
        };
        assert_eq!(targets(0x1000), vec![0x2000]);
        assert_eq!(targets(0x2000), vec![0x1000, 0x3000]);
        assert_eq!(targets(0x200), vec![0x1000]);
        assert!(targets(0x3000).is_empty());
        // Roots.
        let labels: Vec<String> = dump
            .roots
            .iter()
            .map(|r| r.kind.label().into_owned())
            .collect();
        assert_eq!(
            labels,
            [
                "thread frame",
                "system class",
                "thread object",
                "JNI global",
                "monitor used",
                "other"
            ]
        );
        assert_eq!(dump.roots[0].name, "Main.run (thread 1, frame 0)");
        assert_eq!(dump.roots[1].name, "system class Main");
        let contexts = dump.contexts.as_ref().unwrap();
        assert_eq!(contexts.noun, "thread");
        assert_eq!(contexts.contexts.len(), 1);
        assert_eq!(contexts.contexts[0].frames[0].function, "Main.run");
        assert_eq!(contexts.contexts[0].frames[0].file, "Main.java");
        assert_eq!(contexts.contexts[0].frame_roots, 0..1);
        let extras = extras(&dump).unwrap();
        assert_eq!(extras.skipped_records, vec![(0x42, 1)]);
        let cache_offset = extras.class(0x200).unwrap().statics[1].offset;
        assert_eq!(
            extras.static_field_name(0x200, cache_offset).as_deref(),
            Some("Main.CACHE")
        );
        assert_eq!(
            graph.references(id_of(0x200)).next().unwrap().1 as u64,
            cache_offset
        );
    }
}

#[test]
fn bad_headers_and_lengths_are_errors_with_offsets() {
    let err = crate::parse(b"JAVA PROFILE 1.0.9\0\0\0\0\x08", &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::UnsupportedHeader { .. }),
        "{err}"
    );
    let mut bytes = sample(8);
    let cut = bytes.len() - 20;
    bytes.truncate(cut);
    let err = crate::parse(&bytes, &mut |_, _| {}).unwrap_err();
    assert!(err.offset <= cut as u64, "{err}");
}

#[test]
fn every_truncation_and_flipped_byte_is_an_error_or_a_dump() {
    for id_size in [4u8, 8] {
        let bytes = sample(id_size);
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            match crate::parse(cut, &mut |_, _| {}) {
                Ok(dump) => {
                    let _ = crate::HeapGraph::build(dump, &mut |_, _| {});
                }
                Err(err) => assert!(err.offset <= len as u64, "cut at {len}: {err}"),
            }
        }
        for at in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[at] ^= flip;
                match crate::parse(&bad, &mut |_, _| {}) {
                    Ok(dump) => {
                        let _ = crate::HeapGraph::build(dump, &mut |_, _| {});
                    }
                    Err(err) => assert!(err.offset <= bad.len() as u64, "flip at {at}: {err}"),
                }
            }
        }
    }
}

/// Objects over several segments, class objects at addresses between
/// them (as HotSpot's class mirrors are), segments with no objects: the
/// table is in address order with every object once, whether the objects
/// come in address order (placed where they go) or not (sorted, then the
/// class objects merged in); a class object at an object's address is a
/// duplicate either way.
#[test]
fn objects_over_segments_land_in_address_order() {
    let layout = |reverse: bool, clash: bool| {
        let mut w = Writer::new("JAVA PROFILE 1.0.2", 8);
        w.string(1, "java/lang/Object");
        w.string(2, "[B");
        w.load_class(1, 0x100, 1);
        w.load_class(2, if clash { 0x3000 } else { 0x3800 }, 2);
        w.class_dump(0x100, 0, &[], &[]);
        w.segment();
        w.class_dump(if clash { 0x3000 } else { 0x3800 }, 0x100, &[], &[]);
        w.segment();
        let mut ids: Vec<u64> = (1..=6).map(|i| i * 0x1000).collect();
        if reverse {
            ids.reverse();
        }
        for (n, &id) in ids.iter().enumerate() {
            w.byte_array(id, b"xy");
            if n % 2 == 1 {
                w.segment();
            }
        }
        w.segment();
        w.finish()
    };
    for reverse in [false, true] {
        let bytes = layout(reverse, false);
        let dump = parse_ok(&bytes);
        let addresses: Vec<u64> = dump.objects.iter().map(|o| o.address).collect();
        assert_eq!(
            addresses,
            [0x100, 0x1000, 0x2000, 0x3000, 0x3800, 0x4000, 0x5000, 0x6000],
            "reverse {reverse}"
        );
        for object in &dump.objects {
            let class_object = object.address & 0xfff != 0;
            assert_eq!(object.size == 0, class_object, "{object:?}");
        }
        let err = crate::parse(&layout(reverse, true), &mut |_, _| {})
            .err()
            .unwrap_or_else(|| panic!("a class at an object's address parsed"));
        assert!(
            matches!(err.kind, ErrorKind::DuplicateObject { address: 0x3000 }),
            "reverse {reverse}: {err}"
        );
    }
}

/// `object_near` finds what a binary search over all objects finds, from
/// every starting object and for every address (present, between objects,
/// before the first and after the last), and from a copy not in the table.
#[test]
fn object_near_finds_what_a_binary_search_finds() {
    for count in [0usize, 1, 2, 3, 7, 64, 100] {
        // Gaps of 0x10, 0x20 and 0x30 bytes.
        let mut address = 0x1000;
        let objects: Vec<Object> = (0..count as u64)
            .map(|index| {
                address += 0x10 * (1 + index % 3);
                Object::new(address, 8, None, 0)
            })
            .collect();
        let last = objects.last().map_or(0x1000, |object| object.address);
        let copy = Object::new(0x1010, 8, None, 0);
        for address in (0xff0..=last + 0x20).step_by(8) {
            let expected = objects
                .binary_search_by_key(&address, |object| object.address)
                .ok()
                .map(|index| objects[index].address);
            for near in objects.iter().chain([&copy]) {
                assert_eq!(
                    object_near(&objects, near, address).map(|object| object.address),
                    expected,
                    "{count} objects, from {:#x}, for {address:#x}",
                    near.address
                );
            }
        }
    }
}
