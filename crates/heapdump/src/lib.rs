//! Heap dumps for Rust services, like Go's `runtime/debug.WriteHeapDump`.
//!
//! Install the tracking allocator, then write a dump whenever you need one:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: heapdump::Tracker = heapdump::Tracker::system();
//!
//! fn main() -> Result<(), heapdump::Error> {
//!     let cache: Vec<String> = (0..1000).map(|i| format!("session {i}")).collect();
//!     let report = heapdump::write_file("service.hdump")?;
//!     eprintln!("wrote {} objects ({} bytes)", report.objects, report.object_bytes);
//!     drop(cache);
//!     Ok(())
//! }
//! ```
//!
//! Or let an operator ask for one: after
//! `heapdump::dump_on_signal(libc::SIGUSR2, "/var/tmp", Default::default())`,
//! `kill -USR2 PID` writes a dump into `/var/tmp`.
//!
//! A dump holds every live allocation with its contents, the roots that can
//! point at them (each module's writable statics and every thread's stack,
//! registers and thread-locals), the sampled allocation-site stacks and the allocator statistics.
//! `docs/FORMAT.md` describes the file; the `heapdump` command reads it.
//!
//! **A dump contains the service's secrets** (every key, token and payload in
//! memory, and the command line and environment at the top of the main
//! thread's stack). Files written by [`write_file`] are created with mode
//! 0600; [`ContentsMode::Redacted`] keeps the object graph (addresses,
//! sizes, pointers, allocation sites, module paths) and zeroes everything
//! that is not a pointer, thread names included.
//!
//! # Costs
//! Every block gets a 16-byte header (or its alignment, if larger) and an
//! 8-byte slot outside the heap; allocating and freeing take no lock and
//! touch no shared cache line on the common path (a thread publishes its
//! live bytes for the peak about once per 256 KiB, and takes a lock only to
//! refill its slots or store a stack it has not seen lately). Allocation
//! sites are sampled by bytes
//! (one stack per 512 KiB allocated on average, like Go's `MemProfileRate`;
//! set [`set_sample_rate`] or `HEAPDUMP_SAMPLE_RATE`, 1 = every allocation)
//! with a frame-pointer walk: build with `-C force-frame-pointers=yes` for
//! complete stacks; without it stacks stop at the first frame that has no
//! frame pointer. Every allocation not sampled still records its *short
//! site*, its first few return addresses (enough to name the allocating
//! function and the type), deduplicated per thread into the block's header.
//! To take a dump, every other thread is stopped (by the signal
//! [`STOP_SIGNAL_ENV`] names, `SIGRTMIN+4` by default), so the dump is a
//! consistent snapshot of the whole process; by default
//! ([`Snapshot::Fork`]) only while the process forks, and a child process
//! writes the dump from its copy-on-write image; with [`Snapshot::Stop`],
//! for the whole dump.

#![warn(missing_docs)]

mod dump;
mod live;
mod lock;
mod modules;
mod stacks;
mod sys;
mod threads;
mod tracker;
mod trigger;

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::Ordering;

use heapdump_format::atomic_file::AtomicFile;

pub use heapdump_format::ContentsMode;
pub use threads::STOP_SIGNAL_ENV;
pub use tracker::{set_sample_rate, Tracker, DEFAULT_SAMPLE_RATE, SAMPLE_RATE_ENV};
pub use trigger::dump_on_signal;

/// How to write a dump.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Whether to keep every byte and thread name ([`ContentsMode::Full`],
    /// the default) or only the pointers, with thread names written empty
    /// ([`ContentsMode::Redacted`], which says exactly what it keeps).
    pub contents: ContentsMode,
    /// How long the other threads wait: only while the process forks
    /// ([`Snapshot::Fork`], the default), or for the whole dump
    /// ([`Snapshot::Stop`]).
    pub snapshot: Snapshot,
}

