//! Dominators of a flow graph with a virtual root, over compact `u32`
//! arrays.
//!
//! The graph is any [`FlowGraph`]: nodes `0..n`, each with a slice of
//! successors. A *virtual root* sits above everything and has an edge to
//! each node of a given root list; a node `d` *dominates* `w` when every path
//! from the virtual root to `w` passes through `d`.
//!
//! The computation, after Georgiadis, Tarjan and Werneck ("Finding
//! dominators in practice", 2006) and the measurements in the project's
//! research notes:
//!
//! 1. An iterative depth-first search from the virtual root numbers the
//!    reachable nodes in preorder ([`DomNode`]); the virtual root is 0.
//!    Chains of millions of nodes are normal in heaps, so nothing recurses.
//! 2. The predecessors of every reached node are gathered into a CSR in
//!    preorder numbers, in parallel: the search counts in-degrees by
//!    preorder number, which become the offsets in place, then a counting
//!    sort places every edge with atomic cursors. DFS-tree edges are left
//!    out: a node's parent is where its semidominator search starts anyway.
//! 3. Semi-NCA: semidominators in reverse preorder with a path-compressed
//!    link/eval forest, then each immediate dominator as the nearest common
//!    ancestor of the node's DFS parent and its semidominator.
//! 4. The nearest-common-ancestor walks are quadratic in the worst case (a
//!    long dominator chain whose tail fans out to nodes the root also points
//!    at). They are counted; past [`NCA_STEP_BUDGET_PER_NODE`] steps per node
//!    the computation starts again with simple Lengauer–Tarjan,
//!    `O(E log V)`, whose second phase uses buckets instead of walks.
//!
//! The result is a [`Dominators`]: the preorder numbering and the immediate
//! dominator of every reached node, in preorder numbers, so that
//! `idom(w) < w` for every node but the virtual root. Fresh memory is slow
//! to touch (page faults, zeroing), so buffers are reused: the
//! semidominators become the immediate dominators in place, and the
//! forest, the offsets and the DFS parents are handed back to the caller
//! (the analysis puts the retained sizes and the children CSR in them).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use rayon::prelude::*;

/// A directed graph over nodes `0..node_count()`, as the dominator
/// computation reads it.
pub trait FlowGraph: Sync {
    /// Number of nodes.
    fn node_count(&self) -> usize;
    /// The successors of `node` (may repeat or include `node` itself). Empty
    /// for a node out of range.
    fn successors(&self, node: u32) -> &[u32];
    /// Whether no successor list repeats a node. The depth-first search
    /// then skips a lookup per edge (telling copies of a tree edge apart).
    /// `false` unless the graph knows.
    fn distinct_successors(&self) -> bool {
        false
    }
}

/// A flow graph given as one successor list per node, for tests and small
/// graphs.
impl FlowGraph for [Vec<u32>] {
    fn node_count(&self) -> usize {
        self.len()
    }

    fn successors(&self, node: u32) -> &[u32] {
        self.get(node as usize).map_or(&[], Vec::as_slice)
    }
}

impl FlowGraph for Vec<Vec<u32>> {
    fn node_count(&self) -> usize {
        self.len()
    }

    fn successors(&self, node: u32) -> &[u32] {
        self.get(node as usize).map_or(&[], Vec::as_slice)
    }
}

/// A node of the dominator tree: its number in depth-first preorder from the
/// virtual root. 0 is the virtual root; reached nodes count from 1, and a
/// node's immediate dominator always has a smaller number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct DomNode(pub u32);

impl DomNode {
    /// The virtual root.
    pub const ROOT: DomNode = DomNode(0);

    /// The number as an index into arrays kept in preorder.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Marks a node the search did not reach, in [`Dominators::preorder_of`].
pub const UNREACHED: u32 = u32::MAX;

/// Steps of nearest-common-ancestor walks allowed per reached node before
/// semi-NCA gives up and simple Lengauer–Tarjan takes over. Heap graphs need
/// about one or two; the quadratic worst case needs the chain length.
pub const NCA_STEP_BUDGET_PER_NODE: u64 = 64;

/// Which algorithm computes the immediate dominators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Semi-NCA, falling back to simple Lengauer–Tarjan past the step budget
    /// (the default).
    SemiNca,
    /// Semi-NCA with no step budget (quadratic in the worst case; for tests).
    SemiNcaUnguarded,
    /// Simple Lengauer–Tarjan (path compression, no balancing).
    SimpleLengauerTarjan,
}

