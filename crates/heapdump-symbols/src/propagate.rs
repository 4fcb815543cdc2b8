//! Types of Rust objects that their allocation sites do not tell, from the
//! typed objects that point at them.
//!
//! A site names the type of most objects ([`infer_types`](crate::infer_types)).
//! The rest (allocated through `std::alloc::alloc` by a pool or an arena,
//! or with a site that stops in the allocator because the code has no frame
//! pointers) keep a size class, unless a typed object's type says what its
//! pointers point at. The element types of the standard library's
//! containers say it:
//!
//! | a pointer in a value of | points at |
//! |---|---|
//! | `Box<T>` (`T` not `dyn`) | `T` |
//! | `Vec<T>`, `VecDeque<T>`, `BinaryHeap<T>` | `[T]` |
//! | `String` | `str` |
//! | `Arc<T>`, `Rc<T>` and their `Weak` | `ArcInner<T>`, `RcInner<T>` |
//! | `HashMap<K, V>`, `HashSet<K>` | `hash table of (K, V)`, `hash table of K` (inside it: at its control bytes) |
//! | `BTreeMap<K, V>` | `BTreeMap node of (K, V)` |
//!
//! and wrappers (`Option`, `Result`, `RefCell`, `Cell`, `Mutex`, `RwLock`,
//! `ManuallyDrop`, `MaybeUninit`, `Pin`), tuples, arrays, slices, the
//! blocks sites name (`[T]`, `ArcInner<T>`, `hash table of (K, V)`, a
//! B-tree node, which also points at its parent and children) pass their
//! parts' pointers on. Numbers (`usize` too) hold no pointers. Any other
//! part (a struct of the program, a reference, a raw pointer, a function,
//! `dyn Trait`) could point anywhere: a type with one says nothing.
//!
//! With the program's type layouts ([`RustLayouts`], from `debug = 2`
//! DWARF), a typed object's words are read field by field instead: the
//! word at a field of type `Box<Profile>` points at a `Profile`, so the
//! program's own structs pass types on too, and each type seen gets its
//! size and fields ([`TypeInfo::fields`]). A field the layout leaves
//! untold (a reference, a raw pointer, an enum of the program) is not
//! followed, and an object that is not a whole number of values of its
//! type's layout has none of its fields trusted.
//!
//! **The rule.** A typed object whose type lists the possible targets of
//! its pointers gives its untyped targets a type: a word pointing at the
//! first byte of an untyped object (inside it, for a hash table) whose size
//! fits exactly one of the listed types gives it that type. Objects typed
//! so pass types on in turn, level by level from the site-typed ones. An
//! object given two different types at one level keeps its size class and
//! is counted as a conflict; typed objects never change type. Words are
//! read as the graph reads them (every aligned word of a conservatively
//! scanned object), so a stale pointer left in a container's spare
//! capacity can name its target as it draws an edge to it.

use std::collections::HashMap;

use heapdump_reader::{AddressIndex, Dump, FieldInfo, Object, Pointers, TypeIndex, TypeInfo};
use rayon::prelude::*;

use crate::rust_dwarf::RustLayouts;
use crate::symbolize::{is_pointer_free, short_type, size_fits, split_generic_args};

/// What [`propagate_types`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PropagationStats {
    /// Untyped objects given a type by a typed object pointing at them.
    pub typed_objects: u64,
    /// Their bytes.
    pub typed_bytes: u64,
    /// Untyped objects given different types by different pointers at the
    /// same level: left untyped.
    pub conflicting_objects: u64,
    /// Objects still untyped afterwards.
    pub untyped_objects: u64,
    /// Their bytes.
    pub untyped_bytes: u64,
}

