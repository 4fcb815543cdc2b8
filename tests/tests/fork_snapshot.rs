//! `Snapshot::Fork`: a child process writes the dump from a copy-on-write
//! image while the service's threads go on.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use heapdump::{Options, Snapshot};
use heapdump_tests::{read_graph, temp_path, Churn, Watchdog};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const FORK: Options = Options {
    contents: heapdump::ContentsMode::Full,
    snapshot: Snapshot::Fork,
};

/// The tests of this program run on parallel threads; each compares counts
/// that another's allocations would move. Each also gets a watchdog: a
/// child that deadlocks must fail the test, not hang it.
fn one_at_a_time() -> (MutexGuard<'static, ()>, Watchdog) {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    (
        guard,
        Watchdog::start(Duration::from_secs(120), "fork_snapshot"),
    )
}

/// Waits up to 20 s for `fd` to report hang-up (every write end closed),
/// without reading it.
fn hung_up(fd: &impl AsRawFd) -> bool {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while poll.revents & libc::POLLHUP == 0 && Instant::now() < deadline {
        // SAFETY: one valid pollfd; 100 ms at a time.
        unsafe { libc::poll(&mut poll, 1, 100) };
    }
    poll.revents & libc::POLLHUP != 0
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both are fresh descriptors we own.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// With nothing allocating in between, a dump written by a forked child and
/// one written in the process hold the same objects with the same contents,
/// the same roots and the same process id.
#[test]
fn a_forked_dump_equals_a_stopped_one() {
    let _serial = one_at_a_time();
    let heap: Vec<Box<[u64]>> = (0..500u64)
        .map(|index| (0..index % 37 + 1).map(|word| word * index).collect())
        .collect();
    let (stopped_path, forked_path) = (temp_path("stopped"), temp_path("forked"));
    let stopped_file = std::fs::File::create(&stopped_path).unwrap();
    let forked_file = std::fs::File::create(&forked_path).unwrap();
    let stopped = heapdump::write(&stopped_file).unwrap();
    let forked = heapdump::write_with(&forked_file, &FORK).unwrap();
    assert_eq!(forked.threads_dumped, forked.threads);
    assert_eq!(stopped.threads_dumped, stopped.threads);

    // The test harness's threads come and go, and allocate, between the
    // two dumps: compare the module segments, and this test's own boxes.
    let objects = |path: &std::path::Path| {
        read_graph(path, |graph| {
            let dump = graph.dump();
            assert_eq!(dump.info.pid, u64::from(std::process::id()));
            let segments: Vec<String> = dump
                .roots
                .iter()
                .filter(|root| root.kind.label() == "segment")
                .map(|root| root.name.clone())
                .collect();
            let contents: Vec<(u64, Vec<u8>)> = dump
                .objects
                .iter()
                .map(|object| (object.address, dump.contents(object).to_vec()))
                .collect();
            (contents, segments)
        })
    };
    let (stopped_objects, stopped_segments) = objects(&stopped_path);
    let (forked_objects, forked_segments) = objects(&forked_path);
    assert_eq!(forked_objects.len() as u64, forked.objects);
    assert_eq!(forked_segments, stopped_segments);
    for boxed in &heap {
        let address = boxed.as_ptr() as u64;
        let expected: Vec<u8> = boxed.iter().flat_map(|word| word.to_ne_bytes()).collect();
        for objects in [&stopped_objects, &forked_objects] {
            let found = objects
                .iter()
                .find(|(at, _)| *at == address)
                .expect("every box is in both dumps");
            assert_eq!(found.1, expected);
        }
    }
    std::fs::remove_file(&stopped_path).unwrap();
    std::fs::remove_file(&forked_path).unwrap();
}

/// The service's threads run while the child writes: the dump goes into a
/// pipe that a thread of this process reads (with every thread stopped it
/// would fill and block forever), and another thread keeps allocating.
#[test]
fn threads_run_while_a_forked_dump_is_written() {
    let _serial = one_at_a_time();
    // Enough heap that the dump is many times the pipe's 64 KiB buffer.
    let heap: Vec<Vec<u8>> = (0..2000).map(|index| vec![index as u8; 1000]).collect();
    let (read_end, write_end) = pipe();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::fs::File::from(read_end)
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    });
    let churn = Churn::start(1);
    while churn.operations() == 0 {
        std::thread::yield_now();
    }
    let before = churn.operations();
    let report = heapdump::write_with(&write_end, &FORK).unwrap();
    let during = churn.operations() - before;
    drop(write_end);
    let bytes = reader.join().unwrap();
    churn.stop();

    assert_eq!(bytes.len() as u64, report.file_bytes);
    assert!(report.file_bytes > 2_000_000);
    let dump = heapdump_reader::parse(&bytes, &mut |_, _| {}).unwrap();
    assert_eq!(dump.objects.len() as u64, report.objects);
    assert!(report.threads >= 3, "{report:?}");
    assert_eq!(report.threads_dumped, report.threads);
    for block in &heap {
        assert!(dump
            .objects
            .iter()
            .any(|object| object.address == block.as_ptr() as u64 && object.size == 1000));
    }
    assert!(during > 0, "the allocating thread ran during the dump");
}

