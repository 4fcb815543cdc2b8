//! Stopping the other threads during a dump, so their stacks become roots.
//!
//! Like Boehm GC: every other thread of the process gets a signal; its
//! handler notes where its stack pointer is, says so, and waits on a futex
//! until the dump is written. Its stack, from the handler's frame up to the
//! top of the stack mapping, is then dumped: that covers the registers the
//! kernel saved in the signal frame, every caller's frame, and (for threads
//! started by glibc) the thread's static TLS and `struct pthread`, which sit
//! at the top of the same mapping.
//!
//! The dump closes the live set's gate and takes every depot lock *before*
//! stopping anyone, so no stopped thread can be inside the tracker. The handler only makes
//! async-signal-safe calls (raw `gettid`, `futex`). A thread that blocks the
//! signal does not answer within [`ANSWER_TIMEOUT`] and keeps running; the
//! dump counts it as not dumped.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::sys::{self, Region};
use crate::tracker::STATE;

/// Most threads stopped and dumped; more are counted as not dumped.
pub(crate) const MAX_THREADS: usize = 1024;

/// How long a dump waits for all threads to answer the stop signal.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(500);

/// Environment variable naming the signal number used to stop threads
/// (default: `SIGRTMIN + 4`). Only a real-time signal (`SIGRTMIN` to
/// `SIGRTMAX`, 34 to 64 with glibc) is accepted: the stop signal's handler
/// replaces the service's own and stays installed, so a standard signal
/// (`SIGTERM`, `SIGSEGV`, ...) would be swallowed for the life of the
/// process. Any other value (not a number, or not a real-time signal) makes
/// every dump fail with [`Error::BadStopSignal`](crate::Error::BadStopSignal)
/// naming it, and installs nothing; unset or empty means the default.
pub const STOP_SIGNAL_ENV: &str = "HEAPDUMP_STOP_SIGNAL";

/// Where a stopped thread's stack starts.
pub(crate) struct ThreadSlot {
    tid: AtomicU64,
    /// Lowest address of the live stack: the handler's own frame.
    stack_pointer: AtomicUsize,
}

/// Shared between the dumping thread and the signal handlers. Lives inside
/// the tracker's `STATE`, whose bytes the dump leaves out of the roots.
pub(crate) struct StopState {
    /// 0 when no dump is stopping threads, else the dump's generation; the
    /// futex handlers wait on.
    generation: AtomicU32,
    last_generation: AtomicU32,
    /// Slots claimed by handlers (a handler claims one, then fills it in).
    claimed: AtomicUsize,
    /// Slots filled in: the dump waits for this, not for `claimed`, so it
    /// never reads a slot a handler has not written yet.
    answered: AtomicUsize,
    slots: [ThreadSlot; MAX_THREADS],
    signal: AtomicI32,
    installed: AtomicBool,
}

impl StopState {
    pub(crate) const fn new() -> StopState {
        StopState {
            generation: AtomicU32::new(0),
            last_generation: AtomicU32::new(0),
            claimed: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
            slots: [const {
                ThreadSlot {
                    tid: AtomicU64::new(0),
                    stack_pointer: AtomicUsize::new(0),
                }
            }; MAX_THREADS],
            signal: AtomicI32::new(0),
            installed: AtomicBool::new(false),
        }
    }
}

/// One stopped thread's stack: `[low, high)`, and its name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ThreadStack {
    pub(crate) tid: u64,
    pub(crate) low: usize,
    pub(crate) high: usize,
    name: [u8; 16],
    name_len: usize,
}

impl ThreadStack {
    /// The stack `[low, high)` of thread `tid`, with the thread's name read
    /// now, while the process is frozen: a forked child writing the dump
    /// could not ask the kernel for it, or would ask too late.
    pub(crate) fn new(tid: u64, low: usize, high: usize) -> ThreadStack {
        let mut name = [0u8; 16];
        let name_len = thread_name(tid, &mut name);
        ThreadStack {
            tid,
            low,
            high,
            name,
            name_len,
        }
    }

    /// The thread's name (`/proc/self/task/TID/comm`), empty if unknown.
    pub(crate) fn name(&self) -> &[u8] {
        &self.name[..self.name_len]
    }
}

