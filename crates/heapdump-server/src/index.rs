//! What the pages need, computed once when the server starts, so that each
//! request only looks things up: the reports (summary, leaks, unreachable
//! groups), the histograms in every order, the members of every class and
//! site, the referrers of every object, the root words that point at each
//! object, and one shortest-path tree from the roots.

use heapdump_inspect::analysis::class::{Classifier, Grouping};
use heapdump_inspect::analysis::describe::{group_totals_many, GroupTotals};
use heapdump_inspect::analysis::dominators::DomNode;
use heapdump_inspect::analysis::leaks::{leaks, LeakOptions, LeakReport};
use heapdump_inspect::analysis::paths::ShortestPathTree;
use heapdump_inspect::analysis::retained::subtree_sizes;
use heapdump_inspect::analysis::top::TopOrder;
use heapdump_inspect::analysis::waste::{waste, WasteOptions, WasteReport};
use heapdump_inspect::analysis::Summary;
use heapdump_inspect::reader::graph::RowStarts;
use heapdump_inspect::reader::ObjectId;
use heapdump_inspect::Heap;
use rayon::prelude::*;

/// One grouping's histogram: the non-empty groups with their totals, in
/// each order, and each group's objects, biggest retained first.
#[derive(Debug)]
pub struct Table {
    /// The grouping (class or site).
    pub grouping: Grouping,
    /// `(group number, totals)` of every non-empty group.
    pub rows: Vec<(usize, GroupTotals)>,
    /// Indexes into `rows`, by retained bytes, then shallow.
    pub by_retained: Vec<u32>,
    /// Indexes into `rows`, by shallow bytes, then retained.
    pub by_shallow: Vec<u32>,
    /// Indexes into `rows`, by object count, then shallow bytes.
    pub by_count: Vec<u32>,
    /// Where each group number's members start in `members` (one more
    /// entry than groups).
    member_offsets: Vec<u32>,
    /// Object ids grouped by group number, each group's biggest retained
    /// (then biggest shallow) first.
    members: Vec<u32>,
}

/// Every object id, biggest retained size first, then biggest shallow
/// size, then lowest id: the order of each group's members. Sorted once,
/// for both tables, as keys packed in a `u128` (retained, shallow size,
/// id), or as tuples when some object has 4 GiB or more; a comparison
/// reading each object's sizes through the dominator tree's numbering
/// made the server take seconds to start on a dump of millions of
/// objects.
fn biggest_first(heap: &Heap) -> Vec<u32> {
    let objects = &heap.graph().dump().objects;
    let packed = objects
        .par_iter()
        .all(|object| object.size <= u64::from(u32::MAX));
    sort_biggest_first(heap, packed)
}

/// [`biggest_first`], with packed keys if `packed` (every size fits in 32
/// bits).
fn sort_biggest_first(heap: &Heap, packed: bool) -> Vec<u32> {
    let analysis = heap.analysis();
    let objects = &heap.graph().dump().objects;
    let retained = |id: usize| analysis.retained_size_of(ObjectId(id as u32)).unwrap_or(0);
    if packed {
        let mut keys: Vec<u128> = objects
            .par_iter()
            .enumerate()
            .map(|(id, object)| {
                (u128::from(!retained(id)) << 64)
                    | (u128::from(!(object.size as u32)) << 32)
                    | id as u128
            })
            .collect();
        keys.par_sort_unstable();
        return keys.into_par_iter().map(|key| key as u32).collect();
    }
    let mut keys: Vec<(u64, u64, u32)> = objects
        .par_iter()
        .enumerate()
        .map(|(id, object)| (!retained(id), !object.size, id as u32))
        .collect();
    keys.par_sort_unstable();
    keys.into_par_iter().map(|(_, _, id)| id).collect()
}

/// The referrers of every object, as a CSR: a counting sort of the edges
/// by target, `(offsets, sources)`, with `u32` offsets while the
/// references fit.
fn referrers_by_target(heap: &Heap) -> (RowStarts, Vec<u32>) {
    if u32::try_from(heap.graph().reference_count()).is_ok() {
        let (offsets, sources) = referrers_with::<u32>(heap);
        (RowStarts::Narrow(offsets), sources)
    } else {
        let (offsets, sources) = referrers_with::<u64>(heap);
        (RowStarts::Wide(offsets), sources)
    }
}

