//! A service on tokio's multi-threaded runtime, dumped at the default
//! settings while its requests run: its async handler `svc::login` awaits,
//! then puts a `Session` into a shared map that is never cleaned. The leak
//! report names the map's table by the session type and its site by the
//! handler (`tokio_service::svc::login::{async_fn#0}`), as the user reads
//! them in `heapdump leaks` (its JSON: the report's serde form).
//!
//! The test is a program of its own (`harness = false`), like
//! `default_sites`: the heap is the service's, with no test harness
//! allocating beside it, and nothing has changed the sample rate. The dump
//! is written (forked, the default) by an admin task in the middle of the
//! requests, so how many sessions it holds is known only to be between
//! those done before the dump began and those done when it returned.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heapdump_analysis::leaks::{leaks, LeakOptions, LeakReport};
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_tests::temp_path;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// Requests the load sends.
const REQUESTS: u64 = 20_000;
/// Requests in flight at most.
const IN_FLIGHT: u64 = 200;
/// The admin task dumps once this many requests are done.
const DUMP_AFTER: u64 = REQUESTS / 2;
/// Bytes of each session's token.
const TOKEN_BYTES: usize = 200;
/// Sessions the table may not be the only holder of: the last few made,
/// which words left on a worker's stack may still point at.
const STALE: u64 = 16;

/// A logged-in user's session: what the map leaks.
#[allow(dead_code)]
pub struct Session {
    id: u64,
    user: String,
    token: Vec<u8>,
}

/// The service: its state and its handler.
pub mod svc {
    use super::*;

    /// What the handlers share.
    #[derive(Clone, Default)]
    pub struct State {
        /// The sessions, by id; never cleaned (the leak).
        pub sessions: Arc<Mutex<HashMap<u64, Session>>>,
        /// Requests done (counted under the map's lock).
        pub done: Arc<AtomicU64>,
        /// How many worker threads ran a handler.
        pub workers: Arc<AtomicU64>,
    }

