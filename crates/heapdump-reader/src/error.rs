//! Errors: what went wrong, and at which byte of the file.

use std::fmt;
use std::path::PathBuf;

/// Why a dump could not be opened or read.
///
/// `offset` is the byte offset in the file where the offending thing starts:
/// the field whose value is bad, the length field that runs past the end, the
/// record that is out of place. For [`ErrorKind::Io`] it is 0.
#[derive(Debug)]
pub struct Error {
    /// Byte offset in the file of the offending field or record.
    pub offset: u64,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// An error of `kind` at byte `offset`.
    pub fn new(offset: u64, kind: ErrorKind) -> Error {
        Error { offset, kind }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Io { .. } => write!(f, "{}", self.kind),
            kind => write!(f, "at byte offset {}: {kind}", self.offset),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// What went wrong; see [`Error`] for where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be opened, inspected or memory-mapped.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The file does not start with the header of any known format.
    #[error("not a heap dump in a known format ({first_bytes}); known formats: {known}")]
    UnknownFormat {
        /// The first bytes of the file.
        first_bytes: FirstBytes,
        /// Names of the formats this reader knows, comma-separated.
        known: &'static str,
    },

    /// The format is known but its major version is not.
    #[error(
        "{format} version {major}.{minor} is not supported (this reader reads major version {supported})"
    )]
    UnsupportedVersion {
        /// The format's name.
        format: &'static str,
        /// Major version in the file.
        major: u16,
        /// Minor version in the file.
        minor: u16,
        /// The major version this reader reads.
        supported: u16,
    },

    /// The data ended in the middle of a field.
    #[error("{what} is cut off by the end of the {region} ({region_len} bytes)")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// What ended: `file`, `OBJECT record`, ...
        region: &'static str,
        /// Length of that region in bytes.
        region_len: u64,
    },

    /// A length field says more bytes follow than there are.
    #[error("{what} of {len} bytes runs past the end of the {region} ({region_len} bytes)")]
    LengthPastEnd {
        /// What the length is of: `record body`, `contents`, ...
        what: &'static str,
        /// The length the field holds.
        len: u64,
        /// What it runs past: `file`, `OBJECT record`, ...
        region: &'static str,
        /// Length of that region in bytes.
        region_len: u64,
    },

    /// A uvarint longer than 10 bytes or above `u64::MAX`.
    #[error("{what} is a uvarint that overflows 64 bits")]
    UvarintOverflow {
        /// The field being read.
        what: &'static str,
    },

    /// A field holds a value that is not allowed.
    #[error("bad {field} {value}: {reason}")]
    BadValue {
        /// The field's name.
        field: &'static str,
        /// The value it holds.
        value: u64,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The file has no PARAMS record at all.
    #[error("the file has no PARAMS record")]
    MissingParams,

    /// The first record is not PARAMS.
    #[error("the first record is {name} (tag {tag}), but it must be PARAMS")]
    ParamsNotFirst {
        /// Tag of the first record.
        tag: u64,
        /// Its name (`unknown` if the tag is unknown).
        name: &'static str,
    },

    /// A record that must occur once occurs again.
    #[error("a second {name} record; there must be exactly one")]
    DuplicateRecord {
        /// The record's name.
        name: &'static str,
    },

    /// The file ends without an END record: it was truncated.
    #[error("the file ends without an END record (truncated?)")]
    MissingEnd,

    /// Bytes follow the END record.
    #[error("{count} bytes follow the END record")]
    TrailingBytes {
        /// How many.
        count: u64,
    },

    /// An END count disagrees with what the file holds.
    #[error("END says {expected} {what}, but the file has {actual}")]
    CountMismatch {
        /// Which count: `records`, `OBJECT records`, `object bytes`.
        what: &'static str,
        /// The count in END.
        expected: u64,
        /// The count found.
        actual: u64,
    },

    /// More objects than an [`ObjectId`](crate::ObjectId) can number.
    #[error("more than {max} objects")]
    TooManyObjects {
        /// The most objects this reader accepts.
        max: u64,
    },

    /// More roots than a [`RootId`](crate::RootId) can number.
    #[error("more than {max} roots")]
    TooManyRoots {
        /// The most roots this reader accepts.
        max: u64,
    },

    /// Two objects at the same address.
    #[error("two objects at address {address:#x}")]
    DuplicateObject {
        /// Their address.
        address: u64,
    },

    /// An object starts inside the one before it.
    #[error("object at {second:#x} overlaps the object at {first:#x} of {first_size} bytes")]
    OverlappingObjects {
        /// Address of the lower object.
        first: u64,
        /// Size of the lower object.
        first_size: u64,
        /// Address of the object that starts inside it.
        second: u64,
    },

    /// A record tag this reader does not know: in a format whose records
    /// carry no length the reader cannot skip the record; in one whose
    /// version this reader knows whole, no such record can be there.
    /// (Records of a newer minor version are skipped by their length.)
    #[error("unknown {format} record tag {tag}: {reason}")]
    UnknownTag {
        /// The format, as the message names it (`Go heap dump`).
        format: &'static str,
        /// The tag.
        tag: u64,
        /// Why the rest of the file cannot be read, and what the tag may
        /// mean.
        reason: &'static str,
    },

    /// Bytes after the known fields of a record, in a file whose version
    /// this reader knows whole (a newer minor version may append fields;
    /// this one appends none): the record is not what its tag says.
    #[error("{count} bytes follow the fields of a {name} record, which has no more in version {version} (a corrupt file?)")]
    LeftoverBytes {
        /// The record's name.
        name: &'static str,
        /// How many bytes are left.
        count: u64,
        /// The file's format version.
        version: String,
    },

    /// A file of a known format whose header (its version line) is not
    /// the one this reader reads.
    #[error("{format} with header {header:?}; this reader reads {supported}")]
    UnsupportedHeader {
        /// The format, as the message names it (`a Go heap dump`).
        format: &'static str,
        /// The header line, without its newline.
        header: String,
        /// The header this reader reads, and who writes it.
        supported: &'static str,
    },

    /// A record where it cannot be (a stack frame before any goroutine).
    #[error("a {name} record {reason}")]
    OutOfPlace {
        /// The record's name.
        name: &'static str,
        /// Where it is and why that is wrong.
        reason: &'static str,
    },

    /// An object's contents are not `size` bytes long.
    #[error("object at {address:#x} has size {size} but {contents_len} bytes of contents")]
    ContentsSizeMismatch {
        /// The object's address.
        address: u64,
        /// Its `size` field.
        size: u64,
        /// The length of its `contents`.
        contents_len: u64,
    },
}

/// Up to the first 16 bytes of a file, shown in hex in
/// [`ErrorKind::UnknownFormat`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FirstBytes {
    bytes: [u8; 16],
    len: u8,
}

impl FirstBytes {
    /// Keeps the first (up to 16) bytes of `data`.
    pub fn of(data: &[u8]) -> FirstBytes {
        let mut bytes = [0u8; 16];
        let len = data.len().min(bytes.len());
        bytes[..len].copy_from_slice(&data[..len]);
        FirstBytes {
            bytes,
            len: len as u8,
        }
    }

    /// The bytes kept.
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl fmt::Display for FirstBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 0 {
            return f.write_str("the file is empty");
        }
        f.write_str("first bytes: ")?;
        for (i, byte) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for FirstBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FirstBytes({self})")
    }
}
