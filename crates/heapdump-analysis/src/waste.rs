//! `heapdump waste`: memory spent on copies of one value and on collections
//! that hold little or nothing, in the spirit of Eclipse MAT's
//! `group_by_value` and its collection fill ratios.
//!
//! Three sections, each over the reachable objects only (unreachable ones
//! are garbage, not waste):
//!
//! - **Duplicate strings**: objects the format reads as text
//!   ([`Dump::object_text`](heapdump_reader::Dump::object_text): Java's
//!   `String`), grouped by class and text. A copy's size is its retained
//!   size (the string and the value array it holds alone; a value array
//!   shared by several strings belongs to none of them), and a group
//!   wastes all its copies' bytes but the largest one's.
//! - **Duplicate values**: objects without references (byte arrays and
//!   other primitive arrays, buffers, boxed numbers: an exact pointer
//!   layout with no pointer, or an unknown layout and no reference found)
//!   grouped by class, size and contents; a group wastes `(count - 1) ×
//!   size`. The value array a string holds alone is counted with its
//!   string, not here.
//! - **Empty and sparse collections**, where the dump names collection
//!   classes and their backing-array fields ([`COLLECTIONS`]: Java's
//!   `java.util.HashMap` `table`, `ArrayList` `elementData`, ...,
//!   recognised by type name and
//!   [`Dump::field_name`](heapdump_reader::Dump::field_name)); a format
//!   that names none has no rows here. A collection is empty when its
//!   backing array is missing or has no non-null slot (it wastes its
//!   retained size), sparse when the array has more than
//!   [`SPARSE_MIN_SLOTS`] slots and at most one in
//!   [`SPARSE_FRACTION`] is used (it wastes the bytes of the unused slots).
//!
//! Each row names its top referrers: the class of the objects that point
//! at its members and, where the format names fields, the field (array
//! elements as `[]`), or the kind of root.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use heapdump_reader::{HeapGraph, Object, ObjectClass, ObjectId, Pointers};
use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::{Analysis, Dominator, Reachability};
use crate::class::{Classifier, Grouping};
use crate::reach::Bits;

/// Collection classes whose emptiness the report can judge from the
/// references alone: the class's type name and the field that holds its
/// backing array (a hash table's buckets, a list's elements).
pub const COLLECTIONS: &[(&str, &str)] = &[
    ("java.util.HashMap", "table"),
    ("java.util.LinkedHashMap", "table"),
    ("java.util.Hashtable", "table"),
    ("java.util.WeakHashMap", "table"),
    ("java.util.IdentityHashMap", "table"),
    ("java.util.concurrent.ConcurrentHashMap", "table"),
    ("java.util.ArrayList", "elementData"),
    ("java.util.Vector", "elementData"),
    ("java.util.ArrayDeque", "elements"),
];

/// A backing array with at most this many slots is never called sparse
/// (Java's default capacities are 10 and 16).
pub const SPARSE_MIN_SLOTS: u64 = 16;

/// A collection is sparse when at most one slot in this many is used.
pub const SPARSE_FRACTION: u64 = 8;

/// The most characters (or bytes, shown in hex) of a value a preview shows.
pub const PREVIEW_CHARS: usize = 40;

/// Options of the [`waste`] report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WasteOptions {
    /// Rows per section.
    pub limit: usize,
    /// Referrers per row.
    pub referrers: usize,
}

impl Default for WasteOptions {
    fn default() -> Self {
        WasteOptions {
            limit: 20,
            referrers: 3,
        }
    }
}

/// Objects of one class that point at a row's members, through one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Referrer {
    /// The referring objects' class, or `root: <kind>` for roots.
    pub class: String,
    /// The field they point from, where the format names fields (array
    /// elements as `[]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// References from there to the row's members.
    pub count: u64,
}

