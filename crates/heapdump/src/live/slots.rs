//! Slots: the slot array (mapped in chunks on demand), the free lists
//! threaded through its words, and the shared pool of free lists.

use core::sync::atomic::{AtomicU64, Ordering};

use super::{LiveSet, SlotIndex, ThreadRecord, CHUNK_SLOTS, FRESH_BATCH, NO_SLOT};
use crate::sys;

/// A free list threaded through the slot words: `len` indices from `head`.
#[derive(Clone, Copy)]
pub(super) struct FreeList {
    pub(super) head: SlotIndex,
    pub(super) tail: SlotIndex,
    pub(super) len: u32,
}

pub(super) const EMPTY_LIST: FreeList = FreeList {
    head: NO_SLOT,
    tail: NO_SLOT,
    len: 0,
};

impl LiveSet {
    // ---------------------------------------------------------------- slots

    #[inline]
    pub(super) fn slot(&self, index: SlotIndex) -> &AtomicU64 {
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
    pub(super) fn map_chunks(&self, start: usize, end: usize) -> Option<()> {
        for chunk_index in start / CHUNK_SLOTS..end.div_ceil(CHUNK_SLOTS) {
            let chunk = self.chunks.get(chunk_index)?;
            if chunk.load(Ordering::Relaxed).is_null() {
                let mapped = sys::map(CHUNK_SLOTS * 8)?;
                chunk.store(mapped.cast(), Ordering::Release);
            }
        }
        Some(())
    }
}

#[inline]
pub(super) fn push_free(live: &LiveSet, list: &mut FreeList, index: SlotIndex) {
    live.slot(index)
        .store((u64::from(list.head) << 1) | 1, Ordering::Relaxed);
    if list.len == 0 {
        list.tail = index;
    }
    list.head = index;
    list.len += 1;
}

impl LiveSet {
    /// Gives a free list to the shared pool.
    pub(super) fn donate(&self, list: FreeList) {
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
    pub(super) fn refill(
        &self,
        free: &mut FreeList,
        fresh: &mut (SlotIndex, SlotIndex),
    ) -> Option<()> {
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
