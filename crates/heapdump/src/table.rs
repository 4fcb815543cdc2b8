//! The live-allocation table: address -> (size, allocation-site stack).
//!
//! 64 shards, chosen by a hash of the address, each an open-addressing hash
//! table (linear probing, backward-shift deletion) in memory mapped with
//! `mmap`: outside the tracked heap, never allocated through the tracker, and
//! so never in the dump. Each shard has its own spin lock and its own
//! counters, so threads that allocate at the same time rarely touch the same
//! cache line (a single global lock or counter costs 2-10x on two threads:
//! see shared research, rust-heap-anchors.md §3). A dump holds every shard's
//! lock at once, which is what makes it a consistent snapshot.

use core::cell::UnsafeCell;
use core::ptr;

use crate::lock::SpinLock;
use crate::sys;

/// Number of shards; a power of two.
pub(crate) const SHARD_COUNT: usize = 64;

const INITIAL_CAPACITY: usize = 1024;

/// One live allocation.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub(crate) struct Entry {
    /// Address returned by the allocator; 0 marks an empty slot.
    pub(crate) address: usize,
    /// Requested size in bytes.
    pub(crate) size: usize,
    /// Allocation-site stack id, 0 if not sampled.
    pub(crate) stack_id: u64,
}

/// Counters of one shard, updated under its lock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) live_bytes: u64,
    pub(crate) live_objects: u64,
    pub(crate) allocated_bytes: u64,
    pub(crate) allocated_objects: u64,
    pub(crate) freed_bytes: u64,
    pub(crate) freed_objects: u64,
}

impl Counters {
    pub(crate) fn add(&mut self, other: &Counters) {
        self.live_bytes += other.live_bytes;
        self.live_objects += other.live_objects;
        self.allocated_bytes += other.allocated_bytes;
        self.allocated_objects += other.allocated_objects;
        self.freed_bytes += other.freed_bytes;
        self.freed_objects += other.freed_objects;
    }
}

struct ShardData {
    slots: *mut Entry,
    /// A power of two, or 0 before the first insert.
    capacity: usize,
    len: usize,
    counters: Counters,
}

/// One shard: a lock and the data it guards. Aligned to a cache line pair so
/// neighbouring shards do not share one.
#[repr(align(128))]
pub(crate) struct Shard {
    lock: SpinLock,
    data: UnsafeCell<ShardData>,
}

// SAFETY: `data` is only touched with `lock` held.
unsafe impl Sync for Shard {}

/// The whole table.
pub(crate) struct Table {
    shards: [Shard; SHARD_COUNT],
}

fn hash(address: usize) -> u64 {
    // Allocations are at least 8-aligned; drop the bits that never vary.
    ((address as u64) >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The shard an address belongs to.
pub(crate) fn shard_of(address: usize) -> usize {
    (hash(address) >> 32) as usize & (SHARD_COUNT - 1)
}

impl Table {
    pub(crate) const fn new() -> Table {
        Table {
            shards: [const {
                Shard {
                    lock: SpinLock::new(),
                    data: UnsafeCell::new(ShardData {
                        slots: ptr::null_mut(),
                        capacity: 0,
                        len: 0,
                        counters: Counters {
                            live_bytes: 0,
                            live_objects: 0,
                            allocated_bytes: 0,
                            allocated_objects: 0,
                            freed_bytes: 0,
                            freed_objects: 0,
                        },
                    }),
                }
            }; SHARD_COUNT],
        }
    }

    /// Locks shard `index` and returns a guard for it.
    pub(crate) fn lock(&self, index: usize) -> ShardGuard<'_> {
        let shard = &self.shards[index];
        shard.lock.lock();
        ShardGuard { shard }
    }

    /// Locks shard `index` if no one holds it.
    pub(crate) fn try_lock(&self, index: usize) -> Option<ShardGuard<'_>> {
        let shard = &self.shards[index];
        // `then`, not `then_some`: a guard built eagerly would unlock on drop.
        shard.lock.try_lock().then(|| ShardGuard { shard })
    }

    /// Bytes of memory the shards' slot arrays use.
    pub(crate) fn footprint(guards: &[ShardGuard<'_>]) -> u64 {
        guards
            .iter()
            .map(|guard| (guard.data().capacity * core::mem::size_of::<Entry>()) as u64)
            .sum()
    }
}

/// Exclusive access to one shard; unlocks on drop.
pub(crate) struct ShardGuard<'a> {
    shard: &'a Shard,
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        self.shard.lock.unlock();
    }
}

/// Why an insert failed.
#[derive(Debug)]
pub(crate) struct TableFull;