/// Immediate dominators of the nodes reachable from a virtual root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dominators {
    /// Node → its preorder number, or [`UNREACHED`].
    preorder_of: Vec<u32>,
    /// Preorder number → node; entry 0 (the virtual root) is [`UNREACHED`].
    node_of: Vec<u32>,
    /// Preorder number → preorder number of its immediate dominator; entry 0
    /// is 0.
    idom: Vec<DomNode>,
    /// Whether the semi-NCA step budget ran out and Lengauer–Tarjan finished
    /// the job.
    fell_back: bool,
}

impl Dominators {
    /// Computes the dominators of `graph` below a virtual root with an edge to
    /// each of `roots` (out-of-range roots are ignored), with [`Algorithm::SemiNca`].
    pub fn compute<G: FlowGraph + ?Sized>(graph: &G, roots: &[u32]) -> Dominators {
        Dominators::compute_with(graph, roots, Algorithm::SemiNca)
    }

    /// Computes the dominators with a chosen algorithm.
    pub fn compute_with<G: FlowGraph + ?Sized>(
        graph: &G,
        roots: &[u32],
        algorithm: Algorithm,
    ) -> Dominators {
        let buffers = SearchBuffers::new(graph.node_count());
        Dominators::compute_keeping_buffers(graph, roots, algorithm, buffers).0
    }

    /// [`Dominators::compute_with`] with the depth-first search's
    /// `buffers`, also handing back the large buffers the computation used
    /// ([`Spare`]), so that the retained sizes and the dominator tree's
    /// children fill memory already paged in instead of fresh memory.
    pub(crate) fn compute_keeping_buffers<G: FlowGraph + ?Sized>(
        graph: &G,
        roots: &[u32],
        algorithm: Algorithm,
        buffers: SearchBuffers,
    ) -> (Dominators, Spare) {
        // With paged-in buffers, the other core pages in semi-NCA's too
        // while the search (serial) runs.
        let (mut search, semi_buffers) = if buffers.paged_in {
            rayon::join(
                || depth_first_search(graph, roots, buffers),
                || SemiBuffers::paged_in(graph.node_count()),
            )
        } else {
            (
                depth_first_search(graph, roots, buffers),
                SemiBuffers::default(),
            )
        };
        let predecessors = Predecessors::build(graph, roots, &mut search);
        let DepthFirst {
            preorder_of,
            node_of,
            parent,
            ..
        } = search;
        let (idom, fell_back, mut spare) = match algorithm {
            Algorithm::SemiNca => match semi_nca(&parent, predecessors, true, semi_buffers) {
                Some((idom, spare)) => (idom, false, spare),
                None => {
                    // Rare: start again (the predecessors are gone).
                    let (mut again, spare) = Dominators::compute_keeping_buffers(
                        graph,
                        roots,
                        Algorithm::SimpleLengauerTarjan,
                        SearchBuffers::new(graph.node_count()),
                    );
                    again.fell_back = true;
                    return (again, spare);
                }
            },
            Algorithm::SemiNcaUnguarded => {
                match semi_nca(&parent, predecessors, false, semi_buffers) {
                    Some((idom, spare)) => (idom, false, spare),
                    None => (Vec::new(), false, Spare::default()),
                }
            }
            Algorithm::SimpleLengauerTarjan => (
                lengauer_tarjan(&parent, &predecessors),
                false,
                Spare::default(),
            ),
        };
        spare.parent = parent;
        (
            Dominators {
                preorder_of,
                node_of,
                idom,
                fell_back,
            },
            spare,
        )
    }

    /// Number of reached nodes plus one for the virtual root.
    pub fn len(&self) -> usize {
        self.node_of.len()
    }

    /// Whether nothing was reached (only the virtual root).
    pub fn is_empty(&self) -> bool {
        self.node_of.len() <= 1
    }

    /// Node → preorder number ([`UNREACHED`] for nodes not reached).
    pub fn preorder_of(&self) -> &[u32] {
        &self.preorder_of
    }

    /// Preorder number → node (entry 0, the virtual root, is [`UNREACHED`]).
    pub fn node_of(&self) -> &[u32] {
        &self.node_of
    }