/// Copies of one value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DuplicateGroup {
    /// The copies' class.
    pub class: String,
    /// Number of copies.
    pub count: u64,
    /// Bytes of one copy (the largest, for strings: their retained sizes
    /// may differ).
    pub size: u64,
    /// Bytes of all copies.
    pub bytes: u64,
    /// Bytes the copies beyond one take: `bytes - size`.
    pub wasted_bytes: u64,
    /// Length of the value: characters of a string, bytes of a value.
    pub length: u64,
    /// The value, short: a string's text or a value's bytes as text when
    /// they are printable, else in hex.
    pub preview: String,
    /// Address of one copy.
    pub example: u64,
    /// Who points at the copies, most references first.
    pub referrers: Vec<Referrer>,
}

/// Duplicates of one kind: totals over every group, the biggest groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DuplicateSection {
    /// Objects examined (reachable strings, or reachable objects without
    /// references).
    pub examined: u64,
    /// Groups of two or more copies.
    pub groups: u64,
    /// Copies beyond the first of every group.
    pub extra_copies: u64,
    /// Bytes wasted over every group.
    pub wasted_bytes: u64,
    /// The groups wasting most, at most [`WasteOptions::limit`].
    pub rows: Vec<DuplicateGroup>,
}

/// Whether a collection holds nothing or little.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionState {
    /// No backing array, or no used slot in it.
    Empty,
    /// More than [`SPARSE_MIN_SLOTS`] slots, at most one in
    /// [`SPARSE_FRACTION`] used.
    Sparse,
}

/// Empty or sparse collections of one class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CollectionRow {
    /// The collections' class.
    pub class: String,
    /// Empty or sparse.
    pub state: CollectionState,
    /// Number of such collections.
    pub count: u64,
    /// Slots of their backing arrays, together.
    pub slots: u64,
    /// Of which used (non-null).
    pub used: u64,
    /// Bytes wasted: the retained sizes of empty collections, the unused
    /// slots' bytes of sparse ones.
    pub wasted_bytes: u64,
    /// Address of one of them.
    pub example: u64,
    /// Who points at them, most references first.
    pub referrers: Vec<Referrer>,
}

/// Empty and sparse collections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CollectionSection {
    /// Reachable objects of a collection class the report knows
    /// ([`COLLECTIONS`]); 0 when the dump names none (then the section
    /// says nothing about the heap).
    pub examined: u64,
    /// Empty ones.
    pub empty: u64,
    /// Sparse ones.
    pub sparse: u64,
    /// Bytes wasted over all of them.
    pub wasted_bytes: u64,
    /// By class and state, most wasted first, at most
    /// [`WasteOptions::limit`].
    pub rows: Vec<CollectionRow>,
}

/// The waste report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WasteReport {
    /// Reachable objects.
    pub reachable_objects: u64,
    /// Their bytes.
    pub reachable_bytes: u64,
    /// Copies of one string.
    pub strings: DuplicateSection,
    /// Copies of one value among objects without references.
    pub values: DuplicateSection,
    /// Empty and sparse collections.
    pub collections: CollectionSection,
}

/// Objects per parallel task.
const CHUNK: usize = 16 * 1024;

