//! The production defaults: a dump is a forked snapshot, and where the fork
//! fails (here: a seccomp filter forbids it, as a sandbox would) the dump
//! is written with the threads stopped instead, and the report says why;
//! a `HEAPDUMP_SAMPLE_RATE` that is not a number is refused with one line
//! on stderr, the default rate is used, and the dump's report and
//! `dump_on_signal` say so.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Command;

use heapdump::{Error, SnapshotTaken};
use heapdump_tests::assert_child_succeeded;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// Makes `clone` with no flags (a bare fork, as the writer forks) fail
/// with `EPERM` in this process from now on; threads (clone with flags, or
/// clone3) are still allowed. x86_64 only.
#[cfg(target_arch = "x86_64")]
fn forbid_fork() -> bool {
    // struct sock_filter: code, jt, jf, k.
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    let filter = [
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        }, // nr
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 3,
            k: libc::SYS_clone as u32,
        },
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 16,
        }, // args[0], low half
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: 0,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        },
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with integer arguments and a valid filter program.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ) == 0
    }
}

/// In the forked child: the exit code says which step failed.
#[cfg(target_arch = "x86_64")]
fn dump_without_fork() -> i32 {
    let heap: Vec<Vec<u8>> = (0..64).map(|index| vec![index as u8; 1024]).collect();
    if !forbid_fork() {
        return 10;
    }
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return 11;
    };
    // The default asks for a fork; it fails, and the dump is written with
    // the threads stopped.
    let report = match heapdump::write(&null) {
        Ok(report) => report,
        Err(_) => return 12,
    };
    if report.snapshot != (SnapshotTaken::StoppedForkFailed { errno: libc::EPERM }) {
        return 13;
    }
    let warnings = report.warnings();
    if !(warnings.len() == 1
        && warnings[0].contains("fork")
        && warnings[0].contains("stopped for the whole dump"))
    {
        return 14;
    }
    if report.objects < 64 {
        return 15;
    }
    // Into a pipe this process reads, stopping would freeze it: the failed
    // fork fails the dump instead.
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return 16;
    }
    // SAFETY: both are new and ours.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let code = match heapdump::write(&write_end) {
        Err(Error::Io(error)) if error.raw_os_error() == Some(libc::EPERM) => 0,
        Err(_) => 17,
        Ok(_) => 18,
    };
    drop((read_end, write_end));
    std::hint::black_box(&heap);
    code
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_dump_falls_back_to_stopping_where_it_cannot_fork() {
    // SAFETY: the child only allocates, dumps and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: prctl with an integer argument.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        let code = dump_without_fork();
        // SAFETY: leaving the child without the harness's destructors.
        unsafe { libc::_exit(code) };
    }
    assert_child_succeeded(pid);
}

#[test]
fn a_default_dump_is_forked() {
    let kept = vec![7u8; 4096];
    let report = heapdump::write(std::fs::File::create("/dev/null").unwrap()).unwrap();
    assert_eq!(report.snapshot, SnapshotTaken::Forked);
    assert!(report.warnings().is_empty(), "{:?}", report.warnings());
    std::hint::black_box(&kept);
}

/// Set in the environment of this test's own re-run (below).
const CHILD_ENV: &str = "HEAPDUMP_TEST_BAD_RATE_CHILD";

/// Run in a process started with `HEAPDUMP_SAMPLE_RATE=12kb`: the rate
/// was refused at the first allocation.
fn bad_rate_child() {
    assert_eq!(heapdump::sample_rate(), heapdump::DEFAULT_SAMPLE_RATE);
    let kept = vec![1u8; 100];
    let report = heapdump::write(std::fs::File::create("/dev/null").unwrap()).unwrap();
    assert!(report.sample_rate_env_refused);
    let warnings = report.warnings();
    assert!(
        warnings
            .iter()
            .any(|warning| warning.contains("HEAPDUMP_SAMPLE_RATE=\"12kb\"")),
        "{warnings:?}"
    );
    let error = heapdump::dump_on_signal(libc::SIGUSR2, "/tmp", Default::default()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        error.to_string().contains("HEAPDUMP_SAMPLE_RATE"),
        "{error}"
    );
    std::hint::black_box(&kept);
    // Many more allocations: still one line on stderr.
    let many: Vec<Box<u64>> = (0..10_000).map(Box::new).collect();
    std::hint::black_box(&many);
}

#[test]
fn a_bad_sample_rate_is_refused_once_with_a_message() {
    if std::env::var_os(CHILD_ENV).is_some() {
        bad_rate_child();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_bad_sample_rate_is_refused_once_with_a_message",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env(heapdump::SAMPLE_RATE_ENV, "12kb")
        .output()
        .unwrap();
    let mut stderr = String::new();
    output
        .stderr
        .as_slice()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("HEAPDUMP_SAMPLE_RATE"))
        .collect();
    assert_eq!(
        lines,
        [
            "heapdump: HEAPDUMP_SAMPLE_RATE=\"12kb\" is refused (it must be a whole number of \
             bytes, 1 or more; 1 records every allocation's stack); using the default, 524288"
        ],
        "{stderr}"
    );
}