    /// Preorder number → preorder number of the immediate dominator.
    pub fn idoms(&self) -> &[DomNode] {
        &self.idom
    }

    /// The preorder number of `node`, if the search reached it.
    pub fn preorder(&self, node: u32) -> Option<DomNode> {
        match self.preorder_of.get(node as usize) {
            Some(&number) if number != UNREACHED => Some(DomNode(number)),
            _ => None,
        }
    }

    /// The node numbered `number`; `None` for the virtual root or out of range.
    pub fn node(&self, number: DomNode) -> Option<u32> {
        match self.node_of.get(number.index()) {
            Some(&node) if node != UNREACHED => Some(node),
            _ => None,
        }
    }

    /// The immediate dominator of `node`: `Some(None)` for the virtual root,
    /// `Some(Some(d))` for node `d`, `None` if `node` was not reached.
    pub fn immediate_dominator(&self, node: u32) -> Option<Option<u32>> {
        let number = self.preorder(node)?;
        let idom = *self.idom.get(number.index())?;
        Some(self.node(idom))
    }

    /// Whether semi-NCA ran out of its step budget and Lengauer–Tarjan
    /// computed the result.
    pub fn fell_back(&self) -> bool {
        self.fell_back
    }

    /// Splits into `(preorder_of, node_of, idoms)`.
    pub fn into_parts(self) -> (Vec<u32>, Vec<u32>, Vec<DomNode>) {
        (self.preorder_of, self.node_of, self.idom)
    }
}

/// Buffers of the computation, no longer needed once the immediate
/// dominators are known, handed back for reuse: each has been written, so
/// its pages are resident. Any of them may be empty (the Lengauer–Tarjan
/// fallback, more than 2³² predecessor edges).
#[derive(Debug, Default)]
pub(crate) struct Spare {
    /// One word per preorder number (the link/eval forest).
    pub(crate) words: Vec<u64>,
    /// One entry per preorder number plus one (the predecessor offsets).
    pub(crate) offsets: Vec<u32>,
    /// One entry per preorder number (the DFS parents).
    pub(crate) parent: Vec<u32>,
}

/// The result of the depth-first search.
struct DepthFirst {
    preorder_of: Vec<u32>,
    node_of: Vec<u32>,
    /// Preorder number → preorder number of the DFS parent (0 for the
    /// root and its children).
    parent: Vec<u32>,
    /// Preorder number → number of edges into it from reached nodes (the
    /// virtual root included), DFS-tree edges left out; becomes the
    /// predecessor offsets in place.
    in_degree: Vec<AtomicU32>,
}

/// Successors of a node whose preorder slots the search loads together.
const PREFETCH: usize = 16;

/// The depth-first search's buffers, made before it starts: `preorder_of`
/// (every node unreached) and, empty, the arrays indexed by preorder
/// number, grown as nodes are numbered.
pub(crate) struct SearchBuffers {
    preorder_of: Vec<u32>,
    node_of: Vec<u32>,
    parent: Vec<u32>,
    in_degree: Vec<AtomicU32>,
    /// Made by [`SearchBuffers::paged_in`].
    paged_in: bool,
}

impl SearchBuffers {
    /// Buffers for `node_count` nodes. The arrays by preorder number are
    /// paged in as the search numbers nodes: only the reached nodes'
    /// entries are ever written.
    pub(crate) fn new(node_count: usize) -> SearchBuffers {
        SearchBuffers {
            preorder_of: vec![UNREACHED; node_count],
            node_of: Vec::with_capacity(node_count.saturating_add(1)),
            parent: Vec::with_capacity(node_count.saturating_add(1)),
            in_degree: Vec::with_capacity(node_count.saturating_add(2)),
            paged_in: false,
        }
    }

    /// [`SearchBuffers::new`] with every page of the arrays by preorder
    /// number written now: for a caller with a core to spare while
    /// something else runs, when nearly every node will be reached. The
    /// search is serial, and its page faults (one per 1,024 nodes numbered,
    /// in three arrays) took 0.1 s of it on a 19M-node heap. Semi-NCA's
    /// buffers are then paged in while the search runs.
    pub(crate) fn paged_in(node_count: usize) -> SearchBuffers {
        let mut buffers = SearchBuffers::new(node_count);
        page_in(&mut buffers.node_of);
        page_in(&mut buffers.parent);
        page_in(&mut buffers.in_degree);
        buffers.paged_in = true;
        buffers
    }
}

