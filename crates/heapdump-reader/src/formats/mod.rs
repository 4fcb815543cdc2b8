//! Input formats, and the one place that picks a format by the file's header.
//!
//! Each format is a module with a unit type implementing [`Format`]: it
//! detects its files, decodes them into the common [`Dump`], and says what
//! its dumps guarantee ([`Capabilities`]) and leave out
//! ([`Format::root_caveat`]). What only one format knows stays in that
//! format's module, in its own types (Go: [`go::GoDump`], reached with
//! [`go::extras`]). Adding a format means adding it to [`FORMATS`] and to
//! [`KNOWN_FORMATS`] (docs/ARCHITECTURE.md, "Adding an input format").

use std::path::Path;

use crate::dump::{Capabilities, Dump, Object};
use crate::error::{Error, ErrorKind, FirstBytes};

pub mod go;
pub mod hprof;
pub mod rust;

/// A heap dump file format.
pub trait Format: Sync {
    /// The format's name, as shown in [`DumpInfo::format`](crate::DumpInfo::format).
    fn name(&self) -> &'static str;

    /// File-name extensions dumps of this format usually have, without the
    /// dot (`hdump`), for tools that must not overwrite a dump.
    fn extensions(&self) -> &'static [&'static str];

    /// Whether `bytes` (the whole file, or at least its first bytes) starts
    /// with this format's header.
    fn matches(&self, bytes: &[u8]) -> bool;

    /// What every dump of this format guarantees; [`Dump::new`] puts it in
    /// [`Dump::capabilities`].
    fn capabilities(&self) -> Capabilities;

    /// What the roots of `dump` (a dump of this format) leave out, in plain
    /// words, when objects held only from memory outside the dump look
    /// unreachable; `None` when the roots are all the runtime scans.
    /// [`Dump::root_caveat`] asks the dump's format.
    fn root_caveat(&self, dump: &Dump<'_>) -> Option<String> {
        let _ = dump;
        None
    }

    /// The value of `object` as text, when the format knows the object is
    /// a string (HPROF: a `java.lang.String`, from its `value` array and
    /// `coder`); `None` otherwise. [`Dump::object_text`] asks the dump's
    /// format.
    fn object_text(&self, dump: &Dump<'_>, object: &Object) -> Option<String> {
        let _ = (dump, object);
        None
    }

    /// The name of the reference at `offset` of `object`'s contents, when
    /// the format names fields (HPROF: `LeakyCache.CACHE` for a static
    /// field of a class object, `next` for an instance field, `[3]` for an
    /// array element); `None` otherwise. [`Dump::field_name`] asks the
    /// dump's format.
    fn field_name(&self, dump: &Dump<'_>, object: &Object, offset: u64) -> Option<String> {
        let _ = (dump, object, offset);
        None
    }

    /// Decodes the whole file. Calls `progress(bytes_done, bytes_total)` now
    /// and then while it works.
    fn parse<'data>(
        &self,
        bytes: &'data [u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Dump<'data>, Error>;
}

/// Every format this reader knows, in the order [`parse`] tries them.
pub static FORMATS: &[&dyn Format] = &[&rust::RustFormat, &go::GoFormat, &hprof::HprofFormat];

/// The names of [`FORMATS`], comma-separated, for error messages.
pub const KNOWN_FORMATS: &str = "heapdump-rs, go, hprof";

/// The format whose header `bytes` starts with, if any.
pub fn detect(bytes: &[u8]) -> Option<&'static dyn Format> {
    FORMATS.iter().copied().find(|format| format.matches(bytes))
}

/// The format named `name` ([`Format::name`]), if this reader knows it.
pub fn by_name(name: &str) -> Option<&'static dyn Format> {
    FORMATS.iter().copied().find(|format| format.name() == name)
}

/// The [`Capabilities`] of the format named `name`; the default (nothing
/// guaranteed) for a name this reader does not know.
pub fn capabilities_of(name: &str) -> Capabilities {
    by_name(name).map_or_else(Capabilities::default, |format| format.capabilities())
}

/// Bytes of a file [`looks_like_dump`] reads to recognise a header.
const SNIFF_BYTES: u64 = 64;

/// Whether the file at `path` is a heap dump in a known format, or would be
/// taken for one: [`dump_format_at`]. For tools that write files, so that
/// they refuse to overwrite a dump (`heapdump hprof OUT DUMP`, the
/// arguments the wrong way round).
pub fn looks_like_dump(path: &Path) -> bool {
    dump_format_at(path).is_some()
}

/// The format the file at `path` is a dump in: the one whose header it
/// starts with, else the one that declares its extension
/// ([`Format::extensions`]; also for a path where no file is yet, or one
/// that cannot be read).
pub fn dump_format_at(path: &Path) -> Option<&'static dyn Format> {
    known_header_at(path).or_else(|| {
        let ext = path.extension()?;
        FORMATS
            .iter()
            .copied()
            .find(|format| format.extensions().iter().any(|known| ext == *known))
    })
}

/// The format whose header the file at `path` starts with.
fn known_header_at(path: &Path) -> Option<&'static dyn Format> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut first = Vec::new();
    file.take(SNIFF_BYTES).read_to_end(&mut first).ok()?;
    detect(&first)
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
    fn formats_are_found_by_name_and_extension() {
        for format in FORMATS {
            assert_eq!(
                by_name(format.name()).map(|f| f.name()),
                Some(format.name())
            );
        }
        assert!(by_name("hprof").is_some());
        assert!(by_name("core").is_none());
        // A path named like a dump is taken for one, even before it exists
        // (a writer of that very format decides whether to write there:
        // heapdump-cli's `refuse_to_overwrite_a_dump`).
        assert_eq!(
            dump_format_at(Path::new("/nonexistent/a.hdump")).map(|f| f.name()),
            Some("heapdump-rs")
        );
        assert!(looks_like_dump(Path::new("/nonexistent/a.hprof")));
        assert!(!looks_like_dump(Path::new("/nonexistent/a.pb.gz")));
        let dir = std::env::temp_dir().join(format!("heapdump-sniff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a.hdump", "a.godump", "a.hprof"] {
            let file = dir.join(name);
            std::fs::write(&file, b"").unwrap();
            assert!(looks_like_dump(&file), "{name}: a dump's extension");
        }
        let named_oddly = dir.join("dump.hprof");
        std::fs::write(&named_oddly, b"go1.7 heap dump\n\x06").unwrap();
        assert_eq!(
            dump_format_at(&named_oddly).map(|f| f.name()),
            Some("go"),
            "a known header, whatever the name"
        );
        let plain = dir.join("notes.txt");
        std::fs::write(&plain, b"JAVA PROFILE 1.0.2\0").unwrap();
        assert!(looks_like_dump(&plain), "an HPROF header");
        std::fs::write(&plain, b"hello").unwrap();
        assert!(!looks_like_dump(&plain));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_format_shows_first_bytes() {
        let err = parse(b"\x7fELF\x02\x01\x01", &mut |_, _| {}).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at byte offset 0: not a heap dump in a known format \
             (first bytes: 7f 45 4c 46 02 01 01); known formats: heapdump-rs, go, hprof"
        );
        let err = parse(b"", &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("the file is empty"), "{err}");
    }
}