/// Gives untyped objects of `dump` the types that typed objects' pointers
/// tell (the module's rule), level by level until no more are found.
pub fn propagate_types(dump: &mut Dump<'_>, layouts: Option<&RustLayouts>) -> PropagationStats {
    let mut stats = PropagationStats::default();
    let mut names = Names {
        layouts,
        ..Names::default()
    };
    // Field layouts for the types sites named, when the DWARF has them.
    for info in dump.types.iter_mut().filter(|info| info.from_site) {
        names.fill_layout(info);
    }
    // Nothing to do (the usual case at the default settings) costs one
    // pass over the objects.
    let mut level: Vec<usize> = if dump.objects.iter().any(|o| o.type_index().is_none()) {
        for info in &dump.types {
            names.add_type(&info.name, info.from_site);
        }
        (0..dump.objects.len())
            .filter(|&index| {
                dump.objects
                    .get(index)
                    .is_some_and(|object| names.is_source(object))
            })
            .collect()
    } else {
        Vec::new()
    };
    let index = AddressIndex::new(&dump.objects);
    // What each object is given at the current level: a name, or a
    // conflict (kept across levels: an object once given two types is
    // never typed).
    let mut given = vec![NONE; dump.objects.len()];
    let mut touched: Vec<usize> = Vec::new();
    while !level.is_empty() {
        // Large objects (a big table) are read in pieces, so that one does
        // not keep one core busy while the other waits; pieces are read in
        // batches of about `BATCH` bytes.
        let mut pieces: Vec<(usize, u64)> = Vec::new();
        let mut batch_bytes = 0;
        for (at, &source) in level.iter().enumerate() {
            let bytes = dump.objects.get(source).map_or(0, |object| object.size);
            for piece in 0..bytes.div_ceil(PIECE).max(1) {
                pieces.push((source, piece * PIECE));
            }
            batch_bytes += bytes;
            if batch_bytes >= BATCH || at + 1 == level.len() {
                names.give_batch(dump, &index, &pieces, &mut given, &mut touched);
                pieces.clear();
                batch_bytes = 0;
            }
        }
        touched.sort_unstable();
        let mut next = Vec::new();
        for &target in &touched {
            let Some(&name) = given.get(target) else {
                continue;
            };
            if name == CONFLICT {
                stats.conflicting_objects += 1;
                continue;
            }
            if let Some(slot) = given.get_mut(target) {
                *slot = NONE;
            }
            let Some(ty) = names.type_index(name, &mut dump.types) else {
                continue;
            };
            let Some(object) = dump.objects.get_mut(target) else {
                continue;
            };
            object.set_type_index(Some(ty));
            stats.typed_objects += 1;
            stats.typed_bytes += object.size;
            if names.is_source(object) {
                next.push(target);
            }
        }
        touched.clear();
        level = next;
    }
    for object in &dump.objects {
        if object.type_index().is_none() {
            stats.untyped_objects += 1;
            stats.untyped_bytes += object.size;
        }
    }
    stats
}

/// Bytes of an object read as one piece of work.
const PIECE: u64 = 1 << 18;

/// Bytes of objects whose words are sorted and looked up together.
const BATCH: u64 = 32 << 20;

/// Nothing given to an object yet at this level.
const NONE: u32 = u32::MAX;
/// Two types given to an object.
const CONFLICT: u32 = u32::MAX - 1;

/// What the pointers of a type's values can point at.
#[derive(Debug)]
enum Targets {
    /// The type does not tell.
    Unknown,
    /// Each pointer points at one of these (from the type's name).
    Any(Vec<u32>),
    /// By the type's layout (DWARF): for each leaf (offset, size), what its
    /// pointers point at (`None`: it does not tell), one value every
    /// `size` bytes.
    ByField {
        size: u64,
        leaves: Vec<(u64, u64, Option<Vec<u32>>)>,
    },
}

impl Targets {
    /// What a pointer at offset `within` of a value points at.
    fn at(&self, within: u64) -> Option<&[u32]> {
        match self {
            Targets::Unknown => None,
            Targets::Any(targets) => Some(targets),
            Targets::ByField { leaves, .. } => {
                let index = leaves.partition_point(|leaf| leaf.0 <= within);
                let (offset, size, targets) = leaves.get(index.checked_sub(1)?)?;
                (within - offset < *size).then_some(targets.as_deref()?)
            }
        }
    }

    /// Whether some pointer of a value can be followed.
    fn any(&self) -> bool {
        match self {
            Targets::Unknown => false,
            Targets::Any(targets) => !targets.is_empty(),
            Targets::ByField { leaves, .. } => leaves
                .iter()
                .any(|(_, _, targets)| targets.as_ref().is_some_and(|t| !t.is_empty())),
        }
    }

