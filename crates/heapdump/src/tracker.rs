//! The tracking global allocator.
//!
//! `Tracker<A>` forwards every call to the allocator `A`, asking for 16 bytes
//! more: a [`Header`] before each block names the block's slot in the
//! [`LiveSet`], its size and its allocation site. A sampled fraction of
//! allocations gets its call stack, by bytes, like Go's
//! `runtime.MemProfileRate`.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::alloc::System;

use crate::live::{header_space, Busy, Header, LiveSet, ThreadRecord, NO_SLOT, PEAK_STEP};
use crate::stacks::{self, Depot, ShortSiteCache, SiteCache};

/// Default mean number of bytes between sampled allocation sites (512 KiB,
/// as Go's `MemProfileRate`).
pub const DEFAULT_SAMPLE_RATE: u64 = 512 * 1024;

/// Environment variable read once, at the first allocation, to set the
/// sample rate (a number of bytes; 1 records every allocation's site).
pub const SAMPLE_RATE_ENV: &str = "HEAPDUMP_SAMPLE_RATE";

/// A global allocator that records every live allocation so that
/// [`write()`](crate::write()) can dump them.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: heapdump::Tracker = heapdump::Tracker::system();
/// ```
///
/// Over another allocator: `heapdump::Tracker::new(mimalloc::MiMalloc)`.
/// Each block costs 16 bytes more (a header just below it, or the block's
/// alignment if that is larger) and an 8-byte slot. The slots and the other
/// tables live outside the heap (in `mmap`ed memory) and are left out of the
/// dump.
pub struct Tracker<A = System> {
    inner: A,
}

impl Tracker<System> {
    /// A tracker over the system allocator.
    pub const fn system() -> Tracker<System> {
        Tracker { inner: System }
    }
}

impl<A> Tracker<A> {
    /// A tracker over `inner`, which does the actual allocating.
    pub const fn new(inner: A) -> Tracker<A> {
        Tracker { inner }
    }
}

/// Everything the tracker shares between threads. One per process: there is
/// only one global allocator.
pub(crate) struct State {
    pub(crate) live: LiveSet,
    pub(crate) depot: Depot,
    /// Set when the first thread registers: a `Tracker` is installed.
    pub(crate) installed: AtomicBool,
    /// Mean bytes between samples; 0 until read from the environment.
    pub(crate) sample_rate: AtomicU64,
    /// Allocations refused because the slot array could not grow.
    pub(crate) untracked_blocks: AtomicU64,
    /// Stopping other threads during a dump.
    pub(crate) stop: crate::threads::StopState,
}

pub(crate) static STATE: State = State {
    live: LiveSet::new(),
    depot: Depot::new(),
    installed: AtomicBool::new(false),
    sample_rate: AtomicU64::new(0),
    untracked_blocks: AtomicU64::new(0),
    stop: crate::threads::StopState::new(),
};

/// Per-thread state. Only `Copy` cells with a `const` initialiser, so the
/// first touch neither allocates nor registers a destructor.
struct ThreadState {
    /// This thread's record in the live set; null until its first
    /// allocation, and again after the thread-exit hook returned it.
    record: Cell<*const ThreadRecord>,
    /// Set while a record is being claimed: allocations meanwhile (by the
    /// C library) go untracked.
    claiming: Cell<bool>,
    /// Bytes left until the next allocation that takes the slow path (an
    /// *event*): the next sample, or [`PEAK_STEP`] bytes after the last
    /// event, whichever is sooner. One countdown on the hot path for both.
    until_event: Cell<u64>,
    /// What `until_event` was set to at the last event.
    event_span: Cell<u64>,
    /// Bytes left until the next sampled allocation, as of the last event;
    /// 0 until drawn.
    until_sample: Cell<u64>,
    /// The sample rate `until_sample` was drawn with: when the rate in force
    /// differs (`set_sample_rate` on another thread), it is drawn again.
    drawn_rate: Cell<u64>,
    rng: Cell<u64>,
    /// This thread's stack, `[low, high)`: `(0, 0)` until looked up,
    /// `(1, 1)` if unknown.
    stack_bounds: Cell<(usize, usize)>,
    /// Stacks this thread recorded lately, to skip the depot's locks.
    sites: SiteCache,
    /// Short sites this thread recorded lately (every allocation looks).
    short_sites: ShortSiteCache,
}

