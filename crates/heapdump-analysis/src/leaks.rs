//! `heapdump leaks`: leak suspects in the spirit of Eclipse MAT's, then the
//! unreachable objects.
//!
//! - **Single suspects**: objects directly below the virtual root of the
//!   dominator tree (the "top dominators") that retain more than a threshold
//!   of the reachable heap (10% by default). A top dominator of size 0 (an
//!   HPROF class object, whose statics are its references) is not one: its
//!   children in the dominator tree take its place.
//! - **Group suspects**: the other top dominators grouped by class and by
//!   allocation site; a group whose members retain more than the threshold
//!   together.
//! - For each: the **accumulation point** (walk down the dominator tree
//!   through the biggest child while it retains at least
//!   [`LeakOptions::big_drop_ratio`] of its parent; where it drops, the
//!   parent is where the memory piles up), what the accumulation point holds
//!   directly, the shortest path from a root with field offsets, the
//!   allocation-site stack, and a one-paragraph summary.
//! - **Unreachable objects**, LeakSanitizer-style: directly unreachable,
//!   indirectly unreachable and held only by cycles, grouped by allocation
//!   site and by class.

use heapdump_reader::{HeapGraph, ObjectId};
use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::{Analysis, Reachability};
use crate::class::{Classifier, GroupLabel, Grouping, SiteFrames};
use crate::describe::{human_bytes, percent, ObjectRef};
use crate::dominators::DomNode;
use crate::paths::{describe_path, field_to, LocalSearch, RootPath, ShortestPathTree};
use crate::roots::RootCoverage;

/// Options of the [`leaks`] report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakOptions {
    /// A suspect retains more than this percentage of the reachable heap.
    pub threshold_percent: f64,
    /// The accumulation-point walk goes on into the biggest child while it
    /// retains at least this fraction of its parent (MAT's `big_drop_ratio`).
    pub big_drop_ratio: f64,
    /// Most suspects listed.
    pub max_suspects: usize,
    /// Biggest members listed per group suspect.
    pub group_members: usize,
    /// Kinds of content listed per accumulation point.
    pub content_groups: usize,
    /// Unreachable groups listed per grouping.
    pub unreachable_groups: usize,
}

impl Default for LeakOptions {
    fn default() -> Self {
        LeakOptions {
            threshold_percent: 10.0,
            big_drop_ratio: 0.7,
            max_suspects: 10,
            group_members: 5,
            content_groups: 3,
            unreachable_groups: 10,
        }
    }
}

/// The leak-suspects report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeakReport {
    /// The dump's format (`heapdump-rs`, `go`, ...).
    pub format: String,
    /// How to record every object's allocation site, when the dump's
    /// format samples sites ([`heapdump_reader::Capabilities::every_site_hint`]);
    /// not in JSON.
    #[serde(skip)]
    pub every_site_hint: Option<&'static str>,
    /// The roots the dump covers, and what they leave out.
    pub roots: RootCoverage,
    /// All objects in the dump.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects reachable from the roots.
    pub reachable_objects: u64,
    /// Their bytes.
    pub reachable_bytes: u64,
    /// A suspect retains more than this many bytes.
    pub threshold_bytes: u64,
    /// The threshold in percent of the reachable heap.
    pub threshold_percent: f64,
    /// The suspects, biggest first.
    pub suspects: Vec<Suspect>,
    /// The unreachable objects.
    pub unreachable: UnreachableReport,
}

/// Whether a suspect is one object or a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuspectKind {
    /// One object.
    Single,
    /// Top dominators of one class or one allocation site.
    Group,
}

/// A leak suspect.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suspect {
    /// One object, or a group.
    pub kind: SuspectKind,
    /// The group, for group suspects.
    pub group: Option<GroupLabel>,
    /// Objects in the suspect (1 for a single object).
    pub objects: u64,
    /// What it retains.
    pub retained_bytes: u64,
    /// That in percent of the reachable heap.
    pub percent: f64,
    /// The object (for a group: its biggest member).
    pub object: ObjectRef,
    /// The biggest members of a group (empty for a single object).
    pub members: Vec<ObjectRef>,
    /// Where the memory accumulates, below `object`.
    pub accumulation_point: AccumulationPoint,
    /// A shortest path from a root to the accumulation point (through
    /// `object`, which dominates it).
    pub path: Option<RootPath>,
    /// The named field that holds `object` on that path (a Java static:
    /// `LeakyCache.CACHE`), when the dump names fields; `None` when it does
    /// not, or when a root holds the object directly. Found before a long
    /// path's middle is left out, where the holder may sit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// The allocation-site stack of `object`, innermost first (function
    /// names when symbolised, else `0x…` return addresses); empty if not
    /// sampled.
    pub site: SiteFrames,
    /// The allocation-site stack of the accumulation point.
    pub accumulation_site: SiteFrames,
    /// The suspect in one paragraph.
    pub summary: String,
}

