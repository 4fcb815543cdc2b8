//! The live set: one slot per live allocation, and the per-thread records
//! that let the hot path run without any shared lock.
//!
//! Every block the tracker hands out starts with a 16-byte [`Header`] (just
//! below the address the caller gets) naming its *slot*: an 8-byte word in a
//! big array that holds the block's address while it is live. Allocating
//! takes a free slot index and writes the address into it (after the
//! header, so a forked child never sees a slot whose header is not written
//! yet); freeing reads the index from the header and pushes it on the
//! freeing thread's pending stack. The next allocation of that thread pops
//! it again (the slot still names the freed block until then: a dump skips
//! pending slots); only when frees outrun allocations and fill the stack
//! are its 64 slots cleared and moved to the thread's free list, all at
//! once. No hashing, no probing, no lock: the slot words are usually in
//! cache, and no cache line is shared between threads on the hot path. The
//! previous design (64 spin-locked hash-table shards) cost 2-4x the plain
//! allocator, mostly in cache misses on the table and lock lines bouncing
//! between cores (docs/PERFORMANCE.md).
//!
//! A dump still needs a consistent snapshot. Each thread owns a
//! [`ThreadRecord`] whose `busy` word it sets while inside the tracker. A
//! dump closes the gate ([`LiveSet::close_gate`]; new operations then wait), makes that store
//! visible to every thread at once with `membarrier(2)` (so the hot path
//! needs only compiler fences), and waits until no record is busy. From then
//! on no thread touches the live set until the gate opens again.
//!
//! Slot words: 0 = unused, an even value = the address of a live block, an
//! odd value = a free slot linking to the next free index (`next << 1 | 1`).
//! Everything here lives in memory mapped with `mmap`, outside the heap.

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::lock::SpinLock;
use crate::sys;

/// A slot index; `NO_SLOT` marks a block that is not tracked.
pub(crate) type SlotIndex = u32;
/// The header's slot index of a block the tracker did not record.
pub(crate) const NO_SLOT: SlotIndex = u32::MAX;

/// Bit of `LiveSet::gate`: a dump is reading the live set; wait.
const GATE_CLOSED: u32 = 1;
/// Bit of `LiveSet::gate`: `membarrier` is not available, so the hot path
/// needs a real fence between marking itself busy and reading the gate.
const GATE_NEEDS_FENCE: u32 = 2;

/// Slots per chunk of the slot array (8 MiB of address space each).
const CHUNK_SLOTS: usize = 1 << 20;
/// Chunks, mapped on demand: up to 2^32 - 1 slots.
const CHUNKS: usize = 4096;
/// Fresh slot indices a thread takes from the shared counter at a time.
const FRESH_BATCH: u32 = 4096;
/// A thread hands its free list to the shared pool once it is this long.
const DONATE_LEN: u32 = 8192;
/// Free lists the shared pool keeps separately; more are joined together.
const POOL_LISTS: usize = 64;
/// Freed slots a thread keeps for its next allocations before it clears
/// them and moves them to its free list, all at once.
const PENDING: usize = 64;
/// A thread publishes its live bytes to the shared peak counter once they
/// changed by this much since it last did, so threads do not fight over one
/// cache line on every allocation.
pub(crate) const PEAK_STEP: i64 = 256 * 1024;

/// The header before every block the tracker returns: 16 bytes, 8-aligned,
/// ending where the caller's block starts.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct Header {
    /// The block's slot, or [`NO_SLOT`].
    pub(crate) slot: SlotIndex,
    /// Allocation-site stack id, 0 if not sampled (depot ids fit in 32 bits).
    pub(crate) stack_id: u32,
    /// Requested size in bytes.
    pub(crate) size: u64,
}

impl Header {
    /// The header of a block the tracker does not record.
    pub(crate) fn untracked(size: usize) -> Header {
        Header {
            slot: NO_SLOT,
            stack_id: 0,
            size: size as u64,
        }
    }
}

/// Bytes of header space before a block of alignment `align`: 16, or the
/// alignment itself when larger, so the caller's block stays aligned.
#[inline]
pub(crate) fn header_space(align: usize) -> usize {
    align.max(core::mem::size_of::<Header>())
}

/// A free list threaded through the slot words: `len` indices from `head`.
#[derive(Clone, Copy)]
struct FreeList {
    head: SlotIndex,
    tail: SlotIndex,
    len: u32,
}

const EMPTY_LIST: FreeList = FreeList {
    head: NO_SLOT,
    tail: NO_SLOT,
    len: 0,
};

/// Cumulative allocation counters of one thread record.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) allocated_bytes: u64,
    pub(crate) allocated_objects: u64,
    pub(crate) freed_bytes: u64,
    pub(crate) freed_objects: u64,
}

impl Counters {
    pub(crate) fn live_bytes(&self) -> u64 {
        self.allocated_bytes.saturating_sub(self.freed_bytes)
    }

    pub(crate) fn live_objects(&self) -> u64 {
        self.allocated_objects.saturating_sub(self.freed_objects)
    }
}

