//! `heapdump diff`: what grew between two dumps of one process, by class and
//! by allocation site, and what holds the top growers in the newer dump.
//!
//! Groups are matched by class name, and sites by their id, which is
//! derived from their program frames ([`heapdump_reader::SiteId`]): the
//! same in any two dumps of the same binary. Groups that look the same add
//! up.

use std::collections::HashMap;

use heapdump_reader::{HeapGraph, ObjectId};
use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::Analysis;
use crate::class::{Classifier, GroupLabel, Grouping};
use crate::describe::{group_totals_many, GroupTotals, ObjectRef};
use crate::dominators::DomNode;
use crate::paths::{RootPath, ShortestPathTree};

/// Options of the [`diff`] report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffOptions {
    /// Rows per table.
    pub limit: usize,
    /// Growers (biggest byte growth, over both groupings) whose retainers in
    /// the newer dump are listed.
    pub growers: usize,
    /// Retainers listed per grower.
    pub retainers: usize,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            limit: 20,
            growers: 3,
            retainers: 3,
        }
    }
}

/// Objects and bytes of one dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DumpTotals {
    /// Process id of the dumped process.
    pub pid: u64,
    /// When the dump was taken, nanoseconds since the Unix epoch.
    pub time_unix_ns: u64,
    /// Objects.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Reachable objects.
    pub reachable_objects: u64,
    /// Their bytes.
    pub reachable_bytes: u64,
}

/// How one group changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupGrowth {
    /// The group (as the newer dump names it, if it has it).
    #[serde(flatten)]
    pub group: GroupLabel,
    /// Objects in the older dump.
    pub old_objects: u64,
    /// Objects in the newer dump.
    pub new_objects: u64,
    /// Their difference.
    pub object_growth: i64,
    /// Bytes in the older dump.
    pub old_bytes: u64,
    /// Bytes in the newer dump.
    pub new_bytes: u64,
    /// Their difference.
    pub byte_growth: i64,
    /// What the group retains in the newer dump.
    pub new_retained_bytes: u64,
}

/// What holds a growing group's objects in the newer dump.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Grower {
    /// The group.
    pub growth: GroupGrowth,
    /// Its retainers, most bytes held first.
    pub retainers: Vec<Retainer>,
}

/// An object that dominates objects of a growing group: the nearest
/// dominator outside the group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Retainer {
    /// The retainer; `None` when the objects are held directly by roots
    /// (the virtual root dominates them).
    pub object: Option<ObjectRef>,
    /// Objects of the group it holds.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// A shortest path from a root to the retainer.
    pub path: Option<RootPath>,
}

/// What grew between two dumps.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiffReport {
    /// The older dump.
    pub old: DumpTotals,
    /// The newer dump.
    pub new: DumpTotals,
    /// Whether both dumps come from the same process id.
    pub same_process: bool,
    /// Classes by byte growth, biggest first.
    pub by_class: Vec<GroupGrowth>,
    /// Allocation sites by byte growth, biggest first.
    pub by_site: Vec<GroupGrowth>,
    /// The top growers with their retainers in the newer dump.
    pub growers: Vec<Grower>,
}

/// What makes a group the same group in two dumps: a site's id, else the
/// label.
fn identity(label: &GroupLabel) -> (Grouping, String) {
    match label.site_id {
        Some(id) => (label.grouping, id.to_string()),
        None => (label.grouping, label.label.clone()),
    }
}

fn totals(graph: &HeapGraph<'_>, analysis: &Analysis) -> DumpTotals {
    let dump = graph.dump();
    DumpTotals {
        pid: dump.info.pid,
        time_unix_ns: dump.info.time_unix_ns,
        objects: dump.objects.len() as u64,
        bytes: dump.live_bytes(),
        reachable_objects: analysis.reachable_objects(),
        reachable_bytes: analysis.reachable_bytes(),
    }
}

/// A group matched across two dumps: how the newer dump names it, its
/// number there, and its totals in the older and the newer dump.
type Matched = (GroupLabel, Option<usize>, GroupTotals, GroupTotals);

