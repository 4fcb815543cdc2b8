//! Finding the object that holds an address: [`AddressIndex`], a card
//! table over the objects' address range. The graph resolves every pointer
//! word through it; typing builds its own.

use std::ops::Range;

use rayon::prelude::*;

use crate::dump::Object;
use crate::graph::ObjectId;

/// Cards of [`AddressIndex`] filled by one parallel task.
const CARDS_PER_TASK: usize = 1 << 16;

/// Bytes per card of [`AddressIndex`] when the heap is dense enough.
const CARD_SHIFT_MIN: u32 = 8;

/// Finds the object holding an address through a card table: the address
/// range of the objects is cut into cards of `2^card_shift` bytes, each
/// with one entry (`Cards`) that bounds the objects which may hold an
/// address in it, so that a lookup reads a card and one or a few objects;
/// no search over all objects (each step of which would be a cache miss).
/// Cards are 256 bytes where the objects are dense; for a sparse address
/// space they grow (powers of two) until there are at most two cards per
/// object (plus 1024), so the table never takes more than 8 bytes per
/// object (plus a few KiB), and a card with many objects falls back to a
/// binary search among them. Such a space (a heap and mappings terabytes
/// apart), or one where cards would outnumber half the objects (a heap
/// with wide free regions), is first cut at its widest gaps between
/// objects (at most 64 segments, at gaps of at least 64 KiB), each segment
/// with its own cards sized for its own objects, so that a dense heap
/// keeps small cards and free regions take none; a lookup finds its
/// segment through a directory of the address space's blocks.
///
/// The graph builds one; typing (which follows pointers before the graph
/// exists) builds its own. It does not borrow the objects, so their types
/// may change while it is used: give it the objects it was built from.
#[derive(Clone, Debug, Default)]
pub struct AddressIndex {
    cards: Cards,
    /// Parts of the address space with their own cards, by address.
    pub(crate) segments: Vec<Segment>,
    /// With several segments: for each block of `2^directory_shift` bytes
    /// from `low`, the last segment that starts at or before the block's
    /// start, so that a lookup finds its segment among the few that start
    /// in its block (usually none) rather than by a search over all.
    directory: Vec<u8>,
    directory_shift: u32,
    /// First object byte and one past the last: values outside cannot point
    /// into any object.
    low: u64,
    high: u64,
}

/// The entries of an [`AddressIndex`]: one per card of each segment, then
/// one more after each segment's cards.
#[derive(Clone, Debug)]
enum Cards {
    /// Each card's first object that ends after the card starts; the entry
    /// after a segment's cards is the index after its last object. An
    /// address's object is among its card's entry and the next card's.
    /// Works for any objects, overlapping ones too.
    Ends(Vec<u32>),
    /// Each card's first object that starts in it or after it (low 32
    /// bits), and which of the card's 32 granules of `2^(shift - 5)` bytes
    /// an object starts at (one bit each, high 32 bits). For objects that
    /// do not overlap and each start at a granule of their own (the usual
    /// heap: 8-byte aligned objects, 256-byte cards); then a pointer to an
    /// object's start finds it with no object read, and any other address
    /// has one candidate: the last object to start before it.
    Starts(Vec<u64>),
}

impl Default for Cards {
    fn default() -> Cards {
        Cards::Ends(Vec::new())
    }
}

/// Granules per card of [`Cards::Starts`]: one bit each in 32 bits.
const GRANULES_SHIFT: u32 = 5;

/// What a lookup knows once it has read an address's card
/// ([`AddressIndex::probe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The object with this index starts at the address.
    Start(u32),
    /// The object holding the address, if one does, is among these
    /// (inclusive).
    Among(u32, u32),
    /// No object holds the address.
    Outside,
}

impl Probe {
    /// The object a lookup will read next, if any: reading it ahead of
    /// time, for many probes at once, lets their cache misses overlap.
    pub(crate) fn next_read(self) -> Option<usize> {
        match self {
            Probe::Among(first, _) => Some(first as usize),
            Probe::Start(_) | Probe::Outside => None,
        }
    }
}