/// Semi-NCA's buffers, empty: the forest's words and the dominators, one
/// per reached node.
#[derive(Default)]
struct SemiBuffers {
    links: Vec<u64>,
    dominators: Vec<u32>,
}

impl SemiBuffers {
    /// Buffers for up to `node_count` reached nodes (and the virtual
    /// root), every page written.
    fn paged_in(node_count: usize) -> SemiBuffers {
        let mut buffers = SemiBuffers {
            links: Vec::with_capacity(node_count.saturating_add(1)),
            dominators: Vec::with_capacity(node_count.saturating_add(1)),
        };
        page_in(&mut buffers.links);
        page_in(&mut buffers.dominators);
        buffers
    }
}

/// Writes one entry per page of `buffer`'s spare capacity, so that its
/// pages are in memory before pushes fill them. Its contents stay as they
/// are (the entries written are past its length).
fn page_in<T: Default>(buffer: &mut Vec<T>) {
    let per_page = (4096 / std::mem::size_of::<T>().max(1)).max(1);
    for slot in buffer.spare_capacity_mut().iter_mut().step_by(per_page) {
        slot.write(T::default());
    }
}

/// Iterative depth-first search from the virtual root.
fn depth_first_search<G: FlowGraph + ?Sized>(
    graph: &G,
    roots: &[u32],
    buffers: SearchBuffers,
) -> DepthFirst {
    let node_count = graph.node_count();
    let distinct = graph.distinct_successors();
    let SearchBuffers {
        mut preorder_of,
        mut node_of,
        mut parent,
        mut in_degree,
        ..
    } = buffers;
    if preorder_of.len() != node_count {
        preorder_of = vec![UNREACHED; node_count];
    }
    node_of.push(UNREACHED);
    parent.push(0u32);
    in_degree.push(AtomicU32::new(0));
    // (the node's successors, the next one to look at, its preorder
    // number): each node's list is looked up once, not again each time the
    // search comes back to it. The virtual root's successors are `roots`.
    let mut stack: Vec<(&[u32], u32, u32)> = vec![(roots, 0, 0)];
    while let Some(top) = stack.last_mut() {
        let (successors, position, number) = *top;
        // The virtual root's successors are roots, which may repeat.
        let from_root = number == 0;
        let mut next = position as usize;
        if next == 0 && successors.len() > 1 {
            // Load the first successors' slots now, so that their cache
            // misses overlap instead of coming one by one as the search
            // returns to the node. The value is unused.
            let mut any = 0u32;
            for &successor in successors.iter().take(PREFETCH) {
                any |= preorder_of.get(successor as usize).copied().unwrap_or(0);
            }
            std::hint::black_box(any);
        }
        let mut found = None;
        while let Some(&successor) = successors.get(next) {
            next += 1;
            let Some(slot) = preorder_of.get_mut(successor as usize) else {
                continue;
            };
            if *slot == UNREACHED {
                // A tree edge: not a predecessor (the parent is where each
                // semidominator search starts anyway).
                let successor_number = node_of.len() as u32;
                *slot = successor_number;
                node_of.push(successor);
                parent.push(number);
                in_degree.push(AtomicU32::new(0));
                found = Some((successor, successor_number));
                break;
            }
            // Another copy of a tree edge is left out too. (The tree edge
            // itself is behind `position`; without repeats there are no
            // copies, except perhaps among the roots.)
            if (distinct && !from_root) || parent.get(*slot as usize) != Some(&number) {
                if let Some(count) = in_degree.get_mut(*slot as usize) {
                    let count = count.get_mut();
                    *count = count.saturating_add(1);
                }
            }
        }
        top.1 = next as u32;
        match found {
            Some((successor, successor_number)) => {
                stack.push((graph.successors(successor), 0, successor_number))
            }
            None => {
                stack.pop();
            }
        }
    }
    DepthFirst {
        preorder_of,
        node_of,
        parent,
        in_degree,
    }
}

