//! Dumps while other threads allocate, reallocate and free: no deadlock, no
//! crash, and every dump reads back consistent.

use std::time::Duration;

use heapdump_tests::{read_graph, temp_path, Churn, Watchdog};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const WORKERS: u64 = 4;
const DUMPS: usize = 200;

#[test]
fn two_hundred_dumps_while_four_threads_churn() {
    let _watchdog = Watchdog::start(Duration::from_secs(300), "concurrency test");
    let churn = Churn::start(WORKERS);

    let path = temp_path("concurrency");
    let mut operations_during_dumps = Vec::with_capacity(DUMPS);
    for dump in 0..DUMPS {
        let before = churn.operations();
        let file = std::fs::File::create(&path).unwrap();
        let report = heapdump::write(&file).unwrap();
        drop(file);
        // Every churning thread was stopped and its stack dumped.
        assert_eq!(
            report.threads_dumped, report.threads,
            "dump {dump}: {report:?}"
        );
        assert!(report.threads > WORKERS, "dump {dump}: {report:?}");
        operations_during_dumps.push(churn.operations() - before);
        // Read back every tenth dump in full (reading all 200 adds nothing
        // but time); every dump's END record was checked by the writer's
        // report against what the reader will see.
        if dump % 10 == 0 || dump == DUMPS - 1 {
            read_graph(&path, |graph| {
                let dump = graph.dump();
                let stats = dump.stats.expect("a STATS record");
                assert_eq!(dump.objects.len() as u64, report.objects);
                assert_eq!(
                    stats.live_objects, report.objects,
                    "STATS agrees with OBJECTs"
                );
                assert_eq!(stats.live_bytes, dump.live_bytes());
                assert_eq!(report.object_bytes, dump.live_bytes());
                for pair in dump.objects.windows(2) {
                    assert!(pair[0].end() <= pair[1].address, "objects never overlap");
                }
                // Every object comes with its whole contents.
                for object in &dump.objects {
                    assert_eq!(dump.contents(object).len() as u64, object.size);
                }
            });
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.len() as u64, report.file_bytes);
            heapdump_reader::parse(&bytes, &mut |_, _| {})
                .unwrap_or_else(|error| panic!("dump {dump}: {error}"));
        }
    }
    let operations = churn.stop();
    std::fs::remove_file(&path).unwrap();
    assert!(operations > 10_000, "the workers made progress");
    eprintln!(
        "{operations} worker operations; per dump: min {} max {}",
        operations_during_dumps.iter().min().unwrap(),
        operations_during_dumps.iter().max().unwrap()
    );
}