    /// Handles a login: waits (as for the user database), then keeps a
    /// session. Counts the request as done while it holds the map's lock,
    /// so that `done` is the map's length whenever the lock is free.
    pub async fn login(state: State, id: u64) {
        tokio::time::sleep(Duration::from_micros(200 + id % 800)).await;
        tokio::task::yield_now().await;
        let session = Session {
            id,
            user: format!("user-{id:08}@example.com"),
            token: vec![(id % 251) as u8; TOKEN_BYTES],
        };
        let mut sessions = state.sessions.lock().unwrap();
        sessions.insert(black_box(id), session);
        state.done.fetch_add(1, Ordering::SeqCst);
        drop(sessions);
        thread_local!(static COUNTED: Cell<bool> = const { Cell::new(false) });
        if !COUNTED.replace(true) {
            state.workers.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// What the admin task saw of its dump.
struct DumpTaken {
    /// Requests done before the dump began.
    before: u64,
    /// Requests done when it returned.
    after: u64,
}

fn main() {
    tokio_service_dumped_while_requests_run();
    println!("tokio_service: ok");
}

fn tokio_service_dumped_while_requests_run() {
    assert!(
        std::env::var_os(heapdump::SAMPLE_RATE_ENV).is_none(),
        "run without {}",
        heapdump::SAMPLE_RATE_ENV
    );
    assert_eq!(heapdump::sample_rate(), heapdump::DEFAULT_SAMPLE_RATE);
    let path = temp_path("tokio-service");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let state = svc::State::default();
    let taken = runtime.block_on(async {
        // The admin endpoint: dumps in the middle of the load.
        let admin = {
            let (done, path) = (state.done.clone(), path.to_path_buf());
            tokio::spawn(async move {
                while done.load(Ordering::SeqCst) < DUMP_AFTER {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                tokio::task::spawn_blocking(move || {
                    let before = done.load(Ordering::SeqCst);
                    let report =
                        heapdump::write_file(&path).unwrap_or_else(|error| panic!("{error}"));
                    let after = done.load(Ordering::SeqCst);
                    assert_eq!(report.snapshot, heapdump::SnapshotTaken::Forked);
                    DumpTaken { before, after }
                })
                .await
                .unwrap()
            })
        };
        // The load: each request its own task, as a server spawns one per
        // connection, at most `IN_FLIGHT` at once.
        for id in 0..REQUESTS {
            while id - state.done.load(Ordering::SeqCst) >= IN_FLIGHT {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::spawn(svc::login(state.clone(), id));
        }
        while state.done.load(Ordering::SeqCst) < REQUESTS {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        admin.await.unwrap()
    });
    drop(runtime);
    let DumpTaken { before, after } = taken;
    eprintln!("dumped with {before}..={after} of {REQUESTS} requests done");
    // The dump began while requests ran, on more than one worker (they go
    // on while the child writes it, so `after` may be all of them).
    assert!(
        (DUMP_AFTER..REQUESTS).contains(&before),
        "{before}..={after}"
    );
    assert_eq!(state.sessions.lock().unwrap().len() as u64, REQUESTS);
    let workers = state.workers.load(Ordering::SeqCst);
    assert!(workers >= 2, "handlers ran on {workers} worker thread(s)");

    // The block of each user name: `format!`'s capacity for
    // `user-NNNNNNNN@example.com`, the same for every session.
    let user_bytes: BTreeSet<usize> = state
        .sessions
        .lock()
        .unwrap()
        .values()
        .map(|session| session.user.capacity())
        .collect();
    assert_eq!(user_bytes.len(), 1, "{user_bytes:?}");
    let user_bytes = user_bytes.into_iter().next().unwrap() as u64;
    check_the_leak_report(&path, before, after, user_bytes);
    std::fs::remove_file(&path).ok();
    black_box(&state);
}

/// The leak report of the dump at `path`, which holds between `before`
/// and `after` sessions (whose user names are blocks of `user_bytes`), as
/// `heapdump leaks --json` shows it.
fn check_the_leak_report(path: &Path, before: u64, after: u64, user_bytes: u64) {
    let heap = Heap::open(path, &Options::default(), &mut NoProgress)
        .unwrap_or_else(|error| panic!("{error}"));
    let caveats = heap.caveats();
    assert!(caveats.is_empty(), "{caveats:?}");
    let mut report: LeakReport = leaks(heap.graph(), heap.analysis(), &LeakOptions::default());
    report.name_roots(heap.graph(), &heap.root_namer());
    // What `heapdump leaks --json` prints (less the caveats beside it),
    // kept in a file beside the dump for whoever reads a failure.
    let json = serde_json::to_value(&report).unwrap();
    let json_path = path.with_extension("leaks.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let shown = json_path.display();
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let number = |value: &serde_json::Value| value.as_u64().unwrap_or(u64::MAX);

    // The top suspect: the map (its `ArcInner<Mutex<HashMap>>`, or the
    // table itself), whose memory accumulates in the table.
    let suspect = &json["suspects"][0];
    let holder = text(&suspect["object"]["class"]);
    assert!(
        holder.contains("Mutex<HashMap<u64, tokio_service::Session")
            || holder == "hash table of (u64, tokio_service::Session)",
        "top suspect {holder}; see {shown}"
    );
    let point = &suspect["accumulation_point"];
    let table = &point["object"];
    assert_eq!(
        text(&table["class"]),
        "hash table of (u64, tokio_service::Session)",
        "see {shown}"
    );
    // The table points at each session's token and user name: as many as
    // were done between the dump's start and its return.
    let graph = heap.graph();
    let table_id = graph.object_at(number(&table["address"])).unwrap();
    let pointed_at = |size: u64| {
        graph
            .references(table_id)
            .filter(|&(target, _)| graph.object(target).unwrap().size == size)
            .count() as u64
    };
    let sessions = pointed_at(TOKEN_BYTES as u64);
    assert_eq!(pointed_at(user_bytes), sessions);
    assert!(
        (before..=after).contains(&sessions) && sessions < REQUESTS,
        "{sessions} sessions, not {before}..={after} (of {REQUESTS})"
    );
    // The report: it holds them, less the few last made that a worker's
    // stack may still point at (a conservative scan takes those words for
    // references, so the table is not their only holder).
    let held = |class: &str| {
        point["content_by_class"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|share| share["label"] == class)
            .map_or(0, |share| number(&share["objects"]))
    };
    let (tokens, users) = (held("[u8]"), held("str"));
    eprintln!("{sessions} sessions in the table; it holds {tokens} tokens, {users} user names");
    for held in [tokens, users] {
        assert!(
            (sessions.saturating_sub(STALE)..=sessions).contains(&held),
            "{held} held of {sessions}; see {shown}"
        );
    }
    assert_eq!(
        number(&point["direct_children"]),
        tokens + users,
        "see {shown}"
    );
    // It retains itself and them, to the byte.
    assert_eq!(
        number(&table["retained"]),
        number(&table["size"]) + tokens * TOKEN_BYTES as u64 + users * user_bytes,
        "see {shown}"
    );

    // The code that allocated the table: the handler, as the user reads
    // it in the object's line and in the site's frames.
    let handler = "tokio_service::svc::login::{async_fn#0}";
    assert_eq!(text(&table["allocated_in"]), handler, "see {shown}");
    let frames: Vec<String> = suspect["accumulation_site"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    assert!(
        frames.iter().any(|frame| frame.starts_with(handler)),
        "{frames:#?}; see {shown}"
    );
    // And the sessions' payloads: both their sites name it.
    let payload_sites = point["content_by_site"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(payload_sites.len() >= 2, "see {shown}");
    for share in payload_sites.iter().take(2) {
        let frames = share["frames"].as_array().cloned().unwrap_or_default();
        assert!(
            frames
                .iter()
                .take(3)
                .any(|frame| text(frame).starts_with(handler)),
            "{frames:#?}; see {shown}"
        );
    }
    assert!(
        text(&suspect["summary"]).contains(&format!("allocated in {handler}")),
        "see {shown}"
    );
    std::fs::remove_file(&json_path).ok();
}
