//! Allocation sites as the user sees them: stacks whose program frames are
//! the same are one site, whatever allocator or runtime frames they went
//! through, and a site's id is derived from those frames, so that it is
//! the same in every dump of the same binary.
//!
//! The writer's stack ids are offsets in its stack depot: they depend on
//! the order the process met its stacks in, and two stacks that differ
//! only below the allocating API (`__rust_alloc` against
//! `__rust_alloc_zeroed`, a `RawVec` growth path) or above `main` (the
//! thread's start) get two ids. [`SiteTable`] maps every stack of a dump
//! to its [`Site`], keyed by the frames a report shows
//! ([`Stack::frame_labels`] without the runtime's trailing frames).

use std::collections::HashMap;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::dump::{Dump, Module, Stack, StackId};

/// A site's identity: a 64-bit FNV-1a hash of its program frames (as
/// reports show them). The same functions and lines in two dumps of the
/// same binary have the same id, whatever the depot's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteId(pub u64);

impl SiteId {
    /// The id of the site whose program frames are `key`.
    pub fn of(key: &[String]) -> SiteId {
        // FNV-1a: stable across Rust versions and platforms, unlike std's
        // hasher, so ids can be compared between runs of the tools too.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for label in key {
            for &byte in label.as_bytes().iter().chain(b"\n") {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        SiteId(hash)
    }

    /// The short form reports print: the first 8 of the 16 hex digits.
    pub fn short(self) -> String {
        format!("{:08x}", self.0 >> 32)
    }
}

impl fmt::Display for SiteId {
    /// 16 hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for SiteId {
    /// As its 16 hex digits (a `u64` does not survive JSON readers that
    /// use doubles).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One allocation site: the stacks that share its program frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The site's id.
    pub id: SiteId,
    /// Indices into [`Dump::stacks`] of its stacks, in stack order; the
    /// first is the one reports show the frames of.
    pub stacks: Vec<usize>,
}

impl Site {
    /// The stack reports show for the site (its first).
    pub fn stack<'d>(&self, dump: &'d Dump<'_>) -> Option<&'d Stack> {
        dump.stacks.get(*self.stacks.first()?)
    }
}

/// Every stack of a dump mapped to its [`Site`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteTable {
    /// The sites, in order of their first stack.
    sites: Vec<Site>,
    /// For each stack of [`Dump::stacks`], its site's index in `sites`.
    of_stack: Vec<u32>,
}

impl SiteTable {
    /// The sites of `dump`'s stacks.
    pub fn new(dump: &Dump<'_>) -> SiteTable {
        let mut ranges: Vec<(u64, u64, &Module)> =
            dump.modules
                .iter()
                .flat_map(|module| {
                    module.ranges.iter().map(move |range| {
                        (range.start, range.start.saturating_add(range.size), module)
                    })
                })
                .collect();
        ranges.sort_unstable_by_key(|&(start, _, _)| start);
        let mut by_key: HashMap<Vec<String>, u32> = HashMap::new();
        let mut table = SiteTable::default();
        for (index, stack) in dump.stacks.iter().enumerate() {
            let key = site_key(stack, &ranges);
            let next = table.sites.len() as u32;
            let site = *by_key.entry(key).or_insert_with_key(|key| {
                table.sites.push(Site {
                    id: SiteId::of(key),
                    stacks: Vec::new(),
                });
                next
            });
            if let Some(entry) = table.sites.get_mut(site as usize) {
                entry.stacks.push(index);
            }
            table.of_stack.push(site);
        }
        table
    }

    /// The sites, in order of their first stack.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// Number of sites.
    pub fn len(&self) -> usize {
        self.sites.len()
    }

    /// Whether the dump has no stacks.
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// The index (into [`SiteTable::sites`]) of the site of the stack at
    /// `stack_index` in [`Dump::stacks`].
    pub fn site_of_stack(&self, stack_index: usize) -> Option<usize> {
        self.of_stack.get(stack_index).map(|&site| site as usize)
    }

    /// The index of the site of stack `id` in `dump`.
    pub fn site_of(&self, dump: &Dump<'_>, id: StackId) -> Option<usize> {
        let index = dump
            .stacks
            .binary_search_by_key(&id, |stack| stack.id)
            .ok()?;
        self.site_of_stack(index)
    }

    /// The site at `index`.
    pub fn site(&self, index: usize) -> Option<&Site> {
        self.sites.get(index)
    }
}

