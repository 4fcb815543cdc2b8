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

/// A stack [`capture`]d from the frame-pointer chain.
pub(crate) struct Captured<'a> {
    /// Return addresses, innermost first.
    pub(crate) pcs: &'a [usize],
    /// Their hash, computed during the walk (a second pass over the frames
    /// cost as much as the walk itself).
    pub(crate) hash: StackHash,
}

/// Walks the frame-pointer chain of the calling thread, leaving out the
/// first return address read, which is inside the tracker: into the caller
/// of `capture`, or, where the compiler reads the frame-pointer register
/// before `capture`'s own prologue (release builds do), into the caller's
/// caller (the tracker's `GlobalAlloc` entry point). The reader strips any
/// allocator frames left (`Stack::allocator_frames`).
///
/// `[stack_low, stack_high)` is the thread's stack. The walk only runs when
/// the stack pointer is inside it (code running on another stack, a
/// coroutine's or a signal stack, gets no frames: the space between its
/// stack pointer and the thread's stack top may be unmapped), and stops at
/// the first frame pointer that is not above the previous one or outside
/// `[stack pointer, stack_high)`. The return addresses are
/// written into `buffer`.
#[inline(never)]
pub(crate) fn capture(
    stack_low: usize,
    stack_high: usize,
    buffer: &mut FrameBuffer,
) -> Captured<'_> {
    let mut len = 0;
    let mut hasher = StackHasher::new();
    let word = core::mem::size_of::<usize>();
    let (frame, stack_pointer) = frame_and_stack_pointer();
    // Frames live between the stack pointer and the top of the stack, each
    // above the one before (checked below, so only the first needs to be
    // checked against the stack pointer). Without frame pointers the
    // register may hold anything: these bounds keep the walk inside the
    // mapped part of the stack.
    if stack_high < 2 * word
        || stack_pointer < stack_low
        || stack_pointer >= stack_high
        || frame < stack_pointer
    {
        return Captured {
            pcs: &[],
            hash: hasher.finish(0),
        };
    }
    let last_frame = stack_high - 2 * word;
    let mut frame = frame;
    let mut skip = true;
    while len < MAX_FRAMES && frame <= last_frame {
        // SAFETY: [frame, frame + 2 words) lies inside the current thread's
        // stack, above the current frame, so it is mapped and readable
        // (unaligned reads, as in `short_site`: a frame pointer is aligned,
        // and testing that cost 3 of the walk's ~20 instructions per frame;
        // a register that holds something else reads stack words anyway).
        let (next, return_address) = unsafe {
            let slot = frame as *const usize;
            (
                ptr::read_unaligned(slot),
                ptr::read_unaligned(slot.wrapping_add(1)),
            )
        };
        if return_address == 0 {
            break;
        }
        if !skip {
            buffer[len].write(return_address);
            hasher.add(return_address);
            len += 1;
        }
        skip = false;
        if next <= frame {
            break;
        }
        frame = next;
    }
    Captured {
        // SAFETY: the first `len` entries were written above.
        pcs: unsafe { core::slice::from_raw_parts(buffer.as_ptr().cast::<usize>(), len) },
        hash: hasher.finish(len),
    }
}

/// Return addresses a short site keeps: enough to get from the allocator
/// through the allocating API (`Vec::push`, `HashMap::insert`, `format!`,
/// `Box::new`: inlined into the caller or a few out-of-line frames of
/// `RawVec` and hashbrown growth) into the program's own code that called
/// it. Measured on the sample service (docs/PERFORMANCE.md): the caller is
/// the first return address for 52 % of its live objects, the second for
/// 48 %, the third for the rest; `Vec::extend` growing through
/// `do_reserve_and_handle` needs the sixth.
pub(crate) const SHORT_FRAMES: usize = 5;

/// Set in a depot entry's length word for a short site.
const SHORT_BIT: usize = 1 << (usize::BITS - 1);

/// Multiplier of the short-site hash (a 64-bit odd constant from
/// splitmix64).
const SHORT_MULTIPLIER: u64 = 0xBF58_476D_1CE4_E5B9;