/// A thread's name from `/proc/self/task/TID/comm`, into `out`.
fn thread_name(tid: u64, out: &mut [u8; 16]) -> usize {
    let mut path = [0u8; 48];
    let mut len = 0;
    let mut push = |bytes: &[u8]| {
        path[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    push(b"/proc/self/task/");
    push(decimal(tid, &mut [0; 20]));
    push(b"/comm");
    let Ok(path) = core::ffi::CStr::from_bytes_until_nul(&path) else {
        return 0;
    };
    let read = read_file(path, out).unwrap_or(0);
    // comm ends with a newline.
    out[..read]
        .iter()
        .position(|&byte| byte == b'\n')
        .unwrap_or(read)
}

/// `value` in decimal digits, written at the end of `digits`.
fn decimal(mut value: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &digits[start..];
        }
    }
}

/// The other threads, stopped until this is dropped.
pub(crate) struct StoppedThreads {
    /// Threads found in `/proc/self/task`, the dumping thread included.
    pub(crate) seen: u64,
    stacks: Region,
    count: usize,
}

impl StoppedThreads {
    /// The stacks of the stopped threads.
    pub(crate) fn stacks(&self) -> &[ThreadStack] {
        // SAFETY: the first `count` slots were written by `stop_others`.
        unsafe { core::slice::from_raw_parts(self.stacks.ptr.cast::<ThreadStack>(), self.count) }
    }
}

impl Drop for StoppedThreads {
    fn drop(&mut self) {
        let stop = &STATE.stop;
        stop.generation.store(0, Ordering::Release);
        sys::futex_wake_all(&stop.generation);
    }
}

/// The stop signal [`STOP_SIGNAL_ENV`] names, or the default; the refused
/// value, as given, if it names no real-time signal.
fn configured_signal() -> Result<c_int, String> {
    let Some(value) = std::env::var_os(STOP_SIGNAL_ENV) else {
        return Ok(libc::SIGRTMIN() + 4);
    };
    let text = value.to_str().map(str::trim);
    if text == Some("") {
        return Ok(libc::SIGRTMIN() + 4);
    }
    text.and_then(|text| text.parse::<c_int>().ok())
        .filter(|signal| (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(signal))
        .ok_or_else(|| value.to_string_lossy().into_owned())
}

/// Installs the stop-signal handler once. Called before any lock is taken:
/// it reads the environment. `Ok(false)` if `sigaction` failed (the dump
/// then stops no thread); an error, and nothing installed, if
/// [`STOP_SIGNAL_ENV`] names no real-time signal.
pub(crate) fn install_handler() -> Result<bool, crate::Error> {
    let stop = &STATE.stop;
    if stop.installed.load(Ordering::Acquire) {
        return Ok(true);
    }
    let signal = configured_signal().map_err(crate::Error::BadStopSignal)?;
    // SAFETY: a plain sigaction call with a handler that only makes
    // async-signal-safe calls. The handler stays installed for the life of
    // the process: a late signal then finds no dump and returns at once.
    let installed = unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = on_stop_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigfillset(&mut action.sa_mask);
        libc::sigaction(signal, &action, core::ptr::null_mut()) == 0
    };
    if installed {
        stop.signal.store(signal, Ordering::Relaxed);
        stop.installed.store(true, Ordering::Release);
    }
    Ok(installed)
}

/// The signal that stops threads during a dump (installing its handler
/// first), `Ok(None)` if it could not be installed, or the error for a
/// refused [`STOP_SIGNAL_ENV`].
pub(crate) fn stop_signal() -> Result<Option<c_int>, crate::Error> {
    Ok(install_handler()?.then(|| STATE.stop.signal.load(Ordering::Relaxed)))
}