/// What one thread owns. Only its owner writes it (plain loads and stores
/// through atomics, no read-modify-write); dumps and [`LiveSet::totals`] read it.
/// Aligned to two cache lines so records of different threads never share
/// one.
#[repr(C, align(128))]
pub(crate) struct ThreadRecord {
    /// Non-zero while the owner is inside the tracker (or writing a dump).
    busy: AtomicU32,
    claimed: AtomicBool,
    /// The next record of the registry; set once, before publication.
    next: AtomicPtr<ThreadRecord>,
    /// The live set this record belongs to (the tracker's, or a test's).
    owner: *const LiveSet,
    allocated_bytes: AtomicU64,
    allocated_objects: AtomicU64,
    freed_bytes: AtomicU64,
    freed_objects: AtomicU64,
    /// Owner only: this record's live bytes (allocated minus freed) as last
    /// added to [`LiveSet::approximate_live`].
    published_live: AtomicI64,
    /// Owner only: when `freed_bytes` reaches this, the owner publishes its
    /// live bytes (allocations publish at the tracker's sampling events).
    publish_at_freed: AtomicU64,
    /// Owner only: indices of free slots, and a fresh range `[next, end)`.
    free: UnsafeCell<FreeList>,
    fresh: UnsafeCell<(SlotIndex, SlotIndex)>,
    /// Owner only (and dumps, with the gate closed): slots of freed blocks,
    /// not cleared yet. A free pushes its slot here, an allocation pops one
    /// (both touch only this hot stack, not the slot array's free links);
    /// a full stack's slots are cleared and joined to the free list in one
    /// go, so their cache misses overlap. A dump clears them first, so it
    /// never reads a freed block.
    pending: UnsafeCell<Pending>,
}

/// See [`ThreadRecord::pending`].
struct Pending {
    len: usize,
    indices: [SlotIndex; PENDING],
}

// SAFETY: the `UnsafeCell`s are touched only by the owning thread (and by
// the thread-exit hook, on the owner, after which the record is unowned),
// by a dump while the gate is closed (the owner is then outside the
// tracker), and by `reset_after_fork` in a child where the owner does not
// exist.
unsafe impl Sync for ThreadRecord {}

/// Everything the live set shares between threads.
pub(crate) struct LiveSet {
    /// [`GATE_CLOSED`] while a dump reads the live set, plus
    /// [`GATE_NEEDS_FENCE`] until `membarrier` is known to work. One word,
    /// so the hot path reads one: zero means go on.
    gate: AtomicU32,
    initialised: AtomicBool,
    init_lock: SpinLock,
    /// The registry: every record ever mapped, newest first.
    records: AtomicPtr<ThreadRecord>,
    registry_lock: SpinLock,
    /// The slot array, in chunks mapped on demand.
    chunks: [AtomicPtr<u64>; CHUNKS],
    /// Indices below this are in mapped chunks (and have been handed out).
    fresh_next: AtomicU32,
    pool_lock: SpinLock,
    pool: UnsafeCell<[FreeList; POOL_LISTS]>,
    /// pthread key whose destructor returns a record at thread exit.
    exit_key: UnsafeCell<libc::pthread_key_t>,
    /// `exit_key` was created.
    exit_key_ok: AtomicBool,
    /// Frees of tracked blocks from inside the tracker (re-entered through
    /// a signal handler, say), which cannot touch the thread's record.
    reentrant_freed_bytes: AtomicU64,
    reentrant_freed_objects: AtomicU64,
    reentrant_allocated_bytes: AtomicU64,
    reentrant_allocated_objects: AtomicU64,
    /// Live bytes as the threads last published them (each when its own
    /// changed by [`PEAK_STEP`]), and the highest value seen.
    approximate_live: AtomicI64,
    peak_live: AtomicU64,
}

// SAFETY: `pool` is touched only under `pool_lock`; `exit_key` is written
// once under `init_lock` before `initialised` is set (Release) and read after
// it is seen (Acquire).
unsafe impl Sync for LiveSet {}