/// The waste in `graph`'s reachable heap.
pub fn waste(graph: &HeapGraph<'_>, analysis: &Analysis, options: &WasteOptions) -> WasteReport {
    let dump = graph.dump();
    let classes = Classifier::new(graph, Grouping::Class);
    let reachable =
        |id: usize| analysis.reachabilities().get(id).copied() == Some(Reachability::Reachable);

    // Strings: (hash of class and text, id), in object order.
    let strings: Vec<(u64, u32)> = dump
        .objects
        .par_chunks(CHUNK)
        .enumerate()
        .flat_map_iter(|(chunk, objects)| {
            let first = chunk * CHUNK;
            objects.iter().enumerate().filter_map(move |(i, object)| {
                let id = first + i;
                if !reachable(id) {
                    return None;
                }
                let text = dump.object_text(object)?;
                let mut hasher = WordHasher::default();
                hasher.write_u64(classes.group_of(object) as u64);
                hasher.write(text.as_bytes());
                Some((hasher.finish(), u32::try_from(id).ok()?))
            })
        })
        .collect();
    let mut string_set = Bits::new(dump.objects.len());
    for &(_, id) in &strings {
        string_set.insert(id as usize);
    }
    let is_string = |id: ObjectId| string_set.contains(id.index());

    // Values: objects without references, not a string's own array.
    let values: Vec<(u64, u32)> = dump
        .objects
        .par_chunks(CHUNK)
        .enumerate()
        .flat_map_iter(|(chunk, objects)| {
            let first = chunk * CHUNK;
            let is_string = &is_string;
            objects.iter().enumerate().filter_map(move |(i, object)| {
                let id = ObjectId(u32::try_from(first + i).ok()?);
                if !reachable(id.index()) || !is_leaf(graph, id, object) {
                    return None;
                }
                let contents = dump.contents(object);
                if object.size == 0 || contents.is_empty() || is_string(id) {
                    return None;
                }
                if let Some(Dominator::Object(holder)) = analysis.immediate_dominator(id) {
                    if is_string(holder) {
                        return None;
                    }
                }
                let mut hasher = WordHasher::default();
                hasher.write_u64(classes.group_of(object) as u64);
                hasher.write_u64(object.size);
                hasher.write(contents);
                Some((hasher.finish(), id.0))
            })
        })
        .collect();

    let strings_examined = strings.len() as u64;
    let values_examined = values.len() as u64;
    let string_groups = duplicate_groups(strings, |a, b| {
        let (a, b) = (object_of(graph, a), object_of(graph, b));
        let class = |object: Option<&Object>| object.map(|object| classes.group_of(object));
        let text = |object: Option<&Object>| object.and_then(|object| dump.object_text(object));
        (class(a), text(a)).cmp(&(class(b), text(b)))
    });
    let value_groups = duplicate_groups(values, |a, b| {
        let key = |id: u32| {
            object_of(graph, id)
                .map(|object| (classes.group_of(object), object.size, dump.contents(object)))
        };
        key(a).cmp(&key(b))
    });
    let collections = collections(graph, analysis);

    let retained = |id: u32| analysis.retained_size_of(ObjectId(id)).unwrap_or(0);
    let shallow = |id: u32| object_of(graph, id).map_or(0, |object| object.size);
    let mut strings_section = section(
        graph,
        &string_groups,
        strings_examined,
        retained,
        Preview::Text,
        options,
    );
    let mut values_section = section(
        graph,
        &value_groups,
        values_examined,
        shallow,
        Preview::Contents,
        options,
    );
    let (mut collections_section, collection_members) =
        collection_section(graph, &classes, &collections, options);

    // Referrers of every row shown: rows numbered across the sections.
    let mut members: Vec<&[u32]> = Vec::new();
    members.extend(strings_section.1.iter().copied());
    members.extend(values_section.1.iter().copied());
    members.extend(collection_members.iter().map(Vec::as_slice));
    let mut referrers = referrers(graph, &members, options.referrers).into_iter();
    for (row, found) in strings_section.0.rows.iter_mut().zip(&mut referrers) {
        row.referrers = found;
    }
    for (row, found) in values_section.0.rows.iter_mut().zip(&mut referrers) {
        row.referrers = found;
    }
    for (row, found) in collections_section.rows.iter_mut().zip(&mut referrers) {
        row.referrers = found;
    }

    WasteReport {
        reachable_objects: analysis.reachable_objects(),
        reachable_bytes: analysis.reachable_bytes(),
        strings: strings_section.0,
        values: values_section.0,
        collections: collections_section,
    }
}

/// How rows name an object's class: its type, or its shape (size and
/// pointer layout) where the dump has no type; finer than the size
/// classes that group untyped objects in `top`.
fn class_name(graph: &HeapGraph<'_>, object: &Object) -> String {
    let dump = graph.dump();
    dump.class_name(&dump.object_class(object))
}

/// The object numbered `id`.
fn object_of<'g>(graph: &'g HeapGraph<'_>, id: u32) -> Option<&'g Object> {
    graph.object(ObjectId(id))
}