    /// Offset within one value of the byte at `offset` of an object of
    /// `object_size` bytes; `None` when the object is not a whole number
    /// of values of the layout (its type is not what the site said: no
    /// field of it is trusted).
    fn within(&self, offset: u64, object_size: u64) -> Option<u64> {
        match self {
            Targets::ByField { size, .. } if *size > 0 => {
                object_size.is_multiple_of(*size).then_some(offset % size)
            }
            _ => Some(0),
        }
    }
}

/// The type names propagation deals in, interned: the dump's types, what
/// their pointers can point at, and the types it adds.
#[derive(Default)]
struct Names<'l> {
    /// Type layouts from the program's DWARF, if it has them.
    layouts: Option<&'l RustLayouts>,
    /// Each name once.
    names: Vec<String>,
    ids: HashMap<String, u32>,
    /// By type index: what its values' pointers can point at.
    targets_by_type: Vec<Targets>,
    /// By name: its type index, once there is one.
    type_of_name: Vec<Option<TypeIndex>>,
}

impl Names<'_> {
    /// Gives `info` its size and fields from the DWARF, if it has none and
    /// the DWARF has its layout.
    fn fill_layout(&self, info: &mut TypeInfo) {
        let Some(layout) = self.layouts.and_then(|l| l.block_layout(&info.name)) else {
            return;
        };
        if !info.fields.is_empty() || layout.size == 0 {
            return;
        }
        info.size = layout.size;
        info.fields = layout
            .leaves
            .iter()
            .map(|leaf| FieldInfo {
                offset: leaf.offset,
                size: leaf.size,
                name: leaf.name.clone(),
                reference: pointer_targets(&leaf.ty).is_none_or(|t| !t.is_empty()),
            })
            .collect();
    }

    /// The id of `name`, added if new.
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        self.type_of_name.push(None);
        id
    }

    /// Records the next type of the dump: its targets, and its name (the
    /// one type objects given that name get, when it was named from a
    /// site).
    fn add_type(&mut self, name: &str, from_site: bool) {
        let index = TypeIndex(self.targets_by_type.len() as u32);
        let layout = self.layouts.and_then(|layouts| layouts.block_layout(name));
        let mut ids = |targets: Option<Vec<String>>| -> Option<Vec<u32>> {
            Some(targets?.iter().map(|t| self.id(t)).collect())
        };
        let targets = match layout {
            Some(layout) if layout.size > 0 => Targets::ByField {
                size: layout.size,
                leaves: layout
                    .leaves
                    .iter()
                    .map(|leaf| (leaf.offset, leaf.size, ids(pointer_targets(&leaf.ty))))
                    .collect(),
            },
            _ => match ids(pointer_targets(name)) {
                Some(targets) => Targets::Any(targets),
                None => Targets::Unknown,
            },
        };
        self.targets_by_type.push(targets);
        if from_site {
            let id = self.id(name);
            if let Some(slot) = self.type_of_name.get_mut(id as usize) {
                slot.get_or_insert(index);
            }
        }
    }

    /// The type index of name `id`, adding the type to `types` if new.
    fn type_index(&mut self, id: u32, types: &mut Vec<TypeInfo>) -> Option<TypeIndex> {
        if let Some(index) = self.type_of_name.get(id as usize).copied().flatten() {
            return Some(index);
        }
        let name = self.names.get(id as usize)?.clone();
        let index = TypeIndex(u32::try_from(types.len()).ok()?);
        let mut info = TypeInfo {
            pointer_free: is_pointer_free(&name),
            ..TypeInfo::named(0, name.clone(), 0, true)
        };
        self.fill_layout(&mut info);
        types.push(info);
        self.add_type(&name, true);
        Some(index)
    }

    /// What the pointers of `object`'s type point at.
    fn targets_of(&self, object: &Object) -> Option<&Targets> {
        self.targets_by_type.get(object.type_index()?.index())
    }

    /// Whether `object`'s type says what some of its pointers point at.
    fn is_source(&self, object: &Object) -> bool {
        self.targets_of(object).is_some_and(Targets::any)
    }

    /// Gives the untyped objects that the pointers in `pieces` (`PIECE`
    /// bytes of an object from an offset) point at the type their holder's
    /// type names for them, when it names exactly one that fits (the
    /// module's rule): into `given` (a conflict if already given another),
    /// each object given a first type added to `touched`.
    fn give_batch(
        &self,
        dump: &Dump<'_>,
        index: &AddressIndex,
        pieces: &[(usize, u64)],
        given: &mut [u32],
        touched: &mut Vec<usize>,
    ) {
        let pointer_size = u64::from(dump.info.pointer_size.max(1));
        // Objects are sorted and do not overlap: only words between the
        // first's start and the last's end can point into one.
        let low = dump.objects.first().map_or(0, |object| object.address);
        let high = dump.objects.last().map_or(0, Object::end);
        // The words, with their holder's type, sorted by value: looked up
        // in address order, the index and the objects are read as a
        // stream instead of at random (several times faster on a big
        // table of boxes).
        // (value, holder's type, offset in one value of the holder's type)
        let mut words: Vec<(u64, u32, u64)> = pieces
            .par_iter()
            .flat_map_iter(|&(source, start)| {
                let object = dump.objects.get(source);
                let ty = object.and_then(Object::type_index);
                let targets = object.and_then(|object| self.targets_of(object));
                object
                    .into_iter()
                    .flat_map(move |object| {
                        pointer_words(
                            dump,
                            object,
                            pointer_size,
                            start..start.saturating_add(PIECE),
                        )
                    })
                    .filter(move |(_, value)| (low..high).contains(value))
                    .filter_map(move |(offset, value)| {
                        let size = object?.size;
                        Some((value, ty?.0, targets?.within(offset, size)?))
                    })
            })
            .collect();
        words.par_sort_unstable();
        words.dedup();
        let found: Vec<(usize, u32)> = words
            .par_chunks(1 << 14)
            .flat_map_iter(|chunk| {
                chunk.iter().filter_map(|&(value, ty, within)| {
                    self.given_by_word(dump, index, given, value, ty, within)
                })
            })
            .collect();
        for (target, name) in found {
            let Some(slot) = given.get_mut(target) else {
                continue;
            };
            match *slot {
                NONE => {
                    *slot = name;
                    touched.push(target);
                }
                current if current != name => *slot = CONFLICT,
                _ => {}
            }
        }
    }

    /// The untyped object a word of `value` at offset `within` of a value
    /// of type `ty` points at, with the one type of the word's targets
    /// that fits it.
    fn given_by_word(
        &self,
        dump: &Dump<'_>,
        index: &AddressIndex,
        given: &[u32],
        value: u64,
        ty: u32,
        within: u64,
    ) -> Option<(usize, u32)> {
        let pointer_size = u64::from(dump.info.pointer_size.max(1));
        let target = index.lookup(&dump.objects, value)?.index();
        let object = dump.objects.get(target)?;
        if object.type_index().is_some() || given.get(target) == Some(&CONFLICT) {
            return None;
        }
        let targets = self.targets_by_type.get(ty as usize)?.at(within)?;
        let inside = value != object.address;
        let mut fitting = targets.iter().filter(|&&id| {
            let name = self.names.get(id as usize).map_or("", String::as_str);
            name.starts_with("hash table of ") == inside
                && size_fits(name, object.size, pointer_size)
                && (!is_counted_box(name) || object.size >= 2 * pointer_size)
        });
        match (fitting.next(), fitting.next()) {
            (Some(&id), None) => Some((target, id)),
            _ => None,
        }
    }
}