/// Where a suspect's memory piles up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccumulationPoint {
    /// The object.
    pub object: ObjectRef,
    /// Steps down the dominator tree from the suspect's object (0: the
    /// object itself).
    pub depth: u64,
    /// Objects it dominates directly.
    pub direct_children: u64,
    /// What it holds directly, by class, biggest first.
    pub content_by_class: Vec<ContentShare>,
    /// What it holds directly, by allocation site, biggest first.
    pub content_by_site: Vec<ContentShare>,
}

/// A share of an accumulation point's direct children.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContentShare {
    /// The group.
    #[serde(flatten)]
    pub group: GroupLabel,
    /// Its children there.
    pub objects: u64,
    /// What they retain.
    pub retained_bytes: u64,
}

/// The unreachable objects.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnreachableReport {
    /// All unreachable objects.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Totals per kind of unreachability.
    pub by_reachability: Vec<UnreachableTotals>,
    /// Groups by kind and allocation site, biggest first.
    pub by_site: Vec<UnreachableGroup>,
    /// Groups by kind and class, biggest first.
    pub by_class: Vec<UnreachableGroup>,
}

/// Unreachable objects of one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct UnreachableTotals {
    /// The kind.
    pub reachability: Reachability,
    /// Number of objects.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Unreachable objects of one kind and one group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnreachableGroup {
    /// The kind.
    pub reachability: Reachability,
    /// The group.
    #[serde(flatten)]
    pub group: GroupLabel,
    /// Number of objects.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The lowest-addressed of them.
    pub example: Option<ObjectRef>,
}

/// The kinds of unreachability, in report order.
const UNREACHABLE_KINDS: [Reachability; 3] = [
    Reachability::DirectlyUnreachable,
    Reachability::IndirectlyUnreachable,
    Reachability::InUnreachableCycle,
];

/// The objects suspects are chosen from: the children of the virtual root
/// in the dominator tree, biggest retained size first, except that an
/// object of size 0 with children (an HPROF class object: its statics are
/// references, its own memory nothing) stands aside for its children, as a
/// global variable's root does for what it holds. So a static field's map
/// is the suspect, not the class holding it.
fn top_dominators(graph: &HeapGraph<'_>, analysis: &Analysis) -> Vec<DomNode> {
    let empty = |node: DomNode| {
        !analysis.children(node).is_empty()
            && analysis
                .object(node)
                .and_then(|id| graph.object(id))
                .is_some_and(|object| object.size == 0)
    };
    let direct = analysis.children(DomNode::ROOT);
    if !direct.iter().any(|&node| empty(node)) {
        return direct.to_vec();
    }
    let mut top = Vec::with_capacity(direct.len());
    let mut pending: Vec<DomNode> = direct.to_vec();
    while let Some(node) = pending.pop() {
        if empty(node) {
            pending.extend_from_slice(analysis.children(node));
        } else {
            top.push(node);
        }
    }
    top.sort_unstable_by(|&a, &b| {
        analysis
            .retained_size(b)
            .cmp(&analysis.retained_size(a))
            .then(a.cmp(&b))
    });
    top
}

/// Walks from `start` down the biggest child while it retains at least
/// `ratio` of its parent.
fn accumulation_point(analysis: &Analysis, start: DomNode, ratio: f64) -> (DomNode, u64) {
    let mut node = start;
    let mut depth = 0u64;
    while let Some(&child) = analysis.children(node).first() {
        let parent_size = analysis.retained_size(node) as f64;
        if (analysis.retained_size(child) as f64) < ratio * parent_size {
            break;
        }
        node = child;
        depth += 1;
    }
    (node, depth)
}