impl LiveSet {
    pub(crate) const fn new() -> LiveSet {
        LiveSet {
            gate: AtomicU32::new(GATE_NEEDS_FENCE),
            initialised: AtomicBool::new(false),
            init_lock: SpinLock::new(),
            records: AtomicPtr::new(ptr::null_mut()),
            registry_lock: SpinLock::new(),
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS],
            fresh_next: AtomicU32::new(0),
            pool_lock: SpinLock::new(),
            pool: UnsafeCell::new([EMPTY_LIST; POOL_LISTS]),
            exit_key: UnsafeCell::new(0),
            exit_key_ok: AtomicBool::new(false),
            reentrant_freed_bytes: AtomicU64::new(0),
            reentrant_freed_objects: AtomicU64::new(0),
            reentrant_allocated_bytes: AtomicU64::new(0),
            reentrant_allocated_objects: AtomicU64::new(0),
            approximate_live: AtomicI64::new(0),
            peak_live: AtomicU64::new(0),
        }
    }

    /// The highest live byte count seen (to within about twice
    /// [`PEAK_STEP`] per thread), and at least `live_now`.
    pub(crate) fn peak_live_bytes(&self, live_now: u64) -> u64 {
        self.peak_live.load(Ordering::Relaxed).max(live_now)
    }

    /// Adds what `record`'s live bytes changed by since it last did to the
    /// shared count, if that is at least [`PEAK_STEP`] (or anything, with
    /// `force`), and raises the peak. `allocating` is the size of a block
    /// being allocated and not counted in the record yet (so that one big
    /// block freed soon after still reaches the peak). Call from the
    /// record's owner.
    #[cold]
    #[inline(never)]
    pub(crate) fn publish_live(&self, record: &ThreadRecord, allocating: usize, force: bool) {
        let net = record
            .allocated_bytes
            .load(Ordering::Relaxed)
            .wrapping_add(allocating as u64)
            .wrapping_sub(record.freed_bytes.load(Ordering::Relaxed)) as i64;
        let delta = net.wrapping_sub(record.published_live.load(Ordering::Relaxed));
        if delta == 0 || (!force && delta.abs() < PEAK_STEP) {
            return;
        }
        record.published_live.store(net, Ordering::Relaxed);
        let live = self.approximate_live.fetch_add(delta, Ordering::Relaxed) + delta;
        if live > 0 {
            self.peak_live.fetch_max(live as u64, Ordering::Relaxed);
        }
    }

    // ---------------------------------------------------------------- slots

    #[inline]
    fn slot(&self, index: SlotIndex) -> &AtomicU64 {
        let chunk = self.chunks[index as usize / CHUNK_SLOTS].load(Ordering::Relaxed);
        // SAFETY: an index is only handed out once its chunk is mapped, and
        // that mapping happened-before through the pool lock or the fresh
        // counter; chunks are never unmapped.
        unsafe { AtomicU64::from_ptr(chunk.cast::<u64>().add(index as usize % CHUNK_SLOTS)) }
    }

    /// Calls `visit(slot, address)` for every live block. Call with the gate
    /// closed (or from tests, with no other thread allocating).
    pub(crate) fn for_each_live(&self, mut visit: impl FnMut(SlotIndex, usize)) {
        self.for_each_record(|record| {
            // SAFETY: with the gate closed no owner is inside the tracker.
            let pending = unsafe { &*record.pending.get() };
            for &index in &pending.indices[..pending.len] {
                // The owner clears it again later, when it reuses it.
                self.slot(index).store(0, Ordering::Relaxed);
            }
        });
        let end = self.fresh_next.load(Ordering::Acquire) as usize;
        for chunk_index in 0..end.div_ceil(CHUNK_SLOTS) {
            let chunk = self.chunks[chunk_index].load(Ordering::Acquire);
            if chunk.is_null() {
                continue;
            }
            let count = (end - chunk_index * CHUNK_SLOTS).min(CHUNK_SLOTS);
            // SAFETY: the chunk holds CHUNK_SLOTS words; `count` of them are
            // in use. Other threads write slot words only while the gate
            // is open.
            let words = unsafe { core::slice::from_raw_parts(chunk.cast::<u64>(), count) };
            for (index, &word) in words.iter().enumerate() {
                if word != 0 && word & 1 == 0 {
                    visit(
                        (chunk_index * CHUNK_SLOTS + index) as SlotIndex,
                        word as usize,
                    );
                }
            }
        }
    }

    /// Slot indices handed out so far: at least the number of live blocks.
    pub(crate) fn slots_handed_out(&self) -> usize {
        self.fresh_next.load(Ordering::Acquire) as usize
    }

    /// Bytes of memory the slot array and records use (upper bound: the
    /// slots handed out so far, and every record).
    pub(crate) fn footprint(&self) -> u64 {
        let slots = u64::from(self.fresh_next.load(Ordering::Relaxed)) * 8;
        let mut records = 0u64;
        self.for_each_record(|_| records += core::mem::size_of::<ThreadRecord>() as u64);
        slots + records
    }

    /// Maps the chunks that `[start, end)` needs. Called under `pool_lock`.
    fn map_chunks(&self, start: usize, end: usize) -> Option<()> {
        for chunk_index in start / CHUNK_SLOTS..end.div_ceil(CHUNK_SLOTS) {
            let chunk = self.chunks.get(chunk_index)?;
            if chunk.load(Ordering::Relaxed).is_null() {
                let mapped = sys::map(CHUNK_SLOTS * 8)?;
                chunk.store(mapped.cast(), Ordering::Release);
            }
        }
        Some(())
    }

    // -------------------------------------------------------------- records

    /// Sets up the exit hook and `membarrier` once (the fork handlers wait
    /// for the first refill: see [`LiveSet::refill`]).
    fn initialise(&self) {
        if self.initialised.load(Ordering::Acquire) {
            return;
        }
        let _init = self.init_lock.guard();
        if !self.initialised.load(Ordering::Relaxed) {
            // SAFETY: creating a key with a destructor that only touches
            // our records; written under `init_lock`.
            let created =
                unsafe { libc::pthread_key_create(self.exit_key.get(), Some(on_thread_exit)) };
            // Without a key, records of exited threads are not reused (and
            // `exit_key` must not be used: 0 may be another library's key).
            self.exit_key_ok.store(created == 0, Ordering::Relaxed);
            if sys::membarrier_register() {
                self.gate.fetch_and(!GATE_NEEDS_FENCE, Ordering::Release);
            }
            self.initialised.store(true, Ordering::Release);
        }
    }

    /// Claims a record for the calling thread: a returned one, or a new one.
    /// `None` if no memory could be mapped.
    pub(crate) fn claim_record(&'static self) -> Option<&'static ThreadRecord> {
        self.initialise();
        let mut found = None;
        self.for_each_record(|record| {
            if found.is_none()
                && !record.claimed.load(Ordering::Relaxed)
                && record
                    .claimed
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                found = Some(record);
            }
        });
        let record = match found {
            Some(record) => record,
            None => self.new_records()?,
        };
        if self.exit_key_ok.load(Ordering::Relaxed) {
            // SAFETY: the key was created by `initialise`; setting a value
            // does not allocate for the first keys of a process.
            unsafe {
                libc::pthread_setspecific(
                    *self.exit_key.get(),
                    (record as *const ThreadRecord).cast(),
                )
            };
        }
        Some(record)
    }

    /// Maps a page of new records, claims the first and publishes them all.
    fn new_records(&'static self) -> Option<&'static ThreadRecord> {
        const PER_MAP: usize = 4096 / core::mem::size_of::<ThreadRecord>();
        const _: () = assert!(PER_MAP >= 1, "a page holds at least one record");
        let base = sys::map(4096)?.cast::<ThreadRecord>();
        for index in 0..PER_MAP {
            // SAFETY: the mapping holds PER_MAP records, aligned (page).
            unsafe {
                base.add(index).write(ThreadRecord {
                    busy: AtomicU32::new(0),
                    claimed: AtomicBool::new(index == 0),
                    next: AtomicPtr::new(ptr::null_mut()),
                    owner: self,
                    allocated_bytes: AtomicU64::new(0),
                    allocated_objects: AtomicU64::new(0),
                    freed_bytes: AtomicU64::new(0),
                    freed_objects: AtomicU64::new(0),
                    published_live: AtomicI64::new(0),
                    publish_at_freed: AtomicU64::new(0),
                    free: UnsafeCell::new(EMPTY_LIST),
                    fresh: UnsafeCell::new((0, 0)),
                    pending: UnsafeCell::new(Pending {
                        len: 0,
                        indices: [NO_SLOT; PENDING],
                    }),
                })
            };
        }
        let registry = self.registry_lock.guard();
        for index in (0..PER_MAP).rev() {
            // SAFETY: as above; records are never unmapped.
            let record = unsafe { &*base.add(index) };
            record
                .next
                .store(self.records.load(Ordering::Relaxed), Ordering::Relaxed);
            self.records
                .store(base.wrapping_add(index), Ordering::Release);
        }
        drop(registry);
        // SAFETY: as above.
        Some(unsafe { &*base })
    }

    /// Calls `visit` for every record, claimed or not.
    pub(crate) fn for_each_record(&self, mut visit: impl FnMut(&'static ThreadRecord)) {
        let mut current = self.records.load(Ordering::Acquire);
        while !current.is_null() {
            // SAFETY: records are published fully initialised and never
            // unmapped.
            let record = unsafe { &*current };
            visit(record);
            current = record.next.load(Ordering::Relaxed);
        }
    }

    /// Totals over every record: exact while the gate is closed, otherwise
    /// a sum of counters read one after another.
    pub(crate) fn totals(&self) -> Counters {
        let mut totals = Counters {
            allocated_bytes: self.reentrant_allocated_bytes.load(Ordering::Relaxed),
            allocated_objects: self.reentrant_allocated_objects.load(Ordering::Relaxed),
            freed_bytes: self.reentrant_freed_bytes.load(Ordering::Relaxed),
            freed_objects: self.reentrant_freed_objects.load(Ordering::Relaxed),
        };
        self.for_each_record(|record| {
            totals.allocated_bytes += record.allocated_bytes.load(Ordering::Relaxed);
            totals.allocated_objects += record.allocated_objects.load(Ordering::Relaxed);
            totals.freed_bytes += record.freed_bytes.load(Ordering::Relaxed);
            totals.freed_objects += record.freed_objects.load(Ordering::Relaxed);
        });
        totals
    }

    // ----------------------------------------------------------------- gate

    /// Closes the gate and waits until no other thread is inside the
    /// tracker; the gate opens again when the guard is dropped. `own` (the
    /// dumping thread's record) is skipped. On an error the gate is open.
    pub(crate) fn close_gate(
        &self,
        own: &ThreadRecord,
        timeout: std::time::Duration,
    ) -> Result<GateClosed<'_>, GateError> {
        let gate = self.gate.fetch_or(GATE_CLOSED, Ordering::SeqCst);
        let closed = GateClosed { live: self };
        // Make the closed gate visible to every thread before reading their
        // busy words: with it, the hot path's busy store and gate load need
        // no fence of their own (an asymmetric Dekker handshake).
        if gate & GATE_NEEDS_FENCE != 0 {
            fence(Ordering::SeqCst);
        } else if !sys::membarrier() {
            // It worked when registered (a seccomp filter since?). Threads
            // fence from now on; this time, threads that passed the gate
            // without a fence may be missed, so no snapshot.
            let error = std::io::Error::last_os_error();
            self.gate.fetch_or(GATE_NEEDS_FENCE, Ordering::SeqCst);
            return Err(GateError::Barrier(error));
        }
        let deadline = std::time::Instant::now() + timeout;
        let mut all_idle = true;
        self.for_each_record(|record| {
            if core::ptr::eq(record, own) || !all_idle {
                return;
            }
            let mut spins = 0u32;
            while record.busy.load(Ordering::Acquire) != 0 {
                spins += 1;
                if spins < 100 {
                    core::hint::spin_loop();
                } else if std::time::Instant::now() < deadline {
                    sys::yield_now();
                } else {
                    all_idle = false;
                    return;
                }
            }
        });
        if all_idle {
            Ok(closed)
        } else {
            Err(GateError::Busy)
        }
    }

    /// Waits while the gate is closed. Call with the record not busy.
    #[cold]
    fn wait_at_gate(&self) {
        loop {
            let value = self.gate.load(Ordering::Acquire);
            if value & GATE_CLOSED == 0 {
                return;
            }
            sys::futex_wait(&self.gate, value);
        }
    }
}