/// Growth of every group of one grouping, biggest byte growth first, with
/// the newer dump's group numbers.
fn growth(
    old_classifier: &Classifier<'_>,
    old_totals: &[GroupTotals],
    new_classifier: &Classifier<'_>,
    new_totals: &[GroupTotals],
) -> Vec<(Option<usize>, GroupGrowth)> {
    // identity -> (label, new group, old totals, new totals)
    let mut table: HashMap<(Grouping, String), Matched> = HashMap::new();
    for (group, totals) in old_totals.iter().enumerate() {
        if totals.objects == 0 {
            continue;
        }
        let label = old_classifier.label(group);
        let entry = table.entry(identity(&label)).or_insert((
            label,
            None,
            GroupTotals::default(),
            GroupTotals::default(),
        ));
        // Groups that look the same (two sites whose ids collide) are one
        // row: their counts add up.
        entry.2.merge(totals);
    }
    for (group, totals) in new_totals.iter().enumerate() {
        if totals.objects == 0 {
            continue;
        }
        let label = new_classifier.label(group);
        let entry = table.entry(identity(&label)).or_insert((
            label.clone(),
            None,
            GroupTotals::default(),
            GroupTotals::default(),
        ));
        // The row is named, and its retainers found, after the new
        // dump's biggest group of that identity.
        if entry.1.is_none() || totals.shallow_bytes > entry.3.shallow_bytes {
            entry.0 = label;
            entry.1 = Some(group);
        }
        entry.3.merge(totals);
    }
    let signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let mut rows: Vec<(Option<usize>, GroupGrowth)> = table
        .into_values()
        .map(|(group, new_group, old, new)| {
            (
                new_group,
                GroupGrowth {
                    group,
                    old_objects: old.objects,
                    new_objects: new.objects,
                    object_growth: signed(new.objects).saturating_sub(signed(old.objects)),
                    old_bytes: old.shallow_bytes,
                    new_bytes: new.shallow_bytes,
                    byte_growth: signed(new.shallow_bytes)
                        .saturating_sub(signed(old.shallow_bytes)),
                    new_retained_bytes: new.retained_bytes,
                },
            )
        })
        // Unchanged groups are not growth.
        .filter(|(_, row)| row.object_growth != 0 || row.byte_growth != 0)
        .collect();
    // Ties in order of site id, then label.
    rows.sort_by(|a, b| {
        b.1.byte_growth
            .cmp(&a.1.byte_growth)
            .then(b.1.object_growth.cmp(&a.1.object_growth))
            .then(a.1.group.grouping.cmp(&b.1.group.grouping))
            .then(a.1.group.site_id.cmp(&b.1.group.site_id))
            .then_with(|| a.1.group.label.cmp(&b.1.group.label))
    });
    rows
}

