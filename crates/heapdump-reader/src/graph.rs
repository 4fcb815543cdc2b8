//! The object/reference graph of a dump.
//!
//! Where the dump says exactly which words of an object or root are
//! pointers ([`Pointers::Exact`], Go dumps), only those words are read;
//! otherwise ([`Pointers::Unknown`], heapdump-rs dumps) memory is scanned
//! conservatively: every aligned pointer-sized word. Words are read in the
//! dumped process's byte order; a word whose value lies inside a live object
//! (at or after its first byte, before its end) is a reference to it.
//! Interior pointers count (a `hashbrown` table points into the middle of its
//! allocation, a Go 1.22+ pointer points past its slot's malloc header); a
//! pointer one past the end does not. Self references are kept. A root's
//! [`values`](Root::values) (pointers held outside memory images) are
//! resolved the same way.

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use byteorder::{BigEndian, ByteOrder, LittleEndian};
use rayon::prelude::*;

use crate::dump::{Dump, Object, PointerOffsets, Pointers, Root};
use crate::sites::SiteTable;

/// The most objects a graph numbers. One below `u32::MAX`, which stays free
/// for analyses that need a sentinel or a virtual root.
pub const MAX_OBJECTS: u64 = u32::MAX as u64 - 1;

/// The most roots a graph numbers.
pub const MAX_ROOTS: u64 = u32::MAX as u64 - 1;

/// Identifies an object: its index in [`Dump::objects`], which is in address
/// order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(pub u32);

impl ObjectId {
    /// The id as an index into [`Dump::objects`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "object #{}", self.0)
    }
}

/// Identifies a root: its index in [`Dump::roots`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RootId(pub u32);

impl RootId {
    /// The id as an index into [`Dump::roots`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for RootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "root #{}", self.0)
    }
}

/// A word in a root that points into an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RootReference {
    /// The root holding the word.
    pub root: RootId,
    /// Offset of the word in the root's contents; for the root's value `i`
    /// ([`Root::values`]), `contents.len() + i × pointer size`.
    pub offset: u64,
    /// The object it points into.
    pub target: ObjectId,
}

/// The object→object references: a compressed sparse row graph over
/// [`ObjectId`] numbers (node `n` is `ObjectId(n)`), each edge with the
/// offset of the word in the source object (offsets of 4 GiB and more are
/// stored as `u32::MAX`). 8 bytes per edge plus 8 per object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferenceGraph {
    /// Node `n`'s edges are `rows[n]..rows[n + 1]` of `targets` and
    /// `fields`; one more entry than nodes.
    rows: Vec<u64>,
    /// Edge targets, by source, then ascending target, one per pair.
    targets: Vec<u32>,
    /// Edge field offsets, beside `targets`.
    fields: Vec<u32>,
}

