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

pub use crate::address_index::AddressIndex;
use crate::address_index::{ObjectOrder, Probe};
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
/// stored as `u32::MAX`). 8 bytes per edge plus 4 per object (8 past 2³²
/// edges).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferenceGraph {
    /// Node `n`'s edges are `rows[n]..rows[n + 1]` of `targets` and
    /// `fields`; one more entry than nodes.
    rows: RowStarts,
    /// Edge targets, by source, then ascending target, one per pair.
    targets: Vec<u32>,
    /// Edge field offsets, beside `targets`.
    fields: Vec<u32>,
}

impl ReferenceGraph {
    /// Appends the edges of `results`, scanned tasks in object order, and
    /// their weak references to `weak`.
    fn append(&mut self, results: Vec<TaskEdges>, weak: &mut Vec<(u32, u32)>) {
        for result in results {
            let mut end = self.targets.len() as u64;
            for &count in &result.counts {
                end += u64::from(count);
                self.rows.push(end);
            }
            self.targets.extend_from_slice(&result.targets);
            self.fields.extend_from_slice(&result.fields);
            weak.extend_from_slice(&result.weak);
        }
    }

    /// A graph of `node_count` nodes and no edges.
    pub fn with_nodes(node_count: usize) -> ReferenceGraph {
        ReferenceGraph {
            rows: RowStarts::Narrow(vec![0; node_count + 1]),
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
        self.rows.range(node as usize).unwrap_or(0..0)
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

/// Where each node's list starts in a compressed sparse row list (one more
/// entry than nodes, the last the total): `u32` offsets while the lists
/// fit (half the memory, and of the cache misses of a walk over the
/// graph), `u64` past 2³² entries. The rows of [`ReferenceGraph`]; the
/// server's referrer lists use it too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowStarts {
    /// Offsets that fit in `u32`.
    Narrow(Vec<u32>),
    /// Offsets past `u32`.
    Wide(Vec<u64>),
}

impl Default for RowStarts {
    fn default() -> RowStarts {
        RowStarts::Narrow(Vec::new())
    }
}

impl RowStarts {
    /// Number of entries: nodes plus one.
    pub fn len(&self) -> usize {
        match self {
            RowStarts::Narrow(starts) => starts.len(),
            RowStarts::Wide(starts) => starts.len(),
        }
    }

    /// Whether there is no entry, not even the total.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `index`: where node `index`'s list starts.
    #[inline]
    pub fn get(&self, index: usize) -> Option<usize> {
        match self {
            RowStarts::Narrow(starts) => starts.get(index).map(|&start| start as usize),
            RowStarts::Wide(starts) => starts.get(index).map(|&start| start as usize),
        }
    }

    /// Node `node`'s list: from its entry to the next; `None` out of range.
    #[inline]
    pub fn range(&self, node: usize) -> Option<Range<usize>> {
        Some(self.get(node)?..self.get(node.checked_add(1)?)?)
    }

    /// Appends `start`, widening every entry first if it does not fit.
    #[inline]
    pub fn push(&mut self, start: u64) {
        if let RowStarts::Narrow(starts) = self {
            match u32::try_from(start) {
                Ok(narrow) => return starts.push(narrow),
                Err(_) => {
                    let mut wide = Vec::with_capacity(starts.capacity());
                    wide.extend(starts.iter().map(|&start| u64::from(start)));
                    *self = RowStarts::Wide(wide);
                }
            }
        }
        if let RowStarts::Wide(starts) = self {
            starts.push(start);
        }
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
    pub fn build(dump: Dump<'data>, progress: &mut dyn FnMut(u64, u64)) -> HeapGraph<'data> {
        HeapGraph::build_in_waves(dump, progress, PROGRESS_STEP)
    }

    /// [`HeapGraph::build`], scanning waves of about `wave_size` bytes of
    /// contents at a time (tests make them small).
    fn build_in_waves(
        mut dump: Dump<'data>,
        progress: &mut dyn FnMut(u64, u64),
        wave_size: u64,
    ) -> HeapGraph<'data> {
        let mut survey = Survey::new(&dump);
        if !survey.addresses_sorted || dump.objects.len() > MAX_OBJECTS as usize {
            if !survey.addresses_sorted {
                dump.objects
                    .par_sort_unstable_by_key(|object| object.address);
            }
            dump.objects.truncate(MAX_OBJECTS as usize);
            survey = Survey::new(&dump);
        }
        dump.roots.truncate(MAX_ROOTS as usize);
        let tasks = survey.tasks;

        let index = AddressIndex::with_order(&dump.objects, survey.order);
        let scanner = Scanner {
            index: &index,
            dump: &dump,
            pointer_size: dump.info.pointer_size,
            big_endian: dump.info.big_endian,
            weak: weak_by_list(&dump),
            layouts: Layouts::decode(&dump),
        };

        let total = tasks
            .iter()
            .map(|(_, bytes)| *bytes)
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
        // `wave_size` (PROGRESS_STEP) bytes so that progress can be reported
        // between waves.
        // Each wave's edges are appended to the CSR as they are (tasks are
        // in object order), so no edge list is ever sorted or copied whole.
        // The append is serial (and pages in the CSR's fresh memory): it
        // runs while the next wave is scanned, so that one wave's task
        // buffers are alive beside the next's, no more.
        let mut graph = ReferenceGraph {
            rows: RowStarts::Narrow(Vec::with_capacity(dump.objects.len() + 1)),
            targets: Vec::new(),
            fields: Vec::new(),
        };
        graph.rows.push(0);
        let mut weak = Vec::new();
        let mut scanned: Vec<TaskEdges> = Vec::new();
        let mut wave_start = 0;
        while wave_start < tasks.len() {
            let mut wave_end = wave_start;
            let mut wave_bytes = 0u64;
            while let Some((_, bytes)) = tasks.get(wave_end) {
                if wave_bytes >= wave_size {
                    break;
                }
                wave_bytes = wave_bytes.saturating_add(*bytes);
                wave_end += 1;
            }
            let wave = tasks.get(wave_start..wave_end).unwrap_or(&[]);
            let previous = std::mem::take(&mut scanned);
            let ((), results) = rayon::join(
                || graph.append(previous, &mut weak),
                || {
                    wave.par_iter()
                        .map(|(range, _)| scanner.scan_objects(range.clone()))
                        .collect()
                },
            );
            scanned = results;
            done = done.saturating_add(wave_bytes);
            progress(done.min(total), total);
            wave_start = wave_end;
        }
        graph.append(scanned, &mut weak);
        // Objects no task covered (none, unless there are no tasks).
        let last = graph.targets.len() as u64;
        while graph.rows.len() < dump.objects.len() + 1 {
            graph.rows.push(last);
        }
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

/// What one parallel pass over the objects finds out before the graph is
/// built.
struct Survey {
    /// The objects are in address order.
    addresses_sorted: bool,
    /// The rest of their order, for the address index.
    order: ObjectOrder,
    /// The objects cut into ranges of at most [`TASK_OBJECTS`] objects and
    /// about [`TASK_BYTES`] of contents; each with its contents bytes.
    tasks: Vec<(Range<usize>, u64)>,
}

impl Survey {
    fn new(dump: &Dump<'_>) -> Survey {
        let objects = &dump.objects;
        let parts: Vec<Survey> = objects
            .par_chunks(TASK_OBJECTS)
            .enumerate()
            .map(|(chunk, part)| {
                let base = chunk * TASK_OBJECTS;
                let mut previous = base.checked_sub(1).and_then(|index| objects.get(index));
                let mut addresses_sorted = true;
                let mut order = ObjectOrder::new();
                let mut tasks = Vec::new();
                let mut start = 0;
                let mut bytes = 0u64;
                for (index, object) in part.iter().enumerate() {
                    if let Some(previous) = previous {
                        addresses_sorted &= previous.address <= object.address;
                    }
                    order.follow(previous, base + index, object);
                    previous = Some(object);
                    bytes = bytes.saturating_add(dump.contents(object).len() as u64);
                    if bytes >= TASK_BYTES {
                        tasks.push((base + start..base + index + 1, bytes));
                        start = index + 1;
                        bytes = 0;
                    }
                }
                if start < part.len() {
                    tasks.push((base + start..base + part.len(), bytes));
                }
                Survey {
                    addresses_sorted,
                    order,
                    tasks,
                }
            })
            .collect();
        let mut survey = Survey {
            addresses_sorted: true,
            order: ObjectOrder::new(),
            tasks: Vec::with_capacity(parts.iter().map(|part| part.tasks.len()).sum()),
        };
        for part in parts {
            survey.addresses_sorted &= part.addresses_sorted;
            survey.order = survey.order.merge(part.order);
            survey.tasks.extend(part.tasks);
        }
        survey
    }
}

/// Every `N`-byte word of `contents` (which starts at `address`) that is
/// aligned in the dumped address space, read in byte order `B`, with its
/// offset in `contents`.
fn aligned_words<B: ByteOrder, const N: usize>(
    address: u64,
    contents: &[u8],
) -> impl Iterator<Item = (u64, u64)> + '_ {
    let size = N as u64;
    let skip = (size - address % size) % size;
    contents
        .get(skip as usize..)
        .unwrap_or(&[])
        .chunks_exact(N)
        .enumerate()
        .map(move |(index, word)| {
            let value = if N == 4 {
                u64::from(B::read_u32(word))
            } else {
                B::read_u64(word)
            };
            (skip + index as u64 * size, value)
        })
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
    /// The pointer lists decoded, when objects share them.
    layouts: Option<Layouts>,
}

/// [`Dump::pointer_lists`] decoded once as runs (first, stride, count),
/// for dumps whose objects share few lists (HPROF: one per class and per
/// array length), so that the scan does not decode each object's list.
struct Layouts {
    /// Every list's runs, one list after the other.
    runs: Vec<(u64, u64, u64)>,
    /// The runs of list `i`: `runs[lists[i]]`.
    lists: Vec<Range<usize>>,
}

impl Layouts {
    /// The lists of `dump` decoded, or `None` when there are more than one
    /// per four objects (Go dumps may have one per object: decoding them
    /// ahead would only take memory).
    fn decode(dump: &Dump<'_>) -> Option<Layouts> {
        if dump.pointer_lists.is_empty()
            || dump.pointer_lists.len().saturating_mul(4) > dump.objects.len()
        {
            return None;
        }
        // At most 1.5 bytes per object: lists that spell out many offsets
        // (a Rust slice's fields, element by element) are left encoded.
        let most = dump.objects.len() / 16;
        let mut runs: Vec<(u64, u64, u64)> = Vec::new();
        let mut lists = Vec::with_capacity(dump.pointer_lists.len());
        for encoded in &dump.pointer_lists {
            let start = runs.len();
            let mut iter = PointerOffsets::from_field_list(encoded).iter();
            while let Some(run) = iter.next_run() {
                let open = runs.len() > start;
                // Single offsets at equal steps become one run.
                if let (Some(last), (offset, _, 1)) = (runs.last_mut().filter(|_| open), run) {
                    let (first, stride, count) = *last;
                    let next = if count == 1 {
                        offset
                            .checked_sub(first)
                            .filter(|&step| step > 0)
                            .map(|step| (step, offset))
                    } else {
                        stride
                            .checked_mul(count)
                            .and_then(|span| first.checked_add(span))
                            .filter(|&next| next == offset && stride > 0)
                            .map(|next| (stride, next))
                    };
                    if let Some((step, _)) = next {
                        *last = (first, step, count + 1);
                        continue;
                    }
                }
                runs.push(run);
                if runs.len() > most {
                    return None;
                }
            }
            lists.push(start..runs.len());
        }
        Some(Layouts { runs, lists })
    }
}

impl Scanner<'_, '_> {
    /// The object a word's value points into.
    fn resolve(&self, value: u64) -> Option<ObjectId> {
        self.index.lookup(&self.dump.objects, value)
    }

    /// Calls `word(offset, value)` for each pointer word of `contents`
    /// (which starts at `address`): the words of `runs` when the layout's
    /// shared list is decoded, else the words `pointers` lists, or every
    /// aligned word when it is unknown. Listed words that do not fit in
    /// `contents` are skipped. The one reader of pointer words, for roots
    /// and objects.
    fn pointer_words(
        &self,
        address: u64,
        contents: &[u8],
        pointers: Pointers<'_>,
        runs: Option<&[(u64, u64, u64)]>,
        word: &mut impl FnMut(u64, u64),
    ) {
        if let Some(runs) = runs {
            for &run in runs {
                self.run_words(run, contents, word);
            }
            return;
        }
        match pointers {
            Pointers::Exact(offsets) => {
                let mut iter = offsets.iter();
                while let Some(run) = iter.next_run() {
                    self.run_words(run, contents, word);
                }
            }
            Pointers::Unknown => {
                let words = |(offset, value)| word(offset, value);
                match (self.pointer_size, self.big_endian) {
                    (4, false) => {
                        aligned_words::<LittleEndian, 4>(address, contents).for_each(words)
                    }
                    (4, true) => aligned_words::<BigEndian, 4>(address, contents).for_each(words),
                    (_, false) => {
                        aligned_words::<LittleEndian, 8>(address, contents).for_each(words)
                    }
                    (_, true) => aligned_words::<BigEndian, 8>(address, contents).for_each(words),
                }
            }
        }
    }

    /// [`Scanner::pointer_words`] for a run of offsets `(first, stride,
    /// count)` ([`PointerOffsetsIter::next_run`]). Offsets grow along a
    /// run: it stops at the first that does not fit; a run of stride 0
    /// repeats one word, read once.
    ///
    /// [`PointerOffsetsIter::next_run`]: crate::dump::PointerOffsetsIter::next_run
    fn run_words(
        &self,
        (first, stride, count): (u64, u64, u64),
        contents: &[u8],
        word: &mut impl FnMut(u64, u64),
    ) {
        let count = if stride == 0 { count.min(1) } else { count };
        let mut offset = first;
        for _ in 0..count {
            let Some(value) = self.dump.info.word_at(contents, offset) else {
                return;
            };
            word(offset, value);
            offset = offset.saturating_add(stride);
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
                self.pointer_words(
                    root.address,
                    root.contents,
                    root.pointers,
                    None,
                    &mut |offset, value| {
                        if let Some(target) = self.resolve(value) {
                            found.push(RootReference {
                                root: id,
                                offset,
                                target,
                            });
                        }
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
    ///
    /// The pointer words whose value lies in the indexed address range are
    /// gathered ([`Word`]), in object order, up to [`WORDS_PER_FLUSH`] at a
    /// time (whatever the objects' sizes); then resolved in batches
    /// ([`Scanner::resolve_words`]), and grouped back by object
    /// ([`TaskScan`]).
    fn scan_objects(&self, range: Range<usize>) -> TaskEdges {
        let objects = self.dump.objects.get(range.clone()).unwrap_or(&[]);
        let mut scan = TaskScan {
            first: range.start,
            words: Vec::new(),
            open: 0,
            targets: Vec::new(),
            weak_targets: Vec::new(),
            edges: TaskEdges {
                counts: Vec::with_capacity(objects.len()),
                ..TaskEdges::default()
            },
        };
        for (local, object) in objects.iter().enumerate() {
            let weak: &[u64] = object
                .pointer_list()
                .and_then(|list| self.weak.get(list.index()))
                .copied()
                .unwrap_or(&[]);
            // Tasks hold at most TASK_OBJECTS objects: the local index
            // leaves WEAK_BIT free.
            self.gather(local as u32, object, weak, &mut scan);
        }
        self.flush(&mut scan);
        scan.close_until(objects.len() as u32);
        scan.edges
    }

    /// Resolves the words gathered so far and hands them to their objects.
    fn flush(&self, scan: &mut TaskScan) {
        let mut words = std::mem::take(&mut scan.words);
        let one_object = match (words.first(), words.last()) {
            (Some(first), Some(last)) => first.source & !WEAK_BIT == last.source & !WEAK_BIT,
            _ => false,
        };
        if one_object && words.len() >= WORDS_PER_FLUSH {
            // A big object (a map's table of millions of slots) would keep
            // its task's worker busy long after the others have finished
            // their wave: its words are resolved in parallel.
            words
                .par_chunks_mut(WORDS_PER_FLUSH / 8)
                .for_each(|chunk| self.resolve_words(chunk));
        } else {
            self.resolve_words(&mut words);
        }
        for word in &words {
            scan.close_until(word.source & !WEAK_BIT);
            let Ok(target) = u32::try_from(word.value) else {
                continue;
            };
            if word.source & WEAK_BIT != 0 {
                scan.weak_targets.push(target);
            } else {
                scan.targets.push((target, word.offset));
            }
        }
        words.clear();
        scan.words = words;
    }

    /// Adds to `scan` the pointer words of `object` (the words its
    /// layout lists, or every aligned word when it is unknown) whose value
    /// may point into an object, as object `local` of its task; `weak` are
    /// its weak offsets.
    fn gather(&self, local: u32, object: &Object, weak: &[u64], scan: &mut TaskScan) {
        let runs = object.pointer_list().and_then(|list| {
            let layouts = self.layouts.as_ref()?;
            layouts.runs.get(layouts.lists.get(list.index())?.clone())
        });
        self.pointer_words(
            object.address,
            self.dump.contents(object),
            self.dump.pointers(object),
            runs,
            &mut |offset, value| self.push_word(scan, local, offset, value, weak),
        );
    }

    /// Appends a word to `words` if its value lies in the indexed range
    /// (only those can point into an object).
    #[inline]
    fn push_word(&self, scan: &mut TaskScan, local: u32, offset: u64, value: u64, weak: &[u64]) {
        if !self.index.spans(value) {
            return;
        }
        let weak_bit = if !weak.is_empty() && weak.contains(&offset) {
            WEAK_BIT
        } else {
            0
        };
        scan.words.push(Word {
            value,
            source: local | weak_bit,
            offset: u32::try_from(offset).unwrap_or(u32::MAX),
        });
        if scan.words.len() >= WORDS_PER_FLUSH {
            self.flush(scan);
        }
    }

    /// Replaces each word's value with the id of the object it points into,
    /// or `u64::MAX` for none. In batches of [`RESOLVE_BATCH`] words: first
    /// the batch's cards are read ([`AddressIndex::probe`]), then the object
    /// each lookup reads next, then each lookup ends
    /// ([`AddressIndex::settle`]); the reads of a step do not depend on each
    /// other, so the processor waits for their cache misses together rather
    /// than one after the other.
    fn resolve_words(&self, words: &mut [Word]) {
        let index = self.index;
        let objects = &self.dump.objects[..];
        for batch in words.chunks_mut(RESOLVE_BATCH) {
            let mut probes = [Probe::Outside; RESOLVE_BATCH];
            for (word, probe) in batch.iter().zip(probes.iter_mut()) {
                *probe = index.probe(word.value);
            }
            let mut touched = 0u64;
            for probe in probes.iter().take(batch.len()) {
                if let Some(read) = probe.next_read() {
                    touched ^= objects.get(read).map_or(0, |object| object.address);
                }
            }
            std::hint::black_box(touched);
            for (word, &probe) in batch.iter_mut().zip(probes.iter()) {
                word.value = index
                    .settle(objects, probe, word.value)
                    .map_or(u64::MAX, |id| u64::from(id.0));
            }
        }
    }
}

/// Sorts `items`: by insertion when there are a few (most objects hold a
/// few references), cheaper than the general sort there; in parallel when
/// there are very many (a big object's).
fn sort_targets(items: &mut [(u32, u32)]) {
    if items.len() >= PARALLEL_SORT {
        items.par_sort_unstable();
        return;
    }
    if items.len() > 12 {
        items.sort_unstable();
        return;
    }
    for next in 1..items.len() {
        let mut at = next;
        while at > 0 && items[at - 1] > items[at] {
            items.swap(at - 1, at);
            at -= 1;
        }
    }
}

/// A scan task's state: the words gathered and not yet resolved, and the
/// edges of the objects before them.
struct TaskScan {
    /// Index of the task's first object.
    first: usize,
    /// Words gathered, in object order.
    words: Vec<Word>,
    /// The object (index in the task) whose targets are being collected:
    /// the ones before it have their edges.
    open: u32,
    /// Its targets so far, with their offsets.
    targets: Vec<(u32, u32)>,
    /// Its weak targets so far.
    weak_targets: Vec<u32>,
    edges: TaskEdges,
}

impl TaskScan {
    /// Writes the edges of the objects before `local` (the open one and
    /// the ones after it that had no words).
    fn close_until(&mut self, local: u32) {
        while self.open < local {
            let targets = &mut self.targets;
            // Sorted by target then offset, the first of each target has
            // the lowest offset.
            if targets.len() > 1 {
                sort_targets(targets);
                targets.dedup_by_key(|(target, _)| *target);
            }
            let edges = &mut self.edges;
            edges.counts.push(targets.len() as u32);
            edges
                .targets
                .extend(targets.iter().map(|&(target, _)| target));
            edges
                .fields
                .extend(targets.iter().map(|&(_, offset)| offset));
            targets.clear();
            if !self.weak_targets.is_empty() {
                self.weak_targets.sort_unstable();
                self.weak_targets.dedup();
                let source = (self.first + self.open as usize) as u32;
                edges
                    .weak
                    .extend(self.weak_targets.iter().map(|&target| (source, target)));
                self.weak_targets.clear();
            }
            self.open += 1;
        }
    }
}

/// Words a scan task gathers before it resolves them: 64 KiB, a small
/// allocation that the allocator reuses from task to task.
const WORDS_PER_FLUSH: usize = 1 << 12;

/// A word of a scan task's objects that may be a pointer.
#[derive(Clone, Copy, Debug)]
struct Word {
    /// The word's value; once resolved, the id of the object it points
    /// into, or `u64::MAX` for none.
    value: u64,
    /// Index of the object in its task, with [`WEAK_BIT`] for a weak word.
    source: u32,
    /// Offset of the word in the object (`u32::MAX` for 4 GiB and more).
    offset: u32,
}

/// An object's target count from which its list is sorted in parallel.
const PARALLEL_SORT: usize = 1 << 16;

/// Bit of [`Word::source`] marking a weak pointer word.
const WEAK_BIT: u32 = 1 << 31;

/// Words resolved together by [`Scanner::resolve_words`].
const RESOLVE_BATCH: usize = 16;

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{HeapGraph, ObjectId};
    use crate::dump::{Dump, DumpInfo, Object, PointerOffsets, Root, RootKind};
    use crate::test_support::{layout, naive, Rng};

    /// A word of the dump's size and order.
    fn word_bytes(value: u64, pointer_size: u8, big_endian: bool) -> Vec<u8> {
        match (pointer_size, big_endian) {
            (4, false) => (value as u32).to_le_bytes().to_vec(),
            (4, true) => (value as u32).to_be_bytes().to_vec(),
            (_, false) => value.to_le_bytes().to_vec(),
            (_, true) => value.to_be_bytes().to_vec(),
        }
    }

    /// A value for a word: into an object (its start, inside it, one past
    /// its end), into a gap, outside every object, or small.
    fn value(rng: &mut Rng, spans: &[(u64, u64)]) -> u64 {
        let (address, size) = spans[rng.below(spans.len() as u64) as usize];
        match rng.below(6) {
            0 => address,
            1 => address + rng.below(size.max(1)),
            2 => address + size,
            3 => address + size.max(1) + 1,
            4 => rng.below(0x100),
            _ => u64::MAX - rng.below(0x100),
        }
    }

    /// A dump of `spans` whose contents hold random values; every third
    /// object has an exact layout (single offsets, some at equal steps, a
    /// run, a run of stride 0, a run past the end), half of them with a
    /// weak offset; its own, or when `shared` one of eight; plus a root.
    fn dump(
        rng: &mut Rng,
        spans: &[(u64, u64)],
        pointer_size: u8,
        big_endian: bool,
        shared: bool,
    ) -> Dump<'static> {
        let word = u64::from(pointer_size);
        let mut dump = Dump::new(DumpInfo {
            format: "test",
            pointer_size,
            big_endian,
            sample_rate: 1,
            ..DumpInfo::default()
        });
        let mut data = Vec::new();
        let mut objects = Vec::new();
        let mut made = Vec::new();
        for (index, &(address, size)) in spans.iter().enumerate() {
            let mut object = Object::new(address, size, None, data.len() as u64);
            // Whole words, then the odd bytes.
            let mut bytes = Vec::new();
            while (bytes.len() as u64) < size {
                bytes.extend(word_bytes(value(rng, spans), pointer_size, big_endian));
            }
            bytes.truncate(size as usize);
            data.extend(bytes);
            if index % 3 == 1 {
                // Lists of their own, or (decoded once) shared ones.
                let reused = made
                    .get(index % 8)
                    .copied()
                    .filter(|_| shared && made.len() >= 8);
                let list = match reused {
                    Some(list) => list,
                    None => {
                        let mut encoded = PointerOffsets::encode([word, 0, word, 3, 3 * word]);
                        encoded.pop();
                        let run =
                            PointerOffsets::encode_run(0, word, rng.below(2 * size / word + 2));
                        encoded.extend(&run[..run.len() - 1]);
                        let still = PointerOffsets::encode_run(word, 0, 5);
                        encoded.extend(&still[..still.len() - 1]);
                        encoded.extend(&PointerOffsets::encode([4 * word, 5 * word, 6 * word]));
                        let list = dump
                            .push_pointer_list_encoded(Cow::Owned(encoded))
                            .expect("few lists");
                        if index % 2 == 0 {
                            dump.weak_pointers.push((list, vec![word]));
                        }
                        made.push(list);
                        list
                    }
                };
                object.set_pointer_list(Some(list));
            }
            objects.push(object);
        }
        let root: Vec<u8> = (0..8)
            .flat_map(|_| word_bytes(value(rng, spans), pointer_size, big_endian))
            .collect();
        dump.data = Vec::leak(data);
        dump.objects = objects;
        dump.roots = vec![Root::new(
            RootKind::Segment { module_id: 0 },
            0,
            Vec::leak(root),
        )];
        dump
    }

    /// Checks every object's references, weak references and the roots'
    /// references against a naive scan.
    fn check(graph: &HeapGraph<'_>) {
        let dump = graph.dump();
        let objects = &dump.objects;
        let word = u64::from(dump.info.pointer_size);
        let weak_of = |object: &Object| -> Vec<u64> {
            dump.weak_pointers
                .iter()
                .filter(|(list, _)| Some(*list) == object.pointer_list())
                .flat_map(|(_, offsets)| offsets.clone())
                .collect()
        };
        let mut references = 0;
        for (id, object) in graph.objects() {
            let contents = dump.contents(object);
            let offsets: Vec<u64> = match dump.pointers(object).exact() {
                Some(offsets) => offsets.iter().take(10_000).collect(),
                None => (0..contents.len() as u64 / word)
                    .map(|index| index * word + (word - object.address % word) % word)
                    .collect(),
            };
            let weak = weak_of(object);
            let mut strong: Vec<(u32, u32)> = Vec::new();
            let mut weak_targets: Vec<u32> = Vec::new();
            for offset in offsets {
                let Some(value) = dump.info.word_at(contents, offset) else {
                    continue;
                };
                let Some(target) = naive(objects, value) else {
                    continue;
                };
                if weak.contains(&offset) {
                    weak_targets.push(target.0);
                } else {
                    strong.push((target.0, offset as u32));
                }
            }
            strong.sort_unstable();
            strong.dedup_by_key(|(target, _)| *target);
            weak_targets.sort_unstable();
            weak_targets.dedup();
            let found: Vec<(u32, u32)> = graph
                .references(id)
                .map(|(target, offset)| (target.0, offset))
                .collect();
            assert_eq!(found, strong, "references of {id} at {:#x}", object.address);
            let found_weak: Vec<u32> = graph.weak_references(id).map(|target| target.0).collect();
            assert_eq!(found_weak, weak_targets, "weak references of {id}");
            references += strong.len();
        }
        assert!(references > 0);
        let root = &dump.roots[0];
        let expected: Vec<(u64, u32)> = (0..root.contents.len() as u64 / word)
            .filter_map(|index| {
                let value = dump.info.word_at(root.contents, index * word)?;
                Some((index * word, naive(objects, value)?.0))
            })
            .collect();
        let found: Vec<(u64, u32)> = graph
            .root_references()
            .iter()
            .map(|reference| (reference.offset, reference.target.0))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn batched_scan_matches_a_naive_one() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let cases: [(u8, bool, &[u64]); 5] = [
            // Dense: one part of 256-byte cards.
            (8, false, &[0x5555_0000_1000]),
            // A heap and mappings far apart: the index is cut at the gaps.
            (8, false, &[0x1000, 0x5555_0000_0000, 0x7f00_0000_0000]),
            (8, true, &[0x10_0000, 0x7000_0000_0000]),
            (4, false, &[0x1000, 0x4000_0000, 0xf000_0000]),
            (4, true, &[0x8000, 0x9000_0000]),
        ];
        for (pointer_size, big_endian, clusters) in cases {
            let spans = layout(&mut rng, clusters, 700);
            for shared in [false, true] {
                let dump = dump(&mut rng, &spans, pointer_size, big_endian, shared);
                let graph = HeapGraph::build(dump, &mut |_, _| {});
                assert_eq!(graph.index.segments.len(), clusters.len());
                let decoded = graph.dump().pointer_lists.len() <= 8;
                assert_eq!(decoded, shared);
                check(&graph);
            }
        }
    }

    /// Waves are appended to the CSR while the next is scanned: a build in
    /// many waves gives the graph of a build in one.
    #[test]
    fn many_waves_give_the_graph_of_one() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        // Three tasks of TASK_OBJECTS objects or fewer.
        let spans = layout(&mut rng, &[0x10_0000], 2 * super::TASK_OBJECTS + 100);
        let made = dump(&mut rng, &spans, 8, false, true);
        let one = HeapGraph::build_in_waves(made.clone(), &mut |_, _| {}, u64::MAX);
        let mut waves = 0;
        let many = HeapGraph::build_in_waves(made, &mut |_, _| waves += 1, 1);
        assert!(waves >= 4, "{waves} progress calls");
        check(&many);
        assert_eq!(many.csr(), one.csr());
        assert_eq!(many.weak, one.weak);
        assert!(many.reference_count() > 0);
    }

    #[test]
    fn an_object_of_more_words_than_a_flush_is_scanned_whole() {
        let mut rng = Rng(5);
        // Words resolved in parallel (whole flushes of one object); then
        // also more targets than PARALLEL_SORT, sorted in parallel.
        let word_counts = [super::WORDS_PER_FLUSH * 5 / 2, super::PARALLEL_SORT * 3];
        for words in word_counts {
            let mut spans = vec![(0x10_0000, 8 * words as u64)];
            spans.extend(layout(&mut rng, &[0x100_0000], 50));
            let dump = dump(&mut rng, &spans, 8, false, false);
            let graph = HeapGraph::build(dump, &mut |_, _| {});
            assert!(graph.references(ObjectId(0)).len() >= 50);
            check(&graph);
        }
    }

    #[test]
    fn objects_out_of_order_are_sorted_first() {
        let mut rng = Rng(42);
        let spans = layout(&mut rng, &[0x1000, 0x6000_0000_0000], 300);
        let mut dump = dump(&mut rng, &spans, 8, false, true);
        dump.objects.reverse();
        let graph = HeapGraph::build(dump, &mut |_, _| {});
        assert!(graph
            .objects()
            .collect::<Vec<_>>()
            .windows(2)
            .all(|pair| pair[0].1.address < pair[1].1.address));
        check(&graph);
    }

    #[test]
    fn row_starts_widen_past_u32() {
        let mut rows = super::RowStarts::default();
        let starts = [0, 7, u64::from(u32::MAX), u64::from(u32::MAX) + 1, 1 << 40];
        for (index, &start) in starts.iter().enumerate() {
            rows.push(start);
            assert_eq!(
                matches!(rows, super::RowStarts::Wide(_)),
                start > u64::from(u32::MAX)
            );
            for (earlier, &expected) in starts.iter().enumerate().take(index + 1) {
                assert_eq!(rows.get(earlier), Some(expected as usize));
            }
        }
        assert_eq!(rows.len(), starts.len());
        assert_eq!(rows.get(starts.len()), None);
    }

    #[test]
    fn runs_give_the_offsets_of_the_list() {
        let mut rng = Rng(99);
        let mut lists: Vec<Vec<u8>> = vec![
            vec![0],
            vec![],
            PointerOffsets::encode([8, 0, 24]),
            PointerOffsets::encode_run(16, 8, 4),
            PointerOffsets::encode_run(16, 0, 0),
        ];
        for _ in 0..200 {
            let mut list: Vec<u8> = (0..rng.below(12)).map(|_| rng.below(4) as u8).collect();
            if rng.below(2) == 0 {
                list.extend(PointerOffsets::encode_run(
                    rng.below(100),
                    rng.below(3),
                    rng.below(5),
                ));
            }
            lists.push(list);
        }
        for list in &lists {
            let offsets = PointerOffsets::from_field_list(list);
            let expected: Vec<u64> = offsets.iter().take(1000).collect();
            let mut iter = offsets.iter();
            let mut flat = Vec::new();
            while let Some((first, stride, count)) = iter.next_run() {
                assert!(count > 0);
                let mut offset = first;
                for _ in 0..count.min(1000) {
                    flat.push(offset);
                    offset = offset.saturating_add(stride);
                }
                if flat.len() >= 1000 {
                    break;
                }
            }
            flat.truncate(1000);
            assert_eq!(flat, expected, "{list:?}");
        }
    }
}
