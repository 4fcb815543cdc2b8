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
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::lock::SpinLock;
use crate::sys;

mod busy;
mod gate;
mod slots;

pub(crate) use busy::Busy;
use busy::IDLE;
pub(crate) use gate::GateError;
use slots::{push_free, FreeList, EMPTY_LIST};

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
    /// Allocation site: the depot id of the sampled stack, or of the short
    /// site of an allocation not sampled; 0 if none (depot ids fit in 32
    /// bits).
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
}

impl LiveSet {
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
            let (slot, word) = busy.take_slot(&LIVE).unwrap();
            busy.publish(word, address, size);
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
