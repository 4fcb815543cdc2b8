//! Shortest paths from the roots to objects: why an object is alive.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use heapdump_reader::{HeapGraph, ObjectId, RootId};
use heapdump_symbols::RootNamer;
use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::{Analysis, Reachability};
use crate::class::{Classifier, Grouping};
use crate::describe::{thousands, ObjectRef};
use crate::dominators::{DomNode, FlowGraph};
use crate::roots::root_name;

// The marks of both searches ([`ShortestPathTree`], [`LocalSearch`]): for
// each object, the object before it on its path.

/// Not reached by the search: zero, so that the search's array starts as
/// zeroed memory from the allocator, of which a search that stops early
/// pages in only what it reaches.
const UNSEEN: u32 = 0;
/// Where the search started: reached directly from a root word, or the
/// local search's source.
const START: u32 = u32::MAX;

/// The mark of an object reached from object `node`: its id plus one (ids
/// stay below `u32::MAX - 1`: [`MAX_OBJECTS`](heapdump_reader::MAX_OBJECTS)).
#[inline]
fn came_from(node: u32) -> u32 {
    node.saturating_add(1)
}

/// The objects from a search's start to `target`, start first, following
/// the marks `mark(object)` gives back from `target`; `None` when `target`
/// is unmarked, or the marks make no chain within `limit` objects.
fn trace_back(
    mark: impl Fn(u32) -> Option<u32>,
    target: ObjectId,
    limit: usize,
) -> Option<Vec<ObjectId>> {
    let mut path = vec![target];
    let mut current = mark(target.0)?;
    while current != START {
        let node = current.checked_sub(1)?;
        path.push(ObjectId(node));
        if path.len() > limit {
            return None;
        }
        current = mark(node)?;
    }
    path.reverse();
    Some(path)
}

/// `count` atomics, all zero, in zeroed memory from the allocator: pages
/// nobody writes to are never touched.
fn zeroed_atomics(count: usize) -> Vec<AtomicU32> {
    const _: () = assert!(std::mem::align_of::<u32>() == std::mem::align_of::<AtomicU32>());
    let mut zeros = std::mem::ManuallyDrop::new(vec![0u32; count]);
    // SAFETY: `AtomicU32` has the same size and bit validity as `u32`, and
    // (checked above) the same alignment, so the allocation holds `len`
    // valid atomics; it is handed over whole (pointer, length, capacity)
    // and freed once, by the new vector.
    unsafe {
        Vec::from_raw_parts(
            zeros.as_mut_ptr().cast::<AtomicU32>(),
            zeros.len(),
            zeros.capacity(),
        )
    }
}

/// A breadth-first search tree from all roots at once: for every object it
/// reached, the object before it on one shortest path from a root.
#[derive(Debug)]
pub struct ShortestPathTree {
    /// Per object: [`UNSEEN`], [`START`] (a root word points at it), or
    /// [`came_from`] the object before it.
    previous: Vec<AtomicU32>,
    /// Objects on a shortest path from a root to each object, itself
    /// included (1 for an object a root points at); 0 when not reached.
    depth: Vec<u32>,
}

impl ShortestPathTree {
    /// Searches the whole graph.
    pub fn build(graph: &HeapGraph<'_>) -> ShortestPathTree {
        ShortestPathTree::build_until(graph, None)
    }

    /// Searches until every object in `targets` is reached (or the graph is
    /// exhausted); paths to objects farther away may be missing.
    pub fn build_for(graph: &HeapGraph<'_>, targets: &[ObjectId]) -> ShortestPathTree {
        ShortestPathTree::build_until(graph, Some(targets))
    }

