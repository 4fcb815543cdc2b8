//! Unit tests of the Go decoder, on dumps encoded by hand.

use super::*;
use crate::dump::ObjectClass;
use crate::graph::HeapGraph;
use crate::parse;

/// Encodes Go heap dump records.
struct Enc(Vec<u8>);

impl Enc {
    fn new() -> Enc {
        Enc(HEADER.to_vec())
    }
    fn u(&mut self, mut value: u64) -> &mut Enc {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.0.push(byte);
                return self;
            }
            self.0.push(byte | 0x80);
        }
    }
    fn s(&mut self, bytes: &[u8]) -> &mut Enc {
        self.u(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
        self
    }
    fn fields(&mut self, offsets: &[u64]) -> &mut Enc {
        for &offset in offsets {
            self.u(1).u(offset);
        }
        self.u(0)
    }
    fn params(&mut self, version: &str) -> &mut Enc {
        self.u(tag::PARAMS)
            .u(0)
            .u(8)
            .u(0xc000_000000)
            .u(0xc000_400000);
        self.s(b"amd64").s(version.as_bytes()).u(4)
    }
    fn object(&mut self, address: u64, contents: &[u8], offsets: &[u64]) -> &mut Enc {
        self.u(tag::OBJECT).u(address).s(contents).fields(offsets)
    }
    fn type_record(&mut self, address: u64, size: u64, name: &str) -> &mut Enc {
        self.u(tag::TYPE).u(address).u(size).s(name.as_bytes()).u(1)
    }
    fn goroutine(&mut self, g: u64, id: u64, context: u64) -> &mut Enc {
        self.u(tag::GOROUTINE)
            .u(g)
            .u(0x7000)
            .u(id)
            .u(0x401000)
            .u(4)
            .u(0)
            .u(0);
        self.u(5).s(b"chan receive").u(context).u(0).u(0).u(0)
    }
    fn frame(
        &mut self,
        sp: u64,
        depth: u64,
        contents: &[u8],
        name: &str,
        offsets: &[u64],
    ) -> &mut Enc {
        self.u(tag::STACK_FRAME).u(sp).u(depth).u(0).s(contents);
        self.u(0x401000).u(0x401010).u(0x401010).s(name.as_bytes());
        self.fields(offsets)
    }
    fn segment(&mut self, tag: u64, address: u64, contents: &[u8], offsets: &[u64]) -> &mut Enc {
        self.u(tag).u(address).s(contents).fields(offsets)
    }
    fn memstats(&mut self, heap_alloc: u64, heap_objects: u64) -> &mut Enc {
        self.u(tag::MEMSTATS);
        for index in 0..24u64 {
            let value = match index {
                0 | 6 => heap_alloc,
                11 => heap_objects,
                _ => index,
            };
            self.u(value);
        }
        for _ in 0..256 {
            self.u(0);
        }
        self.u(1)
    }
    fn memprof(&mut self, id: u64, frames: &[(&str, &str, u64)]) -> &mut Enc {
        self.u(tag::MEMPROF).u(id).u(32).u(frames.len() as u64);
        for (function, file, line) in frames {
            self.s(function.as_bytes()).s(file.as_bytes()).u(*line);
        }
        self.u(3).u(1)
    }
    fn eof(&mut self) -> Vec<u8> {
        self.u(tag::EOF);
        self.0.clone()
    }
}