/// A thread's short sites seen lately: `(hash, id)`, hash 0 for an empty
/// entry, in sets of two entries (of one cache line) chosen by the top bits
/// of the hash, the one found or stored last first. Two ways, not one: a
/// request handler allocates from a few dozen sites over and over, and two
/// of them sharing an entry of a direct-mapped cache missed on every
/// request (8 % of the `service` bench's allocations). A hit is taken on
/// the 63-bit hash alone, without comparing frames: two short sites of one
/// thread would have to agree in all 63 bits (a chance of about n²/2^64
/// for n sites, 10^-11 for ten thousand). The depot itself compares frames.
#[repr(align(64))]
pub(crate) struct ShortSiteCache {
    sets: [[core::cell::Cell<(u64, u64)>; 2]; SHORT_CACHE_ENTRIES / 2],
}

/// Entries of a [`ShortSiteCache`] (a power of two): every allocation
/// looks there, and a service allocates from more places than it samples.
const SHORT_CACHE_ENTRIES: usize = 256;
const _: () = assert!(
    SHORT_CACHE_ENTRIES == 2 << 7,
    "128 sets of two, by 7 bits of the hash"
);

impl ShortSiteCache {
    pub(crate) const fn new() -> ShortSiteCache {
        ShortSiteCache {
            sets: [const { [const { core::cell::Cell::new((0, 0)) }; 2] }; SHORT_CACHE_ENTRIES / 2],
        }
    }
}

/// The short site of the allocation being made, as a depot id (0 if the
/// stack cannot be walked or the depot is full): the first
/// [`SHORT_FRAMES`] return addresses of the frame-pointer chain, starting
/// with the one of the frame that reads the registers. Inlined into the
/// tracker's `GlobalAlloc` methods (which the allocator shim
/// `__rust_alloc` inlines in turn), so in an optimised build the first
/// address is the return into the code that called `__rust_alloc`: the
/// same first frame as a sampled stack's ([`capture`]).
///
/// The walk only hashes (a multiply per frame, which overlaps the next
/// frame's load) and looks the hash up in the thread's `cache`; only on a
/// miss does [`short_site_miss`] walk again from the same frame to store
/// the frames. Bounds as in [`capture`]: nothing outside
/// `[stack pointer, stack_high)` is read.
#[inline(always)]
pub(crate) fn short_site(
    stack_low: usize,
    stack_high: usize,
    cache: &ShortSiteCache,
    depot: &Depot,
) -> u32 {
    let word = core::mem::size_of::<usize>();
    let (first, stack_pointer) = frame_and_stack_pointer();
    if stack_pointer < stack_low || stack_pointer >= stack_high || first < stack_pointer {
        return 0;
    }
    let last_frame = stack_high.wrapping_sub(2 * word);
    let mut hash = SHORT_MULTIPLIER;
    let mut frame = first;
    for _ in 0..SHORT_FRAMES {
        if frame > last_frame {
            break;
        }
        // SAFETY: [frame, frame + 2 words) lies inside the current
        // thread's stack, at or above the stack pointer, so it is mapped
        // (unaligned reads: without frame pointers the register may hold
        // anything in that range).
        let (next, return_address) = unsafe {
            let slot = frame as *const usize;
            (
                ptr::read_unaligned(slot),
                ptr::read_unaligned(slot.wrapping_add(1)),
            )
        };
        // (A return address of 0, at the outermost frame of a thread, is
        // kept: the chain ends there anyway, at its saved frame pointer 0.)
        hash = (hash ^ return_address as u64).wrapping_mul(SHORT_MULTIPLIER);
        if next <= frame {
            break;
        }
        frame = next;
    }
    let hash = hash | 1;
    // 128 sets: the top 7 bits.
    let set = &cache.sets[(hash >> 57) as usize];
    let (cached, id) = set[0].get();
    if cached == hash {
        return id as u32;
    }
    let (cached, id) = set[1].get();
    if cached == hash {
        return id as u32;
    }
    short_site_miss(first, last_frame, hash, set, depot)
}

