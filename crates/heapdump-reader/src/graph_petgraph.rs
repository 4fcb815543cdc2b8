//! petgraph's visit traits for [`HeapGraph`], so that petgraph's algorithms
//! (`Dfs`, `Bfs`, `DfsPostOrder`, `dominators::simple_fast`, `tarjan_scc`,
//! `has_path_connecting`, ...) run on a heap graph as it is, without a copy
//! into a petgraph graph: neighbors are read straight from the CSR
//! ([`HeapGraph::csr`]) and from [`HeapGraph::root_references`].
//!
//! A node is a [`HeapNode`]: an object, or the virtual root
//! ([`HeapNode::Root`]), whose edges go to every object a root word points
//! at. It is the node [`heapdump-analysis`]' dominator tree starts from, so
//! `simple_fast(&graph, HeapNode::Root)` computes the same immediate
//! dominators as its `analyze` (for dumps without weak references or
//! [`Capabilities::unreached_objects_hold`](crate::Capabilities::unreached_objects_hold),
//! whose extra referrers `analyze` also counts: HPROF), and a search from
//! `HeapNode::Root` visits exactly the reachable objects (and the root).
//!
//! Implemented: `GraphBase`, `GraphProp` (directed), `NodeCount`,
//! `NodeIndexable` and `NodeCompactIndexable` (object `n` is index `n`, the
//! virtual root is index [`HeapGraph::object_count`]), `Visitable` (a bit
//! set, [`NodeSet`]), `IntoNeighbors` and `IntoNodeIdentifiers`. Not
//! implemented: `IntoNeighborsDirected` (the graph keeps no reverse edges)
//! and the edge-reference traits (edges have no ids or weights of their own).
//!
//! ```no_run
//! use heapdump_reader::{parse, DumpFile, HeapGraph, HeapNode};
//! use petgraph::visit::Dfs;
//!
//! let file = DumpFile::open("service.hdump")?;
//! let graph = HeapGraph::build(parse(file.bytes(), &mut |_, _| {})?, &mut |_, _| {});
//! let mut dfs = Dfs::new(&graph, HeapNode::Root);
//! let mut reachable = 0;
//! while let Some(node) = dfs.next(&graph) {
//!     reachable += usize::from(node.object().is_some());
//! }
//! println!("{reachable} reachable objects");
//! # Ok::<(), heapdump_reader::Error>(())
//! ```
//!
//! [`heapdump-analysis`]: https://docs.rs/heapdump-analysis

use std::fmt;
use std::iter::FusedIterator;

use petgraph::visit::{
    GraphBase, GraphProp, IntoNeighbors, IntoNodeIdentifiers, NodeCompactIndexable, NodeCount,
    NodeIndexable, VisitMap, Visitable,
};
use petgraph::Directed;

use crate::graph::{HeapGraph, ObjectId, RootReference};

/// A node of a [`HeapGraph`] as petgraph sees it: an object, or the virtual
/// root that holds every root reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeapNode {
    /// The virtual root: one edge per root word that points into an object
    /// ([`HeapGraph::root_references`]), so an object several root words
    /// point at has as many parallel edges from it.
    Root,
    /// An object; its edges are its [references](HeapGraph::references).
    Object(ObjectId),
}

impl HeapNode {
    /// The object, or `None` for the virtual root.
    #[inline]
    pub fn object(self) -> Option<ObjectId> {
        match self {
            HeapNode::Root => None,
            HeapNode::Object(id) => Some(id),
        }
    }
}

impl From<ObjectId> for HeapNode {
    #[inline]
    fn from(id: ObjectId) -> HeapNode {
        HeapNode::Object(id)
    }
}

impl fmt::Display for HeapNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeapNode::Root => f.write_str("virtual root"),
            HeapNode::Object(id) => id.fmt(f),
        }
    }
}

impl GraphBase for HeapGraph<'_> {
    type NodeId = HeapNode;
    /// `(source, target)`: a reference is one per pair of objects (the
    /// virtual root's edges may repeat a pair).
    type EdgeId = (HeapNode, HeapNode);
}

impl GraphProp for HeapGraph<'_> {
    type EdgeType = Directed;
}

/// Objects plus the virtual root.
impl NodeCount for HeapGraph<'_> {
    #[inline]
    fn node_count(&self) -> usize {
        self.object_count() + 1
    }
}

/// Object `n` is index `n`; the virtual root is index
/// [`object_count`](HeapGraph::object_count), the last.
impl NodeIndexable for HeapGraph<'_> {
    #[inline]
    fn node_bound(&self) -> usize {
        self.object_count() + 1
    }

    #[inline]
    fn to_index(&self, node: HeapNode) -> usize {
        match node {
            HeapNode::Root => self.object_count(),
            HeapNode::Object(id) => id.index(),
        }
    }

    /// Indices past the objects (the bound is one more) read as the virtual
    /// root.
    #[inline]
    fn from_index(&self, index: usize) -> HeapNode {
        match u32::try_from(index) {
            Ok(number) if index < self.object_count() => HeapNode::Object(ObjectId(number)),
            _ => HeapNode::Root,
        }
    }
}

