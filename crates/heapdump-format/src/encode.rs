//! The one record encoder, shared by the writer (`heapdump`, over its mapped
//! output buffer) and `DumpBuilder` (feature `builder`) (over a `Write`).
//!
//! Every record is `tag, body_len, body` (docs/FORMAT.md). The field order of
//! each record is written down once, here, as a [`Fields`] type: its
//! [`Fields::encode`] puts the fields into any [`Sink`], and the body length
//! is the same encoding into a [`Counter`], so no record is ever staged in a
//! buffer. Memory images (the `contents` of OBJECT, ROOT_SEGMENT and
//! ROOT_THREAD_STACK) are too large to encode twice: their records are a
//! [`Head`] (the fields before the image, then the image's length), which
//! [`record_head`] writes, and the caller streams the image's bytes after it.
//!
//! Nothing here allocates: the writer encodes while the other threads are
//! stopped, and may not allocate through the tracked allocator.

use core::convert::Infallible;

use crate::{put_uvarint, tag, uvarint_len, ContentsMode, MAX_UVARINT_LEN};

/// Where encoded bytes go.
pub trait Sink {
    /// What writing can fail with.
    type Error;

    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

/// A [`Sink`] that only counts the bytes put into it: a record body's
/// length before the body is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter(pub u64);

impl Sink for Counter {
    type Error = Infallible;

    fn put(&mut self, bytes: &[u8]) -> Result<(), Infallible> {
        self.0 += bytes.len() as u64;
        Ok(())
    }
}

/// Puts a `uvarint`.
pub fn uvarint<S: Sink + ?Sized>(sink: &mut S, value: u64) -> Result<(), S::Error> {
    let mut encoded = [0u8; MAX_UVARINT_LEN];
    let len = put_uvarint(&mut encoded, value);
    sink.put(&encoded[..len])
}

/// Puts a `bool` (a `uvarint` 0 or 1).
pub fn boolean<S: Sink + ?Sized>(sink: &mut S, value: bool) -> Result<(), S::Error> {
    uvarint(sink, u64::from(value))
}

/// Puts a `bytes` (or `string`) field: a `uvarint` length, then the bytes.
pub fn bytes<S: Sink + ?Sized>(sink: &mut S, value: &[u8]) -> Result<(), S::Error> {
    uvarint(sink, value.len() as u64)?;
    sink.put(value)
}

/// Encoded length of a `bytes` field of `len` bytes.
pub const fn bytes_len(len: usize) -> usize {
    uvarint_len(len as u64) + len
}

/// Puts a record's `tag` and `body_len`.
pub fn record_header<S: Sink + ?Sized>(
    sink: &mut S,
    record_tag: u64,
    body_len: u64,
) -> Result<(), S::Error> {
    uvarint(sink, record_tag)?;
    uvarint(sink, body_len)
}

/// The body of a record small enough to be encoded twice (once to count it):
/// every record but the three that carry memory images.
pub trait Fields {
    /// The record's tag.
    const TAG: u64;

    /// Puts the body's fields, in order.
    fn encode<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error>;

    /// Bytes [`Fields::encode`] puts.
    fn body_len(&self) -> u64 {
        let mut counter = Counter(0);
        match self.encode(&mut counter) {
            Ok(()) => counter.0,
            Err(never) => match never {},
        }
    }
}

/// Puts a whole record: header and body.
pub fn record<S: Sink + ?Sized, F: Fields>(sink: &mut S, fields: &F) -> Result<(), S::Error> {
    record_header(sink, F::TAG, fields.body_len())?;
    fields.encode(sink)
}

/// The fields of a record that ends in a memory image, up to and including
/// the image's length; the image's bytes follow.
pub trait Head {
    /// The record's tag.
    const TAG: u64;

    /// Length of the memory image that follows the head.
    fn contents_len(&self) -> usize;

