//! Round trip: a program with a known heap writes a dump, and the reader
//! finds every allocation with its size, contents, site and references.

use std::collections::HashMap;
use std::sync::Mutex;

use heapdump_reader::{HeapGraph, ObjectId, RootKind};
use heapdump_tests::{read_graph, temp_path};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// A singly linked list node; `next` is a plain pointer (niche-optimised).
struct Node {
    value: u64,
    next: Option<Box<Node>>,
}

/// Held by a static, so it is reachable from a module segment root. The
/// boxes are the point: each is a heap object the reader must find.
#[allow(clippy::vec_box)]
static GLOBAL_CACHE: Mutex<Vec<Box<[u8; 48]>>> = Mutex::new(Vec::new());

fn pattern(index: usize, len: usize) -> Vec<u8> {
    (0..len).map(|byte| (index * 31 + byte) as u8 | 1).collect()
}

#[allow(clippy::box_collection)]
struct KnownHeap {
    boxes: Vec<Box<[u8]>>,
    list: Option<Box<Node>>,
    map: Box<HashMap<u64, Box<[u64; 4]>>>,
}

const BOX_COUNT: usize = 200;
const LIST_LEN: u64 = 500;

fn build_known_heap() -> KnownHeap {
    let boxes = (0..BOX_COUNT)
        .map(|index| pattern(index, 16 + index * 8).into_boxed_slice())
        .collect();
    let mut list = None;
    for value in (0..LIST_LEN).rev() {
        list = Some(Box::new(Node { value, next: list }));
    }
    let mut map = Box::new(HashMap::new());
    for key in 0..64u64 {
        map.insert(key, Box::new([key, key * 2, key * 3, key * 4]));
    }
    GLOBAL_CACHE
        .lock()
        .unwrap()
        .extend((0..8u8).map(|i| Box::new([i; 48])));
    KnownHeap { boxes, list, map }
}

fn id_of(graph: &HeapGraph<'_>, address: usize) -> ObjectId {
    let id = graph
        .object_at(address as u64)
        .unwrap_or_else(|| panic!("no object at {address:#x}"));
    assert_eq!(
        graph.object(id).unwrap().address,
        address as u64,
        "the object must start exactly at {address:#x}"
    );
    id
}

fn references(graph: &HeapGraph<'_>, id: ObjectId) -> Vec<(ObjectId, u32)> {
    graph.references(id).collect()
}

fn check_known_heap(graph: &HeapGraph<'_>, heap: &KnownHeap, redacted: bool) {
    // Boxes: right size and contents (zero when redacted: they hold no pointers).
    for (index, boxed) in heap.boxes.iter().enumerate() {
        let object = graph.object(id_of(graph, boxed.as_ptr() as usize)).unwrap();
        assert_eq!(object.size as usize, boxed.len());
        if redacted {
            assert!(graph.dump().contents(object).iter().all(|&byte| byte == 0));
        } else {
            assert_eq!(
                graph.dump().contents(object),
                &pattern(index, boxed.len())[..]
            );
        }
    }
    // The Vec's buffer references every box, each from its own slot.
    let buffer = id_of(graph, heap.boxes.as_ptr() as usize);
    let slot_size = std::mem::size_of::<Box<[u8]>>() as u32;
    let mut from_buffer = references(graph, buffer);
    from_buffer.sort_by_key(|&(_, offset)| offset);
    let expected: Vec<(ObjectId, u32)> = heap
        .boxes
        .iter()
        .enumerate()
        .map(|(index, boxed)| {
            (
                id_of(graph, boxed.as_ptr() as usize),
                index as u32 * slot_size,
            )
        })
        .collect();
    assert_eq!(from_buffer, expected);

    // The list: a chain of LIST_LEN nodes, each pointing at the next through
    // its `next` field.
    let next_offset = std::mem::offset_of!(Node, next) as u32;
    let mut node = heap.list.as_deref();
    let mut count = 0;
    while let Some(current) = node {
        let id = id_of(graph, current as *const Node as usize);
        let object = graph.object(id).unwrap();
        assert_eq!(object.size as usize, std::mem::size_of::<Node>());
        if !redacted {
            let value_offset = std::mem::offset_of!(Node, value);
            let value = u64::from_ne_bytes(
                graph.dump().contents(object)[value_offset..value_offset + 8]
                    .try_into()
                    .unwrap(),
            );
            assert_eq!(value, current.value);
        }
        match current.next.as_deref() {
            Some(next) => assert_eq!(
                references(graph, id),
                [(id_of(graph, next as *const Node as usize), next_offset)]
            ),
            None => assert!(references(graph, id).is_empty()),
        }
        count += 1;
        node = current.next.as_deref();
    }
    assert_eq!(count, LIST_LEN);

    // The HashMap: the boxed map points into the *middle* of its table
    // allocation (hashbrown's control bytes), and that one allocation holds
    // a pointer to every value.
    let map_id = id_of(graph, &*heap.map as *const _ as usize);
    let map_refs = references(graph, map_id);
    assert_eq!(
        map_refs.len(),
        1,
        "the map struct holds one pointer: {map_refs:?}"
    );
    let table_id = map_refs[0].0;
    let table = graph.object(table_id).unwrap();
    let ctrl_pointer = {
        let map_object = graph.object(map_id).unwrap();
        let offset = map_refs[0].1 as usize;
        if redacted {
            None
        } else {
            Some(u64::from_ne_bytes(
                graph.dump().contents(map_object)[offset..offset + 8]
                    .try_into()
                    .unwrap(),
            ))
        }
    };
    if let Some(pointer) = ctrl_pointer {
        assert_ne!(pointer, table.address, "hashbrown points inside its table");
        assert!(table.contains(pointer));
    }
    let mut values_from_table: Vec<ObjectId> = references(graph, table_id)
        .iter()
        .map(|&(id, _)| id)
        .collect();
    values_from_table.sort();
    let mut expected_values: Vec<ObjectId> = heap
        .map
        .values()
        .map(|value| id_of(graph, &**value as *const _ as usize))
        .collect();
    expected_values.sort();
    assert_eq!(values_from_table, expected_values);

    // The static's Vec buffer is reachable from a segment root.
    let global = GLOBAL_CACHE.lock().unwrap();
    let global_buffer = id_of(graph, global.as_ptr() as usize);
    assert!(
        graph.root_references().iter().any(|reference| {
            reference.target == global_buffer
                && matches!(
                    graph.root(reference.root).unwrap().kind,
                    RootKind::Segment { .. }
                )
        }),
        "a static's heap buffer must be referenced from a module segment"
    );
    // And the list head (a local of this thread) from the thread's stack.
    let head = id_of(graph, heap.list.as_deref().unwrap() as *const Node as usize);
    assert!(graph.root_references().iter().any(|reference| {
        reference.target == head
            && matches!(
                graph.root(reference.root).unwrap().kind,
                RootKind::ThreadStack { .. }
            )
    }));
}

