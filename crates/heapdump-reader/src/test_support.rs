//! Helpers shared by the crate's unit tests.

use crate::dump::Object;
use crate::graph::ObjectId;

/// A small deterministic generator (xorshift).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The object holding `address`, by a walk over all of them
/// (non-overlapping objects: at most one does).
pub(crate) fn naive(objects: &[Object], address: u64) -> Option<ObjectId> {
    objects
        .iter()
        .position(|object| object.is_pointed_to_by(address))
        .map(|index| ObjectId(index as u32))
}

/// Objects in `clusters` (start addresses), non-overlapping, some empty,
/// some of odd sizes and addresses, in address order.
pub(crate) fn layout(rng: &mut Rng, clusters: &[u64], per_cluster: usize) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    for &start in clusters {
        let mut address = start;
        for _ in 0..per_cluster {
            let size = match rng.below(8) {
                0 => 0,
                1 => 1 + rng.below(7),
                _ => 8 * (1 + rng.below(8)),
            };
            spans.push((address, size));
            // Gaps of 0 to 3 words, sometimes an odd byte.
            address += size.max(1) + 8 * rng.below(4) + rng.below(2);
        }
    }
    spans
}

/// [`layout`] with every address rounded up to a multiple of `align` (a
/// power of two): objects as a heap aligns them.
pub(crate) fn aligned_layout(
    rng: &mut Rng,
    clusters: &[u64],
    per_cluster: usize,
    align: u64,
) -> Vec<(u64, u64)> {
    let mut spans = layout(rng, clusters, per_cluster);
    let mut end = 0;
    for (address, size) in &mut spans {
        *address = (*address).max(end).next_multiple_of(align);
        end = *address + (*size).max(1);
    }
    spans
}
