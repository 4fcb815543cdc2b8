//! HPROF records on the wire: big-endian numbers, 8-byte identifiers,
//! top-level records, and heap-dump sub-records packed into
//! `HEAP DUMP SEGMENT`s of bounded size.
//!
//! Every record length is checked to fit in the format's `u4` before it is
//! written; a segment is only ever emitted with at least one sub-record in
//! it, so no zero-length segment (which VisualVM rejects) can appear.

use std::io::{self, Write};

/// The HPROF version this writer produces.
pub const HEADER: &[u8] = b"JAVA PROFILE 1.0.2\0";

/// Bytes in an identifier (object, class, string, frame ids).
pub const ID_SIZE: u32 = 8;

// The record and sub-record tags are the reader's (one vocabulary for
// the format, read and written).
pub use heapdump_reader::formats::hprof::{sub, tag};

/// Basic type codes of fields and array elements.
pub mod basic {
    /// An object reference (an id).
    pub const OBJECT: u8 = 2;
    /// 1-byte `byte`.
    pub const BYTE: u8 = 8;
    /// 4-byte `int`.
    pub const INT: u8 = 10;
    /// 8-byte `long`.
    pub const LONG: u8 = 11;
}

/// Bytes of a value of basic type `code`.
pub fn basic_size(code: u8) -> u32 {
    match code {
        basic::OBJECT => ID_SIZE,
        4 | basic::BYTE => 1,
        5 | 9 => 2,
        6 | basic::INT => 4,
        _ => 8,
    }
}

/// An error for a record that does not fit in a `u4` length.
fn too_long(what: &str, len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what} of {len} bytes does not fit in an HPROF record (4 GiB at most)"),
    )
}

/// Appends big-endian numbers and ids to a byte buffer.
pub trait PutBe {
    /// Appends one byte.
    fn u1(&mut self, value: u8);
    /// Appends a big-endian `u16`.
    fn u2(&mut self, value: u16);
    /// Appends a big-endian `u32`.
    fn u4(&mut self, value: u32);
    /// Appends a big-endian `u64`.
    fn u8(&mut self, value: u64);
    /// Appends an identifier.
    fn id(&mut self, value: u64) {
        self.u8(value);
    }
}

impl PutBe for Vec<u8> {
    fn u1(&mut self, value: u8) {
        self.push(value);
    }
    fn u2(&mut self, value: u16) {
        self.extend_from_slice(&value.to_be_bytes());
    }
    fn u4(&mut self, value: u32) {
        self.extend_from_slice(&value.to_be_bytes());
    }
    fn u8(&mut self, value: u64) {
        self.extend_from_slice(&value.to_be_bytes());
    }
}

/// Writes top-level records to `out`, counting bytes.
pub struct RecordWriter<W: Write> {
    out: W,
    written: u64,
    /// A reusable buffer for record bodies.
    scratch: Vec<u8>,
}