/// The tracker's statistics once no other thread is allocating: libtest's
/// main thread records the running test (a few small allocations) after it
/// has started the test's thread, and on a loaded machine it can do that
/// while the test runs.
fn settled_stats() -> heapdump::Stats {
    let mut stats = heapdump::stats();
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = heapdump::stats();
        if now == stats {
            break;
        }
        stats = now;
    }
    stats
}

#[test]
fn known_heap_round_trips_in_full_and_redacted_modes() {
    heapdump::set_sample_rate(1);
    let heap = build_known_heap();
    let full_path = temp_path("round-trip-full");
    let redacted_path = temp_path("round-trip-redacted");
    let full_file = std::fs::File::create(&full_path).unwrap();
    let redacted_file = std::fs::File::create(&redacted_path).unwrap();
    let forked_path = temp_path("round-trip-forked");
    let forked_file = std::fs::File::create(&forked_path).unwrap();

    let stats = settled_stats();
    let report = heapdump::write(&full_file).unwrap();
    let redacted_report = heapdump::write_with(
        &redacted_file,
        &heapdump::Options {
            contents: heapdump::ContentsMode::Redacted,
            ..Default::default()
        },
    )
    .unwrap();
    let forked_report = heapdump::write_with(
        &forked_file,
        &heapdump::Options {
            snapshot: heapdump::Snapshot::Fork,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        heapdump::stats(),
        stats,
        "writing a dump allocates nothing tracked"
    );
    assert_eq!(report.objects, stats.live_objects);
    assert_eq!(report.object_bytes, stats.live_bytes);
    assert_eq!(redacted_report.objects, report.objects);
    assert_eq!(forked_report.objects, report.objects);

    read_graph(&full_path, |graph| {
        let dump = graph.dump();
        assert_eq!(dump.objects.len() as u64, stats.live_objects);
        assert_eq!(dump.live_bytes(), stats.live_bytes);
        let recorded = dump.stats.expect("a STATS record");
        assert_eq!(recorded.live_objects, stats.live_objects);
        assert_eq!(recorded.live_bytes, stats.live_bytes);
        assert_eq!(recorded.allocated_objects, stats.allocated_objects);
        assert_eq!(recorded.freed_bytes, stats.freed_bytes);
        assert_eq!(dump.info.sample_rate, 1);
        assert_eq!(dump.info.pid, u64::from(std::process::id()));
        assert!(!dump.modules.is_empty());
        check_known_heap(graph, &heap, false);

        // Rate 1: every box of the known heap has an allocation site with
        // more than the allocator's own frames.
        for boxed in &heap.boxes {
            let object = graph.object(id_of(graph, boxed.as_ptr() as usize)).unwrap();
            let site = object.site.expect("sampled at rate 1");
            assert!(dump.stack(site).unwrap().pcs.len() >= 3);
        }
    });

    read_graph(&redacted_path, |graph| {
        assert_eq!(
            graph.dump().info.contents_mode,
            heapdump::ContentsMode::Redacted
        );
        check_known_heap(graph, &heap, true);
    });

    // Written by a forked child (Snapshot::Fork): the same heap, the same
    // roots (the list head on this thread's stack among them).
    read_graph(&forked_path, |graph| {
        assert_eq!(graph.dump().info.pid, u64::from(std::process::id()));
        check_known_heap(graph, &heap, false);
    });

    std::fs::remove_file(&full_path).unwrap();
    std::fs::remove_file(&redacted_path).unwrap();
    std::fs::remove_file(&forked_path).unwrap();
    drop(heap);
}
