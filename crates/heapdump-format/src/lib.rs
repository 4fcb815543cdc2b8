//! The vocabulary of the heapdump-rs file format, shared by the writer
//! (`heapdump`) and the reader (`heapdump-reader`).
//!
//! `docs/FORMAT.md` describes the format byte by byte; this crate is its
//! executable form: the magic, the version, the record tags, and the two
//! primitives every field is made of (the uvarint and the length-prefixed byte
//! string, the same grammar as Go's heap dumps).
//!
//! [`encode`] is the one record encoder: each record's fields in order, put
//! into any [`encode::Sink`] (the writer's mapped buffer, the builder's
//! `Write`). The crate does not allocate: the writer encodes into fixed
//! buffers while it holds the allocator's locks. It is `no_std` unless the
//! `builder` feature is on, which adds `builder::DumpBuilder`, a streaming
//! encoder on top of `std::io::Write` for tests, fuzz seeds and synthetic
//! benchmark dumps, or the `atomic-file` feature, which adds
//! `atomic_file::AtomicFile`: a file written under a temporary name and
//! renamed into place, for the writer's `write_file` and heapdump-convert.

#![cfg_attr(not(any(feature = "builder", feature = "atomic-file")), no_std)]
#![warn(missing_docs)]

#[cfg(feature = "atomic-file")]
pub mod atomic_file;
#[cfg(feature = "builder")]
pub mod builder;
pub mod encode;

/// The first 12 bytes of every heapdump-rs file.
pub const MAGIC: &[u8; 12] = b"heapdump-rs\0";

/// Major version written after the magic (little-endian u16). A reader
/// refuses a major version it does not know.
pub const VERSION_MAJOR: u16 = 1;

/// Minor version written after the major (little-endian u16). Minor versions
/// only append fields to records or add record tags, which older readers skip.
/// 1.1 appended PARAMS `short_site_frames` and STACK `short` (short sites:
/// every allocation's first return addresses).
pub const VERSION_MINOR: u16 = 1;

/// Length of the file header: magic, major, minor.
pub const HEADER_LEN: usize = 16;

/// The longest encoding of a `u64` as a uvarint.
pub const MAX_UVARINT_LEN: usize = 10;

/// Builds the 16-byte file header.
pub const fn header() -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    let mut i = 0;
    while i < MAGIC.len() {
        out[i] = MAGIC[i];
        i += 1;
    }
    let major = VERSION_MAJOR.to_le_bytes();
    let minor = VERSION_MINOR.to_le_bytes();
    out[12] = major[0];
    out[13] = major[1];
    out[14] = minor[0];
    out[15] = minor[1];
    out
}

/// Record tags. Every record is `tag uvarint, body_len uvarint, body`.
pub mod tag {
    /// Last record: counts that let a reader detect a truncated file.
    pub const END: u64 = 0;
    /// Dump parameters; always the first record.
    pub const PARAMS: u64 = 1;
    /// A loaded module (executable or shared object).
    pub const MODULE: u64 = 2;
    /// A root: a writable, non-RELRO range of a module, with its contents.
    pub const ROOT_SEGMENT: u64 = 3;
    /// A root: a thread's stack from its stack pointer up, with its contents.
    pub const ROOT_THREAD_STACK: u64 = 4;
    /// An allocation-site stack: a deduplicated list of raw return addresses.
    pub const STACK: u64 = 5;
    /// A live heap allocation with its contents.
    pub const OBJECT: u64 = 6;
    /// Allocator statistics at the moment of the dump.
    pub const STATS: u64 = 7;

    /// A human name for a tag, for error messages.
    pub fn name(tag: u64) -> &'static str {
        match tag {
            END => "END",
            PARAMS => "PARAMS",
            MODULE => "MODULE",
            ROOT_SEGMENT => "ROOT_SEGMENT",
            ROOT_THREAD_STACK => "ROOT_THREAD_STACK",
            STACK => "STACK",
            OBJECT => "OBJECT",
            STATS => "STATS",
            _ => "unknown",
        }
    }
}