impl NodeCompactIndexable for HeapGraph<'_> {}

impl Visitable for HeapGraph<'_> {
    type Map = NodeSet;

    fn visit_map(&self) -> NodeSet {
        NodeSet::with_bound(NodeIndexable::node_bound(self))
    }

    fn reset_map(&self, map: &mut NodeSet) {
        map.clear(NodeIndexable::node_bound(self));
    }
}

impl<'a> IntoNeighbors for &'a HeapGraph<'_> {
    type Neighbors = Neighbors<'a>;

    /// An object's references in target order (none for an id out of
    /// range); the virtual root's root references, by root, then offset.
    #[inline]
    fn neighbors(self, node: HeapNode) -> Neighbors<'a> {
        Neighbors {
            inner: match node {
                HeapNode::Root => Inner::Roots(self.root_references().iter()),
                HeapNode::Object(id) => Inner::Objects(self.csr().neighbors_slice(id.0).iter()),
            },
        }
    }
}

impl IntoNodeIdentifiers for &HeapGraph<'_> {
    type NodeIdentifiers = NodeIdentifiers;

    /// Every object in address order, then the virtual root.
    fn node_identifiers(self) -> NodeIdentifiers {
        NodeIdentifiers {
            next: 0,
            objects: self.object_count() as u32,
        }
    }
}

/// The successors of a [`HeapNode`] ([`IntoNeighbors`]).
#[derive(Clone, Debug)]
pub struct Neighbors<'a> {
    inner: Inner<'a>,
}

#[derive(Clone, Debug)]
enum Inner<'a> {
    Objects(std::slice::Iter<'a, u32>),
    Roots(std::slice::Iter<'a, RootReference>),
}

impl Iterator for Neighbors<'_> {
    type Item = HeapNode;

    #[inline]
    fn next(&mut self) -> Option<HeapNode> {
        match &mut self.inner {
            Inner::Objects(targets) => targets.next().map(|&n| HeapNode::Object(ObjectId(n))),
            Inner::Roots(references) => references
                .next()
                .map(|reference| HeapNode::Object(reference.target)),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            Inner::Objects(targets) => targets.size_hint(),
            Inner::Roots(references) => references.size_hint(),
        }
    }
}

impl ExactSizeIterator for Neighbors<'_> {}
impl FusedIterator for Neighbors<'_> {}

/// Every node of a [`HeapGraph`] ([`IntoNodeIdentifiers`]): the objects in
/// address order, then the virtual root.
#[derive(Clone, Debug)]
pub struct NodeIdentifiers {
    /// The next object number; `objects` for the root, past it when done.
    next: u64,
    objects: u32,
}

impl Iterator for NodeIdentifiers {
    type Item = HeapNode;

    #[inline]
    fn next(&mut self) -> Option<HeapNode> {
        let objects = u64::from(self.objects);
        let node = match self.next {
            next if next < objects => HeapNode::Object(ObjectId(next as u32)),
            next if next == objects => HeapNode::Root,
            _ => return None,
        };
        self.next += 1;
        Some(node)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (u64::from(self.objects) + 1).saturating_sub(self.next) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for NodeIdentifiers {}
impl FusedIterator for NodeIdentifiers {}

/// The visit map of a [`HeapGraph`] ([`Visitable`]): one bit per node, by
/// [`NodeIndexable`] index (the virtual root last).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSet {
    words: Vec<u64>,
    /// The virtual root's index: the object count.
    root: usize,
}

impl NodeSet {
    /// An empty set for a graph of `bound` nodes (objects plus the root).
    fn with_bound(bound: usize) -> NodeSet {
        NodeSet {
            words: vec![0; bound.div_ceil(64)],
            root: bound.saturating_sub(1),
        }
    }

    /// Empties the set and sizes it for a graph of `bound` nodes.
    fn clear(&mut self, bound: usize) {
        self.words.clear();
        self.words.resize(bound.div_ceil(64), 0);
        self.root = bound.saturating_sub(1);
    }

    /// The bit of `node`: word and mask (`None` for an object out of range).
    #[inline]
    fn bit(&self, node: HeapNode) -> Option<(usize, u64)> {
        let index = match node {
            HeapNode::Root => self.root,
            HeapNode::Object(id) if id.index() < self.root => id.index(),
            HeapNode::Object(_) => return None,
        };
        Some((index / 64, 1 << (index % 64)))
    }