/// Errors from the child come back as the same errors, and the service
/// keeps running: a closed descriptor, a pipe whose reader is gone.
#[test]
fn a_forked_dump_returns_write_errors() {
    let _serial = one_at_a_time();
    let (read_end, write_end) = pipe();
    drop(read_end);
    let error = heapdump::write_with(&write_end, &FORK).unwrap_err();
    assert!(
        matches!(&error, heapdump::Error::Io(io) if io.raw_os_error() == Some(libc::EPIPE)),
        "{error}"
    );
    let closed = {
        let (read_end, write_end) = pipe();
        drop(read_end);
        use std::os::fd::IntoRawFd;
        let fd = write_end.into_raw_fd();
        // SAFETY: closing the descriptor we own, then using its number.
        unsafe { libc::close(fd) };
        fd
    };
    let error = heapdump::write_raw_fd(closed, &FORK).unwrap_err();
    assert!(
        matches!(&error, heapdump::Error::Io(io) if io.raw_os_error() == Some(libc::EBADF)),
        "{error}"
    );
    // Still dumping fine.
    let path = temp_path("after-errors");
    heapdump::write_file_with(&path, &FORK).unwrap();
    read_graph(&path, |graph| assert!(!graph.dump().objects.is_empty()));
    std::fs::remove_file(&path).unwrap();
}

