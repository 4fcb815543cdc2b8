//! Other threads' stacks and thread-locals are roots: objects held only by a
//! blocked thread's locals or by its `thread_local!` are reachable from that
//! thread's ROOT_THREAD_STACK.

use std::cell::RefCell;
use std::sync::mpsc;

use heapdump_reader::{HeapGraph, ObjectId, RootKind};
use heapdump_tests::{read_graph, temp_path};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

thread_local! {
    static THREAD_CACHE: RefCell<Option<Box<[u64; 16]>>> = const { RefCell::new(None) };
}

/// The threads whose stacks hold a pointer into `target`. (The test's own
/// thread holds the addresses too, as plain integers: conservative scanning
/// counts them, so look for the worker among all holders.)
fn thread_roots_holding(graph: &HeapGraph<'_>, target: ObjectId) -> Vec<u64> {
    graph
        .root_references()
        .iter()
        .filter_map(|reference| {
            if reference.target != target {
                return None;
            }
            match &graph.root(reference.root)?.kind {
                RootKind::ThreadStack { thread_id, .. } => Some(*thread_id),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn blocked_threads_locals_and_thread_locals_are_roots() {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name("holder".into())
        .spawn(move || {
            let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
            let local = Box::new([0x5a5a_5a5a_u64; 32]);
            let in_tls = Box::new([7u64; 16]);
            let tls_address = &*in_tls as *const _ as usize;
            THREAD_CACHE.with(|cache| *cache.borrow_mut() = Some(in_tls));
            ready_tx
                .send((tid, &*local as *const _ as usize, tls_address))
                .unwrap();
            // Blocked in a futex wait while the dump is written.
            release_rx.recv().unwrap();
            std::hint::black_box(&local);
        })
        .unwrap();
    let (worker_tid, local_address, tls_address) = ready_rx.recv().unwrap();

    let path = temp_path("thread-roots");
    let report = heapdump::write_file(&path).unwrap();
    assert!(report.threads >= 2, "{report:?}");
    assert_eq!(report.threads_dumped, report.threads, "{report:?}");
    release_tx.send(()).unwrap();
    worker.join().unwrap();

    read_graph(&path, |graph| {
        let coverage = graph.dump().stats.and_then(|stats| stats.threads);
        assert_eq!(
            coverage,
            Some(heapdump_reader::ThreadCoverage {
                threads: report.threads,
                dumped: report.threads_dumped,
            }),
            "the reader sees the STATS thread counts"
        );
        let local = graph
            .object_at(local_address as u64)
            .expect("the local box");
        let in_tls = graph.object_at(tls_address as u64).expect("the TLS box");
        assert!(
            thread_roots_holding(graph, local).contains(&worker_tid),
            "the blocked thread's stack holds its local box"
        );
        assert!(
            thread_roots_holding(graph, in_tls).contains(&worker_tid),
            "the thread's static TLS (top of its stack mapping) holds the thread-local box"
        );
        let names: Vec<String> = graph
            .dump()
            .roots
            .iter()
            .filter_map(|root| match &root.kind {
                RootKind::ThreadStack { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        assert!(names.iter().any(|name| name == "holder"), "{names:?}");
    });
    std::fs::remove_file(&path).unwrap();
}

/// A redacted dump leaves thread names out (written empty): a name is the
/// program's text and may carry a secret, which then also reached the hprof
/// and dot converted from the dump. The stacks themselves stay roots.
#[test]
fn redacted_dumps_write_thread_names_empty() {
    const SECRET: &str = "tok=hunter2"; // at most 15 bytes: the kernel's comm
    let (ready_tx, ready_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name(SECRET.into())
        .spawn(move || {
            let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
            ready_tx.send(tid).unwrap();
            release_rx.recv().unwrap();
        })
        .unwrap();
    let worker_tid = ready_rx.recv().unwrap();

    let full = temp_path("thread-names-full");
    let redacted = temp_path("thread-names-redacted");
    heapdump::write_file(&full).unwrap();
    let report = heapdump::write_file_with(
        &redacted,
        &heapdump::Options {
            contents: heapdump::ContentsMode::Redacted,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(report.threads_dumped, report.threads, "{report:?}");
    release_tx.send(()).unwrap();
    worker.join().unwrap();

    let thread_names = |path: &std::path::Path| {
        read_graph(path, |graph| {
            graph
                .dump()
                .roots
                .iter()
                .filter_map(|root| match &root.kind {
                    RootKind::ThreadStack { thread_id, name } => Some((*thread_id, name.clone())),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
    };
    // The full dump names the thread (the secret is really there to lose).
    assert!(
        thread_names(&full).contains(&(worker_tid, SECRET.to_string())),
        "{:?}",
        thread_names(&full)
    );
    let names = thread_names(&redacted);
    assert!(names.iter().any(|(tid, _)| *tid == worker_tid), "{names:?}");
    assert!(names.iter().all(|(_, name)| name.is_empty()), "{names:?}");
    let bytes = std::fs::read(&redacted).unwrap();
    assert!(
        !bytes
            .windows(SECRET.len())
            .any(|window| window == SECRET.as_bytes()),
        "the redacted dump holds the thread's name"
    );
    std::fs::remove_file(&full).unwrap();
    std::fs::remove_file(&redacted).unwrap();
}

/// Threads that exit while a dump stops the others are not counted as
/// threads left out of it: the count is of threads that still exist. (A
/// thread gone between the listing of `/proc/self/task` and its stop signal
/// made `threads` exceed `threads_dumped`, and failed the test above in CI.)
#[test]
fn threads_exiting_during_a_dump_are_not_counted_as_missed() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churners: Vec<_> = (0..2)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut spawned = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::spawn(|| std::hint::black_box(Box::new(1u8)))
                        .join()
                        .unwrap();
                    spawned += 1;
                }
                spawned
            })
        })
        .collect();
    let sink = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let mut missed = Vec::new();
    for _ in 0..300 {
        let report = heapdump::write(&sink).unwrap();
        if report.threads_dumped != report.threads {
            missed.push((report.threads, report.threads_dumped));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let spawned: u64 = churners.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(spawned > 100, "the threads came and went: {spawned}");
    assert!(
        missed.is_empty(),
        "(threads, dumped) of dumps that left some out: {missed:?}"
    );
}
