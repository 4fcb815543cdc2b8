//! Dumps on a signal: `kill -USR2 PID` writes a dump of a running service
//! that has no admin endpoint for it.
//!
//! The signal handler only writes a byte to a pipe (async-signal-safe); a
//! thread of ours reads the pipe and writes each dump with
//! [`write_file_with`], as any other thread would.

use core::sync::atomic::{AtomicI32, Ordering};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use crate::{write_file_with, Options};

/// The pipe's write end, for the handler; -1 until [`dump_on_signal`].
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Writes a heap dump into `directory` each time the process receives
/// `signal` (`SIGUSR2`, say: `kill -USR2 PID`), from a thread named
/// `heapdump-signal`. Each file is named `heapdump-PID-SECONDS-N.hdump` (the
/// Unix time, and the dump's number in this process), written as
/// [`write_file_with`] writes (mode 0600, whole or not at all), and one
/// line on stderr says where it went, or why it failed. Signals that arrive
/// while a dump is written make one more dump, not one each.
///
/// Once per process: a second call fails with `AlreadyExists`. `signal`
/// must be one a process can catch, and not the one that stops threads
/// during a dump ([`STOP_SIGNAL_ENV`](crate::STOP_SIGNAL_ENV)).
pub fn dump_on_signal(
    signal: i32,
    directory: impl Into<PathBuf>,
    options: Options,
) -> io::Result<()> {
    let stop_signal = crate::threads::stop_signal();
    if signal <= 0
        || signal > libc::SIGRTMAX()
        || signal == libc::SIGKILL
        || signal == libc::SIGSTOP
        || Some(signal) == stop_signal
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signal} cannot trigger heap dumps"),
        ));
    }
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and ours.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    if WAKE_FD
        .compare_exchange(-1, fds[1], Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "heap dumps on a signal are already set up",
        ));
    }
    // The handler's end stays open for the life of the process.
    std::mem::forget(write_end);
    let directory = directory.into();
    std::thread::Builder::new()
        .name("heapdump-signal".into())
        .spawn(move || dump_when_woken(read_end, &directory, &options))?;
    // SAFETY: a handler that only calls write(2) and restores errno.
    let installed = unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = wake_dumper as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, core::ptr::null_mut()) == 0
    };
    if installed {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

extern "C" fn wake_dumper(_signal: libc::c_int) {
    // SAFETY: errno is thread-local; restored so the interrupted code never
    // sees ours. write(2) is async-signal-safe; a full pipe means a dump is
    // already due, so a failed write loses nothing.
    unsafe {
        let saved_errno = *libc::__errno_location();
        libc::write(WAKE_FD.load(Ordering::Relaxed), [1u8].as_ptr().cast(), 1);
        *libc::__errno_location() = saved_errno;
    }
}

/// The `heapdump-signal` thread: a dump for each wake-up.
fn dump_when_woken(wake: OwnedFd, directory: &std::path::Path, options: &Options) {
    use std::os::fd::AsRawFd;
    let mut dumps = 0u64;
    loop {
        let mut poll = libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut poll, 1, -1) } < 0 {
            continue; // EINTR
        }
        // Take every pending wake-up: they all ask for the same dump.
        let mut drained = [0u8; 64];
        // SAFETY: reading into our buffer from our non-blocking pipe.
        while unsafe { libc::read(wake.as_raw_fd(), drained.as_mut_ptr().cast(), 64) } > 0 {}
        dumps += 1;
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let path = directory.join(format!(
            "heapdump-{}-{seconds}-{dumps}.hdump",
            std::process::id()
        ));
        match write_file_with(&path, options) {
            Ok(report) => eprintln!(
                "heapdump: wrote {} ({} objects, {} bytes live)",
                path.display(),
                report.objects,
                report.object_bytes
            ),
            Err(error) => eprintln!("heapdump: no dump in {}: {error}", path.display()),
        }
    }
}
