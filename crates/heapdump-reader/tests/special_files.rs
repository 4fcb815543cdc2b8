//! A path that is not a regular file is a clear error, at once: a FIFO
//! given as the dump used to hang in `open` (waiting for a writer).

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use heapdump_reader::{DumpFile, ErrorKind};

#[test]
fn fifos_and_directories_are_refused_without_waiting() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("special-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("dump.fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());

    for (path, what) in [(fifo.clone(), "a FIFO"), (dir.clone(), "a directory")] {
        // On a thread, so that a regression fails the test instead of
        // hanging it.
        let (sender, receiver) = mpsc::channel();
        let opened = path.clone();
        std::thread::spawn(move || {
            let _ = sender.send(DumpFile::open(&opened).map(|_| ()));
        });
        let result = receiver
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("opening {what} did not return within 10 s"));
        let err = result.expect_err(what);
        assert!(matches!(err.kind, ErrorKind::Io { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&format!("is {what}")), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