/// [`referrers_by_target`] with offsets of type `T`, which must hold the
/// graph's reference count.
fn referrers_with<T>(heap: &Heap) -> (Vec<T>, Vec<u32>)
where
    T: Copy + Default + From<u8> + Into<u64> + std::ops::AddAssign,
{
    let graph = heap.graph();
    let count = graph.object_count();
    let csr = graph.csr();
    let one = T::from(1);
    let mut offsets = vec![T::default(); count + 1];
    for source in 0..count as u32 {
        for &target in csr.neighbors_slice(source) {
            if let Some(slot) = offsets.get_mut(target as usize + 1) {
                *slot += one;
            }
        }
    }
    let mut total = T::default();
    for slot in &mut offsets {
        total += *slot;
        *slot = total;
    }
    let mut next = offsets.clone();
    let mut sources = vec![0u32; total.into() as usize];
    for source in 0..count as u32 {
        for &target in csr.neighbors_slice(source) {
            if let Some(at) = next.get_mut(target as usize) {
                if let Some(slot) = sources.get_mut((*at).into() as usize) {
                    *slot = source;
                }
                *at += one;
            }
        }
    }
    (offsets, sources)
}

impl Table {
    /// The table of `classifier`'s groups, whose totals are `totals`;
    /// `biggest` is [`biggest_first`].
    fn build(
        classifier: &Classifier<'_>,
        heap: &Heap,
        totals: Vec<GroupTotals>,
        biggest: &[u32],
    ) -> Table {
        let graph = heap.graph();
        let rows: Vec<(usize, GroupTotals)> = totals
            .into_iter()
            .enumerate()
            .filter(|(_, totals)| totals.objects > 0)
            .collect();
        let order = |key: &(dyn Fn(&GroupTotals) -> (u64, u64) + Sync)| {
            let mut order: Vec<u32> = (0..rows.len() as u32).collect();
            order.par_sort_by(|&a, &b| {
                let (a_group, a) = &rows[a as usize];
                let (b_group, b) = &rows[b as usize];
                key(b).cmp(&key(a)).then(a_group.cmp(b_group))
            });
            order
        };
        let by_retained = order(&|t| (t.retained_bytes, t.shallow_bytes));
        let by_shallow = order(&|t| (t.shallow_bytes, t.retained_bytes));
        let by_count = order(&|t| (t.objects, t.shallow_bytes));

        // Members: a counting sort by group number of the objects, taken
        // biggest first, so that each group's stay in that order.
        let objects = &graph.dump().objects;
        let groups: Vec<u32> = objects
            .par_iter()
            .map(|object| classifier.group_of(object) as u32)
            .collect();
        let group_count = classifier.group_count();
        let mut member_offsets = vec![0u32; group_count + 1];
        for &group in &groups {
            if let Some(slot) = member_offsets.get_mut(group as usize + 1) {
                *slot += 1;
            }
        }
        for index in 1..member_offsets.len() {
            member_offsets[index] += member_offsets[index - 1];
        }
        let mut next = member_offsets.clone();
        let mut members = vec![0u32; objects.len()];
        for &id in biggest {
            let Some(&group) = groups.get(id as usize) else {
                continue;
            };
            if let Some(at) = next.get_mut(group as usize) {
                if let Some(slot) = members.get_mut(*at as usize) {
                    *slot = id;
                }
                *at += 1;
            }
        }
        Table {
            grouping: classifier.grouping(),
            rows,
            by_retained,
            by_shallow,
            by_count,
            member_offsets,
            members,
        }
    }

    /// The rows in `order`.
    pub fn ordered(&self, order: TopOrder) -> &[u32] {
        match order {
            TopOrder::Retained => &self.by_retained,
            TopOrder::Shallow => &self.by_shallow,
            TopOrder::Count => &self.by_count,
        }
    }

    /// The objects of group number `group`, biggest retained first.
    pub fn members(&self, group: usize) -> &[u32] {
        let start = self.member_offsets.get(group).copied().unwrap_or(0) as usize;
        let end = self.member_offsets.get(group + 1).copied().unwrap_or(0) as usize;
        self.members.get(start..end).unwrap_or(&[])
    }

