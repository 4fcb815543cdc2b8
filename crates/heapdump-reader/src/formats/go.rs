//! Go heap dumps: `runtime/debug.WriteHeapDump` output, header
//! `go1.7 heap dump`, as Go 1.7 up to at least Go 1.27 writes it (the
//! runtime's `src/runtime/heapdump.go`; notes in `docs/ARCHITECTURE.md`).
//!
//! A dump is the header, then records: a uvarint tag and the tag's fields
//! (uvarints, strings, and field lists of pointer offsets), with **no record
//! length**, so an unknown tag stops the reader with
//! [`ErrorKind::UnknownTag`]. One sequential pass decodes every record;
//! memory images and field lists stay borrowed from the file. Afterwards
//! objects (written in span order) are sorted by address and checked for
//! overlaps, alloc samples give objects their site, and memstats fill the
//! common [`AllocatorStats`].
//!
//! The common model gets everything in format-neutral terms (goroutines as
//! [`ExecutionContexts`], memstats as [`RuntimeStats`], memprof buckets as
//! [`AllocationProfile`]s, data and BSS as [`RootKind::Section`]s anchored by
//! their link-time symbols); the records as the runtime wrote them stay in
//! [`GoDump`], which Go-specific callers reach with [`extras`].
//!
//! What the runtime writes, and how it lands in the model:
//!
//! | tag | record | model |
//! |---|---|---|
//! | 0 | EOF | end of the records; nothing may follow |
//! | 1 | object | [`Object`] with exact [`Pointers`]; a Go 1.22+ malloc header's type word names the type when a type record has it |
//! | 2 | other root | [`RootKind::Other`] root with the pointer as a value |
//! | 3 | type | [`TypeInfo`] and [`GoType`] (duplicates dropped) |
//! | 4 | goroutine | [`Goroutine`] and an [`ExecutionContext`]; its context as a [`RootKind::Held`] root (`goroutine context`) |
//! | 5 | stack frame | [`RootKind::Frame`] root with exact pointers, and a [`GoFrame`] |
//! | 6 | params | [`DumpInfo`] and [`GoParams`]; must be the first record |
//! | 7, 11 | finalizer, queued finalizer | [`RootKind::Finalizer`] root and a [`GoFinalizer`] |
//! | 8 | itab | [`GoItab`] |
//! | 9 | OS thread | [`GoThread`] |
//! | 10 | memstats | [`GoMemStats`], [`AllocatorStats`] and [`RuntimeStats`] |
//! | 12, 13 | data, BSS | [`RootKind::Section`] roots (`data`, `bss`, anchored by `runtime.data`..`runtime.edata` and `runtime.bss`..`runtime.ebss`) with exact pointers |
//! | 14, 15 | defer, panic | [`RootKind::Held`] roots (`defer`, `panic`) |
//! | 16 | memprof bucket | [`Stack`] with symbolised frames, an [`AllocationProfile`] and a [`GoBucket`] |
//! | 17 | alloc sample | the containing object's [`Object::site`] |

use std::collections::{HashMap, HashSet};

use heapdump_format::ContentsMode;
use rayon::slice::ParallelSliceMut;

use crate::cursor::Cursor;
use crate::dump::{
    AllocationProfile, AllocatorStats, Capabilities, ContextFrame, ContextRef, Dump, DumpInfo,
    ExecutionContext, ExecutionContexts, FormatExtras, Frame, Object, PointerList, PointerOffsets,
    Pointers, Root, RootKind, RuntimeStats, SectionSymbols, Stack, StackId, TypeIndex, TypeInfo,
};
use crate::error::{Error, ErrorKind};
use crate::formats::rust::{check_overlaps, offset_in};
use crate::formats::{bad_value, unique_stack_id, Format};

mod model;

use crate::graph::{MAX_OBJECTS, MAX_ROOTS};
pub use model::{
    status_name, GoBucket, GoDefer, GoDump, GoFinalizer, GoFrame, GoItab, GoMemStats, GoPanic,
    GoParams, GoThread, GoType, Goroutine,
};

/// The format's name.
pub const NAME: &str = "go";

/// The header this reader reads.
pub const HEADER: &[u8; 16] = b"go1.7 heap dump\n";

/// How many bytes of the file between two calls of the progress callback.
const PROGRESS_STEP: u64 = 4 << 20;

/// Record tags.
pub mod tag {
    /// End of the dump.
    pub const EOF: u64 = 0;
    /// A heap object.
    pub const OBJECT: u64 = 1;
    /// A described root (not written since Go 1.4).
    pub const OTHER_ROOT: u64 = 2;
    /// A type descriptor.
    pub const TYPE: u64 = 3;
    /// A goroutine.
    pub const GOROUTINE: u64 = 4;
    /// A goroutine stack frame.
    pub const STACK_FRAME: u64 = 5;
    /// The dump parameters.
    pub const PARAMS: u64 = 6;
    /// A registered finalizer.
    pub const FINALIZER: u64 = 7;
    /// An interface table.
    pub const ITAB: u64 = 8;
    /// An OS thread (M).
    pub const OS_THREAD: u64 = 9;
    /// `runtime.MemStats`.
    pub const MEMSTATS: u64 = 10;
    /// A queued finalizer.
    pub const QUEUED_FINALIZER: u64 = 11;
    /// The data segment.
    pub const DATA: u64 = 12;
    /// The BSS segment.
    pub const BSS: u64 = 13;
    /// A defer record.
    pub const DEFER: u64 = 14;
    /// A panic record.
    pub const PANIC: u64 = 15;
    /// A memory-profile bucket.
    pub const MEMPROF: u64 = 16;
    /// A sampled live allocation.
    pub const ALLOC_SAMPLE: u64 = 17;

