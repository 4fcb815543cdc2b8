//! Freezing the process for a dump: close the gate, lock the depot, stop
//! the other threads; then write the dump in place (`Snapshot::Stop`) or
//! fork and let the child write it (`Snapshot::Fork`).

use core::sync::atomic::Ordering;

use heapdump_format::ContentsMode;

use super::encode::write_frozen;
use super::{DUMP_LOCK, WORD};
use crate::live::GateError;
use crate::modules::Modules;
use crate::stacks::DepotGuard;
use crate::sys::{self, SharedPage};
use crate::threads::{self, Mappings, ThreadStack};
use crate::tracker::{enter_busy, sample_rate, STATE};
use crate::{DumpReport, Error, Options, Snapshot, SnapshotTaken};

/// How long a dump waits for other threads to leave the tracker (a realloc
/// copying gigabytes can take a while) before it gives up.
const GATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Writes a complete dump to `fd`. `caller_stack` is an address in the
/// frame of the public function the user called: the dumping thread's stack
/// root starts there, so the writer's own (deeper) frames, full of stale
/// values from earlier calls, are not scanned as roots.
pub(crate) fn write_dump(
    fd: i32,
    options: &Options,
    caller_stack: usize,
) -> Result<DumpReport, Error> {
    if !STATE.installed.load(Ordering::Relaxed) {
        return Err(Error::NotInstalled);
    }
    // A spin lock (waiters yield), not a Mutex: a child forked during a dump
    // must be able to release it (`after_fork_in_child`).
    let one_at_a_time = DUMP_LOCK.guard();
    let Some(busy) = enter_busy() else {
        return Err(Error::Reentrant);
    };
    let _sigpipe = sys::SigpipeBlock::new();
    // Before anything is frozen: a pipe read by a thread of this process
    // would never be drained while that thread is stopped (a forked dump
    // that cannot fork must not fall back to stopping then).
    let pipe_reader = sys::pipe_reader_in_process(fd);
    if let (Snapshot::Stop, Some(reader)) = (options.snapshot, pipe_reader) {
        return Err(Error::PipeReadInProcess { fd, reader });
    }
    let sample_rate_env_refused = crate::tracker::env_rate_is_refused();

    let modules = Modules::collect().ok_or(Error::OutOfMemory)?;
    let can_stop_threads = threads::install_handler()?;
    let maps = Mappings::read().ok_or(Error::OutOfMemory)?;
    let own_stack = own_stack(&maps, caller_stack);
    let time_unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let sample_rate = sample_rate();
    // With Snapshot::Fork, the forked child's own result page.
    let child_result = match options.snapshot {
        Snapshot::Stop => None,
        Snapshot::Fork => Some(SharedPage::new(ChildResult::Unfinished).ok_or(Error::OutOfMemory)?),
    };

    let gate = STATE
        .live
        .close_gate(busy.record(), GATE_TIMEOUT)
        .map_err(|error| match error {
            GateError::Busy => Error::ThreadsBusy,
            GateError::Barrier(error) => Error::Io(error),
        })?;
    let depot = STATE.depot.lock_all();
    // With the gate closed and the depot locked, no stopped thread can be
    // inside the tracker.
    let stopped = if can_stop_threads {
        threads::stop_others()
    } else {
        None
    };
    let mut frozen = Frozen {
        fd,
        taken: match options.snapshot {
            Snapshot::Stop => SnapshotTaken::Stopped,
            Snapshot::Fork => SnapshotTaken::Forked,
        },
        sample_rate_env_refused,
        contents: options.contents,
        pid: std::process::id(),
        time_unix_ns,
        sample_rate,
        modules: &modules,
        own_stack,
        other_stacks: stopped.as_ref().map_or(&[][..], |stopped| stopped.stacks()),
        threads_seen: stopped.as_ref().map_or(1, |stopped| stopped.seen),
        depot: &depot,
    };
    let Some(child_result) = child_result else {
        // Snapshot::Stop: everyone waits until the dump is written.
        return write_frozen(&frozen);
    };
    let child = match sys::fork_quietly() {
        Err(error) if pipe_reader.is_none() => {
            // No fork (no memory under strict overcommit, a sandbox that
            // forbids it): everyone waits until the dump is written here,
            // and the report says why.
            frozen.taken = SnapshotTaken::StoppedForkFailed {
                errno: error.raw_os_error().unwrap_or(0),
            };
            return write_frozen(&frozen);
        }
        child => child,
    };
    if let Ok(0) = child {
        // The child: a frozen copy of the process, this thread alone in it.
        // It writes the dump and leaves, even if the writer panicked.
        struct ExitOnUnwind;
        impl Drop for ExitOnUnwind {
            fn drop(&mut self) {
                sys::exit_now(EXIT_PANICKED);
            }
        }
        let _exit_on_unwind = ExitOnUnwind;
        if !sys::die_with_parent(frozen.pid) {
            sys::exit_now(EXIT_ORPHANED);
        }
        sys::become_dump_child(fd);
        child_result.set(ChildResult::from(write_frozen(&frozen)));
        sys::exit_now(0);
    }
    // The parent: the service goes on while the child writes, and holds
    // nothing meanwhile: another dump may start (its own fork), and a fork
    // by the service need not wait (`tracker::before_fork`).
    drop(stopped);
    drop(depot);
    drop(gate);
    drop(busy);
    drop(one_at_a_time);
    let waited = sys::wait_for_child(child.map_err(Error::Io)?);
    match (child_result.get(), waited) {
        // Reaped by someone else (a `waitpid(-1, __WALL)` of the service)
        // after it stored its result: the result stands.
        (ChildResult::Unfinished, Err(error)) => Err(Error::Io(error)),
        (result, waited) => result.into_result(waited.unwrap_or(0)),
    }
}

