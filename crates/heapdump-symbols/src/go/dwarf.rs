//! What a Go executable's DWARF says about the values of the program:
//! every type (with Go's own attributes: kind, map key and element, the
//! address of the runtime's type descriptor), every global with its
//! address, and the variables of the functions that goroutine frames are
//! stopped in, with where each lives in its frame.
//!
//! Everything is read once into owned tables ([`GoDwarf`]), so the
//! propagation does not touch gimli.

use std::collections::HashMap;

use gimli::{AttributeValue, Operation};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::dwarf_sections::{die_name, die_offset, reference, DwarfSections, Reader};

/// Go's DWARF attributes (cmd/internal/dwarf).
const DW_AT_GO_KIND: gimli::DwAt = gimli::DwAt(0x2900);
const DW_AT_GO_ELEM: gimli::DwAt = gimli::DwAt(0x2902);
const DW_AT_GO_RUNTIME_TYPE: gimli::DwAt = gimli::DwAt(0x2904);

/// `reflect.Kind` values, as `DW_AT_go_kind` holds them.
mod kind {
    pub const CHAN: u64 = 18;
    pub const INTERFACE: u64 = 20;
    pub const SLICE: u64 = 23;
    pub const STRING: u64 = 24;
}

/// Identifies a [`GoType`] in [`GoDwarf::types`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

impl TypeId {
    fn index(self) -> usize {
        self.0 as usize
    }
}

/// A Go type, as DWARF describes it.
#[derive(Clone, Debug)]
pub struct GoType {
    /// Its name (`main.Entry`, `[]uint8`, `map[string]*main.Session`).
    pub name: String,
    /// Bytes of one value.
    pub size: u64,
    /// What it is made of.
    pub shape: Shape,
    /// Link-time address of the runtime's type descriptor, 0 if none.
    pub runtime_type: u64,
}

/// What a [`GoType`] is made of, as far as pointers go.
#[derive(Clone, Debug)]
pub enum Shape {
    /// No pointers (numbers, booleans), or a type this reader does not
    /// follow.
    Plain,
    /// A pointer to `T` (`None`: `unsafe.Pointer` and the like). Maps and
    /// channels are pointers to the runtime's structures (`*map<K,V>`,
    /// `*hchan<T>`) and keep their Go name.
    Pointer(Option<TypeId>),
    /// A struct's fields, by offset.
    Struct(Vec<Field>),
    /// `[count]elem`.
    Array {
        /// The element type.
        elem: TypeId,
        /// Number of elements.
        count: u64,
    },
    /// A slice header (`array`, `len`, `cap`) of `elem`s.
    Slice(TypeId),
    /// A string header (`str`, `len`).
    String,
    /// An interface value: (type or itab word, data word).
    Interface {
        /// `interface{}` / `any` (the first word is a type descriptor);
        /// otherwise an itab.
        empty: bool,
    },
    /// A function value: a pointer to a closure (`funcval`).
    Func,
    /// A typedef, resolved after reading.
    Typedef(TypeId),
}

/// A field of a struct.
#[derive(Clone, Debug)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Offset in the struct.
    pub offset: u64,
    /// Its type.
    pub ty: TypeId,
}

/// A global variable.
#[derive(Clone, Debug)]
pub struct Global {
    /// Link-time address.
    pub address: u64,
    /// Its type.
    pub ty: TypeId,
}

/// Where a frame variable (or a piece of it) lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Offset of the piece in the variable's value.
    pub value_offset: u64,
    /// Bytes of the piece (the whole value when the location has no
    /// pieces).
    pub size: u64,
    /// Its address as an offset from the frame's canonical frame address
    /// (the caller's stack pointer before the call); `None` when it is in
    /// a register or nowhere (not in the dump).
    pub cfa_offset: Option<i64>,
}

/// A variable live in a frame at a given pc.
#[derive(Clone, Debug)]
pub struct FrameVariable {
    /// Its type.
    pub ty: TypeId,
    /// Where its bytes are.
    pub pieces: Vec<Piece>,
}

/// The DWARF of a Go executable, read into tables.
#[derive(Debug, Default)]
pub struct GoDwarf {
    /// Every type.
    pub types: Vec<GoType>,
    /// Types by the link-time address of their runtime descriptor.
    pub by_runtime_type: HashMap<u64, TypeId>,
    /// Globals, by address.
    pub globals: Vec<Global>,
    /// Variables live at each of the pcs asked for (link-time pcs).
    pub frame_variables: HashMap<u64, Vec<FrameVariable>>,
    /// The element type of each `hchan<T>` struct (its buffer holds `T`s).
    pub channel_elems: HashMap<TypeId, TypeId>,
    /// `uint8`, for string bytes.
    pub byte: Option<TypeId>,
    /// `string`.
    pub string: Option<TypeId>,
}