/// What [`AddressIndex`] needs to know of the order of its objects, found
/// in one pass over them ([`ObjectOrder::of`], or a caller's own pass with
/// [`ObjectOrder::follow`]).
#[derive(Clone, Debug)]
pub(crate) struct ObjectOrder {
    /// Their ends ([`index_end`]) are in order: they do not overlap.
    pub(crate) ends_sorted: bool,
    /// Their addresses strictly grow: no two start at one address.
    starts_increasing: bool,
    /// Every address or-ed together: its trailing zeros are the alignment
    /// all objects share.
    address_bits: u64,
    /// The widest gaps between objects of at least [`MIN_GAP`], where the
    /// index may cut the address space: (gap, index of the object after
    /// it), at most [`MAX_SEGMENTS`] - 1 of them, in no order.
    widest_gaps: Vec<(u64, usize)>,
}

impl ObjectOrder {
    /// The order of no objects; [`ObjectOrder::follow`] adds them.
    pub(crate) fn new() -> ObjectOrder {
        ObjectOrder {
            ends_sorted: true,
            starts_increasing: true,
            address_bits: 0,
            widest_gaps: Vec::new(),
        }
    }

    /// The order of `objects`, in parallel.
    pub(crate) fn of(objects: &[Object]) -> ObjectOrder {
        const CHUNK: usize = 1 << 16;
        objects
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(chunk, part)| {
                let base = chunk * CHUNK;
                let mut order = ObjectOrder::new();
                let mut previous = base.checked_sub(1).and_then(|index| objects.get(index));
                for (index, object) in (base..).zip(part) {
                    order.follow(previous, index, object);
                    previous = Some(object);
                }
                order
            })
            .reduce(ObjectOrder::new, ObjectOrder::merge)
    }

    /// Adds `object`, the one at `index`, which comes after `previous` (if
    /// any).
    #[inline]
    pub(crate) fn follow(&mut self, previous: Option<&Object>, index: usize, object: &Object) {
        if let Some(previous) = previous {
            self.ends_sorted &= index_end(previous) <= index_end(object);
            self.starts_increasing &= previous.address < object.address;
            let gap = object.address.saturating_sub(index_end(previous));
            if gap >= MIN_GAP {
                self.keep_gap((gap, index));
            }
        }
        self.address_bits |= object.address;
    }

    /// Keeps `gap` if it is among the widest (the later object wins a tie,
    /// so that the gaps kept do not depend on how the objects were split).
    fn keep_gap(&mut self, gap: (u64, usize)) {
        if self.widest_gaps.len() < MAX_SEGMENTS - 1 {
            self.widest_gaps.push(gap);
        } else if let Some(narrowest) = self.widest_gaps.iter_mut().min() {
            if gap > *narrowest {
                *narrowest = gap;
            }
        }
    }

    /// The order of two runs of objects, each one's order found with the
    /// object before it.
    pub(crate) fn merge(mut self, other: ObjectOrder) -> ObjectOrder {
        self.ends_sorted &= other.ends_sorted;
        self.starts_increasing &= other.starts_increasing;
        self.address_bits |= other.address_bits;
        for gap in other.widest_gaps {
            self.keep_gap(gap);
        }
        self
    }
}

impl AddressIndex {
    /// Indexes address-sorted `objects`.
    pub fn new(objects: &[Object]) -> AddressIndex {
        AddressIndex::with_order(objects, ObjectOrder::of(objects))
    }

