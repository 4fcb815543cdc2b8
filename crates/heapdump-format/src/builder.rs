//! A streaming encoder of whole heapdump-rs files (feature `builder`).
//!
//! [`DumpBuilder`] writes a dump record by record through a
//! [`BufWriter`]: the header when it is created, one record per call, and END
//! with the counts it kept when it is finished. It keeps no copy of what it
//! wrote, so it can produce dumps of millions of objects for benchmarks.
//!
//! The builder encodes; it does not validate. It writes records in whatever
//! order it is told, so tests can also build files that a reader must reject
//! ([`DumpBuilder::record`] writes a record with any tag and body,
//! [`DumpBuilder::finish_with`] writes END with chosen counts).
//!
//! ```
//! use heapdump_format::builder::{DumpBuilder, Params, Stats};
//!
//! let mut dump = DumpBuilder::new(Vec::new())?;
//! dump.params(&Params::default())?;
//! dump.stack(1, &[0x5555_0000_1234, 0x5555_0000_5678])?;
//! let first = 0x1000u64.to_le_bytes();
//! dump.object(0x1000, 1, &[0; 16])?;
//! dump.object(0x2000, 0, &first)?; // points at the first object
//! dump.stats(&Stats { live_bytes: 24, live_objects: 2, ..Stats::default() })?;
//! let bytes: Vec<u8> = dump.finish()?;
//! assert_eq!(&bytes[..12], heapdump_format::MAGIC);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, BufWriter, Write};
use std::vec::Vec;

use crate::encode::{self, Fields, Head, ObjectHead, RootSegmentHead, RootThreadStackHead, Sink};
use crate::{header, tag, ContentsMode};

pub use crate::encode::{EndCounts, ModuleRange, Stats, ThreadCoverage};

/// The fields of a PARAMS record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params<'a> {
    /// Bytes in a pointer: 4 or 8.
    pub pointer_size: u64,
    /// Byte order of memory images.
    pub big_endian: bool,
    /// `std::env::consts::ARCH` of the dumped process.
    pub arch: &'a str,
    /// `std::env::consts::OS` of the dumped process.
    pub os: &'a str,
    /// Process id of the dumped process.
    pub pid: u64,
    /// Wall-clock time of the dump, nanoseconds since the Unix epoch.
    pub time_unix_ns: u64,
    /// Path of the main executable, empty if unknown.
    pub executable: &'a str,
    /// GNU build-id of the main executable, empty if none.
    pub build_id: &'a [u8],
    /// Name and version of the writer.
    pub writer: &'a str,
    /// How much of each memory image the dump keeps.
    pub contents_mode: ContentsMode,
    /// Mean bytes between sampled allocation sites; 1 = every allocation.
    pub sample_rate: u64,
    /// Return addresses a short site keeps; 0 if there are none.
    pub short_site_frames: u64,
}

impl Default for Params<'static> {
    /// A little-endian 64-bit Linux dump with full contents and every
    /// allocation sampled, written by `heapdump-format builder`.
    fn default() -> Self {
        Params {
            pointer_size: 8,
            big_endian: false,
            arch: "x86_64",
            os: "linux",
            pid: 1,
            time_unix_ns: 0,
            executable: "",
            build_id: &[],
            writer: "heapdump-format builder",
            contents_mode: ContentsMode::Full,
            sample_rate: 1,
            short_site_frames: 0,
        }
    }
}

impl<'a> Params<'a> {
    /// The record the encoder writes: the same fields, text as bytes.
    pub fn encoded(&self) -> encode::Params<'a> {
        encode::Params {
            pointer_size: self.pointer_size,
            big_endian: self.big_endian,
            arch: self.arch.as_bytes(),
            os: self.os.as_bytes(),
            pid: self.pid,
            time_unix_ns: self.time_unix_ns,
            executable: self.executable.as_bytes(),
            build_id: self.build_id,
            writer: self.writer.as_bytes(),
            contents_mode: self.contents_mode,
            sample_rate: self.sample_rate,
            short_site_frames: self.short_site_frames,
        }
    }
}

/// The fields of a MODULE record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Module<'a> {
    /// Index of the module in the dump, from 0; 0 is the main executable.
    pub module_id: u64,
    /// File path as the loader knows it.
    pub path: &'a str,
    /// GNU build-id note contents, empty if none.
    pub build_id: &'a [u8],
    /// Runtime address minus link-time address.
    pub load_bias: u64,
    /// The module's `PT_LOAD` segments at their runtime addresses.
    pub ranges: &'a [ModuleRange],
}

