//! Dumps on a signal: `kill -USR2 PID` writes a dump of a running service
//! that has no admin endpoint for it.
//!
//! The signal handler only writes a byte to a pipe (async-signal-safe); a
//! thread of ours reads the pipe and writes each dump with
//! [`write_file_with`], as any other thread would.

use core::sync::atomic::{AtomicI32, Ordering};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{write_file_with, Options};

/// The pipe's write end, for the handler; -1 until [`dump_on_signal`].
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// The process that set it up: a child forked without exec inherits the
/// handler and the pipe, and must not make its parent dump.
static OWNER_PID: AtomicI32 = AtomicI32::new(0);
/// Set up already (guarded: one set-up at a time, and a failed one can be
/// retried).
static SET_UP: Mutex<bool> = Mutex::new(false);

/// Writes a heap dump into `directory` each time the process receives
/// `signal` (`SIGUSR2`, say: `kill -USR2 PID`), from a thread named
/// `heapdump-signal`. Each file is named `heapdump-PID-SECONDS-N.hdump` (the
/// Unix time, and the dump's number in this process), written as
/// [`write_file_with`] writes (mode 0600, whole or not at all), and one
/// line on stderr says where it went, or why it failed. Signals that arrive
/// while a dump is written make one more dump, not one each.
///
/// `signal` is `SIGHUP`, `SIGUSR1`, `SIGUSR2` or a real-time signal, not the
/// one that stops threads during a dump
/// ([`STOP_SIGNAL_ENV`](crate::STOP_SIGNAL_ENV)); its handler replaces any
/// other. `directory` must exist; a relative path is taken from the current
/// directory now. Once per process: a second call fails with
/// `AlreadyExists` (a failed one can be retried). A child forked without
/// `exec` ignores the signal. A [`STOP_SIGNAL_ENV`](crate::STOP_SIGNAL_ENV)
/// that names no real-time signal, or a
/// [`SAMPLE_RATE_ENV`](crate::SAMPLE_RATE_ENV) that is not a number of
/// bytes, fails the call with `InvalidInput`.
///
/// With `Options::default()` each dump is a forked snapshot
/// ([`Snapshot::Fork`](crate::Snapshot::Fork)): the service's threads are
/// stopped only while the process forks, not while the dump is written;
/// the stderr line says so when the fork failed and they were stopped.
pub fn dump_on_signal(
    signal: i32,
    directory: impl Into<PathBuf>,
    options: Options,
) -> io::Result<()> {
    let triggers = [libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2];
    let real_time = libc::SIGRTMIN()..=libc::SIGRTMAX();
    // A refused HEAPDUMP_STOP_SIGNAL would fail every dump: say so now.
    let stop_signal = crate::threads::stop_signal()
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?;
    // A refused HEAPDUMP_SAMPLE_RATE leaves the default in force: say so
    // now, where the service can still act on it.
    if crate::tracker::env_rate_is_refused() {
        let value = std::env::var_os(crate::SAMPLE_RATE_ENV).unwrap_or_default();
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}={:?} is refused: it must be a whole number of bytes, 1 or more (1 \
                 records every allocation's stack); unset it for the default, {}",
                crate::SAMPLE_RATE_ENV,
                value.to_string_lossy(),
                crate::DEFAULT_SAMPLE_RATE
            ),
        ));
    }
    if !(triggers.contains(&signal) || real_time.contains(&signal)) || Some(signal) == stop_signal {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "signal {signal} cannot trigger heap dumps: use SIGHUP, SIGUSR1, SIGUSR2 or a \
                 real-time signal other than the dump's stop signal"
            ),
        ));
    }
    let directory = std::path::absolute(directory.into())?;
    if !directory.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", directory.display()),
        ));
    }
    let mut set_up = SET_UP
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *set_up {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "heap dumps on a signal are already set up",
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
    std::thread::Builder::new()
        .name("heapdump-signal".into())
        .spawn(move || dump_when_woken(read_end, &directory, &options))?;
    // From here on the thread ends when `write_end` closes.
    OWNER_PID.store(std::process::id() as i32, Ordering::Relaxed);
    WAKE_FD.store(write_end.as_raw_fd(), Ordering::Release);
    // SAFETY: a handler that only calls getpid(2) and write(2) and restores
    // errno.
    let installed = unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = wake_dumper as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, core::ptr::null_mut()) == 0
    };
    if !installed {
        let error = io::Error::last_os_error();
        WAKE_FD.store(-1, Ordering::Release);
        return Err(error); // dropping `write_end` ends the thread
    }
    // The handler's end stays open for the life of the process.
    let _ = write_end.into_raw_fd();
    *set_up = true;
    Ok(())
}

extern "C" fn wake_dumper(_signal: libc::c_int) {
    // SAFETY: errno is thread-local; restored so the interrupted code never
    // sees ours. getpid(2) and write(2) are async-signal-safe; a full pipe
    // means a dump is already due, so a failed write loses nothing.
    unsafe {
        let saved_errno = *libc::__errno_location();
        let fd = WAKE_FD.load(Ordering::Acquire);
        if fd >= 0 && crate::sys::process_id() == OWNER_PID.load(Ordering::Relaxed) {
            libc::write(fd, [1u8].as_ptr().cast(), 1);
        }
        *libc::__errno_location() = saved_errno;
    }
}

/// The `heapdump-signal` thread: a dump for each wake-up, until the pipe's
/// write end closes (the set-up failed, or the service closed every
/// descriptor).
fn dump_when_woken(wake: OwnedFd, directory: &Path, options: &Options) {
    let mut dumps = 0u64;
    loop {
        let mut poll = libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut poll, 1, -1) } < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if poll.revents & libc::POLLNVAL != 0 {
            // The service closed our descriptor: its number may be someone
            // else's by now, so it is not ours to close again.
            let _ = wake.into_raw_fd();
            return;
        }
        // Take every pending wake-up: they all ask for the same dump.
        let mut woken = false;
        let mut drained = [0u8; 64];
        loop {
            // SAFETY: reading into our buffer from our non-blocking pipe.
            let read = unsafe { libc::read(wake.as_raw_fd(), drained.as_mut_ptr().cast(), 64) };
            if read > 0 {
                woken = true;
                continue;
            }
            if read == 0 {
                // End of file: nobody can wake us any more.
                if woken {
                    break;
                }
                return;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => break, // drained
                _ => {
                    // The descriptor is gone (see POLLNVAL above).
                    let _ = wake.into_raw_fd();
                    return;
                }
            }
        }
        if !woken {
            continue;
        }
        dumps += 1;
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let path = directory.join(format!(
            "heapdump-{}-{seconds}-{dumps}.hdump",
            std::process::id()
        ));
        match write_file_with(&path, options) {
            Ok(report) => {
                let mut line = format!(
                    "heapdump: wrote {} ({} objects, {} bytes live)",
                    path.display(),
                    report.objects,
                    report.object_bytes
                );
                for warning in report.warnings() {
                    line.push_str("; ");
                    line.push_str(&warning);
                }
                eprintln!("{line}");
            }
            // File errors name the path themselves.
            Err(error @ crate::Error::File { .. }) => eprintln!("heapdump: {error}"),
            Err(error) => eprintln!("heapdump: no dump in {}: {error}", path.display()),
        }
    }
}
