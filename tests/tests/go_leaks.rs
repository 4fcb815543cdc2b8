//! `heapdump leaks` on the committed Go sample dumps (`samples/go/dumps/`,
//! written by `samples/go/regen-dumps.sh`): the cache (`cache
//! map[int64]*Entry` in `samples/go/main.go`, 1,000 entries of an `Entry`
//! and its payload) is the top leak suspect, its accumulation point is the
//! map, and it retains exactly what the program built.
//!
//! **What "the map" is.** A Go map is several runtime objects, none of them
//! typed in the dump; they are recognised by their allocation sites
//! (`runtime.makemap*` allocates the header, `runtime.mapassign*` everything
//! the map grows into). Go 1.19 (a hash map): the `hmap` header, its bucket
//! array (with the preallocated overflow buckets), `mapextra`, any other
//! overflow buckets and, while it grows, the old bucket array. Go 1.24+
//! (a Swiss table): the `Map` header, its directory (an array of table
//! pointers), the tables and their arrays of slot groups. The suspect's
//! object is the header (what `main.cache` points at); its accumulation
//! point must be the map object in which every entry accumulates: the
//! innermost one that dominates them all (Go 1.19: the bucket array; Go
//! 1.26: the directory, as 1,000 entries need two tables of 1,024 slots).
//!
//! **What the program built**, from the facts JSON it printed: `entries ×
//! (Entry + payload)` requested (`cache_entries`, `entry_bytes`,
//! `payload_bytes`), plus the map's storage (`cache_map_heap_bytes`: how
//! much the live heap grew when the map was filled, between two full GCs).
//! The dump, like Go's `HeapAlloc`, counts every object as its whole
//! size-class slot, so each request is rounded up to Go's size class
//! ([`go_size_class`]: that is the tolerance, and it is computed exactly,
//! not a margin); the map's bytes are already whole slots. No other
//! tolerance: the retained size must equal the sum to the byte, and equal
//! the heap growth the program measured over the whole build
//! (`cache_heap_bytes`). (`regen-dumps.sh` repeats a run in which a runtime
//! goroutine allocated during the measurement.)

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use heapdump_analysis::leaks::{leaks, LeakOptions, SuspectKind};
use heapdump_analysis::{analyze, DomNode};
use heapdump_reader::{DumpFile, HeapGraph, ObjectId};
use heapdump_symbols::{Binary, RootNamer};
use heapdump_tests::Facts;

fn dumps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/go/dumps")
}

/// Go's size classes (`runtime/sizeclasses.go`, the same from Go 1.19 to
/// Go 1.26): the slot sizes of objects up to 32 KiB.
const GO_SIZE_CLASSES: [u64; 67] = [
    8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352,
    384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048,
    2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
    10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672,
    32768,
];

/// The slot Go allocates for a request of `bytes` (more than 16 bytes, or
/// with pointers, so not the tiny allocator; up to 512 bytes, so no malloc
/// header).
fn go_size_class(bytes: u64) -> u64 {
    GO_SIZE_CLASSES
        .iter()
        .copied()
        .find(|&class| class >= bytes)
        .unwrap_or_else(|| panic!("{bytes} bytes is not a small object"))
}

/// Whether `id` was allocated by Go's map code.
fn allocated_by_map_code(graph: &HeapGraph<'_>, id: ObjectId) -> bool {
    let Some(site) = graph.object(id).and_then(|object| object.site) else {
        return false;
    };
    graph.dump().stack(site).is_some_and(|stack| {
        stack.frames.iter().any(|frame| {
            frame.function.as_deref().is_some_and(|function| {
                function.starts_with("runtime.makemap") || function.starts_with("runtime.mapassign")
            })
        })
    })
}