    /// The record's name for messages (`unknown` for an unknown tag).
    pub fn name(tag: u64) -> &'static str {
        match tag {
            EOF => "EOF",
            OBJECT => "object",
            OTHER_ROOT => "other root",
            TYPE => "type",
            GOROUTINE => "goroutine",
            STACK_FRAME => "stack frame",
            PARAMS => "params",
            FINALIZER => "finalizer",
            ITAB => "itab",
            OS_THREAD => "OS thread",
            MEMSTATS => "memstats",
            QUEUED_FINALIZER => "queued finalizer",
            DATA => "data",
            BSS => "BSS",
            DEFER => "defer",
            PANIC => "panic",
            MEMPROF => "memprof bucket",
            ALLOC_SAMPLE => "alloc sample",
            _ => "unknown",
        }
    }
}

/// What Go dumps call their execution contexts.
pub const CONTEXT_NOUN: &str = "goroutine";

/// The [`ContextRef`] of goroutine `id`.
fn goroutine_ref(id: u64) -> ContextRef {
    ContextRef {
        noun: CONTEXT_NOUN,
        id,
    }
}

/// The root kind of the data (`data`) or BSS (`bss`) segment: a section
/// of the executable from `runtime.<name>` up to `runtime.e<name>`.
fn section(name: &'static str) -> RootKind {
    let (start, end) = match name {
        "bss" => ("runtime.bss", "runtime.ebss"),
        _ => ("runtime.data", "runtime.edata"),
    };
    RootKind::Section {
        name,
        symbols: Some(SectionSymbols {
            start,
            end,
            toolchain: "Go",
        }),
    }
}

/// The error for an unknown record tag: Go records carry no length, so
/// nothing after it can be read.
fn unknown_tag(tag: u64) -> ErrorKind {
    ErrorKind::UnknownTag {
        format: "Go heap dump",
        tag,
        reason: "Go records carry no length, so the rest of the file cannot be read \
                 (a dump from a newer Go runtime, or a corrupt file)",
    }
}

/// Go heap dumps (files that start with `go1.` and say `heap dump`).
#[derive(Clone, Copy, Debug, Default)]
pub struct GoFormat;

impl Format for GoFormat {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["godump"]
    }

    /// Exact pointers; the roots are the ones the runtime scans; every
    /// sampled site is in the memory profile, which the dump cannot change.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pointers_exact: true,
            roots_complete: true,
            unreached_objects_hold: false,
            every_site_hint: None,
        }
    }

    /// Any `goX.Y heap dump` header, so that dumps of Go 1.3 to 1.6 get a
    /// clear "unsupported" error rather than "unknown format".
    fn matches(&self, bytes: &[u8]) -> bool {
        let line = bytes.get(..32).unwrap_or(bytes);
        bytes.starts_with(b"go1.")
            && line
                .windows(b" heap dump\n".len())
                .any(|window| window == b" heap dump\n")
    }

    fn parse<'data>(
        &self,
        bytes: &'data [u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Dump<'data>, Error> {
        Parser::new(bytes).run(progress)
    }
}

/// The minor version in a Go version string (`go1.26.6` → 26;
/// `devel go1.27-abc` → 27), if there is one.
pub fn go_minor_version(version: &str) -> Option<u64> {
    let start = version.find("go1.")? + 4;
    let digits: String = version
        .get(start..)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Everything read so far.
struct Parser<'data> {
    bytes: &'data [u8],
    info: Option<DumpInfo>,
    pointer_size: u64,
    go: GoDump,
    roots: Vec<Root<'data>>,
    objects: Vec<Object>,
    /// Objects' field lists ([`Dump::pointer_lists`]).
    pointer_lists: Vec<PointerOffsets<'data>>,
    objects_sorted: bool,
    stacks: Vec<Stack>,
    bucket_ids: HashSet<u64>,
    /// `(address, bucket id, offset of the bucket field)` of alloc samples.
    samples: Vec<(u64, u64, u64)>,
    types: Vec<TypeInfo>,
    /// Type descriptor address → index in `types` / `go.types`.
    type_addresses: HashMap<u64, usize>,
    /// Goroutine address → goroutine id, for defers and panics.
    goroutine_ids: HashMap<u64, u64>,
    data_seen: bool,
    bss_seen: bool,
    stats: Option<AllocatorStats>,
}

