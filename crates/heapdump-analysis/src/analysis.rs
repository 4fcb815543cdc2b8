//! [`analyze`]: reachability, the dominator tree and retained sizes of a
//! [`HeapGraph`], kept in flat arrays.

use std::sync::atomic::{AtomicBool, Ordering};

use heapdump_reader::{HeapGraph, ObjectId};
use rayon::prelude::*;
use serde::Serialize;

use crate::dominators::{
    Algorithm, DomNode, Dominators, FlowGraph, SearchBuffers, Spare, UNREACHED,
};

/// A long step of [`analyze_with_progress`], announced as it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Depth-first search from the roots, predecessors, semi-NCA.
    Dominators,
    /// Retained sizes and the dominator tree's children.
    RetainedSizes,
    /// Classifying the unreachable objects.
    Unreachable,
}

impl Step {
    /// What the step does, for a progress bar.
    pub fn description(self) -> &'static str {
        match self {
            Step::Dominators => "dominators",
            Step::RetainedSizes => "retained sizes",
            Step::Unreachable => "unreachable",
        }
    }
}

/// Whether an object is reachable from the dump's roots, and if not, how it
/// is held (LeakSanitizer's classification, with cycles told apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Reachability {
    /// Reachable from a root.
    Reachable,
    /// Unreachable, and no other unreachable object points at it: the
    /// object whose last pointer was lost (LSan's "direct leak").
    DirectlyUnreachable,
    /// Unreachable, held only by other unreachable objects, at least one
    /// chain of which starts at a directly unreachable object (LSan's
    /// "indirect leak").
    IndirectlyUnreachable,
    /// Unreachable, held only by other unreachable objects, none of them
    /// directly unreachable: it is on (or hangs off) a cycle of garbage, such
    /// as an `Rc` cycle. LSan counts these as indirect leaks.
    InUnreachableCycle,
}

impl Reachability {
    /// A short description for reports.
    pub fn description(self) -> &'static str {
        match self {
            Reachability::Reachable => "reachable",
            Reachability::DirectlyUnreachable => "directly unreachable",
            Reachability::IndirectlyUnreachable => "indirectly unreachable",
            Reachability::InUnreachableCycle => "unreachable, held only by a cycle",
        }
    }
}

/// The immediate dominator of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dominator {
    /// The virtual root: more than one root path reaches the object, a
    /// root points at it directly, or it is held from outside the heap (an
    /// object the roots do not reach refers to it, in a dump whose objects
    /// are all alive: [`analyze`]).
    Root,
    /// Every path from the roots passes through this object.
    Object(ObjectId),
}

/// The analyses of one heap graph: reachability, immediate dominators,
/// retained sizes, and the dominator tree's children, in flat arrays.
///
/// Nodes of the dominator tree are [`DomNode`]s, numbered in depth-first
/// preorder from the virtual root ([`DomNode::ROOT`]); only reachable
/// objects have one. Arrays indexed by node: [`Analysis::idoms`],
/// [`Analysis::retained_sizes`], [`Analysis::object_of_node`]; by object:
/// [`Analysis::node_of_object`], [`Analysis::reachabilities`].
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    node_of_object: Vec<u32>,
    object_of_node: Vec<u32>,
    idom: Vec<DomNode>,
    retained: Vec<u64>,
    child_offsets: Vec<u32>,
    children: Vec<DomNode>,
    reachability: Vec<Reachability>,
    fell_back: bool,
}

/// A [`HeapGraph`] read as a flow graph: node `n` is `ObjectId(n)`.
impl FlowGraph for HeapGraph<'_> {
    #[inline]
    fn node_count(&self) -> usize {
        self.object_count()
    }

    #[inline]
    fn successors(&self, node: u32) -> &[u32] {
        // Empty out of range.
        self.csr().neighbors_slice(node)
    }

    /// The reference graph has one edge per (source, target) pair.
    fn distinct_successors(&self) -> bool {
        true
    }
}

/// The distinct objects that roots point at, ascending.
pub fn root_targets(graph: &HeapGraph<'_>) -> Vec<u32> {
    let mut targets: Vec<u32> = graph
        .root_references()
        .iter()
        .map(|reference| reference.target.0)
        .collect();
    targets.par_sort_unstable();
    targets.dedup();
    targets
}