/// Whether `object` holds no reference: its layout has no pointer word,
/// or it is unknown and the scan found none.
fn is_leaf(graph: &HeapGraph<'_>, id: ObjectId, object: &Object) -> bool {
    match graph.dump().pointers(object) {
        Pointers::Exact(offsets) => offsets.is_empty(),
        Pointers::Unknown => graph.references(id).len() == 0,
    }
}

/// Groups of two or more candidates with equal values: candidates are
/// sorted by hash, and each run of one hash is split by `compare` (which
/// orders values, so equal ones end up side by side).
fn duplicate_groups(
    mut candidates: Vec<(u64, u32)>,
    compare: impl Fn(u32, u32) -> std::cmp::Ordering + Sync,
) -> Vec<Vec<u32>> {
    candidates.par_sort_unstable();
    let runs: Vec<&[(u64, u32)]> = candidates
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|run| run.len() > 1)
        .collect();
    runs.into_par_iter()
        .flat_map_iter(|run| {
            let mut ids: Vec<u32> = run.iter().map(|&(_, id)| id).collect();
            ids.sort_by(|&a, &b| compare(a, b).then(a.cmp(&b)));
            let groups: Vec<Vec<u32>> = ids
                .chunk_by(|&a, &b| compare(a, b).is_eq())
                .filter(|group| group.len() > 1)
                .map(<[u32]>::to_vec)
                .collect();
            groups
        })
        .collect()
}

/// How a section previews its values.
#[derive(Clone, Copy)]
enum Preview {
    /// The object's text.
    Text,
    /// The object's contents.
    Contents,
}

/// A section of duplicates from its groups, with the members of each row
/// shown (for their referrers).
fn section<'a>(
    graph: &HeapGraph<'_>,
    groups: &'a [Vec<u32>],
    examined: u64,
    size_of: impl Fn(u32) -> u64 + Sync,
    preview: Preview,
    options: &WasteOptions,
) -> (DuplicateSection, Vec<&'a [u32]>) {
    // (wasted, bytes, largest, group index)
    let mut sized: Vec<(u64, u64, u64, usize)> = groups
        .par_iter()
        .enumerate()
        .map(|(index, members)| {
            let (bytes, largest) = members.iter().fold((0u64, 0u64), |(sum, max), &id| {
                let size = size_of(id);
                (sum.saturating_add(size), max.max(size))
            });
            (bytes - largest, bytes, largest, index)
        })
        .collect();
    let mut section = DuplicateSection {
        examined,
        groups: groups.len() as u64,
        extra_copies: groups.iter().map(|group| group.len() as u64 - 1).sum(),
        wasted_bytes: sized
            .iter()
            .fold(0u64, |sum, row| sum.saturating_add(row.0)),
        rows: Vec::new(),
    };
    let dump = graph.dump();
    // Most wasted first; ties by count, then by the first member (stable
    // across runs).
    sized.sort_unstable_by(|a, b| {
        let first = |index: usize| groups.get(index).and_then(|group| group.first()).copied();
        b.0.cmp(&a.0)
            .then_with(|| {
                let count = |index: usize| groups.get(index).map_or(0, Vec::len);
                count(b.3).cmp(&count(a.3))
            })
            .then_with(|| first(a.3).cmp(&first(b.3)))
    });
    let mut shown = Vec::new();
    for &(wasted, bytes, largest, index) in sized.iter().take(options.limit) {
        let Some(members) = groups.get(index) else {
            continue;
        };
        let Some(object) = members.first().and_then(|&id| object_of(graph, id)) else {
            continue;
        };
        let (length, preview) = match preview {
            Preview::Text => {
                let text = dump.object_text(object).unwrap_or_default();
                (text.chars().count() as u64, preview_text(&text))
            }
            Preview::Contents => {
                let contents = dump.contents(object);
                (contents.len() as u64, preview_bytes(contents))
            }
        };
        section.rows.push(DuplicateGroup {
            class: class_name(graph, object),
            count: members.len() as u64,
            size: largest,
            bytes,
            wasted_bytes: wasted,
            length,
            preview,
            example: object.address,
            referrers: Vec::new(),
        });
        shown.push(members.as_slice());
    }
    (section, shown)
}

