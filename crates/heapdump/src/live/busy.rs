//! A thread's busy state: entering and leaving the tracker past the
//! gate, and what it does to its own record and the live set while
//! inside (taking, publishing and freeing slots); frees and moves from
//! inside the tracker (re-entered), which cannot use the record.

use core::sync::atomic::{fence, AtomicU64, Ordering};

use super::{
    add, push_free, LiveSet, SlotIndex, ThreadRecord, DONATE_LEN, EMPTY_LIST, GATE_CLOSED,
    GATE_NEEDS_FENCE, PEAK_STEP, PENDING,
};

/// The calling thread's side of the live set, valid while it is marked busy
/// with [`Busy::enter`].
pub(crate) struct Busy {
    record: &'static ThreadRecord,
    /// What `busy` goes back to: idle, or probing when this guard was
    /// taken by a signal handler that interrupted its thread's probe.
    restore: u32,
}

/// `ThreadRecord::busy`: outside the tracker.
pub(super) const IDLE: u32 = 0;
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
    /// free one; `None` if the slot array cannot grow. Returns its index and
    /// its word (found once, for [`Busy::publish`]). The slot reads as free
    /// until [`Busy::publish`].
    #[inline(always)]
    pub(crate) fn take_slot<'a>(&self, live: &'a LiveSet) -> Option<(SlotIndex, &'a AtomicU64)> {
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
            let slot = live.slot(index);
            slot.store(0, Ordering::Relaxed);
            return Some((index, slot));
        }
        // SAFETY: as above.
        let free = unsafe { &mut *self.record.free.get() };
        if free.len == 0 {
            return self.take_fresh_slot(live);
        }
        let index = free.head;
        let slot = live.slot(index);
        free.head = (slot.load(Ordering::Relaxed) >> 1) as SlotIndex;
        free.len -= 1;
        Some((index, slot))
    }

    /// [`Busy::take_slot`] with an empty free list: the next fresh index,
    /// refilling from the pool or the slot array first if need be.
    #[cold]
    #[inline(never)]
    fn take_fresh_slot<'a>(&self, live: &'a LiveSet) -> Option<(SlotIndex, &'a AtomicU64)> {
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
        Some((index, live.slot(index)))
    }

    /// Makes `slot` (from [`Busy::take_slot`]) name the block at `address`,
    /// whose header must already be written: a process forked at any
    /// instant then sees either a free slot or a block with its header (the
    /// store is a release).
    #[inline(always)]
    pub(crate) fn publish(&self, slot: &AtomicU64, address: usize, size: usize) {
        slot.store(address as u64, Ordering::Release);
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
    pub(super) fn flush_pending(&self, live: &LiveSet) {
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
