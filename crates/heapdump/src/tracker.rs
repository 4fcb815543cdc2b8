//! The tracking global allocator.
//!
//! `Tracker<A>` forwards every call to the allocator `A` and records each
//! live block in the sharded [`Table`]. A sampled fraction of allocations also
//! gets its call stack, by bytes, like Go's `runtime.MemProfileRate`.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::alloc::System;

use crate::stacks::{self, Depot};
use crate::table::{shard_of, Entry, Table};

/// Default mean number of bytes between sampled allocation sites (512 KiB,
/// as Go's `MemProfileRate`).
pub const DEFAULT_SAMPLE_RATE: u64 = 512 * 1024;

/// Environment variable read once, at the first allocation, to set the
/// sample rate (a number of bytes; 1 records every allocation's site).
pub const SAMPLE_RATE_ENV: &str = "HEAPDUMP_SAMPLE_RATE";

/// Live bytes are published to the global peak counter in steps this large,
/// so threads do not fight over one cache line on every allocation.
const PEAK_STEP: i64 = 256 * 1024;

/// A global allocator that records every live allocation so that
/// [`write()`](crate::write()) can dump them.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: heapdump::Tracker = heapdump::Tracker::system();
/// ```
///
/// Over another allocator: `heapdump::Tracker::new(mimalloc::MiMalloc)`.
/// The tables live outside the heap (in `mmap`ed memory) and are left out of
/// the dump.
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
    pub(crate) table: Table,
    pub(crate) depot: Depot,
    /// Set by the first tracked allocation: a `Tracker` is installed.
    pub(crate) installed: AtomicBool,
    /// Mean bytes between samples; 0 until read from the environment.
    pub(crate) sample_rate: AtomicU64,
    /// Approximate live bytes, published in `PEAK_STEP` steps.
    pub(crate) approximate_live: AtomicI64,
    pub(crate) peak_live: AtomicU64,
    /// Reallocations that left their old shard and wait for their new one
    /// (see `realloc`). A dump waits until there are none.
    pub(crate) moves_in_flight: AtomicUsize,
    /// Blocks that could not be recorded because the table could not grow.
    pub(crate) untracked_blocks: AtomicU64,
    /// Stopping other threads during a dump.
    pub(crate) stop: crate::threads::StopState,
}

pub(crate) static STATE: State = State {
    table: Table::new(),
    depot: Depot::new(),
    installed: AtomicBool::new(false),
    sample_rate: AtomicU64::new(0),
    approximate_live: AtomicI64::new(0),
    peak_live: AtomicU64::new(0),
    moves_in_flight: AtomicUsize::new(0),
    untracked_blocks: AtomicU64::new(0),
    stop: crate::threads::StopState::new(),
};

/// Per-thread state. Only `Copy` cells with a `const` initialiser, so the
/// first touch neither allocates nor registers a destructor.
struct ThreadState {
    /// Set while this thread is inside the tracker or writing a dump; its
    /// allocations then go straight to the inner allocator, untracked.
    busy: Cell<bool>,
    /// Bytes left until the next sampled allocation.
    until_sample: Cell<u64>,
    rng: Cell<u64>,
    /// Live bytes allocated minus freed by this thread, not yet published.
    live_delta: Cell<i64>,
    /// Top of this thread's stack, 0 until looked up, 1 if unknown.
    stack_high: Cell<usize>,
}

thread_local! {
    static THREAD: ThreadState = const {
        ThreadState {
            busy: Cell::new(false),
            until_sample: Cell::new(0),
            rng: Cell::new(0),
            live_delta: Cell::new(0),
            stack_high: Cell::new(0),
        }
    };
}

/// Marks the calling thread busy for the guard's life; `None` if it already
/// is (or its thread-locals are gone), in which case the caller must not
/// track.
pub(crate) struct BusyGuard(());

impl BusyGuard {
    pub(crate) fn enter() -> Option<BusyGuard> {
        THREAD
            .try_with(|thread| {
                if thread.busy.get() {
                    None
                } else {
                    thread.busy.set(true);
                    Some(BusyGuard(()))
                }
            })
            .ok()
            .flatten()
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let _ = THREAD.try_with(|thread| thread.busy.set(false));
    }
}