/// `text` quoted and escaped, cut at [`PREVIEW_CHARS`] characters.
fn preview_text(text: &str) -> String {
    let cut: String = text.chars().take(PREVIEW_CHARS).collect();
    let mut out = format!("{cut:?}");
    if cut.len() < text.len() {
        out.push('…');
    }
    out
}

/// `bytes` as text when they are printable UTF-8 (trailing zero bytes
/// left out), else the first [`PREVIEW_CHARS`]/2 bytes in hex.
fn preview_bytes(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    if end == 0 {
        return "all zero".to_owned();
    }
    let trimmed = bytes.get(..end).unwrap_or(&[]);
    if let Ok(text) = std::str::from_utf8(trimmed) {
        if !text.is_empty()
            && text
                .chars()
                .all(|c| !c.is_control() || c == '\n' || c == '\t')
        {
            let mut out = preview_text(text);
            if end < bytes.len() {
                out.push_str(&format!(" + {} zero bytes", bytes.len() - end));
            }
            return out;
        }
    }
    let shown = PREVIEW_CHARS / 2;
    let mut out: Vec<String> = bytes
        .iter()
        .take(shown)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if bytes.len() > shown {
        out.push("…".to_owned());
    }
    out.join(" ")
}

/// One collection the report judged empty or sparse.
#[derive(Clone, Copy, Debug)]
struct Collection {
    id: u32,
    state: CollectionState,
    slots: u64,
    used: u64,
    wasted: u64,
}

/// The reachable collections of a class in [`COLLECTIONS`] that are empty
/// or sparse; and how many such collections there are in all.
fn collections(graph: &HeapGraph<'_>, analysis: &Analysis) -> (Vec<Collection>, u64) {
    let dump = graph.dump();
    // The backing field of each type the dump names, by type index.
    let fields: Vec<Option<&str>> = dump
        .types
        .iter()
        .map(|info| {
            COLLECTIONS
                .iter()
                .find(|(name, _)| *name == info.name)
                .map(|&(_, field)| field)
        })
        .collect();
    if fields.iter().all(Option::is_none) {
        return (Vec::new(), 0);
    }
    let word = usize::from(dump.info.pointer_size.max(1));
    let judged: Vec<Option<Collection>> = dump
        .objects
        .par_iter()
        .enumerate()
        .filter_map(|(index, object)| {
            let field = fields
                .get(object.type_index()?.index())
                .copied()
                .flatten()?;
            let id = ObjectId(u32::try_from(index).ok()?);
            if analysis.reachability(id) != Reachability::Reachable {
                return None;
            }
            let array = graph.references(id).find_map(|(target, offset)| {
                (dump.field_name(object, u64::from(offset)).as_deref() == Some(field))
                    .then_some(target)
            });
            let (slots, used, array_size) =
                match array.and_then(|array| graph.object(array).map(|object| (array, object))) {
                    None => (0, 0, 0),
                    Some((_, array)) => {
                        let contents = dump.contents(array);
                        let (mut slots, mut used) = (0u64, 0u64);
                        if let Pointers::Exact(offsets) = dump.pointers(array) {
                            for offset in offsets.iter() {
                                slots += 1;
                                let word = usize::try_from(offset)
                                    .ok()
                                    .and_then(|at| contents.get(at..at.checked_add(word)?));
                                if word.is_some_and(|word| word.iter().any(|&b| b != 0)) {
                                    used += 1;
                                }
                            }
                        }
                        (slots, used, array.size)
                    }
                };
            let state = if used == 0 {
                CollectionState::Empty
            } else if slots > SPARSE_MIN_SLOTS && used.saturating_mul(SPARSE_FRACTION) <= slots {
                CollectionState::Sparse
            } else {
                return Some(None);
            };
            let wasted = match state {
                CollectionState::Empty => analysis.retained_size_of(id).unwrap_or(object.size),
                CollectionState::Sparse => {
                    // The unused slots' share of the array.
                    (u128::from(array_size) * u128::from(slots - used) / u128::from(slots.max(1)))
                        as u64
                }
            };
            Some(Some(Collection {
                id: id.0,
                state,
                slots,
                used,
                wasted,
            }))
        })
        .collect();
    let examined = judged.len() as u64;
    (judged.into_iter().flatten().collect(), examined)
}

