//! How reports describe objects, and per-group totals shared by reports.

use heapdump_reader::{HeapGraph, ObjectId, SiteId, StackId};
use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::{Analysis, Reachability};
use crate::class::{Classifier, Grouping};
use crate::dominators::DomNode;

/// An object as reports show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    /// Its [`ObjectId`] number (address order in the dump).
    pub id: u32,
    /// Its address.
    pub address: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its class (a type name, or a size class when the dump has no types).
    pub class: String,
    /// Its allocation site's stack id, if the allocation was sampled.
    pub site: Option<StackId>,
    /// Its allocation site's id ([`SiteId`], 16 hex digits in JSON): the
    /// site group reports show it in (`site 3f2a9c1e`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
    /// The program's function that allocated it (the site's first frame
    /// outside the standard library and the allocator), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_in: Option<String>,
    /// What it retains; `None` when it is unreachable.
    pub retained: Option<u64>,
    /// Whether it is reachable, and if not, how it is held.
    pub reachability: Reachability,
    /// Its value as text when the dump knows it is a string (a Java
    /// `String`), cut at [`TEXT_CHARS`] characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The most characters of an object's text an [`ObjectRef`] keeps.
pub const TEXT_CHARS: usize = 120;

impl ObjectRef {
    /// Describes object `id`; `None` if there is no such object.
    pub fn new(graph: &HeapGraph<'_>, analysis: &Analysis, id: ObjectId) -> Option<ObjectRef> {
        let object = graph.object(id)?;
        let classes = Classifier::new(graph, Grouping::Class);
        let dump = graph.dump();
        let stack_index = object.site.and_then(|site| {
            dump.stacks
                .binary_search_by_key(&site, |stack| stack.id)
                .ok()
        });
        let site_id = stack_index
            .and_then(|index| graph.sites().site_of_stack(index))
            .and_then(|site| graph.sites().site(site))
            .map(|site| site.id);
        let allocated_in = stack_index
            .and_then(|index| dump.stacks.get(index))
            .and_then(|stack| stack.caller_function())
            .map(str::to_owned);
        Some(ObjectRef {
            id: id.0,
            address: object.address,
            size: object.size,
            class: classes.label(classes.group_of(object)).label,
            site: object.site,
            site_id,
            allocated_in,
            retained: analysis.retained_size_of(id),
            reachability: analysis.reachability(id),
            text: graph
                .dump()
                .object_text(object)
                .map(|text| text.chars().take(TEXT_CHARS).collect()),
        })
    }

    /// Describes the object at dominator-tree node `node`; `None` for the
    /// virtual root.
    pub fn of_node(graph: &HeapGraph<'_>, analysis: &Analysis, node: DomNode) -> Option<ObjectRef> {
        ObjectRef::new(graph, analysis, analysis.object(node)?)
    }
}

/// Objects and bytes of one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupTotals {
    /// Number of objects.
    pub objects: u64,
    /// Sum of their sizes.
    pub shallow_bytes: u64,
    /// What the group retains together: the retained sizes of its reachable
    /// objects that no other object of the group dominates (MAT's "retained
    /// size of all instances").
    pub retained_bytes: u64,
    /// Objects of the group that are unreachable.
    pub unreachable_objects: u64,
    /// Their bytes.
    pub unreachable_bytes: u64,
}

impl GroupTotals {
    /// Adds `other`'s counts to these.
    pub(crate) fn merge(&mut self, other: &GroupTotals) {
        self.objects += other.objects;
        self.shallow_bytes = self.shallow_bytes.saturating_add(other.shallow_bytes);
        self.retained_bytes = self.retained_bytes.saturating_add(other.retained_bytes);
        self.unreachable_objects += other.unreachable_objects;
        self.unreachable_bytes = self
            .unreachable_bytes
            .saturating_add(other.unreachable_bytes);
    }
}

/// Objects per parallel task.
const CHUNK: usize = 64 * 1024;

/// Totals of every group of `classifier`, indexed by group number.
pub fn group_totals(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    classifier: &Classifier<'_>,
) -> Vec<GroupTotals> {
    group_totals_many(graph, analysis, std::slice::from_ref(classifier))
        .pop()
        .unwrap_or_default()
}