    /// The totals of group number `group`, if it has objects.
    pub fn totals(&self, group: usize) -> Option<&GroupTotals> {
        let at = self.rows.binary_search_by_key(&group, |row| row.0).ok()?;
        self.rows.get(at).map(|row| &row.1)
    }
}

/// Everything precomputed for one heap.
#[derive(Debug)]
pub struct Index {
    /// `heapdump summary`'s report.
    pub summary: Summary,
    /// `heapdump leaks`' report (roots named).
    pub leaks: LeakReport,
    /// `heapdump waste`'s report (default rows).
    pub waste: WasteReport,
    /// The histogram by class.
    pub classes: Table,
    /// The histogram by allocation site.
    pub sites: Table,
    /// Number of objects in each dominator subtree, by node.
    subtree_sizes: Vec<u32>,
    /// Where each object's referrers start in `referrers` (one more entry
    /// than objects).
    referrer_offsets: RowStarts,
    /// The objects that refer to each object, in id order.
    referrers: Vec<u32>,
    /// Indexes into the graph's root references, by target object.
    root_refs_by_target: Vec<u32>,
    /// One breadth-first search from all roots.
    pub path_tree: ShortestPathTree,
}

impl Index {
    /// Computes the index of `heap` (which must have been opened with the
    /// analyses; without them every retained size is 0 and nothing is
    /// reachable).
    pub fn build(heap: &Heap) -> Index {
        let graph = heap.graph();
        let analysis = heap.analysis();
        let namer = heap.root_namer();
        let ((summary, (mut leaks, waste)), (totals, (subtree_sizes, path_tree))) = rayon::join(
            || {
                rayon::join(
                    || Summary::compute_with(graph, 10, &namer, None),
                    || {
                        rayon::join(
                            || leaks(graph, analysis, &LeakOptions::default()),
                            || waste(graph, analysis, &WasteOptions::default()),
                        )
                    },
                )
            },
            || {
                let classifiers = [
                    Classifier::new(graph, Grouping::Class),
                    Classifier::new(graph, Grouping::Site),
                ];
                (
                    group_totals_many(graph, analysis, &classifiers),
                    rayon::join(
                        || subtree_sizes(analysis),
                        || ShortestPathTree::build(graph),
                    ),
                )
            },
        );
        leaks.name_roots(graph, &namer);
        let mut totals = totals.into_iter();
        let (class_totals, site_totals) = (
            totals.next().unwrap_or_default(),
            totals.next().unwrap_or_default(),
        );
        // One after the other, not side by side: the order and the
        // referrers together add 0.2 GB to the peak at 19M objects, for 0.3 s.
        let order = biggest_first(heap);
        let classes = Table::build(
            &Classifier::new(graph, Grouping::Class),
            heap,
            class_totals,
            &order,
        );
        let sites = Table::build(
            &Classifier::new(graph, Grouping::Site),
            heap,
            site_totals,
            &order,
        );
        drop(order);
        let (referrer_offsets, referrers) = referrers_by_target(heap);

        let root_references = graph.root_references();
        let mut root_refs_by_target: Vec<u32> = (0..root_references.len() as u32).collect();
        root_refs_by_target.sort_by_key(|&index| {
            root_references
                .get(index as usize)
                .map_or(u32::MAX, |reference| reference.target.0)
        });

        Index {
            summary,
            leaks,
            waste,
            classes,
            sites,
            subtree_sizes,
            referrer_offsets,
            referrers,
            root_refs_by_target,
            path_tree,
        }
    }

    /// The objects that refer to `id` (itself included if it refers to
    /// itself), in id order.
    pub fn referrers(&self, id: ObjectId) -> &[u32] {
        self.referrer_offsets
            .range(id.index())
            .and_then(|range| self.referrers.get(range))
            .unwrap_or(&[])
    }

    /// Number of objects in `node`'s dominator subtree, itself included.
    pub fn dominated_objects(&self, node: DomNode) -> Option<u64> {
        self.subtree_sizes
            .get(node.index())
            .map(|&count| u64::from(count))
    }