fn words(values: &[u64]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

const A: u64 = 0xc000_010000;
const B: u64 = 0xc000_010020;
const C: u64 = 0xc000_020000;
const BIG: u64 = 0xc000_030000;
const TYPE_T: u64 = 0x4a0000;
const DATA: u64 = 0x5000;
const BSS: u64 = 0x6000;

/// A small dump: objects out of order, a duplicate type record, a Go 1.22
/// malloc-header object, a goroutine with a context and a frame, data and
/// BSS, a finalizer, memstats, a bucket and an alloc sample.
fn sample() -> Vec<u8> {
    let mut enc = Enc::new();
    enc.params("go1.22.3");
    enc.type_record(TYPE_T, 64, "main.T");
    enc.u(tag::ITAB).u(0x4b0000).u(TYPE_T);
    enc.type_record(TYPE_T, 64, "main.T");
    // C first (span order is not address order).
    enc.object(C, &words(&[A, 0]), &[0]);
    // A: word 0 points at B (listed), word 1 at C (not listed: not a
    // pointer), word 2 at B+8 (interior, listed), word 3 scalar.
    enc.object(A, &words(&[B, C, B + 8, 7]), &[0, 16]);
    enc.object(B, &words(&[0, 0]), &[]);
    // A 576-byte slot with a header naming main.T, pointed to at +8.
    let mut big = words(&[TYPE_T, A]);
    big.resize(576, 0);
    enc.object(BIG, &big, &[8]);
    enc.goroutine(0xc000_001000, 7, C);
    enc.frame(
        0x7000,
        0,
        &words(&[BIG + 8, 0x1234]),
        "main.holder",
        &[0, 8],
    );
    enc.u(tag::OS_THREAD).u(0x9000).u(1).u(4242);
    enc.segment(tag::DATA, DATA, &words(&[A, B]), &[8]);
    enc.segment(tag::BSS, BSS, &words(&[0, C]), &[8]);
    enc.u(tag::FINALIZER).u(B).u(0x1).u(0x2).u(0x3).u(0x4);
    enc.memstats(32 + 16 + 16 + 576, 4);
    enc.memprof(
        0x77,
        &[("main.alloc", "/src/main.go", 12), ("main.main", "?", 0)],
    );
    enc.u(tag::ALLOC_SAMPLE).u(BIG + 8).u(0x77);
    enc.eof()
}

#[test]
fn sample_parses_to_the_expected_model() {
    let bytes = sample();
    let dump = parse(&bytes, &mut |_, _| {}).unwrap();
    assert_eq!(dump.info.format, "go");
    assert_eq!(dump.info.writer, "go1.22.3");
    assert_eq!(dump.info.pointer_size, 8);
    let addresses: Vec<u64> = dump.objects.iter().map(|o| o.address).collect();
    assert_eq!(addresses, [A, B, C, BIG]);
    let go = super::extras(&dump).unwrap();
    assert!(go.params.malloc_headers);
    assert_eq!(go.types.len(), 1, "the duplicate type record is dropped");
    assert_eq!(dump.types.len(), 1);
    let big = &dump.objects[3];
    assert!(big.has_header());
    assert_eq!(big.type_index(), Some(TypeIndex(0)));
    assert_eq!(dump.class_name(&dump.object_class(big)), "main.T");
    assert_eq!(go.typed_by_header, 1);
    let a = &dump.objects[0];
    assert_eq!(
        dump.class_name(&dump.object_class(a)),
        "obj32[p,_,p,_]",
        "A's shape"
    );
    assert!(matches!(dump.object_class(a), ObjectClass::Shape { .. }));
    // The alloc sample points past the header: the object still gets it.
    assert_eq!(big.site, StackId::new(0x77));
    let stack = dump.stack(StackId::new(0x77).unwrap()).unwrap();
    assert_eq!(
        stack.frame_labels(),
        ["main.alloc (/src/main.go:12)", "main.main"]
    );
    assert_eq!(go.buckets[0].allocs, 3);
    let stats = dump.stats.unwrap();
    assert_eq!((stats.live_objects, stats.live_bytes), (4, 640));
    assert_eq!(dump.live_bytes(), 640);
    assert_eq!(go.goroutines.len(), 1);
    assert_eq!(go.goroutines[0].status_name(), "waiting");
    assert_eq!(go.goroutines[0].frames[0].function, "main.holder");
    assert_eq!(go.threads[0].os_id, 4242);

    let labels: Vec<String> = dump
        .roots
        .iter()
        .map(|root| root.kind.label().into_owned())
        .collect();
    assert_eq!(
        labels,
        [
            "goroutine context",
            "goroutine frame",
            "data",
            "bss",
            "finalizer"
        ]
    );
    let frame_roots = go.goroutines[0].frame_roots.clone();
    assert_eq!(frame_roots, 1..2);
    assert_eq!(dump.roots[1].name, "main.holder (goroutine 7, frame 0)");
    assert_eq!(dump.roots[0].name, "goroutine 7 context");

    // The same, format-neutral.
    let contexts = dump.contexts.as_ref().unwrap();
    assert_eq!((contexts.noun, contexts.os_threads), ("goroutine", 1));
    assert_eq!(contexts.contexts.len(), 1);
    let context = &contexts.contexts[0];
    assert_eq!((context.id, context.state.as_str()), (7, "waiting"));
    assert_eq!(context.frames[0].function, "main.holder");
    assert_eq!(context.frame_roots, 1..2);
    assert_eq!(
        dump.roots[1].kind.context(),
        Some(ContextRef {
            noun: "goroutine",
            id: 7
        })
    );
    assert!(matches!(
        dump.roots[2].kind,
        RootKind::Section {
            name: "data",
            symbols: Some(SectionSymbols {
                start: "runtime.data",
                ..
            })
        }
    ));
    assert!(dump.capabilities.pointers_exact && dump.capabilities.roots_complete);
    assert!(dump.root_caveat().is_none());
    assert_eq!(dump.profiles.len(), go.buckets.len());
    assert_eq!(dump.profile(go.buckets[0].id).unwrap().allocs, 3);
}

#[test]
fn exact_pointers_make_the_graph() {
    let bytes = sample();
    let dump = parse(&bytes, &mut |_, _| {}).unwrap();
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let id = |address| graph.object_at(address).unwrap();
    let (a, b, c, big) = (id(A), id(B), id(C), id(BIG));
    // A's word 1 holds C's address but is not a pointer field.
    let refs: Vec<_> = graph.references(a).collect();
    assert_eq!(refs, [(b, 0)]);
    assert_eq!(graph.references(c).collect::<Vec<_>>(), [(a, 0)]);
    assert_eq!(graph.references(big).collect::<Vec<_>>(), [(a, 8)]);
    assert_eq!(graph.object_at(BIG + 8), Some(big), "interior pointer");

    // The names `heapdump-symbols`' RootNamer gives without a binary.
    let mut named: Vec<(String, ObjectId)> = graph
        .root_references()
        .iter()
        .map(|r| (graph.root(r.root).unwrap().slot_name(r.offset), r.target))
        .collect();
    named.sort();
    let mut expected = vec![
        ("goroutine 7 context".to_owned(), c),
        ("main.holder (goroutine 7, frame 0) +0x0".to_owned(), big),
        ("data+0x8".to_owned(), b),
        ("bss+0x8".to_owned(), c),
        ("finalizer of 0xc000010020".to_owned(), b),
    ];
    expected.sort();
    // The finalizer's closure 0x1 is not an object: no reference.
    expected.retain(|(name, _)| !name.starts_with("finalizer"));
    assert_eq!(named, expected);
}

use crate::graph::ObjectId;

#[test]
fn unknown_tags_and_bad_records_are_clear_errors() {
    let mut enc = Enc::new();
    enc.params("go1.19.8");
    let offset = enc.0.len() as u64;
    enc.u(42).u(1).u(2);
    let err = parse(&enc.0, &mut |_, _| {}).unwrap_err();
    assert_eq!(err.offset, offset);
    assert!(matches!(err.kind, ErrorKind::UnknownTag { tag: 42, .. }));
    assert!(
        err.to_string()
            .contains("unknown Go heap dump record tag 42"),
        "{err}"
    );

    let mut enc = Enc::new();
    enc.object(A, &[0; 8], &[]);
    let err = parse(&enc.eof(), &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::ParamsNotFirst { tag: 1, .. }),
        "{err}"
    );

    let mut enc = Enc::new();
    enc.params("go1.19.8");
    enc.u(tag::OBJECT).u(A).s(&[0; 16]).u(2).u(0).u(0);
    let err = parse(&enc.eof(), &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(
            err.kind,
            ErrorKind::BadValue {
                field: "field kind",
                value: 2,
                ..
            }
        ),
        "{err}"
    );

    let mut enc = Enc::new();
    enc.params("go1.19.8");
    enc.object(A, &[0; 16], &[9]);
    let err = parse(&enc.eof(), &mut |_, _| {}).unwrap_err();
    assert!(
        err.to_string()
            .contains("runs past the end of its memory image"),
        "{err}"
    );

    let mut enc = Enc::new();
    enc.params("go1.19.8");
    enc.frame(0x7000, 0, &[0; 8], "main.f", &[]);
    let err = parse(&enc.eof(), &mut |_, _| {}).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::OutOfPlace { .. }), "{err}");

    let mut enc = Enc::new();
    enc.params("go1.19.8");
    enc.u(tag::ALLOC_SAMPLE).u(A).u(0x99);
    let err = parse(&enc.eof(), &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("no memprof bucket"), "{err}");

    let mut enc = Enc::new();
    enc.params("go1.19.8");
    enc.object(A, &[0; 16], &[]);
    enc.object(A + 8, &[0; 16], &[]);
    let err = parse(&enc.eof(), &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::OverlappingObjects { .. }),
        "{err}"
    );

    let mut bytes = sample();
    bytes.push(0);
    let err = parse(&bytes, &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::TrailingBytes { count: 1 }),
        "{err}"
    );

    let err = parse(b"go1.5 heap dump\n\x06", &mut |_, _| {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        "at byte offset 0: a Go heap dump with header \"go1.5 heap dump\"; this reader reads \
         \"go1.7 heap dump\" (written by Go 1.7 and later)"
    );
    let err = parse(HEADER, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::MissingParams), "{err}");
}