/// The child's exit code when the writer panicked.
const EXIT_PANICKED: i32 = 101;
/// The child's exit code when the service was gone before it began.
const EXIT_ORPHANED: i32 = 102;

/// What a dump is written from, gathered while the process is held still:
/// the gate closed, the depot locked, the other threads stopped.
pub(super) struct Frozen<'a> {
    pub(super) fd: i32,
    /// How the process is held still for this dump, as its report says.
    pub(super) taken: SnapshotTaken,
    /// For the report: `HEAPDUMP_SAMPLE_RATE` was refused.
    pub(super) sample_rate_env_refused: bool,
    pub(super) contents: ContentsMode,
    /// The dumped process (not the forked child writing it).
    pub(super) pid: u32,
    pub(super) time_unix_ns: u64,
    pub(super) sample_rate: u64,
    pub(super) modules: &'a Modules,
    pub(super) own_stack: Option<ThreadStack>,
    pub(super) other_stacks: &'a [ThreadStack],
    pub(super) threads_seen: u64,
    pub(super) depot: &'a DepotGuard<'a>,
}

/// How the child of [`Snapshot::Fork`] hands its result back, through a
/// page shared with the parent: plain data (an `io::Error` may hold a box).
#[derive(Clone, Copy)]
enum ChildResult {
    /// The child has not stored a result: it died before the end.
    Unfinished,
    Written(DumpReport),
    OutOfMemory,
    /// An I/O error with this `errno`.
    Os(i32),
    /// An I/O error of another kind (a write of zero bytes).
    Io(std::io::ErrorKind),
}

impl From<Result<DumpReport, Error>> for ChildResult {
    fn from(result: Result<DumpReport, Error>) -> ChildResult {
        match result {
            Ok(report) => ChildResult::Written(report),
            Err(Error::Io(error)) => match error.raw_os_error() {
                Some(errno) => ChildResult::Os(errno),
                None => ChildResult::Io(error.kind()),
            },
            // `write_frozen` fails with nothing else.
            Err(_) => ChildResult::OutOfMemory,
        }
    }
}

impl ChildResult {
    /// The dump's result, given the child's wait status.
    fn into_result(self, status: i32) -> Result<DumpReport, Error> {
        match self {
            ChildResult::Written(report) => Ok(report),
            ChildResult::Unfinished => Err(Error::ChildFailed(status)),
            ChildResult::OutOfMemory => Err(Error::OutOfMemory),
            ChildResult::Os(errno) => Err(Error::Io(std::io::Error::from_raw_os_error(errno))),
            ChildResult::Io(kind) => Err(Error::Io(kind.into())),
        }
    }
}

/// The dumping thread's stack, from `caller_stack` to the top of its mapping.
fn own_stack(maps: &Mappings, caller_stack: usize) -> Option<ThreadStack> {
    let low = caller_stack & !(WORD - 1);
    let high = maps.end_of_mapping_containing(low)?;
    Some(ThreadStack::new(sys::gettid(), low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a forked child hands back becomes the error the caller sees;
    /// a child that died before it stored anything, its wait status.
    #[test]
    fn child_results_become_errors() {
        let killed_by_segv = libc::SIGSEGV; // a wait status: signal, no core
        let error = ChildResult::Unfinished
            .into_result(killed_by_segv)
            .unwrap_err();
        assert!(matches!(error, Error::ChildFailed(status) if status == killed_by_segv));
        assert_eq!(
            error.to_string(),
            "the process writing the heap dump was killed by signal 11"
        );
        let exited_101 = 101 << 8;
        let error = ChildResult::Unfinished.into_result(exited_101).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the process writing the heap dump exited with status 101"
        );
        let error = ChildResult::from(Err(Error::Io(std::io::Error::from_raw_os_error(
            libc::ENOSPC,
        ))))
        .into_result(0)
        .unwrap_err();
        assert!(matches!(error, Error::Io(io) if io.raw_os_error() == Some(libc::ENOSPC)));
        let error = ChildResult::from(Err(Error::Io(std::io::ErrorKind::WriteZero.into())))
            .into_result(0)
            .unwrap_err();
        assert!(matches!(error, Error::Io(io) if io.kind() == std::io::ErrorKind::WriteZero));
        assert!(matches!(
            ChildResult::from(Err(Error::OutOfMemory)).into_result(0),
            Err(Error::OutOfMemory)
        ));
    }
}