/// The collections section from the collections found, with the members
/// of each row shown.
fn collection_section(
    graph: &HeapGraph<'_>,
    classes: &Classifier<'_>,
    (found, examined): &(Vec<Collection>, u64),
    options: &WasteOptions,
) -> (CollectionSection, Vec<Vec<u32>>) {
    let mut section = CollectionSection {
        examined: *examined,
        ..CollectionSection::default()
    };
    // By (class group, state).
    let mut rows: HashMap<(usize, CollectionState), (CollectionRow, Vec<u32>)> = HashMap::new();
    for collection in found {
        let Some(object) = object_of(graph, collection.id) else {
            continue;
        };
        match collection.state {
            CollectionState::Empty => section.empty += 1,
            CollectionState::Sparse => section.sparse += 1,
        }
        section.wasted_bytes = section.wasted_bytes.saturating_add(collection.wasted);
        let group = classes.group_of(object);
        let (row, members) = rows.entry((group, collection.state)).or_insert_with(|| {
            (
                CollectionRow {
                    class: class_name(graph, object),
                    state: collection.state,
                    count: 0,
                    slots: 0,
                    used: 0,
                    wasted_bytes: 0,
                    example: object.address,
                    referrers: Vec::new(),
                },
                Vec::new(),
            )
        });
        row.count += 1;
        row.slots = row.slots.saturating_add(collection.slots);
        row.used = row.used.saturating_add(collection.used);
        row.wasted_bytes = row.wasted_bytes.saturating_add(collection.wasted);
        members.push(collection.id);
    }
    let mut rows: Vec<(CollectionRow, Vec<u32>)> = rows.into_values().collect();
    rows.sort_by(|(a, _), (b, _)| {
        b.wasted_bytes
            .cmp(&a.wasted_bytes)
            .then(b.count.cmp(&a.count))
            .then_with(|| a.class.cmp(&b.class))
            .then(a.state.cmp(&b.state))
    });
    rows.truncate(options.limit);
    let (rows, members) = rows.into_iter().unzip();
    section.rows = rows;
    (section, members)
}

/// The top `limit` referrers of each set of `members`: one pass over every
/// reference and root reference.
fn referrers<'g>(graph: &'g HeapGraph<'_>, members: &[&[u32]], limit: usize) -> Vec<Vec<Referrer>> {
    let dump = graph.dump();
    let count = graph.object_count();
    // Row of each member object; a bitmap in front of the map.
    let mut marked = vec![0u64; count.div_ceil(64)];
    let mut row_of: HashMap<u32, u32, FastHash> = HashMap::default();
    for (row, ids) in members.iter().enumerate() {
        for &id in *ids {
            if let Some(word) = marked.get_mut(id as usize / 64) {
                *word |= 1u64 << (id % 64);
                row_of.insert(id, row as u32);
            }
        }
    }
    let is_marked = |id: u32| {
        marked
            .get(id as usize / 64)
            .is_some_and(|word| word & (1u64 << (id % 64)) != 0)
    };
    // (row, referrer's class or root kind, field) -> references
    type Tally<'a> = HashMap<(u32, Holder<'a>, Option<String>), u64, FastHash>;
    let merge = |mut a: Tally<'g>, b: Tally<'g>| {
        for (key, n) in b {
            *a.entry(key).or_default() += n;
        }
        a
    };
    let mut tally: Tally<'g> = (0..count)
        .into_par_iter()
        .with_min_len(CHUNK)
        .fold(Tally::default, |mut tally, index| {
            let id = ObjectId(index as u32);
            let mut references = graph
                .references(id)
                .filter(|&(t, _)| is_marked(t.0))
                .peekable();
            if references.peek().is_none() {
                return tally;
            }
            let Some(object) = graph.object(id) else {
                return tally;
            };
            let class = Holder::Class(dump.object_class(object));
            for (target, offset) in references {
                let Some(&row) = row_of.get(&target.0) else {
                    continue;
                };
                let field = dump.field_name(object, u64::from(offset)).map(|name| {
                    if name.starts_with('[') {
                        "[]".to_owned()
                    } else {
                        name
                    }
                });
                *tally.entry((row, class.clone(), field)).or_default() += 1;
            }
            tally
        })
        .reduce(Tally::default, merge);
    for reference in graph.root_references() {
        let Some(&row) = row_of.get(&reference.target.0) else {
            continue;
        };
        let Some(root) = graph.root(reference.root) else {
            continue;
        };
        *tally
            .entry((row, Holder::Root(root.kind.label()), None))
            .or_default() += 1;
    }
    let mut by_row: Vec<Vec<Referrer>> = vec![Vec::new(); members.len()];
    for ((row, holder, field), count) in tally.drain() {
        if let Some(list) = by_row.get_mut(row as usize) {
            list.push(Referrer {
                class: match holder {
                    Holder::Class(class) => dump.class_name(&class),
                    Holder::Root(kind) => format!("root: {kind}"),
                },
                field,
                count,
            });
        }
    }
    for list in &mut by_row {
        list.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.class.cmp(&b.class))
                .then_with(|| a.field.cmp(&b.field))
        });
        list.truncate(limit);
    }
    by_row
}