    /// Puts the fields before the image, without the image's length.
    fn encode_fields<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error>;
}

/// Puts a record's header and its [`Head`], ending with the length of its
/// memory image: the caller then puts exactly `head.contents_len()` bytes.
pub fn record_head<S: Sink + ?Sized, H: Head>(sink: &mut S, head: &H) -> Result<(), S::Error> {
    let mut counter = Counter(0);
    match head.encode_fields(&mut counter) {
        Ok(()) => {}
        Err(never) => match never {},
    }
    let contents_len = head.contents_len();
    record_header(sink, H::TAG, counter.0 + bytes_len(contents_len) as u64)?;
    head.encode_fields(sink)?;
    uvarint(sink, contents_len as u64)
}

/// PARAMS. Text fields are bytes here (the writer's paths need not be
/// UTF-8); the builder's `builder::Params` holds `&str`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params<'a> {
    /// Bytes in a pointer: 4 or 8.
    pub pointer_size: u64,
    /// Byte order of memory images.
    pub big_endian: bool,
    /// `std::env::consts::ARCH` of the dumped process.
    pub arch: &'a [u8],
    /// `std::env::consts::OS` of the dumped process.
    pub os: &'a [u8],
    /// Process id of the dumped process.
    pub pid: u64,
    /// Wall-clock time of the dump, nanoseconds since the Unix epoch.
    pub time_unix_ns: u64,
    /// Path of the main executable, empty if unknown.
    pub executable: &'a [u8],
    /// GNU build-id of the main executable, empty if none.
    pub build_id: &'a [u8],
    /// Name and version of the writer.
    pub writer: &'a [u8],
    /// How much of each memory image the dump keeps.
    pub contents_mode: ContentsMode,
    /// Mean bytes between sampled allocation sites; 1 = every allocation.
    pub sample_rate: u64,
    /// Return addresses a short site keeps (1.1): objects not sampled name
    /// a STACK of at most this many frames, marked `short`; 0 if the writer
    /// records no short sites.
    pub short_site_frames: u64,
}

impl Fields for Params<'_> {
    const TAG: u64 = tag::PARAMS;

    fn encode<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error> {
        uvarint(sink, self.pointer_size)?;
        boolean(sink, self.big_endian)?;
        bytes(sink, self.arch)?;
        bytes(sink, self.os)?;
        uvarint(sink, self.pid)?;
        uvarint(sink, self.time_unix_ns)?;
        bytes(sink, self.executable)?;
        bytes(sink, self.build_id)?;
        bytes(sink, self.writer)?;
        uvarint(sink, self.contents_mode as u64)?;
        uvarint(sink, self.sample_rate)?;
        uvarint(sink, self.short_site_frames)
    }
}

/// One `PT_LOAD` range of a MODULE record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModuleRange {
    /// Runtime address of the first byte.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// [`crate::range_flags`] bits.
    pub flags: u64,
}

/// MODULE, its ranges given by any iterator that can be run twice (once to
/// count the body).
#[derive(Clone, Debug)]
pub struct Module<'a, R> {
    /// Index of the module in the dump, from 0; 0 is the main executable.
    pub module_id: u64,
    /// File path as the loader knows it.
    pub path: &'a [u8],
    /// GNU build-id note contents, empty if none.
    pub build_id: &'a [u8],
    /// Runtime address minus link-time address.
    pub load_bias: u64,
    /// The module's `PT_LOAD` segments at their runtime addresses.
    pub ranges: R,
}

impl<R> Fields for Module<'_, R>
where
    R: Iterator<Item = ModuleRange> + ExactSizeIterator + Clone,
{
    const TAG: u64 = tag::MODULE;

    fn encode<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error> {
        uvarint(sink, self.module_id)?;
        bytes(sink, self.path)?;
        bytes(sink, self.build_id)?;
        uvarint(sink, self.load_bias)?;
        uvarint(sink, self.ranges.len() as u64)?;
        for range in self.ranges.clone() {
            uvarint(sink, range.start)?;
            uvarint(sink, range.size)?;
            uvarint(sink, range.flags)?;
        }
        Ok(())
    }
}

/// STACK: allocation site `stack_id` with its return addresses, innermost
/// first, given by any iterator that can be run twice.
#[derive(Clone, Debug)]
pub struct Stack<P> {
    /// Id used by OBJECT records; never 0 in a valid dump.
    pub stack_id: u64,
    /// Return addresses, innermost first.
    pub pcs: P,
    /// A short site (1.1): only the first return addresses of an
    /// allocation that was not sampled, not a whole stack.
    pub short: bool,
}