impl ReferenceGraph {
    /// A graph of `node_count` nodes and no edges.
    pub fn with_nodes(node_count: usize) -> ReferenceGraph {
        ReferenceGraph {
            rows: vec![0; node_count + 1],
            targets: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// Number of nodes.
    #[inline]
    pub fn node_count(&self) -> usize {
        self.rows.len().saturating_sub(1)
    }

    /// Number of edges.
    #[inline]
    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// The edge range of `node` (empty when out of range).
    #[inline]
    fn row(&self, node: u32) -> Range<usize> {
        let node = node as usize;
        match (self.rows.get(node), self.rows.get(node + 1)) {
            (Some(&start), Some(&end)) => start as usize..end as usize,
            _ => 0..0,
        }
    }

    /// The targets of `node`'s edges, ascending (empty when out of range).
    #[inline]
    pub fn neighbors_slice(&self, node: u32) -> &[u32] {
        self.targets.get(self.row(node)).unwrap_or(&[])
    }

    /// The field offsets of `node`'s edges, beside
    /// [`neighbors_slice`](ReferenceGraph::neighbors_slice).
    #[inline]
    pub fn edges_slice(&self, node: u32) -> &[u32] {
        self.fields.get(self.row(node)).unwrap_or(&[])
    }
}

/// [`Dump::weak_pointers`] indexed by pointer list (empty when none).
fn weak_by_list<'a>(dump: &'a Dump<'_>) -> Vec<&'a [u64]> {
    let mut weak: Vec<&[u64]> = Vec::new();
    if dump.weak_pointers.is_empty() {
        return weak;
    }
    weak.resize(dump.pointer_lists.len(), &[]);
    for (list, offsets) in &dump.weak_pointers {
        if let Some(slot) = weak.get_mut(list.index()) {
            *slot = offsets;
        }
    }
    weak
}

/// The edges one scan task found for its range of objects.
#[derive(Debug, Default)]
struct TaskEdges {
    /// Edge count of each object of the range.
    counts: Vec<u32>,
    /// Targets, by source, then target.
    targets: Vec<u32>,
    /// Field offsets, beside `targets`.
    fields: Vec<u32>,
    /// Weak references found: (source, target), by source, then target.
    weak: Vec<(u32, u32)>,
}

/// Bytes of contents scanned between two calls of the progress callback.
const PROGRESS_STEP: u64 = 32 << 20;

/// Contents bytes (or objects) in one parallel task.
const TASK_BYTES: u64 = 1 << 20;
const TASK_OBJECTS: usize = 16 * 1024;

/// A dump with its reference graph.
#[derive(Debug)]
pub struct HeapGraph<'data> {
    dump: Dump<'data>,
    graph: ReferenceGraph,
    /// Weak references ([`Dump::weak_pointers`]): (source, target), by
    /// source, then target, one per pair.
    weak: Vec<(u32, u32)>,
    root_references: Vec<RootReference>,
    index: AddressIndex,
    /// The dump's allocation sites, made on first use ([`HeapGraph::sites`]).
    sites: OnceLock<SiteTable>,
}

impl<'data> HeapGraph<'data> {
    /// Finds the references of every object and root of `dump`, in
    /// parallel: exact pointer words where the dump gives them, every
    /// aligned word otherwise. Calls `progress(bytes_scanned, bytes_total)`
    /// now and then: after the roots and after each wave of about 32 MiB of
    /// object contents, objects being scanned in address order and each
    /// one's contents read once, so that a caller may give back the pages
    /// scanned so far ([`DumpFile::release_pages`](crate::DumpFile::release_pages)).
    ///
    /// A [`Dump`] from [`parse`](crate::parse) is used as it is. For a dump
    /// built by hand, objects are sorted by address if they are not; objects
    /// past [`MAX_OBJECTS`] and roots past [`MAX_ROOTS`] are dropped, and
    /// overlapping objects make lookups pick one of them (no panic either
    /// way).
    pub fn build(mut dump: Dump<'data>, progress: &mut dyn FnMut(u64, u64)) -> HeapGraph<'data> {
        let sorted = dump
            .objects
            .windows(2)
            .all(|pair| matches!(pair, [a, b] if a.address <= b.address));
        if !sorted {
            dump.objects
                .par_sort_unstable_by_key(|object| object.address);
        }
        dump.objects.truncate(MAX_OBJECTS as usize);
        dump.roots.truncate(MAX_ROOTS as usize);

        let index = AddressIndex::new(&dump.objects);
        let scanner = Scanner {
            index: &index,
            dump: &dump,
            pointer_size: dump.info.pointer_size,
            big_endian: dump.info.big_endian,
            weak: weak_by_list(&dump),
        };

        let total = dump
            .objects
            .iter()
            .map(|object| dump.contents(object).len() as u64)
            .chain(dump.roots.iter().map(|root| root.contents.len() as u64))
            .fold(0u64, u64::saturating_add);
        let mut done = 0u64;
        progress(done, total);

        let root_references = scanner.scan_roots(&dump.roots);
        done += dump
            .roots
            .iter()
            .map(|root| root.contents.len() as u64)
            .fold(0, u64::saturating_add);
        progress(done, total);

        // Object scanning: tasks of about TASK_BYTES, run in waves of about
        // PROGRESS_STEP bytes so that progress can be reported between waves.
        // Each wave's edges are appended to the CSR as they are (tasks are
        // in object order), so no edge list is ever sorted or copied whole.
        let tasks = tasks(&dump);
        let mut graph = ReferenceGraph {
            rows: Vec::with_capacity(dump.objects.len() + 1),
            targets: Vec::new(),
            fields: Vec::new(),
        };
        graph.rows.push(0);
        let mut weak = Vec::new();
        let mut wave_start = 0;
        while wave_start < tasks.len() {
            let mut wave_end = wave_start;
            let mut wave_bytes = 0u64;
            while let Some((_, bytes)) = tasks.get(wave_end) {
                if wave_bytes >= PROGRESS_STEP {
                    break;
                }
                wave_bytes = wave_bytes.saturating_add(*bytes);
                wave_end += 1;
            }
            let wave = tasks.get(wave_start..wave_end).unwrap_or(&[]);
            let results: Vec<TaskEdges> = wave
                .par_iter()
                .map(|(range, _)| scanner.scan_objects(range.clone()))
                .collect();
            for result in results {
                let mut end = graph.targets.len() as u64;
                graph.rows.extend(result.counts.iter().map(|&count| {
                    end += u64::from(count);
                    end
                }));
                graph.targets.extend_from_slice(&result.targets);
                graph.fields.extend_from_slice(&result.fields);
                weak.extend_from_slice(&result.weak);
            }
            done = done.saturating_add(wave_bytes);
            progress(done.min(total), total);
            wave_start = wave_end;
        }
        // Objects no task covered (none, unless there are no tasks).
        let last = graph.targets.len() as u64;
        graph.rows.resize(dump.objects.len() + 1, last);
        graph.targets.shrink_to_fit();
        graph.fields.shrink_to_fit();
        progress(total, total);

        HeapGraph {
            dump,
            graph,
            weak,
            root_references,
            index,
            sites: OnceLock::new(),
        }
    }

    /// The dump the graph was built from.
    pub fn dump(&self) -> &Dump<'data> {
        &self.dump
    }