/// The dominators of `graph` below the virtual root, whose edges go to
/// `roots`. Reachability follows strong references only; the dominator
/// tree also counts, as VisualVM does (its `DominatorTree` intersects the
/// dominator chains of every referrer an object has):
///
/// - a weak reference ([`HeapGraph::weak_references`]) from a reachable
///   object to a reachable one, as an edge;
/// - when the dump's objects are all alive
///   ([`Capabilities::unreached_objects_hold`](heapdump_reader::Capabilities::unreached_objects_hold)),
///   a reference (strong or weak) from an unreachable object to a
///   reachable one, as an edge from the virtual root: its target is then
///   dominated by the virtual root, held from outside the heap.
///
/// Graphs with neither (Go and heapdump-rs dumps) are read as they are.
///
/// Also hands back the computation's spare buffers ([`Spare`]).
fn dominators_of(graph: &HeapGraph<'_>, mut roots: Vec<u32>) -> (Dominators, Spare) {
    let held = graph.dump().capabilities.unreached_objects_hold;
    let object_count = graph.object_count();
    if graph.weak_reference_count() == 0 && !held {
        let buffers = SearchBuffers::new(object_count);
        return Dominators::compute_keeping_buffers(graph, &roots, Algorithm::SemiNca, buffers);
    }
    // The flood is serial: the other core pages in the search's buffers
    // meanwhile (these dumps' objects are nearly all reachable).
    let (reached, buffers) = rayon::join(
        || crate::reach::reachable_bits(graph),
        || SearchBuffers::paged_in(object_count),
    );
    let is_reached = |id: ObjectId| reached.contains(id.index());
    if held {
        let count = roots.len();
        for source in reached.absent() {
            let source = ObjectId(source as u32);
            let strong = graph.references(source).map(|(target, _)| target);
            for target in strong.chain(graph.weak_references(source)) {
                if is_reached(target) {
                    roots.push(target.0);
                }
            }
        }
        if roots.len() > count {
            roots.par_sort_unstable();
            roots.dedup();
        }
    }
    if graph.weak_reference_count() == 0 {
        return Dominators::compute_keeping_buffers(graph, &roots, Algorithm::SemiNca, buffers);
    }
    let view = WithWeak::new(graph, &reached);
    drop(reached);
    Dominators::compute_keeping_buffers(&view, &roots, Algorithm::SemiNca, buffers)
}

/// Objects per bit of [`WithWeak::merged_blocks`].
const MERGED_BLOCK: usize = 4096;

/// A [`HeapGraph`] as a flow graph whose successor lists also hold the
/// weak references between reachable objects: those objects' lists are
/// merged here (few: Java's `Reference` objects); the others are the
/// graph's own.
struct WithWeak<'g, 'data> {
    graph: &'g HeapGraph<'data>,
    /// Bit `n`: object `n` has a merged list.
    merged: Vec<u64>,
    /// Bit `n`: one of objects `n * MERGED_BLOCK..` has a merged list; a few
    /// hundred bytes, which stay in cache, so that the search does not
    /// miss on `merged` for each object it visits.
    merged_blocks: Vec<u64>,
    /// The objects with a merged list, ascending.
    sources: Vec<u32>,
    /// `sources[i]`'s list is `targets[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<usize>,
    /// Merged lists: strong and weak targets, ascending, each once.
    targets: Vec<u32>,
}

impl<'g, 'data> WithWeak<'g, 'data> {
    fn new(graph: &'g HeapGraph<'data>, reached: &crate::reach::Bits) -> WithWeak<'g, 'data> {
        let is_reached = |id: ObjectId| reached.contains(id.index());
        let mut view = WithWeak {
            graph,
            merged: vec![0; graph.object_count().div_ceil(64)],
            merged_blocks: vec![0; graph.object_count().div_ceil(64 * MERGED_BLOCK)],
            sources: Vec::new(),
            offsets: vec![0],
            targets: Vec::new(),
        };
        let mut previous = None;
        for (source, target) in graph.all_weak_references() {
            if !is_reached(source) || !is_reached(target) {
                continue;
            }
            if previous != Some(source) {
                if previous.is_some() {
                    view.finish_list();
                }
                previous = Some(source);
                view.sources.push(source.0);
                if let Some(word) = view.merged.get_mut(source.index() / 64) {
                    *word |= 1 << (source.index() % 64);
                }
                let block = source.index() / MERGED_BLOCK;
                if let Some(word) = view.merged_blocks.get_mut(block / 64) {
                    *word |= 1 << (block % 64);
                }
                view.targets
                    .extend_from_slice(graph.csr().neighbors_slice(source.0));
            }
            view.targets.push(target.0);
        }
        if previous.is_some() {
            view.finish_list();
        }
        view
    }

