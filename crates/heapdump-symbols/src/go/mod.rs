//! Go heap objects typed from the executable's DWARF.
//!
//! A Go heap dump gives every object's bytes and exact pointer slots but
//! (malloc headers aside) no type. The executable's DWARF describes every
//! type, global and frame variable, so types flow from typed roots along
//! pointers, in the spirit of `golang.org/x/debug`'s gocore:
//!
//! 1. **Typed roots**: every global (its DWARF variable at its address in
//!    the data or BSS segment); every variable of every goroutine frame
//!    whose location at the frame's pc is on the stack; finalizers (the
//!    object's pointer type); objects whose Go 1.22+ malloc header names
//!    their type.
//! 2. **Along pointers**: `*T` types its target as `T`; a slice header its
//!    backing array as `[]T`; a string its bytes; an interface its data by
//!    the dynamic type (the type word, or the itab's type), through the
//!    `DW_AT_go_runtime_type` of the type DIEs; maps through the
//!    runtime's map structures that the linker describes in DWARF per key
//!    and value type (`hash<K,V>`/`bucket<K,V>` up to Go 1.23;
//!    `map<K,V>`, `table<K,V>` and groups from Go 1.24, a small map's
//!    single group included); channels through `hchan<T>` and their
//!    buffer.
//!
//! **The rule for an object**: a type `T` is taken for an object when a
//! typed pointer points at the object's first byte (after its malloc
//! header) and `T`'s layout agrees with the dump: every pointer slot the
//! runtime dumped lies on a pointer word of `T` (repeated as many times as
//! `T` fits, for arrays), and an object without pointer slots is not given
//! a type with pointers (channels aside: the runtime allocates a channel
//! of pointer-free elements as one pointer-free block). Among types that agree, the one with the largest values
//! wins (a struct over a pointer to its first field); on a tie, the first
//! found, breadth-first from the roots in the order above. A pointer into
//! the middle of an object types what it points at for the walk, not the
//! object. An object that no typed pointer reaches keeps its shape
//! (`obj96[p,_,…]`), and is counted in [`GoTypeStats`].

mod dwarf;

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use heapdump_reader::formats::go as go_format;
use heapdump_reader::{AddressIndex, Dump, FieldInfo, Object, RootKind, TypeIndex, TypeInfo};

use crate::binary::Binary;
use dwarf::{FramePc, GoDwarf, Shape, TypeId};

/// What typing a Go dump from DWARF did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoTypeStats {
    /// Objects in the dump.
    pub objects: u64,
    /// Objects given a type.
    pub typed_objects: u64,
    /// Bytes of all objects.
    pub bytes: u64,
    /// Bytes of typed objects.
    pub typed_bytes: u64,
    /// Globals walked as their DWARF type says.
    pub globals: u64,
    /// Pieces of goroutine frame variables (on the stack at the frame's pc)
    /// walked as their DWARF type says.
    pub frame_variables: u64,
    /// Why no object was typed, when none was (no DWARF, unreadable
    /// DWARF); `None` when typing ran.
    pub skipped: Option<String>,
}

/// Types the objects of Go dump `dump` from `binary`'s DWARF (see the
/// module docs); `load_bias` is the binary's, as
/// [`Binary::load_bias`] found it. A dump that is not a Go dump is left
/// alone (returns `None`); a binary without DWARF leaves the dump's
/// objects with their shapes and says why in [`GoTypeStats::skipped`].
pub fn type_objects(dump: &mut Dump<'_>, binary: &Binary, load_bias: u64) -> Option<GoTypeStats> {
    let go = go_format::extras(dump)?;
    let pcs: Vec<FramePc> = {
        let mut pcs: Vec<FramePc> = go
            .goroutines
            .iter()
            .flat_map(|goroutine| goroutine.frames.iter())
            .map(|frame| FramePc {
                pc: frame.pc.wrapping_sub(load_bias),
                at_call: frame.depth > 0,
            })
            .collect();
        pcs.sort_by_key(|pc| (pc.pc, pc.at_call));
        pcs.dedup();
        pcs
    };
    let mut stats = GoTypeStats {
        objects: dump.objects.len() as u64,
        bytes: dump.objects.iter().map(|object| object.size).sum(),
        ..GoTypeStats::default()
    };
    let types = match dwarf::read(binary.data(), &pcs) {
        Ok(types) => types,
        Err(dwarf::DwarfError::Missing) => {
            stats.skipped = Some(format!(
                "{} has no DWARF (built with -ldflags=-w or stripped): objects keep their \
                 shapes; build without -w for Go type names",
                binary.path().display()
            ));
            return Some(stats);
        }
        Err(dwarf::DwarfError::Bad(reason)) => {
            stats.skipped = Some(format!(
                "the DWARF of {} cannot be read ({reason}): objects keep their shapes",
                binary.path().display()
            ));
            return Some(stats);
        }
    };
    let mut typer = Typer::new(dump, &types, binary, load_bias);
    typer.roots(&mut stats);
    typer.run();
    let assigned = typer.assigned;
    apply(dump, &types, assigned, load_bias, &mut stats);
    Some(stats)
}

