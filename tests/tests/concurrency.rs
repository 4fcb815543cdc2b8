//! Dumps while other threads allocate, reallocate and free: no deadlock, no
//! crash, and every dump reads back consistent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heapdump_tests::{read_graph, temp_path};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const WORKERS: usize = 4;
const DUMPS: usize = 200;

/// Allocates, grows and frees blocks of mixed sizes until told to stop.
fn churn(worker: usize, stop: &AtomicBool, operations: &AtomicU64) {
    let mut live: Vec<Vec<u8>> = Vec::new();
    let mut state = worker as u64 * 0x9E37_79B9 + 1;
    while !stop.load(Ordering::Relaxed) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = 8 + (state % 700) as usize;
        match state % 4 {
            0 | 1 => live.push(vec![worker as u8; size]),
            2 if !live.is_empty() => {
                let index = (state as usize / 7) % live.len();
                // Growing a Vec reallocates, often to a different shard.
                live[index].extend(std::iter::repeat_n(1u8, size));
            }
            _ if !live.is_empty() => {
                let index = (state as usize / 13) % live.len();
                live.swap_remove(index);
            }
            _ => {}
        }
        if live.len() > 2000 {
            live.truncate(1000);
        }
        operations.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn two_hundred_dumps_while_four_threads_churn() {
    // A test that deadlocks must fail, not hang CI.
    let finished = Arc::new(AtomicBool::new(false));
    {
        let finished = Arc::clone(&finished);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while Instant::now() < deadline {
                if finished.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!("concurrency test: no progress in 300 s (deadlock?)");
            std::process::abort();
        });
    }

    let stop = Arc::new(AtomicBool::new(false));
    let operations = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let stop = Arc::clone(&stop);
            let operations = Arc::clone(&operations);
            std::thread::spawn(move || churn(worker, &stop, &operations))
        })
        .collect();

    let path = temp_path("concurrency");
    let mut operations_during_dumps = Vec::with_capacity(DUMPS);
    for dump in 0..DUMPS {
        let before = operations.load(Ordering::Relaxed);
        let file = std::fs::File::create(&path).unwrap();
        let report = heapdump::write(&file).unwrap();
        drop(file);
        // Every churning thread was stopped and its stack dumped.
        assert_eq!(
            report.threads_dumped, report.threads,
            "dump {dump}: {report:?}"
        );
        assert!(report.threads > WORKERS as u64, "dump {dump}: {report:?}");
        operations_during_dumps.push(operations.load(Ordering::Relaxed) - before);
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
                // Worker blocks are filled with the worker's number or 1s;
                // a block's contents are never torn by a concurrent free.
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
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    finished.store(true, Ordering::Relaxed);
    std::fs::remove_file(&path).unwrap();
    assert!(
        operations.load(Ordering::Relaxed) > 10_000,
        "the workers made progress"
    );
    eprintln!(
        "{} worker operations; per dump: min {} max {}",
        operations.load(Ordering::Relaxed),
        operations_during_dumps.iter().min().unwrap(),
        operations_during_dumps.iter().max().unwrap()
    );
}