    /// Level-synchronous breadth-first search, each level's frontier
    /// expanded in parallel (objects are claimed with a compare-and-swap,
    /// so each gets one previous object, from the previous level).
    fn build_until(graph: &HeapGraph<'_>, targets: Option<&[ObjectId]>) -> ShortestPathTree {
        let count = graph.object_count();
        let previous = zeroed_atomics(count);
        let mut depth = vec![0u32; count];
        let mut level = 1u32;
        let mut frontier: Vec<u32> = Vec::new();
        for reference in graph.root_references() {
            if let Some(slot) = previous.get(reference.target.index()) {
                if slot.load(Ordering::Relaxed) == UNSEEN {
                    slot.store(START, Ordering::Relaxed);
                    frontier.push(reference.target.0);
                }
            }
        }
        let all_found = |previous: &[AtomicU32]| {
            targets.is_some_and(|targets| {
                targets.iter().all(|target| {
                    previous
                        .get(target.index())
                        .is_some_and(|slot| slot.load(Ordering::Relaxed) != UNSEEN)
                })
            })
        };
        // The next small level, reused from level to level.
        let mut next = Vec::new();
        while !frontier.is_empty() && !all_found(&previous) {
            for &node in &frontier {
                if let Some(slot) = depth.get_mut(node as usize) {
                    *slot = level;
                }
            }
            level = level.saturating_add(1);
            if frontier.len() < 1024 {
                // A small level (a long list's: one object per level, two
                // million levels) costs less expanded here than handed to
                // the thread pool. Same claims, same order.
                next.clear();
                for &node in &frontier {
                    for &successor in graph.successors(node) {
                        if let Some(slot) = previous.get(successor as usize) {
                            if slot.load(Ordering::Relaxed) == UNSEEN {
                                slot.store(came_from(node), Ordering::Relaxed);
                                next.push(successor);
                            }
                        }
                    }
                }
                std::mem::swap(&mut frontier, &mut next);
                continue;
            }
            frontier = frontier
                .par_iter()
                .with_min_len(1024)
                .fold(Vec::new, |mut next, &node| {
                    for &successor in graph.successors(node) {
                        if let Some(slot) = previous.get(successor as usize) {
                            if slot.load(Ordering::Relaxed) == UNSEEN
                                && slot
                                    .compare_exchange(
                                        UNSEEN,
                                        came_from(node),
                                        Ordering::Relaxed,
                                        Ordering::Relaxed,
                                    )
                                    .is_ok()
                            {
                                next.push(successor);
                            }
                        }
                    }
                    next
                })
                .reduce(Vec::new, |mut a, mut b| {
                    if a.len() < b.len() {
                        std::mem::swap(&mut a, &mut b);
                    }
                    a.extend_from_slice(&b);
                    a
                });
        }
        for &node in &frontier {
            if let Some(slot) = depth.get_mut(node as usize) {
                *slot = level;
            }
        }
        ShortestPathTree { previous, depth }
    }

    /// How many objects a shortest path from a root to `target` has,
    /// `target` included; `None` if the search did not reach it. Costs
    /// nothing, unlike [`ShortestPathTree::objects_to`].
    pub fn depth(&self, target: ObjectId) -> Option<u32> {
        self.depth
            .get(target.index())
            .copied()
            .filter(|&depth| depth > 0)
    }

    /// The objects on a shortest path from a root to `target`, root side
    /// first; `None` if the search did not reach it.
    pub fn objects_to(&self, target: ObjectId) -> Option<Vec<ObjectId>> {
        let mark = |id: u32| Some(self.previous.get(id as usize)?.load(Ordering::Relaxed));
        trace_back(mark, target, self.previous.len())
    }

    /// A shortest path from a root to `target`, described for a report.
    pub fn path(
        &self,
        graph: &HeapGraph<'_>,
        analysis: &Analysis,
        target: ObjectId,
    ) -> Option<RootPath> {
        describe_path(graph, analysis, &self.objects_to(target)?)
    }
}

/// Shortest paths between two objects, each found by a breadth-first
/// search from the first that stops when it reaches the second: for a
/// path below an object that dominates its target (a leak suspect's path
/// down to its accumulation point), where the search from all roots would
/// have to go through the whole heap above the target's depth. One
/// search's marks are cleared for the next, so the state (4 bytes an
/// object, zeroed by the allocator: only the pages a search touches are
/// ever written) is allocated once.
#[derive(Clone, Debug)]
pub struct LocalSearch {
    /// Per object: [`UNSEEN`], [`START`] for the source, or [`came_from`]
    /// the object before it.
    previous: Vec<u32>,
    /// The objects marked by the last search.
    touched: Vec<u32>,
}

impl LocalSearch {
    /// A search over the objects of `graph`.
    pub fn new(graph: &HeapGraph<'_>) -> LocalSearch {
        LocalSearch {
            previous: vec![UNSEEN; graph.object_count()],
            touched: Vec::new(),
        }
    }

    /// The objects on a shortest path from `source` to `target`, both
    /// included (`[source]` when they are the same); `None` when `target`
    /// cannot be reached from `source`.
    pub fn objects_between(
        &mut self,
        graph: &HeapGraph<'_>,
        source: ObjectId,
        target: ObjectId,
    ) -> Option<Vec<ObjectId>> {
        let path = if self.search(graph, source, target) {
            let mark = |id: u32| self.previous.get(id as usize).copied();
            trace_back(mark, target, self.touched.len())
        } else {
            None
        };
        for &node in &self.touched {
            if let Some(slot) = self.previous.get_mut(node as usize) {
                *slot = UNSEEN;
            }
        }
        self.touched.clear();
        path.filter(|path| path.first() == Some(&source))
    }

