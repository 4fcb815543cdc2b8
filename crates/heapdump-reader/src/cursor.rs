//! A reading position in a byte slice of the file, with the primitives of the
//! uvarint/string grammar that heapdump-rs shares with Go's heap dumps.
//!
//! Every read checks its length against the slice and reports failures with
//! the file offset of the field that failed, so format decoders never index
//! or slice by hand.

use std::borrow::Cow;

use heapdump_format::{get_uvarint, UvarintError};

use crate::error::{Error, ErrorKind};

/// A position in `data`, a slice of the file that starts at file offset
/// `base`. `region` names the slice in error messages (`file`,
/// `OBJECT record`, ...).
#[derive(Clone, Debug)]
pub(crate) struct Cursor<'data> {
    data: &'data [u8],
    pos: usize,
    base: u64,
    region: &'static str,
}

impl<'data> Cursor<'data> {
    /// A cursor at the start of `data`, which is at file offset `base`.
    pub(crate) fn new(data: &'data [u8], base: u64, region: &'static str) -> Cursor<'data> {
        Cursor {
            data,
            pos: 0,
            base,
            region,
        }
    }

    /// File offset of the next byte to read.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// Whether everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// A cursor over `len` bytes starting here, named `region`; this cursor
    /// moves past them. `len_offset` is the file offset of the length field,
    /// reported if `len` runs past the end.
    pub(crate) fn sub_cursor(
        &mut self,
        len: u64,
        what: &'static str,
        len_offset: u64,
        region: &'static str,
    ) -> Result<Cursor<'data>, Error> {
        let base = self.offset();
        let data = self.take(len, what, len_offset)?;
        Ok(Cursor::new(data, base, region))
    }

    /// Reads `len` raw bytes. `len_offset` is the file offset reported if
    /// they run past the end (the length field they came from).
    pub(crate) fn take(
        &mut self,
        len: u64,
        what: &'static str,
        len_offset: u64,
    ) -> Result<&'data [u8], Error> {
        let past_end = || {
            Error::new(
                len_offset,
                ErrorKind::LengthPastEnd {
                    what,
                    len,
                    region: self.region,
                    region_len: self.data.len() as u64,
                },
            )
        };
        if len > self.remaining() as u64 {
            return Err(past_end());
        }
        let end = self.pos + len as usize;
        let bytes = self.data.get(self.pos..end).ok_or_else(past_end)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Reads exactly `N` raw bytes (fixed-size fields such as a header).
    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let offset = self.offset();
        let bytes = self
            .data
            .get(self.pos..)
            .and_then(|rest| rest.get(..N))
            .ok_or_else(|| self.truncated(offset, what))?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        self.pos += N;
        Ok(out)
    }

    /// Reads a `uvarint`.
    pub(crate) fn uvarint(&mut self, what: &'static str) -> Result<u64, Error> {
        let offset = self.offset();
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        match get_uvarint(rest) {
            Ok((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            Err(UvarintError::Truncated) => Err(self.truncated(offset, what)),
            Err(UvarintError::Overflow) => {
                Err(Error::new(offset, ErrorKind::UvarintOverflow { what }))
            }
        }
    }

    /// Reads a `bool`: a `uvarint` that must be 0 or 1.
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, Error> {
        let offset = self.offset();
        match self.uvarint(what)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(Error::new(
                offset,
                ErrorKind::BadValue {
                    field: what,
                    value,
                    reason: "a bool must be 0 or 1",
                },
            )),
        }
    }

    /// Reads `bytes`: a `uvarint` length, then that many bytes, borrowed from
    /// the file.
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'data [u8], Error> {
        let len_offset = self.offset();
        let len = self.uvarint(what)?;
        self.take(len, what, len_offset)
    }

    /// Reads a `string`: `bytes` holding UTF-8, with invalid sequences
    /// replaced. Borrowed from the file when it is valid UTF-8.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<Cow<'data, str>, Error> {
        self.bytes(what).map(String::from_utf8_lossy)
    }

    fn truncated(&self, offset: u64, what: &'static str) -> Error {
        Error::new(
            offset,
            ErrorKind::Truncated {
                what,
                region: self.region,
                region_len: self.data.len() as u64,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_primitives_and_reports_offsets() {
        let data = [0x96, 0x01, 0x01, 0x03, b'a', b'b', b'c', 0x05, b'x'];
        let mut cursor = Cursor::new(&data, 100, "test region");
        assert_eq!(cursor.uvarint("n").unwrap(), 150);
        assert!(cursor.bool("flag").unwrap());
        assert_eq!(cursor.string("name").unwrap(), "abc");
        assert_eq!(cursor.offset(), 107);
        let err = cursor.bytes("contents").unwrap_err();
        assert_eq!(err.offset, 107);
        assert!(matches!(
            err.kind,
            ErrorKind::LengthPastEnd {
                len: 5,
                region_len: 9,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "at byte offset 107: contents of 5 bytes runs past the end of the test region (9 bytes)"
        );
    }

    #[test]
    fn truncated_and_overflowing_uvarints() {
        let mut cursor = Cursor::new(&[0x80, 0x80], 7, "file");
        let err = cursor.uvarint("tag").unwrap_err();
        assert_eq!(err.offset, 7);
        assert!(matches!(err.kind, ErrorKind::Truncated { what: "tag", .. }));

        let mut cursor = Cursor::new(&[0xff; 11], 0, "file");
        let err = cursor.uvarint("tag").unwrap_err();
        assert!(matches!(err.kind, ErrorKind::UvarintOverflow { .. }));

        let mut cursor = Cursor::new(&[2], 0, "file");
        let err = cursor.bool("big_endian").unwrap_err();
        assert!(matches!(err.kind, ErrorKind::BadValue { value: 2, .. }));

        let mut cursor = Cursor::new(&[1, 2, 3], 0, "file");
        assert!(cursor.array::<4>("header").is_err());
        assert_eq!(cursor.array::<2>("header").unwrap(), [1, 2]);
        assert_eq!(cursor.remaining(), 1);
    }
}