    /// Number of nodes in the set.
    pub fn len(&self) -> usize {
        self.words
            .iter()
            .map(|word| word.count_ones() as usize)
            .sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&word| word == 0)
    }
}

/// Objects out of the graph's range are never visited: `visit` returns
/// `false` for them, so a search does not follow them.
impl VisitMap<HeapNode> for NodeSet {
    #[inline]
    fn visit(&mut self, node: HeapNode) -> bool {
        let Some((word, mask)) = self.bit(node) else {
            return false;
        };
        match self.words.get_mut(word) {
            Some(slot) if *slot & mask == 0 => {
                *slot |= mask;
                true
            }
            _ => false,
        }
    }

    #[inline]
    fn is_visited(&self, node: &HeapNode) -> bool {
        self.bit(*node)
            .and_then(|(word, mask)| self.words.get(word).map(|slot| slot & mask != 0))
            .unwrap_or(false)
    }

    #[inline]
    fn unvisit(&mut self, node: HeapNode) -> bool {
        let Some((word, mask)) = self.bit(node) else {
            return false;
        };
        match self.words.get_mut(word) {
            Some(slot) if *slot & mask != 0 => {
                *slot &= !mask;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use petgraph::algo::dominators::simple_fast;
    use petgraph::visit::{Bfs, Dfs, IntoNeighbors, IntoNodeIdentifiers, NodeIndexable};

    use super::HeapNode;
    use crate::dump::{Dump, DumpInfo, Object, Root, RootKind};
    use crate::graph::{HeapGraph, ObjectId};

    /// Objects of 32 bytes at 0x1000, 0x1100, ... (`links[i]`: the objects
    /// object `i` points at, at most 4) and one root pointing at `roots`.
    fn graph(links: &[&[u32]], roots: &[u32]) -> HeapGraph<'static> {
        let address = |n: u32| 0x1000 + u64::from(n) * 0x100;
        let mut data = Vec::new();
        let mut objects = Vec::new();
        for (n, targets) in links.iter().enumerate() {
            objects.push(Object::new(address(n as u32), 32, None, data.len() as u64));
            let mut words = [0u64; 4];
            for (word, &target) in words.iter_mut().zip(*targets) {
                *word = address(target);
            }
            data.extend(words.iter().flat_map(|word| word.to_le_bytes()));
        }
        let root_words: Vec<u8> = roots
            .iter()
            .flat_map(|&n| address(n).to_le_bytes())
            .collect();
        let mut dump = Dump::new(DumpInfo {
            format: "test",
            pointer_size: 8,
            sample_rate: 1,
            ..DumpInfo::default()
        });
        dump.data = Vec::leak(data);
        dump.objects = objects;
        dump.roots = vec![Root::new(
            RootKind::Segment { module_id: 0 },
            0,
            Vec::leak(root_words),
        )];
        HeapGraph::build(dump, &mut |_, _| {})
    }

    #[test]
    fn nodes_neighbors_and_indices() {
        // 0 -> 1 -> 2, 0 -> 2; 3 unreachable; the root points at 0 twice.
        let graph = graph(&[&[1, 2], &[2], &[], &[0]], &[0, 0]);
        let of = |node| (&graph).neighbors(node).collect::<Vec<_>>();
        let object = |n| HeapNode::Object(ObjectId(n));
        assert_eq!(of(HeapNode::Root), [object(0), object(0)]);
        assert_eq!(of(object(0)), [object(1), object(2)]);
        assert_eq!(of(object(2)), []);
        assert_eq!(of(object(99)), []);
        let nodes: Vec<HeapNode> = (&graph).node_identifiers().collect();
        assert_eq!(nodes.len(), 5);
        assert_eq!(nodes.last(), Some(&HeapNode::Root));
        for (index, &node) in nodes.iter().enumerate() {
            assert_eq!(graph.to_index(node), index);
            assert_eq!(graph.from_index(index), node);
        }

        let mut reached = Vec::new();
        let mut dfs = Dfs::new(&graph, HeapNode::Root);
        while let Some(node) = dfs.next(&graph) {
            reached.push(node);
        }
        reached.sort();
        assert_eq!(reached, [HeapNode::Root, object(0), object(1), object(2)]);
        let mut bfs = Bfs::new(&graph, HeapNode::Root);
        let mut count = 0;
        while bfs.next(&graph).is_some() {
            count += 1;
        }
        assert_eq!(count, 4);

        let dominators = simple_fast(&graph, HeapNode::Root);
        assert_eq!(
            dominators.immediate_dominator(object(0)),
            Some(HeapNode::Root)
        );
        assert_eq!(dominators.immediate_dominator(object(1)), Some(object(0)));
        assert_eq!(dominators.immediate_dominator(object(2)), Some(object(0)));
        assert_eq!(dominators.immediate_dominator(object(3)), None);
    }
}
