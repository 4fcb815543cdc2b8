//! Synthetic heap dumps in the heapdump-rs format, shaped like a real heap
//! (after the project's research notes on dominator performance):
//!
//! - 1,000 "class" hub objects that every other object points at, chosen
//!   with a skew (a few hubs have millions of referrers);
//! - an ownership forest laid out in depth-first order, so that owners and
//!   what they own sit close in memory (locality), with first-child /
//!   next-sibling links (sibling lists are chains);
//! - a back pointer from every object to its owner, and a pointer to its
//!   grandparent, or, for 3% of objects, to an arbitrary object;
//! - a module segment root that points at every tree's top and every hub,
//!   and a thread stack root with a few pointers;
//! - 64 allocation sites.
//!
//! Objects are 40 or 48 bytes (five pointer-sized slots, then sometimes a
//! scalar word), one every 48 bytes from a fixed base address, so the
//! generator can compute any object's address from its number. On average
//! every object holds four references.

use std::io::{self, Write};

use heapdump_format::builder::{DumpBuilder, Module, ModuleRange, Params, Stats};

/// Address of object 0.
pub const BASE: u64 = 0x7f00_0000_0000;
/// Bytes between consecutive objects.
pub const STRIDE: u64 = 48;
/// Number of hub ("class") objects.
pub const HUBS: u64 = 1_000;
/// Number of allocation sites.
pub const SITES: u64 = 64;
/// Address of the module segment root.
pub const SEGMENT: u64 = 0x5555_0000_0000;

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound.max(1))) >> 64) as u64
    }
}

/// The address of object `index`.
pub fn address(index: u64) -> u64 {
    BASE + index * STRIDE
}

/// No object.
const NONE: u32 = u32::MAX;

/// Writes a synthetic dump of `objects` objects (at least [`HUBS`] + 1) to
/// `out`; returns the number of object→object references it encodes
/// (before deduplication).
pub fn write<W: Write>(out: W, objects: u64, seed: u64) -> io::Result<u64> {
    let objects = objects.max(HUBS + 1);
    let count = objects as usize;
    let mut rng = Rng(seed);

    // The forest: owners, in depth-first order of creation.
    let mut owner = vec![NONE; count];
    let mut tops: Vec<u64> = Vec::new();
    let mut path: Vec<u32> = Vec::new();
    for (index, slot) in owner.iter_mut().enumerate().skip(HUBS as usize) {
        let pops = rng.below(3) as usize + if path.len() > 40 { 2 } else { 0 };
        for _ in 0..pops {
            path.pop();
        }
        if rng.below(5_000) == 0 {
            path.clear();
        }
        match path.last() {
            Some(&up) => *slot = up,
            None => tops.push(index as u64),
        }
        path.push(index as u32);
    }
    // First child and next sibling, children in creation order.
    let mut first_child = vec![NONE; count];
    let mut next_sibling = vec![NONE; count];
    for index in (HUBS as usize..count).rev() {
        let up = owner[index];
        if up != NONE {
            next_sibling[index] = first_child[up as usize];
            first_child[up as usize] = index as u32;
        }
    }

    let mut dump = DumpBuilder::new(out)?;
    dump.params(&Params {
        pid: 4242,
        executable: "/srv/synthetic",
        sample_rate: 1,
        ..Params::default()
    })?;
    let root_words: Vec<u64> = (0..HUBS).chain(tops.iter().copied()).map(address).collect();
    let segment: Vec<u8> = root_words
        .iter()
        .flat_map(|word| word.to_le_bytes())
        .collect();
    dump.module(&Module {
        module_id: 0,
        path: "/srv/synthetic",
        ranges: &[ModuleRange {
            start: SEGMENT,
            size: segment.len() as u64,
            flags: 3,
        }],
        ..Module::default()
    })?;
    dump.root_segment(0, SEGMENT, &segment)?;
    let stack: Vec<u8> = [address(HUBS), 0x1234, address(objects / 2)]
        .iter()
        .flat_map(|word| word.to_le_bytes())
        .collect();
    dump.root_thread_stack(1, "main", 0x7ffd_0000_0000, &stack)?;
    for site in 1..=SITES {
        let pcs: Vec<u64> = (0..8)
            .map(|frame| 0x5555_0000_1000 + site * 0x100 + frame * 0x10_000)
            .collect();
        dump.stack(site, &pcs)?;
    }

    let mut references = 0u64;
    let mut live_bytes = 0u64;
    let mut contents = [0u8; 48];
    let hub_contents = [0u8; 48];
    for index in 0..count {
        if (index as u64) < HUBS {
            dump.object(address(index as u64), 0, &hub_contents)?;
            live_bytes += 48;
            continue;
        }
        // Skewed hub choice: x² of a uniform x.
        let x = rng.below(1 << 16);
        let hub = (x * x * HUBS) >> 32;
        let up = owner[index];
        let extra = if rng.below(100) < 3 {
            Some(rng.below(objects))
        } else if up != NONE && owner[up as usize] != NONE {
            Some(u64::from(owner[up as usize]))
        } else {
            None
        };
        let link = |value: u32| (value != NONE).then(|| address(u64::from(value)));
        let words = [
            Some(address(hub)),
            link(first_child[index]),
            link(next_sibling[index]),
            link(up),
            extra.map(address),
        ];
        for (slot, word) in contents.chunks_exact_mut(8).zip(words) {
            slot.copy_from_slice(&word.unwrap_or(0).to_le_bytes());
            references += u64::from(word.is_some());
        }
        let size = if rng.below(2) == 0 { 40 } else { 48 };
        contents[40..48].copy_from_slice(&(index as u64 & 0xffff).to_le_bytes());
        let site = 1 + hub % SITES;
        dump.object(address(index as u64), site, &contents[..size])?;
        live_bytes += size as u64;
    }
    dump.stats(&Stats {
        live_bytes,
        live_objects: objects,
        ..Stats::default()
    })?;
    dump.finish()?.flush()?;
    Ok(references)
}

/// The bench dump of `objects` objects, kept in `target/bench-dumps/` (or
/// under `CARGO_TARGET_DIR`) and written there first if it is not; every
/// bench that includes this file shares them.
#[allow(dead_code)]
pub fn cached(objects: u64) -> std::path::PathBuf {
    use std::path::PathBuf;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target
        .join("bench-dumps")
        .join(format!("synthetic-{objects}.hdump"));
    if path.exists() {
        return path;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let start = std::time::Instant::now();
    let partial = path.with_extension("partial");
    let file = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&partial).unwrap());
    let references = write(file, objects, 0x5eed).unwrap();
    std::fs::rename(&partial, &path).unwrap();
    eprintln!(
        "generated {} ({objects} objects, {references} references) in {:.1} s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    path
}
