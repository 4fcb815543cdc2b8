//! `heapdump waste` on a dump of the sample service, in-process with the
//! tracker installed: requests whose bodies are equal (the service's
//! bodies repeat every 251 × 192 request ids: a byte of the id modulo 251,
//! a length of the id modulo 192) give duplicate values, and the report
//! finds exactly the groups the service holds, counted from its own
//! sessions, each with the copies' bytes and their holder, the cache's
//! table.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use heapdump_analysis::waste::{waste, WasteOptions};
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_tests::temp_path;
use leaky_service::{scrub_stack, Service};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const REQUESTS: u64 = 600;
/// Request ids this far apart have equal bodies.
const PERIOD: u64 = 251 * 192;
/// Requests repeated one period later.
const REPEATED: u64 = 40;

#[test]
fn waste_finds_the_services_equal_bodies() {
    heapdump::set_sample_rate(1);
    let mut service = Service::new();
    service.handle_many(REQUESTS);
    for id in 0..REPEATED {
        std::hint::black_box(service.handle(PERIOD + id));
        // And a third copy of every fourth.
        if id % 4 == 0 {
            std::hint::black_box(service.handle(2 * PERIOD + id));
        }
    }
    // The groups of equal bodies, counted from the sessions themselves:
    // (length, hash of the body) -> the bodies' addresses (no copy of a
    // body, which would be one more in the dump).
    let mut bodies: HashMap<(usize, u64), Vec<u64>> = HashMap::new();
    for session in service.sessions().values() {
        let body = session.body();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut hasher);
        bodies
            .entry((body.len(), hasher.finish()))
            .or_default()
            .push(session.buffer_addresses()[1] as u64);
    }
    bodies.retain(|_, addresses| addresses.len() > 1);
    assert_eq!(bodies.len() as u64, REPEATED);
    let table = service.sessions().values().next().unwrap() as *const _ as usize;
    // Negated, so that the local does not look like a pointer.
    let table = !table;
    let path = temp_path("waste");
    scrub_stack();
    heapdump::write_file(&path).unwrap();

    let heap = Heap::open(&path, &Options::default(), &mut NoProgress).unwrap();
    let (graph, analysis) = (heap.graph(), heap.analysis());
    let report = waste(
        graph,
        analysis,
        &WasteOptions {
            limit: usize::MAX,
            referrers: 10,
        },
    );
    let table_class = {
        let dump = graph.dump();
        let table = graph
            .object_at(!table as u64)
            .expect("the table is in the dump");
        let object = graph.object(table).unwrap();
        dump.class_name(&dump.object_class(object))
    };
    for (&(length, _), addresses) in &bodies {
        let row = report
            .values
            .rows
            .iter()
            .find(|row| addresses.contains(&row.example))
            .unwrap_or_else(|| panic!("no group of the {} {length}-byte copies", addresses.len()));
        assert_eq!(row.count, addresses.len() as u64, "{row:?}");
        assert_eq!(row.size, length as u64);
        assert_eq!(row.length, length as u64);
        assert_eq!(row.wasted_bytes, (row.count - 1) * row.size);
        // Every copy is held from the cache's table (the sessions live
        // inline in it).
        let from_table: u64 = row
            .referrers
            .iter()
            .filter(|referrer| referrer.class == table_class)
            .map(|referrer| referrer.count)
            .sum();
        assert_eq!(from_table, row.count, "{:?}", row.referrers);
    }
    let extra: u64 = bodies.values().map(|a| a.len() as u64 - 1).sum();
    assert!(report.values.extra_copies >= extra);
    // A Rust dump names no collections and no strings.
    assert_eq!(report.collections.examined, 0);
    assert_eq!(report.strings.examined, 0);
    drop(heap);
    let _ = std::fs::remove_file(&path);
}
