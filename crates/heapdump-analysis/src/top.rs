//! `heapdump top`: a histogram of the heap by class and by allocation site.

use heapdump_reader::HeapGraph;
use serde::Serialize;

use crate::analysis::Analysis;
use crate::class::{Classifier, GroupLabel, Grouping};
use crate::describe::{group_totals_many, GroupTotals};

/// What the histogram rows are ordered by, biggest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopOrder {
    /// Retained bytes (then shallow bytes).
    #[default]
    Retained,
    /// Shallow bytes (then retained bytes).
    Shallow,
    /// Number of objects.
    Count,
}

/// Options of the [`top`] report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopOptions {
    /// Rows per table.
    pub limit: usize,
    /// Row order.
    pub order: TopOrder,
}

impl Default for TopOptions {
    fn default() -> Self {
        TopOptions {
            limit: 20,
            order: TopOrder::Retained,
        }
    }
}

/// One row of a histogram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopRow {
    /// The group.
    #[serde(flatten)]
    pub group: GroupLabel,
    /// Its totals.
    #[serde(flatten)]
    pub totals: GroupTotals,
}

/// The heap by class and by allocation site.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopReport {
    /// All objects in the dump.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects reachable from the roots.
    pub reachable_objects: u64,
    /// Their bytes.
    pub reachable_bytes: u64,
    /// The order of the rows.
    pub order: TopOrder,
    /// Number of classes with objects.
    pub class_count: u64,
    /// The biggest classes.
    pub by_class: Vec<TopRow>,
    /// Number of allocation sites with objects (not sampled counts as one).
    pub site_count: u64,
    /// The biggest allocation sites.
    pub by_site: Vec<TopRow>,
}

/// What [`top_with`] does with the runtime's own classes and sites
/// ([`crate::internals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Internals {
    /// Rows like any other.
    #[default]
    Show,
    /// Folded into one row per table, labelled [`INTERNALS_LABEL`] and the
    /// number of groups, with their totals summed.
    Fold,
}

/// The label of the row that holds the runtime's own classes or sites
/// when they are folded ([`Internals::Fold`]).
pub const INTERNALS_LABEL: &str = "std and runtime internals";

/// The rows of one grouping from its totals, ordered, at most
/// `options.limit`; and the number of non-empty groups. Groups marked in
/// `fold` are summed into one row.
fn rows(
    classifier: &Classifier<'_>,
    totals: Vec<GroupTotals>,
    options: &TopOptions,
    fold: &[bool],
) -> (Vec<TopRow>, u64) {
    let mut groups: Vec<(usize, GroupTotals)> = totals
        .into_iter()
        .enumerate()
        .filter(|(_, totals)| totals.objects > 0)
        .collect();
    let count = groups.len() as u64;
    // The folded row's group number: past every real group.
    let folded_group = classifier.group_count();
    let mut folded = (0u64, GroupTotals::default());
    groups.retain(|(group, totals)| {
        let internal = fold.get(*group).copied().unwrap_or(false);
        if internal {
            folded.0 += 1;
            folded.1.merge(totals);
        }
        !internal
    });
    if folded.0 > 0 {
        groups.push((folded_group, folded.1));
    }
    groups.sort_by(|(a_group, a), (b_group, b)| {
        let key = |totals: &GroupTotals| match options.order {
            TopOrder::Retained => (totals.retained_bytes, totals.shallow_bytes),
            TopOrder::Shallow => (totals.shallow_bytes, totals.retained_bytes),
            TopOrder::Count => (totals.objects, totals.shallow_bytes),
        };
        key(b).cmp(&key(a)).then(a_group.cmp(b_group))
    });
    let rows = groups
        .into_iter()
        .take(options.limit)
        .map(|(group, totals)| TopRow {
            group: if group == folded_group {
                let noun = match classifier.grouping() {
                    crate::Grouping::Class if folded.0 == 1 => "class",
                    crate::Grouping::Class => "classes",
                    crate::Grouping::Site if folded.0 == 1 => "site",
                    crate::Grouping::Site => "sites",
                };
                GroupLabel {
                    grouping: classifier.grouping(),
                    label: format!("{INTERNALS_LABEL} ({} {noun})", folded.0),
                    site_id: None,
                    stack_id: None,
                    stacks: 0,
                    frames: Default::default(),
                }
            } else {
                classifier.label(group)
            },
            totals,
        })
        .collect();
    (rows, count)
}

/// The histogram of `graph` by class and by allocation site.
pub fn top(graph: &HeapGraph<'_>, analysis: &Analysis, options: &TopOptions) -> TopReport {
    top_with(graph, analysis, options, Internals::Show)
}

/// The histogram of `graph` by class and by allocation site, with the
/// runtime's own classes and sites shown or folded into one row.
pub fn top_with(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    options: &TopOptions,
    internals: Internals,
) -> TopReport {
    let dump = graph.dump();
    let classifiers = [
        Classifier::new(graph, Grouping::Class),
        Classifier::new(graph, Grouping::Site),
    ];
    let mut totals = group_totals_many(graph, analysis, &classifiers).into_iter();
    let [classes, sites] = &classifiers;
    let fold = |classifier: &Classifier<'_>| match internals {
        Internals::Show => Vec::new(),
        Internals::Fold => crate::internals::runtime_groups(graph, classifier),
    };
    let (by_class, class_count) = rows(
        classes,
        totals.next().unwrap_or_default(),
        options,
        &fold(classes),
    );
    let (by_site, site_count) = rows(
        sites,
        totals.next().unwrap_or_default(),
        options,
        &fold(sites),
    );
    TopReport {
        objects: dump.objects.len() as u64,
        bytes: dump.live_bytes(),
        reachable_objects: analysis.reachable_objects(),
        reachable_bytes: analysis.reachable_bytes(),
        order: options.order,
        class_count,
        by_class,
        site_count,
        by_site,
    }
}
