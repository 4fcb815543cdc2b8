//! Redaction: keep only the words of a memory image that point into a
//! live object, found through a page index over the snapshot.

use super::{Entry, WORD};
use crate::sys::Region;

/// Keeps only the aligned words of `out` (memory copied from `start`) whose
/// value points into a live object.
pub(super) fn redact(out: &mut [u8], start: usize, pages: &PageIndex<'_>) {
    let first_word = start.next_multiple_of(WORD) - start;
    let head = first_word.min(out.len());
    out[..head].fill(0);
    let mut offset = head;
    while offset + WORD <= out.len() {
        let mut word = [0u8; WORD];
        word.copy_from_slice(&out[offset..offset + WORD]);
        if !pages.points_into_live_object(usize::from_ne_bytes(word)) {
            out[offset..offset + WORD].fill(0);
        }
        offset += WORD;
    }
    out[offset..].fill(0);
}

const PAGE_SHIFT: u32 = 12;
const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

/// Objects of one page whose extents a [`PageSlot`] holds itself.
const INLINE_EXTENTS: usize = 12;

/// One page of the [`PageIndex`]: one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct PageSlot {
    /// The page number plus one; 0 marks an empty slot.
    key: u64,
    /// Index in the snapshot of the first object overlapping the page.
    first: u32,
    /// Objects overlapping the page (saturating).
    count: u16,
    _pad: u16,
    /// With at most [`INLINE_EXTENTS`] objects: each one's part of the page,
    /// `[start, end)` as offsets in the page (`end` up to 4096).
    extents: [(u16, u16); INLINE_EXTENTS],
}

/// Answers "does this word point into a live object?" for redaction: a hash
/// table from each 4 KiB page that some live object overlaps to a 64-byte
/// slot holding the page's object extents (or, past 12 objects, where they
/// start in the sorted snapshot). Most words (small integers, text, random
/// bytes) miss the table at once; a pointer costs one cache line, two on
/// crowded pages. (A binary search over the snapshot per word was 80-100x
/// slower; scanning the snapshot from the page's first object, a second
/// cache miss per pointer, half as fast as this.)
pub(super) struct PageIndex<'s> {
    snapshot: &'s [Entry],
    /// `PageSlot`s.
    slots: Region,
    mask: usize,
    /// `[lowest, highest)` covers every live object.
    lowest: usize,
    highest: usize,
}

