//! How objects are grouped: by class ("type") and by allocation site.
//!
//! An object's [`ObjectClass`] is its type when the dump names it (Go dumps
//! record types; Rust dumps will, from DWARF), and otherwise its
//! power-of-two size class (the buckets of `heapdump summary`). Every report
//! groups through [`Classifier`], so a new source of types changes only this
//! module.

use std::fmt;

use heapdump_reader::{HeapGraph, Object, SiteId, SiteTable, Stack, StackId, TypeIndex};
use serde::Serialize;

/// Number of size classes: 0, `1..=16`, then one per power of two up to 2⁶⁴.
pub const SIZE_CLASSES: usize = 62;

/// A power-of-two size class: sizes `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SizeClass(u8);

impl SizeClass {
    /// The class of `size`: 0 alone, `1..=16`, then `2^(k-1)+1..=2^k`.
    pub fn of(size: u64) -> SizeClass {
        let index = match size {
            0 => 0,
            1..=16 => 1,
            _ => (64 - (size - 1).leading_zeros()) as u8 - 3,
        };
        SizeClass(index)
    }

    /// The class numbered `index` (`0..SIZE_CLASSES`).
    pub fn from_index(index: usize) -> Option<SizeClass> {
        (index < SIZE_CLASSES).then_some(SizeClass(index as u8))
    }

    /// The class's number, `0..SIZE_CLASSES`, smallest sizes first.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The smallest size in the class.
    pub fn smallest(self) -> u64 {
        match self.0 {
            0 => 0,
            1 => 1,
            class => (1u64 << (class + 2)) + 1,
        }
    }

    /// The largest size in the class.
    pub fn largest(self) -> u64 {
        match self.0 {
            0 => 0,
            1 => 16,
            class => 1u64.checked_shl(u32::from(class) + 3).unwrap_or(u64::MAX),
        }
    }
}

impl fmt::Display for SizeClass {
    /// `0 B`, `1..16 B`, `129..256 B`, `4..8 KiB`, `1..2 MiB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        match self.0 {
            0 => write!(f, "0 B"),
            1 => write!(f, "1..16 B"),
            class if class <= 7 => write!(f, "{}..{} B", self.smallest(), self.largest()),
            class => {
                // Powers of two from 1 KiB up: the bounds in one unit.
                let exponent = u32::from(class) + 3;
                let unit = ((exponent - 1) / 10) as usize;
                let low = 1u64 << (exponent - 1 - unit as u32 * 10);
                let high = 1u64 << (exponent - unit as u32 * 10);
                write!(
                    f,
                    "{low}..{high} {}",
                    UNITS.get(unit).copied().unwrap_or("B")
                )
            }
        }
    }
}

/// What kind of object something is, as far as the dump tells: the key of
/// "by type" histograms and group suspects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectClass {
    /// A type the dump names ([`Dump::types`](heapdump_reader::Dump::types)).
    Type(TypeIndex),
    /// The dump has no type for the object: its size class stands in.
    Size(SizeClass),
}

/// A way to group objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// By [`ObjectClass`].
    Class,
    /// By allocation site as the user sees it: stacks with the same
    /// program frames are one site ([`SiteTable`]); objects not sampled
    /// form one group.
    Site,
}

impl Grouping {
    /// `class` or `site`.
    pub fn name(self) -> &'static str {
        match self {
            Grouping::Class => "class",
            Grouping::Site => "site",
        }
    }
}

/// The group of an object under one [`Grouping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    /// Objects of one class.
    Class(ObjectClass),
    /// Objects allocated at one site; `None`: allocations not sampled.
    Site(Option<SiteId>),
}

/// A group as reports show it: serializable, and comparable across two
/// dumps of the same binary (by `grouping` and `label`, and for sites by
/// their [`SiteId`], derived from their frames).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupLabel {
    /// `class` or `site`.
    pub grouping: Grouping,
    /// E.g. `33..64 B` (a size class), `site 3f2a9c1e` (the first 8 hex
    /// digits of the site id), `allocation not sampled`.
    pub label: String,
    /// The site's id (16 hex digits in JSON), for site groups of sampled
    /// allocations: the same in every dump of the same binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
    /// The stack id of the site's first stack (the one whose frames are
    /// shown), for site groups of sampled allocations. A site may have
    /// several stacks (`stacks`), which differ only in the allocator's or
    /// the runtime's frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<StackId>,
    /// How many of the dump's stacks the site groups (0 for classes and
    /// unsampled allocations).
    #[serde(skip_serializing_if = "is_zero")]
    pub stacks: usize,
    /// The site's frames, innermost first: `function (file:line)` when the
    /// dump's stacks are symbolised, else the return address as `0x…`.
    #[serde(skip_serializing_if = "SiteFrames::is_empty")]
    pub frames: SiteFrames,
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