thread_local! {
    static THREAD: ThreadState = const {
        ThreadState {
            record: Cell::new(core::ptr::null()),
            claiming: Cell::new(false),
            until_event: Cell::new(0),
            event_span: Cell::new(0),
            until_sample: Cell::new(0),
            drawn_rate: Cell::new(0),
            rng: Cell::new(0),
            stack_bounds: Cell::new((0, 0)),
            sites: SiteCache::new(),
            short_sites: ShortSiteCache::new(),
        }
    };
}

/// The calling thread's record, claimed on first use; `None` while one is
/// being claimed (the C library allocating on our behalf) or if none can be.
#[inline(always)]
pub(crate) fn thread_record() -> Option<&'static ThreadRecord> {
    this_thread()?.1
}

/// The calling thread's state, and its record as [`thread_record`] gives it.
#[inline(always)]
fn this_thread() -> Option<(&'static ThreadState, Option<&'static ThreadRecord>)> {
    THREAD
        .try_with(|thread| {
            // SAFETY: `THREAD` has a `const` initialiser and no destructor,
            // so it lives as long as its thread, longer than any call here.
            let thread: &'static ThreadState = unsafe { &*(thread as *const ThreadState) };
            let record = thread.record.get();
            if record.is_null() {
                (thread, claim_record(thread))
            } else {
                // SAFETY: records are never unmapped.
                (thread, Some(unsafe { &*record }))
            }
        })
        .ok()
}

#[cold]
fn claim_record(thread: &ThreadState) -> Option<&'static ThreadRecord> {
    if thread.claiming.get() {
        return None;
    }
    thread.claiming.set(true);
    let record = STATE.live.claim_record();
    thread.claiming.set(false);
    if let Some(record) = record {
        thread.record.set(record);
        STATE.installed.store(true, Ordering::Relaxed);
    }
    record
}

/// Called by the thread-exit hook: the record goes back to the registry.
pub(crate) fn forget_record() {
    let _ = THREAD.try_with(|thread| thread.record.set(core::ptr::null()));
}

/// `pthread_atfork` prepare handler: a fork waits for a dump in progress to
/// finish (a dump holds C library locks, the loader's in `dl_iterate_phdr`
/// among them, that a child forked meanwhile would find held forever), then
/// closes the gate like a dump, so that no other thread is inside the
/// tracker at the instant of the fork: the child's live set is consistent.
pub(crate) extern "C" fn before_fork() {
    crate::dump::DUMP_LOCK.lock();
    let closed = thread_record()
        .and_then(|own| STATE.live.close_gate(own, FORK_GATE_TIMEOUT).ok())
        .map(|gate| gate.keep_closed())
        .is_some();
    FORK_CLOSED_GATE.store(closed, Ordering::Relaxed);
}

/// How long a fork waits for other threads to leave the tracker before it
/// goes on without that guarantee.
const FORK_GATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Set by [`before_fork`] when it closed the gate.
static FORK_CLOSED_GATE: AtomicBool = AtomicBool::new(false);

/// `pthread_atfork` parent handler: see [`before_fork`].
pub(crate) extern "C" fn after_fork_in_parent() {
    if FORK_CLOSED_GATE.swap(false, Ordering::Relaxed) {
        STATE.live.open_gate();
    }
    crate::dump::DUMP_LOCK.unlock();
}

/// `pthread_atfork` child handler (see [`LiveSet::reset_after_fork`]).
pub(crate) extern "C" fn after_fork_in_child() {
    let own = THREAD
        .try_with(|thread| thread.record.get())
        .unwrap_or(core::ptr::null());
    FORK_CLOSED_GATE.store(false, Ordering::Relaxed);
    STATE.live.reset_after_fork(own);
    STATE.depot.unlock_after_fork();
    crate::dump::DUMP_LOCK.unlock();
}