impl<'data> Parser<'data> {
    fn new(bytes: &'data [u8]) -> Parser<'data> {
        Parser {
            bytes,
            info: None,
            pointer_size: 8,
            go: GoDump::default(),
            roots: Vec::new(),
            objects: Vec::new(),
            pointer_lists: Vec::new(),
            objects_sorted: true,
            stacks: Vec::new(),
            bucket_ids: HashSet::new(),
            samples: Vec::new(),
            types: Vec::new(),
            type_addresses: HashMap::new(),
            goroutine_ids: HashMap::new(),
            data_seen: false,
            bss_seen: false,
            stats: None,
        }
    }

    fn run(mut self, progress: &mut dyn FnMut(u64, u64)) -> Result<Dump<'data>, Error> {
        let total = self.bytes.len() as u64;
        let mut file = Cursor::new(self.bytes, 0, "file");
        self.header(&mut file)?;
        progress(file.offset(), total);
        let mut next_progress = PROGRESS_STEP;

        let mut first = true;
        loop {
            if file.is_empty() {
                let kind = if self.info.is_none() {
                    ErrorKind::MissingParams
                } else {
                    ErrorKind::MissingEnd
                };
                return Err(Error::new(file.offset(), kind));
            }
            let record_offset = file.offset();
            let tag = file.uvarint("record tag")?;
            if first && tag != tag::PARAMS {
                if tag > tag::ALLOC_SAMPLE {
                    return Err(Error::new(record_offset, unknown_tag(tag)));
                }
                return Err(Error::new(
                    record_offset,
                    ErrorKind::ParamsNotFirst {
                        tag,
                        name: tag::name(tag),
                    },
                ));
            }
            first = false;
            match tag {
                tag::EOF => {
                    if !file.is_empty() {
                        return Err(Error::new(
                            file.offset(),
                            ErrorKind::TrailingBytes {
                                count: file.remaining() as u64,
                            },
                        ));
                    }
                    break;
                }
                tag::OBJECT => self.object(&mut file, record_offset)?,
                tag::OTHER_ROOT => self.other_root(&mut file, record_offset)?,
                tag::TYPE => self.type_record(&mut file)?,
                tag::GOROUTINE => self.goroutine(&mut file, record_offset)?,
                tag::STACK_FRAME => self.stack_frame(&mut file, record_offset)?,
                tag::PARAMS => self.params(&mut file, record_offset)?,
                tag::FINALIZER => self.finalizer(&mut file, record_offset, false)?,
                tag::ITAB => self.itab(&mut file)?,
                tag::OS_THREAD => self.os_thread(&mut file)?,
                tag::MEMSTATS => self.memstats(&mut file, record_offset)?,
                tag::QUEUED_FINALIZER => self.finalizer(&mut file, record_offset, true)?,
                tag::DATA => self.segment(&mut file, record_offset, section("data"))?,
                tag::BSS => self.segment(&mut file, record_offset, section("bss"))?,
                tag::DEFER => self.defer(&mut file, record_offset)?,
                tag::PANIC => self.panic(&mut file, record_offset)?,
                tag::MEMPROF => self.memprof(&mut file)?,
                tag::ALLOC_SAMPLE => self.alloc_sample(&mut file)?,
                _ => return Err(Error::new(record_offset, unknown_tag(tag))),
            }
            if file.offset() >= next_progress {
                progress(file.offset(), total);
                next_progress = file.offset().saturating_add(PROGRESS_STEP);
            }
        }

        let dump = self.finish()?;
        progress(total, total);
        Ok(dump)
    }

    fn header(&mut self, file: &mut Cursor<'data>) -> Result<(), Error> {
        let header: [u8; 16] = file.array("header")?;
        if &header != HEADER {
            let line = self.bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
            let line = line.get(..64).unwrap_or(line);
            return Err(Error::new(
                0,
                ErrorKind::UnsupportedHeader {
                    format: "a Go heap dump",
                    header: String::from_utf8_lossy(line).into_owned(),
                    supported: "\"go1.7 heap dump\" (written by Go 1.7 and later)",
                },
            ));
        }
        Ok(())
    }