    /// [`AddressIndex::new`] knowing the order of the objects. When their
    /// ends ([`index_end`]) are in order too, as they are when objects do
    /// not overlap, the cards are filled in parallel, and the address space
    /// cut at its gaps.
    pub(crate) fn with_order(objects: &[Object], order: ObjectOrder) -> AddressIndex {
        let ends_sorted = order.ends_sorted;
        let low = objects.first().map_or(0, |object| object.address);
        let high = if ends_sorted {
            objects.last().map_or(0, index_end)
        } else {
            objects.par_iter().map(index_end).max().unwrap_or(0)
        };
        let shift = card_shift(high.saturating_sub(low), objects.len() as u64, 1024);
        if !ends_sorted {
            // For each card, the first object whose end is after the card's
            // start.
            let card_count = (high.saturating_sub(low) >> shift) as usize + 1;
            let mut cards = vec![0u32; card_count + 1];
            let mut first = 0usize;
            for (card, slot) in cards.iter_mut().enumerate().take(card_count) {
                let card_start = low.saturating_add((card as u64) << shift);
                while objects
                    .get(first)
                    .is_some_and(|object| index_end(object) <= card_start)
                {
                    first += 1;
                }
                *slot = first as u32;
            }
            if let Some(last) = cards.last_mut() {
                *last = objects.len() as u32;
            }
            return AddressIndex {
                cards: Cards::Ends(cards),
                segments: vec![Segment {
                    low,
                    high,
                    shift,
                    cards_at: 0,
                }],
                directory: Vec::new(),
                directory_shift: 0,
                low,
                high,
            };
        }

        // Where one table of cards would be coarse (a heap and mappings far
        // apart) or hold more than one card per two objects (a heap with
        // wide free regions), the objects are cut at the widest gaps between
        // them (up to MAX_SEGMENTS parts, at gaps of MIN_GAP or more), each
        // part with its own cards.
        let card_count = high.saturating_sub(low) >> shift;
        let cuts = if shift > CARD_SHIFT_MIN || card_count >= objects.len() as u64 / 2 {
            order.widest_gaps
        } else {
            Vec::new()
        };
        let mut bounds: Vec<usize> = cuts.iter().map(|&(_, index)| index).collect();
        bounds.sort_unstable();
        bounds.insert(0, 0);
        bounds.push(objects.len());

        let mut segments = Vec::with_capacity(bounds.len());
        // The objects of each segment.
        let mut ranges = Vec::with_capacity(bounds.len());
        let mut card_total = 0usize;
        for pair in bounds.windows(2) {
            let (start, end) = match pair {
                [start, end] if start < end => (*start, *end),
                _ => continue,
            };
            let (Some(first), Some(last)) = (objects.get(start), objects.get(end - 1)) else {
                continue;
            };
            let (seg_low, seg_high) = (first.address, index_end(last));
            let range = seg_high.saturating_sub(seg_low);
            let segment_shift = if bounds.len() == 2 {
                shift
            } else {
                card_shift(range, (end - start) as u64, 64)
            };
            segments.push(Segment {
                low: seg_low,
                high: seg_high,
                shift: segment_shift,
                cards_at: card_total,
            });
            ranges.push(start..end);
            card_total += (range >> segment_shift) as usize + 2;
        }
        // Starts cards where each object has a granule of its own, as long
        // as their 8-byte entries take at most 8 bytes per object (plus a
        // few KiB).
        let alignment = order.address_bits.trailing_zeros();
        let own_granules = order.starts_increasing
            && segments
                .iter()
                .all(|segment| segment.shift - GRANULES_SHIFT <= alignment);
        let cards = if own_granules && card_total <= objects.len() + 1024 {
            let mut cards = vec![0u64; card_total];
            fill_segments(&segments, &ranges, &mut cards, |range, segment, slots| {
                fill_starts(objects, range, segment, slots)
            });
            Cards::Starts(cards)
        } else {
            let mut cards = vec![0u32; card_total];
            fill_segments(&segments, &ranges, &mut cards, |range, segment, slots| {
                fill_ends(objects, range, segment, slots)
            });
            Cards::Ends(cards)
        };
        let (directory, directory_shift) = directory(&segments, low, high);
        AddressIndex {
            cards,
            segments,
            directory,
            directory_shift,
            low,
            high,
        }
    }

    /// The object of `objects` (the ones indexed) holding `address`.
    #[inline]
    pub fn lookup(&self, objects: &[Object], address: u64) -> Option<ObjectId> {
        self.settle(objects, self.probe(address), address)
    }

    /// Whether `address` lies between the first object's start and the
    /// last one's end: outside, no object holds it.
    #[inline]
    pub(crate) fn spans(&self, address: u64) -> bool {
        (self.low..self.high).contains(&address)
    }

    /// The first half of a lookup: reads `address`'s card. For callers
    /// that look up many addresses in batches, so that the cache misses of
    /// a batch's probes, then of its [`Probe::next_read`]s, overlap.
    #[inline]
    pub(crate) fn probe(&self, address: u64) -> Probe {
        if !self.spans(address) {
            return Probe::Outside;
        }
        let segment = match self.segments.as_slice() {
            [only] => Some(only),
            segments => {
                // The segments that may hold the address: from the last to
                // start before its block to the last to start before the
                // next block.
                let block = ((address - self.low) >> self.directory_shift) as usize;
                let first = self.directory.get(block).map_or(0, |&index| index as usize);
                let last = self
                    .directory
                    .get(block + 1)
                    .map_or(segments.len(), |&index| index as usize + 1);
                segments
                    .get(first..last)
                    .and_then(|candidates| {
                        candidates
                            .partition_point(|segment| segment.low <= address)
                            .checked_sub(1)
                    })
                    .and_then(|index| segments.get(first + index))
            }
        };
        let Some(segment) = segment.filter(|segment| address < segment.high) else {
            return Probe::Outside;
        };
        let offset = address - segment.low;
        let card = segment
            .cards_at
            .saturating_add((offset >> segment.shift) as usize);
        match &self.cards {
            Cards::Ends(cards) => match (cards.get(card), cards.get(card.saturating_add(1))) {
                (Some(&first), Some(&last)) => Probe::Among(first, last),
                _ => Probe::Outside,
            },
            Cards::Starts(cards) => {
                let Some(&entry) = cards.get(card) else {
                    return Probe::Outside;
                };
                let (first, starts) = (entry as u32, (entry >> 32) as u32);
                let granule_shift = segment.shift - GRANULES_SHIFT;
                let granule = ((offset >> granule_shift) & 31) as u32;
                // The objects of the card that start at or before the
                // address's granule.
                let started = starts & (u32::MAX >> (31 - granule));
                let last_started = first.saturating_add(started.count_ones());
                let at_granule_start = offset & ((1 << granule_shift) - 1) == 0;
                match last_started.checked_sub(1) {
                    Some(index) if at_granule_start && started >> granule == 1 => {
                        Probe::Start(index)
                    }
                    Some(index) => Probe::Among(index, index),
                    None => Probe::Outside,
                }
            }
        }
    }