/// Predecessor lists in preorder numbers, without DFS-tree edges: a CSR
/// whose offsets are `u32` when there are fewer than 2³² edges (half the
/// memory and cache footprint of `usize` offsets), `usize` otherwise.
enum Predecessors {
    /// Offsets fit in `u32`.
    Narrow(Lists<AtomicU32>),
    /// More edges than `u32` counts.
    Wide(Lists<AtomicUsize>),
}

/// A predecessor CSR with offsets of type `C`.
struct Lists<C> {
    /// `offsets[w]..offsets[w + 1]` indexes `sources`.
    offsets: Vec<C>,
    sources: Vec<AtomicU32>,
}

/// An atomic CSR offset: the counting sort's cursor while building, the
/// list start after.
trait Offset: Sync + Send {
    /// Moves the cursor one back and returns where it now points.
    fn take_slot(&self) -> usize;
    /// The offset.
    fn get(&self) -> usize;
}

impl Offset for AtomicU32 {
    #[inline]
    fn take_slot(&self) -> usize {
        self.fetch_sub(1, Ordering::Relaxed).wrapping_sub(1) as usize
    }
    #[inline]
    fn get(&self) -> usize {
        self.load(Ordering::Relaxed) as usize
    }
}

impl Offset for AtomicUsize {
    #[inline]
    fn take_slot(&self) -> usize {
        self.fetch_sub(1, Ordering::Relaxed).wrapping_sub(1)
    }
    #[inline]
    fn get(&self) -> usize {
        self.load(Ordering::Relaxed)
    }
}

/// Preorder numbers per parallel task when building predecessors.
const PREDECESSOR_CHUNK: usize = 16 * 1024;

impl Predecessors {
    /// A counting sort of the edges by target, in preorder numbers: the
    /// search counted the in-degrees; every edge is then placed in parallel,
    /// each target's list filled from its end with an atomic cursor, so
    /// that the cursors end up as the lists' starts.
    fn build<G: FlowGraph + ?Sized>(
        graph: &G,
        roots: &[u32],
        search: &mut DepthFirst,
    ) -> Predecessors {
        let mut in_degree = std::mem::take(&mut search.in_degree);
        // The virtual root has no predecessors (its entry stays 0).
        let total: u64 = in_degree
            .iter_mut()
            .map(|count| u64::from(*count.get_mut()))
            .sum();
        if total <= u64::from(u32::MAX) {
            // In place: each entry becomes the end of its node's list, the
            // cursor the counting sort moves back to the list's start.
            let mut end = 0u32;
            for count in in_degree.iter_mut() {
                let count = count.get_mut();
                end = end.wrapping_add(*count);
                *count = end;
            }
            in_degree.push(AtomicU32::new(end));
            return Predecessors::Narrow(Lists::build(graph, roots, search, in_degree));
        }
        let mut end = 0usize;
        let mut offsets: Vec<AtomicUsize> = Vec::with_capacity(in_degree.len() + 1);
        for count in in_degree.iter_mut() {
            end += *count.get_mut() as usize;
            offsets.push(AtomicUsize::new(end));
        }
        offsets.push(AtomicUsize::new(end));
        drop(in_degree);
        Predecessors::Wide(Lists::build(graph, roots, search, offsets))
    }

    /// Drops the lists and keeps the offsets as plain `u32`s (in place), for
    /// reuse; empty for wide offsets.
    fn into_narrow_offsets(self) -> Vec<u32> {
        match self {
            Predecessors::Narrow(lists) => {
                drop(lists.sources);
                lists
                    .offsets
                    .into_iter()
                    .map(AtomicU32::into_inner)
                    .collect()
            }
            Predecessors::Wide(_) => Vec::new(),
        }
    }

    /// The predecessors of `node` (preorder numbers) other than its DFS
    /// parent.
    #[inline]
    fn of(&self, node: usize) -> &[AtomicU32] {
        match self {
            Predecessors::Narrow(lists) => lists.of(node),
            Predecessors::Wide(lists) => lists.of(node),
        }
    }
}