    /// Marks objects level by level from `source` (each with the object
    /// before it) until `target` is marked; whether it was.
    fn search(&mut self, graph: &HeapGraph<'_>, source: ObjectId, target: ObjectId) -> bool {
        let Some(slot) = self.previous.get_mut(source.index()) else {
            return false;
        };
        *slot = START;
        self.touched.push(source.0);
        if source == target {
            return true;
        }
        let mut frontier = vec![source.0];
        let mut next = Vec::new();
        while !frontier.is_empty() {
            next.clear();
            for &node in &frontier {
                for &successor in graph.successors(node) {
                    if let Some(slot) = self.previous.get_mut(successor as usize) {
                        if *slot == UNSEEN {
                            *slot = came_from(node);
                            self.touched.push(successor);
                            if successor == target.0 {
                                return true;
                            }
                            next.push(successor);
                        }
                    }
                }
            }
            std::mem::swap(&mut frontier, &mut next);
        }
        false
    }
}

/// Where a path starts: a word of a root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathRoot {
    /// The root's number in the dump.
    pub root: u32,
    /// Its kind (`segment`, `thread stack`, ...).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Offset of the word in the root.
    pub offset: u64,
    /// Address of the word.
    pub word_address: u64,
}

impl RootPath {
    /// Names the root word from the dumped executable's symbols
    /// (`main.cache` rather than `bss`) when `namer` has one and the root is
    /// a global segment, and a thread stack's word by the frame that holds
    /// it when `namer` knows the stack's frames; other roots keep their
    /// names.
    pub fn name_root(&mut self, graph: &HeapGraph<'_>, namer: &RootNamer<'_>) {
        if let Some(root) = graph.root(RootId(self.root.root)) {
            if namer.names_words_of(root) {
                self.root.name = namer.slot_name(root, self.root.offset);
            }
        }
    }
}

/// One object on a path, and the offset in it of the pointer to the next
/// object (`None` for the last).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathStep {
    /// The object.
    pub object: ObjectRef,
    /// Offset in the object of the word that points at the next step.
    pub field_offset: Option<u64>,
    /// That word's name, when the dump names fields (`LeakyCache.CACHE`,
    /// `next`, `[3]`: [`Dump::field_name`](heapdump_reader::Dump::field_name)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A path from a root word through objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RootPath {
    /// The root word that starts it.
    pub root: PathRoot,
    /// The objects, from the one the root points at to the target; of a
    /// path of more than twice [`PATH_END_STEPS`] objects, only the first
    /// and the last [`PATH_END_STEPS`], the others counted in
    /// [`omitted`](RootPath::omitted).
    pub steps: Vec<PathStep>,
    /// The objects left out between the two ends of a long path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omitted: Option<OmittedSteps>,
}

/// Objects a described path keeps at each end ([`RootPath::steps`]). A
/// path through a linked list has millions of objects, one per node; the
/// ends show how it starts and where it arrives, and the middle is counted
/// by class.
pub const PATH_END_STEPS: usize = 16;

/// The most classes [`OmittedSteps::classes`] lists.
pub const OMITTED_CLASSES: usize = 3;

/// The objects in the middle of a long [`RootPath`], counted rather than
/// described.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OmittedSteps {
    /// Where they were: between `steps[at - 1]` and `steps[at]`.
    pub at: usize,
    /// How many objects were left out.
    pub objects: u64,
    /// Their classes, most objects first, at most [`OMITTED_CLASSES`].
    pub classes: Vec<ClassCount>,
}

impl OmittedSteps {
    /// `1,999,968 more objects (1,999,968 BigHeap$Node)`, with the objects
    /// of classes not listed counted at the end (`, 12 of other classes`):
    /// the line reports print where the objects were.
    pub fn description(&self) -> String {
        let classes: Vec<String> = self
            .classes
            .iter()
            .map(|class| format!("{} {}", thousands(class.objects), class.class))
            .collect();
        let listed: u64 = self.classes.iter().map(|class| class.objects).sum();
        let others = if listed < self.objects {
            format!(", {} of other classes", thousands(self.objects - listed))
        } else {
            String::new()
        };
        let objects = if self.objects == 1 {
            "object"
        } else {
            "objects"
        };
        format!(
            "{} more {objects} ({}{others})",
            thousands(self.objects),
            classes.join(", ")
        )
    }
}