impl GoDwarf {
    /// The type `id` names.
    pub fn ty(&self, id: TypeId) -> Option<&GoType> {
        self.types.get(id.index())
    }
}

/// Why a binary's DWARF could not be read.
#[derive(Debug)]
pub enum DwarfError {
    /// There is none (`-ldflags=-w`, or stripped).
    Missing,
    /// It is there but cannot be read.
    Bad(String),
}

/// Reads the DWARF of the Go executable in `data`, with the variables of
/// the functions at `pcs` (link-time return or current pcs of goroutine
/// frames; each is looked up at `pc - 1` unless it is a frame's current
/// pc, which the caller passes as is: see [`FramePc`]).
pub fn read(data: &[u8], pcs: &[FramePc]) -> Result<GoDwarf, DwarfError> {
    let file = object::File::parse(data).map_err(|err| DwarfError::Bad(err.to_string()))?;
    if file
        .section_by_name(".debug_info")
        .is_none_or(|section| section.size() == 0)
    {
        return Err(DwarfError::Missing);
    }
    let runtime_types = file
        .symbols()
        .find(|symbol| symbol.name() == Ok("runtime.types"))
        .map(|symbol| symbol.address());
    let sections = DwarfSections::read(&file).map_err(DwarfError::Bad)?;
    let dwarf = sections
        .dwarf()
        .map_err(|err| DwarfError::Bad(err.to_string()))?;
    let mut builder = Builder {
        out: GoDwarf::default(),
        ids: HashMap::new(),
        runtime_types,
        pcs,
        channel_of: Vec::new(),
        address_size: 8,
    };
    builder
        .read_all(&dwarf)
        .map_err(|err| DwarfError::Bad(err.to_string()))?;
    Ok(builder.finish())
}

/// A frame's pc to find variables for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FramePc {
    /// The link-time pc the frame record gives.
    pub pc: u64,
    /// The frame is stopped at a call (every frame but a goroutine's
    /// innermost): `pc` is a return address, and the call is at `pc - 1`.
    pub at_call: bool,
}

impl FramePc {
    fn lookup(self) -> u64 {
        if self.at_call {
            self.pc.wrapping_sub(1)
        } else {
            self.pc
        }
    }
}

struct Builder<'p> {
    out: GoDwarf,
    /// Type ids by the DIE's offset in .debug_info.
    ids: HashMap<u64, TypeId>,
    /// Link-time address of `runtime.types` (Go's runtime-type attribute is
    /// an offset from it).
    runtime_types: Option<u64>,
    pcs: &'p [FramePc],
    /// (`chan T` typedef, its element): the channel's `hchan<T>` is found
    /// once typedefs are resolved.
    channel_of: Vec<(TypeId, TypeId)>,
    /// Bytes of a pointer (from the units).
    address_size: u8,
}

fn is_type_tag(tag: gimli::DwTag) -> bool {
    matches!(
        tag,
        gimli::DW_TAG_base_type
            | gimli::DW_TAG_structure_type
            | gimli::DW_TAG_pointer_type
            | gimli::DW_TAG_array_type
            | gimli::DW_TAG_typedef
            | gimli::DW_TAG_subroutine_type
            | gimli::DW_TAG_unspecified_type
    )
}

/// A type DIE's attributes, read in the first pass.
struct RawType {
    id: TypeId,
    tag: gimli::DwTag,
    target: Option<u64>,
    go_kind: u64,
    elem: Option<u64>,
    members: Vec<(String, u64, u64)>,
    count: Option<u64>,
}