    /// The second half of a lookup: the object holding `address`, given
    /// its [`probe`](AddressIndex::probe).
    #[inline]
    pub(crate) fn settle(
        &self,
        objects: &[Object],
        probe: Probe,
        address: u64,
    ) -> Option<ObjectId> {
        let (first, last) = match probe {
            Probe::Start(index) => return Some(ObjectId(index)),
            Probe::Among(first, last) => (first as usize, last as usize),
            Probe::Outside => return None,
        };
        // The object holding the address, if it also crosses into the next
        // card, is the next card's first; so it is at most that one.
        let last = last.min(objects.len().checked_sub(1)?);
        let candidates = objects.get(first..=last.max(first))?;
        let in_card = candidates
            .partition_point(|object| object.address <= address)
            .checked_sub(1)?;
        let object = candidates.get(in_card)?;
        // Starts are <= address by the search; an empty object is pointed
        // to only at its address.
        if object.is_pointed_to_by(address) {
            Some(ObjectId((first + in_card) as u32))
        } else {
            None
        }
    }
}

/// A part of the address space of [`AddressIndex`] with its own cards.
#[derive(Clone, Debug, Default)]
pub(crate) struct Segment {
    /// Its first object's address and one past the end of its last.
    low: u64,
    high: u64,
    /// Cards are `2^shift` bytes.
    shift: u32,
    /// Where its cards start in [`AddressIndex::cards`].
    cards_at: usize,
}

/// The narrowest gap between objects at which [`AddressIndex`] may cut the
/// address space (256 cards of the densest size).
const MIN_GAP: u64 = 1 << 16;

/// Segments of [`AddressIndex`] at most.
const MAX_SEGMENTS: usize = 64;

// The directory numbers segments in a byte.
const _: () = assert!(MAX_SEGMENTS <= 256);

/// The card size (a power of two, at least [`CARD_SHIFT_MIN`]) for `range`
/// bytes holding `objects` objects: fewer than two cards per object plus
/// `spare`.
fn card_shift(range: u64, objects: u64, spare: u64) -> u32 {
    let budget = objects.saturating_mul(2).saturating_add(spare);
    let mut shift = CARD_SHIFT_MIN;
    while shift < 63 && (range >> shift) >= budget {
        shift += 1;
    }
    shift
}

/// Blocks of address space in [`AddressIndex::directory`] at most.
const DIRECTORY_BLOCKS: u64 = 1 << 12;

/// [`AddressIndex::directory`] and its shift for `segments` (several,
/// by address, the first starting at `low`), over `low..high`.
fn directory(segments: &[Segment], low: u64, high: u64) -> (Vec<u8>, u32) {
    if segments.len() < 2 {
        return (Vec::new(), 0);
    }
    let range = high.saturating_sub(low);
    let mut shift = CARD_SHIFT_MIN;
    while shift < 63 && (range >> shift) >= DIRECTORY_BLOCKS {
        shift += 1;
    }
    let blocks = (range >> shift) as usize + 1;
    let directory = (0..blocks)
        .map(|block| {
            let start = low.saturating_add((block as u64) << shift);
            let index = segments
                .partition_point(|segment| segment.low <= start)
                .saturating_sub(1);
            index as u8
        })
        .collect();
    (directory, shift)
}

