//! `heapdump retained`: the dominator tree from the top, biggest retainers
//! first.

use heapdump_reader::HeapGraph;
use serde::Serialize;

use crate::analysis::Analysis;
use crate::describe::{percent, ObjectRef};
use crate::dominators::DomNode;

/// The deepest tree [`retained`] builds, whatever the options say.
pub const MAX_DEPTH: usize = 64;

/// Options of the [`retained`] report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetainedOptions {
    /// Levels below the virtual root (at most [`MAX_DEPTH`]).
    pub depth: usize,
    /// Children listed per node, biggest first.
    pub children: usize,
    /// Children retaining less than this percentage of the reachable heap
    /// are not listed (only counted).
    pub min_percent: f64,
}

impl Default for RetainedOptions {
    fn default() -> Self {
        RetainedOptions {
            depth: 4,
            children: 10,
            min_percent: 1.0,
        }
    }
}

/// A node of the listed tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetainedNode {
    /// The object.
    pub object: ObjectRef,
    /// Its retained size in percent of the reachable heap.
    pub percent: f64,
    /// Number of objects it dominates, itself included.
    pub dominated_objects: u64,
    /// Its listed children.
    pub children: Vec<RetainedNode>,
    /// Children not listed (past the limits).
    pub other_children: u64,
    /// What those retain together.
    pub other_bytes: u64,
    /// For a node directly under the roots, the root word that points at
    /// it (`main.cache`, `thread 7 "main" stack +0x1c8`), once named
    /// ([`RetainedReport::name_roots`]); `None` for an object that only
    /// several paths together keep alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

/// The dominator tree from the top.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetainedReport {
    /// Objects reachable from the roots.
    pub reachable_objects: u64,
    /// Their bytes: the virtual root's retained size.
    pub reachable_bytes: u64,
    /// Objects the virtual root dominates directly (held by more than one
    /// root path, or by a root directly).
    pub top_level_objects: u64,
    /// The biggest of them, with their subtrees.
    pub tree: Vec<RetainedNode>,
    /// Top-level objects not listed.
    pub other_children: u64,
    /// What those retain together.
    pub other_bytes: u64,
}

impl RetainedReport {
    /// Names the root word that points at each node directly under the
    /// roots, with `namer` (symbols of the binary when it has one).
    pub fn name_roots(&mut self, graph: &HeapGraph<'_>, namer: &heapdump_symbols::RootNamer<'_>) {
        let wanted: std::collections::HashSet<u32> =
            self.tree.iter().map(|node| node.object.id).collect();
        let mut first: std::collections::HashMap<u32, &heapdump_reader::RootReference> =
            std::collections::HashMap::new();
        for reference in graph.root_references() {
            if wanted.contains(&reference.target.0) {
                first.entry(reference.target.0).or_insert(reference);
            }
        }
        for node in &mut self.tree {
            node.root = first
                .get(&node.object.id)
                .map(|reference| namer.reference_name(graph, reference));
        }
    }
}

/// Number of nodes in each node's dominator subtree, by node (`u32`: a
/// tree has fewer nodes than that counts).
pub fn subtree_sizes(analysis: &Analysis) -> Vec<u32> {
    let mut sizes = vec![1u32; analysis.node_count()];
    for node in (1..sizes.len()).rev() {
        let count = sizes.get(node).copied().unwrap_or(0);
        if let Some(up) = analysis.idom(DomNode(node as u32)) {
            if let Some(slot) = sizes.get_mut(up.index()) {
                *slot = slot.saturating_add(count);
            }
        }
    }
    sizes
}

/// Lists `node`'s children within the limits; `(listed, other count, other
/// bytes)`.
fn children(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    counts: &[u32],
    node: DomNode,
    depth: usize,
    options: &RetainedOptions,
) -> (Vec<RetainedNode>, u64, u64) {
    let total = analysis.reachable_bytes();
    let mut listed = Vec::new();
    let mut other_children = 0u64;
    let mut other_bytes = 0u64;
    for &child in analysis.children(node) {
        let retained = analysis.retained_size(child);
        let share = percent(retained, total);
        if depth == 0 || listed.len() >= options.children || share < options.min_percent {
            other_children += 1;
            other_bytes = other_bytes.saturating_add(retained);
            continue;
        }
        let Some(object) = ObjectRef::of_node(graph, analysis, child) else {
            continue;
        };
        let (grandchildren, other_grandchildren, other_grandchild_bytes) =
            children(graph, analysis, counts, child, depth - 1, options);
        listed.push(RetainedNode {
            object,
            percent: share,
            dominated_objects: counts
                .get(child.index())
                .map_or(1, |&count| u64::from(count)),
            children: grandchildren,
            other_children: other_grandchildren,
            other_bytes: other_grandchild_bytes,
            root: None,
        });
    }
    (listed, other_children, other_bytes)
}

/// The dominator tree of `graph` from the top, within `options`' limits.
pub fn retained(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    options: &RetainedOptions,
) -> RetainedReport {
    let counts = subtree_sizes(analysis);
    let depth = options.depth.min(MAX_DEPTH);
    let (tree, other_children, other_bytes) =
        children(graph, analysis, &counts, DomNode::ROOT, depth, options);
    RetainedReport {
        reachable_objects: analysis.reachable_objects(),
        reachable_bytes: analysis.reachable_bytes(),
        top_level_objects: analysis.children(DomNode::ROOT).len() as u64,
        tree,
        other_children,
        other_bytes,
    }
}
