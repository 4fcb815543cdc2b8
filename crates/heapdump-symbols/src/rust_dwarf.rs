//! Layouts of a Rust program's types from its DWARF, when it has them
//! (`debug = 2`, or `debug = "full"`; line tables alone describe no
//! types): each type's size and its fields by offset, under the names
//! allocation sites give types (std paths shortened), so that objects typed
//! from their sites get field names ([`TypeInfo::fields`](heapdump_reader::TypeInfo::fields)) and type
//! propagation follows each field's own type ([`propagate`](crate::propagate)).
//!
//! Structs of the program, tuples, and `ArcInner`/`RcInner` are opened up
//! into their fields (`session.profile`, `0`, `data.user`); a field whose
//! type is the standard library's (`String`, `Vec<T>`, `Option<Box<T>>`,
//! `HashMap<K, V>`), a pointer, a number or an enum is one leaf, named by
//! the field, with its type's name.

use std::collections::HashMap;

use crate::dwarf_sections::{die_name, die_offset, reference, DwarfSections, Reader};
use crate::symbolize::short_type;

/// A leaf of a layout: a field that is not opened further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// Offset in one value.
    pub offset: u64,
    /// Bytes it takes.
    pub size: u64,
    /// Its path through the opened structs (`profile`, `data.user`, `0`);
    /// empty for a value that is not a struct.
    pub name: String,
    /// Its type's name, as sites name types (`String`, `Box<app::Profile>`).
    pub ty: String,
}

/// A type's layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bytes of one value.
    pub size: u64,
    /// Its leaves, by offset.
    pub leaves: Vec<Leaf>,
}

/// The layouts of the types a Rust executable's DWARF describes, by the
/// names sites give types.
#[derive(Debug, Default)]
pub struct RustLayouts {
    types: Vec<RawType>,
    /// Index in `types` by DIE offset.
    by_offset: HashMap<u64, usize>,
    /// Index in `types` by name as sites give it (the first DIE wins).
    by_name: HashMap<String, usize>,
}

/// Deepest nesting of opened structs.
const MAX_DEPTH: usize = 16;
/// Most leaves of one layout (a huge array of structs is one leaf).
const MAX_LEAVES: usize = 4096;

#[derive(Debug)]
struct RawType {
    tag: gimli::DwTag,
    /// The full path (`leaky_service::Session`,
    /// `alloc::vec::Vec<u8, alloc::alloc::Global>`), `[T; N]` for arrays.
    name: String,
    size: u64,
    /// Pointee or element type (DIE offset).
    target: Option<u64>,
    /// (name, offset, type DIE offset) of a struct's own members.
    members: Vec<(String, u64, u64)>,
    /// An enum (a struct with a variant part).
    has_variants: bool,
    count: Option<u64>,
}

impl RustLayouts {
    /// Reads the type DIEs of the executable in `data`; `Ok(None)` when it
    /// has no type information (no DWARF, or line tables only).
    pub fn read(data: &[u8]) -> Result<Option<RustLayouts>, String> {
        let file = object::File::parse(data).map_err(|err| err.to_string())?;
        let sections = DwarfSections::read(&file)?;
        if !sections.has_info() {
            return Ok(None);
        }
        let dwarf = sections.dwarf().map_err(|err| err.to_string())?;
        let mut layouts = RustLayouts::default();
        layouts
            .read_all(&dwarf)
            .map_err(|err| format!("DWARF: {err}"))?;
        if !layouts.types.iter().any(|ty| !ty.members.is_empty()) {
            return Ok(None);
        }
        for (index, ty) in layouts.types.iter().enumerate() {
            if !ty.name.is_empty() && ty.tag != gimli::DW_TAG_subroutine_type {
                layouts.by_name.entry(site_name(&ty.name)).or_insert(index);
            }
        }
        Ok(Some(layouts))
    }