fn check(name: &str) {
    let facts = Facts::read(&dumps().join(format!("{name}.facts.json")));
    let file = DumpFile::open(dumps().join(format!("{name}.godump"))).unwrap();
    let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {}).unwrap();
    let binary = Binary::open(dumps().join(format!("{name}.bin"))).unwrap();
    let namer = RootNamer::new(&dump, Some(&binary)).unwrap();
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let analysis = analyze(&graph);
    let report = leaks(&graph, &analysis, &LeakOptions::default());

    // The top suspect is the map `main.cache` points at, alone.
    let cache: Vec<ObjectId> = graph
        .root_references()
        .iter()
        .filter(|r| namer.reference_name(&graph, r) == "main.cache")
        .map(|r| r.target)
        .collect();
    assert_eq!(cache.len(), 1, "{name}: main.cache holds one map");
    let header = cache[0];
    let top = report
        .suspects
        .first()
        .unwrap_or_else(|| panic!("{name}: no suspects"));
    assert_eq!(top.kind, SuspectKind::Single, "{name}: {top:#?}");
    assert_eq!(
        top.object.id, header.0,
        "{name}: the top suspect is main.cache's map; the report: {:#?}",
        report.suspects
    );
    assert!(
        allocated_by_map_code(&graph, header),
        "{name}: runtime.makemap allocated the map's header"
    );
    assert!(
        top.percent > 50.0,
        "{name}: the cache is most of the heap ({:.1}%)",
        top.percent
    );

    // What the suspect retains: every entry and payload, and the map.
    let node = |id: ObjectId| {
        analysis
            .node(id)
            .unwrap_or_else(|| panic!("{name}: object {id:?} is unreachable"))
    };
    let object_at = |address: u64| {
        graph
            .object_at(address)
            .unwrap_or_else(|| panic!("{name}: no object at {address:#x}"))
    };
    let entries: Vec<ObjectId> = facts
        .list("entry_addrs")
        .into_iter()
        .map(object_at)
        .collect();
    let payloads: Vec<ObjectId> = facts
        .list("payload_addrs")
        .into_iter()
        .map(object_at)
        .collect();
    assert_eq!(entries.len() as u64, facts.u64("cache_entries"));
    let (entry_slot, payload_slot) = (
        go_size_class(facts.u64("entry_bytes")),
        go_size_class(facts.u64("payload_bytes")),
    );
    for &entry in &entries {
        assert_eq!(graph.object(entry).unwrap().size, entry_slot, "{name}");
    }
    for &payload in &payloads {
        assert_eq!(graph.object(payload).unwrap().size, payload_slot, "{name}");
    }
    let built: HashSet<ObjectId> = entries.iter().chain(&payloads).copied().collect();
    let retained: Vec<ObjectId> = analysis
        .subtree(node(header))
        .map(|n| analysis.object(n).unwrap())
        .collect();
    let map: Vec<ObjectId> = retained
        .iter()
        .copied()
        .filter(|id| !built.contains(id))
        .collect();
    assert_eq!(
        retained.len() - map.len(),
        built.len(),
        "{name}: the suspect retains every entry and payload"
    );
    for &id in &map {
        assert!(
            allocated_by_map_code(&graph, id),
            "{name}: the rest is the map's own storage: {:?}",
            graph.object(id)
        );
    }
    let map_bytes: u64 = map.iter().map(|&id| graph.object(id).unwrap().size).sum();
    assert_eq!(
        map_bytes,
        facts.u64("cache_map_heap_bytes"),
        "{name}: the map's objects in the dump ({} of them) against the heap growth the \
         program measured when it filled the map",
        map.len()
    );
    assert_eq!(
        retained.len() as u64,
        facts.u64("cache_heap_objects"),
        "{name}: objects"
    );

    // The retained size: entries × (Entry + payload), each in its size
    // class, plus the map's storage; exactly.
    let expected = facts.u64("cache_entries") * (entry_slot + payload_slot)
        + facts.u64("cache_map_heap_bytes");
    assert_eq!(
        top.retained_bytes,
        expected,
        "{name}: {} entries × ({entry_slot} + {payload_slot}) + {} bytes of map",
        facts.u64("cache_entries"),
        facts.u64("cache_map_heap_bytes")
    );
    assert_eq!(top.retained_bytes, facts.u64("cache_heap_bytes"), "{name}");

    // The accumulation point: the innermost map object that dominates
    // every entry.
    let ancestors = |start: DomNode| {
        let mut chain = vec![start];
        let mut up = analysis.idom(start);
        while let Some(n) = up {
            chain.push(n);
            up = analysis.idom(n);
        }
        chain
    };
    let mut common = ancestors(node(entries[0]));
    for &entry in &entries[1..] {
        let chain = ancestors(node(entry));
        common.retain(|n| chain.contains(n));
    }
    let holder = analysis.object(common[0]).unwrap();
    assert!(
        map.contains(&holder),
        "{name}: the entries' common dominator"
    );
    let point = &top.accumulation_point;
    assert_eq!(
        point.object.id,
        holder.0,
        "{name}: the accumulation point is the map object that holds every entry ({:?}); \
         the suspect: {top:#?}",
        graph.object(holder)
    );
    assert!(
        point
            .content_by_class
            .iter()
            .map(|share| share.objects)
            .sum::<u64>()
            > 0
            && point.direct_children >= 2,
        "{name}"
    );
    let path = top.path.as_ref().expect("a path from a root");
    assert!(
        path.steps.iter().any(|step| step.object.id == header.0),
        "{name}: the path runs through the map's header"
    );
    assert!(!top.summary.is_empty());
}

#[test]
fn the_go_cache_is_the_top_suspect_go1_19() {
    check("go1.19");
}

#[test]
fn the_go_cache_is_the_top_suspect_go1_26() {
    check("go1.26");
}