/// A class and how many objects of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    /// The class (a type name, or a size class).
    pub class: String,
    /// Objects of that class.
    pub objects: u64,
}

impl RootPath {
    /// Number of objects on the path, the omitted ones included.
    pub fn object_count(&self) -> u64 {
        self.steps.len() as u64 + self.omitted.as_ref().map_or(0, |omitted| omitted.objects)
    }
}

/// Offset in `source` of its reference to `target`.
fn field_offset(graph: &HeapGraph<'_>, source: ObjectId, target: ObjectId) -> Option<u64> {
    graph
        .references(source)
        .find(|&(to, _)| to == target)
        .map(|(_, offset)| u64::from(offset))
}

/// The offset in `source` of its lowest word pointing into `target`, and
/// that field's name when the dump names fields (`LeakyCache.CACHE`,
/// `table`).
pub(crate) fn field_to(
    graph: &HeapGraph<'_>,
    source: ObjectId,
    target: ObjectId,
) -> (Option<u64>, Option<String>) {
    let offset = field_offset(graph, source, target);
    let name = offset.and_then(|offset| {
        graph
            .object(source)
            .and_then(|object| graph.dump().field_name(object, offset))
    });
    (offset, name)
}

/// Describes a chain of objects whose first is pointed at by a root; of a
/// chain longer than twice [`PATH_END_STEPS`], only the ends, the middle
/// counted by class ([`RootPath::omitted`]).
pub fn describe_path(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    objects: &[ObjectId],
) -> Option<RootPath> {
    let first = *objects.first()?;
    let reference = graph
        .root_references()
        .iter()
        .find(|reference| reference.target == first)?;
    let root = graph.root(reference.root)?;
    let (kept, omitted) = ends(graph, objects);
    let steps = kept
        .into_iter()
        .map(|index| {
            let id = *objects.get(index)?;
            let (field_offset, field) = match objects.get(index + 1) {
                Some(&next) => field_to(graph, id, next),
                None => (None, None),
            };
            Some(PathStep {
                object: ObjectRef::new(graph, analysis, id)?,
                field_offset,
                field,
            })
        })
        .collect::<Option<Vec<PathStep>>>()?;
    Some(RootPath {
        root: PathRoot {
            root: reference.root.0,
            kind: root.kind.label().into_owned(),
            name: root_name(root),
            offset: reference.offset,
            word_address: root.address.saturating_add(reference.offset),
        },
        steps,
        omitted,
    })
}

/// Of a sequence of `objects` (a path, a chain of dominators), the
/// indices a report describes, ascending: all of a short one, the first
/// and the last [`PATH_END_STEPS`] of one longer than twice that, whose
/// middle is counted instead.
fn ends(graph: &HeapGraph<'_>, objects: &[ObjectId]) -> (Vec<usize>, Option<OmittedSteps>) {
    if objects.len() <= 2 * PATH_END_STEPS {
        return ((0..objects.len()).collect(), None);
    }
    let middle = PATH_END_STEPS..objects.len() - PATH_END_STEPS;
    let kept = (0..middle.start).chain(middle.end..objects.len()).collect();
    let omitted = omitted_steps(graph, objects.get(middle).unwrap_or(&[]));
    (kept, Some(omitted))
}

/// The `middle` of a long path (or chain of dominators), counted by
/// class; it sits after the first [`PATH_END_STEPS`] steps.
fn omitted_steps(graph: &HeapGraph<'_>, middle: &[ObjectId]) -> OmittedSteps {
    let classes = Classifier::new(graph, Grouping::Class);
    let mut counts = vec![0u64; classes.group_count()];
    for object in middle.iter().filter_map(|&id| graph.object(id)) {
        if let Some(count) = counts.get_mut(classes.group_of(object)) {
            *count += 1;
        }
    }
    let mut groups: Vec<(usize, u64)> = counts
        .into_iter()
        .enumerate()
        .filter(|&(_, count)| count > 0)
        .collect();
    // Most objects first; ties in group order, so the report is stable.
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    OmittedSteps {
        at: PATH_END_STEPS,
        objects: middle.len() as u64,
        classes: groups
            .into_iter()
            .take(OMITTED_CLASSES)
            .map(|(group, objects)| ClassCount {
                class: classes.label(group).label,
                objects,
            })
            .collect(),
    }
}

/// Options of the [`path`] report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathOptions {
    /// How many shortest paths to list, each through a different last
    /// referrer.
    pub paths: usize,
}

impl Default for PathOptions {
    fn default() -> Self {
        PathOptions { paths: 5 }
    }
}