impl ShardGuard<'_> {
    fn data(&self) -> &ShardData {
        // SAFETY: the lock is held while the guard lives.
        unsafe { &*self.shard.data.get() }
    }

    #[allow(clippy::mut_from_ref)]
    fn data_mut(&mut self) -> &mut ShardData {
        // SAFETY: the lock is held while the guard lives, and `&mut self`
        // makes this the only reference.
        unsafe { &mut *self.shard.data.get() }
    }

    /// The shard's counters.
    pub(crate) fn counters(&self) -> Counters {
        self.data().counters
    }

    /// The live entries of this shard.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let data = self.data();
        let slots: &[Entry] = if data.capacity == 0 {
            &[]
        } else {
            // SAFETY: `slots` points to `capacity` initialised entries.
            unsafe { core::slice::from_raw_parts(data.slots, data.capacity) }
        };
        slots.iter().copied().filter(|entry| entry.address != 0)
    }

    /// Number of live entries in this shard.
    pub(crate) fn len(&self) -> usize {
        self.data().len
    }

    /// Records a new allocation. Fails only if the table cannot grow (the
    /// system is out of memory).
    pub(crate) fn insert(&mut self, entry: Entry) -> Result<(), TableFull> {
        let data = self.data_mut();
        if (data.len + 1) * 4 > data.capacity * 3 {
            grow(data)?;
        }
        let mask = data.capacity - 1;
        let mut index = home(entry.address, data.capacity);
        loop {
            // SAFETY: index is masked into the slot array.
            let slot = unsafe { &mut *data.slots.add(index) };
            if slot.address == 0 {
                *slot = entry;
                data.len += 1;
                break;
            }
            if slot.address == entry.address {
                // The allocator handed out an address we still think is live:
                // the block was freed behind our back (cannot happen through
                // this allocator). Count the old one as freed.
                data.counters.live_bytes -= slot.size as u64;
                data.counters.live_objects -= 1;
                data.counters.freed_bytes += slot.size as u64;
                data.counters.freed_objects += 1;
                *slot = entry;
                break;
            }
            index = (index + 1) & mask;
        }
        let counters = &mut data.counters;
        counters.live_bytes += entry.size as u64;
        counters.live_objects += 1;
        counters.allocated_bytes += entry.size as u64;
        counters.allocated_objects += 1;
        Ok(())
    }

    /// Forgets an allocation; returns it if it was tracked.
    pub(crate) fn remove(&mut self, address: usize) -> Option<Entry> {
        let data = self.data_mut();
        if data.capacity == 0 {
            return None;
        }
        let mask = data.capacity - 1;
        let mut index = home(address, data.capacity);
        loop {
            // SAFETY: index is masked into the slot array.
            let slot = unsafe { *data.slots.add(index) };
            if slot.address == 0 {
                return None;
            }
            if slot.address == address {
                break;
            }
            index = (index + 1) & mask;
        }
        // SAFETY: as above.
        let removed = unsafe { *data.slots.add(index) };
        // Backward-shift deletion: move later entries of the probe run into
        // the hole so lookups never stop early.
        let mut hole = index;
        let mut next = index;
        loop {
            next = (next + 1) & mask;
            // SAFETY: masked index.
            let candidate = unsafe { *data.slots.add(next) };
            if candidate.address == 0 {
                break;
            }
            let wanted = home(candidate.address, data.capacity);
            // Can `candidate` move back to `hole`? Only if its home slot is
            // not in the cyclic range (hole, next].
            let in_range = if hole <= next {
                hole < wanted && wanted <= next
            } else {
                hole < wanted || wanted <= next
            };
            if !in_range {
                // SAFETY: masked indices.
                unsafe { *data.slots.add(hole) = candidate };
                hole = next;
            }
        }
        // SAFETY: masked index.
        unsafe { *data.slots.add(hole) = Entry::default() };
        data.len -= 1;
        let counters = &mut data.counters;
        counters.live_bytes -= removed.size as u64;
        counters.live_objects -= 1;
        counters.freed_bytes += removed.size as u64;
        counters.freed_objects += 1;
        Some(removed)
    }
}

fn home(address: usize, capacity: usize) -> usize {
    let bits = capacity.trailing_zeros();
    (hash(address) >> (64 - bits)) as usize
}

fn grow(data: &mut ShardData) -> Result<(), TableFull> {
    let new_capacity = if data.capacity == 0 {
        INITIAL_CAPACITY
    } else {
        data.capacity * 2
    };
    let bytes = new_capacity * core::mem::size_of::<Entry>();
    let new_slots = sys::map(bytes).ok_or(TableFull)?.cast::<Entry>();
    let mask = new_capacity - 1;
    for old_index in 0..data.capacity {
        // SAFETY: old_index < capacity.
        let entry = unsafe { *data.slots.add(old_index) };
        if entry.address == 0 {
            continue;
        }
        let mut index = home(entry.address, new_capacity);
        // SAFETY: masked indices into the new, zeroed array.
        unsafe {
            while (*new_slots.add(index)).address != 0 {
                index = (index + 1) & mask;
            }
            *new_slots.add(index) = entry;
        }
    }
    if data.capacity != 0 {
        // SAFETY: the old array came from `sys::map` with this size.
        unsafe {
            sys::unmap(
                data.slots.cast(),
                data.capacity * core::mem::size_of::<Entry>(),
            )
        };
    }
    data.slots = new_slots;
    data.capacity = new_capacity;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_many_keeps_everything_findable() {
        static TABLE: Table = Table::new();
        let mut guard = TABLE.lock(0);
        let addresses: Vec<usize> = (1..20_000usize).map(|i| i * 48).collect();
        for &address in &addresses {
            guard
                .insert(Entry {
                    address,
                    size: address / 48,
                    stack_id: 0,
                })
                .unwrap();
        }
        assert_eq!(guard.len(), addresses.len());
        // Remove every third, then check the rest are all still there.
        for &address in addresses.iter().step_by(3) {
            assert_eq!(guard.remove(address).unwrap().size, address / 48);
        }
        for (i, &address) in addresses.iter().enumerate() {
            let found = guard.remove(address);
            assert_eq!(found.is_some(), i % 3 != 0, "address {address}");
        }
        assert_eq!(guard.len(), 0);
        let counters = guard.counters();
        assert_eq!(counters.live_objects, 0);
        assert_eq!(counters.allocated_objects, addresses.len() as u64);
    }
}