/// The sample rate in force, reading `HEAPDUMP_SAMPLE_RATE` the first time.
pub(crate) fn sample_rate() -> u64 {
    let rate = STATE.sample_rate.load(Ordering::Relaxed);
    if rate != 0 {
        return rate;
    }
    let from_env = rate_from_env().unwrap_or(DEFAULT_SAMPLE_RATE);
    // Keep a rate set by `set_sample_rate` meanwhile.
    match STATE
        .sample_rate
        .compare_exchange(0, from_env, Ordering::Relaxed, Ordering::Relaxed)
    {
        Ok(_) => from_env,
        Err(current) => current,
    }
}

fn rate_from_env() -> Option<u64> {
    // `std::env::var` allocates; getenv does not. The name is a C string.
    // SAFETY: a NUL-terminated name; the result, if not null, is a
    // NUL-terminated string owned by the C library.
    let value = unsafe { libc::getenv(c"HEAPDUMP_SAMPLE_RATE".as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: see above.
    let text = unsafe { core::ffi::CStr::from_ptr(value) }.to_str().ok()?;
    text.trim().parse::<u64>().ok().filter(|&rate| rate > 0)
}

/// Sets the mean number of bytes between sampled allocation sites: 1 records
/// every allocation's stack, 0 is treated as 1. Overrides
/// `HEAPDUMP_SAMPLE_RATE`. Takes effect at each thread's next sample.
pub fn set_sample_rate(bytes: u64) {
    STATE.sample_rate.store(bytes.max(1), Ordering::Relaxed);
    // Make threads draw a new countdown with the new rate soon: a thread
    // already counting down a long interval would otherwise keep it.
    let _ = THREAD.try_with(|thread| thread.until_sample.set(0));
}

impl ThreadState {
    /// Counts `size` bytes against the sampling countdown; true if this
    /// allocation is sampled.
    fn should_sample(&self, size: usize) -> bool {
        let rate = sample_rate();
        if rate <= 1 {
            return true;
        }
        let mut left = self.until_sample.get();
        if left == 0 {
            // First allocation of this thread, or the rate just changed.
            left = self.next_interval(rate);
        }
        if left > size as u64 {
            self.until_sample.set(left - size as u64);
            return false;
        }
        self.until_sample.set(self.next_interval(rate));
        true
    }

    /// An exponentially distributed interval with mean `rate` (a Poisson
    /// process on bytes, as Go and jemalloc sample).
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

    fn stack_high(&self) -> usize {
        let cached = self.stack_high.get();
        if cached != 0 {
            return cached;
        }
        let high = crate::sys::thread_stack_bounds().map_or(1, |(_, high)| high);
        self.stack_high.set(high);
        high
    }

    fn account(&self, delta: i64) {
        let pending = self.live_delta.get() + delta;
        if pending.abs() < PEAK_STEP {
            self.live_delta.set(pending);
            return;
        }
        self.live_delta.set(0);
        let live = STATE.approximate_live.fetch_add(pending, Ordering::Relaxed) + pending;
        if live > 0 {
            STATE.peak_live.fetch_max(live as u64, Ordering::Relaxed);
        }
    }
}

/// Records a new block; returns false if the table could not grow (the
/// caller then frees the block and reports an allocation failure).
#[inline(never)]
fn record_alloc(address: usize, size: usize) -> bool {
    let Some(_busy) = BusyGuard::enter() else {
        return true;
    };
    // Read before writing: a store on every allocation would bounce the
    // cache line between cores.
    if !STATE.installed.load(Ordering::Relaxed) {
        STATE.installed.store(true, Ordering::Relaxed);
    }
    let stack_id = THREAD
        .try_with(|thread| {
            thread.account(size as i64);
            if !thread.should_sample(size) {
                return 0;
            }
            let high = thread.stack_high();
            if high <= 1 {
                return 0;
            }
            let frames = stacks::capture(high);
            // The first return address is always into this function.
            STATE
                .depot
                .intern(&frames.pcs[..frames.len][1.min(frames.len)..])
        })
        .unwrap_or(0);
    let mut shard = STATE.table.lock(shard_of(address));
    shard
        .insert(Entry {
            address,
            size,
            stack_id,
        })
        .is_ok()
}

/// Forgets a block about to be freed. Must run before the inner free, so a
/// dump never reads freed memory.
#[inline]
fn record_free(address: usize) {
    let Some(_busy) = BusyGuard::enter() else {
        return;
    };
    let removed = STATE.table.lock(shard_of(address)).remove(address);
    if let Some(entry) = removed {
        let _ = THREAD.try_with(|thread| thread.account(-(entry.size as i64)));
    }
}

// SAFETY: every method forwards to `inner` with the caller's arguments and
// returns its result unchanged (or null after freeing the block, when the
// block cannot be recorded); the bookkeeping never touches the blocks.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Tracker<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let block = unsafe { self.inner.alloc(layout) };
        if !block.is_null() && !record_alloc(block as usize, layout.size()) {
            // SAFETY: we just allocated it with this layout.
            unsafe { self.inner.dealloc(block, layout) };
            return core::ptr::null_mut();
        }
        block
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let block = unsafe { self.inner.alloc_zeroed(layout) };
        if !block.is_null() && !record_alloc(block as usize, layout.size()) {
            // SAFETY: we just allocated it with this layout.
            unsafe { self.inner.dealloc(block, layout) };
            return core::ptr::null_mut();
        }
        block
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        record_free(block as usize);
        // SAFETY: forwarded contract.
        unsafe { self.inner.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(busy) = BusyGuard::enter() else {
            // SAFETY: forwarded contract.
            return unsafe { self.inner.realloc(block, layout, new_size) };
        };
        let old_address = block as usize;
        let old_shard_index = shard_of(old_address);
        // Hold the old shard across the inner realloc, so a dump sees the
        // block either before (old address, old contents) or after the move.
        let mut old_shard = STATE.table.lock(old_shard_index);
        // SAFETY: forwarded contract.
        let new_block = unsafe { self.inner.realloc(block, layout, new_size) };
        if new_block.is_null() {
            // The old block is untouched and still live.
            return new_block;
        }
        let old_entry = old_shard.remove(old_address);
        let stack_id = old_entry.map_or(0, |entry| entry.stack_id);
        let old_size = old_entry.map_or(0, |entry| entry.size as i64);
        let _ = THREAD.try_with(|thread| thread.account(new_size as i64 - old_size));
        let entry = Entry {
            address: new_block as usize,
            size: new_size,
            stack_id,
        };
        let new_shard_index = shard_of(entry.address);
        // Shards are locked in ascending order by dumps; taking a lower shard
        // while holding a higher one could deadlock against a dump. So only
        // try it, and if it is busy, let go of the old shard first, telling
        // dumps that a block is in flight so they wait for it.
        let inserted = if new_shard_index == old_shard_index {
            old_shard.insert(entry)
        } else if new_shard_index > old_shard_index {
            STATE.table.lock(new_shard_index).insert(entry)
        } else if let Some(mut new_shard) = STATE.table.try_lock(new_shard_index) {
            new_shard.insert(entry)
        } else {
            STATE.moves_in_flight.fetch_add(1, Ordering::AcqRel);
            drop(old_shard);
            let result = STATE.table.lock(new_shard_index).insert(entry);
            STATE.moves_in_flight.fetch_sub(1, Ordering::AcqRel);
            drop(busy);
            return note_untracked(result.is_ok(), new_block);
        };
        drop(old_shard);
        drop(busy);
        note_untracked(inserted.is_ok(), new_block)
    }
}

/// After a realloc the old block is gone, so even when the table cannot grow
/// (the system is out of memory) the new block must be returned; it is then
/// counted as untracked instead.
fn note_untracked(recorded: bool, block: *mut u8) -> *mut u8 {
    if !recorded {
        STATE.untracked_blocks.fetch_add(1, Ordering::Relaxed);
    }
    block
}