impl Builder<'_> {
    fn read_all(&mut self, dwarf: &gimli::Dwarf<Reader<'_>>) -> Result<(), gimli::Error> {
        let mut raws: Vec<RawType> = Vec::new();
        let mut globals: Vec<(u64, u64)> = Vec::new();
        let mut variables: Vec<(u64, u64, Vec<Piece>)> = Vec::new(); // (pc, type DIE, pieces)
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let unit = dwarf.unit(header)?;
            self.address_size = unit.encoding().address_size;
            self.read_unit(dwarf, &unit, &mut raws, &mut globals, &mut variables)?;
        }
        // Second pass: shapes, now that every DIE has an id.
        for raw in raws {
            let shape = self.shape(&raw);
            if let Some(ty) = self.out.types.get_mut(raw.id.index()) {
                ty.shape = shape;
            }
        }
        for (address, ty) in globals {
            if let Some(&ty) = self.ids.get(&ty) {
                self.out.globals.push(Global { address, ty });
            }
        }
        self.out.globals.sort_by_key(|global| global.address);
        for (pc, ty, pieces) in variables {
            if let Some(&ty) = self.ids.get(&ty) {
                self.out
                    .frame_variables
                    .entry(pc)
                    .or_default()
                    .push(FrameVariable { ty, pieces });
            }
        }
        Ok(())
    }

    fn read_unit(
        &mut self,
        dwarf: &gimli::Dwarf<Reader<'_>>,
        unit: &gimli::Unit<Reader<'_>>,
        raws: &mut Vec<RawType>,
        globals: &mut Vec<(u64, u64)>,
        variables: &mut Vec<(u64, u64, Vec<Piece>)>,
    ) -> Result<(), gimli::Error> {
        let mut entries = unit.entries();
        // The open DIEs by depth: the type a member or subrange belongs
        // to, and the pcs of the frames inside the enclosing scope.
        let mut type_at_depth: Vec<Option<usize>> = Vec::new();
        let mut scope_pcs: Vec<Option<Vec<FramePc>>> = Vec::new();
        let mut depth: isize = 0;
        while let Some((delta, entry)) = entries.next_dfs()? {
            depth += delta;
            let Ok(level) = usize::try_from(depth) else {
                break;
            };
            type_at_depth.truncate(level);
            scope_pcs.truncate(level);
            let tag = entry.tag();
            let parent_type = type_at_depth.last().copied().flatten();
            let parent_pcs = scope_pcs.last().cloned().flatten();
            let mut this_type = None;
            let mut this_pcs = None;
            if is_type_tag(tag) {
                let offset = die_offset(unit, entry.offset());
                let id = TypeId(self.out.types.len() as u32);
                self.ids.insert(offset, id);
                let name = die_name(dwarf, unit, entry)?;
                let size = match entry.attr_value(gimli::DW_AT_byte_size)? {
                    Some(value) => value.udata_value().unwrap_or(0),
                    None => 0,
                };
                let runtime_type = match entry.attr_value(DW_AT_GO_RUNTIME_TYPE)? {
                    Some(AttributeValue::Addr(address)) => address,
                    Some(value) => value.udata_value().unwrap_or(0),
                    None => 0,
                };
                let runtime_type = match (runtime_type, self.runtime_types) {
                    (0, _) | (_, None) => 0,
                    (offset, Some(base)) => base.wrapping_add(offset),
                };
                if runtime_type != 0 {
                    self.out.by_runtime_type.entry(runtime_type).or_insert(id);
                }
                let go_kind = match entry.attr_value(DW_AT_GO_KIND)? {
                    Some(value) => value.udata_value().unwrap_or(0),
                    None => 0,
                };
                if tag == gimli::DW_TAG_base_type && name == "uint8" {
                    self.out.byte.get_or_insert(id);
                }
                if tag == gimli::DW_TAG_structure_type && name == "string" {
                    self.out.string.get_or_insert(id);
                }
                let target = match entry.attr_value(gimli::DW_AT_type)? {
                    Some(value) => reference(unit, value),
                    None => None,
                };
                let elem = match entry.attr_value(DW_AT_GO_ELEM)? {
                    Some(value) => reference(unit, value),
                    None => None,
                };
                self.out.types.push(GoType {
                    name,
                    size,
                    shape: Shape::Plain,
                    runtime_type,
                });
                this_type = Some(raws.len());
                raws.push(RawType {
                    id,
                    tag,
                    target,
                    go_kind,
                    elem,
                    members: Vec::new(),
                    count: None,
                });
            } else if tag == gimli::DW_TAG_member {
                if let Some(raw) = parent_type.and_then(|index| raws.get_mut(index)) {
                    let name = die_name(dwarf, unit, entry)?;
                    let offset = match entry.attr_value(gimli::DW_AT_data_member_location)? {
                        Some(value) => value.udata_value(),
                        None => Some(0),
                    };
                    let ty = match entry.attr_value(gimli::DW_AT_type)? {
                        Some(value) => reference(unit, value),
                        None => None,
                    };
                    if let (Some(offset), Some(ty)) = (offset, ty) {
                        raw.members.push((name, offset, ty));
                    }
                }
            } else if tag == gimli::DW_TAG_subrange_type {
                if let Some(raw) = parent_type.and_then(|index| raws.get_mut(index)) {
                    if let Some(value) = entry.attr_value(gimli::DW_AT_count)? {
                        raw.count = value.udata_value();
                    }
                }
            } else if matches!(
                tag,
                gimli::DW_TAG_subprogram
                    | gimli::DW_TAG_lexical_block
                    | gimli::DW_TAG_inlined_subroutine
            ) {
                // The frames stopped inside this scope.
                let candidates: Option<Vec<FramePc>> = if tag == gimli::DW_TAG_subprogram {
                    Some(self.pcs.to_vec())
                } else {
                    parent_pcs.clone()
                };
                if let Some(candidates) = candidates.filter(|pcs| !pcs.is_empty()) {
                    let mut inside = Vec::new();
                    let mut ranges = dwarf.die_ranges(unit, entry)?;
                    while let Some(range) = ranges.next()? {
                        inside.extend(
                            candidates
                                .iter()
                                .filter(|pc| (range.begin..range.end).contains(&pc.lookup())),
                        );
                    }
                    this_pcs = Some(inside);
                }
            } else if tag == gimli::DW_TAG_variable && level == 1 {
                // A global: `DW_OP_addr`.
                let ty = match entry.attr_value(gimli::DW_AT_type)? {
                    Some(value) => reference(unit, value),
                    None => None,
                };
                if let (Some(ty), Some(gimli::AttributeValue::Exprloc(expr))) =
                    (ty, entry.attr_value(gimli::DW_AT_location)?)
                {
                    let mut ops = expr.operations(unit.encoding());
                    let address = match ops.next() {
                        Ok(Some(Operation::Address { address })) => Some(address),
                        Ok(Some(Operation::AddressIndex { index })) => {
                            dwarf.address(unit, index).ok()
                        }
                        _ => None,
                    };
                    if let Some(address) = address {
                        globals.push((address, ty));
                    }
                }
            } else if matches!(tag, gimli::DW_TAG_variable | gimli::DW_TAG_formal_parameter) {
                if let Some(pcs) = parent_pcs.as_ref().filter(|pcs| !pcs.is_empty()) {
                    self.frame_variable(dwarf, unit, entry, pcs, variables)?;
                }
            }
            type_at_depth.push(this_type);
            scope_pcs.push(this_pcs.or(parent_pcs));
        }
        Ok(())
    }

    /// Records where the variable `entry` lives at each of `pcs`.
    fn frame_variable(
        &mut self,
        dwarf: &gimli::Dwarf<Reader<'_>>,
        unit: &gimli::Unit<Reader<'_>>,
        entry: &gimli::DebuggingInformationEntry<'_, '_, Reader<'_>>,
        pcs: &[FramePc],
        variables: &mut Vec<(u64, u64, Vec<Piece>)>,
    ) -> Result<(), gimli::Error> {
        let Some(ty) = entry
            .attr_value(gimli::DW_AT_type)?
            .and_then(|v| reference(unit, v))
        else {
            return Ok(());
        };
        match entry.attr_value(gimli::DW_AT_location)? {
            Some(AttributeValue::Exprloc(expr)) => {
                let pieces = pieces(unit, expr);
                for pc in pcs {
                    variables.push((pc.pc, ty, pieces.clone()));
                }
            }
            Some(value) => {
                let Some(offset) = dwarf.attr_locations_offset(unit, value)? else {
                    return Ok(());
                };
                let mut list = dwarf.locations(unit, offset)?;
                while let Some(location) = list.next()? {
                    for pc in pcs {
                        if (location.range.begin..location.range.end).contains(&pc.lookup()) {
                            variables.push((pc.pc, ty, pieces(unit, location.data)));
                        }
                    }
                }
            }
            None => {}
        }
        Ok(())
    }

    fn shape(&mut self, raw: &RawType) -> Shape {
        let id_of = |offset: Option<u64>| offset.and_then(|offset| self.ids.get(&offset).copied());
        match raw.tag {
            gimli::DW_TAG_pointer_type => Shape::Pointer(id_of(raw.target)),
            gimli::DW_TAG_array_type => match (id_of(raw.target), raw.count) {
                (Some(elem), Some(count)) => Shape::Array { elem, count },
                _ => Shape::Plain,
            },
            gimli::DW_TAG_subroutine_type => Shape::Func,
            gimli::DW_TAG_typedef => {
                if raw.go_kind == kind::CHAN {
                    if let (Some(elem), Some(_)) = (id_of(raw.elem), id_of(raw.target)) {
                        self.channel_of.push((raw.id, elem));
                    }
                }
                match id_of(raw.target) {
                    Some(target) => Shape::Typedef(target),
                    None => Shape::Plain,
                }
            }
            gimli::DW_TAG_structure_type => match raw.go_kind {
                kind::SLICE => match id_of(raw.elem) {
                    Some(elem) => Shape::Slice(elem),
                    None => Shape::Plain,
                },
                kind::STRING => Shape::String,
                kind::INTERFACE => Shape::Interface {
                    empty: raw
                        .members
                        .first()
                        .is_some_and(|(name, _, _)| name == "_type"),
                },
                _ => {
                    // runtime.eface / runtime.iface themselves (kind 0).
                    let first = raw.members.first().map(|(name, _, _)| name.as_str());
                    let interface = raw.members.len() == 2
                        && matches!(first, Some("_type") | Some("tab"))
                        && raw
                            .members
                            .get(1)
                            .is_some_and(|(name, _, _)| name == "data");
                    if interface {
                        Shape::Interface {
                            empty: first == Some("_type"),
                        }
                    } else {
                        Shape::Struct(
                            raw.members
                                .iter()
                                .filter_map(|(name, offset, ty)| {
                                    Some(Field {
                                        name: name.clone(),
                                        offset: *offset,
                                        ty: id_of(Some(*ty))?,
                                    })
                                })
                                .collect(),
                        )
                    }
                }
            },
            _ => Shape::Plain,
        }
    }

    fn finish(mut self) -> GoDwarf {
        // Go's pointer DIEs have no byte size.
        let word = u64::from(self.address_size);
        for ty in &mut self.out.types {
            if ty.size == 0 && matches!(ty.shape, Shape::Pointer(_) | Shape::Func) {
                ty.size = word;
            }
        }
        // Interfaces and maps are typedefs in Go's DWARF; resolve every
        // typedef to what it names, keeping Go's name (`fmt.Stringer`,
        // `map[int64]*main.Entry`) where the target is unnamed or a
        // runtime structure.
        let count = self.out.types.len();
        for index in 0..count {
            let mut target = match self.out.types.get(index).map(|ty| &ty.shape) {
                Some(Shape::Typedef(target)) => *target,
                _ => continue,
            };
            // Follow chains, bounded against cycles.
            for _ in 0..16 {
                match self.out.types.get(target.index()).map(|ty| &ty.shape) {
                    Some(Shape::Typedef(next)) => target = *next,
                    _ => break,
                }
            }
            let Some(resolved) = self.out.types.get(target.index()).cloned() else {
                continue;
            };
            if let Some(ty) = self.out.types.get_mut(index) {
                ty.shape = match resolved.shape {
                    Shape::Typedef(_) => Shape::Plain,
                    shape => shape,
                };
                if ty.size == 0 {
                    ty.size = resolved.size;
                }
            }
        }
        for (chan, elem) in std::mem::take(&mut self.channel_of) {
            if let Some(Shape::Pointer(Some(hchan))) =
                self.out.types.get(chan.index()).map(|ty| &ty.shape)
            {
                self.out.channel_elems.insert(*hchan, elem);
            }
        }
        self.out
    }
}

