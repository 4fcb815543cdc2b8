//! The tracker's per-thread bookkeeping: threads that come and go, blocks
//! freed by a thread other than the one that allocated them, and
//! over-aligned blocks all end up in the dump exactly, and short-lived
//! threads do not make the tracker's own memory grow.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use heapdump_tests::{assert_child_succeeded, read_graph, temp_path};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const THREADS: usize = 300;
const KEPT_PER_THREAD: usize = 20;

#[repr(align(64))]
struct Line([u8; 64]);

#[repr(align(4096))]
struct Page([u8; 4096]);

#[test]
fn short_lived_threads_cross_thread_frees_and_alignment() {
    // Threads that each keep a few blocks, churn many, and exit.
    let kept: Arc<Mutex<Vec<Box<[u64; 5]>>>> = Arc::default();
    for thread in 0..THREADS {
        let kept = Arc::clone(&kept);
        std::thread::spawn(move || {
            let mut scratch = Vec::new();
            for index in 0..1000u64 {
                scratch.push(vec![index; 1 + index as usize % 16]);
            }
            drop(scratch);
            let mut kept = kept.lock().unwrap();
            for index in 0..KEPT_PER_THREAD {
                kept.push(Box::new([thread as u64, index as u64, 0xfeed, 0, 0]));
            }
        })
        .join()
        .unwrap();
    }

    // A producer allocates, a consumer frees (and keeps every 100th).
    let (sender, receiver) = mpsc::sync_channel::<Vec<u8>>(64);
    let consumer = std::thread::spawn(move || {
        receiver
            .into_iter()
            .enumerate()
            .filter(|(index, _)| index % 100 == 0)
            .map(|(_, block)| block)
            .collect::<Vec<_>>()
    });
    let producer = std::thread::spawn(move || {
        for index in 0..10_000usize {
            sender
                .send(vec![(index % 251) as u8; 24 + index % 200])
                .unwrap();
        }
    });
    producer.join().unwrap();
    let from_producer = consumer.join().unwrap();
    assert_eq!(from_producer.len(), 100);

    let lines: Vec<Box<Line>> = (0..10).map(|i| Box::new(Line([i; 64]))).collect();
    let pages: Vec<Box<Page>> = (0..3).map(|i| Box::new(Page([i; 4096]))).collect();
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(&**line as *const Line as usize % 64, 0);
        assert!(line.0.iter().all(|&byte| byte == index as u8));
    }
    for (index, page) in pages.iter().enumerate() {
        assert_eq!(&**page as *const Page as usize % 4096, 0);
        assert!(page.0.iter().all(|&byte| byte == index as u8));
    }

    let stats = heapdump::stats();
    assert!(
        stats.tracker_bytes < 4 << 20,
        "records and slots of exited threads are reused: {stats:?}"
    );

    let path = temp_path("thread_churn");
    let report = heapdump::write_file(&path).unwrap();
    read_graph(&path, |graph| {
        let dump = graph.dump();
        let stats = dump.stats.expect("a STATS record");
        assert_eq!(stats.live_objects, report.objects);
        assert_eq!(dump.objects.len() as u64, report.objects);
        assert_eq!(stats.live_bytes, dump.live_bytes());
        let find = |address: usize, size: u64| {
            let found = dump
                .objects
                .binary_search_by_key(&(address as u64), |object| object.address)
                .unwrap_or_else(|_| panic!("no object at {address:#x}"));
            assert_eq!(dump.objects[found].size, size, "object at {address:#x}");
        };
        let kept = kept.lock().unwrap();
        assert_eq!(kept.len(), THREADS * KEPT_PER_THREAD);
        for block in kept.iter() {
            find(&**block as *const [u64; 5] as usize, 40);
        }
        for block in &from_producer {
            find(block.as_ptr() as usize, block.capacity() as u64);
        }
        for line in &lines {
            find(&**line as *const Line as usize, 64);
        }
        for page in &pages {
            find(&**page as *const Page as usize, 4096);
        }
    });
    std::fs::remove_file(&path).unwrap();
}

/// A child forked while another thread allocates can still write a dump:
/// the records of threads that do not exist in the child are returned and
/// the tracker's locks released (else the dump would wait for a thread that
/// will never leave the allocator).
#[test]
fn a_forked_child_can_dump() {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                blocks.push(vec![7; 100]);
                if blocks.len() > 1000 {
                    blocks.clear();
                }
            }
        })
    };
    let path = temp_path("forked_child");
    let kept = vec![42u8; 12345];
    for _ in 0..20 {
        // SAFETY: the child only allocates (glibc's malloc and our tracker
        // are fork-safe), writes a dump and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = match heapdump::write_file(&path) {
                Ok(report) if report.objects > 0 && report.threads == 1 => 0,
                Ok(_) => 2,
                Err(_) => 3,
            };
            // SAFETY: leaving the child without running the parent's
            // destructors or test harness.
            unsafe { libc::_exit(code) };
        }
        assert_child_succeeded(pid);
        read_graph(&path, |graph| {
            let address = kept.as_ptr() as u64;
            assert!(graph
                .dump()
                .objects
                .iter()
                .any(|object| object.address == address && object.size == 12345));
        });
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churner.join().unwrap();
    std::fs::remove_file(&path).unwrap();
}

/// A child forked while another thread keeps writing dumps can still
/// allocate and dump: a fork waits for a dump in progress (which holds the
/// loader's lock in `dl_iterate_phdr`, among others, that the child would
/// otherwise find held forever), and the child starts with the tracker's
/// locks released.
#[test]
fn a_child_forked_during_a_dump_can_allocate_and_dump() {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dumper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let sink = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .unwrap();
            let mut dumps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                heapdump::write(&sink).unwrap();
                dumps += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            dumps
        })
    };
    let path = temp_path("forked_during_dump");
    let _heap: Vec<Vec<u8>> = (0..2000).map(|i| vec![i as u8; 512]).collect();
    for _ in 0..20 {
        // SAFETY: as in `a_forked_child_can_dump`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let allocated: Vec<Box<u64>> = (0..1000).map(Box::new).collect();
            let code = match heapdump::write_file(&path) {
                Ok(report) if report.objects >= allocated.len() as u64 => 0,
                Ok(_) => 2,
                Err(_) => 3,
            };
            // SAFETY: as above.
            unsafe { libc::_exit(code) };
        }
        assert_child_succeeded(pid);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(dumper.join().unwrap() > 0);
    let _ = std::fs::remove_file(&path);
}