    fn read_all(&mut self, dwarf: &gimli::Dwarf<Reader<'_>>) -> Result<(), gimli::Error> {
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let unit = dwarf.unit(header)?;
            self.read_unit(dwarf, &unit)?;
        }
        // Arrays are named from their elements once all are read.
        for index in 0..self.types.len() {
            if self.types.get(index).map(|ty| ty.tag) == Some(gimli::DW_TAG_array_type) {
                let name = self.name_of(index, 0);
                if let Some(ty) = self.types.get_mut(index) {
                    ty.name = name;
                }
            }
        }
        Ok(())
    }

    fn read_unit(
        &mut self,
        dwarf: &gimli::Dwarf<Reader<'_>>,
        unit: &gimli::Unit<Reader<'_>>,
    ) -> Result<(), gimli::Error> {
        let mut entries = unit.entries();
        // By depth: the path of the enclosing namespaces and types, and the
        // type a member or subrange belongs to.
        let mut path: Vec<Option<String>> = Vec::new();
        let mut owner: Vec<Option<usize>> = Vec::new();
        let mut depth: isize = 0;
        while let Some((delta, entry)) = entries.next_dfs()? {
            depth += delta;
            let Ok(level) = usize::try_from(depth) else {
                break;
            };
            path.truncate(level);
            owner.truncate(level);
            let tag = entry.tag();
            let parent = owner.last().copied().flatten();
            let name = die_name(dwarf, unit, entry)?;
            let mut this_owner = None;
            match tag {
                gimli::DW_TAG_structure_type
                | gimli::DW_TAG_union_type
                | gimli::DW_TAG_enumeration_type
                | gimli::DW_TAG_base_type
                | gimli::DW_TAG_pointer_type
                | gimli::DW_TAG_array_type
                | gimli::DW_TAG_subroutine_type => {
                    let prefix: Vec<&str> = path.iter().flatten().map(String::as_str).collect();
                    let full = if prefix.is_empty()
                        || name.is_empty()
                        || matches!(tag, gimli::DW_TAG_base_type | gimli::DW_TAG_pointer_type)
                        || name.starts_with('(')
                    {
                        name.clone()
                    } else {
                        format!("{}::{name}", prefix.join("::"))
                    };
                    let size = match entry.attr_value(gimli::DW_AT_byte_size)? {
                        Some(value) => value.udata_value().unwrap_or(0),
                        // Pointers (`Box<T>` among them) may leave their
                        // size out.
                        None if tag == gimli::DW_TAG_pointer_type => {
                            u64::from(unit.encoding().address_size)
                        }
                        None => 0,
                    };
                    let target = match entry.attr_value(gimli::DW_AT_type)? {
                        Some(value) => reference(unit, value),
                        None => None,
                    };
                    let index = self.types.len();
                    self.by_offset
                        .insert(die_offset(unit, entry.offset()), index);
                    self.types.push(RawType {
                        tag,
                        name: full,
                        size,
                        target,
                        members: Vec::new(),
                        has_variants: false,
                        count: None,
                    });
                    this_owner = Some(index);
                }
                gimli::DW_TAG_member => {
                    let member_offset = match entry.attr_value(gimli::DW_AT_data_member_location)? {
                        Some(value) => value.udata_value(),
                        None => None,
                    };
                    let ty = match entry.attr_value(gimli::DW_AT_type)? {
                        Some(value) => reference(unit, value),
                        None => None,
                    };
                    // Members of a variant (inside a variant part) are not
                    // the struct's own: their owner slot is empty.
                    if let (Some(owner), Some(offset), Some(ty)) = (parent, member_offset, ty) {
                        if let Some(raw) = self.types.get_mut(owner) {
                            raw.members.push((name.clone(), offset, ty));
                        }
                    }
                }
                gimli::DW_TAG_variant_part => {
                    if let Some(raw) = parent.and_then(|owner| self.types.get_mut(owner)) {
                        raw.has_variants = true;
                    }
                }
                gimli::DW_TAG_subrange_type => {
                    let count = match entry.attr_value(gimli::DW_AT_count)? {
                        Some(value) => value.udata_value(),
                        None => match entry.attr_value(gimli::DW_AT_upper_bound)? {
                            Some(value) => value.udata_value().map(|bound| bound + 1),
                            None => None,
                        },
                    };
                    if let Some(raw) = parent.and_then(|owner| self.types.get_mut(owner)) {
                        raw.count = count;
                    }
                    this_owner = parent;
                }
                _ => {}
            }
            let segment = match tag {
                gimli::DW_TAG_namespace
                | gimli::DW_TAG_structure_type
                | gimli::DW_TAG_union_type
                | gimli::DW_TAG_enumeration_type
                    if !name.is_empty() =>
                {
                    Some(name)
                }
                _ => None,
            };
            path.push(segment);
            owner.push(this_owner);
        }
        Ok(())
    }

    /// The name of type `index` as DWARF gives it; arrays as `[T; N]`.
    fn name_of(&self, index: usize, depth: usize) -> String {
        let Some(ty) = self.types.get(index) else {
            return String::new();
        };
        if ty.tag != gimli::DW_TAG_array_type || depth > MAX_DEPTH {
            return ty.name.clone();
        }
        let element = ty
            .target
            .and_then(|target| self.by_offset.get(&target))
            .map(|&element| self.name_of(element, depth + 1))
            .unwrap_or_default();
        match ty.count {
            Some(count) => format!("[{element}; {count}]"),
            None => format!("[{element}]"),
        }
    }

    /// The layout of one value in a block sites name `block`: of `T` for
    /// `T` (a `Box<T>`, or `ArcInner<T>`), of the element `T` for `[T]`
    /// (a vector's buffer: one value every `size` bytes from the start);
    /// `None` for a hash table or B-tree node (their values do not start
    /// at the block's start), `str`, or a type the DWARF does not have.
    pub fn block_layout(&self, block: &str) -> Option<Layout> {
        if block.starts_with("hash table of ") || block.starts_with("BTreeMap node of ") {
            return None;
        }
        match block.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
            Some(inner) => self.layout(crate::symbolize::array_element(inner)?),
            None => self.layout(block),
        }
    }

    /// The layout of the type sites name `name`, if the DWARF has it.
    pub fn layout(&self, name: &str) -> Option<Layout> {
        let &index = self.by_name.get(name)?;
        let ty = self.types.get(index)?;
        let mut leaves = Vec::new();
        self.open(index, 0, "", &mut leaves, 0, true);
        leaves.sort_by_key(|leaf| leaf.offset);
        Some(Layout {
            size: ty.size,
            leaves,
        })
    }

    /// Adds the leaves of type `index` at `offset` under `prefix`.
    fn open(
        &self,
        index: usize,
        offset: u64,
        prefix: &str,
        out: &mut Vec<Leaf>,
        depth: usize,
        top: bool,
    ) {
        let Some(ty) = self.types.get(index) else {
            return;
        };
        if ty.size == 0 && !top {
            return;
        }
        let opens = depth < MAX_DEPTH
            && out.len() < MAX_LEAVES
            && ty.tag == gimli::DW_TAG_structure_type
            && !ty.has_variants
            && !ty.members.is_empty()
            && opens_up(&ty.name);
        if !opens {
            out.push(Leaf {
                offset,
                size: ty.size,
                name: prefix.to_owned(),
                ty: site_name(&ty.name),
            });
            return;
        }
        for (name, member_offset, member_type) in &ty.members {
            let Some(&member) = self.by_offset.get(member_type) else {
                continue;
            };
            // Tuple fields and tuple-struct fields are `__0`, `__1`.
            let name = name.strip_prefix("__").unwrap_or(name);
            let path = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}.{name}")
            };
            self.open(
                member,
                offset.saturating_add(*member_offset),
                &path,
                out,
                depth + 1,
                false,
            );
        }
    }
}