    /// Reads a field list for a memory image of `image_len` bytes: checks
    /// that every pair is `(1, offset)` with the pointer word inside the
    /// image, and returns it borrowed from the file.
    fn field_list(
        &self,
        cursor: &mut Cursor<'data>,
        image_len: u64,
    ) -> Result<PointerOffsets<'data>, Error> {
        let mut start = cursor.clone();
        loop {
            let kind_offset = cursor.offset();
            match cursor.uvarint("field kind")? {
                0 => break,
                1 => {}
                kind => {
                    return Err(bad_value(
                        kind_offset,
                        "field kind",
                        kind,
                        "must be 0 (end) or 1 (pointer); Go 1.5 and later write no other kind",
                    ))
                }
            }
            let offset_offset = cursor.offset();
            let offset = cursor.uvarint("field offset")?;
            if offset.saturating_add(self.pointer_size) > image_len {
                return Err(bad_value(
                    offset_offset,
                    "field offset",
                    offset,
                    "the pointer word runs past the end of its memory image",
                ));
            }
        }
        let len = cursor.offset() - start.offset();
        let offset = start.offset();
        let encoded = start.take(len, "field list", offset)?;
        Ok(PointerOffsets::from_field_list(encoded))
    }

    fn push_root(&mut self, root: Root<'data>, record_offset: u64) -> Result<usize, Error> {
        if self.roots.len() as u64 >= MAX_ROOTS {
            return Err(Error::new(
                record_offset,
                ErrorKind::TooManyRoots { max: MAX_ROOTS },
            ));
        }
        self.roots.push(root);
        Ok(self.roots.len() - 1)
    }

    /// A root that holds only `values`, named `name` (or by its kind).
    fn push_value_root(
        &mut self,
        kind: RootKind,
        name: Option<String>,
        values: Vec<u64>,
        record_offset: u64,
    ) -> Result<(), Error> {
        let mut root = Root::new(kind, 0, &[]);
        if let Some(name) = name {
            root.name = name;
        }
        root.pointers = Pointers::Exact(PointerOffsets::from_field_list(&[0]));
        root.values = values;
        self.push_root(root, record_offset).map(|_| ())
    }

    fn params(&mut self, file: &mut Cursor<'data>, record_offset: u64) -> Result<(), Error> {
        if self.info.is_some() {
            return Err(Error::new(
                record_offset,
                ErrorKind::DuplicateRecord { name: "params" },
            ));
        }
        let big_endian = file.bool("big_endian")?;
        let size_offset = file.offset();
        let pointer_size = match file.uvarint("pointer size")? {
            4 => 4u8,
            8 => 8u8,
            other => {
                return Err(bad_value(
                    size_offset,
                    "pointer size",
                    other,
                    "must be 4 or 8",
                ))
            }
        };
        let arena_start = file.uvarint("arena start")?;
        let arena_end = file.uvarint("arena end")?;
        let goarch = file.string("GOARCH")?.into_owned();
        let version = file.string("runtime version")?.into_owned();
        let ncpu = file.uvarint("ncpu")?;
        let malloc_headers = go_minor_version(&version).is_some_and(|minor| minor >= 22);
        self.pointer_size = u64::from(pointer_size);
        self.go.params = GoParams {
            arena_start,
            arena_end,
            goarch: goarch.clone(),
            version: version.clone(),
            ncpu,
            malloc_headers,
        };
        self.info = Some(DumpInfo {
            format: NAME,
            format_version: "1.7".to_owned(),
            pointer_size,
            big_endian,
            arch: goarch,
            os: String::new(),
            pid: 0,
            time_unix_ns: 0,
            executable: String::new(),
            build_id: Vec::new(),
            writer: version,
            contents_mode: ContentsMode::Full,
            sample_rate: 0,
        });
        Ok(())
    }

    fn object(&mut self, file: &mut Cursor<'data>, record_offset: u64) -> Result<(), Error> {
        let address_offset = file.offset();
        let address = file.uvarint("object address")?;
        let contents = file.bytes("object contents")?;
        let size = contents.len() as u64;
        check_range(address_offset, address, size)?;
        let offsets = self.field_list(file, size)?;
        if self.objects.len() as u64 >= MAX_OBJECTS {
            return Err(Error::new(
                record_offset,
                ErrorKind::TooManyObjects { max: MAX_OBJECTS },
            ));
        }
        let has_type_header = self.has_malloc_header(size, offsets, contents);
        let type_index = if has_type_header {
            self.header_type(contents)
        } else {
            None
        };
        if type_index.is_some() {
            self.go.typed_by_header += 1;
        }
        if let Some(last) = self.objects.last() {
            if address <= last.address {
                self.objects_sorted = false;
            }
        }
        let Some(list) = PointerList::new(self.pointer_lists.len()) else {
            return Err(Error::new(
                record_offset,
                ErrorKind::TooManyObjects {
                    max: PointerList::MAX as u64,
                },
            ));
        };
        self.pointer_lists.push(offsets);
        let mut object = Object::new(address, size, None, offset_in(self.bytes, contents));
        object.set_pointer_list(Some(list));
        object.set_type_index(type_index);
        object.set_header(has_type_header);
        self.objects.push(object);
        Ok(())
    }

    /// Whether an object of slot size `size` starts with a Go 1.22+ malloc
    /// header: it has pointers and its size class is above
    /// `pointer size × bits per word` (512 bytes on 64-bit) and at most
    /// 32 KiB. At exactly 32 KiB a slot may also be a large object (whose
    /// type lives in its span, not in a header); there the first word must
    /// look like a type descriptor (non-zero, aligned, outside the heap).
    fn has_malloc_header(&self, size: u64, offsets: PointerOffsets<'_>, contents: &[u8]) -> bool {
        const MAX_SMALL_SIZE: u64 = 32 << 10;
        let threshold = self.pointer_size * self.pointer_size * 8;
        if !self.go.params.malloc_headers || size <= threshold || size > MAX_SMALL_SIZE {
            return false;
        }
        if offsets.is_empty() {
            return false;
        }
        if size < MAX_SMALL_SIZE {
            return true;
        }
        match self.first_word(contents) {
            Some(word) => {
                word != 0
                    && word % self.pointer_size == 0
                    && !(self.go.params.arena_start..self.go.params.arena_end).contains(&word)
            }
            None => false,
        }
    }

    fn first_word(&self, contents: &[u8]) -> Option<u64> {
        let big_endian = self.info.as_ref().is_some_and(|info| info.big_endian);
        match self.pointer_size {
            4 => {
                let bytes: [u8; 4] = contents.get(..4)?.try_into().ok()?;
                Some(u64::from(if big_endian {
                    u32::from_be_bytes(bytes)
                } else {
                    u32::from_le_bytes(bytes)
                }))
            }
            _ => {
                let bytes: [u8; 8] = contents.get(..8)?.try_into().ok()?;
                Some(if big_endian {
                    u64::from_be_bytes(bytes)
                } else {
                    u64::from_le_bytes(bytes)
                })
            }
        }
    }

    /// The type a malloc header names, if a type record describes it.
    fn header_type(&self, contents: &[u8]) -> Option<TypeIndex> {
        let word = self.first_word(contents)?;
        let index = *self.type_addresses.get(&word)?;
        u32::try_from(index).ok().map(TypeIndex)
    }

    fn other_root(&mut self, file: &mut Cursor<'data>, record_offset: u64) -> Result<(), Error> {
        let description = file.string("root description")?.into_owned();
        let pointer = file.uvarint("root pointer")?;
        self.push_value_root(
            RootKind::Other { description },
            None,
            vec![pointer],
            record_offset,
        )
    }

    fn type_record(&mut self, file: &mut Cursor<'data>) -> Result<(), Error> {
        let address = file.uvarint("type address")?;
        let size = file.uvarint("type size")?;
        let name = file.string("type name")?.into_owned();
        let indirect_or_pointers = file.bool("type indirect flag")?;
        // The runtime's type cache can overflow and write a type again.
        if self.type_addresses.contains_key(&address) {
            return Ok(());
        }
        self.type_addresses.insert(address, self.types.len());
        self.types
            .push(TypeInfo::named(address, name.clone(), size, false));
        self.go.types.push(GoType {
            address,
            size,
            name,
            indirect_or_pointers,
        });
        Ok(())
    }

    fn itab(&mut self, file: &mut Cursor<'data>) -> Result<(), Error> {
        let address = file.uvarint("itab address")?;
        let type_address = file.uvarint("itab type address")?;
        self.go.itabs.push(GoItab {
            address,
            type_address,
        });
        Ok(())
    }

    fn goroutine(&mut self, file: &mut Cursor<'data>, record_offset: u64) -> Result<(), Error> {
        let address = file.uvarint("goroutine address")?;
        let sp = file.uvarint("goroutine sp")?;
        let id = file.uvarint("goroutine id")?;
        let go_pc = file.uvarint("goroutine gopc")?;
        let status = file.uvarint("goroutine status")?;
        let system = file.bool("goroutine is-system")?;
        let background = file.bool("goroutine is-background")?;
        let wait_since = file.uvarint("goroutine waitsince")?;
        let wait_reason = file.string("goroutine waitreason")?.into_owned();
        let context = file.uvarint("goroutine context")?;
        let thread = file.uvarint("goroutine M")?;
        let defer = file.uvarint("goroutine defer")?;
        let panic = file.uvarint("goroutine panic")?;
        let roots = self.roots.len();
        self.goroutine_ids.insert(address, id);
        self.go.goroutines.push(Goroutine {
            address,
            id,
            sp,
            go_pc,
            status,
            system,
            background,
            wait_since,
            wait_reason,
            context,
            thread,
            defer,
            panic,
            frame_roots: roots..roots,
            frames: Vec::new(),
        });
        if context != 0 {
            self.push_value_root(
                RootKind::Held {
                    what: "goroutine context",
                    context: Some(goroutine_ref(id)),
                },
                Some(format!("goroutine {id} context")),
                vec![context],
                record_offset,
            )?;
            // Frames come after the context root.
            if let Some(goroutine) = self.go.goroutines.last_mut() {
                goroutine.frame_roots = roots + 1..roots + 1;
            }
        }
        Ok(())
    }

    fn stack_frame(&mut self, file: &mut Cursor<'data>, record_offset: u64) -> Result<(), Error> {
        let sp = file.uvarint("frame sp")?;
        let depth = file.uvarint("frame depth")?;
        let child_sp = file.uvarint("frame child sp")?;
        let contents = file.bytes("frame contents")?;
        let entry_pc = file.uvarint("frame entry pc")?;
        let pc = file.uvarint("frame pc")?;
        let continue_pc = file.uvarint("frame continpc")?;
        let function = file.string("frame function name")?.into_owned();
        let offsets = self.field_list(file, contents.len() as u64)?;
        check_range(record_offset, sp, contents.len() as u64)?;
        let Some(goroutine) = self.go.goroutines.last() else {
            return Err(Error::new(
                record_offset,
                ErrorKind::OutOfPlace {
                    name: "stack frame",
                    reason: "comes before any goroutine record",
                },
            ));
        };
        let goroutine_id = goroutine.id;
        let kind = RootKind::Frame {
            context: goroutine_ref(goroutine_id),
            depth,
            function: function.clone(),
        };
        let mut root = Root::new(kind, sp, contents);
        root.pointers = Pointers::Exact(offsets);
        let index = self.push_root(root, record_offset)?;
        if let Some(goroutine) = self.go.goroutines.last_mut() {
            if goroutine.frame_roots.end == index {
                goroutine.frame_roots.end = index + 1;
            }
            goroutine.frames.push(GoFrame {
                sp,
                depth,
                child_sp,
                size: contents.len() as u64,
                entry_pc,
                pc,
                continue_pc,
                function,
            });
        }
        Ok(())
    }

    fn goroutine_id(&self, address: u64) -> u64 {
        self.goroutine_ids.get(&address).copied().unwrap_or(0)
    }

    fn defer(&mut self, file: &mut Cursor<'data>, record_offset: u64) -> Result<(), Error> {
        let record = GoDefer {
            address: file.uvarint("defer address")?,
            goroutine: file.uvarint("defer goroutine")?,
            sp: file.uvarint("defer sp")?,
            pc: file.uvarint("defer pc")?,
            closure: file.uvarint("defer closure")?,
            code: file.uvarint("defer code pc")?,
            link: file.uvarint("defer link")?,
        };
        self.go.defers.push(record);
        if record.closure != 0 {
            let goroutine = self.goroutine_id(record.goroutine);
            self.push_value_root(
                RootKind::Held {
                    what: "defer",
                    context: Some(goroutine_ref(goroutine)),
                },
                None,
                vec![record.closure],
                record_offset,
            )?;
        }
        Ok(())
    }

    fn panic(&mut self, file: &mut Cursor<'data>, record_offset: u64) -> Result<(), Error> {
        let address = file.uvarint("panic address")?;
        let goroutine = file.uvarint("panic goroutine")?;
        let value_type = file.uvarint("panic value type")?;
        let value_data = file.uvarint("panic value data")?;
        let _defer = file.uvarint("panic defer (unused)")?;
        let link = file.uvarint("panic link")?;
        self.go.panics.push(GoPanic {
            address,
            goroutine,
            value_type,
            value_data,
            link,
        });
        if value_data != 0 {
            let goroutine = self.goroutine_id(goroutine);
            self.push_value_root(
                RootKind::Held {
                    what: "panic",
                    context: Some(goroutine_ref(goroutine)),
                },
                None,
                vec![value_data],
                record_offset,
            )?;
        }
        Ok(())
    }

    fn finalizer(
        &mut self,
        file: &mut Cursor<'data>,
        record_offset: u64,
        queued: bool,
    ) -> Result<(), Error> {
        let record = GoFinalizer {
            object: file.uvarint("finalizer object")?,
            closure: file.uvarint("finalizer closure")?,
            code: file.uvarint("finalizer code pc")?,
            arg_type: file.uvarint("finalizer argument type")?,
            object_type: file.uvarint("finalizer object type")?,
            queued,
        };
        self.go.finalizers.push(record);
        let values = if queued {
            vec![record.object, record.closure]
        } else {
            vec![record.closure]
        };
        self.push_value_root(
            RootKind::Finalizer {
                object: record.object,
                queued,
            },
            None,
            values,
            record_offset,
        )
    }

    fn os_thread(&mut self, file: &mut Cursor<'data>) -> Result<(), Error> {
        self.go.threads.push(GoThread {
            address: file.uvarint("M address")?,
            id: file.uvarint("M id")?,
            os_id: file.uvarint("OS thread id")?,
        });
        Ok(())
    }

    fn segment(
        &mut self,
        file: &mut Cursor<'data>,
        record_offset: u64,
        kind: RootKind,
    ) -> Result<(), Error> {
        let (seen, name) = match kind {
            RootKind::Section { name: "bss", .. } => (&mut self.bss_seen, "BSS"),
            _ => (&mut self.data_seen, "data"),
        };
        if *seen {
            return Err(Error::new(
                record_offset,
                ErrorKind::DuplicateRecord { name },
            ));
        }
        *seen = true;
        let address_offset = file.offset();
        let address = file.uvarint("segment address")?;
        let contents = file.bytes("segment contents")?;
        check_range(address_offset, address, contents.len() as u64)?;
        let offsets = self.field_list(file, contents.len() as u64)?;
        let mut root = Root::new(kind, address, contents);
        root.pointers = Pointers::Exact(offsets);
        self.push_root(root, record_offset).map(|_| ())
    }

    fn memstats(&mut self, file: &mut Cursor<'data>, record_offset: u64) -> Result<(), Error> {
        if self.go.memstats.is_some() {
            return Err(Error::new(
                record_offset,
                ErrorKind::DuplicateRecord { name: "memstats" },
            ));
        }
        let mut stats = GoMemStats {
            alloc: file.uvarint("memstats Alloc")?,
            total_alloc: file.uvarint("memstats TotalAlloc")?,
            sys: file.uvarint("memstats Sys")?,
            lookups: file.uvarint("memstats Lookups")?,
            mallocs: file.uvarint("memstats Mallocs")?,
            frees: file.uvarint("memstats Frees")?,
            heap_alloc: file.uvarint("memstats HeapAlloc")?,
            heap_sys: file.uvarint("memstats HeapSys")?,
            heap_idle: file.uvarint("memstats HeapIdle")?,
            heap_inuse: file.uvarint("memstats HeapInuse")?,
            heap_released: file.uvarint("memstats HeapReleased")?,
            heap_objects: file.uvarint("memstats HeapObjects")?,
            stack_inuse: file.uvarint("memstats StackInuse")?,
            stack_sys: file.uvarint("memstats StackSys")?,
            mspan_inuse: file.uvarint("memstats MSpanInuse")?,
            mspan_sys: file.uvarint("memstats MSpanSys")?,
            mcache_inuse: file.uvarint("memstats MCacheInuse")?,
            mcache_sys: file.uvarint("memstats MCacheSys")?,
            buck_hash_sys: file.uvarint("memstats BuckHashSys")?,
            gc_sys: file.uvarint("memstats GCSys")?,
            other_sys: file.uvarint("memstats OtherSys")?,
            next_gc: file.uvarint("memstats NextGC")?,
            last_gc: file.uvarint("memstats LastGC")?,
            pause_total_ns: file.uvarint("memstats PauseTotalNs")?,
            pause_ns: Vec::with_capacity(256),
            num_gc: 0,
        };
        for _ in 0..256 {
            stats.pause_ns.push(file.uvarint("memstats PauseNs")?);
        }
        stats.num_gc = file.uvarint("memstats NumGC")?;
        self.stats = Some(AllocatorStats {
            live_bytes: stats.heap_alloc,
            live_objects: stats.heap_objects,
            allocated_bytes: stats.total_alloc,
            allocated_objects: stats.mallocs,
            freed_bytes: stats.total_alloc.saturating_sub(stats.heap_alloc),
            freed_objects: stats.frees,
            peak_live_bytes: 0,
            tracker_bytes: 0,
            threads: None,
        });
        self.go.memstats = Some(stats);
        Ok(())
    }

    fn memprof(&mut self, file: &mut Cursor<'data>) -> Result<(), Error> {
        let stack_id = unique_stack_id(
            file,
            "bucket id",
            &mut self.bucket_ids,
            "another memprof bucket record has the same id",
        )?;
        let object_size = file.uvarint("bucket object size")?;
        let frame_count = file.uvarint("bucket frame count")?;
        // Each frame takes at least 3 bytes (two empty strings and a line).
        let reserve = frame_count.min(file.remaining() as u64 / 3) as usize;
        let mut frames = Vec::with_capacity(reserve);
        for _ in 0..frame_count {
            let function = file.string("frame function name")?.into_owned();
            let source = file.string("frame file")?.into_owned();
            let line = file.uvarint("frame line")?;
            frames.push(Frame {
                function: Some(function.into()),
                file: if source == "?" {
                    None
                } else {
                    Some(source.into())
                },
                line: if line == 0 { None } else { Some(line) },
            });
        }
        let allocs = file.uvarint("bucket allocs")?;
        let frees = file.uvarint("bucket frees")?;
        // The first frame outside the runtime is the program's code that
        // allocated; the runtime's frames before it are the model's
        // allocator frames, left out of the site as `runtime/pprof` leaves
        // them out of heap profiles (a stack of runtime frames only keeps
        // them all: it is the runtime's own allocation).
        let caller_frame = frames.iter().position(|frame| !is_runtime_frame(frame));
        let allocator_frames = caller_frame.unwrap_or(0);
        self.stacks.push(Stack {
            id: stack_id,
            pcs: Vec::new(),
            frames,
            frame_pcs: Vec::new(),
            allocator_frames,
            caller_frame,
            runtime_frames: 0,
            short: false,
        });
        self.go.buckets.push(GoBucket {
            id: stack_id,
            object_size,
            allocs,
            frees,
        });
        Ok(())
    }

    fn alloc_sample(&mut self, file: &mut Cursor<'data>) -> Result<(), Error> {
        let address = file.uvarint("sample address")?;
        let bucket_offset = file.offset();
        let bucket = file.uvarint("sample bucket id")?;
        self.samples.push((address, bucket, bucket_offset));
        Ok(())
    }

    /// Cross-record work, then the [`Dump`].
    fn finish(mut self) -> Result<Dump<'data>, Error> {
        let Some(info) = self.info.take() else {
            return Err(Error::new(0, ErrorKind::MissingParams));
        };
        let mut objects = self.objects;
        if !self.objects_sorted {
            objects.par_sort_unstable_by_key(|object| object.address);
        }
        check_overlaps(&objects)?;
        let span_tails = SpanTails::for_version(&self.go.params, self.pointer_size);
        if let Some(span_tails) = span_tails {
            let span_tails =
                span_tails.calibrate(&objects, &self.pointer_lists, self.go.memstats.as_ref());
            self.go.inline_mark_bits = span_tails.inline_marks > 0;
            let (count, bytes) = span_tails.remove_phantoms(&mut objects, &self.pointer_lists);
            self.go.phantom_slots = count;
            self.go.phantom_bytes = bytes;
        }

        for &(address, bucket, offset) in &self.samples {
            let site = match StackId::new(bucket) {
                Some(site) if self.bucket_ids.contains(&bucket) => site,
                _ => {
                    return Err(bad_value(
                        offset,
                        "sample bucket id",
                        bucket,
                        "no memprof bucket record has this id",
                    ))
                }
            };
            // The sampled pointer is the program's: past a malloc header.
            let index = objects
                .partition_point(|object| object.address <= address)
                .checked_sub(1);
            match index.and_then(|index| objects.get_mut(index)) {
                Some(object) if object.contains(address) => object.site = Some(site),
                _ => self.go.unmatched_alloc_samples += 1,
            }
        }
        self.go.alloc_samples = self.samples.len() as u64;

        let mut stacks = self.stacks;
        stacks.sort_unstable_by_key(|stack| stack.id);
        self.go.types.sort_by_key(|t| t.address);

        let mut dump = Dump::new(info);
        dump.roots = self.roots;
        dump.stacks = stacks;
        dump.objects = objects;
        dump.data = self.bytes;
        dump.pointer_lists = self
            .pointer_lists
            .into_iter()
            .map(|offsets| std::borrow::Cow::Borrowed(offsets.as_bytes()))
            .collect();
        dump.stats = self.stats;
        dump.types = self.types;
        dump.contexts = Some(contexts(&self.go));
        dump.runtime_stats = self.go.memstats.as_ref().map(|stats| RuntimeStats {
            runtime: "Go",
            source: "memstats",
            version: self.go.params.version.clone(),
            heap_bytes: stats.heap_alloc,
            heap_objects: stats.heap_objects,
            heap_in_use_bytes: stats.heap_inuse,
            heap_reserved_bytes: stats.heap_sys,
            stack_bytes: stats.stack_inuse,
            os_bytes: stats.sys,
            allocated_bytes: stats.total_alloc,
            allocated_objects: stats.mallocs,
            freed_objects: stats.frees,
            gc_cycles: stats.num_gc,
            next_gc_bytes: stats.next_gc,
            sampled_objects: self.go.alloc_samples,
            typed_objects: self.go.typed_by_header,
        });
        let mut profiles: Vec<AllocationProfile> = self
            .go
            .buckets
            .iter()
            .map(|bucket| AllocationProfile {
                stack: bucket.id,
                object_size: bucket.object_size,
                allocs: bucket.allocs,
                frees: bucket.frees,
            })
            .collect();
        profiles.sort_by_key(|profile| profile.stack);
        dump.profiles = profiles;
        dump.extras = FormatExtras::new(self.go);
        Ok(dump)
    }
}

