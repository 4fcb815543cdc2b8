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

use byteorder::{BigEndian, ByteOrder, LittleEndian};
use petgraph::csr::Csr;
use petgraph::Directed;
use rayon::prelude::*;

use crate::dump::{Dump, Object, PointerOffsets, Pointers, Root};

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
/// [`ObjectId`] numbers, each edge weighted by the offset of the word in the
/// source object (offsets of 4 GiB and more are stored as `u32::MAX`).
pub type ReferenceGraph = Csr<(), u32, Directed, u32>;

/// An edge while building: source, target, offset in source.
type Edge = (u32, u32, u32);

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
    root_references: Vec<RootReference>,
    index: AddressIndex,
}

impl<'data> HeapGraph<'data> {
    /// Finds the references of every object and root of `dump`, in
    /// parallel: exact pointer words where the dump gives them, every
    /// aligned word otherwise. Calls `progress(bytes_scanned, bytes_total)`
    /// now and then.
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
            pointer_size: dump.info.pointer_size,
            big_endian: dump.info.big_endian,
        };

        let total = dump
            .objects
            .iter()
            .map(|object| object.contents.len() as u64)
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
        let tasks = tasks(&dump.objects);
        let mut edges: Vec<Edge> = Vec::new();
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
            let results: Vec<Vec<Edge>> = wave
                .par_iter()
                .map(|(range, _)| scanner.scan_objects(&dump.objects, range.clone()))
                .collect();
            // Appending wave by wave keeps only one wave's results alive
            // next to the growing edge list.
            for result in results {
                edges.extend_from_slice(&result);
            }
            done = done.saturating_add(wave_bytes);
            progress(done.min(total), total);
            wave_start = wave_end;
        }
        let graph = csr(&edges, dump.objects.len());
        drop(edges);
        progress(total, total);

        HeapGraph {
            dump,
            graph,
            root_references,
            index,
        }
    }

    /// The dump the graph was built from.
    pub fn dump(&self) -> &Dump<'data> {
        &self.dump
    }

    /// Gives the dump back.
    pub fn into_dump(self) -> Dump<'data> {
        self.dump
    }

    /// The object→object reference graph, for algorithms over petgraph's
    /// traits. Node `n` is `ObjectId(n)`.
    pub fn csr(&self) -> &ReferenceGraph {
        &self.graph
    }

    /// Number of objects.
    pub fn object_count(&self) -> usize {
        self.dump.objects.len()
    }

    /// The object `id`.
    pub fn object(&self, id: ObjectId) -> Option<&Object<'data>> {
        self.dump.objects.get(id.index())
    }

    /// Every object with its id, in address order.
    pub fn objects(&self) -> impl ExactSizeIterator<Item = (ObjectId, &Object<'data>)> + '_ {
        self.dump
            .objects
            .iter()
            .enumerate()
            .map(|(index, object)| (ObjectId(index as u32), object))
    }

    /// The object that holds the byte at `address` (interior addresses
    /// included; one past the end is not inside).
    pub fn object_at(&self, address: u64) -> Option<ObjectId> {
        self.index.lookup(address)
    }

    /// The objects `id` refers to, each with the offset in `id` of the
    /// lowest word that points into it (one entry per target, in target
    /// order; offsets of 4 GiB and more read `u32::MAX`). Empty for an id
    /// out of range.
    pub fn references(&self, id: ObjectId) -> References<'_> {
        let (targets, offsets): (&[u32], &[u32]) = if id.index() < self.graph.node_count() {
            (
                self.graph.neighbors_slice(id.0),
                self.graph.edges_slice(id.0),
            )
        } else {
            (&[], &[])
        };
        References {
            inner: targets.iter().zip(offsets),
        }
    }

    /// Number of object→object references (distinct source/target pairs).
    pub fn reference_count(&self) -> usize {
        self.graph.edge_count()
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
/// next card's, found by a short binary search; no search over all objects
/// (each step of which would be a cache miss). Cards are 256 bytes where the
/// objects are dense; for a sparse address space they grow (powers of two)
/// until there are at most two cards per object (plus 1024), so the table
/// never takes more than 8 bytes per object, and a card with many objects
/// falls back to a binary search among them. 16 bytes per object for the
/// spans, plus the cards.
#[derive(Clone, Debug, Default)]
struct AddressIndex {
    /// `(start, end)` of every object, ascending.
    spans: Vec<(u64, u64)>,
    /// For each card, the index of the first span that ends after the card
    /// starts; one more entry than cards, equal to `spans.len()`.
    cards: Vec<u32>,
    card_shift: u32,
    /// First object byte and one past the last: values outside cannot point
    /// into any object.
    low: u64,
    high: u64,
}

impl AddressIndex {
    /// Indexes address-sorted `objects`.
    fn new(objects: &[Object<'_>]) -> AddressIndex {
        let spans: Vec<(u64, u64)> = objects
            .par_iter()
            .map(|object| (object.address, object.end()))
            .collect();
        let low = spans.first().map_or(0, |span| span.0);
        let high = spans.iter().map(|span| span.1).max().unwrap_or(0);
        let range = high.saturating_sub(low);
        let budget = (spans.len() as u64).saturating_mul(2).saturating_add(1024);
        let mut card_shift = CARD_SHIFT_MIN;
        while card_shift < 63 && (range >> card_shift) >= budget {
            card_shift += 1;
        }
        let card_count = (range >> card_shift) as usize + 1;
        let mut cards = Vec::with_capacity(card_count + 1);
        let mut first = 0usize;
        for card in 0..card_count as u64 {
            let card_start = low.saturating_add(card << card_shift);
            while spans.get(first).is_some_and(|&(_, end)| end <= card_start) {
                first += 1;
            }
            cards.push(first as u32);
        }
        cards.push(spans.len() as u32);
        AddressIndex {
            spans,
            cards,
            card_shift,
            low,
            high,
        }
    }

    /// The object holding `address`.
    fn lookup(&self, address: u64) -> Option<ObjectId> {
        if address < self.low || address >= self.high {
            return None;
        }
        let card = ((address - self.low) >> self.card_shift) as usize;
        let first = *self.cards.get(card)? as usize;
        // The object holding the address, if it also crosses into the next
        // card, is the next card's first; so it is at most that one.
        let last = (*self.cards.get(card + 1)? as usize).min(self.spans.len().checked_sub(1)?);
        let candidates = self.spans.get(first..=last.max(first))?;
        let in_card = candidates
            .partition_point(|&(start, _)| start <= address)
            .checked_sub(1)?;
        let &(_, end) = candidates.get(in_card)?;
        // Starts are <= address by the search; an empty object's end is its
        // start, so it never holds an address.
        if address < end {
            Some(ObjectId((first + in_card) as u32))
        } else {
            None
        }
    }
}

/// Splits the objects into ranges of about [`TASK_BYTES`] of contents or
/// [`TASK_OBJECTS`] objects; each with its contents bytes.
fn tasks(objects: &[Object<'_>]) -> Vec<(Range<usize>, u64)> {
    let mut tasks = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (index, object) in objects.iter().enumerate() {
        bytes = bytes.saturating_add(object.contents.len() as u64);
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

/// Builds the CSR from edges sorted by source, then target, with unique
/// (source, target) pairs, and pads it to `node_count` nodes.
fn csr(edges: &[Edge], node_count: usize) -> ReferenceGraph {
    let mut graph = match ReferenceGraph::from_sorted_edges(edges) {
        Ok(graph) => graph,
        Err(_) => {
            // The scanner emits sorted, deduplicated edges; this is a bug.
            debug_assert!(false, "reference edges are not sorted");
            ReferenceGraph::with_nodes(node_count)
        }
    };
    while graph.node_count() < node_count {
        graph.add_node(());
    }
    graph
}

/// What a scan needs: the objects to resolve words against, and how to read
/// words.
struct Scanner<'a> {
    index: &'a AddressIndex,
    pointer_size: u8,
    big_endian: bool,
}

impl Scanner<'_> {
    /// The object a word's value points into.
    fn resolve(&self, value: u64) -> Option<ObjectId> {
        self.index.lookup(value)
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
        let start = usize::try_from(offset).ok()?;
        let size = if self.pointer_size == 4 { 4 } else { 8 };
        let word = contents.get(start..start.checked_add(size)?)?;
        Some(match (size, self.big_endian) {
            (4, false) => u64::from(LittleEndian::read_u32(word)),
            (4, true) => u64::from(BigEndian::read_u32(word)),
            (_, false) => LittleEndian::read_u64(word),
            (_, true) => BigEndian::read_u64(word),
        })
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

    /// Scans the objects in `range`; edges sorted by source then target, one
    /// per pair, with the lowest offset.
    fn scan_objects(&self, objects: &[Object<'_>], range: Range<usize>) -> Vec<Edge> {
        let mut edges = Vec::new();
        let mut targets: Vec<(u32, u32)> = Vec::new();
        let objects = objects.get(range.clone()).unwrap_or(&[]);
        for (index, object) in range.zip(objects) {
            targets.clear();
            self.scan(
                object.address,
                object.contents,
                object.pointers,
                &mut |offset, target| {
                    let offset = u32::try_from(offset).unwrap_or(u32::MAX);
                    targets.push((target.0, offset));
                },
            );
            // Sorted by target then offset, the first of each target has the
            // lowest offset.
            targets.sort_unstable();
            targets.dedup_by_key(|(target, _)| *target);
            let source = index as u32;
            edges.extend(
                targets
                    .iter()
                    .map(|&(target, offset)| (source, target, offset)),
            );
        }
        edges
    }
}