/// Totals of every group of each classifier (one walk of the dominator
/// tree for all of them).
pub fn group_totals_many(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    classifiers: &[Classifier<'_>],
) -> Vec<Vec<GroupTotals>> {
    let objects = &graph.dump().objects;
    let reachabilities = analysis.reachabilities();
    let (mut all, retained) = rayon::join(
        || {
            classifiers
                .par_iter()
                .map(|classifier| {
                    let groups = classifier.group_count();
                    let merge = |mut a: Vec<GroupTotals>, b: Vec<GroupTotals>| {
                        for (mine, theirs) in a.iter_mut().zip(&b) {
                            mine.merge(theirs);
                        }
                        a
                    };
                    objects
                        .par_chunks(CHUNK)
                        .zip(reachabilities.par_chunks(CHUNK))
                        .fold(
                            || vec![GroupTotals::default(); groups],
                            |mut totals, (part, reach)| {
                                for (object, &reachability) in part.iter().zip(reach) {
                                    if let Some(slot) = totals.get_mut(classifier.group_of(object))
                                    {
                                        slot.objects += 1;
                                        slot.shallow_bytes =
                                            slot.shallow_bytes.saturating_add(object.size);
                                        if reachability != Reachability::Reachable {
                                            slot.unreachable_objects += 1;
                                            slot.unreachable_bytes =
                                                slot.unreachable_bytes.saturating_add(object.size);
                                        }
                                    }
                                }
                                totals
                            },
                        )
                        .reduce(|| vec![GroupTotals::default(); groups], merge)
                })
                .collect::<Vec<_>>()
        },
        || group_retained_many(graph, analysis, classifiers),
    );
    for (totals, retained) in all.iter_mut().zip(retained) {
        for (slot, bytes) in totals.iter_mut().zip(retained) {
            slot.retained_bytes = bytes;
        }
    }
    all
}

/// What each group retains together: see [`group_retained_many`].
pub fn group_retained(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    classifier: &Classifier<'_>,
) -> Vec<u64> {
    group_retained_many(graph, analysis, std::slice::from_ref(classifier))
        .pop()
        .unwrap_or_default()
}

/// What each group of each classifier retains together: a walk of the
/// dominator tree that counts an object's retained size for its group
/// unless an ancestor of the same group already did. One walk serves all
/// classifiers; it runs in parallel over the virtual root's children, with
/// every node's groups looked up beforehand (in parallel, in node order).
pub fn group_retained_many(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    classifiers: &[Classifier<'_>],
) -> Vec<Vec<u64>> {
    // A classifier whose every object is in one group needs no walk: that
    // group retains the whole reachable heap.
    let walked: Vec<&Classifier<'_>> = classifiers
        .iter()
        .filter(|classifier| classifier.only_group().is_none())
        .collect();
    let mut sums = walk_group_retained(graph, analysis, &walked).into_iter();
    classifiers
        .iter()
        .map(|classifier| match classifier.only_group() {
            Some(group) => {
                let mut one = vec![0u64; classifier.group_count().max(group + 1)];
                if let Some(slot) = one.get_mut(group) {
                    *slot = analysis.reachable_bytes();
                }
                one
            }
            None => sums.next().unwrap_or_default(),
        })
        .collect()
}

/// [`group_retained_many`]'s walk, for `classifiers`.
fn walk_group_retained(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    classifiers: &[&Classifier<'_>],
) -> Vec<Vec<u64>> {
    if classifiers.is_empty() {
        return Vec::new();
    }
    let objects = &graph.dump().objects;
    let kinds = classifiers.len();
    let counts: Vec<usize> = classifiers
        .iter()
        .map(|classifier| classifier.group_count())
        .collect();
    // groups[node * kinds + k]: the node's group under classifier k.
    let groups: Vec<u32> = analysis
        .object_of_node()
        .par_iter()
        .flat_map_iter(|&id| {
            let object = objects.get(id as usize);
            classifiers.iter().map(move |classifier| {
                object.map_or(u32::MAX, |object| classifier.group_of(object) as u32)
            })
        })
        .collect();
    let retained = analysis.retained_sizes();
    // Per task: sums and active ancestors per classifier and group, and the
    // walk's stack of (node, entering?).
    type State = (Vec<Vec<u64>>, Vec<Vec<u32>>, Vec<(DomNode, bool)>);
    let fresh = || -> State {
        (
            counts.iter().map(|&count| vec![0u64; count]).collect(),
            counts.iter().map(|&count| vec![0u32; count]).collect(),
            Vec::new(),
        )
    };
    analysis
        .children(DomNode::ROOT)
        .par_chunks(1024)
        .fold(fresh, |(mut sums, mut active, mut stack), subtrees| {
            for &subtree in subtrees {
                stack.push((subtree, true));
                while let Some((node, entering)) = stack.pop() {
                    let base = node.index() * kinds;
                    for kind in 0..kinds {
                        let group = groups.get(base + kind).copied().unwrap_or(u32::MAX) as usize;
                        let (Some(count), Some(sum)) = (
                            active
                                .get_mut(kind)
                                .and_then(|active| active.get_mut(group)),
                            sums.get_mut(kind).and_then(|sums| sums.get_mut(group)),
                        ) else {
                            continue;
                        };
                        if entering {
                            if *count == 0 {
                                *sum = sum.saturating_add(
                                    retained.get(node.index()).copied().unwrap_or(0),
                                );
                            }
                            *count += 1;
                        } else {
                            *count -= 1;
                        }
                    }
                    if entering {
                        stack.push((node, false));
                        stack.extend(analysis.children(node).iter().map(|&child| (child, true)));
                    }
                }
            }
            (sums, active, stack)
        })
        .map(|(sums, _, _)| sums)
        .reduce(
            || counts.iter().map(|&count| vec![0u64; count]).collect(),
            |mut a, b| {
                for (mine, theirs) in a.iter_mut().zip(b) {
                    for (x, y) in mine.iter_mut().zip(theirs) {
                        *x = x.saturating_add(y);
                    }
                }
                a
            },
        )
}

/// `part` of `whole` in percent (0 when `whole` is 0).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// `1234567` as `1,234,567`, as every report prints counts.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    // Digits left before the next comma; the first group may be short.
    let mut group = (digits.len() + 2) % 3 + 1;
    for digit in digits.chars() {
        if group == 0 {
            out.push(',');
            group = 3;
        }
        out.push(digit);
        group -= 1;
    }
    out
}

/// A byte count in binary units, as every report prints it: `104 B`,
/// `1.50 KiB`, `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut scaled = bytes as f64 / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    let precision = if scaled < 10.0 { 2 } else { 1 };
    format!(
        "{scaled:.precision$} {}",
        UNITS.get(unit).copied().unwrap_or("EiB")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345), "12,345");
        assert_eq!(thousands(123_456), "123,456");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