    /// Sorts the list being built and drops repeats.
    fn finish_list(&mut self) {
        let start = self.offsets.last().copied().unwrap_or(0);
        let mut list = self.targets.split_off(start);
        list.sort_unstable();
        list.dedup();
        self.targets.extend_from_slice(&list);
        self.offsets.push(self.targets.len());
    }
}

impl FlowGraph for WithWeak<'_, '_> {
    fn node_count(&self) -> usize {
        self.graph.object_count()
    }

    #[inline]
    fn successors(&self, node: u32) -> &[u32] {
        let index = node as usize;
        let block = index / MERGED_BLOCK;
        let merged = self
            .merged_blocks
            .get(block / 64)
            .is_some_and(|word| word & (1 << (block % 64)) != 0)
            && self
                .merged
                .get(index / 64)
                .is_some_and(|word| word & (1 << (index % 64)) != 0);
        if !merged {
            return self.graph.csr().neighbors_slice(node);
        }
        let Ok(position) = self.sources.binary_search(&node) else {
            return &[];
        };
        match (self.offsets.get(position), self.offsets.get(position + 1)) {
            (Some(&start), Some(&end)) => self.targets.get(start..end).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Merged lists are deduplicated like the graph's own.
    fn distinct_successors(&self) -> bool {
        true
    }
}

/// Analyses `graph`: see [`Analysis`]. Reachability follows the strong
/// references; the dominator tree, and so retained sizes, also counts weak
/// references and, in dumps whose objects are all alive, references from
/// unreachable objects (VisualVM's rules; docs/ARCHITECTURE.md, HPROF).
pub fn analyze(graph: &HeapGraph<'_>) -> Analysis {
    analyze_with_progress(graph, &mut |_| {})
}

/// Analyses `graph`, calling `progress` as each long step starts.
pub fn analyze_with_progress(graph: &HeapGraph<'_>, progress: &mut dyn FnMut(Step)) -> Analysis {
    progress(Step::Dominators);
    let roots = root_targets(graph);
    let (dominators, spare) = dominators_of(graph, roots);
    let fell_back = dominators.fell_back();
    let (node_of_object, object_of_node, idom) = dominators.into_parts();

    progress(Step::RetainedSizes);
    let (retained, child_offsets, children) = retained_sizes(graph, &object_of_node, &idom, spare);

    progress(Step::Unreachable);
    let reachability = classify_unreachable(graph, &node_of_object);

    Analysis {
        node_of_object,
        object_of_node,
        idom,
        retained,
        child_offsets,
        children,
        reachability,
        fell_back,
    }
}

/// A buffer of `len` entries: `spare` if it has exactly that many (its
/// contents are then left for the caller to overwrite), a fresh one of
/// `zero`s otherwise.
fn reuse<T: Clone>(spare: Vec<T>, len: usize, zero: T) -> Vec<T> {
    if spare.len() == len {
        spare
    } else {
        drop(spare);
        vec![zero; len]
    }
}

/// Retained sizes by node, and the children of each node in a CSR, each
/// node's biggest retained size first (ties: lower number first), in the
/// dominator computation's spare buffers where they fit (they are paged in
/// already: fresh memory costs page faults).
fn retained_sizes(
    graph: &HeapGraph<'_>,
    object_of_node: &[u32],
    idom: &[DomNode],
    spare: Spare,
) -> (Vec<u64>, Vec<u32>, Vec<DomNode>) {
    let count = idom.len();
    let objects = &graph.dump().objects;
    let mut retained = reuse(spare.words, count, 0);
    retained
        .par_iter_mut()
        .zip(object_of_node.par_iter())
        .with_min_len(64 * 1024)
        .for_each(|(slot, &object)| {
            *slot = objects.get(object as usize).map_or(0, |object| object.size);
        });
    let mut offsets = reuse(spare.offsets, count + 1, 0);
    offsets
        .par_iter_mut()
        .with_min_len(64 * 1024)
        .for_each(|slot| *slot = 0);
    let mut parent = spare.parent;
    parent.truncate(count.saturating_sub(1));
    // In place: `DomNode` is a transparent `u32`.
    let spare_children: Vec<DomNode> = parent.into_iter().map(DomNode).collect();
    // Two serial sweeps, one on each core: the sums, and the lists.
    let ((), mut children) = rayon::join(
        || sum_subtrees(&mut retained, idom),
        || children_by_number(idom, &mut offsets, spare_children),
    );
    sort_children_lists(&mut children, &offsets, &retained);
    (retained, offsets, children)
}

/// Adds each node's retained size (its own size on entry) to its
/// immediate dominator's.
fn sum_subtrees(retained: &mut [u64], idom: &[DomNode]) {
    // Children have larger numbers than their immediate dominator: one sweep
    // from the last node down finishes every subtree before its root is
    // read.
    for node in (1..retained.len()).rev() {
        let size = retained.get(node).copied().unwrap_or(0);
        let up = idom.get(node).map_or(0, |up| up.index());
        if let Some(slot) = retained.get_mut(up) {
            *slot = slot.saturating_add(size);
        }
    }
}

/// Children of each node in a CSR, each list by ascending number.
/// `offsets` (one more entry than nodes, all zero) ends as the CSR's
/// offsets; `spare` is reused for the lists if it has room for one entry
/// per node but the root.
fn children_by_number(idom: &[DomNode], offsets: &mut [u32], spare: Vec<DomNode>) -> Vec<DomNode> {
    let count = idom.len();
    for up in idom.iter().skip(1) {
        if let Some(slot) = offsets.get_mut(up.index()) {
            *slot += 1;
        }
    }
    // Each entry becomes the end of its node's list; filling the lists
    // from their ends moves it back to the start.
    let mut end = 0u32;
    for slot in offsets.iter_mut() {
        end += *slot;
        *slot = end;
    }
    let mut children = reuse(spare, count.saturating_sub(1), DomNode::ROOT);
    for (node, up) in idom.iter().enumerate().skip(1).rev() {
        if let Some(position) = offsets.get_mut(up.index()) {
            *position -= 1;
            if let Some(slot) = children.get_mut(*position as usize) {
                *slot = DomNode(node as u32);
            }
        }
    }
    children
}

/// Sorts each list of the children CSR (`children`, `offsets`) biggest
/// retained size first (ties: lower number first).
fn sort_children_lists(children: &mut [DomNode], offsets: &[u32], retained: &[u64]) {
    let count = offsets.len().saturating_sub(1);
    // Sort every node's list, in parallel over runs of nodes holding about
    // CHUNK children between them.
    const CHUNK: usize = 64 * 1024;
    let mut runs: Vec<(usize, &mut [DomNode])> = Vec::new();
    let mut rest: &mut [DomNode] = children;
    let mut run_start_node = 0usize;
    let mut run_start = 0usize;
    for node in 0..count {
        let end = offsets.get(node + 1).copied().unwrap_or(0) as usize;
        if end - run_start >= CHUNK || node + 1 == count {
            let (run, tail) = std::mem::take(&mut rest).split_at_mut(end - run_start);
            runs.push((run_start_node, run));
            rest = tail;
            run_start = end;
            run_start_node = node + 1;
        }
    }
    runs.into_par_iter().for_each(|(first_node, run)| {
        let base = offsets.get(first_node).copied().unwrap_or(0) as usize;
        let mut node = first_node;
        let mut start = 0usize;
        while start < run.len() {
            let end = (offsets.get(node + 1).copied().unwrap_or(0) as usize - base).min(run.len());
            if let Some(list) = run.get_mut(start..end) {
                sort_children(list, retained);
            }
            start = end;
            node += 1;
        }
    });
}

/// Lists at least this long are sorted by packed keys, in parallel.
const LONG_LIST: usize = 16 * 1024;

/// Sorts one node's children, biggest retained size first, ties by number.
/// A long list (a big array's elements) is sorted as packed keys, size and
/// number in one integer: no retained size looked up per comparison, which
/// are cache misses all over the heap.
fn sort_children(list: &mut [DomNode], retained: &[u64]) {
    let size = |node: &DomNode| retained.get(node.index()).copied().unwrap_or(0);
    if list.len() < LONG_LIST {
        list.sort_unstable_by(|a, b| size(b).cmp(&size(a)).then(a.cmp(b)));
        return;
    }
    // Ascending keys: sizes complemented, then the number.
    if list
        .par_iter()
        .all(|node| size(node) <= u64::from(u32::MAX))
    {
        let mut keys: Vec<u64> = list
            .par_iter()
            .map(|node| (u64::from(u32::MAX - size(node) as u32) << 32) | u64::from(node.0))
            .collect();
        keys.par_sort_unstable();
        list.par_iter_mut()
            .zip(keys.par_iter())
            .for_each(|(slot, &key)| *slot = DomNode(key as u32));
    } else {
        let mut keys: Vec<u128> = list
            .par_iter()
            .map(|node| (u128::from(u64::MAX - size(node)) << 32) | u128::from(node.0))
            .collect();
        keys.par_sort_unstable();
        list.par_iter_mut()
            .zip(keys.par_iter())
            .for_each(|(slot, &key)| *slot = DomNode(key as u32));
    }
}

/// Objects per parallel task when classifying.
const CLASSIFY_CHUNK: usize = 64 * 1024;

/// LSan's split of the unreachable objects, with cycles told apart.
fn classify_unreachable(graph: &HeapGraph<'_>, node_of_object: &[u32]) -> Vec<Reachability> {
    let count = node_of_object.len();
    let unreachable = |object: u32| node_of_object.get(object as usize) == Some(&UNREACHED);
    // Whether another unreachable object points at it.
    let held: Vec<AtomicBool> = (0..count).map(|_| AtomicBool::new(false)).collect();
    (0..count)
        .into_par_iter()
        .with_min_len(CLASSIFY_CHUNK)
        .filter(|&object| unreachable(object as u32))
        .for_each(|object| {
            for &target in graph.successors(object as u32) {
                if target as usize != object && unreachable(target) {
                    if let Some(flag) = held.get(target as usize) {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
            }
        });
    let mut reachability: Vec<Reachability> = node_of_object
        .par_iter()
        .zip(held.par_iter())
        .map(|(&node, held)| {
            if node != UNREACHED {
                Reachability::Reachable
            } else if held.load(Ordering::Relaxed) {
                Reachability::InUnreachableCycle
            } else {
                Reachability::DirectlyUnreachable
            }
        })
        .collect();
    drop(held);
    // Whatever the directly unreachable objects reach is indirect; the rest
    // of the held ones stay "in a cycle".
    let mut stack: Vec<u32> = Vec::new();
    for object in 0..count {
        if reachability.get(object) != Some(&Reachability::DirectlyUnreachable) {
            continue;
        }
        stack.push(object as u32);
        while let Some(current) = stack.pop() {
            for &target in graph.successors(current) {
                if let Some(slot) = reachability.get_mut(target as usize) {
                    if *slot == Reachability::InUnreachableCycle {
                        *slot = Reachability::IndirectlyUnreachable;
                        stack.push(target);
                    }
                }
            }
        }
    }
    reachability
}

impl Analysis {
    /// Number of dominator-tree nodes: reachable objects plus the virtual
    /// root.
    pub fn node_count(&self) -> usize {
        self.object_of_node.len()
    }

    /// Number of objects reachable from the roots.
    pub fn reachable_objects(&self) -> u64 {
        self.object_of_node.len().saturating_sub(1) as u64
    }

    /// Bytes in objects reachable from the roots: the virtual root's
    /// retained size.
    pub fn reachable_bytes(&self) -> u64 {
        self.retained.first().copied().unwrap_or(0)
    }

    /// The dominator-tree node of `object`; `None` if it is unreachable.
    pub fn node(&self, object: ObjectId) -> Option<DomNode> {
        match self.node_of_object.get(object.index()) {
            Some(&node) if node != UNREACHED => Some(DomNode(node)),
            _ => None,
        }
    }

    /// The object at `node`; `None` for the virtual root.
    pub fn object(&self, node: DomNode) -> Option<ObjectId> {
        match self.object_of_node.get(node.index()) {
            Some(&object) if object != UNREACHED => Some(ObjectId(object)),
            _ => None,
        }
    }

    /// The immediate dominator of `node`; `None` for the virtual root.
    pub fn idom(&self, node: DomNode) -> Option<DomNode> {
        if node == DomNode::ROOT {
            return None;
        }
        self.idom.get(node.index()).copied()
    }

    /// The immediate dominator of `object`; `None` if it is unreachable.
    pub fn immediate_dominator(&self, object: ObjectId) -> Option<Dominator> {
        let up = self.idom(self.node(object)?)?;
        Some(match self.object(up) {
            Some(object) => Dominator::Object(object),
            None => Dominator::Root,
        })
    }

    /// Bytes that would be freed if `node` were: its own size plus the
    /// sizes of everything it dominates. The virtual root's is
    /// [`Analysis::reachable_bytes`].
    pub fn retained_size(&self, node: DomNode) -> u64 {
        self.retained.get(node.index()).copied().unwrap_or(0)
    }

    /// The retained size of `object`; `None` if it is unreachable.
    pub fn retained_size_of(&self, object: ObjectId) -> Option<u64> {
        self.node(object).map(|node| self.retained_size(node))
    }

    /// The nodes `node` immediately dominates, biggest retained size first.
    pub fn children(&self, node: DomNode) -> &[DomNode] {
        let start = self.child_offsets.get(node.index()).copied().unwrap_or(0) as usize;
        let end = self
            .child_offsets
            .get(node.index() + 1)
            .copied()
            .unwrap_or(0) as usize;
        self.children.get(start..end).unwrap_or(&[])
    }

    /// `node` and every node it dominates, in depth-first order (children
    /// biggest first).
    pub fn subtree(&self, node: DomNode) -> Subtree<'_> {
        Subtree {
            analysis: self,
            stack: if node.index() < self.node_count() {
                vec![node]
            } else {
                Vec::new()
            },
        }
    }

    /// Whether `object` is reachable, and if not, how it is held.
    pub fn reachability(&self, object: ObjectId) -> Reachability {
        self.reachability
            .get(object.index())
            .copied()
            .unwrap_or(Reachability::Reachable)
    }

    /// Whether semi-NCA ran out of its step budget and Lengauer–Tarjan
    /// computed the tree.
    pub fn fell_back(&self) -> bool {
        self.fell_back
    }

    /// Node → immediate dominator (entry 0, the virtual root, is itself).
    pub fn idoms(&self) -> &[DomNode] {
        &self.idom
    }

    /// Node → retained size in bytes.
    pub fn retained_sizes(&self) -> &[u64] {
        &self.retained
    }

    /// Node → `ObjectId` number (entry 0, the virtual root, is
    /// [`UNREACHED`]).
    pub fn object_of_node(&self) -> &[u32] {
        &self.object_of_node
    }

    /// `ObjectId` number → node number, [`UNREACHED`] for unreachable
    /// objects.
    pub fn node_of_object(&self) -> &[u32] {
        &self.node_of_object
    }

    /// The children CSR: the children of node `n` are
    /// `children_array()[offsets[n]..offsets[n + 1]]`.
    pub fn child_offsets(&self) -> &[u32] {
        &self.child_offsets
    }

    /// All children lists, concatenated in node order (see
    /// [`Analysis::child_offsets`]).
    pub fn children_array(&self) -> &[DomNode] {
        &self.children
    }

    /// `ObjectId` number → reachability.
    pub fn reachabilities(&self) -> &[Reachability] {
        &self.reachability
    }
}

/// Iterator over a dominator subtree: see [`Analysis::subtree`].
#[derive(Clone, Debug)]
pub struct Subtree<'a> {
    analysis: &'a Analysis,
    stack: Vec<DomNode>,
}

impl Iterator for Subtree<'_> {
    type Item = DomNode;

    fn next(&mut self) -> Option<DomNode> {
        let node = self.stack.pop()?;
        self.stack
            .extend(self.analysis.children(node).iter().rev().copied());
        Some(node)
    }
}
