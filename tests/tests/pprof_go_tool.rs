//! The pprof converter on dumps of the sample service taken in-process
//! with the tracker (every site recorded), checked by the real
//! `go tool pprof` (Go 1.19's, `/usr/bin/go`, which CI installs):
//!
//! - `-raw` reads both profiles, and the totals of `inuse_objects` and
//!   `inuse_space` are the dump's live objects and bytes exactly;
//! - `-top` names the request handler (`leaky_service::Service::handle`)
//!   with the objects and bytes the dump says were allocated under it;
//! - in the retention profile, the cumulative bytes at the cache's frame
//!   (the table's class) are what the `leaks` report (`heapdump leaks
//!   --json`) says the table retains;
//! - `-diff_base` between two dumps of one process shows the growth under
//!   the handler, as many objects as the dumps say, and the total growth;
//! - the folded stacks sum to the same totals.
//!
//! Without `go` the test prints a loud skip and passes, unless
//! `HEAPDUMP_REQUIRE_ORACLES=1` (CI), where it fails.

use std::path::PathBuf;

use heapdump_analysis::leaks::{leaks, LeakOptions};
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_tests::pprof_oracle::{allocated_under, go, top, write_and_check};
use heapdump_tests::temp_path;
use leaky_service::{scrub_stack, Service};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const REQUESTS: u64 = 3_000;
const MORE: u64 = 500;

#[test]
fn go_tool_pprof_reads_both_profiles_of_the_sample_service() {
    let Some(go) = go() else {
        return;
    };
    heapdump::set_sample_rate(1);
    let mut service = Service::new();
    let first = temp_path("pprof-first");
    let second = temp_path("pprof-second");
    let mut table_addresses = Vec::new();
    // Both batches from one call stack, as in tests/leaky_service.rs.
    let batches = [(REQUESTS, &first), (MORE, &second)];
    for &(requests, path) in std::hint::black_box(&batches[..]) {
        service.handle_many(requests);
        scrub_stack();
        heapdump::write_file(path).unwrap();
        let table_address = service.sessions().values().next().unwrap() as *const _ as usize;
        // Negated, so that the local does not look like a pointer.
        table_addresses.push(!table_address);
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pprof-rust");
    std::fs::create_dir_all(&dir).unwrap();

    let old = Heap::open(&first, &Options::default(), &mut NoProgress).unwrap();
    let new = Heap::open(&second, &Options::default(), &mut NoProgress).unwrap();
    let (old_sites, old_retention) = write_and_check(&go, &old, &dir, "rust-old");
    let (new_sites, _) = write_and_check(&go, &new, &dir, "rust-new");

    // -top names the request handler, with what the dump says it allocated
    // (bytes, then objects).
    const HANDLER: &str = "leaky_service::Service::handle";
    let (handler_objects, handler_bytes) = allocated_under(&old, HANDLER);
    assert!(handler_objects >= 2 * REQUESTS as i64, "{handler_objects}");
    let rows = top(&go, &[old_sites.to_str().unwrap()]);
    assert_eq!(
        rows.get(HANDLER).map(|row| row.1),
        Some(handler_bytes),
        "-top's cumulative bytes of {HANDLER}: {rows:#?}"
    );
    let rows = top(
        &go,
        &["-sample_index=inuse_objects", old_sites.to_str().unwrap()],
    );
    assert_eq!(
        rows.get(HANDLER).map(|row| row.1),
        Some(handler_objects),
        "-top's cumulative objects of {HANDLER}"
    );

    // Retention: the table's frame retains what `leaks` says.
    let table = old
        .graph()
        .object_at(!table_addresses[0] as u64)
        .expect("the table is in the dump");
    let options = LeakOptions {
        threshold_percent: 1.0,
        max_suspects: 100,
        ..LeakOptions::default()
    };
    let report = leaks(old.graph(), old.analysis(), &options);
    let suspect = report
        .suspects
        .iter()
        .find(|suspect| suspect.object.id == table.0)
        .unwrap_or_else(|| panic!("the table is a suspect: {:#?}", report.suspects));
    let dump = old.dump();
    let table_class = dump.class_name(&dump.object_class(old.graph().object(table).unwrap()));
    let rows = top(&go, &["-cum", old_retention.to_str().unwrap()]);
    eprintln!(
        "retention: {table_class:?}: -top {:?}, leaks retains {}",
        rows.get(&table_class),
        suspect.retained_bytes
    );
    assert_eq!(
        rows.get(&table_class).map(|row| row.1),
        Some(suspect.retained_bytes as i64),
        "cumulative bytes at the table's frame"
    );

    // -diff_base: the growth is the handler's, as many objects as the
    // dumps say.
    let rows = top(
        &go,
        &[
            "-sample_index=inuse_objects",
            &format!("-diff_base={}", old_sites.display()),
            new_sites.to_str().unwrap(),
        ],
    );
    let growth = allocated_under(&new, HANDLER).0 - handler_objects;
    assert!(growth >= 2 * MORE as i64, "{growth}");
    assert_eq!(
        rows.get(HANDLER).map(|row| row.1),
        Some(growth),
        "-diff_base: growth under {HANDLER}"
    );
    let total_growth = new.dump().objects.len() as i64 - old.dump().objects.len() as i64;
    let flat_growth: i64 = rows.values().map(|row| row.0).sum();
    assert_eq!(flat_growth, total_growth, "-diff_base: total growth");

    drop((old, new));
    std::fs::remove_file(&first).unwrap();
    std::fs::remove_file(&second).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    drop(service);
}