/// How much of each memory image the dump keeps, and whether thread names
/// are written (the PARAMS `contents_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum ContentsMode {
    /// Every byte of every object, segment and stack (the main thread's
    /// stack holds the command line and the environment at its top), and
    /// every thread's name.
    #[default]
    Full = 0,
    /// In every memory image (objects, segments, stacks), only aligned
    /// words that point into a live object; every other byte is zero.
    /// Thread names are written empty. Kept as in a full dump: object
    /// addresses and sizes, allocation sites (raw PCs), thread ids and
    /// stack ranges, modules (paths, build-ids, address ranges), the
    /// executable's path, the pid and time, and the statistics. The graph
    /// survives, the service's data (keys, tokens, payloads, command line,
    /// environment, thread names) does not.
    Redacted = 1,
}

impl ContentsMode {
    /// Decodes the PARAMS field; `None` for a value this version does not know.
    pub fn from_u64(value: u64) -> Option<ContentsMode> {
        match value {
            0 => Some(ContentsMode::Full),
            1 => Some(ContentsMode::Redacted),
            _ => None,
        }
    }
}

/// Bits of a module range's `flags` field.
pub mod range_flags {
    /// Readable.
    pub const READ: u64 = 1;
    /// Writable.
    pub const WRITE: u64 = 2;
    /// Executable.
    pub const EXECUTE: u64 = 4;
}

/// Number of bytes `value` takes as a uvarint.
pub const fn uvarint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// Encodes `value` as an unsigned LEB128 varint into `out`; returns the
/// number of bytes used (1 to 10).
pub fn put_uvarint(out: &mut [u8; MAX_UVARINT_LEN], mut value: u64) -> usize {
    let mut i = 0;
    while value >= 0x80 {
        out[i] = (value as u8) | 0x80;
        value >>= 7;
        i += 1;
    }
    out[i] = value as u8;
    i + 1
}

/// Why a uvarint could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UvarintError {
    /// The input ended in the middle of the varint.
    Truncated,
    /// More than 10 bytes, or a 10th byte that overflows 64 bits.
    Overflow,
}

/// Decodes an unsigned LEB128 varint from the start of `input`; returns the
/// value and the number of bytes it took.
pub fn get_uvarint(input: &[u8]) -> Result<(u64, usize), UvarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate() {
        if i == MAX_UVARINT_LEN - 1 && byte > 1 {
            return Err(UvarintError::Overflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok((value, i + 1));
        }
        if i == MAX_UVARINT_LEN - 1 {
            return Err(UvarintError::Overflow);
        }
    }
    Err(UvarintError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_round_trips_at_every_length() {
        let mut values = [0u64; 66];
        for (bit, slot) in values.iter_mut().enumerate().take(64) {
            *slot = 1u64 << bit;
        }
        values[64] = u64::MAX;
        values[65] = 0;
        for &value in &values {
            for candidate in [value, value.wrapping_sub(1)] {
                let mut buf = [0u8; MAX_UVARINT_LEN];
                let len = put_uvarint(&mut buf, candidate);
                assert_eq!(len, uvarint_len(candidate));
                assert_eq!(get_uvarint(&buf[..len]), Ok((candidate, len)));
                assert_eq!(
                    get_uvarint(&buf[..len - 1]),
                    Err(UvarintError::Truncated),
                    "value {candidate}"
                );
            }
        }
    }

    #[test]
    fn uvarint_rejects_overflow() {
        assert_eq!(get_uvarint(&[0xff; 11]), Err(UvarintError::Overflow));
        let mut eleven = [0x80u8; 10];
        eleven[9] = 0x02;
        assert_eq!(get_uvarint(&eleven), Err(UvarintError::Overflow));
    }

    #[test]
    fn header_starts_with_magic() {
        let h = header();
        assert_eq!(&h[..12], MAGIC);
        assert_eq!(u16::from_le_bytes([h[12], h[13]]), VERSION_MAJOR);
    }
}