/// How a dump holds the process still while it reads the heap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Snapshot {
    /// Every other thread is stopped, and allocations wait, until the whole
    /// dump is written: about a second per GiB of live heap. So no thread
    /// of the process may be the reader of the descriptor written to: into
    /// a pipe or FIFO whose read end this process holds, the dump fails
    /// with [`Error::PipeReadInProcess`] before stopping anything (sockets
    /// are not checked).
    Stop,
    /// The default: the threads are stopped only while the process forks
    /// (milliseconds: ~28 ms for a 1 GiB heap of a million blocks; the
    /// kernel copies page tables, not memory); a child process writes the
    /// dump from its copy-on-write image of the heap and exits, while the
    /// service goes on. The calling thread still waits until the dump is
    /// written. Costs: the pages the service writes meanwhile are copied (at
    /// worst the heap twice over, if it rewrites all of it during the
    /// dump). Where the fork fails (no memory under strict overcommit, a
    /// sandbox that forbids it), the dump is written as with
    /// [`Snapshot::Stop`] instead, and [`DumpReport::snapshot`] says so
    /// and why ([`DumpReport::warnings`]); into a pipe this process reads,
    /// where stopping would freeze it, the failed fork fails the dump. A
    /// crash while writing (a library unloaded meanwhile, say) ends the
    /// child, not the service.
    #[default]
    Fork,
}

/// How a written dump held the process still ([`DumpReport::snapshot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotTaken {
    /// A forked child wrote the dump ([`Snapshot::Fork`]).
    Forked,
    /// The other threads were stopped for the whole dump, as
    /// [`Snapshot::Stop`] asks.
    Stopped,
    /// [`Snapshot::Fork`] was asked, but the fork failed with this `errno`
    /// (`EAGAIN`, `ENOMEM`, `EPERM`, ...): the other threads were stopped
    /// for the whole dump instead.
    StoppedForkFailed {
        /// The error number of the failed fork.
        errno: i32,
    },
}

/// What a written dump holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpReport {
    /// Live allocations written (one OBJECT record each).
    pub objects: u64,
    /// Sum of their sizes.
    pub object_bytes: u64,
    /// Root ranges written (module segments and thread stacks).
    pub roots: u64,
    /// Threads of the process when the dump was written (a thread that
    /// exited while the dump stopped the others is not counted).
    pub threads: u64,
    /// Threads whose stacks are in the dump (the others blocked the stop
    /// signal or did not answer in time).
    pub threads_dumped: u64,
    /// Distinct allocation-site stacks written.
    pub stacks: u64,
    /// Records written, END included.
    pub records: u64,
    /// Bytes written, header included.
    pub file_bytes: u64,
    /// Whether a forked child wrote the dump or the threads were stopped
    /// meanwhile, and why.
    pub snapshot: SnapshotTaken,
    /// `HEAPDUMP_SAMPLE_RATE` was set to a value the tracker refused (it
    /// samples at the default rate instead).
    pub sample_rate_env_refused: bool,
}

impl DumpReport {
    /// What the caller should know about how this dump was written: a fork
    /// that failed (so the service was stopped for the whole dump), a
    /// refused `HEAPDUMP_SAMPLE_RATE`. One sentence each; empty when all
    /// went as asked.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let SnapshotTaken::StoppedForkFailed { errno } = self.snapshot {
            warnings.push(format!(
                "the fork for a forked dump failed ({}): the service's threads were \
                 stopped for the whole dump instead",
                std::io::Error::from_raw_os_error(errno)
            ));
        }
        if self.sample_rate_env_refused {
            let value = std::env::var_os(SAMPLE_RATE_ENV).unwrap_or_default();
            warnings.push(format!(
                "{SAMPLE_RATE_ENV}={:?} was refused (not a whole number of bytes, 1 or \
                 more): allocation stacks are sampled at the default rate, one per \
                 {DEFAULT_SAMPLE_RATE} bytes",
                value.to_string_lossy()
            ));
        }
        warnings
    }
}