#[test]
fn every_prefix_and_flipped_byte_is_an_error_or_a_dump() {
    let bytes = sample();
    for len in 0..bytes.len() {
        let prefix = &bytes[..len];
        match parse(prefix, &mut |_, _| {}) {
            Ok(_) => panic!("a {len}-byte prefix parsed"),
            Err(err) => assert!(err.offset <= len as u64, "{err}"),
        }
    }
    for index in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[index] ^= flip;
            if let Ok(dump) = parse(&bad, &mut |_, _| {}) {
                // tests/go_corrupt.rs also runs the summary on such dumps.
                let _ = HeapGraph::build(dump, &mut |_, _| {});
            }
        }
    }
}

#[test]
fn span_tail_slots_are_not_objects() {
    let page = 0xc000_100000u64;
    let mut enc = Enc::new();
    enc.params("go1.26.6");
    // 16-byte noscan span: Green Tea reserves 128 bytes of mark bits, so
    // slots 504.. (at 0x1f80 and up) are metadata.
    enc.object(page, &[1; 16], &[]);
    enc.object(page + 503 * 16, &[1; 16], &[]);
    enc.object(page + 504 * 16, &[1; 16], &[]);
    enc.object(page + 511 * 16, &[1; 16], &[]);
    // 16-byte scan span: also a 128-byte bitmap, so slots 496.. too.
    let scan = page + 0x2000;
    enc.object(scan, &words(&[0, 0]), &[8]);
    enc.object(scan + 495 * 16, &words(&[0, 0]), &[8]);
    enc.object(scan + 496 * 16, &words(&[0, 0]), &[]);
    // 8-byte noscan span: no reserve at all.
    let tiny = page + 0x4000;
    enc.object(tiny + 1023 * 8, &[1; 8], &[]);
    // A 1 KiB slot: its span keeps nothing in its tail.
    enc.object(page + 0x6000 + 7 * 1024, &[0; 1024], &[]);
    let bytes = enc.eof();
    let dump = parse(&bytes, &mut |_, _| {}).unwrap();
    let addresses: Vec<u64> = dump.objects.iter().map(|o| o.address).collect();
    assert_eq!(
        addresses,
        [
            page,
            page + 503 * 16,
            scan,
            scan + 495 * 16,
            tiny + 1023 * 8,
            page + 0x6000 + 7 * 1024
        ]
    );
    let go = super::extras(&dump).unwrap();
    assert_eq!((go.phantom_slots, go.phantom_bytes), (3, 48));

    assert!(go.inline_mark_bits, "Go 1.26's default");

    // The same noscan span from a Go 1.26 program built with
    // GOEXPERIMENT=nogreenteagc: memstats count slot 504 as an object, so
    // the layout without inline mark bits is chosen.
    let mut enc = Enc::new();
    enc.params("go1.26.6");
    enc.object(page, &[1; 16], &[]);
    enc.object(page + 504 * 16, &[1; 16], &[]);
    enc.memstats(32, 2);
    let bytes = enc.eof();
    let dump = parse(&bytes, &mut |_, _| {}).unwrap();
    assert_eq!(dump.objects.len(), 2);
    let go = super::extras(&dump).unwrap();
    assert!(!go.inline_mark_bits);
    assert_eq!(go.phantom_slots, 0);

    // Before Go 1.22 nothing is reserved.
    let mut enc = Enc::new();
    enc.params("go1.19.8");
    enc.object(page + 511 * 16, &[1; 16], &[]);
    let bytes = enc.eof();
    assert_eq!(parse(&bytes, &mut |_, _| {}).unwrap().objects.len(), 1);
}

