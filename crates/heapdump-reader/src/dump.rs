//! The format-independent model of a heap dump: what every analysis sees,
//! whichever format the file was in.
//!
//! Memory images (object, segment and stack contents) are borrowed from the
//! file (`&'data [u8]`); only the small metadata is copied.

use std::fmt;
use std::num::NonZeroU64;

use heapdump_format::ContentsMode;
use serde::{Serialize, Serializer};

/// A parsed heap dump.
///
/// A `Dump` made by [`parse`](crate::parse) satisfies the invariants below;
/// code that builds one by hand must keep them too.
#[derive(Clone, Debug)]
pub struct Dump<'data> {
    /// What the dump says about itself and the dumped process.
    pub info: DumpInfo,
    /// Loaded modules, in the order of the file.
    pub modules: Vec<Module>,
    /// Roots: memory outside the heap that may point into it.
    pub roots: Vec<Root<'data>>,
    /// Allocation-site stacks, sorted by id, ids unique.
    pub stacks: Vec<Stack>,
    /// Live heap objects, sorted by address, not overlapping.
    pub objects: Vec<Object<'data>>,
    /// The allocator's statistics, if the dump has them.
    pub stats: Option<AllocatorStats>,
}

impl<'data> Dump<'data> {
    /// The allocation-site stack with id `id`.
    pub fn stack(&self, id: StackId) -> Option<&Stack> {
        self.stacks
            .binary_search_by_key(&id, |stack| stack.id)
            .ok()
            .and_then(|index| self.stacks.get(index))
    }

    /// Sum of the sizes of all objects.
    pub fn live_bytes(&self) -> u64 {
        self.objects
            .iter()
            .fold(0u64, |sum, object| sum.saturating_add(object.size))
    }
}

/// What a dump says about itself and the dumped process (PARAMS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DumpInfo {
    /// Name of the file format, e.g. `heapdump-rs`.
    pub format: &'static str,
    /// Version of the file format, e.g. `1.0`.
    pub format_version: String,
    /// Bytes in a pointer of the dumped process: 4 or 8.
    pub pointer_size: u8,
    /// Byte order of memory images.
    pub big_endian: bool,
    /// CPU architecture of the dumped process (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// Operating system of the dumped process (`linux`, ...).
    pub os: String,
    /// Process id of the dumped process.
    pub pid: u64,
    /// Wall-clock time of the dump, nanoseconds since the Unix epoch.
    pub time_unix_ns: u64,
    /// Path of the main executable, empty if unknown.
    pub executable: String,
    /// GNU build-id of the main executable, empty if none (hex in JSON).
    #[serde(serialize_with = "serialize_hex")]
    pub build_id: Vec<u8>,
    /// Name and version of the program that wrote the dump.
    pub writer: String,
    /// How much of each memory image the dump keeps (`full` or `redacted`
    /// in JSON).
    #[serde(serialize_with = "serialize_contents_mode")]
    pub contents_mode: ContentsMode,
    /// Mean bytes between sampled allocation sites; 1 = every allocation.
    pub sample_rate: u64,
}

/// A loaded module: the main executable or a shared object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Module {
    /// Index of the module in the dump, from 0; 0 is the main executable.
    pub id: u64,
    /// File path as the loader knows it.
    pub path: String,
    /// GNU build-id note contents, empty if none (hex in JSON).
    #[serde(serialize_with = "serialize_hex")]
    pub build_id: Vec<u8>,
    /// Runtime address minus link-time address.
    pub load_bias: u64,
    /// The module's loaded segments at their runtime addresses.
    pub ranges: Vec<ModuleRange>,
}

/// One loaded segment of a [`Module`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ModuleRange {
    /// Runtime address of the first byte.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Protection: 1 read, 2 write, 4 execute (`heapdump_format::range_flags`).
    pub flags: u64,
}

/// Memory outside the heap whose words may point into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root<'data> {
    /// What kind of memory this is.
    pub kind: RootKind,
    /// Address of the first byte of `contents`.
    pub address: u64,
    /// The memory's bytes at the moment of the dump, borrowed from the file.
    pub contents: &'data [u8],
}

/// What kind of memory a [`Root`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// A writable, non-RELRO range of a module (`.data`, `.bss`: statics).
    Segment {
        /// The [`Module`] the range belongs to.
        module_id: u64,
    },
    /// A thread's stack, from its stack pointer up.
    ThreadStack {
        /// OS thread id.
        thread_id: u64,
        /// Thread name, empty if none.
        name: String,
    },
}

/// Identifies an allocation-site [`Stack`]. Never 0, so that
/// `Option<StackId>` is as small as a `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StackId(NonZeroU64);

impl StackId {
    /// The id `id`, or `None` for 0 ("not sampled" in object records).
    pub fn new(id: u64) -> Option<StackId> {
        NonZeroU64::new(id).map(StackId)
    }

    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for StackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for StackId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.get())
    }
}

/// An allocation-site stack: the return addresses that led to an allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// The stack's id.
    pub id: StackId,
    /// Raw return addresses, innermost first. A symboliser looks up `pc - 1`.
    pub pcs: Vec<u64>,
}

/// A live heap allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Object<'data> {
    /// Address returned by the allocator.
    pub address: u64,
    /// Size the program asked for.
    pub size: u64,
    /// Allocation-site stack, `None` if the allocation was not sampled.
    pub site: Option<StackId>,
    /// The object's bytes, borrowed from the file (`size` of them).
    pub contents: &'data [u8],
}

impl Object<'_> {
    /// One past the object's last byte (saturating at `u64::MAX`).
    pub fn end(&self) -> u64 {
        self.address.saturating_add(self.size)
    }

    /// Whether `address` is one of the object's bytes (its first byte up to,
    /// not including, its end).
    pub fn contains(&self, address: u64) -> bool {
        address >= self.address && address - self.address < self.size
    }
}

/// The allocator's statistics at the moment of the dump (STATS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AllocatorStats {
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
    /// Highest `live_bytes` seen (approximate: may be low by up to 256 KiB
    /// per thread).
    pub peak_live_bytes: u64,
    /// Memory the tracker's own tables use, outside the heap.
    pub tracker_bytes: u64,
}

/// The name of a contents mode as JSON shows it.
pub fn contents_mode_name(mode: ContentsMode) -> &'static str {
    match mode {
        ContentsMode::Full => "full",
        ContentsMode::Redacted => "redacted",
    }
}

fn serialize_contents_mode<S: Serializer>(
    mode: &ContentsMode,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(contents_mode_name(*mode))
}

fn serialize_hex<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&Hex(bytes))
}

/// Displays bytes as lowercase hex digits with no separators.
#[derive(Clone, Copy, Debug)]
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}