/// Allocator statistics, like Go's `runtime.MemStats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in live allocations.
    pub live_bytes: u64,
    /// Number of live allocations.
    pub live_objects: u64,
    /// Bytes allocated since start (a realloc counts as a free and an alloc).
    pub allocated_bytes: u64,
    /// Allocations since start.
    pub allocated_objects: u64,
    /// Bytes freed since start.
    pub freed_bytes: u64,
    /// Frees since start.
    pub freed_objects: u64,
    /// Highest `live_bytes` seen, to within about 512 KiB per thread, high
    /// or low (each thread publishes its live bytes when they changed by
    /// 256 KiB, checked every 256 KiB allocated or freed).
    pub peak_live_bytes: u64,
    /// Mean bytes between sampled allocation sites.
    pub sample_rate: u64,
    /// Memory used by the tracker's own tables, outside the heap (from
    /// [`stats()`]: the slot array and thread records; a dump's STATS
    /// record also counts the stack depot and the dump's snapshot).
    pub tracker_bytes: u64,
    /// Blocks the tracker could not record (its tables could not grow).
    pub untracked_blocks: u64,
}

/// Why a dump could not be written.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No [`Tracker`] is the global allocator, so there is nothing to dump.
    NotInstalled,
    /// `write` was called from inside the allocator or from another dump.
    Reentrant,
    /// The writer could not map memory for its buffers.
    OutOfMemory,
    /// Another thread stayed inside the allocator for 10 s, so no consistent
    /// snapshot could be taken; nothing was written.
    ThreadsBusy,
    /// Writing failed (bad fd, `EPIPE`, `ENOSPC`, ...), or the fork of
    /// [`Snapshot::Fork`] did where the dump could not fall back to
    /// stopping the threads.
    Io(std::io::Error),
    /// [`write_file`] could not create, write, sync or rename the file at
    /// `path` (or its temporary file beside it).
    File {
        /// The path the dump was to be written to.
        path: std::path::PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The child process of [`Snapshot::Fork`] ended without writing the
    /// whole dump; the wait status (as `waitpid` gives it) says how.
    ChildFailed(i32),
    /// [`STOP_SIGNAL_ENV`] (`HEAPDUMP_STOP_SIGNAL`) holds this value, which
    /// names no real-time signal; nothing was written, and no handler
    /// installed.
    BadStopSignal(String),
    /// A [`Snapshot::Stop`] dump was asked for into a pipe (or FIFO) `fd`
    /// whose read end is open in this process too, as descriptor `reader`:
    /// a thread reading it would be stopped with the others while the dump
    /// fills the pipe, and the process would freeze for good. Nothing was
    /// written; [`Snapshot::Fork`] lets the threads run while a child
    /// writes.
    PipeReadInProcess {
        /// The dump's descriptor.
        fd: RawFd,
        /// This process's descriptor open for reading on the same pipe.
        reader: RawFd,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInstalled => write!(
                f,
                "heapdump::Tracker is not the global allocator: add \
                 `#[global_allocator] static ALLOC: heapdump::Tracker = heapdump::Tracker::system();`"
            ),
            Error::Reentrant => write!(f, "a heap dump was requested while one is being written on this thread"),
            Error::OutOfMemory => write!(f, "out of memory for the dump's buffers"),
            Error::ThreadsBusy => write!(
                f,
                "another thread stayed inside the allocator for 10 s; no dump was written"
            ),
            Error::Io(error) => write!(f, "writing the heap dump failed: {error}"),
            Error::File { path, error } => write!(
                f,
                "writing the heap dump to {} failed: {error}",
                path.display()
            ),
            Error::ChildFailed(status) => {
                write!(f, "the process writing the heap dump ")?;
                if libc::WIFSIGNALED(*status) {
                    write!(f, "was killed by signal {}", libc::WTERMSIG(*status))
                } else {
                    write!(f, "exited with status {}", libc::WEXITSTATUS(*status))
                }
            }
            Error::BadStopSignal(value) => write!(
                f,
                "{STOP_SIGNAL_ENV}={value:?} is refused: the signal that stops threads during a \
                 heap dump must be a real-time signal, {} to {} (SIGRTMIN to SIGRTMAX); unset \
                 it for the default, {}; no dump was written",
                libc::SIGRTMIN(),
                libc::SIGRTMAX(),
                libc::SIGRTMIN() + 4
            ),
            Error::PipeReadInProcess { fd, reader } => write!(
                f,
                "descriptor {fd} is a pipe that this process also reads (descriptor {reader}): \
                 its reading thread would be stopped with the others while the dump fills the \
                 pipe, and the process would freeze; no dump was written. Use \
                 Snapshot::Fork (the threads run while a child writes the dump), or write to \
                 a file"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(error) | Error::File { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Writes a heap dump to an open file descriptor (a file, pipe or socket),
/// like Go's `debug.WriteHeapDump(fd)`. The descriptor stays open.
pub fn write<F: AsFd>(fd: F) -> Result<DumpReport, Error> {
    write_with(fd, &Options::default())
}

/// [`write()`] with options.
#[inline(never)]
pub fn write_with<F: AsFd>(fd: F, options: &Options) -> Result<DumpReport, Error> {
    let marker = 0u8;
    dump::write_dump(fd.as_fd().as_raw_fd(), options, caller_stack(&marker))
}

/// An address in the calling frame: where the dumping thread's stack root
/// starts (see `dump::write_dump`).
fn caller_stack(marker: &u8) -> usize {
    core::hint::black_box(marker) as *const u8 as usize
}

/// [`write()`] to a raw file descriptor number. A closed or invalid descriptor
/// gives an [`Error::Io`], never a crash.
#[inline(never)]
pub fn write_raw_fd(fd: RawFd, options: &Options) -> Result<DumpReport, Error> {
    let marker = 0u8;
    dump::write_dump(fd, options, caller_stack(&marker))
}

/// Writes a heap dump to `path`, created with mode 0600, with the default
/// [`Options`] (a forked snapshot). The dump is written
/// to a temporary file in the same directory (`.NAME.tmp.PID-RANDOM`, a
/// name no one can plant in advance; those of dead processes for the same
/// path are removed first) and renamed into place once complete and
/// synced, so `path` holds a whole dump or nothing new.
pub fn write_file(path: impl AsRef<Path>) -> Result<DumpReport, Error> {
    write_file_with(path, &Options::default())
}

/// [`write_file`] with options.
/// I/O errors come back as [`Error::File`], naming `path`.
pub fn write_file_with(path: impl AsRef<Path>, options: &Options) -> Result<DumpReport, Error> {
    let path = path.as_ref();
    let named = |error: std::io::Error| Error::File {
        path: path.to_path_buf(),
        error,
    };
    // Mode 0600, a fresh temporary name, synced, renamed, the directory
    // synced; removed on any error (when `out` is dropped).
    let mut out = AtomicFile::create(path).map_err(named)?;
    let report = write_with(out.file(), options).map_err(|error| match error {
        Error::Io(error) => named(error),
        other => other,
    })?;
    out.commit().map_err(named)?;
    Ok(report)
}

/// The allocator's statistics now, like Go's `runtime.ReadMemStats`.
///
/// Threads' counters are read one after another without stopping them, so
/// counts may be off by allocations that happen meanwhile on other threads;
/// a dump's STATS record is exact.
pub fn stats() -> Stats {
    stats_at(tracker::sample_rate())
}

/// The allocator's statistics now, with `sample_rate` (a dump states the
/// rate it froze) and the live set's own footprint as `tracker_bytes`.
pub(crate) fn stats_at(sample_rate: u64) -> Stats {
    let live = &tracker::STATE.live;
    let totals = live.totals();
    Stats {
        live_bytes: totals.live_bytes(),
        live_objects: totals.live_objects(),
        allocated_bytes: totals.allocated_bytes,
        allocated_objects: totals.allocated_objects,
        freed_bytes: totals.freed_bytes,
        freed_objects: totals.freed_objects,
        peak_live_bytes: live.peak_live_bytes(totals.live_bytes()),
        sample_rate,
        tracker_bytes: live.footprint(),
        untracked_blocks: tracker::STATE.untracked_blocks.load(Ordering::Relaxed),
    }
}

/// The mean number of bytes between sampled allocation sites now in force.
pub fn sample_rate() -> u64 {
    tracker::sample_rate()
}
