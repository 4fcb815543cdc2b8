//! Allocation-site stacks: a frame-pointer walk and a deduplicating depot.
//!
//! The walk reads the chain of saved frame pointers, checked against the
//! thread's stack bounds so it never reads outside the stack even when some
//! frame was compiled without frame pointers (the chain then just ends
//! early). Build with `-C force-frame-pointers=yes` for complete stacks.
//!
//! The depot stores each distinct stack once, as raw return addresses, in
//! memory mapped outside the heap. Symbolisation happens in the reader.

use core::cell::UnsafeCell;
use core::ptr;

use crate::lock::SpinLock;
use crate::sys;

/// Most frames kept per stack.
pub(crate) const MAX_FRAMES: usize = 64;

/// Room for a captured stack. Left uninitialised: zeroing 512 bytes on
/// every sampled allocation would cost as much as the walk.
pub(crate) type FrameBuffer = [core::mem::MaybeUninit<usize>; MAX_FRAMES];

/// Walks the frame-pointer chain of the calling thread.
///
/// `[stack_low, stack_high)` is the thread's stack. The walk only runs when
/// the stack pointer is inside it (code running on another stack, a
/// coroutine's or a signal stack, gets no frames: the space between its
/// stack pointer and the thread's stack top may be unmapped), and stops at
/// the first frame pointer that is not above the previous one, not aligned,
/// or outside `[stack pointer, stack_high)`. Returns the return addresses,
/// innermost first, written into `buffer`.
#[inline(never)]
pub(crate) fn capture(stack_low: usize, stack_high: usize, buffer: &mut FrameBuffer) -> &[usize] {
    let mut len = 0;
    let (mut frame, stack_pointer) = frame_and_stack_pointer();
    if stack_pointer < stack_low || stack_pointer >= stack_high {
        return &[];
    }
    // Frames live between the stack pointer and the top of the stack. Without
    // frame pointers the register may hold anything: these bounds keep the
    // walk inside the mapped part of the stack.
    while len < MAX_FRAMES {
        let word = core::mem::size_of::<usize>();
        if frame < stack_pointer
            || !frame.is_multiple_of(word)
            || frame
                .checked_add(2 * word)
                .is_none_or(|end| end > stack_high)
        {
            break;
        }
        // SAFETY: [frame, frame + 2 words) lies inside the current thread's
        // stack, above the current frame, so it is mapped and readable.
        let (next, return_address) = unsafe {
            let slot = frame as *const usize;
            (ptr::read(slot), ptr::read(slot.add(1)))
        };
        if return_address == 0 {
            break;
        }
        buffer[len].write(return_address);
        len += 1;
        if next <= frame {
            break;
        }
        frame = next;
    }
    // SAFETY: the first `len` entries were written above.
    unsafe { core::slice::from_raw_parts(buffer.as_ptr().cast::<usize>(), len) }
}

/// The frame-pointer and stack-pointer registers.
#[inline(always)]
fn frame_and_stack_pointer() -> (usize, usize) {
    let fp: usize;
    let sp: usize;
    // SAFETY: reading registers has no side effects.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("mov {}, rbp", "mov {}, rsp", out(reg) fp, out(reg) sp,
            options(nomem, nostack, preserves_flags));
    }
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("mov {}, x29", "mov {}, sp", out(reg) fp, out(reg) sp,
            options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // No walker for this architecture: an empty stack.
        fp = 0;
        sp = usize::MAX;
    }
    (fp, sp)
}

/// Entries of a thread's [`SiteCache`].
const SITE_CACHE_ENTRIES: usize = 64;

/// A thread's recently seen stacks: `(hash, id)` pairs, direct-mapped by
/// hash. A hit is checked against the depot's frames, so a hash collision
/// costs a lookup, never a wrong id.
pub(crate) struct SiteCache {
    entries: [core::cell::Cell<(u64, u64)>; SITE_CACHE_ENTRIES],
}

impl SiteCache {
    pub(crate) const fn new() -> SiteCache {
        SiteCache {
            entries: [const { core::cell::Cell::new((0, 0)) }; SITE_CACHE_ENTRIES],
        }
    }
}

/// Number of depot shards; a power of two.
const DEPOT_SHARDS: usize = 16;
/// Address space reserved for each shard's frames (committed as used).
const ARENA_BYTES: usize = 64 << 20;
const INITIAL_SLOTS: usize = 1024;

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Slot {
    /// Hash of the frames; 0 marks an empty slot (real hashes are forced odd).
    hash: u64,
    /// Offset in the shard's arena, in words, of the stack: its length,
    /// then its frames.
    start: u32,
}

