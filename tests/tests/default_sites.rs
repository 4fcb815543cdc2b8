//! The sample service dumped at the default settings (no
//! `HEAPDUMP_SAMPLE_RATE`: one full stack per 512 KiB, a short site for
//! every other allocation), as a service runs in production: nearly every
//! object is named by its type and by the program's function that
//! allocated it, and the leak report names the function that fills the
//! cache. The test is a program of its own (`harness = false`), like the
//! sample's binary: the heap is the service's, with no test harness
//! allocating beside it, and nothing has changed the rate.

use heapdump_analysis::leaks::{leaks, LeakOptions, SuspectKind};
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_tests::temp_path;
use leaky_service::{leak_a_cycle, scrub_stack, Service};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// Whether `function` is the program's own code: the sample service's, or
/// this program's.
fn own_code(function: &str) -> bool {
    function.starts_with("leaky_service::") || function.starts_with("default_sites::")
}

fn main() {
    default_settings_name_every_object_and_the_leaking_function();
    println!("default_sites: ok");
}

fn default_settings_name_every_object_and_the_leaking_function() {
    assert!(
        std::env::var_os(heapdump::SAMPLE_RATE_ENV).is_none(),
        "run without {}",
        heapdump::SAMPLE_RATE_ENV
    );
    assert_eq!(heapdump::sample_rate(), heapdump::DEFAULT_SAMPLE_RATE);
    let mut service = Service::new();
    leak_a_cycle();
    service.handle_many(3_000);
    scrub_stack();
    let path = temp_path("default-sites");
    let report = heapdump::write_file(&path).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(report.snapshot, heapdump::SnapshotTaken::Forked);
    // A session inside the cache's table (negated, so that the local does
    // not look like a pointer).
    let session_address = !(service.sessions().values().next().unwrap() as *const _ as usize);

    let heap = Heap::open(&path, &Options::default(), &mut NoProgress)
        .unwrap_or_else(|error| panic!("{error}"));
    let dump = heap.dump();
    let (mut objects, mut bytes) = (0u64, 0u64);
    let (mut named, mut named_bytes) = (0u64, 0u64);
    let (mut short, mut deep) = (0u64, 0u64);
    let mut unnamed = std::collections::BTreeMap::new();
    for object in &dump.objects {
        objects += 1;
        bytes += object.size;
        let stack = object.site.and_then(|site| dump.stack(site));
        match stack {
            Some(stack) if stack.short => short += 1,
            Some(_) => deep += 1,
            None => {}
        }
        let typed = object
            .type_index()
            .and_then(|index| dump.type_info(index))
            .is_some();
        let own_site = stack
            .and_then(|stack| stack.caller_function())
            .is_some_and(own_code);
        if typed && own_site {
            named += 1;
            named_bytes += object.size;
        } else {
            let key = (
                typed,
                stack
                    .map(|stack| stack.frame_labels().into_iter().take(3).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
            *unnamed.entry(key).or_insert(0u64) += 1;
        }
    }
    let share = named as f64 / objects as f64;
    let byte_share = named_bytes as f64 / bytes as f64;
    eprintln!(
        "{named} of {objects} objects ({:.1} %), {named_bytes} of {bytes} bytes ({:.1} %) \
         typed with a site in the program's code; sites: {short} short, {deep} sampled",
        share * 100.0,
        byte_share * 100.0
    );
    assert!(
        share >= 0.95 && byte_share >= 0.95,
        "{named} of {objects} objects, {named_bytes} of {bytes} bytes named; some of the \
         others: {unnamed:#?}"
    );
    // Most sites are short; a few allocations were sampled, and keep their
    // whole stack.
    assert!(short > objects / 2, "{short} short sites of {objects}");

    // The leak: the cache's table, named by its type, and its site names
    // the function that fills it.
    let report = leaks(heap.graph(), heap.analysis(), &LeakOptions::default());
    let suspect = report.suspects.first().expect("a suspect");
    assert_eq!(suspect.kind, SuspectKind::Single, "{:#?}", report.suspects);
    let session = !session_address as u64;
    assert!(
        (suspect.object.address..suspect.object.address + suspect.object.size).contains(&session),
        "the top suspect is the cache's table: {:#?}",
        suspect.object
    );
    assert!(
        suspect
            .object
            .class
            .contains("hash table of (u64, leaky_service::Session)"),
        "{:#?}",
        suspect.object
    );
    // The site: the allocating API (`HashMap::insert`), then its caller.
    assert!(
        suspect
            .site
            .labels
            .iter()
            .take(2)
            .any(|label| label.starts_with("leaky_service::Service::handle ")),
        "{:#?}",
        suspect.site
    );
    let table_site = suspect
        .object
        .site
        .and_then(|site| heap.dump().stack(site))
        .expect("the table has a site");
    assert_eq!(
        table_site.caller_function(),
        Some("leaky_service::Service::handle")
    );
    std::fs::remove_file(&path).ok();
    drop(heap);
    std::hint::black_box(&service);
}