/// [`short_site`] when the thread's cache does not know the hash: walks
/// again from `first` (the frames above the allocator's are unchanged: their
/// functions are still running), stores the frames in the depot, and puts
/// the id first in its cache `set` (two entries).
#[cold]
#[inline(never)]
fn short_site_miss(
    first: usize,
    last_frame: usize,
    hash: u64,
    set: &[core::cell::Cell<(u64, u64)>; 2],
    depot: &Depot,
) -> u32 {
    let mut pcs = [0usize; SHORT_FRAMES];
    let mut len = 0;
    let mut frame = first;
    while len < SHORT_FRAMES && frame <= last_frame {
        // SAFETY: as in `short_site`, which checked `first` against the
        // stack pointer of the same walk.
        let (next, return_address) = unsafe {
            let slot = frame as *const usize;
            (
                ptr::read_unaligned(slot),
                ptr::read_unaligned(slot.wrapping_add(1)),
            )
        };
        pcs[len] = return_address;
        len += 1;
        if next <= frame {
            break;
        }
        frame = next;
    }
    let id = depot.intern_hashed(hash, &pcs[..len], true);
    if id != 0 {
        set[1].set(set[0].get());
        set[0].set((hash, u64::from(id)));
    }
    id
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

/// A thread's recently seen stacks, direct-mapped by hash. An entry holds
/// a stack's [`StackHash`] (the primary hash and the top 32 bits of the
/// secondary) and its id. A hit is taken on those 95 bits alone (the
/// primary's lowest bit is always 1), without comparing frames (reading the
/// depot's copy of the frames was a cache miss on every sampled
/// allocation): two different stacks this thread records would have to
/// agree in 95 bits of two independent hashes, a chance of about n²/2^96
/// for n stacks (about 10^-17 for a million).
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

/// Two independent hashes of a stack's frames. `primary` places the stack
/// in the depot (where equal hashes are confirmed by comparing frames);
/// both together identify it in a thread's [`SiteCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StackHash {
    /// Never 0 (forced odd): 0 marks an empty slot or cache entry.
    primary: u64,
    secondary: u64,
}

/// Hashes frames one at a time, in two lanes with their own multiplier and
/// rotation. The multiplications do not depend on each other, so they
/// overlap; only the rotates and xors are serial (a chained multiply per
/// frame was a tenth of the cost of recording every allocation's stack).
struct StackHasher {
    primary: u64,
    secondary: u64,
}

impl StackHasher {
    #[inline(always)]
    fn new() -> StackHasher {
        StackHasher {
            primary: 0,
            secondary: u64::MAX,
        }
    }

    #[inline(always)]
    fn add(&mut self, pc: usize) {
        let pc = pc as u64;
        self.primary = self.primary.rotate_left(23) ^ pc.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.secondary = self.secondary.rotate_left(29) ^ pc.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    }

    /// The hash of the `len` frames added.
    #[inline(always)]
    fn finish(self, len: usize) -> StackHash {
        let len = len as u64;
        StackHash {
            primary: mix(self.primary ^ len, 0xBF58_476D_1CE4_E5B9) | 1,
            secondary: mix(self.secondary ^ len, 0x94D0_49BB_1331_11EB),
        }
    }
}

/// The hash of `pcs`, as [`capture`] computes it during its walk.
#[cfg(test)]
fn hash_frames(pcs: &[usize]) -> StackHash {
    let mut hasher = StackHasher::new();
    for &pc in pcs {
        hasher.add(pc);
    }
    hasher.finish(pcs.len())
}

