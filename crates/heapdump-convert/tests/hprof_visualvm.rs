//! The HPROF converter, checked by VisualVM: a program builds a heap like
//! the sample service's (a session cache behind a static, data on two
//! threads' stacks, an `Rc` cycle of garbage), dumps it with the tracker,
//! converts the dump, and VisualVM's heap library must see what heapdump
//! sees: the same histogram, total bytes, shallow and retained size of
//! every object, and the roots.

mod oracle;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::BufWriter;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};

use heapdump_convert::hprof::{self, Plan};
use heapdump_reader::{parse, DumpFile, HeapGraph};
use heapdump_symbols::RootNamer;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

#[allow(dead_code)]
struct Config {
    name: String,
    upstreams: Vec<String>,
}

#[allow(dead_code)]
struct Session {
    id: u64,
    user: String,
    body: Vec<u8>,
    config: Arc<Config>,
}

#[allow(dead_code)]
struct Subscription {
    topic: String,
    peer: RefCell<Option<Rc<Subscription>>>,
}

/// The leak: a static cache that grows per request.
static SESSIONS: Mutex<Option<HashMap<u64, Session>>> = Mutex::new(None);

/// What the test thread's stack holds during the dump.
type StackHeld = (Vec<Box<[u64; 6]>>, Box<(Vec<u32>, usize)>);

fn build_heap() -> StackHeld {
    let config = Arc::new(Config {
        name: "hprof-test".to_owned(),
        upstreams: (0..4).map(|i| format!("10.0.0.{i}:8080")).collect(),
    });
    let mut sessions = HashMap::new();
    for id in 0..600u64 {
        sessions.insert(
            id,
            Session {
                id,
                user: format!("user-{}", id % 100),
                body: vec![id as u8; 64 + (id as usize * 37) % 192],
                config: Arc::clone(&config),
            },
        );
    }
    *SESSIONS.lock().unwrap() = Some(sessions);
    // Garbage: an Rc cycle nobody holds.
    let left = Rc::new(Subscription {
        topic: "orders".to_owned(),
        peer: RefCell::new(None),
    });
    let right = Rc::new(Subscription {
        topic: "payments".to_owned(),
        peer: RefCell::new(Some(Rc::clone(&left))),
    });
    *left.peer.borrow_mut() = Some(Rc::clone(&right));
    // On this thread's stack: boxes, and a vector held through a box.
    let boxes = (0..50u64).map(|i| Box::new([i; 6])).collect();
    let held = Box::new(((0..1000u32).collect::<Vec<u32>>(), 7usize));
    (boxes, held)
}

#[test]
fn visualvm_sees_what_heapdump_sees() {
    heapdump::set_sample_rate(4096);
    let (boxes, held) = build_heap();
    // Another thread holds a buffer on its stack while the dump is taken.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name("worker".to_owned())
        .spawn(move || {
            let buffer = vec![0x5au8; 20_000];
            ready_tx.send(buffer.as_ptr() as usize).unwrap();
            done_rx.recv().unwrap();
            std::hint::black_box(&buffer);
        })
        .unwrap();
    let worker_buffer = ready_rx.recv().unwrap();

    let dir = oracle::temp_dir();
    let dump_path = dir.join("service.hdump");
    heapdump::write_file(&dump_path).expect("dump");
    done_tx.send(()).unwrap();
    worker.join().unwrap();
    std::hint::black_box((&boxes, &held));

    let file = DumpFile::open(&dump_path).unwrap();
    let dump = parse(file.bytes(), &mut |_, _| {}).unwrap();
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let analysis = heapdump_analysis::analyze(&graph);
    assert!(
        graph.object_at(worker_buffer as u64).is_some(),
        "the worker's buffer is in the dump"
    );

    // Default: unreachable objects left out.
    let options = hprof::Options::default();
    let plan = Plan::new(&graph, &RootNamer::without_binary(), &options);
    // The Rc cycle is garbage unless a stale stack word still points at it
    // (stacks are scanned conservatively).
    eprintln!(
        "unreachable objects left out: {} ({} bytes)",
        plan.dropped_objects(),
        plan.dropped_bytes()
    );
    let hprof_path = dir.join("service.hprof");
    let report = {
        let file = std::fs::File::create(&hprof_path).unwrap();
        plan.write(BufWriter::new(file), &mut |_, _| {}).unwrap()
    };
    let bytes = std::fs::read(&hprof_path).unwrap();
    assert_eq!(bytes.len() as u64, report.file_bytes);
    oracle::check_record_layout(&oracle::hprof_records(&bytes), 1 << 20);
    assert!(
        report.threads >= 2,
        "the test thread and the worker: {report:?}"
    );

    if let Some(view) = oracle::visualvm(&hprof_path, 200, true) {
        oracle::compare("rust sample", &graph, &plan, &report, &analysis, &view);
        assert!(view.roots.get("Java frame").copied().unwrap_or(0) > 0);
        // The static cache is held by a static field, so its holder class
        // (globals.<test binary>@0x…) retains it; the worker's buffer by a
        // stack frame.
        let (_, _, retained) = view.objects[&(worker_buffer as u64)];
        assert_eq!(retained, 20_000);
    }

    // Keeping the garbage: every object is there, rooted.
    let options = hprof::Options {
        keep_unreachable: true,
        ..hprof::Options::default()
    };
    let plan = Plan::new(&graph, &RootNamer::without_binary(), &options);
    assert_eq!(plan.dropped_objects(), 0);
    assert_eq!(
        plan.unreachable_roots() > 0,
        analysis.reachable_objects() < graph.object_count() as u64
    );
    let all_path = dir.join("service-all.hprof");
    let report = {
        let file = std::fs::File::create(&all_path).unwrap();
        plan.write(BufWriter::new(file), &mut |_, _| {}).unwrap()
    };
    assert_eq!(report.objects, graph.object_count() as u64);
    assert_eq!(report.bytes, graph.dump().live_bytes());
    if let Some(view) = oracle::visualvm(&all_path, 10, false) {
        assert_eq!(
            view.bytes,
            graph.dump().live_bytes(),
            "all bytes, garbage too"
        );
        assert_eq!(view.instances, report.objects + report.threads);
        assert_eq!(
            view.roots.get("unknown").copied().unwrap_or(0),
            report.unreachable_roots,
            "{:?}",
            view.roots
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