/// `ArcInner<T>` and `RcInner<T>`: two counts before the value.
fn is_counted_box(name: &str) -> bool {
    name.starts_with("ArcInner<") || name.starts_with("RcInner<")
}

/// The words at offsets `range` of `object` that may be pointers, as the
/// graph reads them: the exact pointer words when the dump knows them (all
/// of them for the range from 0), none for a pointer-free type, otherwise
/// every aligned word.
fn pointer_words<'a>(
    dump: &'a Dump<'_>,
    object: &'a Object,
    pointer_size: u64,
    range: std::ops::Range<u64>,
) -> impl Iterator<Item = (u64, u64)> + 'a {
    let contents = dump.contents(object);
    let read = move |offset: u64| Some((offset, dump.info.word_at(contents, offset)?));
    let offsets: Box<dyn Iterator<Item = u64> + 'a> = match dump.pointers(object) {
        // An exact list is read whole, by the first piece.
        Pointers::Exact(offsets) if range.start == 0 => Box::new(offsets.iter()),
        Pointers::Exact(_) => Box::new(std::iter::empty()),
        Pointers::Unknown => {
            // Words are aligned in the dumped address space.
            let skip = (pointer_size - object.address % pointer_size) % pointer_size;
            let first = range.start.saturating_sub(skip).div_ceil(pointer_size);
            let end = range.end.min(contents.len() as u64);
            let words = end.saturating_sub(skip).div_ceil(pointer_size);
            Box::new((first..words).map(move |word| skip + word * pointer_size))
        }
    };
    offsets.filter_map(read)
}

