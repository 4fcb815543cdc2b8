//! `heapdump::dump_on_signal`: `kill -USR2 PID` writes a dump into a
//! directory, from the library's own thread.

use std::time::{Duration, Instant};

use heapdump::{Options, Snapshot};
use heapdump_tests::read_graph;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// The finished dumps in `directory` (temporary files start with a dot).
fn dumps_in(directory: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut dumps: Vec<_> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("heapdump-") && name.ends_with(".hdump")
        })
        .collect();
    dumps.sort();
    dumps
}

/// Waits up to 30 s for `count` dumps in `directory`.
fn wait_for_dumps(directory: &std::path::Path, count: usize) -> Vec<std::path::PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dumps = dumps_in(directory);
        if dumps.len() >= count || Instant::now() > deadline {
            return dumps;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_signal_writes_a_dump_into_the_directory() {
    let directory = std::env::temp_dir().join(format!("heapdump-signal-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let kept: Box<[u8; 777]> = Box::new([7; 777]);
    // Bad signals are refused before anything is set up: uncatchable ones,
    // faults (a handler that returns would fault again, forever), SIGPIPE
    // and SIGCHLD (a dump per broken pipe or child), glibc's reserved ones,
    // and the signal that stops threads during a dump.
    let stop_signal = std::env::var(heapdump::STOP_SIGNAL_ENV)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(libc::SIGRTMIN() + 4);
    for bad in [
        0,
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGPIPE,
        libc::SIGCHLD,
        32,
        stop_signal,
        libc::SIGRTMAX() + 1,
    ] {
        let error = heapdump::dump_on_signal(bad, &directory, Options::default()).unwrap_err();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::InvalidInput,
            "signal {bad}"
        );
    }
    // A directory that is not there is refused now, not at the first
    // signal; the call can then be made again.
    let missing = directory.join("missing");
    let error = heapdump::dump_on_signal(libc::SIGUSR2, missing, Options::default()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    let options = Options {
        snapshot: Snapshot::Fork,
        ..Options::default()
    };
    heapdump::dump_on_signal(libc::SIGUSR2, &directory, options.clone()).unwrap();
    let again = heapdump::dump_on_signal(libc::SIGUSR1, &directory, options).unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);

    // SAFETY: signalling our own process, whose SIGUSR2 handler is ours.
    unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
    let dumps = wait_for_dumps(&directory, 1);
    assert_eq!(dumps.len(), 1, "one signal, one dump: {dumps:?}");
    let name = dumps[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("heapdump-{}-", std::process::id()))
            && name.ends_with("-1.hdump"),
        "{name}"
    );
    read_graph(&dumps[0], |graph| {
        let address = &*kept as *const [u8; 777] as u64;
        let id = graph.object_at(address).expect("the box is in the dump");
        assert_eq!(graph.object(id).unwrap().size, 777);
    });

    // A second signal, a second dump.
    // SAFETY: as above.
    unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
    let dumps = wait_for_dumps(&directory, 2);
    assert_eq!(dumps.len(), 2, "{dumps:?}");
    std::fs::remove_dir_all(&directory).unwrap();
}