extern "C" fn on_stop_signal(_signal: c_int, _info: *mut libc::siginfo_t, _context: *mut c_void) {
    // SAFETY: errno is thread-local; we restore it so the interrupted code
    // never sees our syscalls' errors.
    let saved_errno = unsafe { *libc::__errno_location() };
    let stop = &STATE.stop;
    let generation = stop.generation.load(Ordering::Acquire);
    if generation != 0 {
        let marker = 0usize;
        let slot = stop.claimed.fetch_add(1, Ordering::AcqRel);
        if let Some(slot) = stop.slots.get(slot) {
            slot.tid.store(sys::gettid(), Ordering::Relaxed);
            // Everything above this frame, including the signal frame with
            // the interrupted registers, belongs to the stopped thread.
            slot.stack_pointer
                .store(&marker as *const usize as usize, Ordering::Relaxed);
        }
        // Publishes the slot's stores to the dump.
        stop.answered.fetch_add(1, Ordering::Release);
        while stop.generation.load(Ordering::Acquire) == generation {
            sys::futex_wait(&stop.generation, generation);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// Stops every other thread of the process. Call with the gate closed and
/// the depot locked, after [`install_handler`]. Uses no heap memory.
pub(crate) fn stop_others() -> Option<StoppedThreads> {
    let stop = &STATE.stop;
    let signal = stop.signal.load(Ordering::Relaxed);
    let own_tid = sys::gettid();
    let generation = stop
        .last_generation
        .load(Ordering::Relaxed)
        .wrapping_add(1)
        .max(1);
    stop.last_generation.store(generation, Ordering::Relaxed);
    stop.claimed.store(0, Ordering::Relaxed);
    stop.answered.store(0, Ordering::Relaxed);
    for slot in &stop.slots {
        slot.stack_pointer.store(0, Ordering::Relaxed);
    }
    let mut stopped = StoppedThreads {
        seen: 1,
        stacks: Region::new(MAX_THREADS * core::mem::size_of::<ThreadStack>())?,
        count: 0,
    };
    stop.generation.store(generation, Ordering::Release);

    let mut signalled = 0usize;
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    for_each_task(|tid| {
        if tid == own_tid {
            return;
        }
        // SAFETY: tgkill to a thread of our own process.
        let sent = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid as c_int, signal) } == 0;
        if sent {
            signalled += 1;
            stopped.seen += 1;
        } else if sys::errno() != libc::ESRCH {
            // Alive but not signalled: counted, not dumped. (ESRCH: it
            // exited since the listing; it is no thread of the process.)
            stopped.seen += 1;
        }
    })?;

    let start = Instant::now();
    let mut next_recount = start + RECOUNT_AFTER;
    while stop.answered.load(Ordering::Acquire) < signalled {
        let now = Instant::now();
        if now >= start + ANSWER_TIMEOUT {
            break;
        }
        // A thread that was exiting when signalled never answers: once the
        // only threads left unanswered are gone, waiting longer is useless.
        if now >= next_recount {
            next_recount = now + RECOUNT_AFTER;
            if unanswered_threads(own_tid) == Some(0) {
                break;
            }
        }
        sys::yield_now();
    }
    if stop.answered.load(Ordering::Acquire) < signalled {
        // Count only the threads that still exist: those that exited
        // meanwhile were not lost from the dump.
        if let Some(alive) = unanswered_threads(own_tid) {
            stopped.seen = 1 + recorded_slots() as u64 + alive;
        }
    }
    // The mappings as they are now, with everyone stopped: a copy read
    // before could name a range that was unmapped (and reused by a shorter
    // stack) meanwhile, and reading past a stack's end would crash the dump.
    let maps = Mappings::read()?;
    let answered = recorded_slots();
    // SAFETY: the region holds MAX_THREADS zeroed ThreadStack slots.
    let out = unsafe {
        core::slice::from_raw_parts_mut(stopped.stacks.ptr.cast::<ThreadStack>(), MAX_THREADS)
    };
    for slot in &stop.slots[..answered] {
        let low = slot.stack_pointer.load(Ordering::Relaxed);
        if low == 0 {
            continue; // a late handler's slot, not yet filled in
        }
        if let Some(high) = maps.end_of_mapping_containing(low) {
            out[stopped.count] = ThreadStack::new(
                slot.tid.load(Ordering::Relaxed),
                low & !(core::mem::size_of::<usize>() - 1),
                high,
            );
            stopped.count += 1;
        }
    }
    Some(stopped)
}

/// How often a dump still waiting for answers checks which threads exist.
const RECOUNT_AFTER: Duration = Duration::from_millis(10);

/// How many slots are certainly written: only slots below both counts are,
/// since a handler that answers late may have claimed a slot and not filled
/// it in yet.
fn recorded_slots() -> usize {
    let stop = &STATE.stop;
    stop.answered
        .load(Ordering::Acquire)
        .min(stop.claimed.load(Ordering::Acquire))
        .min(MAX_THREADS)
}

/// The threads in `/proc/self/task` now, other than `own_tid`, that have
/// not answered the stop signal in a recorded slot; `None` if the list
/// cannot be read.
fn unanswered_threads(own_tid: u64) -> Option<u64> {
    let slots = &STATE.stop.slots[..recorded_slots()];
    let mut unanswered = 0;
    for_each_task(|tid| {
        if tid != own_tid
            && !slots
                .iter()
                .any(|slot| slot.tid.load(Ordering::Relaxed) == tid)
        {
            unanswered += 1;
        }
    })?;
    Some(unanswered)
}

/// Calls `visit(tid)` for every thread in `/proc/self/task`, with raw
/// syscalls into a mapped buffer.
fn for_each_task(visit: impl FnMut(u64)) -> Option<()> {
    for_each_number_in(c"/proc/self/task", visit)
}

/// Calls `visit(n)` for every entry of `directory` whose name is a decimal
/// number (threads, descriptors), with raw syscalls into a mapped buffer.
pub(crate) fn for_each_number_in(
    directory: &core::ffi::CStr,
    mut visit: impl FnMut(u64),
) -> Option<()> {
    // SAFETY: opening a directory read-only with a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            directory.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    let mut buffer = Region::new(64 * 1024)?;
    loop {
        // SAFETY: getdents64 writes at most `len` bytes into our buffer.
        let read = unsafe { libc::syscall(libc::SYS_getdents64, fd, buffer.ptr, buffer.len) };
        if read <= 0 {
            break;
        }
        let bytes = &buffer.bytes_mut()[..read as usize];
        let mut offset = 0;
        // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, name.
        while offset + 19 <= bytes.len() {
            let record_len = u16::from_ne_bytes([bytes[offset + 16], bytes[offset + 17]]) as usize;
            if record_len == 0 || offset + record_len > bytes.len() {
                break;
            }
            let name = &bytes[offset + 19..offset + record_len];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if let Some(tid) = parse_decimal(name) {
                visit(tid);
            }
            offset += record_len;
        }
    }
    // SAFETY: closing the descriptor we opened.
    unsafe { libc::close(fd) };
    Some(())
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value.checked_mul(10)?.checked_add(u64::from(digit - b'0')))
            .flatten()
    })
}

