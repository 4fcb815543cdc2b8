//! Input formats, and the one place that picks a format by the file's header.
//!
//! Each format is a module with a unit type implementing [`Format`]; adding a
//! format means adding it to [`FORMATS`] and to [`KNOWN_FORMATS`].

use crate::dump::Dump;
use crate::error::{Error, ErrorKind, FirstBytes};

pub mod go;
pub mod rust;

/// A heap dump file format.
pub trait Format: Sync {
    /// The format's name, as shown in [`DumpInfo::format`](crate::DumpInfo::format).
    fn name(&self) -> &'static str;

    /// Whether `bytes` (the whole file) starts with this format's header.
    fn matches(&self, bytes: &[u8]) -> bool;

    /// Decodes the whole file. Calls `progress(bytes_done, bytes_total)` now
    /// and then while it works.
    fn parse<'data>(
        &self,
        bytes: &'data [u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Dump<'data>, Error>;
}

/// Every format this reader knows, in the order [`parse`] tries them.
pub static FORMATS: &[&dyn Format] = &[&rust::RustFormat, &go::GoFormat];

/// The names of [`FORMATS`], comma-separated, for error messages.
pub const KNOWN_FORMATS: &str = "heapdump-rs, go";

/// The format whose header `bytes` starts with, if any.
pub fn detect(bytes: &[u8]) -> Option<&'static dyn Format> {
    FORMATS.iter().copied().find(|format| format.matches(bytes))
}

/// Decodes a whole dump file, in whichever known format it is.
///
/// `progress(bytes_done, bytes_total)` is called now and then; pass
/// `&mut |_, _| {}` to ignore it. A file that starts with no known header
/// gives [`ErrorKind::UnknownFormat`].
pub fn parse<'data>(
    bytes: &'data [u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Dump<'data>, Error> {
    match detect(bytes) {
        Some(format) => format.parse(bytes, progress),
        None => Err(Error::new(
            0,
            ErrorKind::UnknownFormat {
                first_bytes: FirstBytes::of(bytes),
                known: KNOWN_FORMATS,
            },
        )),
    }
}

/// A field whose value is wrong, at `offset`.
pub(crate) fn bad_value(
    offset: u64,
    field: &'static str,
    value: u64,
    reason: &'static str,
) -> Error {
    Error::new(
        offset,
        ErrorKind::BadValue {
            field,
            value,
            reason,
        },
    )
}

/// Reads an id that must be new (not in `seen`, where it is then added);
/// `duplicate` says what repeating it means.
pub(crate) fn unique_id(
    cursor: &mut crate::cursor::Cursor<'_>,
    field: &'static str,
    seen: &mut std::collections::HashSet<u64>,
    duplicate: &'static str,
) -> Result<u64, Error> {
    let offset = cursor.offset();
    let id = cursor.uvarint(field)?;
    if seen.insert(id) {
        Ok(id)
    } else {
        Err(bad_value(offset, field, id, duplicate))
    }
}

/// Reads a stack id: not 0, and new.
pub(crate) fn unique_stack_id(
    cursor: &mut crate::cursor::Cursor<'_>,
    field: &'static str,
    seen: &mut std::collections::HashSet<u64>,
    duplicate: &'static str,
) -> Result<crate::dump::StackId, Error> {
    let offset = cursor.offset();
    let id = unique_id(cursor, field, seen, duplicate)?;
    crate::dump::StackId::new(id).ok_or_else(|| bad_value(offset, field, id, "must not be 0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_formats_lists_every_format() {
        let names: Vec<&str> = FORMATS.iter().map(|format| format.name()).collect();
        assert_eq!(names.join(", "), KNOWN_FORMATS);
    }

    #[test]
    fn unknown_format_shows_first_bytes() {
        let err = parse(b"\x7fELF\x02\x01\x01", &mut |_, _| {}).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at byte offset 0: not a heap dump in a known format \
             (first bytes: 7f 45 4c 46 02 01 01); known formats: heapdump-rs, go"
        );
        let err = parse(b"", &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("the file is empty"), "{err}");
    }
}