/// Why an object is alive.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathReport {
    /// The address asked about.
    pub address: u64,
    /// The object holding that address.
    pub object: ObjectRef,
    /// `address` minus the object's address.
    pub offset_in_object: u64,
    /// Its dominators from the top of the tree down to its immediate
    /// dominator: freeing any of them frees the object. Of more than twice
    /// [`PATH_END_STEPS`], the first and the last [`PATH_END_STEPS`], the
    /// others counted in [`dominators_omitted`](PathReport::dominators_omitted).
    pub dominators: Vec<ObjectRef>,
    /// The dominators left out between the two ends of a long chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dominators_omitted: Option<OmittedSteps>,
    /// Number of objects that point at it.
    pub referrers: u64,
    /// Number of root words that point at it.
    pub root_references: u64,
    /// Up to `paths` shortest paths from roots, shortest first, each ending
    /// in a different referrer.
    pub paths: Vec<RootPath>,
    /// For an unreachable object: some of the unreachable objects holding it.
    pub unreachable_referrers: Vec<ObjectRef>,
}

/// Why [`path`] could not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// No live object holds the address.
    NoObjectAt(u64),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NoObjectAt(address) => {
                write!(f, "no object in the dump holds address {address:#x}")
            }
        }
    }
}

impl std::error::Error for PathError {}

/// The dominators of `target` from the top of the tree down to its
/// immediate dominator ([`PathReport::dominators`]): objects deep in a long
/// list have millions, so of a chain longer than twice [`PATH_END_STEPS`]
/// the ends are described and the middle counted, as in a long path.
pub fn dominator_chain(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    target: ObjectId,
) -> (Vec<ObjectRef>, Option<OmittedSteps>) {
    let mut chain = Vec::new();
    let mut up = analysis.node(target).and_then(|node| analysis.idom(node));
    while let Some(node) = up {
        if node == DomNode::ROOT {
            break;
        }
        if let Some(found) = analysis.object(node) {
            chain.push(found);
        }
        up = analysis.idom(node);
    }
    chain.reverse();
    let (kept, omitted) = ends(graph, &chain);
    let described = kept
        .into_iter()
        .filter_map(|index| ObjectRef::new(graph, analysis, *chain.get(index)?))
        .collect();
    (described, omitted)
}

/// Shortest paths from the roots to the object holding `address` (why it
/// is alive), with its dominators.
pub fn path(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    address: u64,
    options: &PathOptions,
) -> Result<PathReport, PathError> {
    let target = graph
        .object_at(address)
        .ok_or(PathError::NoObjectAt(address))?;
    let object = ObjectRef::new(graph, analysis, target).ok_or(PathError::NoObjectAt(address))?;
    let offset_in_object = graph
        .object(target)
        .map_or(0, |found| address.saturating_sub(found.address));

    let (dominators, dominators_omitted) = dominator_chain(graph, analysis, target);

    // Referrers: every object with an edge to the target.
    let referrers: Vec<u32> = (0..graph.object_count() as u32)
        .into_par_iter()
        .filter(|&source| graph.successors(source).binary_search(&target.0).is_ok())
        .collect();
    let root_references = graph
        .root_references()
        .iter()
        .filter(|reference| reference.target == target)
        .count() as u64;

    let mut paths = Vec::new();
    let mut unreachable_referrers = Vec::new();
    if analysis.reachability(target) == Reachability::Reachable {
        let tree = ShortestPathTree::build(graph);
        let mut candidates: Vec<Vec<ObjectId>> = Vec::new();
        if root_references > 0 {
            candidates.push(vec![target]);
        }
        for &source in &referrers {
            if source == target.0 {
                continue;
            }
            if let Some(mut objects) = tree.objects_to(ObjectId(source)) {
                if !objects.contains(&target) {
                    objects.push(target);
                    candidates.push(objects);
                }
            }
        }
        candidates.sort_by_key(|objects| objects.len());
        paths = candidates
            .iter()
            .take(options.paths)
            .filter_map(|objects| describe_path(graph, analysis, objects))
            .collect();
    } else {
        unreachable_referrers = referrers
            .iter()
            .filter(|&&source| source != target.0)
            .take(options.paths)
            .filter_map(|&source| ObjectRef::new(graph, analysis, ObjectId(source)))
            .collect();
    }

    Ok(PathReport {
        address,
        object,
        offset_in_object,
        dominators,
        dominators_omitted,
        referrers: referrers
            .iter()
            .filter(|&&source| source != target.0)
            .count() as u64,
        root_references,
        paths,
        unreachable_referrers,
    })
}