/// An allocation site's frames as reports show them, innermost first:
/// `function (file:line)` when the dump's stacks are symbolised, else the
/// return address as `0x…`; the allocator's own frames left out
/// ([`Stack::frame_labels`]). In JSON, just the list: every frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SiteFrames {
    /// Every frame of the site.
    pub labels: Vec<String>,
    /// How many of the last `labels` are the runtime's that started the
    /// thread ([`Stack::runtime_frames`]); text reports leave them out.
    #[serde(skip)]
    pub runtime: usize,
}

impl SiteFrames {
    /// The frames of `stack`'s site.
    pub fn of(stack: &Stack) -> SiteFrames {
        SiteFrames {
            labels: stack.frame_labels(),
            runtime: stack.runtime_labels(),
        }
    }

    /// The frames of `object`'s allocation site; empty when its allocation
    /// was not sampled.
    pub fn of_object(graph: &HeapGraph<'_>, object: &Object) -> SiteFrames {
        object
            .site
            .and_then(|id| graph.dump().stack(id))
            .map(SiteFrames::of)
            .unwrap_or_default()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The frames of the program: all but the runtime's that started the
    /// thread.
    pub fn program(&self) -> &[String] {
        let end = self.labels.len().saturating_sub(self.runtime);
        self.labels.get(..end).unwrap_or(&[])
    }
}

/// Maps objects to dense group numbers under one [`Grouping`], for arrays of
/// per-group totals.
#[derive(Clone, Copy, Debug)]
pub struct Classifier<'g> {
    grouping: Grouping,
    stacks: &'g [Stack],
    /// The dump's sites (site groups only; made on first use by the graph).
    sites: Option<&'g SiteTable>,
    graph: &'g HeapGraph<'g>,
}