impl<P> Fields for Stack<P>
where
    P: Iterator<Item = u64> + ExactSizeIterator + Clone,
{
    const TAG: u64 = tag::STACK;

    fn encode<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error> {
        uvarint(sink, self.stack_id)?;
        uvarint(sink, self.pcs.len() as u64)?;
        for pc in self.pcs.clone() {
            uvarint(sink, pc)?;
        }
        boolean(sink, self.short)
    }
}

/// The fields of a STATS record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in live allocations.
    pub live_bytes: u64,
    /// Live allocations.
    pub live_objects: u64,
    /// Bytes allocated since the tracker started.
    pub allocated_bytes: u64,
    /// Allocations since the tracker started.
    pub allocated_objects: u64,
    /// Bytes freed since the tracker started.
    pub freed_bytes: u64,
    /// Frees since the tracker started.
    pub freed_objects: u64,
    /// Highest `live_bytes` seen (approximate).
    pub peak_live_bytes: u64,
    /// Memory the tracker's own tables use.
    pub tracker_bytes: u64,
    /// The appended `threads` and `threads_dumped` fields; `None` writes
    /// the record as the first writers did, without them.
    pub threads: Option<ThreadCoverage>,
}

/// STATS's appended fields: how many threads had their stacks dumped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadCoverage {
    /// Threads in the process at the moment of the dump.
    pub threads: u64,
    /// Threads with a ROOT_THREAD_STACK record.
    pub threads_dumped: u64,
}

impl Stats {
    /// The names of STATS's first fields, in the order they are encoded
    /// (what [`Stats::fields`] returns and [`Stats::from_fields`] takes).
    pub const FIELDS: [&'static str; 8] = [
        "live_bytes",
        "live_objects",
        "allocated_bytes",
        "allocated_objects",
        "freed_bytes",
        "freed_objects",
        "peak_live_bytes",
        "tracker_bytes",
    ];

    /// The names of the two fields appended after [`Stats::FIELDS`].
    pub const THREAD_FIELDS: [&'static str; 2] = ["threads", "threads_dumped"];

    /// The first fields' values, in [`Stats::FIELDS`] order.
    pub const fn fields(&self) -> [u64; 8] {
        [
            self.live_bytes,
            self.live_objects,
            self.allocated_bytes,
            self.allocated_objects,
            self.freed_bytes,
            self.freed_objects,
            self.peak_live_bytes,
            self.tracker_bytes,
        ]
    }

    /// The statistics from values in [`Stats::FIELDS`] order, without
    /// thread coverage.
    pub const fn from_fields(fields: [u64; 8]) -> Stats {
        let [live_bytes, live_objects, allocated_bytes, allocated_objects, freed_bytes, freed_objects, peak_live_bytes, tracker_bytes] =
            fields;
        Stats {
            live_bytes,
            live_objects,
            allocated_bytes,
            allocated_objects,
            freed_bytes,
            freed_objects,
            peak_live_bytes,
            tracker_bytes,
            threads: None,
        }
    }
}

impl Fields for Stats {
    const TAG: u64 = tag::STATS;

    fn encode<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error> {
        for value in self.fields() {
            uvarint(sink, value)?;
        }
        if let Some(threads) = self.threads {
            uvarint(sink, threads.threads)?;
            uvarint(sink, threads.threads_dumped)?;
        }
        Ok(())
    }
}

/// The counts an END record carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndCounts {
    /// Records before END, PARAMS included.
    pub record_count: u64,
    /// OBJECT records.
    pub object_count: u64,
    /// Sum of OBJECT sizes.
    pub object_bytes: u64,
}

impl Fields for EndCounts {
    const TAG: u64 = tag::END;

    fn encode<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error> {
        uvarint(sink, self.record_count)?;
        uvarint(sink, self.object_count)?;
        uvarint(sink, self.object_bytes)
    }
}

/// OBJECT up to its contents: `size` bytes at `address`, allocated at site
/// `stack_id` (0: not sampled), followed by `contents_len` bytes of contents
/// (equal to `size` in a valid dump).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectHead {
    /// Address returned by the allocator.
    pub address: u64,
    /// Size the program asked for.
    pub size: u64,
    /// STACK of the allocation site (a sampled stack, or since 1.1 a short
    /// site); 0 if none was recorded.
    pub stack_id: u64,
    /// Length of the contents that follow.
    pub contents_len: usize,
}