/// The goroutines as the common model's execution contexts.
fn contexts(go: &GoDump) -> ExecutionContexts {
    ExecutionContexts {
        noun: CONTEXT_NOUN,
        contexts: go
            .goroutines
            .iter()
            .map(|goroutine| ExecutionContext {
                id: goroutine.id,
                name: String::new(),
                state: goroutine.status_name().to_owned(),
                wait_reason: goroutine.wait_reason.clone(),
                system: goroutine.system,
                frames: goroutine
                    .frames
                    .iter()
                    .map(|frame| ContextFrame {
                        depth: frame.depth,
                        function: frame.function.clone(),
                        file: String::new(),
                        line: 0,
                        bytes: frame.size,
                    })
                    .collect(),
                frame_roots: goroutine.frame_roots.clone(),
            })
            .collect(),
        os_threads: go.threads.len() as u64,
    }
}

/// The Go-only part of `dump` ([`GoDump`]: params, goroutines as the
/// runtime wrote them, OS threads, memstats, types, itabs, finalizers,
/// defers, panics, memory-profile buckets), if it is a Go dump.
pub fn extras<'a>(dump: &'a Dump<'_>) -> Option<&'a GoDump> {
    dump.extras.get::<GoDump>()
}

/// The metadata some runtimes keep at the end of small-object spans, and
/// the "objects" `dumpobjs` makes of it.
///
/// `dumpobjs` dumps every slot of a span up to `span bytes / slot size`,
/// but since Go 1.22 a span of slots of at most `pointer size × bits per
/// word` bytes (512 on 64-bit; all such size classes have 8 KiB spans)
/// reserves its tail: a pointer bitmap in spans of pointerful objects
/// (`8 KiB / pointer size / 8` bytes), and with the Green Tea GC (the
/// default from Go 1.26) also 128 bytes of inline mark bits when slots are
/// at least 16 bytes. The span holds only `(8 KiB - reserve) / slot size`
/// slots (`nelems`); the dump's slots from there on are metadata, not
/// objects, and memstats do not count them. This removes them.
///
/// A span is taken to be of pointerful objects when any slot in it has a
/// pointer. Whether the runtime used inline mark bits depends on a
/// `GOEXPERIMENT` the dump does not record (`greenteagc` on Go 1.25,
/// `nogreenteagc` on Go 1.26): [`SpanTails::calibrate`] picks the layout
/// whose object count and bytes equal the memstats record, and the
/// version's default when neither or both do.
#[derive(Clone, Copy, Debug)]
struct SpanTails {
    /// Largest slot size whose span has its bitmap in its tail.
    max_slot: u64,
    /// Bytes of the pointer bitmap of a pointerful span.
    bitmap: u64,
    /// Bytes of inline mark bits (Green Tea), 0 if none.
    inline_marks: u64,
}