struct DepotShardData {
    slots: *mut Slot,
    capacity: usize,
    len: usize,
    arena: *mut usize,
    arena_used: usize,
}

#[repr(align(128))]
struct DepotShard {
    lock: SpinLock,
    data: UnsafeCell<DepotShardData>,
}

// SAFETY: `data` is only touched with `lock` held.
unsafe impl Sync for DepotShard {}

/// The stack depot: deduplicated stacks, each with a non-zero id.
pub(crate) struct Depot {
    shards: [DepotShard; DEPOT_SHARDS],
}

fn hash_frames(pcs: &[usize]) -> u64 {
    // The multiplications do not depend on each other, so they overlap; only
    // the rotate and xor are serial (a chained multiply per frame was a
    // tenth of the cost of recording every allocation's stack). Equal
    // hashes are always confirmed by comparing the frames.
    let mut hash: u64 = pcs.len() as u64;
    for &pc in pcs {
        hash = hash.rotate_left(23) ^ (pc as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    hash ^= hash >> 29;
    hash = hash.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (hash ^ (hash >> 32)) | 1
}

/// Stack ids encode (shard, arena offset): `start * DEPOT_SHARDS + shard + 1`.
/// The arena never moves, so ids stay valid while the slot array grows.
fn make_id(shard: usize, start: u32) -> u64 {
    start as u64 * DEPOT_SHARDS as u64 + shard as u64 + 1
}

impl Depot {
    pub(crate) const fn new() -> Depot {
        Depot {
            shards: [const {
                DepotShard {
                    lock: SpinLock::new(),
                    data: UnsafeCell::new(DepotShardData {
                        slots: ptr::null_mut(),
                        capacity: 0,
                        len: 0,
                        arena: ptr::null_mut(),
                        arena_used: 0,
                    }),
                }
            }; DEPOT_SHARDS],
        }
    }

    /// Returns the id of `pcs`, storing it if new; 0 if the depot is full or
    /// out of memory (the allocation then counts as not sampled). Looks in
    /// the thread's `cache` first, which saves the shard lock (a cache line
    /// shared by all threads) for stacks this thread has seen.
    pub(crate) fn intern(&self, pcs: &[usize], cache: &SiteCache) -> u64 {
        let hash = hash_frames(pcs);
        let entry = &cache.entries[(hash >> 7) as usize % SITE_CACHE_ENTRIES];
        let (cached_hash, cached_id) = entry.get();
        if cached_hash == hash && self.frames_of_id(cached_id) == Some(pcs) {
            return cached_id;
        }
        let id = self.intern_hashed(hash, pcs);
        if id != 0 {
            entry.set((hash, id));
        }
        id
    }

    /// The frames of stack `id`, read without the shard's lock: a stack's
    /// words never change once stored, and the arena never moves. Only for
    /// ids this thread got from the depot (which ordered the stores before).
    fn frames_of_id(&self, id: u64) -> Option<&[usize]> {
        let index = id.checked_sub(1)?;
        let shard = self.shards.get((index % DEPOT_SHARDS as u64) as usize)?;
        let start = (index / DEPOT_SHARDS as u64) as usize;
        // SAFETY: `arena` is written once, before the first id of the shard
        // is handed out, and never again; reading it races with nothing.
        let arena = unsafe { (*shard.data.get()).arena };
        if arena.is_null() {
            return None;
        }
        // SAFETY: `start` names a stack stored by `intern_locked`: its length
        // and then its frames.
        unsafe {
            let stack = arena.add(start);
            Some(core::slice::from_raw_parts(stack.add(1), *stack))
        }
    }

    fn intern_hashed(&self, hash: u64, pcs: &[usize]) -> u64 {
        let shard_index = (hash >> 40) as usize & (DEPOT_SHARDS - 1);
        let shard = &self.shards[shard_index];
        shard.lock.lock();
        // SAFETY: we hold the shard's lock.
        let data = unsafe { &mut *shard.data.get() };
        let id = intern_locked(data, hash, pcs).map_or(0, |start| make_id(shard_index, start));
        shard.lock.unlock();
        id
    }

    /// Releases every shard's lock in a child after `fork`, where the thread
    /// that held one no longer exists.
    pub(crate) fn unlock_after_fork(&self) {
        for shard in &self.shards {
            shard.lock.unlock();
        }
    }

    /// Locks every shard (for a dump) and returns a guard to read them.
    pub(crate) fn lock_all(&self) -> DepotGuard<'_> {
        for shard in &self.shards {
            shard.lock.lock();
        }
        DepotGuard { depot: self }
    }
}

/// Finds or stores `pcs`; returns its arena offset.
fn intern_locked(data: &mut DepotShardData, hash: u64, pcs: &[usize]) -> Option<u32> {
    if data.arena.is_null() {
        data.arena = sys::map(ARENA_BYTES)?.cast();
    }
    if (data.len + 1) * 2 > data.capacity {
        grow_depot(data)?;
    }
    let mask = data.capacity - 1;
    let mut index = (hash as usize) & mask;
    loop {
        // SAFETY: masked index into the slot array.
        let slot = unsafe { &mut *data.slots.add(index) };
        if slot.hash == 0 {
            let words = pcs.len() + 1;
            if data.arena_used + words > ARENA_BYTES / core::mem::size_of::<usize>() {
                return None;
            }
            let start = data.arena_used;
            // SAFETY: the arena has room for `words` more words.
            unsafe {
                *data.arena.add(start) = pcs.len();
                ptr::copy_nonoverlapping(pcs.as_ptr(), data.arena.add(start + 1), pcs.len());
            }
            *slot = Slot {
                hash,
                start: start as u32,
            };
            data.arena_used += words;
            data.len += 1;
            return Some(start as u32);
        }
        if slot.hash == hash && frames_of(data, *slot) == pcs {
            return Some(slot.start);
        }
        index = (index + 1) & mask;
    }
}

fn frames_of(data: &DepotShardData, slot: Slot) -> &[usize] {
    // SAFETY: `intern_locked` wrote the length and then the frames at `start`.
    unsafe {
        let start = data.arena.add(slot.start as usize);
        core::slice::from_raw_parts(start.add(1), *start)
    }
}

/// Doubles the slot array. Ids do not depend on slot positions (they name
/// the stack's place in the arena), so rehashing keeps them valid.
fn grow_depot(data: &mut DepotShardData) -> Option<()> {
    let new_capacity = if data.capacity == 0 {
        INITIAL_SLOTS
    } else {
        data.capacity * 2
    };
    let new_slots = sys::map(new_capacity * core::mem::size_of::<Slot>())?.cast::<Slot>();
    let mask = new_capacity - 1;
    for old in 0..data.capacity {
        // SAFETY: old < capacity.
        let slot = unsafe { *data.slots.add(old) };
        if slot.hash == 0 {
            continue;
        }
        let mut index = (slot.hash as usize) & mask;
        // SAFETY: masked indices into the new zeroed array.
        unsafe {
            while (*new_slots.add(index)).hash != 0 {
                index = (index + 1) & mask;
            }
            *new_slots.add(index) = slot;
        }
    }
    if data.capacity != 0 {
        // SAFETY: the old array came from `sys::map` with this size.
        unsafe {
            sys::unmap(
                data.slots.cast(),
                data.capacity * core::mem::size_of::<Slot>(),
            )
        };
    }
    data.slots = new_slots;
    data.capacity = new_capacity;
    Some(())
}

/// All depot shards locked, for reading during a dump.
pub(crate) struct DepotGuard<'a> {
    depot: &'a Depot,
}