impl Head for ObjectHead {
    const TAG: u64 = tag::OBJECT;

    fn contents_len(&self) -> usize {
        self.contents_len
    }

    fn encode_fields<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error> {
        uvarint(sink, self.address)?;
        uvarint(sink, self.size)?;
        uvarint(sink, self.stack_id)
    }
}

/// ROOT_SEGMENT up to its contents: a writable range of module `module_id`
/// starting at `address`, followed by `contents_len` bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RootSegmentHead {
    /// The MODULE this range belongs to.
    pub module_id: u64,
    /// Runtime address of the first byte.
    pub address: u64,
    /// Length of the contents that follow.
    pub contents_len: usize,
}

impl Head for RootSegmentHead {
    const TAG: u64 = tag::ROOT_SEGMENT;

    fn contents_len(&self) -> usize {
        self.contents_len
    }

    fn encode_fields<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error> {
        uvarint(sink, self.module_id)?;
        uvarint(sink, self.address)
    }
}

/// ROOT_THREAD_STACK up to its contents: thread `thread_id` called `name`,
/// whose stack from `address` up follows in `contents_len` bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RootThreadStackHead<'a> {
    /// OS thread id.
    pub thread_id: u64,
    /// Thread name, empty if none.
    pub name: &'a [u8],
    /// The stack pointer: address of the first byte of the contents.
    pub address: u64,
    /// Length of the contents that follow.
    pub contents_len: usize,
}

impl Head for RootThreadStackHead<'_> {
    const TAG: u64 = tag::ROOT_THREAD_STACK;

    fn contents_len(&self) -> usize {
        self.contents_len
    }

    fn encode_fields<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error> {
        uvarint(sink, self.thread_id)?;
        bytes(sink, self.name)?;
        uvarint(sink, self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed-size sink, as the writer's buffer is.
    struct Fixed {
        bytes: [u8; 256],
        len: usize,
    }

    impl Sink for Fixed {
        type Error = ();

        fn put(&mut self, bytes: &[u8]) -> Result<(), ()> {
            let end = self.len + bytes.len();
            self.bytes
                .get_mut(self.len..end)
                .ok_or(())?
                .copy_from_slice(bytes);
            self.len = end;
            Ok(())
        }
    }

    #[test]
    fn object_head_matches_the_format_doc_example() {
        let mut out = Fixed {
            bytes: [0; 256],
            len: 0,
        };
        let head = ObjectHead {
            address: 0x5555_5555_a000,
            size: 16,
            stack_id: 0,
            contents_len: 16,
        };
        record_head(&mut out, &head).unwrap();
        assert_eq!(
            &out.bytes[..out.len],
            &[0x06, 0x1a, 0x80, 0xc0, 0xd6, 0xaa, 0xd5, 0xaa, 0x15, 0x10, 0x00, 0x10]
        );
    }

    #[test]
    fn stats_writes_thread_coverage_only_when_given() {
        let mut stats = Stats::from_fields([1, 2, 3, 4, 5, 6, 7, 300]);
        let mut out = Fixed {
            bytes: [0; 256],
            len: 0,
        };
        record(&mut out, &stats).unwrap();
        assert_eq!(
            &out.bytes[..out.len],
            &[7, 9, 1, 2, 3, 4, 5, 6, 7, 0xac, 0x02]
        );
        stats.threads = Some(ThreadCoverage {
            threads: 3,
            threads_dumped: 2,
        });
        out.len = 0;
        record(&mut out, &stats).unwrap();
        assert_eq!(&out.bytes[..2], &[7, 11]);
        assert_eq!(&out.bytes[out.len - 2..out.len], &[3, 2]);
        assert_eq!(Stats::from_fields(stats.fields()).fields(), stats.fields());
    }

    #[test]
    fn a_full_sink_fails_the_record() {
        let mut out = Fixed {
            bytes: [0; 256],
            len: 250,
        };
        let stack = Stack {
            stack_id: 1,
            pcs: [u64::MAX; 4].into_iter(),
            short: false,
        };
        assert_eq!(record(&mut out, &stack), Err(()));
    }
}