/// What pointers in a value of type `ty` (a name as sites give it) can point
/// at: the list of block types (empty: it holds no pointers), or `None`
/// when the name does not tell.
pub fn pointer_targets(ty: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    collect_targets(ty.trim(), &mut out, 0)?;
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// Adds the block types `ty`'s pointers can point at to `out`; `None` when
/// the name does not tell. `depth` bounds the recursion on hostile names.
fn collect_targets(ty: &str, out: &mut Vec<String>, depth: usize) -> Option<()> {
    if depth > 32 {
        return None;
    }
    let recurse = |ty: &str, out: &mut Vec<String>| collect_targets(ty.trim(), out, depth + 1);
    if is_pointer_free(ty) || matches!(ty, "usize" | "isize" | "()" | "!") {
        return Some(());
    }
    if let Some(parts) = ty.strip_prefix("hash table of ") {
        return recurse(parts, out);
    }
    if let Some(parts) = ty.strip_prefix("BTreeMap node of ") {
        // Its parent and its children are nodes of the same map.
        out.push(ty.to_owned());
        return recurse(parts, out);
    }
    if let Some(inner) = ty.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        for part in crate::symbolize::split_top_level(inner) {
            recurse(part, out)?;
        }
        return Some(());
    }
    if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return recurse(crate::symbolize::array_element(inner)?, out);
    }
    if matches!(ty, "String" | "alloc::string::String") {
        out.push("str".to_owned());
        return Some(());
    }
    let (base, args) = split_generic_args(ty);
    let args: Vec<String> = args
        .into_iter()
        .filter(|arg| !crate::symbolize::is_allocator_type(arg))
        .map(short_type)
        .collect();
    let arg = |index: usize| args.get(index).map(String::as_str);
    let unsized_dyn = |t: &str| t.starts_with("dyn ");
    match base {
        "Box" | "alloc::boxed::Box" => {
            let t = arg(0).filter(|t| !unsized_dyn(t))?;
            out.push(t.to_owned());
        }
        "Vec"
        | "alloc::vec::Vec"
        | "VecDeque"
        | "alloc::collections::vec_deque::VecDeque"
        | "alloc::collections::binary_heap::BinaryHeap" => out.push(format!("[{}]", arg(0)?)),
        "Arc" | "alloc::sync::Arc" | "alloc::sync::Weak" => {
            let t = arg(0).filter(|t| !unsized_dyn(t))?;
            out.push(format!("ArcInner<{t}>"));
        }
        "Rc" | "alloc::rc::Rc" | "alloc::rc::Weak" => {
            let t = arg(0).filter(|t| !unsized_dyn(t))?;
            out.push(format!("RcInner<{t}>"));
        }
        "HashMap" | "std::collections::hash::map::HashMap" | "hashbrown::map::HashMap" => {
            out.push(format!("hash table of ({}, {})", arg(0)?, arg(1)?));
        }
        "HashSet" | "std::collections::hash::set::HashSet" | "hashbrown::set::HashSet" => {
            out.push(format!("hash table of {}", arg(0)?));
        }
        "BTreeMap" | "alloc::collections::btree::map::BTreeMap" => {
            out.push(format!("BTreeMap node of ({}, {})", arg(0)?, arg(1)?));
        }
        // Blocks sites name, and wrappers that hold their arguments' values
        // (and, on Linux, no pointers of their own: std's `Mutex` is a futex
        // word).
        "ArcInner"
        | "RcInner"
        | "Option"
        | "core::option::Option"
        | "core::result::Result"
        | "core::cell::Cell"
        | "core::cell::RefCell"
        | "core::cell::UnsafeCell"
        | "core::cell::once::OnceCell"
        | "core::mem::manually_drop::ManuallyDrop"
        | "core::mem::maybe_uninit::MaybeUninit"
        | "core::num::wrapping::Wrapping"
        | "core::cmp::Reverse"
        | "core::pin::Pin"
        | "std::sync::poison::mutex::Mutex"
        | "std::sync::poison::rwlock::RwLock"
        | "std::sync::mutex::Mutex"
        | "std::sync::rwlock::RwLock" => {
            if args.is_empty() {
                return None;
            }
            for arg in &args {
                recurse(arg, out)?;
            }
        }
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapdump_reader::DumpInfo;

    /// A heap built by hand: objects `(address, size, type, words)`, their
    /// words little-endian, 8 bytes each.
    struct Heap {
        data: Vec<u8>,
        objects: Vec<(u64, u64, Option<&'static str>)>,
    }

    impl Heap {
        fn new() -> Heap {
            Heap {
                data: Vec::new(),
                objects: Vec::new(),
            }
        }

        fn object(
            mut self,
            address: u64,
            size: u64,
            ty: Option<&'static str>,
            words: &[u64],
        ) -> Heap {
            let at = self.data.len() as u64;
            let mut bytes: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
            bytes.resize(size as usize, 0);
            self.data.extend(bytes);
            self.objects.push((address, size, ty));
            assert_eq!(at, self.data.len() as u64 - size);
            self
        }

        /// Propagates; the type of each object afterwards, and the stats.
        fn propagate(&self) -> (Vec<Option<String>>, PropagationStats) {
            let mut dump = Dump::new(DumpInfo {
                format: "heapdump-rs",
                pointer_size: 8,
                ..DumpInfo::default()
            });
            dump.data = &self.data;
            let mut at = 0;
            for &(address, size, ty) in &self.objects {
                let mut object = Object::new(address, size, None, at);
                at += size;
                if let Some(name) = ty {
                    object.set_type_index(Some(TypeIndex(dump.types.len() as u32)));
                    dump.types.push(TypeInfo::named(0, name, 0, true));
                }
                dump.objects.push(object);
            }
            let stats = propagate_types(&mut dump, None);
            let types = dump
                .objects
                .iter()
                .map(|object| {
                    let info = dump.type_info(object.type_index()?)?;
                    Some(info.name.clone())
                })
                .collect();
            (types, stats)
        }
    }

    #[test]
    fn types_pass_on_level_by_level() {
        let (types, stats) = Heap::new()
            .object(0x1000, 16, Some("[Box<Vec<u64>>]"), &[0x2000, 0x7777])
            .object(0x2000, 24, None, &[3, 0x3000, 3])
            .object(0x3000, 24, None, &[1, 2, 3])
            .propagate();
        assert_eq!(types[1].as_deref(), Some("Vec<u64>"));
        assert_eq!(types[2].as_deref(), Some("[u64]"));
        assert_eq!(stats.typed_objects, 2);
        assert_eq!(stats.typed_bytes, 48);
        assert_eq!(stats.untyped_objects, 0);
    }

    #[test]
    fn two_types_for_one_object_leave_it_untyped() {
        let (types, stats) = Heap::new()
            .object(0x1000, 8, Some("[Box<app::X>]"), &[0x3000])
            .object(0x2000, 8, Some("[Box<app::Y>]"), &[0x3000])
            .object(0x3000, 32, None, &[])
            .object(0x4000, 8, Some("[Box<app::X>]"), &[0x5000])
            .object(0x5000, 32, None, &[])
            .propagate();
        assert_eq!(types[2], None);
        assert_eq!(types[4].as_deref(), Some("app::X"));
        assert_eq!(stats.conflicting_objects, 1);
        assert_eq!(stats.untyped_objects, 1);
    }

    #[test]
    fn a_hash_table_is_pointed_at_inside_and_other_blocks_at_their_start() {
        let (types, _) = Heap::new()
            .object(
                0x1000,
                16,
                Some("HashMap<u64, Box<app::S>, RandomState>"),
                &[0x2000 + 32, 0x9000],
            )
            // The table: buckets of (u64, Box<S>), then control bytes.
            .object(0x2000, 64, None, &[7, 0x3000, 8, 0x4008])
            .object(0x3000, 40, None, &[])
            .object(0x4000, 40, None, &[])
            // Pointed at first byte, which no hash table is.
            .object(0x9000, 64, None, &[])
            .propagate();
        assert_eq!(
            types[1].as_deref(),
            Some("hash table of (u64, Box<app::S>)")
        );
        assert_eq!(types[2].as_deref(), Some("app::S"));
        // Inside an object that is not a table: not typed.
        assert_eq!(types[3], None);
        assert_eq!(types[4], None);
    }

    #[test]
    fn typed_objects_keep_their_type_and_sizes_must_fit() {
        let (types, stats) = Heap::new()
            .object(0x1000, 16, Some("[Box<u64>]"), &[0x2000, 0x3000])
            .object(0x2000, 8, Some("app::Other"), &[])
            .object(0x3000, 16, None, &[])
            .object(0x4000, 16, Some("[Arc<app::Job>]"), &[0x5000, 0x6000])
            .object(0x5000, 8, None, &[])
            .object(0x6000, 48, None, &[])
            .propagate();
        assert_eq!(types[1].as_deref(), Some("app::Other"));
        // A u64 is 8 bytes; an ArcInner has two counts before its value.
        assert_eq!(types[2], None);
        assert_eq!(types[4], None);
        assert_eq!(types[5].as_deref(), Some("ArcInner<app::Job>"));
        assert_eq!(stats.typed_objects, 1);
    }

    fn targets(ty: &str) -> Option<Vec<String>> {
        pointer_targets(ty)
    }

    #[test]
    fn containers_say_what_their_pointers_point_at() {
        assert_eq!(
            targets("[Box<app::Session>]"),
            Some(vec!["app::Session".into()])
        );
        assert_eq!(
            targets("hash table of (u64, Box<app::Session>)"),
            Some(vec!["app::Session".into()])
        );
        assert_eq!(
            targets("hash table of (String, Vec<u8>)"),
            Some(vec!["[u8]".into(), "str".into()])
        );
        assert_eq!(
            targets("ArcInner<std::sync::poison::mutex::Mutex<Vec<alloc::sync::Arc<app::Job>>>>"),
            Some(vec!["[Arc<app::Job>]".into()])
        );
        assert_eq!(
            targets("[Arc<app::Job>]"),
            Some(vec!["ArcInner<app::Job>".into()])
        );
        assert_eq!(
            targets("[core::option::Option<Rc<core::cell::RefCell<app::Node>>>; 4]"),
            Some(vec!["RcInner<core::cell::RefCell<app::Node>>".into()])
        );
        assert_eq!(
            targets("BTreeMap node of (u64, String)"),
            Some(vec!["BTreeMap node of (u64, String)".into(), "str".into()])
        );
        assert_eq!(targets("[u64]"), Some(vec![]));
        assert_eq!(targets("(usize, u32)"), Some(vec![]));
    }

    #[test]
    fn a_type_with_a_part_that_could_point_anywhere_says_nothing() {
        assert_eq!(targets("app::Session"), None);
        assert_eq!(targets("[Box<dyn app::Shape>]"), None);
        assert_eq!(targets("(u64, &str)"), None);
        assert_eq!(targets("[*const u8]"), None);
        assert_eq!(targets("hash table of (u64, app::Session)"), None);
        assert_eq!(targets("Option"), None);
        let deep = "Option<".repeat(100) + "Box<u8>" + &">".repeat(100);
        assert_eq!(targets(&deep), None);
    }
}