impl LiveSet {
    /// In a child process after `fork`: only the forking thread exists, so
    /// every other record is returned (its free list dropped: it may have
    /// been mid-update), every lock a vanished thread may have held is
    /// released and the gate is opened. `own` is the forking thread's record, if it has one.
    pub(crate) fn reset_after_fork(&self, own: *const ThreadRecord) {
        self.for_each_record(|record| {
            if core::ptr::eq(record, own) {
                return;
            }
            record.busy.store(IDLE, Ordering::Relaxed);
            // SAFETY: the record's owner does not exist in this process.
            unsafe {
                *record.free.get() = EMPTY_LIST;
                *record.fresh.get() = (0, 0);
                let pending = &mut *record.pending.get();
                for &index in &pending.indices[..pending.len] {
                    self.slot(index).store(0, Ordering::Relaxed);
                }
                pending.len = 0;
            }
            record.claimed.store(false, Ordering::Relaxed);
        });
        self.registry_lock.unlock();
        self.pool_lock.unlock();
        // Forked while another thread was writing a dump: that dump does
        // not go on in the child, so its gate must not stay closed.
        self.gate.fetch_and(!GATE_CLOSED, Ordering::Relaxed);
    }
}

/// Why the gate could not be closed.
#[derive(Debug)]
pub(crate) enum GateError {
    /// A thread stayed inside the tracker past the timeout.
    Busy,
    /// `membarrier` failed.
    Barrier(std::io::Error),
}