/// How an object came to hold values of a type: the name it is shown by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Via {
    /// A pointer to `T`: the object is a `T`, or `[]T` if it holds more.
    Pointer,
    /// The backing array of this slice type (`[]uint8`).
    Slice(TypeId),
    /// The bytes of a string.
    String,
}

/// Values of `ty` to type at `address`: `count` of them (a slice's cap, a
/// string's length), or as many as fit when `address` starts an object.
#[derive(Clone, Copy, Debug)]
struct Target {
    address: u64,
    ty: TypeId,
    count: u64,
    via: Via,
}

/// The type an object was given.
#[derive(Clone, Copy, Debug)]
struct Assigned {
    ty: TypeId,
    via: Via,
}

/// Most pointer words listed for one type (a huge array's are cut short:
/// objects that large are not typed by it).
const MAX_POINTER_WORDS: usize = 1 << 20;

/// Deepest nesting of types walked (structs in arrays in structs...).
const MAX_DEPTH: usize = 64;

struct Typer<'a, 'd> {
    dump: &'a Dump<'d>,
    types: &'a GoDwarf,
    binary: &'a Binary,
    bias: u64,
    word: u64,
    /// Memory that is not a heap object: data/BSS and goroutine frames,
    /// by address: (start, root index).
    regions: Vec<(u64, usize)>,
    queue: VecDeque<Target>,
    assigned: Vec<Option<Assigned>>,
    /// Interior targets walked already: (address, type).
    interior: HashSet<(u64, TypeId)>,
    /// Pointer words of one value of each type (offsets), memoised.
    pointer_words: HashMap<TypeId, Rc<[u64]>>,
    /// The type of each itab, by runtime address.
    itab_types: HashMap<u64, u64>,
    /// The memory (start address, bytes) that held the last word read.
    last_memory: Cell<(u64, &'d [u8])>,
    /// Finds the object holding an address.
    index: AddressIndex,
    /// Whether each type holds pointers.
    pointerful: Vec<bool>,
}

impl<'a, 'd> Typer<'a, 'd> {
    fn new(dump: &'a Dump<'d>, types: &'a GoDwarf, binary: &'a Binary, bias: u64) -> Typer<'a, 'd> {
        let mut regions: Vec<(u64, usize)> = dump
            .roots
            .iter()
            .enumerate()
            .filter(|(_, root)| {
                matches!(root.kind, RootKind::Section { .. } | RootKind::Frame { .. })
                    && !root.contents.is_empty()
            })
            .map(|(index, root)| (root.address, index))
            .collect();
        regions.sort_unstable();
        let itab_types = go_format::extras(dump)
            .map(|go| {
                go.itabs
                    .iter()
                    .map(|itab| (itab.address, itab.type_address))
                    .collect()
            })
            .unwrap_or_default();
        Typer {
            dump,
            types,
            binary,
            bias,
            word: u64::from(dump.info.pointer_size.max(4)),
            regions,
            queue: VecDeque::new(),
            assigned: vec![None; dump.objects.len()],
            interior: HashSet::new(),
            pointer_words: HashMap::new(),
            itab_types,
            last_memory: Cell::new((0, &[])),
            pointerful: pointerful(types),
            index: AddressIndex::new(&dump.objects),
        }
    }