impl<W: Write> RecordWriter<W> {
    /// Writes the file header (version, id size, `time_ms`) to `out`.
    pub fn new(mut out: W, time_ms: u64) -> io::Result<RecordWriter<W>> {
        out.write_all(HEADER)?;
        out.write_all(&ID_SIZE.to_be_bytes())?;
        out.write_all(&time_ms.to_be_bytes())?;
        Ok(RecordWriter {
            out,
            written: HEADER.len() as u64 + 12,
            scratch: Vec::new(),
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes a record whose body `fill` builds.
    pub fn record(&mut self, tag: u8, fill: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let mut body = std::mem::take(&mut self.scratch);
        body.clear();
        fill(&mut body);
        let result = self.record_header(tag, body.len() as u64).and_then(|()| {
            self.out.write_all(&body)?;
            self.written += body.len() as u64;
            Ok(())
        });
        self.scratch = body;
        result
    }

    /// Writes a record header for a body of `len` bytes that the caller
    /// writes next.
    fn record_header(&mut self, tag: u8, len: u64) -> io::Result<()> {
        let len32 = u32::try_from(len).map_err(|_| too_long("a record", len))?;
        let mut header = [0u8; 9];
        header[0] = tag;
        header[5..9].copy_from_slice(&len32.to_be_bytes());
        self.out.write_all(&header)?;
        self.written += 9;
        Ok(())
    }

    /// Flushes and gives the output back.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Packs heap-dump sub-records into `HEAP DUMP SEGMENT` records of at most
/// `limit` bytes each (a sub-record larger than that gets a segment of its
/// own), then ends them with `HEAP DUMP END`.
pub struct SegmentWriter<'a, W: Write> {
    records: &'a mut RecordWriter<W>,
    buffer: Vec<u8>,
    limit: usize,
    segments: u64,
    largest: u64,
}

impl<'a, W: Write> SegmentWriter<'a, W> {
    /// Starts the heap dump; segments hold at most `limit` bytes (at least
    /// 64 KiB, at most 4 GiB − 1).
    pub fn new(records: &'a mut RecordWriter<W>, limit: usize) -> SegmentWriter<'a, W> {
        let limit = limit.clamp(64 << 10, u32::MAX as usize);
        SegmentWriter {
            records,
            buffer: Vec::with_capacity(limit.min(4 << 20)),
            limit,
            segments: 0,
            largest: 0,
        }
    }

    /// Adds a sub-record that `fill` builds in memory (for small ones:
    /// classes, roots, ordinary instances).
    pub fn small(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let start = self.buffer.len();
        fill(&mut self.buffer);
        let len = self.buffer.len() - start;
        if start > 0 && self.buffer.len() > self.limit {
            // Move the new sub-record out, close the segment before it.
            let record: Vec<u8> = self.buffer.drain(start..).collect();
            self.flush_segment()?;
            self.buffer.extend_from_slice(&record);
        }
        if len > self.limit {
            self.flush_segment()?;
        }
        Ok(())
    }

    /// Adds a sub-record of exactly `len` bytes that `fill` streams to the
    /// writer it is given, without holding it in memory when it is large.
    pub fn streamed(
        &mut self,
        len: u64,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        if len <= (self.limit / 4) as u64 {
            let start = self.buffer.len();
            fill(&mut self.buffer)?;
            let got = (self.buffer.len() - start) as u64;
            if got != len {
                return Err(length_mismatch(len, got));
            }
            if start > 0 && self.buffer.len() > self.limit {
                let record: Vec<u8> = self.buffer.drain(start..).collect();
                self.flush_segment()?;
                self.buffer.extend_from_slice(&record);
            }
            return Ok(());
        }
        // Large: its own segment, written straight through.
        self.flush_segment()?;
        self.records.record_header(tag::HEAP_DUMP_SEGMENT, len)?;
        let mut counting = CountingWriter {
            inner: &mut self.records.out,
            count: 0,
        };
        fill(&mut counting)?;
        let got = counting.count;
        self.records.written += got;
        if got != len {
            return Err(length_mismatch(len, got));
        }
        self.segments += 1;
        self.largest = self.largest.max(len);
        Ok(())
    }

    /// Writes the buffered sub-records as one segment, if there are any.
    fn flush_segment(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let len = self.buffer.len() as u64;
        self.records.record_header(tag::HEAP_DUMP_SEGMENT, len)?;
        self.records.out.write_all(&self.buffer)?;
        self.records.written += len;
        self.buffer.clear();
        self.segments += 1;
        self.largest = self.largest.max(len);
        Ok(())
    }

    /// Writes the last segment and `HEAP DUMP END`; returns the number of
    /// segments and the largest one's length.
    pub fn finish(mut self) -> io::Result<(u64, u64)> {
        self.flush_segment()?;
        self.records.record_header(tag::HEAP_DUMP_END, 0)?;
        Ok((self.segments, self.largest))
    }
}

fn length_mismatch(expected: u64, got: u64) -> io::Error {
    io::Error::other(format!(
        "internal error: a heap sub-record announced {expected} bytes but wrote {got}"
    ))
}

/// Counts the bytes written through it.
struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a file into (tag, body length) of each top-level record.
    fn records(bytes: &[u8]) -> Vec<(u8, u32)> {
        let mut out = Vec::new();
        let mut at = HEADER.len() + 12;
        while at + 9 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[at + 5..at + 9].try_into().unwrap());
            out.push((bytes[at], len));
            at += 9 + len as usize;
        }
        assert_eq!(at, bytes.len());
        out
    }

    #[test]
    fn segments_are_bounded_contiguous_and_never_empty() {
        let mut records = RecordWriter::new(Vec::new(), 0).unwrap();
        let mut segments = SegmentWriter::new(&mut records, 64 << 10);
        for index in 0..1000u32 {
            segments
                .small(|buf| {
                    buf.u1(sub::ROOT_UNKNOWN);
                    buf.extend(std::iter::repeat_n(index as u8, 200));
                })
                .unwrap();
        }
        // One sub-record bigger than a segment, streamed.
        segments
            .streamed(100_000, |out| out.write_all(&[7u8; 100_000]))
            .unwrap();
        segments.small(|buf| buf.u1(sub::ROOT_UNKNOWN)).unwrap();
        let (count, largest) = segments.finish().unwrap();
        let bytes = records.finish().unwrap();
        let list = records_of(&bytes);
        assert_eq!(list.last(), Some(&(tag::HEAP_DUMP_END, 0)));
        let segs: Vec<u32> = list
            .iter()
            .filter(|(tag, _)| *tag == tag::HEAP_DUMP_SEGMENT)
            .map(|(_, len)| *len)
            .collect();
        assert_eq!(segs.len() as u64, count);
        assert!(segs.iter().all(|&len| len > 0));
        assert!(segs.iter().all(|&len| len <= 64 << 10 || len == 100_000));
        assert_eq!(u64::from(*segs.iter().max().unwrap()), largest);
        assert_eq!(
            segs.iter().map(|&len| u64::from(len)).sum::<u64>(),
            201 * 1000 + 100_001
        );
    }

    fn records_of(bytes: &[u8]) -> Vec<(u8, u32)> {
        records(bytes)
    }

    #[test]
    fn a_wrong_streamed_length_is_an_error() {
        let mut records = RecordWriter::new(Vec::new(), 0).unwrap();
        let mut segments = SegmentWriter::new(&mut records, 64 << 10);
        let err = segments
            .streamed(1 << 20, |out| out.write_all(&[0u8; 10]))
            .unwrap_err();
        assert!(err.to_string().contains("announced"), "{err}");
    }
}
