//! A one-page overview of a dump: what `heapdump summary` prints.

use rayon::prelude::*;
use serde::Serialize;

use crate::dump::{AllocatorStats, DumpInfo, Module, Object, RootKind, StackId};
use crate::graph::HeapGraph;

/// Objects per parallel task when aggregating.
const CHUNK: usize = 64 * 1024;

/// The overview of a dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// What the dump says about itself (format, PARAMS).
    pub info: DumpInfo,
    /// Number of loaded modules.
    pub module_count: u64,
    /// The loaded modules.
    pub modules: Vec<Module>,
    /// Roots by kind.
    pub roots: RootCounts,
    /// Number of live objects.
    pub object_count: u64,
    /// Sum of live object sizes.
    pub live_bytes: u64,
    /// Object→object references (distinct source/target pairs).
    pub reference_count: u64,
    /// Root words that point into objects.
    pub root_reference_count: u64,
    /// The allocator's statistics, if the dump has them.
    pub stats: Option<AllocatorStats>,
    /// Whether the dump's objects agree with the allocator's statistics.
    pub stats_agreement: Option<StatsAgreement>,
    /// Number of distinct allocation sites with live objects.
    pub site_count: u64,
    /// Allocation sites by live bytes, largest first.
    pub top_sites: Vec<SiteSummary>,
    /// Objects whose allocation was not sampled.
    pub not_sampled: Totals,
    /// Objects by size class (power-of-two buckets), smallest first; empty
    /// classes are left out.
    pub size_classes: Vec<SizeClass>,
}

/// Roots by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RootCounts {
    /// Module segments (statics).
    pub segments: u64,
    /// Bytes in module segments.
    pub segment_bytes: u64,
    /// Thread stacks.
    pub thread_stacks: u64,
    /// Bytes in thread stacks.
    pub thread_stack_bytes: u64,
}

/// Whether a dump's objects agree with the allocator's statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StatsAgreement {
    /// The number of objects equals `live_objects`.
    pub objects: bool,
    /// The sum of object sizes equals `live_bytes`.
    pub bytes: bool,
}

impl StatsAgreement {
    /// Both agree.
    pub fn all(&self) -> bool {
        self.objects && self.bytes
    }
}

/// A count of objects and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Number of objects.
    pub objects: u64,
    /// Sum of their sizes.
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, size: u64) {
        self.objects += 1;
        self.bytes = self.bytes.saturating_add(size);
    }

    fn merge(&mut self, other: Totals) {
        self.objects = self.objects.saturating_add(other.objects);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Live objects allocated at one site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SiteSummary {
    /// The site's stack.
    pub stack_id: StackId,
    /// Its return addresses, innermost first, as `0x…` hex.
    pub pcs: Vec<String>,
    /// Live objects and bytes allocated there.
    #[serde(flatten)]
    pub totals: Totals,
}

/// Objects whose size is in `min..=max`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SizeClass {
    /// `min..=max`, e.g. `17..=32`.
    pub label: String,
    /// Smallest size in the class.
    pub min: u64,
    /// Largest size in the class.
    pub max: u64,
    /// Objects and bytes in the class.
    #[serde(flatten)]
    pub totals: Totals,
}

/// Number of size classes: 0, `1..=16`, then one per power of two up to 2⁶⁴.
const CLASSES: usize = 62;

/// The class of `size`: 0 for size 0, 1 for `1..=16`, then `k - 3` for
/// `2^(k-1) < size <= 2^k`.
fn class_of(size: u64) -> usize {
    match size {
        0 => 0,
        1..=16 => 1,
        // ceil(log2(size)) is in 5..=64.
        _ => (64 - (size - 1).leading_zeros()) as usize - 3,
    }
}

/// The `(min, max)` sizes of class `class`.
fn class_bounds(class: usize) -> (u64, u64) {
    match class {
        0 => (0, 0),
        1 => (1, 16),
        _ => {
            let exponent = class as u32 + 3;
            let max = 1u64.checked_shl(exponent).map_or(u64::MAX, |max| max);
            let min = (1u64 << (exponent - 1)) + 1;
            (min, max)
        }
    }
}

/// Per-task aggregates.
struct Tally {
    /// Indexed like the dump's (sorted) stacks.
    sites: Vec<Totals>,
    not_sampled: Totals,
    classes: [Totals; CLASSES],
}

impl Tally {
    fn new(site_count: usize) -> Tally {
        Tally {
            sites: vec![Totals::default(); site_count],
            not_sampled: Totals::default(),
            classes: [Totals::default(); CLASSES],
        }
    }