/// Cuts `cards` into each segment's entries (its cards and the one after
/// them) and has `fill(objects_of_the_segment, segment, entries)` fill
/// them.
fn fill_segments<T>(
    segments: &[Segment],
    ranges: &[Range<usize>],
    cards: &mut [T],
    fill: impl Fn(Range<usize>, &Segment, &mut [T]),
) {
    let mut rest = cards;
    for (segment, range) in segments.iter().zip(ranges) {
        let count = (segment.high.saturating_sub(segment.low) >> segment.shift) as usize + 2;
        let Some((slots, next)) = std::mem::take(&mut rest).split_at_mut_checked(count) else {
            break;
        };
        rest = next;
        fill(range.clone(), segment, slots);
    }
}

/// Fills `slots`, the [`Cards::Ends`] entries of `segment` (whose objects
/// are `objects[range]`, ends in order) and the entry after them, in
/// parallel: a chunk of cards finds its first object by a binary search,
/// then walks on.
fn fill_ends(objects: &[Object], range: Range<usize>, segment: &Segment, slots: &mut [u32]) {
    let part = objects.get(range.clone()).unwrap_or(&[]);
    let card_start = |card: usize| segment.low.saturating_add((card as u64) << segment.shift);
    let entries = slots.len().saturating_sub(1);
    let (cards, sentinel) = slots.split_at_mut(entries);
    if let Some(sentinel) = sentinel.first_mut() {
        *sentinel = range.end as u32;
    }
    cards
        .par_chunks_mut(CARDS_PER_TASK)
        .enumerate()
        .for_each(|(chunk, slots)| {
            let start = chunk * CARDS_PER_TASK;
            let mut first = part.partition_point(|object| index_end(object) <= card_start(start));
            for (card, slot) in (start..).zip(slots.iter_mut()) {
                while part
                    .get(first)
                    .is_some_and(|object| index_end(object) <= card_start(card))
                {
                    first += 1;
                }
                *slot = (range.start + first) as u32;
            }
        });
}

/// Fills `slots`, the [`Cards::Starts`] entries of `segment` (whose objects
/// are `objects[range]`, each at a granule of its own), in parallel: a
/// chunk of cards finds its first object by a binary search, then walks on.
fn fill_starts(objects: &[Object], range: Range<usize>, segment: &Segment, slots: &mut [u64]) {
    let part = objects.get(range.clone()).unwrap_or(&[]);
    let offset = |object: &Object| object.address.saturating_sub(segment.low);
    let card_of = |object: &Object| offset(object) >> segment.shift;
    let granule_shift = segment.shift - GRANULES_SHIFT;
    slots
        .par_chunks_mut(CARDS_PER_TASK)
        .enumerate()
        .for_each(|(chunk, slots)| {
            let start = (chunk * CARDS_PER_TASK) as u64;
            let mut next = part.partition_point(|object| card_of(object) < start);
            for (card, slot) in (start..).zip(slots.iter_mut()) {
                let first = range.start + next;
                let mut starts = 0u32;
                while let Some(object) = part.get(next).filter(|object| card_of(object) == card) {
                    starts |= 1 << ((offset(object) >> granule_shift) & 31);
                    next += 1;
                }
                *slot = first as u64 | u64::from(starts) << 32;
            }
        });
}

/// Where an object ends for the index: an empty object takes its address
/// (it is pointed to there, [`Object::is_pointed_to_by`]).
fn index_end(object: &Object) -> u64 {
    object.address.saturating_add(object.size.max(1))
}
#[cfg(test)]
mod tests {
    use super::{AddressIndex, Cards};
    use crate::dump::Object;
    use crate::graph::ObjectId;
    use crate::test_support::{aligned_layout, layout, naive, Rng};

    fn objects(spans: &[(u64, u64)]) -> Vec<Object> {
        spans
            .iter()
            .map(|&(address, size)| Object::new(address, size, None, 0))
            .collect()
    }

    /// Every lookup around each object (and at the ends of the address
    /// space) agrees with a walk over all objects.
    fn check_lookups(index: &AddressIndex, spans: &[(u64, u64)], objects: &[Object]) {
        for &(address, size) in spans {
            for probe in [
                address.wrapping_sub(1),
                address,
                address + 1,
                address + size / 2,
                address + size.saturating_sub(1),
                address + size,
                address + size + 1,
                address + 1000,
            ] {
                assert_eq!(
                    index.lookup(objects, probe),
                    naive(objects, probe),
                    "{probe:#x}"
                );
            }
        }
        for probe in [0, u64::MAX] {
            assert_eq!(index.lookup(objects, probe), naive(objects, probe));
        }
    }