/// The gate, closed: no other thread touches the live set until this is
/// dropped.
pub(crate) struct GateClosed<'a> {
    live: &'a LiveSet,
}

impl GateClosed<'_> {
    /// Keeps the gate closed past this guard, until [`LiveSet::open_gate`]
    /// (for `fork`, whose handlers cannot hold a guard).
    pub(crate) fn keep_closed(self) {
        core::mem::forget(self);
    }
}

impl Drop for GateClosed<'_> {
    fn drop(&mut self) {
        self.live.open_gate();
    }
}

impl LiveSet {
    /// Opens the gate and wakes the threads waiting at it.
    pub(crate) fn open_gate(&self) {
        self.gate.fetch_and(!GATE_CLOSED, Ordering::Release);
        sys::futex_wake_all(&self.gate);
    }
}

/// pthread key destructor: gives the exiting thread's free slots to the
/// pool and its record back to the registry (its counters stay, so totals
/// still count what the thread allocated and freed).
extern "C" fn on_thread_exit(record: *mut libc::c_void) {
    if record.is_null() {
        return;
    }
    // SAFETY: the key's value is always a record from the registry.
    let record = unsafe { &*record.cast::<ThreadRecord>() };
    crate::tracker::forget_record();
    // SAFETY: live sets are statics.
    let live = unsafe { &*record.owner };
    // Wait for a dump to finish: the free list lives in the slot words.
    let Some(busy) = Busy::enter(record, live) else {
        return; // exiting from inside the tracker: keep the record
    };
    busy.flush_pending(live);
    // SAFETY: we run on the owning thread, which is exiting.
    let free = unsafe { &mut *record.free.get() };
    let fresh = unsafe { &mut *record.fresh.get() };
    // Unused fresh indices go back as a free list.
    while fresh.0 < fresh.1 {
        let index = fresh.0;
        fresh.0 += 1;
        push_free(live, free, index);
    }
    live.donate(core::mem::replace(free, EMPTY_LIST));
    live.publish_live(record, 0, true);
    // Not busy any more *before* another thread can claim the record: the
    // new owner's busy flag must be its own.
    drop(busy);
    record.claimed.store(false, Ordering::Release);
}