    fn merge(mut self, other: Tally) -> Tally {
        for (mine, theirs) in self.sites.iter_mut().zip(other.sites) {
            mine.merge(theirs);
        }
        self.not_sampled.merge(other.not_sampled);
        for (mine, theirs) in self.classes.iter_mut().zip(other.classes) {
            mine.merge(theirs);
        }
        self
    }
}

impl Summary {
    /// Computes the summary of `graph`, with the `top_sites` allocation sites
    /// that hold the most live bytes.
    pub fn compute(graph: &HeapGraph<'_>, top_sites: usize) -> Summary {
        let dump = graph.dump();

        let mut roots = RootCounts::default();
        for root in &dump.roots {
            let bytes = root.contents.len() as u64;
            match root.kind {
                RootKind::Segment { .. } => {
                    roots.segments += 1;
                    roots.segment_bytes = roots.segment_bytes.saturating_add(bytes);
                }
                RootKind::ThreadStack { .. } => {
                    roots.thread_stacks += 1;
                    roots.thread_stack_bytes = roots.thread_stack_bytes.saturating_add(bytes);
                }
            }
        }

        let stacks = &dump.stacks;
        let tally_chunk = |chunk: &[Object<'_>]| {
            let mut tally = Tally::new(stacks.len());
            for object in chunk {
                if let Some(class) = tally.classes.get_mut(class_of(object.size)) {
                    class.add(object.size);
                }
                let site = object.site.and_then(|id| {
                    stacks
                        .binary_search_by_key(&id, |stack| stack.id)
                        .ok()
                        .and_then(|index| tally.sites.get_mut(index))
                });
                match site {
                    Some(site) => site.add(object.size),
                    None => tally.not_sampled.add(object.size),
                }
            }
            tally
        };
        let tally = dump
            .objects
            .par_chunks(CHUNK)
            .map(tally_chunk)
            .reduce(|| Tally::new(stacks.len()), Tally::merge);

        let mut live = Totals::default();
        for class in &tally.classes {
            live.merge(*class);
        }

        let mut sites: Vec<(usize, Totals)> = tally
            .sites
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, totals)| totals.objects > 0)
            .collect();
        let site_count = sites.len() as u64;
        // Largest first; ties by more objects, then by stack order.
        sites.sort_unstable_by(|(a_index, a), (b_index, b)| {
            b.bytes
                .cmp(&a.bytes)
                .then(b.objects.cmp(&a.objects))
                .then(a_index.cmp(b_index))
        });
        let top_sites = sites
            .into_iter()
            .take(top_sites)
            .filter_map(|(index, totals)| {
                let stack = stacks.get(index)?;
                Some(SiteSummary {
                    stack_id: stack.id,
                    pcs: stack.pcs.iter().map(|pc| format!("{pc:#x}")).collect(),
                    totals,
                })
            })
            .collect();

        let size_classes = tally
            .classes
            .iter()
            .enumerate()
            .filter(|(_, totals)| totals.objects > 0)
            .map(|(class, &totals)| {
                let (min, max) = class_bounds(class);
                SizeClass {
                    label: format!("{min}..={max}"),
                    min,
                    max,
                    totals,
                }
            })
            .collect();

        let stats_agreement = dump.stats.map(|stats| StatsAgreement {
            objects: stats.live_objects == live.objects,
            bytes: stats.live_bytes == live.bytes,
        });

        Summary {
            info: dump.info.clone(),
            module_count: dump.modules.len() as u64,
            modules: dump.modules.clone(),
            roots,
            object_count: live.objects,
            live_bytes: live.bytes,
            reference_count: graph.reference_count() as u64,
            root_reference_count: graph.root_references().len() as u64,
            stats: dump.stats,
            stats_agreement,
            site_count,
            top_sites,
            not_sampled: tally.not_sampled,
            size_classes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_powers_of_two() {
        let cases = [
            (0, 0),
            (1, 1),
            (16, 1),
            (17, 2),
            (32, 2),
            (33, 3),
            (64, 3),
            (65, 4),
            (1 << 20, 17),
            (u64::MAX, CLASSES - 1),
        ];
        for (size, class) in cases {
            assert_eq!(class_of(size), class, "size {size}");
            let (min, max) = class_bounds(class);
            assert!(min <= size && size <= max, "size {size} in {min}..={max}");
        }
        assert_eq!(class_bounds(2), (17, 32));
        assert_eq!(class_bounds(CLASSES - 1), ((1 << 63) + 1, u64::MAX));
        for class in 2..CLASSES - 1 {
            assert_eq!(class_bounds(class).1 + 1, class_bounds(class + 1).0);
        }
    }
}
