//! `dump_on_signal` when the pipe that wakes its thread is closed under it
//! (a daemoniser closing every descriptor, say): the library's thread must
//! end, not write dumps in a loop.

use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// Whether a thread named `name` runs in this process.
fn thread_named(name: &str) -> bool {
    std::fs::read_dir("/proc/self/task").unwrap().any(|task| {
        let comm = task.unwrap().path().join("comm");
        std::fs::read_to_string(comm).is_ok_and(|comm| comm.trim() == name)
    })
}

/// This process's open descriptors.
fn descriptors() -> Vec<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn the_signal_thread_ends_when_its_pipe_is_closed() {
    let directory =
        std::env::temp_dir().join(format!("heapdump-signal-closed-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let before = descriptors();
    heapdump::dump_on_signal(libc::SIGUSR2, &directory, heapdump::Options::default()).unwrap();
    // The pipe's write end: the new descriptor opened write-only.
    let write_end = descriptors()
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .find(|fd| {
            // SAFETY: asking a descriptor's flags.
            let flags = unsafe { libc::fcntl(*fd, libc::F_GETFL) };
            flags >= 0 && flags & libc::O_ACCMODE == libc::O_WRONLY
        })
        .expect("dump_on_signal opened a pipe");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !thread_named("heapdump-signal") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(thread_named("heapdump-signal"), "the thread started");

    // SAFETY: closing the library's descriptor under it, as a daemoniser's
    // close-everything loop would.
    unsafe { libc::close(write_end) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while thread_named("heapdump-signal") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!thread_named("heapdump-signal"), "the thread ended");
    let dumps = std::fs::read_dir(&directory).unwrap().count();
    assert_eq!(dumps, 0, "no signal, no dump");
    std::fs::remove_dir_all(&directory).unwrap();
}