#[inline]
fn push_free(live: &LiveSet, list: &mut FreeList, index: SlotIndex) {
    live.slot(index)
        .store((u64::from(list.head) << 1) | 1, Ordering::Relaxed);
    if list.len == 0 {
        list.tail = index;
    }
    list.head = index;
    list.len += 1;
}

impl LiveSet {
    /// Registers the tracker's `pthread_atfork` handlers, once. Called from
    /// the first refill, which comes after the inner allocator returned the
    /// process's first tracked block: an inner allocator that registers its
    /// own handlers when it starts (to hold its locks across a fork) has
    /// done so by then, and handlers registered later prepare first. Ours
    /// must: they wait for every thread to leave the tracker, and a thread
    /// inside the inner allocator cannot once the inner's handler holds its
    /// locks.
    fn register_fork_handlers(&self) {
        // Once per process, whatever live set asks: the handlers act on the
        // tracker's, and registered twice they would deadlock a fork.
        static REGISTERED: AtomicBool = AtomicBool::new(false);
        if REGISTERED.swap(true, Ordering::Relaxed) {
            return;
        }
        // SAFETY: registers handlers that only take and release the
        // tracker's own locks and gate (see `tracker::before_fork`).
        unsafe {
            libc::pthread_atfork(
                Some(crate::tracker::before_fork),
                Some(crate::tracker::after_fork_in_parent),
                Some(crate::tracker::after_fork_in_child),
            )
        };
    }

    /// Gives a free list to the shared pool.
    fn donate(&self, list: FreeList) {
        if list.len == 0 {
            return;
        }
        let _pool = self.pool_lock.guard();
        // SAFETY: under `pool_lock`.
        let pool = unsafe { &mut *self.pool.get() };
        if let Some(empty) = pool.iter_mut().find(|entry| entry.len == 0) {
            *empty = list;
        } else {
            // Join it in front of the first list.
            let first = &mut pool[0];
            self.slot(list.tail)
                .store((u64::from(first.head) << 1) | 1, Ordering::Relaxed);
            first.head = list.head;
            first.len += list.len;
        }
    }

    /// Refills an empty thread: a list from the pool, or a fresh range.
    #[cold]
    fn refill(&self, free: &mut FreeList, fresh: &mut (SlotIndex, SlotIndex)) -> Option<()> {
        self.register_fork_handlers();
        let _pool = self.pool_lock.guard();
        // SAFETY: under `pool_lock`.
        let pool = unsafe { &mut *self.pool.get() };
        if let Some(entry) = pool.iter_mut().find(|entry| entry.len != 0) {
            *free = core::mem::replace(entry, EMPTY_LIST);
            return Some(());
        }
        let start = self.fresh_next.load(Ordering::Relaxed);
        let end = start
            .checked_add(FRESH_BATCH)
            .filter(|&end| end != NO_SLOT)?;
        self.map_chunks(start as usize, end as usize)?;
        self.fresh_next.store(end, Ordering::Release);
        *fresh = (start, end);
        Some(())
    }
}

/// The calling thread's side of the live set, valid while it is marked busy
/// with [`Busy::enter`].
pub(crate) struct Busy {
    record: &'static ThreadRecord,
    /// What `busy` goes back to: idle, or probing when this guard was
    /// taken by a signal handler that interrupted its thread's probe.
    restore: u32,
}

/// `ThreadRecord::busy`: outside the tracker.
const IDLE: u32 = 0;
/// `ThreadRecord::busy`: checking the gate, not yet inside.
const PROBING: u32 = 1;
/// `ThreadRecord::busy`: inside the tracker (or writing a dump).
const INSIDE: u32 = 2;

impl Busy {
    /// Marks `record` busy; `None` if it already is (the tracker was
    /// re-entered, or this thread is writing a dump). Waits first while a
    /// dump has the gate closed.
    #[inline(always)]
    pub(crate) fn enter(record: &'static ThreadRecord, live: &LiveSet) -> Option<Busy> {
        // Inside already: re-entered from the tracker, or from a signal
        // handler that interrupted it. A dump waits for the outer call, so
        // the caller's re-entrant path cannot race with one. (A handler that
        // interrupted a mere probe must pass the gate itself: the outer call
        // has not, and a dump may be reading.)
        let restore = record.busy.load(Ordering::Relaxed);
        if restore == INSIDE {
            return None;
        }
        record.busy.store(PROBING, Ordering::Relaxed);
        // Only the compiler must not reorder here: `close_gate`'s
        // membarrier orders the other side.
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        if live.gate.load(Ordering::Relaxed) != 0 {
            // Closed, or no membarrier: the slow way.
            return Some(Self::enter_past_gate(record, live, restore));
        }
        record.busy.store(INSIDE, Ordering::Relaxed);
        Some(Busy { record, restore })
    }