/// Bytes in a span of a size class of at most 512 bytes.
const SMALL_SPAN: u64 = 8192;

impl SpanTails {
    fn for_version(params: &GoParams, pointer_size: u64) -> Option<SpanTails> {
        let minor = go_minor_version(&params.version)?;
        if minor < 22 {
            return None;
        }
        Some(SpanTails {
            max_slot: pointer_size * pointer_size * 8,
            bitmap: SMALL_SPAN / pointer_size / 8,
            inline_marks: if minor >= 26 { 128 } else { 0 },
        })
    }

    /// This layout, or the other one (with or without inline mark bits),
    /// whichever leaves exactly the objects and bytes `memstats` counts.
    fn calibrate(
        self,
        objects: &[Object],
        lists: &[PointerOffsets<'_>],
        memstats: Option<&GoMemStats>,
    ) -> SpanTails {
        let Some(memstats) = memstats else {
            return self;
        };
        let other = SpanTails {
            inline_marks: if self.inline_marks > 0 { 0 } else { 128 },
            ..self
        };
        let agrees = |tails: &SpanTails| {
            let (_, count, bytes) = tails.phantoms(objects, lists);
            let live = objects
                .iter()
                .fold(0u64, |sum, object| sum.saturating_add(object.size));
            objects.len() as u64 - count == memstats.heap_objects
                && live.saturating_sub(bytes) == memstats.heap_alloc
        };
        if !agrees(&self) && agrees(&other) {
            other
        } else {
            self
        }
    }

    /// Removes the phantom slots from address-sorted `objects`; returns how
    /// many and their bytes.
    fn remove_phantoms(
        &self,
        objects: &mut Vec<Object>,
        lists: &[PointerOffsets<'_>],
    ) -> (u64, u64) {
        let (phantom, count, bytes) = self.phantoms(objects, lists);
        let mut flags = phantom.iter();
        objects.retain(|_| !flags.next().copied().unwrap_or(false));
        (count, bytes)
    }

    /// Which of address-sorted `objects` are phantom slots, how many, and
    /// their bytes.
    fn phantoms(&self, objects: &[Object], lists: &[PointerOffsets<'_>]) -> (Vec<bool>, u64, u64) {
        let page = |object: &Object| object.address / SMALL_SPAN;
        let small = |object: &Object| object.size > 0 && object.size <= self.max_slot;
        let mut phantom = vec![false; objects.len()];
        let mut start = 0;
        while start < objects.len() {
            let Some(first) = objects.get(start) else {
                break;
            };
            let mut end = start + 1;
            while objects
                .get(end)
                .is_some_and(|next| page(next) == page(first) && next.size == first.size)
            {
                end += 1;
            }
            if small(first) {
                let span = objects.get(start..end).unwrap_or(&[]);
                let scan = span.iter().any(|object| {
                    object
                        .pointer_list()
                        .and_then(|list| lists.get(list.index()))
                        .is_some_and(|offsets| !offsets.is_empty())
                });
                let mut reserve = if scan { self.bitmap } else { 0 };
                if first.size >= 16 {
                    reserve += self.inline_marks;
                }
                let nelems = (SMALL_SPAN - reserve.min(SMALL_SPAN)) / first.size;
                for (index, object) in span.iter().enumerate() {
                    let slot = (object.address % SMALL_SPAN) / first.size;
                    if slot >= nelems {
                        if let Some(flag) = phantom.get_mut(start + index) {
                            *flag = true;
                        }
                    }
                }
            }
            start = end;
        }
        let mut count = 0u64;
        let mut bytes = 0u64;
        for (object, _) in objects.iter().zip(&phantom).filter(|(_, &flag)| flag) {
            count += 1;
            bytes = bytes.saturating_add(object.size);
        }
        (phantom, count, bytes)
    }
}

/// Checks that `size` bytes at `address` do not wrap around the address
/// space.
fn check_range(address_offset: u64, address: u64, size: u64) -> Result<(), Error> {
    match address.checked_add(size) {
        Some(_) => Ok(()),
        None => Err(bad_value(
            address_offset,
            "address",
            address,
            "the memory it starts runs past the end of the address space",
        )),
    }
}

/// Whether a memory-profile frame is the Go runtime's own (the allocation
/// path `runtime.mallocgc`, `runtime.newobject`, the map and slice helpers
/// in `runtime.` and `internal/runtime/`).
fn is_runtime_frame(frame: &Frame) -> bool {
    frame
        .function
        .as_deref()
        .is_some_and(|name| name.starts_with("runtime.") || name.starts_with("internal/runtime/"))
}

#[cfg(test)]
mod tests;