    /// Queues the typed roots, in the order of the rule.
    fn roots(&mut self, stats: &mut GoTypeStats) {
        for global in &self.types.globals {
            let address = global.address.wrapping_add(self.bias);
            if self.region_bytes(address).is_some() {
                stats.globals += 1;
                self.walk(address, global.ty, 1, (0, u64::MAX), 0);
            }
        }
        let Some(go) = go_format::extras(self.dump) else {
            return;
        };
        for goroutine in &go.goroutines {
            for frame in &goroutine.frames {
                let key = frame.pc.wrapping_sub(self.bias);
                let Some(variables) = self.types.frame_variables.get(&key) else {
                    continue;
                };
                // The canonical frame address: the frame record spans sp up
                // to the caller's sp before the call (the runtime's fp).
                let cfa = frame.sp.wrapping_add(frame.size);
                for variable in variables {
                    for piece in &variable.pieces {
                        let Some(offset) = piece.cfa_offset else {
                            continue;
                        };
                        let at = cfa.wrapping_add_signed(offset);
                        let base = at.wrapping_sub(piece.value_offset);
                        let window = (at, at.saturating_add(piece.size));
                        stats.frame_variables += 1;
                        self.walk(base, variable.ty, 1, window, 0);
                    }
                }
            }
        }
        for finalizer in &go.finalizers {
            let pointer = self.runtime_type(finalizer.object_type);
            if let Some(Shape::Pointer(Some(elem))) = pointer.map(|id| self.shape(id)) {
                self.push(finalizer.object, *elem, 1, Via::Pointer);
            }
        }
        for (index, object) in self.dump.objects.iter().enumerate() {
            if !object.has_header() {
                continue;
            }
            let Some(word) = self.read_word(self.dump.contents(object), 0) else {
                continue;
            };
            if let Some(ty) = self.runtime_type(word) {
                let start = object.address + self.word;
                self.offer(index, start, ty, Via::Pointer);
            }
        }
    }

    /// Types everything the queue reaches.
    ///
    /// Breadth-first, a level at a time, each level in address order (a
    /// stable sort: the order found breaks ties between equal addresses):
    /// the walk then sweeps the heap's memory instead of jumping about it.
    fn run(&mut self) {
        while !self.queue.is_empty() {
            let mut level: Vec<Target> = self.queue.drain(..).collect();
            level.sort_by_key(|target| target.address);
            for target in level {
                self.visit(target);
            }
        }
    }

    fn shape(&self, ty: TypeId) -> &'a Shape {
        const PLAIN: &Shape = &Shape::Plain;
        self.types.ty(ty).map_or(PLAIN, |ty| &ty.shape)
    }

    fn size(&self, ty: TypeId) -> u64 {
        self.types.ty(ty).map_or(0, |ty| ty.size)
    }

    /// The DWARF type of the runtime type descriptor at runtime `address`.
    fn runtime_type(&self, address: u64) -> Option<TypeId> {
        if address == 0 {
            return None;
        }
        self.types
            .by_runtime_type
            .get(&address.wrapping_sub(self.bias))
            .copied()
    }

    fn push(&mut self, address: u64, ty: TypeId, count: u64, via: Via) {
        if address != 0 && count > 0 {
            self.queue.push_back(Target {
                address,
                ty,
                count,
                via,
            });
        }
    }

    /// The object holding `address`, by index.
    fn object_at(&self, address: u64) -> Option<usize> {
        self.index
            .lookup(&self.dump.objects, address)
            .map(|id| id.index())
    }