    /// [`Busy::enter`] when the gate word is not zero: fences if there is no
    /// membarrier, waits while the gate is closed.
    #[cold]
    #[inline(never)]
    fn enter_past_gate(record: &'static ThreadRecord, live: &LiveSet, restore: u32) -> Busy {
        loop {
            let mut gate = live.gate.load(Ordering::Relaxed);
            if gate & GATE_NEEDS_FENCE != 0 {
                // No membarrier: this side needs the real fence.
                fence(Ordering::SeqCst);
                gate = live.gate.load(Ordering::Relaxed);
            }
            if gate & GATE_CLOSED == 0 {
                record.busy.store(INSIDE, Ordering::Relaxed);
                return Busy { record, restore };
            }
            record.busy.store(IDLE, Ordering::Release);
            live.wait_at_gate();
            record.busy.store(PROBING, Ordering::Relaxed);
            core::sync::atomic::compiler_fence(Ordering::SeqCst);
        }
    }

    /// The record this guard marks busy.
    pub(crate) fn record(&self) -> &'static ThreadRecord {
        self.record
    }

    /// Takes a slot for a new block: the one this thread freed last, else a
    /// free one; `None` if the slot array cannot grow. The slot reads as
    /// free until [`Busy::publish`].
    #[inline(always)]
    pub(crate) fn take_slot(&self, live: &LiveSet) -> Option<SlotIndex> {
        // SAFETY: the owner is busy, so nothing else on this thread is
        // touching its pending stack or free list (re-entry finds it busy
        // and stays out).
        let pending = unsafe { &mut *self.record.pending.get() };
        if pending.len != 0 {
            pending.len -= 1;
            // SAFETY: `len < PENDING` now.
            let index = unsafe { *pending.indices.get_unchecked(pending.len) };
            // Off the pending stack, the slot must not name the freed block
            // any more: a child forked without the gate closed (it timed
            // out) would take it for a live one. `publish` writes the same
            // line right after.
            live.slot(index).store(0, Ordering::Relaxed);
            return Some(index);
        }
        // SAFETY: as above.
        let free = unsafe { &mut *self.record.free.get() };
        if free.len == 0 {
            return self.take_fresh_slot(live);
        }
        let index = free.head;
        free.head = (live.slot(index).load(Ordering::Relaxed) >> 1) as SlotIndex;
        free.len -= 1;
        Some(index)
    }

    /// [`Busy::take_slot`] with an empty free list: the next fresh index,
    /// refilling from the pool or the slot array first if need be.
    #[cold]
    #[inline(never)]
    fn take_fresh_slot(&self, live: &LiveSet) -> Option<SlotIndex> {
        // SAFETY: as in `take_slot`.
        let (free, fresh) =
            unsafe { (&mut *self.record.free.get(), &mut *self.record.fresh.get()) };
        if fresh.0 == fresh.1 {
            live.refill(free, fresh)?;
            if free.len != 0 {
                return self.take_slot(live);
            }
        }
        let index = fresh.0;
        fresh.0 += 1;
        Some(index)
    }

    /// Makes slot `index` name the block at `address`, whose header must
    /// already be written: a process forked at any instant then sees either
    /// a free slot or a block with its header (the store is a release).
    #[inline(always)]
    pub(crate) fn publish(&self, live: &LiveSet, index: SlotIndex, address: usize, size: usize) {
        live.slot(index).store(address as u64, Ordering::Release);
        add(&self.record.allocated_bytes, size as u64);
        add(&self.record.allocated_objects, 1);
    }

    /// Forgets the block in slot `index` (of `size` bytes).
    #[inline(always)]
    pub(crate) fn remove(&self, live: &LiveSet, index: SlotIndex, size: usize) {
        // SAFETY: see `take_slot`.
        if unsafe { (*self.record.pending.get()).len } == PENDING {
            self.flush_pending(live);
        }
        // SAFETY: see `take_slot` (and no other reference is alive now).
        let pending = unsafe { &mut *self.record.pending.get() };
        // SAFETY: `len < PENDING` here: a full stack was just flushed.
        unsafe { *pending.indices.get_unchecked_mut(pending.len) = index };
        pending.len += 1;
        self.count_free(live, size);
    }

    /// Counts a block of `size` bytes freed; every [`PEAK_STEP`] bytes,
    /// publishes the live bytes.
    #[inline(always)]
    fn count_free(&self, live: &LiveSet, size: usize) {
        let freed = add(&self.record.freed_bytes, size as u64);
        add(&self.record.freed_objects, 1);
        if freed >= self.record.publish_at_freed.load(Ordering::Relaxed) {
            self.freeing_event(live, freed);
        }
    }

    /// Every [`PEAK_STEP`] bytes freed (or moved by a realloc): publish the
    /// live bytes if they changed by a step.
    #[cold]
    #[inline(never)]
    fn freeing_event(&self, live: &LiveSet, freed: u64) {
        live.publish_live(self.record, 0, false);
        self.record
            .publish_at_freed
            .store(freed.wrapping_add(PEAK_STEP as u64), Ordering::Relaxed);
    }

    /// Clears the pending slots and puts them on the free list.
    #[cold]
    #[inline(never)]
    fn flush_pending(&self, live: &LiveSet) {
        // SAFETY: see `take_slot`.
        let (pending, free) = unsafe {
            (
                &mut *self.record.pending.get(),
                &mut *self.record.free.get(),
            )
        };
        for &index in &pending.indices[..pending.len] {
            push_free(live, free, index);
        }
        pending.len = 0;
        if free.len >= DONATE_LEN {
            live.donate(core::mem::replace(free, EMPTY_LIST));
        }
    }

    /// Moves the block in slot `index` to a new address (a realloc).
    #[inline]
    pub(crate) fn moved(
        &self,
        live: &LiveSet,
        index: SlotIndex,
        address: usize,
        old_size: usize,
        new_size: usize,
    ) {
        live.slot(index).store(address as u64, Ordering::Relaxed);
        add(&self.record.allocated_bytes, new_size as u64);
        add(&self.record.allocated_objects, 1);
        self.count_free(live, old_size);
        if new_size.abs_diff(old_size) >= PEAK_STEP as usize {
            // One big step (16 bytes grown to 1 GiB, say): publish now.
            live.publish_live(self.record, 0, false);
        }
    }
}