/// What makes two stacks one site: the frames a report shows, innermost
/// first, without the allocator's leading frames and the runtime's
/// trailing ones. Frames without a name are named by their module and
/// offset when the dump's modules hold them (stable across runs of the
/// binary, unlike the address), else by their address.
fn site_key(stack: &Stack, ranges: &[(u64, u64, &Module)]) -> Vec<String> {
    let mut labels = if stack.frames.is_empty() {
        stack
            .pcs
            .iter()
            .map(|&pc| module_offset(pc, ranges).unwrap_or_else(|| format!("{pc:#x}")))
            .collect()
    } else {
        stack.frame_labels()
    };
    let keep = labels.len().saturating_sub(stack.runtime_labels());
    labels.truncate(keep);
    labels
}

/// `name+0xoffset` for a return address in one of the dump's modules.
fn module_offset(pc: u64, ranges: &[(u64, u64, &Module)]) -> Option<String> {
    let lookup = pc.wrapping_sub(1);
    let after = ranges.partition_point(|&(start, _, _)| start <= lookup);
    let &(start, end, module) = ranges.get(after.checked_sub(1)?)?;
    if lookup < start || lookup >= end {
        return None;
    }
    let name = module.path.rsplit('/').next().unwrap_or("");
    Some(format!("{name}+{:#x}", pc.wrapping_sub(module.load_bias)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::{DumpInfo, Frame, ModuleRange};

    fn frame(name: &str) -> Frame {
        Frame {
            function: Some(name.into()),
            file: None,
            line: None,
        }
    }

    fn stack(id: u64, names: &[&str], allocator: usize, runtime: usize) -> Stack {
        let mut stack = Stack::from_pcs(StackId::new(id).unwrap(), Vec::new());
        stack.frames = names.iter().map(|name| frame(name)).collect();
        stack.allocator_frames = allocator;
        stack.runtime_frames = runtime;
        stack
    }

    #[test]
    fn stacks_that_differ_below_or_above_the_program_are_one_site() {
        let mut dump = Dump::new(DumpInfo::default());
        dump.stacks = vec![
            stack(3, &["__rust_alloc", "app::insert", "app::main"], 1, 0),
            stack(
                9,
                &["__rust_alloc_zeroed", "app::insert", "app::main"],
                1,
                0,
            ),
            stack(
                12,
                &[
                    "__rust_alloc",
                    "app::insert",
                    "app::main",
                    "std::rt::lang_start",
                ],
                1,
                1,
            ),
            stack(20, &["__rust_alloc", "app::other", "app::main"], 1, 0),
        ];
        let table = SiteTable::new(&dump);
        assert_eq!(table.len(), 2);
        assert_eq!(table.site_of_stack(0), Some(0));
        assert_eq!(table.site_of_stack(1), Some(0));
        assert_eq!(table.site_of_stack(2), Some(0));
        assert_eq!(table.site_of_stack(3), Some(1));
        assert_eq!(table.site(0).unwrap().stacks, vec![0, 1, 2]);
        assert_eq!(table.site_of(&dump, StackId::new(20).unwrap()), Some(1));
        assert_eq!(table.site_of(&dump, StackId::new(21).unwrap()), None);
        // The id depends on the frames alone: the same frames under other
        // stack ids (another dump of the binary) give the same id.
        let mut other = Dump::new(DumpInfo::default());
        other.stacks = vec![stack(
            1,
            &["__rust_alloc", "app::insert", "app::main"],
            1,
            0,
        )];
        assert_eq!(SiteTable::new(&other).sites()[0].id, table.sites()[0].id);
        assert_ne!(table.sites()[0].id, table.sites()[1].id);
        assert_eq!(table.sites()[0].id.to_string().len(), 16);
        assert_eq!(table.sites()[0].id.short().len(), 8);
    }

    #[test]
    fn unnamed_frames_are_keyed_by_module_offset() {
        let module = |bias: u64| Module {
            id: 0,
            path: "/srv/bin/app".to_owned(),
            build_id: vec![1, 2, 3],
            load_bias: bias,
            ranges: vec![ModuleRange {
                start: bias + 0x1000,
                size: 0x1000,
                flags: 5,
            }],
        };
        // The same binary loaded at two addresses (ASLR).
        let dumps: Vec<SiteTable> = [0x5555_0000_0000u64, 0x7777_0000_0000]
            .into_iter()
            .map(|bias| {
                let mut dump = Dump::new(DumpInfo::default());
                dump.modules = vec![module(bias)];
                dump.stacks = vec![Stack::from_pcs(
                    StackId::new(1).unwrap(),
                    vec![bias + 0x1234, bias + 0x1500, 0x42],
                )];
                SiteTable::new(&dump)
            })
            .collect();
        assert_eq!(dumps[0].sites()[0].id, dumps[1].sites()[0].id);
    }
}