    #[test]
    fn index_lookups_match_a_naive_search() {
        let mut rng = Rng(7);
        for clusters in [
            &[0x1000][..],
            &[0x1000, 0x1_0000_0000, 0x7fff_0000_0000][..],
            // More gaps than segments: the widest ones are cut.
            &(0..100u64).map(|n| n << 36).collect::<Vec<_>>()[..],
        ] {
            // Odd addresses: cards of first ends. Aligned ones: cards of
            // starts, whose granules are 8 bytes; unless segments had to
            // hold several clusters (and so have wider granules).
            for aligned in [false, true] {
                let spans = match aligned {
                    false => layout(&mut rng, clusters, 200),
                    true => aligned_layout(&mut rng, clusters, 200, 8),
                };
                let objects = objects(&spans);
                let index = AddressIndex::new(&objects);
                assert_eq!(
                    index.segments.len(),
                    clusters.len().min(super::MAX_SEGMENTS)
                );
                let starts = aligned && clusters.len() <= super::MAX_SEGMENTS;
                assert_eq!(matches!(index.cards, Cards::Starts(_)), starts);
                check_lookups(&index, &spans, &objects);
            }
        }
        assert_eq!(AddressIndex::new(&[]).lookup(&[], 0x1000), None);
    }

    #[test]
    fn cards_of_starts_need_a_granule_per_object() {
        let mut rng = Rng(11);
        // A dense cluster (256-byte cards) and a sparse one (bigger cards,
        // whose granules are wider than 8 bytes).
        let mut sparse = |align: u64| {
            let mut spans = aligned_layout(&mut rng, &[0x10_0000], 300, align);
            let far = aligned_layout(&mut rng, &[0x1_0000_0000], 50, align);
            spans.extend(
                far.iter()
                    .enumerate()
                    .map(|(n, &(address, size))| (address + n as u64 * 4096, size)),
            );
            spans
        };
        // 8-byte aligned objects cannot each have a granule of their own in
        // the sparse cluster's wider granules; 4 KiB aligned ones can.
        for (align, starts) in [(8, false), (4096, true)] {
            let spans = sparse(align);
            let objects = objects(&spans);
            let index = AddressIndex::new(&objects);
            assert!(index.segments.iter().any(|segment| segment.shift > 8));
            assert_eq!(matches!(index.cards, Cards::Starts(_)), starts, "{align}");
            check_lookups(&index, &spans, &objects);
        }
        // A heap with a wide free region: 256-byte cards would be more than
        // one per two objects, so the region is cut out.
        let spans = aligned_layout(&mut rng, &[0x10_0000, 0x30_0000], 5000, 8);
        let heap = objects(&spans);
        let index = AddressIndex::new(&heap);
        assert_eq!(index.segments.len(), 2);
        assert!(index.segments.iter().all(|segment| segment.shift == 8));
        assert!(matches!(index.cards, Cards::Starts(_)));
        check_lookups(&index, &spans, &heap);
        // Two objects at one address (an empty one first): not one granule
        // each.
        let objects = objects(&[(0x1000, 0), (0x1000, 16), (0x1010, 8)]);
        let index = AddressIndex::new(&objects);
        assert!(matches!(index.cards, Cards::Ends(_)));
        assert_eq!(index.lookup(&objects, 0x1010), Some(ObjectId(2)));
    }

    #[test]
    fn overlapping_objects_resolve_to_one_holding_the_address_or_none() {
        // A big object holding two small ones (ends not in order): a lookup
        // picks the last object starting at or before the address, if it
        // holds it.
        let objects = vec![
            Object::new(0x1000, 0x100, None, 0),
            Object::new(0x1010, 0x10, None, 0),
            Object::new(0x1040, 0x10, None, 0),
            Object::new(0x9000_0000, 0x10, None, 0),
        ];
        let index = AddressIndex::new(&objects);
        for probe in [0x1000, 0x1015, 0x1030, 0x1045, 0x10ff, 0x9000_0008] {
            if let Some(id) = index.lookup(&objects, probe) {
                assert!(objects[id.index()].contains(probe), "{probe:#x}");
            }
        }
        assert_eq!(index.lookup(&objects, 0x1015), Some(ObjectId(1)));
        assert_eq!(index.lookup(&objects, 0x9000_0008), Some(ObjectId(3)));
        assert_eq!(index.lookup(&objects, 0x1100), None);
    }
}