impl<'g> Classifier<'g> {
    /// A classifier for the objects of `graph`.
    pub fn new(graph: &'g HeapGraph<'g>, grouping: Grouping) -> Classifier<'g> {
        Classifier {
            grouping,
            stacks: &graph.dump().stacks,
            sites: (grouping == Grouping::Site).then(|| graph.sites()),
            graph,
        }
    }

    /// Number of types the dump names.
    fn type_count(&self) -> usize {
        self.graph.dump().types.len()
    }

    /// The grouping.
    pub fn grouping(&self) -> Grouping {
        self.grouping
    }

    /// Number of groups: group numbers are `0..group_count()`. Classes:
    /// the size classes, then the dump's types.
    pub fn group_count(&self) -> usize {
        match self.grouping {
            Grouping::Class => SIZE_CLASSES + self.type_count(),
            Grouping::Site => self.sites.map_or(0, SiteTable::len) + 1,
        }
    }

    /// The one group every object falls in, when that is known without
    /// looking at them: by site in a dump without stacks, "not sampled".
    pub fn only_group(&self) -> Option<usize> {
        (self.grouping == Grouping::Site && self.stacks.is_empty()).then_some(0)
    }

    /// The group number of `object`.
    pub fn group_of(&self, object: &Object) -> usize {
        match self.grouping {
            Grouping::Class => match object.type_index() {
                Some(index) if index.index() < self.type_count() => SIZE_CLASSES + index.index(),
                _ => SizeClass::of(object.size).index(),
            },
            // 0: not sampled (or a site missing from the dump).
            Grouping::Site => object
                .site
                .and_then(|id| self.stacks.binary_search_by_key(&id, |stack| stack.id).ok())
                .and_then(|index| self.sites?.site_of_stack(index))
                .map_or(0, |site| site + 1),
        }
    }

    /// The key of group number `group`.
    pub fn key(&self, group: usize) -> Option<GroupKey> {
        match self.grouping {
            Grouping::Class => match SizeClass::from_index(group) {
                Some(class) => Some(GroupKey::Class(ObjectClass::Size(class))),
                // Groups after the size classes are the dump's types.
                None => u32::try_from(group - SIZE_CLASSES)
                    .ok()
                    .filter(|&index| (index as usize) < self.type_count())
                    .map(|index| GroupKey::Class(ObjectClass::Type(TypeIndex(index)))),
            },
            Grouping::Site => match group {
                0 => Some(GroupKey::Site(None)),
                _ => self
                    .sites?
                    .site(group - 1)
                    .map(|site| GroupKey::Site(Some(site.id))),
            },
        }
    }

    /// The key of `object`'s group.
    pub fn key_of(&self, object: &Object) -> Option<GroupKey> {
        self.key(self.group_of(object))
    }

    /// How reports show group number `group`.
    pub fn label(&self, group: usize) -> GroupLabel {
        match self.key(group) {
            Some(GroupKey::Class(class)) => GroupLabel {
                grouping: Grouping::Class,
                label: match class {
                    ObjectClass::Size(size) => size.to_string(),
                    ObjectClass::Type(index) => {
                        let dump = self.graph.dump();
                        dump.class_name(&heapdump_reader::ObjectClass::Type(index))
                    }
                },
                site_id: None,
                stack_id: None,
                stacks: 0,
                frames: SiteFrames::default(),
            },
            Some(GroupKey::Site(Some(id))) => {
                let site = self.sites.and_then(|sites| sites.site(group - 1));
                let stack = site.and_then(|site| site.stack(self.graph.dump()));
                GroupLabel {
                    grouping: Grouping::Site,
                    label: format!("site {}", id.short()),
                    site_id: Some(id),
                    stack_id: stack.map(|stack| stack.id),
                    stacks: site.map_or(0, |site| site.stacks.len()),
                    frames: stack.map(SiteFrames::of).unwrap_or_default(),
                }
            }
            Some(GroupKey::Site(None)) | None => GroupLabel {
                grouping: self.grouping,
                label: match self.grouping {
                    Grouping::Site => "allocation not sampled".to_owned(),
                    Grouping::Class => format!("class {group}"),
                },
                site_id: None,
                stack_id: None,
                stacks: 0,
                frames: SiteFrames::default(),
            },
        }
    }

    /// Whether group number `group` is a real group worth naming as a
    /// suspect (not "allocation not sampled").
    pub fn is_named(&self, group: usize) -> bool {
        !(self.grouping == Grouping::Site && group == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_powers_of_two() {
        let cases = [
            (0, 0),
            (1, 1),
            (16, 1),
            (17, 2),
            (32, 2),
            (33, 3),
            (64, 3),
            (65, 4),
            (1 << 20, 17),
            (u64::MAX, SIZE_CLASSES - 1),
        ];
        for (size, class) in cases {
            assert_eq!(SizeClass::of(size).index(), class, "size {size}");
            let class = SizeClass::from_index(class).unwrap();
            let (min, max) = (class.smallest(), class.largest());
            assert!(min <= size && size <= max, "size {size} in {min}..={max}");
        }
        let bounds = |index| {
            let class = SizeClass::from_index(index).unwrap();
            (class.smallest(), class.largest())
        };
        assert_eq!(bounds(2), (17, 32));
        assert_eq!(bounds(SIZE_CLASSES - 1), ((1 << 63) + 1, u64::MAX));
        for class in 2..SIZE_CLASSES - 1 {
            assert_eq!(bounds(class).1 + 1, bounds(class + 1).0);
        }
    }

    #[test]
    fn size_classes_match_the_summary() {
        for (size, min, max) in [
            (0, 0, 0),
            (1, 1, 16),
            (16, 1, 16),
            (17, 17, 32),
            (64, 33, 64),
            (65, 65, 128),
            (u64::MAX, (1 << 63) + 1, u64::MAX),
        ] {
            let class = SizeClass::of(size);
            assert_eq!(
                (class.smallest(), class.largest()),
                (min, max),
                "size {size}"
            );
        }
        assert_eq!(SizeClass::of(u64::MAX).index(), SIZE_CLASSES - 1);
        assert_eq!(SizeClass::of(40).to_string(), "33..64 B");
        assert_eq!(SizeClass::of(1000).to_string(), "513..1024 B");
        assert_eq!(SizeClass::of(1025).to_string(), "1..2 KiB");
        assert_eq!(SizeClass::of(1 << 20).to_string(), "512..1024 KiB");
        assert_eq!(SizeClass::of((1 << 20) + 1).to_string(), "1..2 MiB");
        assert_eq!(SizeClass::of(u64::MAX).to_string(), "8..16 EiB");
    }
}