impl Drop for Busy {
    #[inline(always)]
    fn drop(&mut self) {
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        self.record.busy.store(self.restore, Ordering::Release);
    }
}

impl LiveSet {
    /// Forgets a tracked block freed from inside the tracker (re-entered),
    /// when the thread's free list may be mid-update: the slot is cleared and
    /// its index is not reused.
    #[cold]
    pub(crate) fn remove_reentrant(&self, index: SlotIndex, size: usize) {
        self.slot(index).store(0, Ordering::Relaxed);
        self.reentrant_freed_bytes
            .fetch_add(size as u64, Ordering::Relaxed);
        self.reentrant_freed_objects.fetch_add(1, Ordering::Relaxed);
        // No record to publish through: straight to the shared count.
        self.approximate_live
            .fetch_sub(size as i64, Ordering::Relaxed);
    }

    /// A realloc from inside the tracker (the dumping thread, say) moved the
    /// tracked block in slot `index`.
    #[cold]
    pub(crate) fn moved_reentrant(
        &self,
        index: SlotIndex,
        address: usize,
        old_size: usize,
        new_size: usize,
    ) {
        self.slot(index).store(address as u64, Ordering::Relaxed);
        self.reentrant_freed_bytes
            .fetch_add(old_size as u64, Ordering::Relaxed);
        self.reentrant_freed_objects.fetch_add(1, Ordering::Relaxed);
        self.reentrant_allocated_bytes
            .fetch_add(new_size as u64, Ordering::Relaxed);
        self.reentrant_allocated_objects
            .fetch_add(1, Ordering::Relaxed);
        let live = self
            .approximate_live
            .fetch_add(new_size as i64 - old_size as i64, Ordering::Relaxed);
        self.peak_live.fetch_max(
            (live + new_size as i64 - old_size as i64).max(0) as u64,
            Ordering::Relaxed,
        );
    }
}

/// `counter += value` by the counter's only writer: a plain load and store,
/// no locked instruction. Returns the new value.
#[inline]
fn add(counter: &AtomicU64, value: u64) -> u64 {
    let sum = counter.load(Ordering::Relaxed).wrapping_add(value);
    counter.store(sum, Ordering::Relaxed);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_every_live_block_is_found() {
        static LIVE: LiveSet = LiveSet::new();
        let record = LIVE.claim_record().unwrap();
        let busy = Busy::enter(record, &LIVE).unwrap();
        let insert = |address: usize, size: usize| {
            let slot = busy.take_slot(&LIVE).unwrap();
            busy.publish(&LIVE, slot, address, size);
            slot
        };
        let mut slots = Vec::new();
        for address in (1..20_000usize).map(|i| i * 64) {
            slots.push((address, insert(address, 48)));
        }
        for &(_, slot) in slots.iter().step_by(2) {
            busy.remove(&LIVE, slot, 48);
        }
        let mut found = Vec::new();
        LIVE.for_each_live(|_, address| found.push(address));
        found.sort_unstable();
        let expected: Vec<usize> = slots.iter().skip(1).step_by(2).map(|&(a, _)| a).collect();
        assert_eq!(found, expected);
        // Freed slots come back before fresh ones.
        let reused = insert(8, 8);
        assert!(slots.iter().step_by(2).any(|&(_, slot)| slot == reused));
        let totals = LIVE.totals();
        assert_eq!(totals.live_objects(), 10_000);
        assert_eq!(totals.live_bytes(), 9_999 * 48 + 8);
    }
}
