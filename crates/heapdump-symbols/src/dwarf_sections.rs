//! An executable's DWARF sections for gimli, decompressed when the linker
//! compressed them: what the Go type reader (`go::dwarf`) and the Rust
//! layout reader (`rust_dwarf`) share.

use std::borrow::Cow;
use std::collections::HashMap;

use gimli::{AttributeValue, EndianSlice, RunTimeEndian, UnitSectionOffset};
use object::{Object, ObjectSection};

/// Largest decompressed DWARF section read (a sanity bound on the size a
/// compressed section claims).
const MAX_SECTION: u64 = 1 << 30;

/// How gimli reads the sections.
pub(crate) type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// The DWARF sections of an executable that type readers use.
pub(crate) struct DwarfSections<'a> {
    sections: HashMap<gimli::SectionId, Cow<'a, [u8]>>,
    endian: RunTimeEndian,
}

impl<'a> DwarfSections<'a> {
    /// Reads (and inflates) the sections of `file`; an error says why one
    /// cannot be read.
    pub(crate) fn read(file: &object::File<'a>) -> Result<DwarfSections<'a>, String> {
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let mut sections = HashMap::new();
        for id in [
            gimli::SectionId::DebugAbbrev,
            gimli::SectionId::DebugInfo,
            gimli::SectionId::DebugLine,
            gimli::SectionId::DebugStr,
            gimli::SectionId::DebugLineStr,
            gimli::SectionId::DebugStrOffsets,
            gimli::SectionId::DebugAddr,
            gimli::SectionId::DebugLoc,
            gimli::SectionId::DebugLocLists,
            gimli::SectionId::DebugRanges,
            gimli::SectionId::DebugRngLists,
        ] {
            if let Some(section) = file.section_by_name(id.name()) {
                sections.insert(id, section_bytes(&section)?);
            }
        }
        Ok(DwarfSections { sections, endian })
    }

    /// Whether there is a non-empty `.debug_info`.
    pub(crate) fn has_info(&self) -> bool {
        self.sections
            .get(&gimli::SectionId::DebugInfo)
            .is_some_and(|bytes| !bytes.is_empty())
    }

    /// The sections as gimli's `Dwarf`.
    pub(crate) fn dwarf(&self) -> Result<gimli::Dwarf<Reader<'_>>, gimli::Error> {
        gimli::Dwarf::load(|id| -> Result<Reader<'_>, gimli::Error> {
            Ok(EndianSlice::new(
                self.sections.get(&id).map_or(&[][..], |bytes| bytes),
                self.endian,
            ))
        })
    }
}

/// A section's bytes, decompressed if the linker compressed it (Go does,
/// with zlib).
fn section_bytes<'a>(section: &object::Section<'a, '_>) -> Result<Cow<'a, [u8]>, String> {
    let compressed = section.compressed_data().map_err(|err| err.to_string())?;
    match compressed.format {
        object::CompressionFormat::None => Ok(Cow::Borrowed(compressed.data)),
        object::CompressionFormat::Zlib => {
            if compressed.uncompressed_size > MAX_SECTION {
                return Err(format!(
                    "a compressed DWARF section claims {} bytes",
                    compressed.uncompressed_size
                ));
            }
            let mut out = Vec::with_capacity(compressed.uncompressed_size as usize);
            let mut decoder = flate2::read::ZlibDecoder::new(compressed.data);
            std::io::Read::read_to_end(
                &mut std::io::Read::take(&mut decoder, compressed.uncompressed_size),
                &mut out,
            )
            .map_err(|err| format!("a DWARF section does not inflate: {err}"))?;
            Ok(Cow::Owned(out))
        }
        other => Err(format!(
            "DWARF compressed as {other:?}, which this reader does not inflate"
        )),
    }
}

/// The global offset of a DIE reference, if it is one.
pub(crate) fn reference(
    unit: &gimli::Unit<Reader<'_>>,
    value: AttributeValue<Reader<'_>>,
) -> Option<u64> {
    match value {
        AttributeValue::UnitRef(offset) => match offset.to_unit_section_offset(unit) {
            UnitSectionOffset::DebugInfoOffset(offset) => Some(offset.0 as u64),
            UnitSectionOffset::DebugTypesOffset(_) => None,
        },
        AttributeValue::DebugInfoRef(offset) => Some(offset.0 as u64),
        _ => None,
    }
}

/// The global offset of a DIE (those of `.debug_types` marked by bit 62).
pub(crate) fn die_offset(unit: &gimli::Unit<Reader<'_>>, offset: gimli::UnitOffset) -> u64 {
    match offset.to_unit_section_offset(unit) {
        UnitSectionOffset::DebugInfoOffset(offset) => offset.0 as u64,
        UnitSectionOffset::DebugTypesOffset(offset) => offset.0 as u64 | (1 << 62),
    }
}

/// A DIE's `DW_AT_name`, empty if it has none.
pub(crate) fn die_name(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    entry: &gimli::DebuggingInformationEntry<'_, '_, Reader<'_>>,
) -> Result<String, gimli::Error> {
    Ok(match entry.attr_value(gimli::DW_AT_name)? {
        Some(value) => dwarf
            .attr_string(unit, value)
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        None => String::new(),
    })
}