    /// Indexes into `graph.root_references()` of the root words pointing
    /// at `id`.
    pub fn root_references_to(&self, heap: &Heap, id: ObjectId) -> &[u32] {
        let references = heap.graph().root_references();
        let target = |index: &u32| {
            references
                .get(*index as usize)
                .map_or(u32::MAX, |reference| reference.target.0)
        };
        let start = self
            .root_refs_by_target
            .partition_point(|index| target(index) < id.0);
        let end = self
            .root_refs_by_target
            .partition_point(|index| target(index) <= id.0);
        self.root_refs_by_target.get(start..end).unwrap_or(&[])
    }

    /// The table of `grouping`.
    pub fn table(&self, grouping: Grouping) -> &Table {
        match grouping {
            Grouping::Class => &self.classes,
            Grouping::Site => &self.sites,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapdump_inspect::{NoProgress, Options};

    /// Each group's members are its objects, biggest retained first, then
    /// biggest shallow, then lowest id, in both tables: what a sort of
    /// each group by those keys gives.
    #[test]
    fn members_are_sorted_biggest_first() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/go/dumps/go1.26.godump"
        );
        let options = Options {
            analyze: true,
            ..Options::default()
        };
        let heap = Heap::open(path, &options, &mut NoProgress).expect("the Go sample");
        let index = Index::build(&heap);
        let (graph, analysis) = (heap.graph(), heap.analysis());
        let objects = &graph.dump().objects;
        for grouping in [Grouping::Class, Grouping::Site] {
            let classifier = Classifier::new(graph, grouping);
            let table = index.table(grouping);
            let mut listed = 0;
            for group in 0..classifier.group_count() {
                let mut expected: Vec<u32> = (0..objects.len() as u32)
                    .filter(|&id| classifier.group_of(&objects[id as usize]) == group)
                    .collect();
                let key = |id: u32| {
                    let retained = analysis.retained_size_of(ObjectId(id)).unwrap_or(0);
                    (retained, objects[id as usize].size)
                };
                expected.sort_by(|&a, &b| key(b).cmp(&key(a)).then(a.cmp(&b)));
                assert_eq!(table.members(group), expected, "{grouping:?} group {group}");
                listed += expected.len();
            }
            assert_eq!(listed, objects.len());
        }
        // The packed keys sort as the tuples do.
        assert_eq!(
            sort_biggest_first(&heap, true),
            sort_biggest_first(&heap, false)
        );
    }

    /// Each object's referrers are the objects whose references name it,
    /// in id order, with narrow and wide offsets alike; each node's
    /// dominated objects are its subtree's nodes.
    #[test]
    fn referrers_and_dominated_objects_match_a_walk() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/go/dumps/go1.26.godump"
        );
        let heap = Heap::open(path, &Options::default(), &mut NoProgress).expect("the Go sample");
        let index = Index::build(&heap);
        let graph = heap.graph();
        let count = graph.object_count();
        let mut expected: Vec<Vec<u32>> = vec![Vec::new(); count];
        for source in 0..count as u32 {
            for (target, _) in graph.references(ObjectId(source)) {
                expected[target.index()].push(source);
            }
        }
        assert!(matches!(index.referrer_offsets, RowStarts::Narrow(_)));
        let (wide, sources) = referrers_with::<u64>(&heap);
        let wide = RowStarts::Wide(wide);
        for (id, referrers) in expected.iter().enumerate() {
            assert_eq!(index.referrers(ObjectId(id as u32)), &referrers[..]);
            let range = wide.range(id).expect("in range");
            assert_eq!(&sources[range], &referrers[..]);
        }
        assert!(expected.iter().any(|referrers| referrers.len() > 1));

        let analysis = heap.analysis();
        let mut below = vec![0u64; analysis.node_count()];
        for node in (1..analysis.node_count()).rev() {
            let mut up = analysis.idom(DomNode(node as u32));
            while let Some(ancestor) = up {
                below[ancestor.index()] += 1;
                up = analysis.idom(ancestor);
            }
        }
        for (node, below) in below.iter().enumerate() {
            assert_eq!(
                index.dominated_objects(DomNode(node as u32)),
                Some(below + 1)
            );
        }
    }
}