impl<C: Offset> Lists<C> {
    /// See [`Predecessors::build`]: `offsets` holds, for each preorder
    /// number, the end of its list, and one more entry, the total.
    fn build<G: FlowGraph + ?Sized>(
        graph: &G,
        roots: &[u32],
        search: &DepthFirst,
        offsets: Vec<C>,
    ) -> Lists<C> {
        let count = search.node_of.len();
        let total = offsets.last().map_or(0, Offset::get);
        let sources: Vec<AtomicU32> = (0..total).map(|_| AtomicU32::new(0)).collect();
        let preorder_of = &search.preorder_of;
        let node_of = &search.node_of;
        let parent = &search.parent;
        (0..count)
            .into_par_iter()
            .with_min_len(PREDECESSOR_CHUNK)
            .for_each(|source| {
                let successors = match node_of.get(source) {
                    Some(&UNREACHED) | None => roots,
                    Some(&node) => graph.successors(node),
                };
                for &successor in successors {
                    let Some(&target) = preorder_of.get(successor as usize) else {
                        continue;
                    };
                    // Tree edges (every copy) were not counted.
                    if parent.get(target as usize) == Some(&(source as u32)) {
                        continue;
                    }
                    if let Some(cursor) = offsets.get(target as usize) {
                        if let Some(slot) = sources.get(cursor.take_slot()) {
                            slot.store(source as u32, Ordering::Relaxed);
                        }
                    }
                }
            });
        Lists { offsets, sources }
    }