/// The calling thread marked busy (waiting while a dump has the gate
/// closed): inside the tracker, or writing a dump, whose own allocations
/// then go untracked. `None` if it already is, or has no record.
#[inline(always)]
pub(crate) fn enter_busy() -> Option<Busy> {
    Busy::enter(thread_record()?, &STATE.live)
}

/// The sample rate in force, reading `HEAPDUMP_SAMPLE_RATE` the first time.
#[inline]
pub(crate) fn sample_rate() -> u64 {
    let rate = STATE.sample_rate.load(Ordering::Relaxed);
    if rate != 0 {
        return rate;
    }
    first_sample_rate()
}

#[cold]
fn first_sample_rate() -> u64 {
    let from_env = match rate_from_env() {
        EnvRate::Unset => DEFAULT_SAMPLE_RATE,
        EnvRate::Rate(rate) => rate,
        EnvRate::Refused => {
            refuse_env_rate();
            DEFAULT_SAMPLE_RATE
        }
    };
    // Keep a rate set by `set_sample_rate` meanwhile.
    match STATE
        .sample_rate
        .compare_exchange(0, from_env, Ordering::Relaxed, Ordering::Relaxed)
    {
        Ok(_) => from_env,
        Err(current) => current,
    }
}

/// What `HEAPDUMP_SAMPLE_RATE` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EnvRate {
    /// Not set: the default.
    Unset,
    /// A rate in bytes, at least 1.
    Rate(u64),
    /// Set to something that is not a whole number of bytes from 1 up.
    Refused,
}

/// Parses a `HEAPDUMP_SAMPLE_RATE` value: a whole number of bytes, at
/// least 1, with optional surrounding blanks.
pub(crate) fn parse_rate(text: &[u8]) -> EnvRate {
    match core::str::from_utf8(text)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
    {
        Some(rate) if rate > 0 => EnvRate::Rate(rate),
        _ => EnvRate::Refused,
    }
}