/// For each group of `classifier`, the count and retained bytes of the
/// dominator-tree `nodes` in it, indexed by group: counted in parallel
/// chunks into a dense table per chunk.
fn group_totals(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    classifier: &Classifier<'_>,
    nodes: &[DomNode],
) -> Vec<(u64, u64)> {
    let count = classifier.group_count();
    if let Some(group) = classifier.only_group() {
        // Every node is in the one group: no object is read.
        let mut sums = vec![(0u64, 0u64); count.max(group + 1)];
        let bytes = nodes
            .par_iter()
            .map(|&node| analysis.retained_size(node))
            .reduce(|| 0, u64::saturating_add);
        if let Some(slot) = sums.get_mut(group) {
            *slot = (nodes.len() as u64, bytes);
        }
        return sums;
    }
    nodes
        .par_chunks(4096)
        .fold(
            || vec![(0u64, 0u64); count],
            |mut sums, nodes| {
                for &node in nodes {
                    let Some(object) = analysis.object(node).and_then(|id| graph.object(id)) else {
                        continue;
                    };
                    if let Some(slot) = sums.get_mut(classifier.group_of(object)) {
                        slot.0 += 1;
                        slot.1 = slot.1.saturating_add(analysis.retained_size(node));
                    }
                }
                sums
            },
        )
        .reduce(
            || vec![(0u64, 0u64); count],
            |mut a, b| {
                for (mine, theirs) in a.iter_mut().zip(b) {
                    mine.0 += theirs.0;
                    mine.1 = mine.1.saturating_add(theirs.1);
                }
                a
            },
        )
}

/// The direct children of `node` by group, biggest first (ties: more
/// objects first, then the lower group number).
///
/// An accumulation point can hold millions of children (a big map's
/// table), so they are counted in parallel chunks into dense per-group
/// totals, as the group suspects are.
fn content(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    node: DomNode,
    grouping: Grouping,
    limit: usize,
) -> Vec<ContentShare> {
    let classifier = Classifier::new(graph, grouping);
    let children = analysis.children(node);
    // Few children: a small map, no dense table of every group.
    let mut totals: Vec<(usize, u64, u64)> = if children.len() < 4096 {
        let mut map: std::collections::HashMap<usize, (u64, u64)> =
            std::collections::HashMap::new();
        for &child in children {
            let Some(object) = analysis.object(child).and_then(|id| graph.object(id)) else {
                continue;
            };
            let entry = map.entry(classifier.group_of(object)).or_insert((0, 0));
            entry.0 += 1;
            entry.1 = entry.1.saturating_add(analysis.retained_size(child));
        }
        map.into_iter()
            .map(|(group, (objects, bytes))| (group, objects, bytes))
            .collect()
    } else {
        let sums = group_totals(graph, analysis, &classifier, children);
        sums.into_iter()
            .enumerate()
            .filter(|(_, (objects, _))| *objects > 0)
            .map(|(group, (objects, bytes))| (group, objects, bytes))
            .collect()
    };
    totals.sort_unstable_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
    totals
        .into_iter()
        .take(limit)
        .map(|(group, objects, retained_bytes)| ContentShare {
            group: classifier.label(group),
            objects,
            retained_bytes,
        })
        .collect()
}

/// `1 object`, `12,345 objects`.
fn objects_phrase(count: u64) -> String {
    if count == 1 {
        "1 object".to_owned()
    } else {
        format!("{} objects", crate::describe::thousands(count))
    }
}

/// `allocated in app::Cache::insert (site 3f2a9c1e)`, `allocated at site
/// 3f2a9c1e`, or not sampled.
fn site_phrase(object: &ObjectRef) -> String {
    match (&object.allocated_in, object.site_id, object.site) {
        (Some(function), Some(id), _) => format!("allocated in {function} (site {})", id.short()),
        (None, Some(id), _) => format!("allocated at site {}", id.short()),
        (_, None, Some(stack)) => format!("allocated at stack {stack}"),
        (_, None, None) => "whose allocation was not sampled".to_owned(),
    }
}