/// The retainers of group `group` in `graph`: for each reachable object of
/// the group, its nearest dominator outside the group.
fn retainers(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    grouping: Grouping,
    group: usize,
    limit: usize,
    tree: &mut Option<ShortestPathTree>,
) -> Vec<Retainer> {
    let classifier = Classifier::new(graph, grouping);
    let objects = &graph.dump().objects;
    let in_group = |node: DomNode| {
        analysis
            .object(node)
            .and_then(|id| objects.get(id.index()))
            .is_some_and(|object| classifier.group_of(object) == group)
    };
    // Nearest dominator outside the group, for every node, in preorder
    // (idoms come first).
    let count = analysis.node_count();
    let membership: Vec<bool> = (0..count as u32)
        .into_par_iter()
        .map(|node| in_group(DomNode(node)))
        .collect();
    let mut outside: Vec<u32> = vec![0; count];
    for node in 1..count {
        let up = analysis.idom(DomNode(node as u32)).unwrap_or(DomNode::ROOT);
        let value = if membership.get(up.index()).copied().unwrap_or(false) {
            outside.get(up.index()).copied().unwrap_or(0)
        } else {
            up.0
        };
        if let Some(slot) = outside.get_mut(node) {
            *slot = value;
        }
    }
    // (holder, size) of every member, by holder, then summed per holder:
    // a grown class can have millions of members with as many holders.
    let mut held: Vec<(u32, u64)> = (1..count)
        .into_par_iter()
        .filter(|&node| membership.get(node).copied().unwrap_or(false))
        .map(|node| {
            let size = analysis
                .object(DomNode(node as u32))
                .and_then(|id| objects.get(id.index()))
                .map_or(0, |object| object.size);
            (outside.get(node).copied().unwrap_or(0), size)
        })
        .collect();
    held.par_sort_unstable_by_key(|&(holder, _)| holder);
    let mut rows: Vec<(u32, (u64, u64))> = held
        .chunk_by(|a, b| a.0 == b.0)
        .map(|run| {
            let bytes = run
                .iter()
                .fold(0u64, |sum, &(_, size)| sum.saturating_add(size));
            (
                run.first().map_or(0, |&(holder, _)| holder),
                (run.len() as u64, bytes),
            )
        })
        .collect();
    // The `limit` biggest, then those sorted.
    let biggest =
        |a: &(u32, (u64, u64)), b: &(u32, (u64, u64))| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(&b.0));
    if rows.len() > limit {
        rows.select_nth_unstable_by(limit, biggest);
        rows.truncate(limit);
    }
    rows.sort_by(biggest);
    let targets: Vec<ObjectId> = rows
        .iter()
        .filter_map(|&(node, _)| analysis.object(DomNode(node)))
        .collect();
    if tree.is_none() && !targets.is_empty() {
        *tree = Some(ShortestPathTree::build(graph));
    }
    rows.into_iter()
        .map(|(node, (count, bytes))| {
            let id = analysis.object(DomNode(node));
            Retainer {
                object: id.and_then(|id| ObjectRef::new(graph, analysis, id)),
                objects: count,
                bytes,
                path: id.and_then(|id| {
                    tree.as_ref()
                        .and_then(|tree| tree.path(graph, analysis, id))
                }),
            }
        })
        .collect()
}

/// What grew from `old` to `new` (two dumps of one process).
pub fn diff(
    old: (&HeapGraph<'_>, &Analysis),
    new: (&HeapGraph<'_>, &Analysis),
    options: &DiffOptions,
) -> DiffReport {
    let groupings = [Grouping::Class, Grouping::Site];
    let old_classifiers = groupings.map(|grouping| Classifier::new(old.0, grouping));
    let new_classifiers = groupings.map(|grouping| Classifier::new(new.0, grouping));
    let (old_totals, new_totals) = rayon::join(
        || group_totals_many(old.0, old.1, &old_classifiers),
        || group_totals_many(new.0, new.1, &new_classifiers),
    );
    let grow = |index: usize| {
        growth(
            &old_classifiers[index],
            old_totals.get(index).map_or(&[][..], Vec::as_slice),
            &new_classifiers[index],
            new_totals.get(index).map_or(&[][..], Vec::as_slice),
        )
    };
    let by_class = grow(0);
    let by_site = grow(1);

    // Top growers over both groupings (named groups that grew).
    let mut candidates: Vec<(Grouping, usize, &GroupGrowth)> = by_class
        .iter()
        .map(|row| (Grouping::Class, row))
        .chain(by_site.iter().map(|row| (Grouping::Site, row)))
        .filter_map(|(grouping, (group, growth))| {
            let named = Classifier::new(new.0, grouping).is_named((*group)?);
            (named && growth.byte_growth > 0).then_some((grouping, (*group)?, growth))
        })
        .collect();
    candidates.sort_by(|a, b| b.2.byte_growth.cmp(&a.2.byte_growth).then(a.0.cmp(&b.0)));
    let mut tree = None;
    let growers = candidates
        .into_iter()
        .take(options.growers)
        .map(|(grouping, group, growth)| Grower {
            growth: growth.clone(),
            retainers: retainers(new.0, new.1, grouping, group, options.retainers, &mut tree),
        })
        .collect();

    let (old_totals, new_totals) = (totals(old.0, old.1), totals(new.0, new.1));
    DiffReport {
        same_process: old_totals.pid == new_totals.pid,
        old: old_totals,
        new: new_totals,
        by_class: by_class
            .into_iter()
            .take(options.limit)
            .map(|(_, row)| row)
            .collect(),
        by_site: by_site
            .into_iter()
            .take(options.limit)
            .map(|(_, row)| row)
            .collect(),
        growers,
    }
}