    /// The bytes from `address` to the end of the root region holding it
    /// (data, BSS, a frame).
    fn region_bytes(&self, address: u64) -> Option<&'d [u8]> {
        let (start, contents) = self.region_at(address)?;
        contents.get(usize::try_from(address - start).ok()?..)
    }

    /// The root region (data, BSS, a frame) that may hold `address`: its
    /// start and its bytes.
    fn region_at(&self, address: u64) -> Option<(u64, &'d [u8])> {
        let index = self
            .regions
            .partition_point(|&(start, _)| start <= address)
            .checked_sub(1)?;
        let &(start, root) = self.regions.get(index)?;
        Some((start, self.dump.roots.get(root)?.contents))
    }

    /// The bytes from `address` to the end of whatever dumped memory holds
    /// it: an object or a root region.
    fn bytes_at(&self, address: u64) -> Option<&'d [u8]> {
        // Walks read the words of one object or region after another: look
        // in the last one found before searching.
        let (start, bytes) = self.last_memory.get();
        if let Some(inside) = address
            .checked_sub(start)
            .and_then(|offset| usize::try_from(offset).ok())
            .and_then(|offset| bytes.get(offset..))
            .filter(|rest| !rest.is_empty())
        {
            return Some(inside);
        }
        let (start, bytes) = match self.object_at(address) {
            Some(index) => {
                let object = self.dump.objects.get(index)?;
                (object.address, self.dump.contents(object))
            }
            None => self.region_at(address)?,
        };
        self.last_memory.set((start, bytes));
        bytes.get(usize::try_from(address - start).ok()?..)
    }

    fn read_word(&self, bytes: &[u8], offset: u64) -> Option<u64> {
        self.dump.info.word_at(bytes, offset)
    }

    /// The word at `address` in dumped memory, if `address` is inside
    /// `window`.
    fn word_at(&self, address: u64, window: (u64, u64)) -> Option<u64> {
        if address < window.0 || address.saturating_add(self.word) > window.1 {
            return None;
        }
        self.read_word(self.bytes_at(address)?, 0)
    }

    /// The concrete type of an itab at runtime `address`: from the dump's
    /// itab records, else from the executable's read-only data.
    fn itab_type(&self, address: u64) -> Option<u64> {
        if let Some(&ty) = self.itab_types.get(&address) {
            return Some(ty);
        }
        let bytes = self.binary.read(
            address.wrapping_sub(self.bias).checked_add(self.word)?,
            self.word,
        )?;
        self.read_word(bytes, 0)
    }

    /// Walks `count` values of `ty` at `base`, pushing what their pointers
    /// point at; only words inside `window` are read.
    fn walk(&mut self, base: u64, ty: TypeId, count: u64, window: (u64, u64), depth: usize) {
        if depth > MAX_DEPTH || !self.has_pointers(ty) {
            return;
        }
        let size = self.size(ty).max(1);
        for index in 0..count {
            let Some(at) = index.checked_mul(size).and_then(|o| base.checked_add(o)) else {
                return;
            };
            // Stop at the end of the dumped memory.
            if index > 0 && self.bytes_at(at).is_none() {
                return;
            }
            self.walk_one(at, ty, window, depth);
        }
    }

    fn walk_one(&mut self, at: u64, ty: TypeId, window: (u64, u64), depth: usize) {
        let word = self.word;
        match self.shape(ty) {
            Shape::Plain | Shape::Typedef(_) => {}
            Shape::Pointer(None) => {}
            Shape::Pointer(Some(elem)) => {
                if let Some(pointer) = self.word_at(at, window) {
                    self.push(pointer, *elem, 1, Via::Pointer);
                }
            }
            Shape::Func => {}
            Shape::Slice(elem) => {
                // The cap may be stale where only the pointer is live (a
                // frame's spill slot): at least the first element.
                let cap = self
                    .word_at(at.wrapping_add(2 * word), (0, u64::MAX))
                    .unwrap_or(0);
                if let Some(data) = self.word_at(at, window) {
                    self.push(data, *elem, cap.max(1), Via::Slice(ty));
                }
            }
            Shape::String => {
                let len = self
                    .word_at(at.wrapping_add(word), (0, u64::MAX))
                    .unwrap_or(0);
                if let (Some(data), Some(byte)) = (self.word_at(at, window), self.types.byte) {
                    self.push(data, byte, len.max(1), Via::String);
                }
            }
            Shape::Interface { empty } => {
                let (Some(first), Some(data)) = (
                    self.word_at(at, window),
                    self.word_at(at.wrapping_add(word), window),
                ) else {
                    return;
                };
                let dynamic = if *empty {
                    Some(first)
                } else if first != 0 {
                    self.itab_type(first)
                } else {
                    None
                };
                if let Some(dynamic) = dynamic.and_then(|address| self.runtime_type(address)) {
                    self.interface_data(dynamic, data, depth);
                }
            }
            Shape::Array { elem, count } => {
                let (elem, count) = (*elem, *count);
                self.walk(at, elem, count, window, depth + 1);
            }
            Shape::Struct(fields) => {
                if self.swiss_map(at, ty, fields, window) {
                    return;
                }
                let channel = self.types.channel_elems.get(&ty).copied();
                for field in fields {
                    if channel.is_some() && field.name == "buf" {
                        continue;
                    }
                    self.walk_one(at.wrapping_add(field.offset), field.ty, window, depth + 1);
                }
                if let Some(elem) = channel {
                    self.channel_buffer(at, fields, elem, window);
                }
            }
        }
    }

    /// The data word of an interface whose dynamic type is `dynamic`: the
    /// value itself when the type is pointer-shaped, else a pointer to it.
    fn interface_data(&mut self, dynamic: TypeId, data: u64, depth: usize) {
        // Pointer-shaped types are stored directly: descend to the single
        // pointer at offset 0.
        let mut ty = dynamic;
        for _ in 0..MAX_DEPTH.min(depth.max(1) + 8) {
            match self.shape(ty) {
                Shape::Pointer(Some(elem)) => {
                    self.push(data, *elem, 1, Via::Pointer);
                    return;
                }
                Shape::Pointer(None) | Shape::Func => return,
                Shape::Struct(fields) if self.size(ty) == self.word => {
                    match fields.iter().find(|field| field.offset == 0) {
                        Some(field) => ty = field.ty,
                        None => break,
                    }
                }
                Shape::Array { elem, count: 1 } if self.size(ty) == self.word => ty = *elem,
                _ => break,
            }
        }
        self.push(data, dynamic, 1, Via::Pointer);
    }

    /// A Go 1.24+ map (`map<K,V>`): its directory of tables, or for a small
    /// map (`dirLen` 0) its one group, which DWARF cannot say. Returns
    /// false for any other struct.
    fn swiss_map(
        &mut self,
        at: u64,
        ty: TypeId,
        fields: &[dwarf::Field],
        window: (u64, u64),
    ) -> bool {
        let is_map = self
            .types
            .ty(ty)
            .is_some_and(|ty| ty.name.starts_with("map<"));
        let dir_ptr = fields.iter().find(|field| field.name == "dirPtr");
        let dir_len = fields.iter().find(|field| field.name == "dirLen");
        let (true, Some(dir_ptr), Some(dir_len)) = (is_map, dir_ptr, dir_len) else {
            return false;
        };
        let (Some(pointer), Some(len)) = (
            self.word_at(at.wrapping_add(dir_ptr.offset), window),
            self.word_at(at.wrapping_add(dir_len.offset), window),
        ) else {
            return true;
        };
        // dirPtr is **table<K,V>.
        let Shape::Pointer(Some(table_pointer)) = self.shape(dir_ptr.ty) else {
            return true;
        };
        if len > 0 {
            self.push(pointer, *table_pointer, len, Via::Pointer);
            return true;
        }
        // table<K,V>.groups.data is *group.
        let group = match self.shape(*table_pointer) {
            Shape::Pointer(Some(table)) => self.group_of(*table),
            _ => None,
        };
        if let Some(group) = group {
            self.push(pointer, group, 1, Via::Pointer);
        }
        true
    }

    /// The group type of a `table<K,V>`.
    fn group_of(&self, table: TypeId) -> Option<TypeId> {
        let Shape::Struct(fields) = self.shape(table) else {
            return None;
        };
        let groups = fields.iter().find(|field| field.name == "groups")?;
        let Shape::Struct(reference) = self.shape(groups.ty) else {
            return None;
        };
        let data = reference.iter().find(|field| field.name == "data")?;
        match self.shape(data.ty) {
            Shape::Pointer(Some(group)) => Some(*group),
            _ => None,
        }
    }

    /// A channel's buffer: `dataqsiz` values of its element type.
    fn channel_buffer(
        &mut self,
        at: u64,
        fields: &[dwarf::Field],
        elem: TypeId,
        window: (u64, u64),
    ) {
        let find = |name: &str| fields.iter().find(|field| field.name == name);
        let (Some(buf), Some(size)) = (find("buf"), find("dataqsiz")) else {
            return;
        };
        if let (Some(pointer), Some(count)) = (
            self.word_at(at.wrapping_add(buf.offset), window),
            self.word_at(at.wrapping_add(size.offset), window),
        ) {
            self.push(pointer, elem, count, Via::Pointer);
        }
    }

    fn visit(&mut self, target: Target) {
        let end = match self.object_at(target.address) {
            Some(index) => {
                let Some(object) = self.dump.objects.get(index) else {
                    return;
                };
                let start = self.data_start(object);
                if target.address == start {
                    self.offer(index, start, target.ty, target.via);
                    return;
                }
                object.end()
            }
            // Not a heap object: global memory the compiler laid out (a
            // package-level `&T{...}` is a static temporary in data or BSS,
            // with no DWARF variable of its own), or a stack slot.
            None => match self.region_bytes(target.address) {
                Some(bytes) => target.address.saturating_add(bytes.len() as u64),
                None => return,
            },
        };
        // Inside an object or a region: walk what it points at as the
        // pointer's type says, once.
        if self.interior.insert((target.address, target.ty)) {
            let size = self.size(target.ty).max(1);
            let fit = (end - target.address) / size;
            let count = target.count.min(fit.max(1));
            self.walk(target.address, target.ty, count, (target.address, end), 0);
        }
    }

    fn data_start(&self, object: &Object) -> u64 {
        if object.has_header() {
            object.address + self.word
        } else {
            object.address
        }
    }

    /// Offers `ty` for object `index` (whose values start at `start`): kept
    /// if it agrees with the dumped pointer slots and beats the type it
    /// has (see the module docs), then walked.
    fn offer(&mut self, index: usize, start: u64, ty: TypeId, via: Via) {
        let size = self.size(ty);
        let Some(object) = self.dump.objects.get(index) else {
            return;
        };
        if size == 0 || start >= object.end() {
            return;
        }
        let fit = (object.end() - start) / size;
        if fit == 0 {
            return;
        }
        if let Some(current) = self.assigned.get(index).copied().flatten() {
            if self.size(current.ty) >= size {
                return;
            }
        }
        if !self.agrees(object, start, ty, fit) {
            return;
        }
        if let Some(slot) = self.assigned.get_mut(index) {
            *slot = Some(Assigned { ty, via });
        }
        let end = object.end();
        self.walk(start, ty, fit, (start, end), 0);
    }

    /// Whether `fit` values of `ty` at `start` agree with `object`'s dumped
    /// pointer slots.
    fn agrees(&mut self, object: &Object, start: u64, ty: TypeId, fit: u64) -> bool {
        let size = self.size(ty);
        let words = self.pointer_words_of(ty);
        let skip = start - object.address;
        let Some(slots) = self.dump.pointers(object).exact() else {
            return true;
        };
        // The runtime allocates a channel whose elements hold no pointers
        // as one pointer-free block (`hchan` and its buffer).
        if slots.is_empty() && self.types.channel_elems.contains_key(&ty) {
            return true;
        }
        let mut first_value = 0usize;
        for slot in slots.iter() {
            let Some(relative) = slot.checked_sub(skip) else {
                // A slot before the values (the malloc header is not one).
                return false;
            };
            // The runtime's pointer iterator also reports the pointer
            // words of a partial value in the slack after the last whole
            // one (Go 1.22+ malloc-header objects): allow them.
            if relative / size > fit || words.binary_search(&(relative % size)).is_err() {
                return false;
            }
            if relative < size {
                first_value += 1;
            }
        }
        // Pointers to memory outside the heap (the runtime's not-in-heap
        // types) are not pointer slots, so a value may have fewer slots
        // than its type has pointer words; but a type with pointers is not
        // a pointer-free object.
        words.is_empty() || first_value > 0
    }

    /// Offsets of the pointer words of one value of `ty`.
    fn pointer_words_of(&mut self, ty: TypeId) -> Rc<[u64]> {
        if let Some(words) = self.pointer_words.get(&ty) {
            return Rc::clone(words);
        }
        let mut words = Vec::new();
        self.collect_pointer_words(ty, 0, &mut words, 0);
        words.sort_unstable();
        words.dedup();
        let words: Rc<[u64]> = words.into();
        self.pointer_words.insert(ty, Rc::clone(&words));
        words
    }

    fn collect_pointer_words(&self, ty: TypeId, base: u64, out: &mut Vec<u64>, depth: usize) {
        if depth > MAX_DEPTH || out.len() > MAX_POINTER_WORDS {
            return;
        }
        let word = self.word;
        match self.shape(ty) {
            Shape::Plain | Shape::Typedef(_) => {}
            Shape::Pointer(_) | Shape::Func => out.push(base),
            Shape::Slice(_) | Shape::String => out.push(base),
            Shape::Interface { .. } => out.push(base.wrapping_add(word)),
            Shape::Array { elem, count } => {
                let size = self.size(*elem);
                if size == 0 || !self.has_pointers(*elem) {
                    return;
                }
                for index in 0..*count {
                    if out.len() > MAX_POINTER_WORDS {
                        break;
                    }
                    let at = base.wrapping_add(index.wrapping_mul(size));
                    self.collect_pointer_words(*elem, at, out, depth + 1);
                }
            }
            Shape::Struct(fields) => {
                for field in fields {
                    self.collect_pointer_words(
                        field.ty,
                        base.wrapping_add(field.offset),
                        out,
                        depth + 1,
                    );
                }
            }
        }
    }

    fn has_pointers(&self, ty: TypeId) -> bool {
        self.pointerful.get(ty.0 as usize).copied().unwrap_or(false)
    }
}

