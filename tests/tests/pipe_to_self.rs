//! A stopped-mode dump (`Snapshot::Stop`) into a pipe that a
//! thread of the same process reads used to freeze the process for good:
//! the reading thread is stopped with the others, the pipe fills, and the
//! dump waits for it forever. The writer now sees the pipe's read end among
//! the process's descriptors and fails before freezing anything. The
//! default, a forked snapshot, writes into it.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

use heapdump::{Error, Options, Snapshot};
use heapdump_tests::assert_child_succeeded;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both are new and ours.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// In a forked child (it would hang for good without the check: the
/// parent kills it after 20 s and fails): a thread drains a pipe, the
/// stopped dump into it is refused, and a forked-snapshot dump into the
/// same pipe goes through. The exit code says which step failed.
fn dump_into_own_pipe() -> i32 {
    // Much more than a pipe holds.
    let heap: Vec<Vec<u8>> = (0..256).map(|index| vec![index as u8; 4096]).collect();
    let (read_end, write_end) = pipe();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::fs::File::from(read_end)
            .read_to_end(&mut bytes)
            .map(|_| bytes.len())
    });
    let stopped = Options {
        snapshot: Snapshot::Stop,
        ..Options::default()
    };
    let code = match heapdump::write_with(&write_end, &stopped) {
        Err(Error::PipeReadInProcess { fd, reader }) => {
            let message = Error::PipeReadInProcess { fd, reader }.to_string();
            if message.contains("Snapshot::Fork") {
                0
            } else {
                2
            }
        }
        Err(_) => 3,
        Ok(_) => 4,
    };
    // The default: a forked snapshot.
    let forked = heapdump::write(&write_end);
    drop(write_end);
    let read = reader.join().ok().and_then(Result::ok);
    std::hint::black_box(&heap);
    match (code, forked, read) {
        (0, Ok(report), Some(read))
            if read as u64 == report.file_bytes
                && report.snapshot == heapdump::SnapshotTaken::Forked =>
        {
            0
        }
        (0, Ok(_), _) => 5,
        (0, Err(_), _) => 6,
        (code, _, _) => code,
    }
}

#[test]
fn a_stopped_dump_into_a_pipe_this_process_reads_fails() {
    // SAFETY: the child allocates, spawns a thread, dumps and leaves with
    // _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // A child that hangs must not outlive the test.
        // SAFETY: prctl with an integer argument.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        let code = dump_into_own_pipe();
        // SAFETY: leaving the child without the harness's destructors.
        unsafe { libc::_exit(code) };
    }
    assert_child_succeeded(pid);
}

/// A pipe read by another process is fine: the process holds only its
/// write end.
#[test]
fn a_stopped_dump_into_a_pipe_another_process_reads_succeeds() {
    let mut reader = Command::new("wc")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = reader.stdin.take().unwrap();
    let stopped = Options {
        snapshot: Snapshot::Stop,
        ..Options::default()
    };
    let report = heapdump::write_with(&stdin, &stopped).unwrap();
    assert_eq!(report.snapshot, heapdump::SnapshotTaken::Stopped);
    drop(stdin);
    let output = reader.wait_with_output().unwrap();
    let counted: u64 = String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(counted, report.file_bytes);
}