#[test]
fn versions_and_shapes() {
    assert_eq!(go_minor_version("go1.26.6"), Some(26));
    assert_eq!(go_minor_version("devel go1.27-abcdef"), Some(27));
    assert_eq!(go_minor_version("GOEXPERIMENT=go1.9"), Some(9));
    assert_eq!(go_minor_version("weird"), None);

    let list = PointerOffsets::encode([0, 8]);
    let mut dump = Dump::new(DumpInfo {
        format: NAME,
        format_version: "1.7".into(),
        pointer_size: 8,
        arch: "amd64".into(),
        ..DumpInfo::default()
    });
    let contents = [0u8; 1024];
    dump.data = &contents;
    let mut object = Object::new(0x1000, 48, None, 0);
    object.set_pointer_list(dump.push_pointer_list(PointerOffsets::from_field_list(&list)));
    dump.objects.push(object);
    assert_eq!(
        dump.class_name(&dump.object_class(&object)),
        "obj48[p,p,_,_,_,_]"
    );
    let unknown = Object::new(0x2000, 48, None, 0);
    assert_eq!(dump.class_name(&dump.object_class(&unknown)), "obj48[?]");
    let long: Vec<u64> = (0..40).map(|i| i * 16).collect();
    let encoded = PointerOffsets::encode(long.iter().copied());
    let offsets = PointerOffsets::from_field_list(&encoded);
    assert_eq!(offsets.iter().collect::<Vec<_>>(), long);
    let mut object = Object::new(0x3000, 1024, None, 0);
    object.set_pointer_list(dump.push_pointer_list(offsets));
    let name = dump.class_name(&dump.object_class(&object));
    assert!(name.starts_with("obj1024[p,_,p,_,"), "{name}");
    assert!(name.contains("...40p#"), "{name}");
    // Short however long the layout: 6 runs, then the count and a hash.
    assert_eq!(
        name.len(),
        "obj1024[p,_,p,_,p,_,...40p#0000]".len(),
        "{name}"
    );
    // Pointer-free objects of more than 8 words are one run.
    let mut object = Object::new(0x4000, 128, None, 0);
    object.set_pointer_list(dump.push_pointer_list(PointerOffsets::from_field_list(&[])));
    assert_eq!(dump.class_name(&dump.object_class(&object)), "obj128[_*16]");
    // Decoding stops quietly at garbage.
    let garbage = [1u8, 8, 3, 5, 1, 9];
    let offsets = PointerOffsets::from_field_list(&garbage);
    assert_eq!(offsets.iter().collect::<Vec<_>>(), [8]);
    // Runs (HPROF's object arrays), and a cut-off run.
    let run = PointerOffsets::encode_run(4, 8, 3);
    let offsets = PointerOffsets::from_field_list(&run);
    assert_eq!(offsets.iter().collect::<Vec<_>>(), [4, 12, 20]);
    let cut = [1u8, 8, 2, 5];
    let offsets = PointerOffsets::from_field_list(&cut);
    assert_eq!(offsets.iter().collect::<Vec<_>>(), [8]);
}
