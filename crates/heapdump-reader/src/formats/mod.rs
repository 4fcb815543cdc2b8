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