/// A service that ignores SIGCHLD (its children are reaped by the kernel)
/// or reaps every child itself from a SIGCHLD handler still gets its dump:
/// the child sends no exit signal, so neither takes it.
#[test]
fn a_forked_dump_survives_a_service_that_reaps_children() {
    let _serial = one_at_a_time();
    extern "C" fn reap_every_child(_: libc::c_int) {
        // SAFETY: waitpid is async-signal-safe.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    }
    let reaper = reap_every_child as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for disposition in [libc::SIG_IGN, reaper] {
        // SAFETY: setting a signal disposition, restored below.
        let old = unsafe { libc::signal(libc::SIGCHLD, disposition) };
        // Other children of the service end meanwhile, raising SIGCHLD.
        let spawner = std::thread::spawn(|| {
            for _ in 0..5 {
                let _ = std::process::Command::new("true").status();
            }
        });
        let path = temp_path("sigchld");
        let result = heapdump::write_file_with(&path, &FORK);
        spawner.join().unwrap();
        // SAFETY: restoring it.
        unsafe { libc::signal(libc::SIGCHLD, old) };
        let report = result.unwrap();
        read_graph(&path, |graph| {
            assert_eq!(graph.dump().objects.len() as u64, report.objects)
        });
        std::fs::remove_file(&path).unwrap();
    }
}

/// Forked dumps while four threads allocate, grow and free: each reads back
/// whole, with objects that never overlap.
#[test]
fn forked_dumps_while_threads_churn() {
    let _serial = one_at_a_time();
    let churn = Churn::start(4);
    let path = temp_path("forked-churn");
    for dump in 0..30 {
        let file = std::fs::File::create(&path).unwrap();
        let report = heapdump::write_with(&file, &FORK).unwrap();
        drop(file);
        read_graph(&path, |graph| {
            let parsed = graph.dump();
            assert_eq!(parsed.objects.len() as u64, report.objects, "dump {dump}");
            assert_eq!(parsed.live_bytes(), report.object_bytes);
            assert_eq!(parsed.stats.unwrap().live_objects, report.objects);
            for pair in parsed.objects.windows(2) {
                assert!(pair[0].end() <= pair[1].address, "objects never overlap");
            }
        });
    }
    churn.stop();
    std::fs::remove_file(&path).unwrap();
}

/// While a forked dump's child writes, the service holds nothing of it:
/// another dump starts and finishes (the first one's child is blocked on a
/// pipe nobody reads yet), and a pipe the service closes meanwhile hangs
/// up at once (the child closed its copies of the service's descriptors).
#[test]
fn a_dump_being_written_holds_nothing_of_the_service() {
    let _serial = one_at_a_time();
    // Much more than a pipe holds.
    let _heap: Vec<Vec<u8>> = (0..256).map(|index| vec![index as u8; 4096]).collect();
    let (dump_read, dump_write) = pipe();
    let (other_read, other_write) = pipe();
    let first = std::thread::spawn(move || heapdump::write_with(&dump_write, &FORK));
    let mut reader = std::fs::File::from(dump_read);
    // The first dump's child has started and will block on the full pipe.
    let mut header = [0u8; 16];
    reader.read_exact(&mut header).unwrap();

    drop(other_write);
    assert!(
        hung_up(&other_read),
        "the dump's child kept a descriptor the service closed"
    );
    let path = temp_path("second-dump");
    let second = heapdump::write_file_with(&path, &FORK).unwrap();
    read_graph(&path, |graph| {
        assert_eq!(graph.dump().objects.len() as u64, second.objects)
    });
    std::fs::remove_file(&path).unwrap();

    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    let report = first.join().unwrap().unwrap();
    assert_eq!(rest.len() as u64 + 16, report.file_bytes);
}

/// A service killed while its forked child writes takes the child with it:
/// nobody is left to wait for the dump. Here the "service" is a forked copy
/// of this test, dumping into a pipe that nobody drains (so its child blocks
/// writing); once the service is killed, every write end of the pipe must
/// close (`POLLHUP`) in good time.
#[test]
fn the_child_dies_with_the_service() {
    let _serial = one_at_a_time();
    // Much more than a pipe holds.
    let _heap: Vec<Vec<u8>> = (0..256).map(|index| vec![index as u8; 4096]).collect();
    let (read_end, write_end) = pipe();
    // SAFETY: the child only dumps (allocation-free after the fork) and
    // leaves with _exit.
    let service = unsafe { libc::fork() };
    assert!(service >= 0, "fork failed");
    if service == 0 {
        drop(read_end);
        let code = i32::from(heapdump::write_with(&write_end, &FORK).is_err());
        // SAFETY: leaving the forked test without its destructors.
        unsafe { libc::_exit(code) };
    }
    drop(write_end);
    let mut reader = std::fs::File::from(read_end);
    // The dump's child has started writing: the header is there.
    let mut first = [0u8; 16];
    reader.read_exact(&mut first).unwrap();
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::kill(service, libc::SIGKILL);
        libc::waitpid(service, std::ptr::null_mut(), 0);
    }
    assert!(
        hung_up(&reader),
        "the dump's child outlived the service: the pipe is still open for writing"
    );
}
