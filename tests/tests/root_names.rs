//! Roots named like Go names them: a static by its demangled path
//! (`root_names::AUDIT_LOG+0x10`, not `_ZN10root_names9AUDIT_LOG17h…E`),
//! and a word of a thread's stack by the function whose frame holds it
//! (found from the frame-pointer chain in the dumped stack), with the
//! line of the call that frame is in.

use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{mpsc, Mutex};

use heapdump_inspect::reader::RootKind;
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_tests::temp_path;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// A static whose buffer pointer is not its first word.
static AUDIT_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A static that is one pointer.
static CURRENT: AtomicPtr<[u64; 8]> = AtomicPtr::new(std::ptr::null_mut());

/// Holds a buffer in its own frame while the dump is written.
#[inline(never)]
fn hold_buffer(ready: mpsc::Sender<(u64, usize)>, release: mpsc::Receiver<()>) {
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
    let buffer = Box::new([0x5a5a_5a5a_u64; 40]);
    // The box lives in this frame's memory (its address is taken).
    black_box(&buffer);
    // Negated: the test thread must not hold a pointer to it.
    ready.send((tid, !(&*buffer as *const _ as usize))).unwrap();
    release.recv().unwrap();
    black_box(&buffer);
}

#[test]
fn statics_by_path_and_stack_words_by_frame() {
    AUDIT_LOG
        .lock()
        .unwrap()
        .push("user 7 logged in".to_owned());
    let current = Box::into_raw(Box::new([3u64; 8]));
    CURRENT.store(current, Ordering::Relaxed);

    let (ready_tx, ready_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name("holder".into())
        .spawn(move || hold_buffer(ready_tx, release_rx))
        .unwrap();
    let (worker_tid, buffer) = ready_rx.recv().unwrap();
    let path = temp_path("root-names");
    heapdump::write_file(&path).unwrap_or_else(|error| panic!("{error}"));
    release_tx.send(()).unwrap();
    worker.join().unwrap();

    // No binary given: the executable at the path the dump records names
    // statics and frames (its build-id checked).
    let heap = Heap::open(&path, &Options::default(), &mut NoProgress)
        .unwrap_or_else(|error| panic!("{error}"));
    let graph = heap.graph();
    let namer = heap.root_namer();
    let names_of = |address: usize| -> Vec<(String, Option<u64>)> {
        let target = graph.object_at(address as u64).expect("an object");
        graph
            .root_references()
            .iter()
            .filter(|reference| reference.target == target)
            .map(|reference| {
                let root = graph.root(reference.root).unwrap();
                let thread = match root.kind {
                    RootKind::ThreadStack { thread_id, .. } => Some(thread_id),
                    _ => None,
                };
                (namer.reference_name(graph, reference), thread)
            })
            .collect()
    };

    // The static at offset 0: its path alone. (Read back, or the compiler
    // may drop a static that is only ever written.)
    assert_eq!(black_box(CURRENT.load(Ordering::Relaxed)), current);
    let names = names_of(current as usize);
    assert!(
        names.iter().any(|(name, _)| name == "root_names::CURRENT"),
        "{names:?}"
    );
    // The log's buffer pointer is inside the static: path and offset.
    let log_buffer = AUDIT_LOG.lock().unwrap().as_ptr() as usize;
    let names = names_of(log_buffer);
    let word = (0..std::mem::size_of_val(&AUDIT_LOG))
        .step_by(8)
        .find(|offset| unsafe {
            ((&AUDIT_LOG as *const _ as *const u8).add(*offset) as *const usize).read()
                == log_buffer
        })
        .expect("the buffer pointer is a word of the static");
    let expected = match word {
        0 => "root_names::AUDIT_LOG".to_owned(),
        offset => format!("root_names::AUDIT_LOG+{offset:#x}"),
    };
    assert!(
        names.iter().any(|(name, _)| *name == expected),
        "{expected} in {names:?}"
    );

    // The worker's stack word: the frame of hold_buffer, in this file.
    let names = names_of(!buffer);
    let held: Vec<&String> = names
        .iter()
        .filter(|(_, thread)| *thread == Some(worker_tid))
        .map(|(name, _)| name)
        .collect();
    assert!(
        !held.is_empty(),
        "the worker's stack holds the buffer: {names:?}"
    );
    assert!(
        held.iter().any(|name| {
            name.starts_with("root_names::hold_buffer (")
                && name.contains("root_names.rs:")
                && name.contains(&format!("(thread {worker_tid} \"holder\", frame "))
        }),
        "{held:?}"
    );
    assert!(heap.stack_frames().threads() >= 2);
    std::fs::remove_file(&path).ok();
}