impl<'s> PageIndex<'s> {
    pub(super) fn new(snapshot: &'s [Entry]) -> Option<PageIndex<'s>> {
        let pages: usize = snapshot.iter().map(|entry| page_span(entry).count()).sum();
        let capacity = (pages.max(1) * 2).next_power_of_two();
        let mut index = PageIndex {
            snapshot,
            slots: Region::new(capacity * core::mem::size_of::<PageSlot>())?,
            mask: capacity - 1,
            lowest: snapshot.first().map_or(0, |entry| entry.address),
            highest: snapshot
                .iter()
                .map(|entry| entry.address + entry.size)
                .max()
                .unwrap_or(0),
        };
        for (object, entry) in snapshot.iter().enumerate() {
            for page in page_span(entry) {
                let page_start = page << PAGE_SHIFT;
                let start = entry.address.max(page_start) - page_start;
                let end = (entry.address + entry.size).min(page_start + PAGE_SIZE) - page_start;
                let slot = index.find(page);
                if slot.key == 0 {
                    // Objects come in address order, so the first to claim
                    // a page is the lowest one overlapping it, and the
                    // others follow it in the snapshot.
                    slot.key = page as u64 + 1;
                    slot.first = object as u32;
                }
                if let Some(extent) = slot.extents.get_mut(usize::from(slot.count)) {
                    *extent = (start as u16, end as u16);
                }
                slot.count = slot.count.saturating_add(1);
            }
        }
        Some(index)
    }

    /// The slot holding `page`, or the empty slot where it would go.
    fn find(&mut self, page: usize) -> &mut PageSlot {
        let slots = self.slots.ptr.cast::<PageSlot>();
        let mut position = page_hash(page) & self.mask;
        loop {
            // SAFETY: position is masked into the `mask + 1` slots; the
            // region is zeroed, and an all-zero PageSlot is valid (empty).
            let slot = unsafe { &mut *slots.add(position) };
            if slot.key == 0 || slot.key == page as u64 + 1 {
                return slot;
            }
            position = (position + 1) & self.mask;
        }
    }

    fn points_into_live_object(&self, value: usize) -> bool {
        // Small integers, text and most random bits fall outside the heap.
        if value < self.lowest || value >= self.highest {
            return false;
        }
        let page = value >> PAGE_SHIFT;
        let slots = self.slots.ptr.cast::<PageSlot>();
        let mut position = page_hash(page) & self.mask;
        let slot = loop {
            // SAFETY: position is masked into the slots.
            let slot = unsafe { &*slots.add(position) };
            if slot.key == 0 {
                return false;
            }
            if slot.key == page as u64 + 1 {
                break slot;
            }
            position = (position + 1) & self.mask;
        };
        let count = usize::from(slot.count);
        if count <= INLINE_EXTENTS {
            let offset = (value - (page << PAGE_SHIFT)) as u16;
            return slot.extents[..count]
                .iter()
                .any(|&(start, end)| start <= offset && offset < end);
        }
        self.snapshot[slot.first as usize..]
            .iter()
            .take_while(|entry| entry.address <= value)
            .any(|entry| value < entry.address + entry.size)
    }
}

/// The pages an object overlaps.
fn page_span(entry: &Entry) -> core::ops::RangeInclusive<usize> {
    let last = entry.address + entry.size.max(1) - 1;
    (entry.address >> PAGE_SHIFT)..=(last >> PAGE_SHIFT)
}

fn page_hash(page: usize) -> usize {
    ((page as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(address: usize, size: usize) -> Entry {
        Entry {
            address,
            size,
            stack_id: 0,
        }
    }

    #[test]
    fn page_index_agrees_with_a_linear_search_on_crowded_pages() {
        // Pages with 1 to 40 objects (inline extents up to 12, then the
        // snapshot), objects of odd sizes with gaps, some across pages.
        let mut snapshot = Vec::new();
        let mut address = 0x5000_0008usize;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for object in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // ~10 objects per page first (inline), then ~35 (the snapshot).
            let size = if object < 1000 {
                200 + (state % 400) as usize
            } else {
                1 + (state % 200) as usize
            };
            snapshot.push(entry(address, size));
            address += size + 8 * ((state >> 20) % 3) as usize;
            address = address.next_multiple_of(8);
        }
        let index = PageIndex::new(&snapshot).unwrap();
        let linear = |value: usize| {
            snapshot
                .iter()
                .any(|e| e.address <= value && value < e.address + e.size)
        };
        for value in 0x5000_0000..address + 64 {
            assert_eq!(
                index.points_into_live_object(value),
                linear(value),
                "{value:#x}"
            );
        }
    }

    #[test]
    fn page_index_agrees_with_a_linear_search() {
        let snapshot = [
            entry(0x1000_0010, 16),
            entry(0x1000_0ff8, 0x2010), // spans three pages
            entry(0x1000_3010, 8),
            entry(0x2000_0000, 1 << 20),
            entry(0x7f00_0000_0000, 64),
        ];
        let index = PageIndex::new(&snapshot).unwrap();
        let linear = |value: usize| {
            snapshot
                .iter()
                .any(|e| e.address <= value && value < e.address + e.size)
        };
        let mut probes = vec![0, 1, usize::MAX, 0x7f00_0000_0040];
        for e in &snapshot {
            for delta in [0usize, 1, 7, 8, 0x1000] {
                probes.push(e.address.wrapping_sub(delta));
                probes.push(e.address + delta);
                probes.push(e.address + e.size - 1);
                probes.push(e.address + e.size);
            }
        }
        for value in probes {
            assert_eq!(
                index.points_into_live_object(value),
                linear(value),
                "{value:#x}"
            );
        }
    }
}