    /// The dump's allocation sites: its stacks grouped by their program
    /// frames, with ids stable across dumps of the same binary
    /// ([`SiteTable`]); computed on first use.
    pub fn sites(&self) -> &SiteTable {
        self.sites.get_or_init(|| SiteTable::new(&self.dump))
    }

    /// Gives the dump back.
    pub fn into_dump(self) -> Dump<'data> {
        self.dump
    }

    /// The object→object reference graph. Node `n` is `ObjectId(n)`.
    #[inline]
    pub fn csr(&self) -> &ReferenceGraph {
        &self.graph
    }

    /// Number of objects.
    #[inline]
    pub fn object_count(&self) -> usize {
        self.dump.objects.len()
    }

    /// The object `id`.
    #[inline]
    pub fn object(&self, id: ObjectId) -> Option<&Object> {
        self.dump.objects.get(id.index())
    }

    /// Every object with its id, in address order.
    pub fn objects(&self) -> impl ExactSizeIterator<Item = (ObjectId, &Object)> + '_ {
        self.dump
            .objects
            .iter()
            .enumerate()
            .map(|(index, object)| (ObjectId(index as u32), object))
    }

    /// The object that holds the byte at `address` (interior addresses
    /// included; one past the end is not inside).
    pub fn object_at(&self, address: u64) -> Option<ObjectId> {
        self.index.lookup(&self.dump.objects, address)
    }

    /// The bytes of object `id` ([`Dump::contents`]); empty for an id out
    /// of range.
    pub fn contents(&self, id: ObjectId) -> &'data [u8] {
        self.object(id)
            .map_or(&[], |object| self.dump.contents(object))
    }

    /// The objects `id` refers to, each with the offset in `id` of the
    /// lowest word that points into it (one entry per target, in target
    /// order; offsets of 4 GiB and more read `u32::MAX`). Empty for an id
    /// out of range.
    #[inline]
    pub fn references(&self, id: ObjectId) -> References<'_> {
        let targets = self.graph.neighbors_slice(id.0);
        let offsets = self.graph.edges_slice(id.0);
        References {
            inner: targets.iter().zip(offsets),
        }
    }

    /// Number of object→object references (distinct source/target pairs).
    pub fn reference_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The objects `id` refers to through weak pointer words
    /// ([`Dump::weak_pointers`]: Java's `Reference.referent`), ascending,
    /// one per target. They are not among its
    /// [`references`](HeapGraph::references): reachability and paths
    /// follow strong references only; the dominator tree counts a weak
    /// reference as a referrer of its target (heapdump-analysis). Empty
    /// for an id out of range, and for formats without weak pointers.
    pub fn weak_references(&self, id: ObjectId) -> impl ExactSizeIterator<Item = ObjectId> + '_ {
        let start = self.weak.partition_point(|&(source, _)| source < id.0);
        let end = start
            + self
                .weak
                .get(start..)
                .unwrap_or(&[])
                .partition_point(|&(source, _)| source == id.0);
        self.weak
            .get(start..end)
            .unwrap_or(&[])
            .iter()
            .map(|&(_, target)| ObjectId(target))
    }

    /// Every weak reference ([`HeapGraph::weak_references`]) as
    /// `(source, target)`, by source, then target.
    pub fn all_weak_references(&self) -> impl ExactSizeIterator<Item = (ObjectId, ObjectId)> + '_ {
        self.weak
            .iter()
            .map(|&(source, target)| (ObjectId(source), ObjectId(target)))
    }

    /// Number of weak references (distinct source/target pairs).
    pub fn weak_reference_count(&self) -> usize {
        self.weak.len()
    }

    /// The root `id`.
    pub fn root(&self, id: RootId) -> Option<&Root<'data>> {
        self.dump.roots.get(id.index())
    }

    /// Every word of every root that points into an object, by root, then
    /// offset.
    pub fn root_references(&self) -> &[RootReference] {
        &self.root_references
    }
}