/// The plain-language paragraph of a suspect.
fn summary(suspect: &Suspect, reachable_bytes: u64) -> String {
    let mut text = match (&suspect.kind, &suspect.group) {
        (SuspectKind::Group, Some(group)) => format!(
            "{} of {} ({}) retain {} ({:.1}%) of the {} reachable from the roots; the biggest, \
             at {:#x}, retains {}.",
            objects_phrase(suspect.objects),
            match group.grouping {
                Grouping::Class => "one class",
                Grouping::Site => "one allocation site",
            },
            group.label,
            human_bytes(suspect.retained_bytes),
            suspect.percent,
            human_bytes(reachable_bytes),
            suspect.object.address,
            human_bytes(suspect.object.retained.unwrap_or(0)),
        ),
        _ => format!(
            "One object of {} at {:#x} ({}, {}) retains {} ({:.1}%) of the {} reachable from \
             the roots.",
            human_bytes(suspect.object.size),
            suspect.object.address,
            suspect.object.class,
            site_phrase(&suspect.object),
            human_bytes(suspect.retained_bytes),
            suspect.percent,
            human_bytes(reachable_bytes),
        ),
    };
    let point = &suspect.accumulation_point;
    if point.depth == 0 {
        text.push_str(" The memory accumulates in that object itself");
    } else {
        text.push_str(&format!(
            " The memory accumulates {} level{} further down the dominator tree, in an object of \
             {} at {:#x} ({}, {}) retaining {}",
            crate::describe::thousands(point.depth),
            if point.depth == 1 { "" } else { "s" },
            human_bytes(point.object.size),
            point.object.address,
            point.object.class,
            site_phrase(&point.object),
            human_bytes(point.object.retained.unwrap_or(0)),
        ));
    }
    text.push_str(&format!(
        ", which holds {} directly",
        objects_phrase(point.direct_children)
    ));
    match point.content_by_class.first() {
        Some(share) if point.direct_children > 0 => text.push_str(&format!(
            "; the biggest part is {} in class {} retaining {}.",
            objects_phrase(share.objects),
            share.group.label,
            human_bytes(share.retained_bytes)
        )),
        _ => text.push('.'),
    }
    if let Some(share) = point.content_by_site.first() {
        if share.group.stack_id.is_some() {
            text.push_str(&format!(
                " Most of what it holds was allocated at {} ({}).",
                share.group.label,
                objects_phrase(share.objects)
            ));
        }
    }
    match &suspect.path {
        Some(path) => {
            text.push_str(&format!(
                " It is kept alive from root {} ({}) through a chain of {}",
                path.root.name,
                path.root.kind,
                objects_phrase(path.object_count())
            ));
            match &suspect.held_by {
                Some(field) => text.push_str(&format!(", held by {field}.")),
                None => text.push('.'),
            }
        }
        None => text.push_str(" No path from a root was found."),
    }
    text
}