/// The final mix of one hash lane (a splitmix64 step).
#[inline(always)]
fn mix(mut hash: u64, multiplier: u64) -> u64 {
    hash ^= hash >> 29;
    hash = hash.wrapping_mul(multiplier);
    hash ^ (hash >> 32)
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
    pub(crate) fn intern(&self, stack: &Captured<'_>, cache: &SiteCache) -> u32 {
        let (pcs, hash) = (stack.pcs, stack.hash);
        let entry = &cache.entries[(hash.primary >> 7) as usize % SITE_CACHE_ENTRIES];
        let check = hash.secondary & !u64::from(u32::MAX);
        let (cached_primary, cached_rest) = entry.get();
        if cached_primary == hash.primary && cached_rest & !u64::from(u32::MAX) == check {
            return cached_rest as u32;
        }
        let id = self.intern_hashed(hash.primary, pcs, false);
        if id != 0 {
            entry.set((hash.primary, check | u64::from(id)));
        }
        id
    }

    /// Finds or stores `pcs` (a short site if `short`, else a full stack),
    /// whose hash (of either kind) is `hash`; its id, or 0 if the depot is
    /// full.
    fn intern_hashed(&self, hash: u64, pcs: &[usize], short: bool) -> u32 {
        let shard_index = (hash >> 40) as usize & (DEPOT_SHARDS - 1);
        let shard = &self.shards[shard_index];
        shard.lock.lock();
        // SAFETY: we hold the shard's lock.
        let data = unsafe { &mut *shard.data.get() };
        // Ids fit in 32 bits (the arena's word offsets times the shards), so
        // the conversion only fails if that ever changes: not sampled then.
        let id = intern_locked(data, hash, pcs, short)
            .and_then(|start| u32::try_from(make_id(shard_index, start)).ok())
            .unwrap_or(0);
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

/// Where a stack of hash `hash` is looked for first, in a slot array of
/// `mask + 1` slots. Not the hash's lowest bit: it is always 1.
fn home_slot(hash: u64, mask: usize) -> usize {
    (hash >> 1) as usize & mask
}

/// Finds or stores `pcs`; returns its arena offset.
fn intern_locked(data: &mut DepotShardData, hash: u64, pcs: &[usize], short: bool) -> Option<u32> {
    let len_word = pcs.len() | if short { SHORT_BIT } else { 0 };
    if data.arena.is_null() {
        data.arena = sys::map(ARENA_BYTES)?.cast();
    }
    if (data.len + 1) * 2 > data.capacity {
        grow_depot(data)?;
    }
    let mask = data.capacity - 1;
    let mut index = home_slot(hash, mask);
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
                *data.arena.add(start) = len_word;
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
        if slot.hash == hash && is_short(data, *slot) == short && frames_of(data, *slot) == pcs {
            return Some(slot.start);
        }
        index = (index + 1) & mask;
    }
}

fn frames_of(data: &DepotShardData, slot: Slot) -> &[usize] {
    // SAFETY: `intern_locked` wrote the length word and then the frames at
    // `start`.
    unsafe {
        let start = data.arena.add(slot.start as usize);
        core::slice::from_raw_parts(start.add(1), *start & !SHORT_BIT)
    }
}

/// Whether the stack in `slot` is a short site.
fn is_short(data: &DepotShardData, slot: Slot) -> bool {
    // SAFETY: as in `frames_of`.
    unsafe { *data.arena.add(slot.start as usize) & SHORT_BIT != 0 }
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
        let mut index = home_slot(slot.hash, mask);
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
    /// Calls `visit(id, frames, short)` for every stored stack; `short`
    /// for a short site.
    pub(crate) fn for_each<E>(
        &self,
        mut visit: impl FnMut(u64, &[usize], bool) -> Result<(), E>,
    ) -> Result<(), E> {
        for (shard_index, shard) in self.depot.shards.iter().enumerate() {
            // SAFETY: `lock_all` holds every shard's lock.
            let data = unsafe { &*shard.data.get() };
            for index in 0..data.capacity {
                // SAFETY: index < capacity.
                let slot = unsafe { *data.slots.add(index) };
                if slot.hash != 0 {
                    visit(
                        make_id(shard_index, slot.start),
                        frames_of(data, slot),
                        is_short(data, slot),
                    )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack captured from a known depth: `depth` nested calls below the
    /// caller, then `capture` (whose first return address, into
    /// `nested`, is left out).
    #[inline(never)]
    fn nested(depth: usize, buffer: &mut FrameBuffer) -> (Vec<usize>, StackHash) {
        if depth > 0 {
            let result = nested(depth - 1, buffer);
            // Not a tail call: each level keeps its frame.
            core::hint::black_box(depth);
            return result;
        }
        let (low, high) = sys::thread_stack_bounds().expect("this thread's stack");
        let stack = capture(low, high, buffer);
        (stack.pcs.to_vec(), stack.hash)
    }

    #[test]
    fn the_walk_hashes_the_frames_it_returns() {
        let mut buffer = [core::mem::MaybeUninit::uninit(); MAX_FRAMES];
        let (shallow, shallow_hash) = nested(0, &mut buffer);
        let (deep, deep_hash) = nested(5, &mut buffer);
        // The test harness's frames, then this test's, then 5 more.
        assert!(shallow.len() >= 3, "{shallow:x?}");
        assert_eq!(deep.len(), shallow.len() + 5, "{deep:x?} vs {shallow:x?}");
        assert_eq!(shallow_hash, hash_frames(&shallow));
        assert_eq!(deep_hash, hash_frames(&deep));
        assert_ne!(shallow_hash, deep_hash);
        // The outer frames are the same stack.
        assert_eq!(deep[deep.len() - shallow.len() + 1..], shallow[1..]);
    }

    #[test]
    fn equal_stacks_share_an_id_and_others_do_not() {
        static DEPOT: Depot = Depot::new();
        let cache = SiteCache::new();
        let intern = |pcs: &[usize]| {
            DEPOT.intern(
                &Captured {
                    pcs,
                    hash: hash_frames(pcs),
                },
                &cache,
            )
        };
        let stacks: Vec<Vec<usize>> = (0..2000usize)
            .map(|i| {
                (0..1 + i % 20)
                    .map(|frame| 0x40_0000 + frame * 64 + i)
                    .collect()
            })
            .collect();
        let ids: Vec<u32> = stacks.iter().map(|pcs| intern(pcs)).collect();
        assert!(ids.iter().all(|&id| id != 0));
        let distinct: std::collections::HashSet<u32> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), stacks.len());
        // Again, through the cache or the depot: the same ids.
        for (pcs, &id) in stacks.iter().zip(&ids).rev() {
            assert_eq!(intern(pcs), id);
        }
        // Frames in another order, or one frame fewer, are another stack.
        let mut swapped = stacks[5].clone();
        swapped.swap(0, 1);
        assert_ne!(intern(&swapped), ids[5]);
        assert_ne!(intern(&stacks[5][1..]), ids[5]);
        let guard = DEPOT.lock_all();
        let mut stored = 0;
        guard
            .for_each(|id, frames, short| {
                if let Some(index) = ids.iter().position(|&known| u64::from(known) == id) {
                    assert_eq!(frames, &stacks[index][..]);
                    assert!(!short);
                }
                stored += 1;
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(stored, stacks.len() + 2);
    }

    /// A short site of the same frames as a full stack is another entry,
    /// marked short.
    #[test]
    fn short_sites_are_marked_and_kept_apart() {
        static DEPOT: Depot = Depot::new();
        let cache = SiteCache::new();
        let pcs = [0x40_1000usize, 0x40_2000, 0x40_3000];
        let full = DEPOT.intern(
            &Captured {
                pcs: &pcs,
                hash: hash_frames(&pcs),
            },
            &cache,
        );
        let short = DEPOT.intern_hashed(0x1234_5679, &pcs, true);
        assert!(full != 0 && short != 0 && full != short);
        // Found again, not stored twice.
        assert_eq!(DEPOT.intern_hashed(0x1234_5679, &pcs, true), short);
        let guard = DEPOT.lock_all();
        let mut seen = Vec::new();
        guard
            .for_each(|id, frames, is_short| {
                assert_eq!(frames, &pcs[..]);
                seen.push((id, is_short));
                Ok::<(), ()>(())
            })
            .unwrap();
        seen.sort_unstable();
        let mut expected = vec![(u64::from(full), false), (u64::from(short), true)];
        expected.sort_unstable();
        assert_eq!(seen, expected);
    }

    /// The short site of the calling frame's allocation, from one call site.
    #[inline(never)]
    fn short_site_here(cache: &ShortSiteCache, depot: &Depot) -> u32 {
        let (low, high) = sys::thread_stack_bounds().expect("this thread's stack");
        short_site(low, high, cache, depot)
    }

    #[test]
    fn short_sites_keep_their_first_frames_and_are_cached() {
        static DEPOT: Depot = Depot::new();
        let cache = ShortSiteCache::new();
        // Twice from one call site: one id, the second from the cache; from
        // another call site, another.
        let mut ids = Vec::new();
        for _ in 0..core::hint::black_box(2) {
            ids.push(short_site_here(&cache, &DEPOT));
        }
        let other = short_site_here(&cache, &DEPOT);
        assert!(
            ids[0] != 0 && ids[0] == ids[1] && other != ids[0],
            "{ids:?} {other}"
        );
        assert!(cache
            .sets
            .iter()
            .flatten()
            .any(|entry| entry.get().1 == u64::from(ids[0])));
        let guard = DEPOT.lock_all();
        let mut stored = Vec::new();
        guard
            .for_each(|id, frames, short| {
                assert!(short);
                stored.push((id, frames.to_vec()));
                Ok::<(), ()>(())
            })
            .unwrap();
        drop(guard);
        assert_eq!(stored.len(), 2);
        let frames = |id: u32| {
            stored
                .iter()
                .find(|(stored_id, _)| *stored_id == u64::from(id))
                .map(|(_, frames)| frames.clone())
                .unwrap()
        };
        let (first, second) = (frames(ids[0]), frames(other));
        assert_eq!(first.len(), SHORT_FRAMES, "{first:x?}");
        // The first frame is this test's (two call sites), the outer ones
        // the harness's, which a full walk from here sees too.
        assert_ne!(first[0], second[0]);
        assert_eq!(first[1..], second[1..]);
        let mut deep = [core::mem::MaybeUninit::uninit(); MAX_FRAMES];
        let (full, _) = nested(0, &mut deep);
        assert!(
            first[1..].iter().all(|pc| full.contains(pc)),
            "{first:x?} vs {full:x?}"
        );
    }
}