/// Whether each type holds pointers (by `TypeId`), worked out once.
fn pointerful(types: &GoDwarf) -> Vec<bool> {
    fn holds(types: &GoDwarf, ty: TypeId, memo: &mut [Option<bool>], depth: usize) -> bool {
        let index = ty.0 as usize;
        if let Some(Some(known)) = memo.get(index) {
            return *known;
        }
        if depth > MAX_DEPTH {
            return false;
        }
        let answer = match types.ty(ty).map(|ty| &ty.shape) {
            None | Some(Shape::Plain) | Some(Shape::Typedef(_)) => false,
            Some(
                Shape::Pointer(_)
                | Shape::Func
                | Shape::Slice(_)
                | Shape::String
                | Shape::Interface { .. },
            ) => true,
            Some(Shape::Array { elem, count }) => {
                *count > 0 && holds(types, *elem, memo, depth + 1)
            }
            Some(Shape::Struct(fields)) => fields
                .iter()
                .any(|field| holds(types, field.ty, memo, depth + 1)),
        };
        if let Some(slot) = memo.get_mut(index) {
            *slot = Some(answer);
        }
        answer
    }
    let mut memo = vec![None; types.types.len()];
    (0..types.types.len())
        .map(|index| holds(types, TypeId(index as u32), &mut memo, 0))
        .collect()
}