/// The pieces of a location expression: each piece's place relative to
/// the canonical frame address, where it is on the stack.
fn pieces(unit: &gimli::Unit<Reader<'_>>, expr: gimli::Expression<Reader<'_>>) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut value_offset = 0u64;
    // The address being built: Some(offset from the CFA) while the
    // expression is CFA-relative, None once it is a register or unknown.
    let mut current: Option<i64> = None;
    let mut pending: Option<i64> = None;
    let mut ops = expr.operations(unit.encoding());
    let mut any = false;
    loop {
        let op = match ops.next() {
            Ok(Some(op)) => op,
            Ok(None) => break,
            Err(_) => return out,
        };
        any = true;
        match op {
            Operation::CallFrameCFA => current = Some(0),
            Operation::FrameOffset { offset } => current = Some(offset),
            Operation::SignedConstant { value } => pending = Some(value),
            Operation::UnsignedConstant { value } => pending = i64::try_from(value).ok(),
            Operation::Plus => {
                current = match (current, pending.take()) {
                    (Some(base), Some(value)) => base.checked_add(value),
                    _ => None,
                }
            }
            Operation::PlusConstant { value } => {
                current = current.and_then(|base| base.checked_add(i64::try_from(value).ok()?))
            }
            Operation::Piece {
                size_in_bits,
                bit_offset: None,
            } => {
                let size = size_in_bits / 8;
                out.push(Piece {
                    value_offset,
                    size,
                    cfa_offset: current.take(),
                });
                value_offset = value_offset.wrapping_add(size);
                pending = None;
            }
            _ => {
                current = None;
                pending = None;
            }
        }
    }
    if out.is_empty() && any {
        out.push(Piece {
            value_offset: 0,
            size: u64::MAX,
            cfa_offset: current,
        });
    }
    out
}