/// The body of one record, encoded field by field into a growable buffer.
///
/// Used by tests to craft records the builder has no method for (unknown
/// tags, extra trailing fields, malformed fields). It is an
/// [`encode::Sink`], so any record's [`Fields`] can be encoded into it too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    bytes: Vec<u8>,
}

impl Sink for Body {
    type Error = core::convert::Infallible;

    fn put(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }
}

impl Body {
    /// An empty body.
    pub fn new() -> Body {
        Body::default()
    }

    /// Appends a `uvarint`.
    pub fn uvarint(&mut self, value: u64) -> &mut Body {
        match encode::uvarint(self, value) {
            Ok(()) => self,
            Err(never) => match never {},
        }
    }

    /// Appends a `bool` (a `uvarint` 0 or 1).
    pub fn bool(&mut self, value: bool) -> &mut Body {
        self.uvarint(u64::from(value))
    }

    /// Appends `bytes`: a `uvarint` length, then the bytes.
    pub fn bytes(&mut self, value: &[u8]) -> &mut Body {
        match encode::bytes(self, value) {
            Ok(()) => self,
            Err(never) => match never {},
        }
    }

    /// Appends a `string`: its UTF-8 bytes as `bytes`.
    pub fn string(&mut self, value: &str) -> &mut Body {
        self.bytes(value.as_bytes())
    }

    /// Appends raw bytes with no length prefix.
    pub fn raw(&mut self, value: &[u8]) -> &mut Body {
        self.bytes.extend_from_slice(value);
        self
    }

    /// The encoded body.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// Empties the body, keeping its buffer.
    pub fn clear(&mut self) {
        self.bytes.clear();
    }
}

/// The builder's output as an [`encode::Sink`].
#[derive(Debug)]
struct Out<W: Write>(BufWriter<W>);

impl<W: Write> Sink for Out<W> {
    type Error = io::Error;

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }
}

/// Writes a heapdump-rs file record by record; see the [module](self) docs.
#[derive(Debug)]
pub struct DumpBuilder<W: Write> {
    out: Out<W>,
    counts: EndCounts,
}

impl<W: Write> DumpBuilder<W> {
    /// Starts a dump: writes the 16-byte header to `out` (buffered).
    pub fn new(out: W) -> io::Result<DumpBuilder<W>> {
        let mut out = BufWriter::with_capacity(1 << 16, out);
        out.write_all(&header())?;
        Ok(DumpBuilder {
            out: Out(out),
            counts: EndCounts::default(),
        })
    }

    /// The counts END would carry if the dump were finished now.
    pub fn counts(&self) -> EndCounts {
        self.counts
    }

    /// Writes a record with any tag and an already-encoded body. It counts
    /// towards END's `record_count` only, whatever its tag.
    pub fn record(&mut self, tag: u64, body: &[u8]) -> io::Result<()> {
        self.count_record(tag);
        encode::record_header(&mut self.out, tag, body.len() as u64)?;
        self.out.put(body)
    }

    /// Writes PARAMS.
    pub fn params(&mut self, params: &Params<'_>) -> io::Result<()> {
        self.fields(&params.encoded())
    }

    /// Writes a MODULE.
    pub fn module(&mut self, module: &Module<'_>) -> io::Result<()> {
        self.fields(&encode::Module {
            module_id: module.module_id,
            path: module.path.as_bytes(),
            build_id: module.build_id,
            load_bias: module.load_bias,
            ranges: module.ranges.iter().copied(),
        })
    }

    /// Writes a ROOT_SEGMENT: a writable range of module `module_id` that
    /// starts at `address` and holds `contents`.
    pub fn root_segment(
        &mut self,
        module_id: u64,
        address: u64,
        contents: &[u8],
    ) -> io::Result<()> {
        let head = RootSegmentHead {
            module_id,
            address,
            contents_len: contents.len(),
        };
        self.head(&head, contents)
    }

    /// Writes a ROOT_THREAD_STACK: thread `thread_id` called `name`, whose
    /// stack from the stack pointer `address` up holds `contents`.
    pub fn root_thread_stack(
        &mut self,
        thread_id: u64,
        name: &str,
        address: u64,
        contents: &[u8],
    ) -> io::Result<()> {
        let head = RootThreadStackHead {
            thread_id,
            name: name.as_bytes(),
            address,
            contents_len: contents.len(),
        };
        self.head(&head, contents)
    }

    /// Writes a STACK: allocation site `stack_id` (never 0 in a valid dump)
    /// with its return addresses, innermost first.
    pub fn stack(&mut self, stack_id: u64, pcs: &[u64]) -> io::Result<()> {
        self.fields(&encode::Stack {
            stack_id,
            pcs: pcs.iter().copied(),
            short: false,
        })
    }