    /// See [`Predecessors::of`].
    #[inline]
    fn of(&self, node: usize) -> &[AtomicU32] {
        match (self.offsets.get(node), self.offsets.get(node + 1)) {
            (Some(start), Some(end)) => self.sources.get(start.get()..end.get()).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// The path-compressed link/eval forest of both algorithms. Nodes are
/// linked to their DFS parent as they are processed, in reverse preorder, so
/// "linked" is simply "numbered at least `first_linked`".
///
/// Each node's ancestor and label sit in one word (ancestor in the low
/// half), so that a step of a path compression touches one cache line, and
/// the buffer can hold the retained sizes afterwards ([`Spare::words`]).
struct Forest {
    /// Per node, ancestor | label << 32. Label: for semi-NCA, the smallest
    /// semidominator number on the compressed path; for Lengauer–Tarjan, the
    /// node with that semidominator.
    links: Vec<u64>,
    stack: Vec<u32>,
}

/// A forest word.
#[inline]
fn link(ancestor: u32, label: u32) -> u64 {
    u64::from(ancestor) | (u64::from(label) << 32)
}

/// A forest word's ancestor.
#[inline]
fn ancestor(link: u64) -> u32 {
    link as u32
}

/// A forest word's label.
#[inline]
fn label(link: u64) -> u32 {
    (link >> 32) as u32
}

impl Forest {
    /// Every node's ancestor is its parent; labels are `label(node)`.
    fn new(parent: &[u32], label: impl Fn(u32) -> u32 + Sync) -> Forest {
        Forest::new_in(Vec::new(), parent, label)
    }

    /// [`Forest::new`] in `links`' memory (its contents are dropped).
    fn new_in(mut links: Vec<u64>, parent: &[u32], label: impl Fn(u32) -> u32 + Sync) -> Forest {
        links.clear();
        links.par_extend(
            parent
                .par_iter()
                .enumerate()
                .map(|(node, &up)| link(up, label(node as u32))),
        );
        Forest {
            links,
            stack: Vec::new(),
        }
    }

    /// Sets `node`'s label.
    fn set_label(&mut self, node: usize, label: u32) {
        if let Some(word) = self.links.get_mut(node) {
            *word = link(ancestor(*word), label);
        }
    }

    /// Compresses the path from `node` to the root of its virtual tree and
    /// returns `node`'s label. `node` must be linked (`>= first_linked`).
    /// `better(a, b)` says whether label `a` beats label `b`.
    fn eval(&mut self, node: u32, first_linked: u32, better: impl Fn(u32, u32) -> bool) -> u32 {
        let links = &mut self.links;
        let mut top = node;
        loop {
            let up = links.get(top as usize).map_or(0, |&word| ancestor(word));
            if up < first_linked {
                break;
            }
            self.stack.push(top);
            top = up;
        }
        // `top` is linked; its ancestor is the root of the virtual tree.
        let word = links.get(top as usize).copied().unwrap_or(0);
        let (root, mut best) = (ancestor(word), label(word));
        while let Some(below) = self.stack.pop() {
            if let Some(word) = links.get_mut(below as usize) {
                let own = label(*word);
                if better(best, own) {
                    *word = link(root, best);
                } else {
                    *word = link(root, own);
                    best = own;
                }
            }
        }
        links.get(node as usize).map_or(0, |&word| label(word))
    }
}

/// Semi-NCA. `None` if `guarded` and the step budget ran out. The
/// predecessor lists are dropped as soon as the semidominators are known, to
/// keep the peak memory down; the forest and the predecessor offsets are
/// handed back ([`Spare`]). The semidominators are overwritten in place by
/// the immediate dominators: each node's own is read before its dominator
/// is written, and the walks only read smaller numbers, already final.
fn semi_nca(
    parent: &[u32],
    predecessors: Predecessors,
    guarded: bool,
    buffers: SemiBuffers,
) -> Option<(Vec<DomNode>, Spare)> {
    let count = parent.len();
    // Semidominators, then immediate dominators; entry 0 stays 0.
    let mut dominators = buffers.dominators;
    if dominators.capacity() >= count {
        dominators.clear();
        dominators.resize(count, 0);
    } else {
        dominators = vec![0; count];
    }
    let mut forest = Forest::new_in(buffers.links, parent, |_| 0);
    for node in (1..count).rev() {
        let w = node as u32;
        let mut best = parent.get(node).copied().unwrap_or(0);
        for source in predecessors.of(node) {
            let source = source.load(Ordering::Relaxed);
            let candidate = if source <= w {
                source
            } else {
                forest.eval(source, w + 1, |a, b| a < b)
            };
            best = best.min(candidate);
        }
        if let Some(slot) = dominators.get_mut(node) {
            *slot = best;
        }
        forest.set_label(node, best);
    }
    let offsets = predecessors.into_narrow_offsets();
    let words = forest.links;

    let budget = (count as u64)
        .saturating_mul(NCA_STEP_BUDGET_PER_NODE)
        .saturating_add(1 << 20);
    let mut steps = 0u64;
    for node in 1..count {
        let target = dominators.get(node).copied().unwrap_or(0);
        let mut dominator = parent.get(node).copied().unwrap_or(0);
        while dominator > target {
            dominator = dominators.get(dominator as usize).copied().unwrap_or(0);
            steps += 1;
        }
        if guarded && steps > budget {
            return None;
        }
        if let Some(slot) = dominators.get_mut(node) {
            *slot = dominator;
        }
    }
    // In place: `DomNode` is a transparent `u32`.
    let idom = dominators.into_iter().map(DomNode).collect();
    Some((
        idom,
        Spare {
            words,
            offsets,
            parent: Vec::new(),
        },
    ))
}

/// Simple Lengauer–Tarjan with buckets kept as linked lists in two arrays.
fn lengauer_tarjan(parent: &[u32], predecessors: &Predecessors) -> Vec<DomNode> {
    const NONE: u32 = u32::MAX;
    let count = parent.len();
    let mut semi: Vec<u32> = (0..count as u32).collect();
    let mut forest = Forest::new(parent, |node| node);
    let mut idom: Vec<u32> = vec![0; count];
    let mut bucket_head: Vec<u32> = vec![NONE; count];
    let mut bucket_next: Vec<u32> = vec![NONE; count];
    for node in (1..count).rev() {
        let w = node as u32;
        let mut best = parent.get(node).copied().unwrap_or(0);
        for source in predecessors.of(node) {
            let source = source.load(Ordering::Relaxed);
            let candidate = if source <= w {
                source
            } else {
                let semi = &semi;
                let label = forest.eval(source, w + 1, |a, b| {
                    semi.get(a as usize) < semi.get(b as usize)
                });
                semi.get(label as usize).copied().unwrap_or(0)
            };
            best = best.min(candidate);
        }
        if let Some(slot) = semi.get_mut(node) {
            *slot = best;
        }
        // Into the bucket of its semidominator.
        if let (Some(head), Some(next)) = (
            bucket_head.get_mut(best as usize),
            bucket_next.get_mut(node),
        ) {
            *next = *head;
            *head = w;
        }
        // `w` is now linked; empty the bucket of its parent.
        let up = parent.get(node).copied().unwrap_or(0);
        let mut member = bucket_head.get(up as usize).copied().unwrap_or(NONE);
        if let Some(head) = bucket_head.get_mut(up as usize) {
            *head = NONE;
        }
        while member != NONE {
            let semi_ref = &semi;
            let lowest = forest.eval(member, w, |a, b| {
                semi_ref.get(a as usize) < semi_ref.get(b as usize)
            });
            let dominator = if semi.get(lowest as usize) < semi.get(member as usize) {
                lowest
            } else {
                up
            };
            if let Some(slot) = idom.get_mut(member as usize) {
                *slot = dominator;
            }
            member = bucket_next.get(member as usize).copied().unwrap_or(NONE);
        }
    }
    for node in 1..count {
        let current = idom.get(node).copied().unwrap_or(0);
        if Some(&current) != semi.get(node) {
            let up = idom.get(current as usize).copied().unwrap_or(0);
            if let Some(slot) = idom.get_mut(node) {
                *slot = up;
            }
        }
    }
    idom.into_iter().map(DomNode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamond() {
        // 0 -> 1, 2; 1 -> 3; 2 -> 3; 3 -> 4
        let graph: Vec<Vec<u32>> = vec![vec![1, 2], vec![3], vec![3], vec![4], vec![]];
        for algorithm in [
            Algorithm::SemiNca,
            Algorithm::SemiNcaUnguarded,
            Algorithm::SimpleLengauerTarjan,
        ] {
            let dominators = Dominators::compute_with(&graph, &[0], algorithm);
            assert_eq!(dominators.immediate_dominator(0), Some(None));
            assert_eq!(dominators.immediate_dominator(1), Some(Some(0)));
            assert_eq!(dominators.immediate_dominator(2), Some(Some(0)));
            assert_eq!(dominators.immediate_dominator(3), Some(Some(0)));
            assert_eq!(dominators.immediate_dominator(4), Some(Some(3)));
        }
    }

    #[test]
    fn broom_exhausts_the_budget_and_falls_back() {
        // A chain 0 -> 1 -> ... -> k-1 whose tail points at k leaves, each
        // of which the virtual root also points at: every NCA walk climbs
        // the whole chain.
        let k = 3_000u32;
        let mut graph: Vec<Vec<u32>> = (0..k).map(|node| vec![node + 1]).collect();
        if let Some(tail) = graph.last_mut() {
            *tail = (k..2 * k).collect();
        }
        graph.extend((k..2 * k).map(|_| Vec::new()));
        let mut roots = vec![0];
        roots.extend(k..2 * k);
        let guarded = Dominators::compute(&graph, &roots);
        assert!(guarded.fell_back());
        let reference = Dominators::compute_with(&graph, &roots, Algorithm::SemiNcaUnguarded);
        assert_eq!(guarded.idoms(), reference.idoms());
        for leaf in k..2 * k {
            assert_eq!(guarded.immediate_dominator(leaf), Some(None));
        }
        assert_eq!(guarded.immediate_dominator(k - 1), Some(Some(k - 2)));
        // Paged-in buffers, the broom falling back to Lengauer-Tarjan too.
        let (paged, _) = Dominators::compute_keeping_buffers(
            &graph,
            &roots,
            Algorithm::SemiNca,
            SearchBuffers::paged_in(graph.len()),
        );
        assert!(paged.fell_back());
        assert_eq!(paged.idoms(), reference.idoms());
    }

    /// Buffers paged in ahead (sized for every node) give the same tree as
    /// fresh ones, with nodes left unreached.
    #[test]
    fn paged_in_buffers_give_the_same_dominators() {
        let mut state = 12345u64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below) as u32
        };
        // 3,000 nodes, each pointing at up to 3 random ones; a tenth of
        // them point nowhere and nothing points at the last 500.
        let graph: Vec<Vec<u32>> = (0..3_000)
            .map(|node| match node {
                _ if node % 10 == 0 => Vec::new(),
                _ => (0..1 + next(3)).map(|_| next(2_500)).collect(),
            })
            .collect();
        let roots = [1, 7, 2_900];
        let fresh = Dominators::compute(&graph, &roots);
        assert!(fresh.len() < graph.len());
        for algorithm in [Algorithm::SemiNca, Algorithm::SemiNcaUnguarded] {
            let (paged, _) = Dominators::compute_keeping_buffers(
                &graph,
                &roots,
                algorithm,
                SearchBuffers::paged_in(graph.len()),
            );
            assert_eq!(paged.idoms(), fresh.idoms());
            assert_eq!(paged.preorder_of(), fresh.preorder_of());
        }
    }
}