/// What refers to a row's members: objects of a class, or roots of a kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Holder<'a> {
    Class(ObjectClass<'a>),
    Root(Cow<'static, str>),
}

/// Hash maps keyed by ids and classes, hashed with [`WordHasher`].
type FastHash = BuildHasherDefault<WordHasher>;

/// A fast 64-bit hash over words (multiply and rotate, as in FxHash): the
/// groups are checked by comparing values, so it only has to spread them.
#[derive(Default)]
struct WordHasher(u64);

impl WordHasher {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        let mut word = [0u8; 8];
        if let Some(slot) = word.get_mut(..rest.len()) {
            slot.copy_from_slice(rest);
        }
        self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        self.add(bytes.len() as u64);
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_show_text_or_hex() {
        assert_eq!(preview_bytes(b"user-12\0\0"), "\"user-12\" + 2 zero bytes");
        assert_eq!(preview_bytes(&[7, 7, 7]), "07 07 07");
        assert_eq!(preview_bytes(&[0; 4]), "all zero");
        assert_eq!(preview_bytes(&[0, 1]), "00 01");
        let long = vec![1u8; 30];
        assert!(preview_bytes(&long).ends_with(" …"));
        assert_eq!(preview_text("a\"b"), "\"a\\\"b\"");
        let text = "x".repeat(50);
        assert_eq!(preview_text(&text), format!("\"{}\"…", "x".repeat(40)));
    }

    #[test]
    fn equal_values_hash_equal_and_lengths_count() {
        let hash = |bytes: &[u8]| {
            let mut hasher = WordHasher::default();
            hasher.write(bytes);
            hasher.finish()
        };
        assert_eq!(hash(b"duplicate-value"), hash(b"duplicate-value"));
        assert_ne!(hash(b"abc"), hash(b"abc\0"));
        assert_ne!(hash(b""), hash(b"\0"));
    }

    #[test]
    fn groups_split_runs_of_one_hash_by_value() {
        // Ids 0..6 with values; ids 0, 2, 5 share a value, 1 and 4 another,
        // 3 is alone; all given one hash, as if they collided.
        let values = [10, 20, 10, 30, 20, 10];
        let candidates = (0..6u32).map(|id| (42u64, id)).collect();
        let mut groups = duplicate_groups(candidates, |a, b| {
            values[a as usize].cmp(&values[b as usize])
        });
        groups.sort();
        assert_eq!(groups, vec![vec![0, 2, 5], vec![1, 4]]);
    }
}