/// Whether a struct named `name` (a full DWARF path) is opened into its
/// fields: the program's own structs, tuples, and the counted boxes of
/// `Arc` and `Rc` (whose value is what matters); the standard library's
/// other types are leaves.
fn opens_up(name: &str) -> bool {
    if name.starts_with('(')
        || name.starts_with("alloc::sync::ArcInner<")
        || name.starts_with("alloc::rc::RcInner<")
    {
        return true;
    }
    !["alloc::", "core::", "std::", "hashbrown::"]
        .iter()
        .any(|library| name.starts_with(library))
}

/// A DWARF type name as sites name types: std paths shortened
/// (`short_type`), `ArcInner`/`RcInner` without their module.
fn site_name(name: &str) -> String {
    let short = short_type(name);
    for module in ["alloc::sync::", "alloc::rc::"] {
        if let Some(inner) = short.strip_prefix(module) {
            if inner.starts_with("ArcInner<") || inner.starts_with("RcInner<") {
                return inner.to_owned();
            }
        }
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_s_structs_tuples_and_counted_boxes_are_opened() {
        assert!(opens_up("app::Session"));
        assert!(opens_up("(u64, alloc::string::String)"));
        assert!(opens_up("alloc::sync::ArcInner<app::Job>"));
        assert!(!opens_up("alloc::vec::Vec<u8, alloc::alloc::Global>"));
        assert!(!opens_up(
            "core::option::Option<alloc::boxed::Box<app::Node, alloc::alloc::Global>>"
        ));
    }

    #[test]
    fn dwarf_names_read_as_site_names() {
        assert_eq!(
            site_name("alloc::sync::ArcInner<std::sync::poison::mutex::Mutex<alloc::vec::Vec<u8, alloc::alloc::Global>>>"),
            "ArcInner<std::sync::poison::mutex::Mutex<Vec<u8>>>"
        );
        assert_eq!(
            site_name("alloc::boxed::Box<app::Profile, alloc::alloc::Global>"),
            "Box<app::Profile>"
        );
    }
}