/// The address ranges of `/proc/self/maps`, read before threads are stopped.
pub(crate) struct Mappings {
    text: Region,
    len: usize,
}

impl Mappings {
    /// Reads `/proc/self/maps` into mapped memory.
    pub(crate) fn read() -> Option<Mappings> {
        let mut capacity = 1 << 20;
        loop {
            let mut text = Region::new(capacity)?;
            let len = read_file(c"/proc/self/maps", text.bytes_mut())?;
            if len < text.len {
                return Some(Mappings { text, len });
            }
            capacity *= 4; // Did not fit: read it again into a bigger buffer.
        }
    }

    /// One past the last byte of the mapping that contains `address`.
    pub(crate) fn end_of_mapping_containing(&self, address: usize) -> Option<usize> {
        // SAFETY: the first `len` bytes were read into the region.
        let text = unsafe { core::slice::from_raw_parts(self.text.ptr, self.len) };
        text.split(|&b| b == b'\n').find_map(|line| {
            let range = line.split(|&b| b == b' ').next()?;
            let dash = range.iter().position(|&b| b == b'-')?;
            let start = parse_hex(&range[..dash])?;
            let end = parse_hex(&range[dash + 1..])?;
            (start <= address && address < end).then_some(end)
        })
    }
}

fn parse_hex(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |value, &digit| {
        let nibble = (digit as char).to_digit(16)? as usize;
        value.checked_mul(16)?.checked_add(nibble)
    })
}

/// Reads a whole (small, procfs) file into `out`; returns the bytes read.
pub(crate) fn read_file(path: &core::ffi::CStr, out: &mut [u8]) -> Option<usize> {
    // SAFETY: a NUL-terminated path, read-only.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut len = 0;
    while len < out.len() {
        // SAFETY: reading into the unused tail of `out`.
        let read = unsafe { libc::read(fd, out[len..].as_mut_ptr().cast(), out.len() - len) };
        if read < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if read <= 0 {
            break;
        }
        len += read as usize;
    }
    // SAFETY: closing the descriptor we opened.
    unsafe { libc::close(fd) };
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers() {
        assert_eq!(parse_decimal(b"12345"), Some(12345));
        assert_eq!(parse_decimal(b"."), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_hex(b"7ffd1000"), Some(0x7ffd_1000));
        assert_eq!(parse_hex(b"xyz"), None);
    }

    #[test]
    fn finds_own_stack_mapping() {
        let maps = Mappings::read().unwrap();
        let local = 0u64;
        let address = &local as *const u64 as usize;
        let end = maps.end_of_mapping_containing(address).unwrap();
        assert!(end > address);
        let mut tasks = 0;
        for_each_task(|_| tasks += 1).unwrap();
        assert!(tasks >= 1);
    }
}