/// A type's name as users read it: without the linker's `noalg.` marks,
/// and the runtime structures the linker names with angle brackets in Go's
/// own syntax: `map<K,V>` (Go 1.24+) and `hash<K,V>` (before) are the map
/// `map[K]V`; `table<K,V>`, `bucket<K,V>` and `groupReference<K,V>` its
/// `map.table[K]V`, `map.bucket[K]V`, ...; `hchan<T>` is `chan T`.
fn display_name(name: &str) -> String {
    let name = name.replace("noalg.", "");
    let mut out = String::with_capacity(name.len());
    let mut rest = name.as_str();
    'scan: while !rest.is_empty() {
        for (linker, go) in [
            ("map<", "map"),
            ("hash<", "map"),
            ("table<", "map.table"),
            ("bucket<", "map.bucket"),
            ("groupReference<", "map.groupReference"),
            ("hchan<", "chan"),
        ] {
            // Only at the start of a name part (not `foo.table<`).
            let boundary = out
                .chars()
                .last()
                .is_none_or(|c| matches!(c, '*' | '[' | ']' | ' ' | '(' | ','));
            let Some(after) = rest.strip_prefix(linker).filter(|_| boundary) else {
                continue;
            };
            let Some((arguments, tail)) = angle_arguments(after) else {
                continue;
            };
            let arguments: Vec<String> = arguments.iter().map(|a| display_name(a)).collect();
            match arguments.as_slice() {
                [key, value] => out.push_str(&format!("{go}[{key}]{value}")),
                [elem] if go == "chan" => out.push_str(&format!("chan {elem}")),
                _ => break,
            }
            rest = tail;
            continue 'scan;
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// The comma-separated arguments up to the `>` closing an angle bracket
/// (`int64,*main.Entry>...` gives `["int64", "*main.Entry"]` and the text
/// after the `>`), nesting respected.
fn angle_arguments(text: &str) -> Option<(Vec<&str>, &str)> {
    let mut depth = 0usize;
    let mut start = 0;
    let mut arguments = Vec::new();
    for (index, c) in text.char_indices() {
        match c {
            '<' | '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => depth = depth.checked_sub(1)?,
            '>' if depth == 0 => {
                arguments.push(text.get(start..index)?);
                return Some((arguments, text.get(index + 1..)?));
            }
            '>' => depth -= 1,
            ',' if depth == 0 => {
                arguments.push(text.get(start..index)?);
                start = index + 1;
            }
            _ => {}
        }
    }
    None
}

/// Most fields listed for one type (a huge array keeps its first ones).
const MAX_FIELDS: usize = 4096;

/// The named leaves of one value of `ty`.
fn layout(types: &GoDwarf, ty: TypeId, word: u64) -> Vec<FieldInfo> {
    fn leaves(
        types: &GoDwarf,
        ty: TypeId,
        base: u64,
        name: &str,
        word: u64,
        out: &mut Vec<FieldInfo>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH || out.len() >= MAX_FIELDS {
            return;
        }
        let Some(go) = types.ty(ty) else {
            return;
        };
        let join = |part: &str| {
            if name.is_empty() {
                part.to_owned()
            } else {
                format!("{name}.{part}")
            }
        };
        let mut leaf = |offset: u64, size: u64, name: String, reference: bool| {
            out.push(FieldInfo {
                offset,
                size,
                name,
                reference,
            });
        };
        match &go.shape {
            Shape::Plain | Shape::Typedef(_) => {
                if go.size > 0 {
                    leaf(base, go.size, name.to_owned(), false);
                }
            }
            Shape::Pointer(_) | Shape::Func => leaf(base, word, name.to_owned(), true),
            Shape::Slice(_) => {
                leaf(base, word, name.to_owned(), true);
                leaf(base.wrapping_add(word), word, join("len"), false);
                leaf(base.wrapping_add(2 * word), word, join("cap"), false);
            }
            Shape::String => {
                leaf(base, word, name.to_owned(), true);
                leaf(base.wrapping_add(word), word, join("len"), false);
            }
            Shape::Interface { empty } => {
                let first = if *empty { "type" } else { "itab" };
                leaf(base, word, join(first), false);
                leaf(base.wrapping_add(word), word, name.to_owned(), true);
            }
            Shape::Array { elem, count } => {
                let size = types.ty(*elem).map_or(0, |elem| elem.size);
                for index in 0..*count {
                    if out.len() >= MAX_FIELDS || size == 0 {
                        break;
                    }
                    let part = format!("{name}[{index}]");
                    leaves(
                        types,
                        *elem,
                        base.wrapping_add(index.wrapping_mul(size)),
                        &part,
                        word,
                        out,
                        depth + 1,
                    );
                }
            }
            Shape::Struct(fields) => {
                for field in fields {
                    let part = join(&field.name);
                    leaves(
                        types,
                        field.ty,
                        base.wrapping_add(field.offset),
                        &part,
                        word,
                        out,
                        depth + 1,
                    );
                }
            }
        }
    }
    let mut out = Vec::new();
    leaves(types, ty, 0, "", word, &mut out, 0);
    out.sort_by_key(|field| field.offset);
    out.dedup_by_key(|field| field.offset);
    out
}

/// Writes the types found into `dump`: one [`TypeInfo`] per name shown,
/// with its layout, and each typed object's type index.
fn apply(
    dump: &mut Dump<'_>,
    types: &GoDwarf,
    assigned: Vec<Option<Assigned>>,
    bias: u64,
    stats: &mut GoTypeStats,
) {
    let word = u64::from(dump.info.pointer_size.max(4));
    let mut by_name: HashMap<String, TypeIndex> = dump
        .types
        .iter()
        .enumerate()
        .filter_map(|(index, ty)| Some((ty.name.clone(), TypeIndex(u32::try_from(index).ok()?))))
        .collect();
    for (object, assigned) in dump.objects.iter_mut().zip(assigned) {
        let Some(Assigned { ty, via }) = assigned else {
            continue;
        };
        let Some(go) = types.ty(ty) else {
            continue;
        };
        let start = if object.has_header() { word } else { 0 };
        let values = object.size.saturating_sub(start) / go.size.max(1);
        let name = match via {
            Via::Slice(slice) => types
                .ty(slice)
                .map_or_else(|| format!("[]{}", go.name), |slice| slice.name.clone()),
            Via::String => "string".to_owned(),
            Via::Pointer if values > 1 => format!("[]{}", go.name),
            Via::Pointer => go.name.clone(),
        };
        let name = display_name(&name);
        let index = match by_name.get(&name) {
            Some(&index)
                if dump
                    .types
                    .get(index.index())
                    .is_some_and(|t| t.size == go.size) =>
            {
                // A type the dump names already (a malloc header's type
                // record): give it its layout.
                if let Some(info) = dump.types.get_mut(index.index()) {
                    if info.fields.is_empty() {
                        info.fields = layout(types, ty, word);
                    }
                }
                index
            }
            _ => {
                let Ok(next) = u32::try_from(dump.types.len()) else {
                    continue;
                };
                let address = match go.runtime_type {
                    0 => 0,
                    link => link.wrapping_add(bias),
                };
                let mut info = TypeInfo::named(address, name.clone(), go.size, false);
                info.fields = layout(types, ty, word);
                dump.types.push(info);
                by_name.insert(name, TypeIndex(next));
                TypeIndex(next)
            }
        };
        object.set_type_index(Some(index));
        stats.typed_objects += 1;
        stats.typed_bytes += object.size;
    }
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn runtime_structures_are_named_in_go_syntax() {
        for (linker, shown) in [
            ("map<int64,*main.Entry>", "map[int64]*main.Entry"),
            (
                "hash<string,*unicode.RangeTable>",
                "map[string]*unicode.RangeTable",
            ),
            (
                "[]*table<int64,*main.Entry>",
                "[]*map.table[int64]*main.Entry",
            ),
            (
                "[]bucket<int64,*main.Entry>",
                "[]map.bucket[int64]*main.Entry",
            ),
            (
                "noalg.map.group[int64]*main.Entry",
                "map.group[int64]*main.Entry",
            ),
            ("hchan<uintptr>", "chan uintptr"),
            (
                "map<main.Key[int,string],func(int, int) bool>",
                "map[main.Key[int,string]]func(int, int) bool",
            ),
            ("main.table<x>", "main.table<x>"),
            ("map<broken", "map<broken"),
        ] {
            assert_eq!(display_name(linker), shown, "{linker}");
        }
    }
}