/// The raw value of `HEAPDUMP_SAMPLE_RATE`, without allocating (this runs
/// inside the allocator): `std::env::var` allocates, getenv does not.
fn env_rate_bytes() -> Option<&'static [u8]> {
    // SAFETY: a NUL-terminated name; the result, if not null, is a
    // NUL-terminated string owned by the C library, which the program does
    // not change behind our back (setenv replaces, never edits, a value).
    let value = unsafe { libc::getenv(c"HEAPDUMP_SAMPLE_RATE".as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: see above.
    Some(unsafe { core::ffi::CStr::from_ptr(value) }.to_bytes())
}

fn rate_from_env() -> EnvRate {
    env_rate_bytes().map_or(EnvRate::Unset, parse_rate)
}

/// Set once the refusal of `HEAPDUMP_SAMPLE_RATE` was printed.
static REFUSAL_PRINTED: AtomicBool = AtomicBool::new(false);

/// Says once on stderr that `HEAPDUMP_SAMPLE_RATE` was refused and the
/// default is in force. Runs inside the allocator: the line is put together
/// in a buffer on the stack and written with one `write(2)`.
#[cold]
fn refuse_env_rate() {
    if REFUSAL_PRINTED.swap(true, Ordering::Relaxed) {
        return;
    }
    let mut line = [0u8; 320];
    let mut used = 0;
    let mut put = |bytes: &[u8]| {
        let room = line.len() - used;
        let take = bytes.len().min(room);
        line[used..used + take].copy_from_slice(&bytes[..take]);
        used += take;
    };
    put(b"heapdump: HEAPDUMP_SAMPLE_RATE=\"");
    let value = env_rate_bytes().unwrap_or(b"");
    put(&value[..value.len().min(64)]);
    if value.len() > 64 {
        put(b"...");
    }
    put(
        b"\" is refused (it must be a whole number of bytes, 1 or more; 1 records every \
          allocation's stack); using the default, 524288\n",
    );
    const _: () = assert!(
        DEFAULT_SAMPLE_RATE == 524288,
        "the message names the default"
    );
    // SAFETY: writing our own buffer to stderr; a failed write loses only
    // the message.
    unsafe { libc::write(2, line.as_ptr().cast(), used) };
}

/// Whether `HEAPDUMP_SAMPLE_RATE` holds a value the tracker refuses (for a
/// dump's report and [`crate::dump_on_signal`]). Does not allocate.
pub(crate) fn env_rate_is_refused() -> bool {
    rate_from_env() == EnvRate::Refused
}

/// Sets the mean number of bytes between sampled allocation sites: 1 records
/// every allocation's stack, 0 is treated as 1. Overrides
/// `HEAPDUMP_SAMPLE_RATE`. Takes effect on the calling thread at once, and
/// on other threads within their next 256 KiB allocated.
pub fn set_sample_rate(bytes: u64) {
    STATE.sample_rate.store(bytes.max(1), Ordering::Relaxed);
    // This thread draws a new countdown at its next allocation; others see
    // the new rate at their next event.
    let _ = THREAD.try_with(|thread| {
        thread.until_sample.set(0);
        thread.until_event.set(0);
        thread.event_span.set(0);
    });
}

impl ThreadState {
    /// The slow path of an allocation of `size` bytes that ran out the
    /// event countdown: publishes the thread's live bytes if they changed by
    /// a step, decides whether this allocation is sampled and sets the next
    /// countdown. Returns the allocation's site (0 if not sampled).
    #[cold]
    #[inline(never)]
    fn allocation_event(&self, record: &ThreadRecord, size: usize) -> u32 {
        let rate = sample_rate();
        let sampled = if rate <= 1 {
            // Every allocation is sampled, so every one comes here (the
            // event countdown stays 0); the live bytes are published every
            // `PEAK_STEP` bytes, counted down in `until_sample`. Until this
            // thread has been here, `until_sample` holds an interval drawn at
            // the rate before (which another thread may have changed), not
            // that countdown.
            let left = self.until_sample.get();
            if left > size as u64 && self.drawn_rate.get() == 1 {
                self.until_sample.set(left - size as u64);
            } else {
                STATE.live.publish_live(record, size, false);
                self.until_sample.set(PEAK_STEP as u64);
            }
            // Another rate later draws its first interval afresh.
            self.drawn_rate.set(1);
            self.event_span.set(0);
            self.until_event.set(0);
            true
        } else {
            STATE.live.publish_live(record, size, false);
            // Bytes allocated since the last event, this allocation included.
            let counted = (self.event_span.get().saturating_sub(self.until_event.get()))
                .saturating_add(size as u64);
            let mut until_sample = self.until_sample.get();
            if until_sample == 0 || self.drawn_rate.get() != rate {
                // First allocation of this thread, or the rate changed.
                until_sample = self.next_interval(rate);
                self.drawn_rate.set(rate);
            }
            let sampled = counted >= until_sample;
            until_sample = if sampled {
                self.next_interval(rate)
            } else {
                until_sample - counted
            };
            self.until_sample.set(until_sample);
            let span = until_sample.min(PEAK_STEP as u64);
            self.event_span.set(span);
            self.until_event.set(span);
            sampled
        };
        if sampled {
            sample_site(self)
        } else {
            0
        }
    }

    /// An exponentially distributed interval with mean `rate` (a Poisson
    /// process on bytes, as Go and jemalloc sample).
    #[cold]
    fn next_interval(&self, rate: u64) -> u64 {
        let mut state = self.rng.get();
        if state == 0 {
            state = (self as *const ThreadState as u64) ^ 0x2545_F491_4F6C_DD1D;
        }
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        self.rng.set(state);
        let random = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        let uniform = (random as f64 + 1.0) / (1u64 << 53) as f64;
        let interval = -uniform.ln() * rate as f64;
        (interval as u64).max(1)
    }

    #[inline(always)]
    fn stack_bounds(&self) -> (usize, usize) {
        let cached = self.stack_bounds.get();
        if cached.1 != 0 {
            return cached;
        }
        self.look_up_stack_bounds()
    }

    #[cold]
    #[inline(never)]
    fn look_up_stack_bounds(&self) -> (usize, usize) {
        let bounds = crate::sys::thread_stack_bounds().unwrap_or((1, 1));
        self.stack_bounds.set(bounds);
        bounds
    }
}

/// The header of a tracked block.
///
/// # Safety
/// `block` must be a live block returned by a `Tracker`.
#[inline]
pub(crate) unsafe fn header_of(block: usize) -> Header {
    // SAFETY: every tracker block is preceded by its header, 8-aligned.
    unsafe { core::ptr::read((block - core::mem::size_of::<Header>()) as *const Header) }
}

/// # Safety
/// `block` must be a block returned by a `Tracker`, still allocated.
#[inline]
unsafe fn write_header(block: *mut u8, header: Header) {
    // SAFETY: the header space below the block is ours, 8-aligned.
    unsafe {
        core::ptr::write(
            block.sub(core::mem::size_of::<Header>()).cast::<Header>(),
            header,
        )
    }
}

/// The layout asked of the inner allocator for a block of `layout`: room for
/// the header, and at least 8-byte alignment so the header is aligned.
#[inline(always)]
fn inner_layout(layout: Layout) -> Option<Layout> {
    const HEADER: usize = core::mem::size_of::<Header>();
    if layout.align() <= HEADER {
        // The usual case, in one compare: a 16-byte header, alignment 8 or
        // 16. (Refuses the sizes within 32 bytes of `isize::MAX` that the
        // general rule below might let through: no allocator has them.)
        if layout.size() > isize::MAX as usize - 2 * HEADER {
            return None;
        }
        // SAFETY: the alignment is a power of two; the size plus the header,
        // rounded up to at most 16, fits `isize`.
        return Some(unsafe {
            Layout::from_size_align_unchecked(layout.size() + HEADER, layout.align().max(8))
        });
    }
    let align = layout.align();
    let size = layout.size().checked_add(header_space(align))?;
    // `Layout`'s own rule: the size rounded up to the alignment fits isize.
    if size > isize::MAX as usize - (align - 1) {
        return None;
    }
    // SAFETY: `align` is a power of two, and the size was just checked.
    Some(unsafe { Layout::from_size_align_unchecked(size, align) })
}

/// The allocation-site stack of a sampled allocation, or 0. Inlined into
/// its one caller, [`ThreadState::allocation_event`], so that the walk
/// starts at most two frames inside the tracker (see [`stacks::capture`]).
#[inline(always)]
fn sample_site(thread: &ThreadState) -> u32 {
    let (low, high) = thread.stack_bounds();
    if high <= 1 {
        return 0;
    }
    let mut buffer = [core::mem::MaybeUninit::uninit(); stacks::MAX_FRAMES];
    // Leaves out the first return address, into `allocation_event`.
    let stack = stacks::capture(low, high, &mut buffer);
    STATE.depot.intern(&stack, &thread.sites)
}

/// The short site of an allocation that is not sampled: its first
/// [`stacks::SHORT_FRAMES`] return addresses, as a depot id (0 if the
/// depot is full). Inlined into [`Tracker::allocate`], so the walk starts
/// at the frame of the tracker's `GlobalAlloc` method (inlined into
/// `__rust_alloc`), whose return address is into the allocating code.
#[inline(always)]
fn short_site(thread: &ThreadState) -> u32 {
    let (low, high) = thread.stack_bounds();
    stacks::short_site(low, high, &thread.short_sites, &STATE.depot)
}

impl<A: GlobalAlloc> Tracker<A> {
    /// Allocates `layout` from the inner allocator with a header; records it
    /// unless the thread is already inside the tracker.
    #[inline(always)]
    unsafe fn allocate(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        let Some(inner) = inner_layout(layout) else {
            return core::ptr::null_mut();
        };
        let header = header_space(layout.align());
        let size = layout.size();
        let mut stack_id = 0;
        let busy = match this_thread() {
            Some((thread, Some(record))) => {
                let busy = Busy::enter(record, &STATE.live);
                if busy.is_some() {
                    // The sampling countdown, and the slow path when it runs out.
                    let left = thread.until_event.get();
                    if left > size as u64 {
                        thread.until_event.set(left - size as u64);
                    } else {
                        stack_id = thread.allocation_event(record, size);
                    }
                    // Not sampled: the short site.
                    if stack_id == 0 {
                        stack_id = short_site(thread);
                    }
                }
                busy
            }
            _ => None,
        };
        // SAFETY: `inner` has a non-zero size.
        let base = unsafe {
            if zeroed {
                self.inner.alloc_zeroed(inner)
            } else {
                self.inner.alloc(inner)
            }
        };
        if base.is_null() {
            return base;
        }
        // SAFETY: the block starts `header` bytes into what we got.
        let block = unsafe { base.add(header) };
        let Some(busy) = busy else {
            // Re-entered: the tracker's or a dump's own block, untracked.
            // SAFETY: `block` came from this tracker.
            unsafe { write_header(block, Header::untracked(size)) };
            return block;
        };
        let Some((slot, slot_word)) = busy.take_slot(&STATE.live) else {
            // The slot array cannot grow: refuse rather than lose the block.
            STATE.untracked_blocks.fetch_add(1, Ordering::Relaxed);
            // SAFETY: we just allocated it with this layout.
            unsafe { self.inner.dealloc(base, inner) };
            return core::ptr::null_mut();
        };
        // The header first, then the slot: see `Busy::publish`.
        // SAFETY: `block` came from this tracker.
        unsafe {
            write_header(
                block,
                Header {
                    slot,
                    stack_id,
                    size: size as u64,
                },
            )
        };
        busy.publish(slot_word, block as usize, size);
        block
    }
}

// SAFETY: every method forwards to `inner` with the layout grown by the
// header (the same computation for a block's whole life) and returns the
// inner block offset by the header, so callers get blocks of at least the
// size and alignment they asked for. The bookkeeping writes only the
// header space below each block and memory outside the heap.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Tracker<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.allocate(layout, false) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.allocate(layout, true) }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from `allocate` with this layout, so its
        // header is there and the inner layout computation succeeded.
        unsafe {
            let header = header_of(block as usize);
            if header.slot != NO_SLOT {
                match enter_busy() {
                    Some(busy) => busy.remove(&STATE.live, header.slot, layout.size()),
                    None => STATE.live.remove_reentrant(header.slot, layout.size()),
                }
            }
            let inner = inner_layout(layout).unwrap_unchecked();
            self.inner
                .dealloc(block.sub(header_space(layout.align())), inner)
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let header_bytes = header_space(layout.align());
        // SAFETY: as in `dealloc`.
        let (inner, old_header) = unsafe {
            (
                inner_layout(layout).unwrap_unchecked(),
                header_of(block as usize),
            )
        };
        let Some(new_inner) = Layout::from_size_align(new_size, layout.align())
            .ok()
            .and_then(inner_layout)
        else {
            return core::ptr::null_mut();
        };
        // Hold the thread busy across the move: a dump waits for it, so it
        // never sees the slot name a block the inner allocator just freed.
        let busy = if old_header.slot == NO_SLOT {
            None
        } else {
            enter_busy()
        };
        // SAFETY: forwarded contract, with the inner layout and size.
        let base = unsafe {
            self.inner
                .realloc(block.sub(header_bytes), inner, new_inner.size())
        };
        if base.is_null() {
            return base; // the old block is untouched and still live
        }
        // SAFETY: the new block starts after the header, which moved with it.
        let new_block = unsafe { base.add(header_bytes) };
        let new_header = Header {
            size: new_size as u64,
            ..old_header
        };
        // SAFETY: `new_block` is ours now.
        unsafe { write_header(new_block, new_header) };
        if old_header.slot != NO_SLOT {
            match busy {
                Some(busy) => busy.moved(
                    &STATE.live,
                    old_header.slot,
                    new_block as usize,
                    layout.size(),
                    new_size,
                ),
                None => STATE.live.moved_reentrant(
                    old_header.slot,
                    new_block as usize,
                    layout.size(),
                    new_size,
                ),
            }
        }
        new_block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_rates_from_the_environment_are_whole_numbers_of_bytes() {
        assert_eq!(parse_rate(b"4096"), EnvRate::Rate(4096));
        assert_eq!(parse_rate(b" 1\n"), EnvRate::Rate(1));
        for refused in [&b"0"[..], b"", b"12kb", b"-1", b"1.5", b"0x100", b"\xff"] {
            assert_eq!(parse_rate(refused), EnvRate::Refused, "{refused:?}");
        }
    }
}