impl DepotGuard<'_> {
    /// Calls `visit(id, frames)` for every stored stack.
    pub(crate) fn for_each<E>(
        &self,
        mut visit: impl FnMut(u64, &[usize]) -> Result<(), E>,
    ) -> Result<(), E> {
        for (shard_index, shard) in self.depot.shards.iter().enumerate() {
            // SAFETY: `lock_all` holds every shard's lock.
            let data = unsafe { &*shard.data.get() };
            for index in 0..data.capacity {
                // SAFETY: index < capacity.
                let slot = unsafe { *data.slots.add(index) };
                if slot.hash != 0 {
                    visit(make_id(shard_index, slot.start), frames_of(data, slot))?;
                }
            }
        }
        Ok(())
    }

    /// Bytes of memory the depot uses.
    pub(crate) fn footprint(&self) -> u64 {
        self.depot
            .shards
            .iter()
            .map(|shard| {
                // SAFETY: `lock_all` holds every shard's lock.
                let data = unsafe { &*shard.data.get() };
                (data.capacity * core::mem::size_of::<Slot>()
                    + data.arena_used * core::mem::size_of::<usize>()) as u64
            })
            .sum()
    }
}

impl Drop for DepotGuard<'_> {
    fn drop(&mut self) {
        for shard in &self.depot.shards {
            shard.lock.unlock();
        }
    }
}