    /// Writes a STACK marked as a short site: the first return addresses
    /// of allocations that were not sampled.
    pub fn short_site(&mut self, stack_id: u64, pcs: &[u64]) -> io::Result<()> {
        self.fields(&encode::Stack {
            stack_id,
            pcs: pcs.iter().copied(),
            short: true,
        })
    }

    /// Writes an OBJECT of `contents.len()` bytes at `address`, allocated at
    /// site `stack_id` (0: not sampled).
    pub fn object(&mut self, address: u64, stack_id: u64, contents: &[u8]) -> io::Result<()> {
        self.object_with_size(address, contents.len() as u64, stack_id, contents)
    }

    /// Writes an OBJECT whose `size` field may disagree with its contents
    /// (for tests of readers; a valid dump has `size == contents.len()`).
    pub fn object_with_size(
        &mut self,
        address: u64,
        size: u64,
        stack_id: u64,
        contents: &[u8],
    ) -> io::Result<()> {
        let head = ObjectHead {
            address,
            size,
            stack_id,
            contents_len: contents.len(),
        };
        self.head(&head, contents)?;
        self.counts.object_count += 1;
        self.counts.object_bytes = self.counts.object_bytes.wrapping_add(size);
        Ok(())
    }

    /// Writes STATS (with the appended thread counts if `stats.threads` is
    /// set).
    pub fn stats(&mut self, stats: &Stats) -> io::Result<()> {
        self.fields(stats)
    }

    /// Writes END with the counts of what was written, flushes, and returns
    /// the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        let counts = self.counts;
        self.finish_with(counts)
    }

    /// Writes END with the given counts (which may be wrong, for tests),
    /// flushes, and returns the underlying writer.
    pub fn finish_with(mut self, counts: EndCounts) -> io::Result<W> {
        self.fields(&counts)?;
        self.into_inner_unfinished()
    }

    /// Flushes and returns the underlying writer without writing END: the
    /// result is a truncated dump.
    pub fn into_inner_unfinished(self) -> io::Result<W> {
        self.out.0.into_inner().map_err(|err| err.into_error())
    }

    fn count_record(&mut self, tag: u64) {
        if tag != tag::END {
            self.counts.record_count += 1;
        }
    }

    fn fields<F: Fields>(&mut self, fields: &F) -> io::Result<()> {
        self.count_record(F::TAG);
        encode::record(&mut self.out, fields)
    }

    fn head<H: Head>(&mut self, head: &H, contents: &[u8]) -> io::Result<()> {
        self.count_record(H::TAG);
        encode::record_head(&mut self.out, head)?;
        self.out.put(contents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HEADER_LEN;
    use std::vec;

    #[test]
    fn object_matches_the_format_doc_example() {
        let mut dump = DumpBuilder::new(Vec::new()).unwrap();
        let mut contents = Vec::new();
        contents.extend_from_slice(&0x5555_5555_b010u64.to_le_bytes());
        contents.extend_from_slice(&7u64.to_le_bytes());
        dump.object(0x5555_5555_a000, 0, &contents).unwrap();
        let bytes = dump.into_inner_unfinished().unwrap();
        let expected: Vec<u8> = vec![
            0x06, 0x1a, 0x80, 0xc0, 0xd6, 0xaa, 0xd5, 0xaa, 0x15, 0x10, 0x00, 0x10, //
            0x10, 0xb0, 0x55, 0x55, 0x55, 0x55, 0x00, 0x00, //
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(&bytes[..HEADER_LEN], &header());
        assert_eq!(&bytes[HEADER_LEN..], &expected[..]);
    }

    #[test]
    fn end_counts_records_and_objects() {
        let mut dump = DumpBuilder::new(Vec::new()).unwrap();
        dump.params(&Params::default()).unwrap();
        dump.module(&Module {
            path: "/bin/x",
            ranges: &[ModuleRange {
                start: 0x1000,
                size: 0x1000,
                flags: 5,
            }],
            ..Module::default()
        })
        .unwrap();
        dump.object(0x10, 0, &[1, 2, 3]).unwrap();
        dump.object(0x20, 0, &[4; 5]).unwrap();
        dump.record(99, &[1, 2, 3]).unwrap();
        assert_eq!(
            dump.counts(),
            EndCounts {
                record_count: 5,
                object_count: 2,
                object_bytes: 8,
            }
        );
        let bytes = dump.finish().unwrap();
        // END: tag 0, body_len 3, counts 5 2 8.
        assert_eq!(&bytes[bytes.len() - 5..], &[0, 3, 5, 2, 8]);
    }
}
