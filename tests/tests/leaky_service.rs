//! The sample service, run in-process with the tracker installed: the
//! analyses find its leaks.
//!
//! - `leaks`: the session cache's table is the top suspect and its own
//!   accumulation point, and it retains exactly the table plus every
//!   session's user name and body (the dump records requested sizes, so
//!   there is no allocator rounding to allow for; the test allows 0.5% for
//!   stale words on the stack that a conservative scan takes for pointers).
//! - The `Rc` cycle is unreachable, held only by itself, with its site.
//! - `diff` of dumps before and after N more requests: the user-name site
//!   grew by exactly N objects, and it and the biggest growers (the bodies)
//!   are held by the cache's table.

use heapdump_analysis::diff::{diff, DiffOptions};
use heapdump_analysis::leaks::{leaks, LeakOptions, SuspectKind};
use heapdump_analysis::paths::{path, PathOptions};
use heapdump_analysis::{analyze, Grouping, Reachability};
use heapdump_reader::{DumpFile, HeapGraph, ObjectId};
use heapdump_tests::temp_path;
use leaky_service::{leak_a_cycle, scrub_stack, Service};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const REQUESTS: u64 = 3_000;
const MORE: u64 = 500;

fn graph_of(file: &DumpFile) -> HeapGraph<'_> {
    let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {}).unwrap();
    HeapGraph::build(dump, &mut |_, _| {})
}

#[test]
fn leaks_diff_and_cycle_of_the_sample_service() {
    heapdump::set_sample_rate(1);
    let mut service = Service::new();
    let first = temp_path("leaky-first");
    let second = temp_path("leaky-second");
    let mut table_addresses = Vec::new();
    let cycle = leak_a_cycle();
    // One loop whose body has no branch on the batch, so that both batches
    // of requests come from the same call stack, as a service's request
    // loop does (`black_box` keeps the compiler from unrolling the loop
    // into two call sites).
    let batches = [(REQUESTS, &first), (MORE, &second)];
    for &(requests, path) in std::hint::black_box(&batches[..]) {
        service.handle_many(requests);
        scrub_stack();
        heapdump::write_file(path).unwrap();
        let table_address = service.sessions().values().next().unwrap() as *const _ as usize;
        // Negated, so that the local does not look like a pointer.
        table_addresses.push(!table_address);
    }
    // What the cache owned at the first dump, measured by the program
    // itself (sessions are never changed once inserted).
    let session_bytes: usize = service
        .sessions()
        .iter()
        .filter(|(&id, _)| id < REQUESTS)
        .map(|(_, session)| session.owned_heap_bytes())
        .sum();
    let table_address = !table_addresses[0];
    let new_table_address = !table_addresses[1];

    let first_file = DumpFile::open(&first).unwrap();
    let old = graph_of(&first_file);
    let old_analysis = analyze(&old);

    // The cache's table: the allocation holding the sessions inline.
    let table = old
        .object_at(table_address as u64)
        .expect("the table is in the dump");
    let table_size = old.object(table).unwrap().size;
    let expected = table_size + session_bytes as u64;

    let report = leaks(&old, &old_analysis, &LeakOptions::default());
    let suspect = report.suspects.first().expect("a suspect");
    let explain = || {
        let why = path(
            &old,
            &old_analysis,
            !cycle[0] as u64,
            &PathOptions::default(),
        );
        format!("{:#?}\ncycle: {why:#?}", report.suspects)
    };
    assert_eq!(suspect.kind, SuspectKind::Single, "{}", explain());
    assert_eq!(
        suspect.object.id,
        table.0,
        "the table is the top suspect: {}",
        explain()
    );
    assert_eq!(
        suspect.accumulation_point.object.id,
        table.0,
        "{}",
        explain()
    );
    assert_eq!(suspect.accumulation_point.depth, 0);
    let retained = suspect.retained_bytes;
    assert!(
        retained <= expected && retained as f64 >= expected as f64 * 0.995,
        "retained {retained}, the program built {expected} (table {table_size} + sessions {session_bytes})"
    );
    assert!(suspect.path.is_some(), "a path from a root");
    assert!(
        !suspect.site.is_empty(),
        "the table's site at sample rate 1"
    );
    assert!(suspect.summary.contains("retains"), "{}", suspect.summary);

    // The Rc cycle: both allocations unreachable, held only by the cycle,
    // and listed with their site.
    for negated in cycle {
        let id = old
            .object_at(!negated as u64)
            .expect("the Rc allocation is in the dump");
        assert_eq!(
            old_analysis.reachability(id),
            Reachability::InUnreachableCycle,
            "{}",
            explain()
        );
        let object = old.object(id).unwrap();
        assert!(object.site.is_some());
        assert!(report.unreachable.by_site.iter().any(|group| {
            group.reachability == Reachability::InUnreachableCycle
                && group.group.stack_id == object.site
                && group.objects >= 1
        }));
    }
    assert!(report.unreachable.objects >= 2);

    // diff: the body site grew by exactly MORE objects, and the cache's
    // table holds them in the newer dump.
    let second_file = DumpFile::open(&second).unwrap();
    let new = graph_of(&second_file);
    let new_analysis = analyze(&new);
    let new_table = new.object_at(new_table_address as u64).unwrap();
    let options = DiffOptions {
        growers: 10,
        ..DiffOptions::default()
    };
    let growth = diff((&old, &old_analysis), (&new, &new_analysis), &options);
    // Every request adds one user name, allocated at one site (bodies come
    // from two: `vec![0; n]` takes the zeroed-allocation path).
    let entries = growth
        .growers
        .iter()
        .find(|grower| {
            grower.growth.group.grouping == Grouping::Site
                && grower.growth.object_growth == MORE as i64
        })
        .unwrap_or_else(|| panic!("a site grew by {MORE} objects: {:#?}", growth.by_site));
    let retainer = entries.retainers.first().expect("a retainer");
    assert_eq!(
        retainer.object.as_ref().map(|object| ObjectId(object.id)),
        Some(new_table),
        "the cache's table holds the new objects: {:#?}",
        entries
    );
    assert_eq!(retainer.objects, REQUESTS + MORE, "{entries:#?}");
    assert!(retainer.path.is_some());
    // The biggest growers (bodies by site and by class) are the cache's too.
    assert!(growth.growers[0].growth.byte_growth >= (MORE * 100) as i64);
    for grower in growth.growers.iter().take(3) {
        assert_eq!(
            grower
                .retainers
                .first()
                .and_then(|r| r.object.as_ref())
                .map(|o| ObjectId(o.id)),
            Some(new_table),
            "{grower:#?}"
        );
    }

    std::fs::remove_file(&first).unwrap();
    std::fs::remove_file(&second).unwrap();
    drop(service);
}