/// Iterator over the references of one object: `(target, offset)`.
#[derive(Clone, Debug)]
pub struct References<'a> {
    inner: std::iter::Zip<std::slice::Iter<'a, u32>, std::slice::Iter<'a, u32>>,
}

impl Iterator for References<'_> {
    type Item = (ObjectId, u32);

    fn next(&mut self) -> Option<(ObjectId, u32)> {
        self.inner
            .next()
            .map(|(&target, &offset)| (ObjectId(target), offset))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for References<'_> {}

/// Bytes per card of [`AddressIndex`] when the heap is dense enough.
const CARD_SHIFT_MIN: u32 = 8;

/// Finds the object holding an address through a card table: the address
/// range of the objects is cut into cards of `2^card_shift` bytes, and each
/// card records the first object that ends after the card starts. An
/// address's object is then among the few between its card's entry and the
/// next card's, found by a short binary search over the objects themselves;
/// no search over all objects (each step of which would be a cache miss).
/// Cards are 256 bytes where the objects are dense; for a sparse address
/// space they grow (powers of two) until there are at most two cards per
/// object (plus 1024), so the table never takes more than 8 bytes per
/// object, and a card with many objects falls back to a binary search among
/// them.
///
/// The graph builds one; typing (which follows pointers before the graph
/// exists) builds its own. It does not borrow the objects, so their types
/// may change while it is used: give it the objects it was built from.
#[derive(Clone, Debug, Default)]
pub struct AddressIndex {
    /// For each card, the index of the first object that ends after the
    /// card starts; one more entry than cards, equal to the object count.
    cards: Vec<u32>,
    card_shift: u32,
    /// First object byte and one past the last: values outside cannot point
    /// into any object.
    low: u64,
    high: u64,
}

impl AddressIndex {
    /// Indexes address-sorted `objects`.
    pub fn new(objects: &[Object]) -> AddressIndex {
        let low = objects.first().map_or(0, |object| object.address);
        let high = objects.par_iter().map(index_end).max().unwrap_or(0);
        let range = high.saturating_sub(low);
        let budget = (objects.len() as u64)
            .saturating_mul(2)
            .saturating_add(1024);
        let mut card_shift = CARD_SHIFT_MIN;
        while card_shift < 63 && (range >> card_shift) >= budget {
            card_shift += 1;
        }
        let card_count = (range >> card_shift) as usize + 1;
        let mut cards = Vec::with_capacity(card_count + 1);
        let mut first = 0usize;
        for card in 0..card_count as u64 {
            let card_start = low.saturating_add(card << card_shift);
            while objects
                .get(first)
                .is_some_and(|object| index_end(object) <= card_start)
            {
                first += 1;
            }
            cards.push(first as u32);
        }
        cards.push(objects.len() as u32);
        AddressIndex {
            cards,
            card_shift,
            low,
            high,
        }
    }

    /// The object of `objects` (the ones indexed) holding `address`.
    #[inline]
    pub fn lookup(&self, objects: &[Object], address: u64) -> Option<ObjectId> {
        if address < self.low || address >= self.high {
            return None;
        }
        let card = ((address - self.low) >> self.card_shift) as usize;
        let first = *self.cards.get(card)? as usize;
        // The object holding the address, if it also crosses into the next
        // card, is the next card's first; so it is at most that one.
        let last = (*self.cards.get(card + 1)? as usize).min(objects.len().checked_sub(1)?);
        let candidates = objects.get(first..=last.max(first))?;
        let in_card = candidates
            .partition_point(|object| object.address <= address)
            .checked_sub(1)?;
        let object = candidates.get(in_card)?;
        // Starts are <= address by the search; an empty object is pointed
        // to only at its address.
        if object.is_pointed_to_by(address) {
            Some(ObjectId((first + in_card) as u32))
        } else {
            None
        }
    }
}

/// Where an object ends for the index: an empty object takes its address
/// (it is pointed to there, [`Object::is_pointed_to_by`]).
fn index_end(object: &Object) -> u64 {
    object.address.saturating_add(object.size.max(1))
}

/// Splits the objects into ranges of about [`TASK_BYTES`] of contents or
/// [`TASK_OBJECTS`] objects; each with its contents bytes.
fn tasks(dump: &Dump<'_>) -> Vec<(Range<usize>, u64)> {
    let objects = &dump.objects;
    let mut tasks = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (index, object) in objects.iter().enumerate() {
        bytes = bytes.saturating_add(dump.contents(object).len() as u64);
        let count = index + 1 - start;
        if bytes >= TASK_BYTES || count >= TASK_OBJECTS {
            tasks.push((start..index + 1, bytes));
            start = index + 1;
            bytes = 0;
        }
    }
    if start < objects.len() {
        tasks.push((start..objects.len(), bytes));
    }
    tasks
}

/// What a scan needs: the objects to resolve words against, and how to read
/// words.
struct Scanner<'a, 'data> {
    index: &'a AddressIndex,
    dump: &'a Dump<'data>,
    pointer_size: u8,
    big_endian: bool,
    /// Weak offsets by pointer list index ([`Dump::weak_pointers`]); empty
    /// when the dump has none.
    weak: Vec<&'a [u64]>,
}

impl Scanner<'_, '_> {
    /// The object a word's value points into.
    fn resolve(&self, value: u64) -> Option<ObjectId> {
        self.index.lookup(&self.dump.objects, value)
    }

    /// Calls `found(offset, target)` for each pointer word of `contents`
    /// (which starts at `address`) that points into an object: the words
    /// `pointers` lists, or every aligned word when it is unknown.
    fn scan(
        &self,
        address: u64,
        contents: &[u8],
        pointers: Pointers<'_>,
        found: &mut dyn FnMut(u64, ObjectId),
    ) {
        if let Pointers::Exact(offsets) = pointers {
            self.scan_exact(contents, offsets, found);
            return;
        }
        match (self.pointer_size, self.big_endian) {
            (4, false) => self.scan_words::<LittleEndian, 4>(address, contents, found),
            (4, true) => self.scan_words::<BigEndian, 4>(address, contents, found),
            (_, false) => self.scan_words::<LittleEndian, 8>(address, contents, found),
            (_, true) => self.scan_words::<BigEndian, 8>(address, contents, found),
        }
    }

    /// Reads the words at `offsets`; offsets whose word does not fit in
    /// `contents` are skipped.
    fn scan_exact(
        &self,
        contents: &[u8],
        offsets: PointerOffsets<'_>,
        found: &mut dyn FnMut(u64, ObjectId),
    ) {
        for offset in offsets.iter() {
            let Some(value) = self.word_at(contents, offset) else {
                continue;
            };
            if let Some(target) = self.resolve(value) {
                found(offset, target);
            }
        }
    }

    /// The pointer-sized word at `offset` of `contents`, if it fits.
    fn word_at(&self, contents: &[u8], offset: u64) -> Option<u64> {
        self.dump.info.word_at(contents, offset)
    }

    fn scan_words<B: ByteOrder, const N: usize>(
        &self,
        address: u64,
        contents: &[u8],
        found: &mut dyn FnMut(u64, ObjectId),
    ) {
        // Words are aligned in the dumped address space, not in `contents`.
        let size = N as u64;
        let skip = (size - address % size) % size;
        let Some(aligned) = contents.get(skip as usize..) else {
            return;
        };
        for (index, word) in aligned.chunks_exact(N).enumerate() {
            let value = if N == 4 {
                u64::from(B::read_u32(word))
            } else {
                B::read_u64(word)
            };
            if let Some(target) = self.resolve(value) {
                found(skip + index as u64 * size, target);
            }
        }
    }

    /// Scans every root, in parallel; results by root, then offset.
    fn scan_roots(&self, roots: &[Root<'_>]) -> Vec<RootReference> {
        let per_root: Vec<Vec<RootReference>> = roots
            .par_iter()
            .enumerate()
            .map(|(index, root)| {
                let id = RootId(index as u32);
                let mut found = Vec::new();
                self.scan(
                    root.address,
                    root.contents,
                    root.pointers,
                    &mut |offset, target| {
                        found.push(RootReference {
                            root: id,
                            offset,
                            target,
                        });
                    },
                );
                let word = u64::from(if self.pointer_size == 4 { 4u8 } else { 8 });
                let base = root.contents.len() as u64;
                for (index, &value) in root.values.iter().enumerate() {
                    if let Some(target) = self.resolve(value) {
                        found.push(RootReference {
                            root: id,
                            offset: base.saturating_add((index as u64).saturating_mul(word)),
                            target,
                        });
                    }
                }
                found
            })
            .collect();
        per_root.concat()
    }

    /// Scans the objects in `range`: for each, its targets in ascending
    /// order, one per target, with the lowest offset.
    fn scan_objects(&self, range: Range<usize>) -> TaskEdges {
        let mut edges = TaskEdges {
            counts: Vec::with_capacity(range.len()),
            ..TaskEdges::default()
        };
        let mut targets: Vec<(u32, u32)> = Vec::new();
        let mut weak_targets: Vec<u32> = Vec::new();
        let first = range.start;
        let objects = self.dump.objects.get(range).unwrap_or(&[]);
        for (index, object) in objects.iter().enumerate() {
            targets.clear();
            weak_targets.clear();
            let weak: &[u64] = object
                .pointer_list()
                .and_then(|list| self.weak.get(list.index()))
                .copied()
                .unwrap_or(&[]);
            self.scan(
                object.address,
                self.dump.contents(object),
                self.dump.pointers(object),
                &mut |offset, target| {
                    if weak.contains(&offset) {
                        weak_targets.push(target.0);
                        return;
                    }
                    let offset = u32::try_from(offset).unwrap_or(u32::MAX);
                    targets.push((target.0, offset));
                },
            );
            // Sorted by target then offset, the first of each target has the
            // lowest offset.
            targets.sort_unstable();
            targets.dedup_by_key(|(target, _)| *target);
            edges.counts.push(targets.len() as u32);
            edges
                .targets
                .extend(targets.iter().map(|&(target, _)| target));
            edges
                .fields
                .extend(targets.iter().map(|&(_, offset)| offset));
            if !weak_targets.is_empty() {
                weak_targets.sort_unstable();
                weak_targets.dedup();
                let source = (first + index) as u32;
                edges
                    .weak
                    .extend(weak_targets.iter().map(|&target| (source, target)));
            }
        }
        edges
    }
}