/// The leak-suspects report of `graph`.
pub fn leaks(graph: &HeapGraph<'_>, analysis: &Analysis, options: &LeakOptions) -> LeakReport {
    let dump = graph.dump();
    let reachable_bytes = analysis.reachable_bytes();
    let threshold = options.threshold_percent.max(0.0) / 100.0 * reachable_bytes as f64;
    let threshold_bytes = threshold as u64;
    let top = top_dominators(graph, analysis);
    let top = top.as_slice();

    // Single suspects: top dominators over the threshold (children are
    // sorted biggest first).
    let singles: Vec<DomNode> = top
        .iter()
        .copied()
        .take_while(|&node| analysis.retained_size(node) as f64 > threshold)
        .take(options.max_suspects)
        .collect();

    // Group suspects: the other top dominators, by class and by site.
    let rest = top.get(singles.len()..).unwrap_or(&[]);
    let mut groups: Vec<(Grouping, usize, u64, u64)> = Vec::new();
    for grouping in [Grouping::Class, Grouping::Site] {
        let classifier = Classifier::new(graph, grouping);
        let sums = group_totals(graph, analysis, &classifier, rest);
        for (group, (objects, bytes)) in sums.into_iter().enumerate() {
            if objects > 1 && bytes as f64 > threshold && classifier.is_named(group) {
                groups.push((grouping, group, objects, bytes));
            }
        }
    }
    groups.sort_by(|a, b| b.3.cmp(&a.3).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    groups.truncate(options.max_suspects.saturating_sub(singles.len()));
    // Members of each group: its biggest top dominators.
    let group_members: Vec<Vec<DomNode>> = groups
        .iter()
        .map(|&(grouping, group, _, _)| {
            let classifier = Classifier::new(graph, grouping);
            rest.iter()
                .copied()
                .filter(|&node| {
                    analysis
                        .object(node)
                        .and_then(|id| graph.object(id))
                        .is_some_and(|object| classifier.group_of(object) == group)
                })
                .take(options.group_members.max(1))
                .collect()
        })
        .collect();

    // Accumulation points, then one search for all their paths.
    let ratio = options.big_drop_ratio.clamp(0.0, 1.0);
    let starts: Vec<DomNode> = singles
        .iter()
        .copied()
        .chain(
            group_members
                .iter()
                .filter_map(|members| members.first().copied()),
        )
        .collect();
    let points: Vec<(DomNode, u64)> = starts
        .iter()
        .map(|&start| accumulation_point(analysis, start, ratio))
        .collect();
    // A suspect's object dominates its accumulation point, so every path
    // from a root to the point goes through it: a shortest path to the
    // point is a shortest path to the suspect's object (one search from
    // the roots, for all suspects, stopping when it has reached them:
    // suspects are near the top) followed by a shortest path from there
    // down to the point (a search from the object alone: a long list's
    // path no longer makes the search from the roots go through the whole
    // heap above the list's end).
    let start_objects: Vec<ObjectId> = starts
        .iter()
        .filter_map(|&node| analysis.object(node))
        .collect();
    let tree =
        (!start_objects.is_empty()).then(|| ShortestPathTree::build_for(graph, &start_objects));
    let mut below = (!start_objects.is_empty()).then(|| LocalSearch::new(graph));
    // The path, and the field of the object before `start` that holds it.
    let mut path_to = |start: ObjectId, point: ObjectId| {
        let mut objects = tree.as_ref()?.objects_to(start)?;
        let held_by = match objects.len().checked_sub(2).and_then(|at| objects.get(at)) {
            Some(&holder) => field_to(graph, holder, start).1,
            None => None,
        };
        let down = below.as_mut()?.objects_between(graph, start, point)?;
        objects.extend(down.get(1..).unwrap_or(&[]));
        Some((describe_path(graph, analysis, &objects)?, held_by))
    };

    let mut suspects = Vec::new();
    for (index, (&start, &(point, depth))) in starts.iter().zip(&points).enumerate() {
        let (Some(object), Some(point_object)) = (
            ObjectRef::of_node(graph, analysis, start),
            ObjectRef::of_node(graph, analysis, point),
        ) else {
            continue;
        };
        let group = index
            .checked_sub(singles.len())
            .and_then(|group_index| groups.get(group_index).zip(group_members.get(group_index)));
        let (kind, group_label, objects, retained_bytes, members) = match group {
            Some((&(grouping, group, objects, bytes), members)) => (
                SuspectKind::Group,
                Some(Classifier::new(graph, grouping).label(group)),
                objects,
                bytes,
                members
                    .iter()
                    .filter_map(|&node| ObjectRef::of_node(graph, analysis, node))
                    .collect(),
            ),
            None => (
                SuspectKind::Single,
                None,
                1,
                analysis.retained_size(start),
                Vec::new(),
            ),
        };
        let (path, held_by) = match path_to(ObjectId(object.id), ObjectId(point_object.id)) {
            Some((path, held_by)) => (Some(path), held_by),
            None => (None, None),
        };
        let site = graph
            .object(ObjectId(object.id))
            .map(|found| SiteFrames::of_object(graph, found))
            .unwrap_or_default();
        let accumulation_site = graph
            .object(ObjectId(point_object.id))
            .map(|found| SiteFrames::of_object(graph, found))
            .unwrap_or_default();
        let mut suspect = Suspect {
            kind,
            group: group_label,
            objects,
            retained_bytes,
            percent: percent(retained_bytes, reachable_bytes),
            object,
            members,
            accumulation_point: AccumulationPoint {
                object: point_object,
                depth,
                direct_children: analysis.children(point).len() as u64,
                content_by_class: content(
                    graph,
                    analysis,
                    point,
                    Grouping::Class,
                    options.content_groups,
                ),
                content_by_site: content(
                    graph,
                    analysis,
                    point,
                    Grouping::Site,
                    options.content_groups,
                ),
            },
            path,
            held_by,
            site,
            accumulation_site,
            summary: String::new(),
        };
        suspect.summary = summary(&suspect, reachable_bytes);
        suspects.push(suspect);
    }
    LeakReport {
        format: dump.info.format.to_owned(),
        every_site_hint: dump.capabilities.every_site_hint,
        roots: RootCoverage::of(graph),
        objects: dump.objects.len() as u64,
        bytes: dump.live_bytes(),
        reachable_objects: analysis.reachable_objects(),
        reachable_bytes,
        threshold_bytes,
        threshold_percent: options.threshold_percent,
        suspects,
        unreachable: unreachable(graph, analysis, options.unreachable_groups),
    }
}

impl LeakReport {
    /// Names the root words of the suspects' paths from the dumped
    /// executable's symbols (see [`RootPath::name_root`]), in the paths and
    /// in the summaries.
    pub fn name_roots(&mut self, graph: &HeapGraph<'_>, namer: &heapdump_symbols::RootNamer<'_>) {
        for suspect in &mut self.suspects {
            if let Some(path) = &mut suspect.path {
                path.name_root(graph, namer);
                suspect.summary = summary(suspect, self.reachable_bytes);
            }
        }
    }
}

/// The unreachable objects of `graph`, by kind, by site and by class.
pub fn unreachable(graph: &HeapGraph<'_>, analysis: &Analysis, limit: usize) -> UnreachableReport {
    let objects = &graph.dump().objects;
    let mut totals: Vec<UnreachableTotals> = UNREACHABLE_KINDS
        .iter()
        .map(|&reachability| UnreachableTotals {
            reachability,
            objects: 0,
            bytes: 0,
        })
        .collect();
    let kind_index = |reachability: Reachability| {
        UNREACHABLE_KINDS
            .iter()
            .position(|&kind| kind == reachability)
    };
    let unreachable_ids: Vec<u32> = analysis
        .reachabilities()
        .par_iter()
        .enumerate()
        .filter(|(_, &reachability)| reachability != Reachability::Reachable)
        .map(|(id, _)| id as u32)
        .collect();
    for &id in &unreachable_ids {
        let Some(object) = objects.get(id as usize) else {
            continue;
        };
        if let Some(slot) =
            kind_index(analysis.reachability(ObjectId(id))).and_then(|index| totals.get_mut(index))
        {
            slot.objects += 1;
            slot.bytes = slot.bytes.saturating_add(object.size);
        }
    }
    let grouped = |grouping: Grouping| {
        let classifier = Classifier::new(graph, grouping);
        // (kind, group) -> (objects, bytes, lowest id)
        type Row = ((usize, usize), (u64, u64, u32));
        let mut table: std::collections::HashMap<(usize, usize), (u64, u64, u32)> =
            std::collections::HashMap::new();
        for &id in &unreachable_ids {
            let Some(object) = objects.get(id as usize) else {
                continue;
            };
            let Some(kind) = kind_index(analysis.reachability(ObjectId(id))) else {
                continue;
            };
            let entry = table
                .entry((kind, classifier.group_of(object)))
                .or_insert((0, 0, id));
            entry.0 += 1;
            entry.1 = entry.1.saturating_add(object.size);
            entry.2 = entry.2.min(id);
        }
        let mut rows: Vec<Row> = table.into_iter().collect();
        rows.sort_by(|a, b| {
            b.1 .1
                .cmp(&a.1 .1)
                .then(b.1 .0.cmp(&a.1 .0))
                .then(a.0.cmp(&b.0))
        });
        rows.into_iter()
            .take(limit)
            .filter_map(|((kind, group), (count, bytes, example))| {
                Some(UnreachableGroup {
                    reachability: *UNREACHABLE_KINDS.get(kind)?,
                    group: classifier.label(group),
                    objects: count,
                    bytes,
                    example: ObjectRef::new(graph, analysis, ObjectId(example)),
                })
            })
            .collect::<Vec<_>>()
    };
    UnreachableReport {
        objects: totals.iter().map(|kind| kind.objects).sum(),
        bytes: totals.iter().map(|kind| kind.bytes).sum(),
        by_reachability: totals,
        by_site: grouped(Grouping::Site),
        by_class: grouped(Grouping::Class),
    }
}
