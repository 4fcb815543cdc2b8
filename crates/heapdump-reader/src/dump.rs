//! The format-independent model of a heap dump: what every analysis sees,
//! whichever format the file was in.
//!
//! Memory images are not copied: root contents are borrowed slices of the
//! file (`&'data [u8]`), and an [`Object`] (40 bytes, millions of them)
//! records where its contents start in [`Dump::data`] and which of
//! [`Dump::pointer_lists`] describes its pointer words, looked up through
//! the [`Dump`] ([`Dump::contents`], [`Dump::pointers`]).

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU64;
use std::ops::Range;
use std::sync::Arc;

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
    pub objects: Vec<Object>,
    /// The bytes object contents are found in ([`Object::contents_at`]):
    /// the whole mapped file for a parsed dump.
    pub data: &'data [u8],
    /// Exact pointer layouts of objects, shared by index
    /// ([`Object::pointer_list`]), each in the encoding of
    /// [`PointerOffsets`]: borrowed from the file where the format stores
    /// them so (Go's field lists), built by the decoder otherwise (HPROF's
    /// class layouts). Empty for formats that give none (heapdump-rs).
    pub pointer_lists: Vec<Cow<'data, [u8]>>,
    /// Weak pointer words: for a pointer layout, the offsets (a subset of
    /// its [`PointerOffsets`]) of words that refer to an object without
    /// keeping it alive (Java's `Reference.referent` in weak, soft, final
    /// and phantom references). [`HeapGraph`](crate::HeapGraph) keeps
    /// them apart from its references
    /// ([`HeapGraph::weak_references`](crate::HeapGraph::weak_references)),
    /// so reachability and paths follow strong pointers only, while the
    /// dominator tree counts a weak reference as a referrer of its target
    /// (an object also weakly referred to from outside a subtree is not
    /// retained by it, as in VisualVM and Eclipse MAT); the words stay in
    /// the pointer list (converters still see them). Empty for formats
    /// without weak references.
    pub weak_pointers: Vec<(PointerList, Vec<u64>)>,
    /// The allocator's statistics, if the dump has them.
    pub stats: Option<AllocatorStats>,
    /// Object types the dump names ([`Object::type_index`] indexes this).
    /// Empty for formats that record no types (heapdump-rs).
    pub types: Vec<TypeInfo>,
    /// The program's execution contexts (goroutines, Java threads) with
    /// their frames, when the format records them; `None` otherwise
    /// (heapdump-rs: its threads are [`RootKind::ThreadStack`] roots).
    pub contexts: Option<ExecutionContexts>,
    /// The managed runtime's own statistics (Go's memstats), if the dump
    /// has them; [`Dump::stats`] holds what every allocator counts.
    pub runtime_stats: Option<RuntimeStats>,
    /// Sampled allocation counts per allocation site (a runtime's memory
    /// profile), sorted by stack id; empty when the dump has none.
    pub profiles: Vec<AllocationProfile>,
    /// What the format guarantees and leaves out ([`Capabilities`]).
    pub capabilities: Capabilities,
    /// What only one format knows, in that format's own types: reached
    /// through the format's module (`formats::go::extras`), never by
    /// format-neutral code.
    pub extras: FormatExtras,
    /// What the reader skipped or could not check, in words for the user
    /// (records of a newer minor version than it knows); the pipeline
    /// reports each as a note.
    pub warnings: Vec<String>,
}

impl<'data> Dump<'data> {
    /// An empty dump with `info`: no modules, roots, stacks, objects, stats
    /// or types. For building dumps by hand (tests, converters).
    pub fn new(info: DumpInfo) -> Dump<'data> {
        Dump {
            modules: Vec::new(),
            roots: Vec::new(),
            stacks: Vec::new(),
            objects: Vec::new(),
            data: &[],
            pointer_lists: Vec::new(),
            weak_pointers: Vec::new(),
            stats: None,
            types: Vec::new(),
            contexts: None,
            runtime_stats: None,
            profiles: Vec::new(),
            capabilities: crate::formats::capabilities_of(info.format),
            extras: FormatExtras::default(),
            warnings: Vec::new(),
            info,
        }
    }

    /// What the dump's roots leave out, in plain words, when it is known
    /// that objects held only from elsewhere look unreachable (the format
    /// says: [`Format::root_caveat`](crate::Format::root_caveat)); `None`
    /// when nothing is known to be left out.
    pub fn root_caveat(&self) -> Option<String> {
        crate::formats::by_name(self.info.format)?.root_caveat(self)
    }

    /// The value of `object` as text when the format knows it is a string
    /// (a Java `String`); `None` otherwise
    /// ([`Format::object_text`](crate::Format::object_text)).
    pub fn object_text(&self, object: &Object) -> Option<String> {
        crate::formats::by_name(self.info.format)?.object_text(self, object)
    }

    /// The name of the reference at `offset` of `object`'s contents when
    /// the format names fields (`LeakyCache.CACHE`, `next`, `[3]`); `None`
    /// otherwise ([`Format::field_name`](crate::Format::field_name)).
    ///
    /// Where the format names nothing, the layout of the object's type
    /// ([`TypeInfo::fields`]) does: `Payload`, and `[3].elem` in an object
    /// holding several values of its type.
    pub fn field_name(&self, object: &Object, offset: u64) -> Option<String> {
        if let Some(name) = crate::formats::by_name(self.info.format)
            .and_then(|format| format.field_name(self, object, offset))
        {
            return Some(name);
        }
        let ty = self.type_info(object.type_index()?)?;
        if ty.fields.is_empty() || ty.size == 0 {
            return None;
        }
        let header = if object.has_header() {
            u64::from(self.info.pointer_size)
        } else {
            0
        };
        let relative = offset.checked_sub(header)?;
        let (index, within) = (relative / ty.size, relative % ty.size);
        let field = ty.field_at(within)?;
        let several = object.size.saturating_sub(header) / ty.size > 1;
        Some(match (several, field.name.is_empty()) {
            (false, true) => return None,
            (false, false) => field.name.clone(),
            (true, true) => format!("[{index}]"),
            (true, false) => format!("[{index}].{}", field.name),
        })
    }

    /// The allocation profile of site `id`, if the dump has one.
    pub fn profile(&self, id: StackId) -> Option<&AllocationProfile> {
        self.profiles
            .binary_search_by_key(&id, |profile| profile.stack)
            .ok()
            .and_then(|index| self.profiles.get(index))
    }

    /// The type `index` names.
    pub fn type_info(&self, index: TypeIndex) -> Option<&TypeInfo> {
        self.types.get(index.index())
    }

    /// The class of `object` that groups objects of one kind: its type when
    /// the dump names it, otherwise its size and pointer layout. See
    /// [`ObjectClass`].
    pub fn object_class(&self, object: &Object) -> ObjectClass<'_> {
        match object.type_index() {
            Some(index) if index.index() < self.types.len() => ObjectClass::Type(index),
            _ => ObjectClass::Shape {
                size: object.size,
                pointers: self.pointers(object),
                header: object.has_header(),
            },
        }
    }

    /// The bytes of `object` at the moment of the dump
    /// ([`Object::contents_len`] of them: usually `size`), borrowed from
    /// [`Dump::data`]; empty if they are not all there (a hand-built object
    /// pointing past `data`).
    pub fn contents(&self, object: &Object) -> &'data [u8] {
        let data: &'data [u8] = self.data;
        usize::try_from(object.contents_at)
            .ok()
            .zip(usize::try_from(object.contents_len()).ok())
            .and_then(|(start, size)| data.get(start..start.checked_add(size)?))
            .unwrap_or(&[])
    }

    /// Which words of `object`'s contents are pointers: its entry of
    /// [`Dump::pointer_lists`]; none (an empty exact layout) when its type
    /// is [pointer-free](TypeInfo::pointer_free); else
    /// [`Pointers::Unknown`] (every word is scanned).
    pub fn pointers(&self, object: &Object) -> Pointers<'_> {
        if let Some(encoded) = object
            .pointer_list()
            .and_then(|list| self.pointer_lists.get(list.index()))
        {
            return Pointers::Exact(PointerOffsets::from_field_list(encoded));
        }
        if self.is_pointer_free(object) {
            return Pointers::Exact(PointerOffsets::from_field_list(&[]));
        }
        Pointers::Unknown
    }

    /// Whether `object`'s type holds no pointers
    /// ([`TypeInfo::pointer_free`]).
    pub fn is_pointer_free(&self, object: &Object) -> bool {
        object
            .type_index()
            .and_then(|index| self.types.get(index.index()))
            .is_some_and(|info| info.pointer_free)
    }

    /// Adds a pointer layout to [`Dump::pointer_lists`], for
    /// [`Object::set_pointer_list`]; `None` past [`PointerList::MAX`]
    /// layouts.
    pub fn push_pointer_list(&mut self, offsets: PointerOffsets<'data>) -> Option<PointerList> {
        self.push_pointer_list_encoded(Cow::Borrowed(offsets.as_bytes()))
    }

    /// Adds a pointer layout in the encoding of [`PointerOffsets`]
    /// ([`PointerOffsets::encode`], [`PointerOffsets::encode_run`]), owned
    /// or borrowed, to [`Dump::pointer_lists`]; `None` past
    /// [`PointerList::MAX`] layouts.
    pub fn push_pointer_list_encoded(&mut self, encoded: Cow<'data, [u8]>) -> Option<PointerList> {
        let list = PointerList::new(self.pointer_lists.len())?;
        self.pointer_lists.push(encoded);
        Some(list)
    }

    /// The name of an [`ObjectClass`]: the type's name, or the shape's
    /// (`obj48[p,p,_,_,_,_]`; see [`ObjectClass::Shape`]).
    pub fn class_name(&self, class: &ObjectClass<'_>) -> String {
        match class {
            ObjectClass::Type(index) => match self.type_info(*index) {
                Some(info) if !info.name.is_empty() => info.name.clone(),
                Some(info) => format!("type@{:#x}", info.address),
                None => format!("type#{}", index.0),
            },
            ObjectClass::Shape {
                size,
                pointers,
                header,
            } => shape_name(*size, *pointers, *header, self.info.pointer_size),
        }
    }
    /// The allocation-site stack with id `id`.
    pub fn stack(&self, id: StackId) -> Option<&Stack> {
        self.stacks
            .binary_search_by_key(&id, |stack| stack.id)
            .ok()
            .and_then(|index| self.stacks.get(index))
    }

    /// Sum of the sizes of all objects.
    pub fn live_bytes(&self) -> u64 {
        // In parallel: a 20M-object table is 0.9 GB to read.
        use rayon::prelude::*;
        self.objects
            .par_iter()
            .fold(|| 0u64, |sum, object| sum.saturating_add(object.size))
            .reduce(|| 0, u64::saturating_add)
    }
}

/// What a dump says about itself and the dumped process (PARAMS).
///
/// `Default` is for building dumps by hand (tests): every field empty or
/// zero, contents `Full`; a real dump sets at least `format` and
/// `pointer_size`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
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

impl DumpInfo {
    /// The pointer-sized word (4 bytes when `pointer_size` is 4, else 8)
    /// at byte `offset` of `bytes`, a memory image of the dumped process,
    /// in its byte order; `None` if it does not fit. The one place words of
    /// dumped memory are read (the graph's scan, typing, stack walks).
    #[inline]
    pub fn word_at(&self, bytes: &[u8], offset: u64) -> Option<u64> {
        let start = usize::try_from(offset).ok()?;
        if self.pointer_size == 4 {
            let raw: [u8; 4] = bytes.get(start..start.checked_add(4)?)?.try_into().ok()?;
            Some(u64::from(if self.big_endian {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            }))
        } else {
            let raw: [u8; 8] = bytes.get(start..start.checked_add(8)?)?.try_into().ok()?;
            Some(if self.big_endian {
                u64::from_be_bytes(raw)
            } else {
                u64::from_le_bytes(raw)
            })
        }
    }
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

/// Memory outside the heap whose words may point into it, or a pointer the
/// runtime holds on the program's behalf (a finalizer, a goroutine's
/// context).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root<'data> {
    /// What kind of memory this is.
    pub kind: RootKind,
    /// A human name for the root as a whole: `data`, `bss`,
    /// `main.holder (goroutine 18, frame 1)`, `thread 42 "main" stack`, ...
    /// Names of single words (a global's symbol) come from
    /// `heapdump_symbols::RootNamer`.
    pub name: String,
    /// Address of the first byte of `contents`.
    pub address: u64,
    /// The memory's bytes at the moment of the dump, borrowed from the file.
    pub contents: &'data [u8],
    /// Which words of `contents` are pointers: exactly (Go) or unknown
    /// (every aligned word is scanned).
    pub pointers: Pointers<'data>,
    /// Pointer values the root holds that are not in any memory image (a
    /// finalizer's closure, a goroutine's context). A
    /// [`RootReference`](crate::RootReference) to value `i` has offset
    /// `contents.len() + i × pointer size`, as if the values followed the
    /// contents.
    pub values: Vec<u64>,
}

impl<'data> Root<'data> {
    /// A root of `kind` over `contents` at `address`, scanned conservatively,
    /// named by [`RootKind::default_name`].
    pub fn new(kind: RootKind, address: u64, contents: &'data [u8]) -> Root<'data> {
        Root {
            name: kind.default_name(address),
            kind,
            address,
            contents,
            pointers: Pointers::Unknown,
            values: Vec::new(),
        }
    }
}

impl Root<'_> {
    /// An address-based name for the word at `offset`: for a global segment
    /// `data+0x1a8`; for any other root, the root's name and, inside its
    /// contents, the offset (`main.holder (goroutine 18, frame 0) +0x20`);
    /// for a value ([`Root::values`]), the root's name. `heapdump-symbols`'
    /// `RootNamer` names global words by symbol where it can, and falls back
    /// to this.
    pub fn slot_name(&self, offset: u64) -> String {
        let inside = offset < self.contents.len() as u64;
        if self.kind.is_global() && inside {
            format!("{}+{offset:#x}", self.name)
        } else if inside {
            format!("{} +{offset:#x}", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// What kind of memory a [`Root`] is, in terms every format shares: global
/// memory (a module's segment, a named section of the executable), a
/// thread's whole stack, one frame of an execution context's stack, a value
/// the runtime holds on the program's behalf, a finalizer, or a root the
/// dump only describes in words.
///
/// A format maps its own root records onto these (Go: data and BSS are
/// [`Section`](RootKind::Section)s, goroutine frames
/// [`Frame`](RootKind::Frame)s, a goroutine's context, defers and panics
/// [`Held`](RootKind::Held) values; Java HPROF's Java-frame and JNI-local
/// roots would be frames of a thread, JNI globals, system classes, thread
/// objects and monitors in use `Held` values).
///
/// New kinds may be added (non-exhaustive): match with a `_` arm, or use
/// [`RootKind::label`] to group roots.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// A global data section of the main executable, known by name (Go:
    /// `runtime.data` up to `runtime.edata` is `data`, the BSS `bss`).
    Section {
        /// The section's name, also the root's label (`data`, `bss`).
        name: &'static str,
        /// The link-time symbols that bound the section in the executable,
        /// when the format knows them: they anchor the root in the binary
        /// (`heapdump-symbols` finds the load bias from them, and checks the
        /// size).
        symbols: Option<SectionSymbols>,
    },
    /// One frame of an execution context's stack (a goroutine's, a
    /// thread's): its bytes with the live pointer slots, or only values
    /// ([`Root::values`]) when the format gives the references without the
    /// memory (HPROF's Java-frame roots).
    Frame {
        /// The execution context the frame belongs to.
        context: ContextRef,
        /// 0 for the innermost frame, then 1, 2, ... towards the outermost.
        depth: u64,
        /// The function the frame belongs to (`main.holder`).
        function: String,
    },
    /// A value the runtime holds on the program's behalf, outside any
    /// memory image, in [`Root::values`] (Go: a goroutine's closure
    /// context, a pending defer's closure, a panic value; a JVM's JNI
    /// globals, system classes, thread objects, monitors in use).
    Held {
        /// What holds it, also the root's label: `goroutine context`,
        /// `defer`, `panic`, ...
        what: &'static str,
        /// The execution context it belongs to, if any.
        context: Option<ContextRef>,
    },
    /// A finalizer: its closure as a value, and for a queued finalizer (one
    /// about to run) the object too. A registered finalizer does not keep
    /// its object alive (the runtime queues it once the object is
    /// unreachable), so the object is not a value of that root.
    Finalizer {
        /// The object the finalizer is set on.
        object: u64,
        /// The finalizer is queued to run (the object is unreachable and
        /// kept alive only for the finalizer).
        queued: bool,
    },
    /// A root the dump describes only in words (Go's `otherroot` record).
    Other {
        /// The dump's description.
        description: String,
    },
}

/// Names an execution context (a goroutine, a thread) from a root: the
/// noun the format calls its contexts and the context's id. See
/// [`ExecutionContexts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContextRef {
    /// What the format calls its execution contexts: `goroutine`,
    /// `thread`.
    pub noun: &'static str,
    /// The context's id (a goroutine id, a thread serial number).
    pub id: u64,
}

impl fmt::Display for ContextRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.noun, self.id)
    }
}

/// The link-time symbols that bound a [`RootKind::Section`] in the
/// executable: the section runs from `start` up to, not including, `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionSymbols {
    /// The symbol at the section's first byte (`runtime.data`).
    pub start: &'static str,
    /// The symbol just past its last byte (`runtime.edata`).
    pub end: &'static str,
    /// Who builds programs with these symbols, for messages when an
    /// executable lacks them (`Go`: "is it a Go program?").
    pub toolchain: &'static str,
}

impl RootKind {
    /// A short label for grouping roots by kind: `segment`,
    /// `thread stack`, a section's name (`data`, `bss`), `goroutine frame`
    /// (the context's noun and `frame`), what holds a value
    /// (`goroutine context`, `defer`, `panic`), `finalizer`,
    /// `queued finalizer`, `other`.
    pub fn label(&self) -> Cow<'static, str> {
        match self {
            RootKind::Segment { .. } => Cow::Borrowed("segment"),
            RootKind::ThreadStack { .. } => Cow::Borrowed("thread stack"),
            RootKind::Section { name, .. } => Cow::Borrowed(name),
            RootKind::Frame { context, .. } => Cow::Owned(format!("{} frame", context.noun)),
            RootKind::Held { what, .. } => Cow::Borrowed(what),
            RootKind::Finalizer { queued: false, .. } => Cow::Borrowed("finalizer"),
            RootKind::Finalizer { queued: true, .. } => Cow::Borrowed("queued finalizer"),
            RootKind::Other { .. } => Cow::Borrowed("other"),
        }
    }

    /// Whether [`RootKind::label`] is a countable noun (`2 thread stacks`)
    /// rather than a name (`data`, a section's) or a mass noun (`other`).
    pub fn label_is_countable(&self) -> bool {
        !matches!(self, RootKind::Section { .. } | RootKind::Other { .. })
    }

    /// Whether the root is global memory (a module segment, a section of
    /// the executable), whose words are named by the symbol at their
    /// address.
    pub fn is_global(&self) -> bool {
        matches!(self, RootKind::Segment { .. } | RootKind::Section { .. })
    }

    /// The execution context the root belongs to (a frame's, a held
    /// value's), if any.
    pub fn context(&self) -> Option<ContextRef> {
        match self {
            RootKind::Frame { context, .. } => Some(*context),
            RootKind::Held { context, .. } => *context,
            _ => None,
        }
    }

    /// The name [`Root::new`] gives a root of this kind at `address`.
    pub fn default_name(&self, address: u64) -> String {
        match self {
            RootKind::Segment { module_id } => {
                format!("module {module_id} segment {address:#x}")
            }
            RootKind::ThreadStack { thread_id, name } if name.is_empty() => {
                format!("thread {thread_id} stack")
            }
            RootKind::ThreadStack { thread_id, name } => {
                format!("thread {thread_id} {name:?} stack")
            }
            RootKind::Section { name, .. } => (*name).to_owned(),
            RootKind::Frame {
                context,
                depth,
                function,
            } => format!("{function} ({context}, frame {depth})"),
            RootKind::Held {
                what,
                context: Some(context),
            } => format!("{what} of {context}"),
            RootKind::Held {
                what,
                context: None,
            } => (*what).to_owned(),
            RootKind::Finalizer {
                object,
                queued: false,
            } => format!("finalizer of {object:#x}"),
            RootKind::Finalizer {
                object,
                queued: true,
            } => format!("queued finalizer of {object:#x}"),
            RootKind::Other { description } => description.clone(),
        }
    }
}

/// The execution contexts of a dumped program (goroutines, Java threads)
/// and the OS threads that ran them, for formats that record them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExecutionContexts {
    /// What the format calls a context (`goroutine`, `thread`), as in
    /// [`ContextRef::noun`].
    pub noun: &'static str,
    /// The contexts, in the order of the file.
    pub contexts: Vec<ExecutionContext>,
    /// OS threads the runtime ran the contexts on (Go's Ms), when the
    /// contexts are not OS threads themselves; 0 if the dump does not say.
    pub os_threads: u64,
}

/// One execution context (a goroutine, a thread) and its stack frames.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExecutionContext {
    /// The context's id, as in [`ContextRef::id`].
    pub id: u64,
    /// Its name, empty if none (goroutines have none).
    pub name: String,
    /// Its state as the runtime names it (`waiting`, `runnable`,
    /// `RUNNABLE`), empty if not known.
    pub state: String,
    /// Why it waits (`chan receive`), empty if it does not or the dump
    /// does not say.
    pub wait_reason: String,
    /// It belongs to the runtime rather than the program (Go's system
    /// goroutines, a JVM's system threads).
    pub system: bool,
    /// Its frames, innermost first.
    pub frames: Vec<ContextFrame>,
    /// Indexes in [`Dump::roots`] of its [`RootKind::Frame`] roots.
    pub frame_roots: Range<usize>,
}

/// One stack frame of an [`ExecutionContext`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ContextFrame {
    /// 0 for the innermost frame.
    pub depth: u64,
    /// The function (method) the frame belongs to.
    pub function: String,
    /// The source file, empty if not known.
    pub file: String,
    /// The line in `file`, 0 if not known.
    pub line: u64,
    /// Bytes of stack the frame takes, 0 if not known.
    pub bytes: u64,
}

/// The managed runtime's own memory statistics at the moment of the dump
/// (Go's memstats). Counts the runtime keeps beyond [`AllocatorStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeStats {
    /// The runtime's name, for headings (`Go`).
    pub runtime: &'static str,
    /// What the runtime calls these statistics (`memstats`).
    pub source: &'static str,
    /// The runtime's version (`go1.26.6`), empty if not known.
    pub version: String,
    /// Bytes of live heap objects.
    pub heap_bytes: u64,
    /// Live heap objects.
    pub heap_objects: u64,
    /// Bytes of heap spans (pages) in use.
    pub heap_in_use_bytes: u64,
    /// Heap bytes obtained from the OS.
    pub heap_reserved_bytes: u64,
    /// Bytes of stacks in use.
    pub stack_bytes: u64,
    /// All bytes obtained from the OS.
    pub os_bytes: u64,
    /// Cumulative bytes allocated.
    pub allocated_bytes: u64,
    /// Cumulative objects allocated.
    pub allocated_objects: u64,
    /// Cumulative objects freed.
    pub freed_objects: u64,
    /// Completed garbage collections.
    pub gc_cycles: u64,
    /// Heap size at which the next collection starts.
    pub next_gc_bytes: u64,
    /// Allocations the runtime sampled whose objects are still live (Go's
    /// alloc-sample records).
    pub sampled_objects: u64,
    /// Objects whose type the dump gives (Go: by their malloc header).
    pub typed_objects: u64,
}

/// Sampled allocations and frees at one allocation site (a bucket of a
/// runtime's memory profile). Its frames are the [`Stack`] with the same
/// id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AllocationProfile {
    /// The site's stack.
    pub stack: StackId,
    /// Size of each sampled allocation.
    pub object_size: u64,
    /// Sampled allocations.
    pub allocs: u64,
    /// Sampled frees.
    pub frees: u64,
}

/// What a format guarantees about the dumps it reads, so that reports can
/// say how far to trust them without knowing the format.
/// [`Format::capabilities`](crate::Format::capabilities) gives each
/// format's; [`Dump::new`] fills it in from the format's name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Objects and roots come with exact pointer layouts (no conservative
    /// scanning).
    pub pointers_exact: bool,
    /// The roots are everything the runtime itself scans; when false, some
    /// memory outside the dump may hold objects, which then look
    /// unreachable ([`Dump::root_caveat`] says which).
    pub roots_complete: bool,
    /// Every object in the dump is alive, so the objects the roots do not
    /// reach are held by memory the dump leaves out (HotSpot writes only
    /// live objects, some of them held by the VM's own roots and by
    /// `java.lang.Class` fields it does not write), and what they refer to
    /// is held from outside too: the dominator tree counts a reference from
    /// such an object as one from outside the heap (its target is then
    /// dominated by the virtual root), as VisualVM does. Reachability is
    /// unchanged. When false (Go, heapdump-rs), references from unreachable
    /// objects are left out of the dominator tree.
    pub unreached_objects_hold: bool,
    /// How to record the allocation site of every object, when the dump
    /// samples sites (`dump with HEAPDUMP_SAMPLE_RATE=1 to record every
    /// site`); `None` when the format gives no way.
    pub every_site_hint: Option<&'static str>,
}

/// What only one format knows, in that format's own types (Go: its
/// `GoDump`), carried by a [`Dump`] without the common model knowing the
/// type. The format's module downcasts it (`formats::go::extras`).
#[derive(Clone, Default)]
pub struct FormatExtras(Option<Arc<dyn Any + Send + Sync>>);

impl FormatExtras {
    /// Extras holding `value`.
    pub fn new<T: Any + Send + Sync>(value: T) -> FormatExtras {
        FormatExtras(Some(Arc::new(value)))
    }

    /// The extras, if they are a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_deref()?.downcast_ref::<T>()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Debug for FormatExtras {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(_) => f.write_str("FormatExtras(..)"),
            None => f.write_str("FormatExtras(none)"),
        }
    }
}

/// Which words of a memory image (an object's or a root's contents) hold
/// pointers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Pointers<'data> {
    /// Not known: every aligned word may be a pointer, and the graph scans
    /// them all (conservative scanning; heapdump-rs dumps).
    #[default]
    Unknown,
    /// Exactly these words are pointers (Go dumps); no others are read.
    Exact(PointerOffsets<'data>),
}

impl<'data> Pointers<'data> {
    /// The exact offsets, if known.
    pub fn exact(&self) -> Option<PointerOffsets<'data>> {
        match self {
            Pointers::Unknown => None,
            Pointers::Exact(offsets) => Some(*offsets),
        }
    }
}

/// The byte offsets of the pointer words of a memory image, ascending,
/// stored compactly and decoded on demand: a borrowed byte string in Go's
/// field-list encoding, pairs of uvarints `(1, offset)` ended by a uvarint
/// `0`, extended with runs: `(2, first, stride, count)` stands for `count`
/// offsets `first`, `first + stride`, ... (an array of references in one
/// entry, [`PointerOffsets::encode_run`]). A Go dump's field lists are borrowed from the file as they are
/// (the decoder checks them); [`PointerOffsets::encode`] builds one from
/// offsets.
///
/// Decoding stops quietly at the first entry that is neither `(1, offset)`
/// nor a run, so a hand-made list can give fewer offsets but never an error or a panic.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PointerOffsets<'data> {
    encoded: &'data [u8],
}

impl<'data> PointerOffsets<'data> {
    /// The offsets in `encoded`, a field list (see the type's docs).
    pub fn from_field_list(encoded: &'data [u8]) -> PointerOffsets<'data> {
        PointerOffsets { encoded }
    }

    /// The field-list encoding of `offsets`, for [`from_field_list`]
    /// (`PointerOffsets::from_field_list(&bytes)`).
    ///
    /// [`from_field_list`]: PointerOffsets::from_field_list
    pub fn encode(offsets: impl IntoIterator<Item = u64>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; heapdump_format::MAX_UVARINT_LEN];
        for offset in offsets {
            out.push(1);
            let len = heapdump_format::put_uvarint(&mut buf, offset);
            out.extend_from_slice(buf.get(..len).unwrap_or(&[]));
        }
        out.push(0);
        out
    }

    /// The encoding of a run: `count` offsets from `first`, `stride` bytes
    /// apart (see the type's docs), for
    /// [`Dump::push_pointer_list_encoded`].
    pub fn encode_run(first: u64, stride: u64, count: u64) -> Vec<u8> {
        let mut out = vec![2];
        let mut buf = [0u8; heapdump_format::MAX_UVARINT_LEN];
        for value in [first, stride, count] {
            let len = heapdump_format::put_uvarint(&mut buf, value);
            out.extend_from_slice(buf.get(..len).unwrap_or(&[]));
        }
        out.push(0);
        out
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &'data [u8] {
        self.encoded
    }

    /// Whether there are no offsets.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The offsets, in the order of the list.
    pub fn iter(&self) -> PointerOffsetsIter<'data> {
        PointerOffsetsIter {
            rest: self.encoded,
            run: (0, 0, 0),
        }
    }
}

impl fmt::Debug for PointerOffsets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'data> IntoIterator for PointerOffsets<'data> {
    type Item = u64;
    type IntoIter = PointerOffsetsIter<'data>;

    fn into_iter(self) -> PointerOffsetsIter<'data> {
        self.iter()
    }
}

/// Iterator over [`PointerOffsets`].
#[derive(Clone, Debug)]
pub struct PointerOffsetsIter<'data> {
    rest: &'data [u8],
    /// The run being decoded: next offset, stride, offsets left.
    run: (u64, u64, u64),
}

impl PointerOffsetsIter<'_> {
    /// Reads a uvarint off `rest`.
    fn uvarint(&mut self) -> Option<u64> {
        match heapdump_format::get_uvarint(self.rest) {
            Ok((value, len)) => {
                self.rest = self.rest.get(len..).unwrap_or(&[]);
                Some(value)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

impl PointerOffsetsIter<'_> {
    /// The rest of the offsets as runs `(first, stride, count)`: offsets
    /// `first`, `first + stride` (saturating), ... `count` of them; a single
    /// offset is a run of one. Together they are the offsets
    /// [`next`](Iterator::next) would give, in order; runs of no offsets
    /// are skipped.
    pub fn next_run(&mut self) -> Option<(u64, u64, u64)> {
        let (next, stride, left) = self.run;
        if left > 0 {
            self.run = (0, 0, 0);
            return Some((next, stride, left));
        }
        loop {
            let (kind, len) = heapdump_format::get_uvarint(self.rest).ok()?;
            if kind == 2 {
                self.rest = self.rest.get(len..).unwrap_or(&[]);
                let first = self.uvarint()?;
                let stride = self.uvarint()?;
                let count = self.uvarint()?;
                if count > 0 {
                    return Some((first, stride, count));
                }
                continue;
            }
            if kind != 1 {
                self.rest = &[];
                return None;
            }
            let after_kind = self.rest.get(len..)?;
            return match heapdump_format::get_uvarint(after_kind) {
                Ok((offset, len)) => {
                    self.rest = after_kind.get(len..).unwrap_or(&[]);
                    Some((offset, 0, 1))
                }
                Err(_) => {
                    self.rest = &[];
                    None
                }
            };
        }
    }
}

impl Iterator for PointerOffsetsIter<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let (kind, len) = loop {
            let (next, stride, left) = self.run;
            if left > 0 {
                self.run = (next.saturating_add(stride), stride, left - 1);
                return Some(next);
            }
            let (kind, len) = heapdump_format::get_uvarint(self.rest).ok()?;
            if kind != 2 {
                break (kind, len);
            }
            self.rest = self.rest.get(len..).unwrap_or(&[]);
            let first = self.uvarint()?;
            let stride = self.uvarint()?;
            let count = self.uvarint()?;
            self.run = (first, stride, count);
        };
        if kind != 1 {
            self.rest = &[];
            return None;
        }
        let after_kind = self.rest.get(len..)?;
        match heapdump_format::get_uvarint(after_kind) {
            Ok((offset, len)) => {
                self.rest = after_kind.get(len..).unwrap_or(&[]);
                Some(offset)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Identifies a [`TypeInfo`]: its index in [`Dump::types`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TypeIndex(pub u32);

impl TypeIndex {
    /// The index into [`Dump::types`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An object type the dump names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TypeInfo {
    /// Address of the type's descriptor in the dumped process (Go: the
    /// `*_type`), 0 if none.
    pub address: u64,
    /// The type's name (`main.Entry`, `*net/http.conn`); may be empty or
    /// truncated to the package (`net/http.`) for unnamed Go types.
    pub name: String,
    /// Size of one value in bytes (0 when not known).
    pub size: u64,
    /// The dump does not record the type: it was inferred from the
    /// object's allocation site (heapdump-rs dumps, `heapdump_symbols::symbolize`).
    pub from_site: bool,
    /// Values of the type hold no pointers (`str`, `[u8]`, arrays of
    /// primitive numbers): objects of it whose pointer layout is not known
    /// otherwise are not scanned for pointers ([`Dump::pointers`] gives an
    /// empty exact layout), so text and byte buffers draw no false
    /// references. Set by whoever names the type from what it knows.
    pub pointer_free: bool,
    /// The named parts of one value, by offset, when the dump or the
    /// program's debug info describes the type's layout (Go types from
    /// DWARF); empty otherwise. An object of this type that holds more
    /// than one value (a slice's backing array) repeats the layout every
    /// [`size`](TypeInfo::size) bytes, after its runtime header if it has
    /// one ([`Object::has_header`]).
    pub fields: Vec<FieldInfo>,
}

impl TypeInfo {
    /// A type known by name and size only, without a field layout.
    pub fn named(address: u64, name: impl Into<String>, size: u64, from_site: bool) -> TypeInfo {
        TypeInfo {
            address,
            name: name.into(),
            size,
            from_site,
            pointer_free: false,
            fields: Vec::new(),
        }
    }

    /// The field at byte `offset` of one value, if the layout names one
    /// there.
    pub fn field_at(&self, offset: u64) -> Option<&FieldInfo> {
        let index = self.fields.partition_point(|field| field.offset <= offset);
        let field = self.fields.get(index.checked_sub(1)?)?;
        (offset - field.offset < field.size.max(1)).then_some(field)
    }
}

/// A named leaf of a type's layout: a word or smaller value at an offset
/// (`ID`, `Payload.len`, `entries.dirPtr`, `Tag[2]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldInfo {
    /// Byte offset in one value of the type.
    pub offset: u64,
    /// Bytes it takes.
    pub size: u64,
    /// Its name, with the path through nested structs and arrays.
    pub name: String,
    /// It holds a reference (a pointer word) rather than a plain value.
    pub reference: bool,
}

/// What groups objects of one kind in reports: a named type when the dump
/// gives one (reliably), otherwise the object's size and pointer layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectClass<'data> {
    /// A type the dump names.
    Type(TypeIndex),
    /// Objects of this size and pointer layout. Named
    /// `obj{size}[w,w,...]`, one letter per pointer-sized word: `p` for a
    /// pointer, `_` for anything else, `h` for a runtime header word
    /// ([`Object::has_header`]; Go 1.22+ malloc headers)
    /// (the object's type word); more than 8 words are run-length
    /// compressed (`obj128[_*16]`, `p*2`), and after 6 runs the name ends
    /// with the pointer count and a hash of the layout
    /// (`obj16384[h,_*12,p*2,_*2,p*32,_*262,...202p#5dfd]`), so a name
    /// stays short enough to read in a table row. `?` stands
    /// for a layout that is not known (conservatively scanned objects:
    /// `obj48[?]`).
    Shape {
        /// The object's size.
        size: u64,
        /// Its pointer layout.
        pointers: Pointers<'data>,
        /// It starts with a runtime header word ([`Object::has_header`]).
        header: bool,
    },
}

/// Words a shape name lists one by one before it compresses runs.
const SHAPE_WORDS: u64 = 8;

/// The name of an [`ObjectClass::Shape`].
fn shape_name(size: u64, pointers: Pointers<'_>, header: bool, pointer_size: u8) -> String {
    let offsets = match pointers {
        Pointers::Unknown => return format!("obj{size}[?]"),
        Pointers::Exact(offsets) => offsets,
    };
    let word = u64::from(pointer_size.max(1));
    let words = size / word;
    // Runs of one letter: (letter, count).
    let mut runs: Vec<(char, u64)> = Vec::new();
    let mut push = |letter: char, count: u64| {
        if count == 0 {
            return;
        }
        match runs.last_mut() {
            Some((last, n)) if *last == letter => *n += count,
            _ => runs.push((letter, count)),
        }
    };
    let mut next = 0u64;
    if header && words > 0 {
        push('h', 1);
        next = 1;
    }
    for offset in offsets.iter() {
        let index = offset / word;
        if index < next || index >= words {
            continue;
        }
        push('_', index - next);
        push('p', 1);
        next = index + 1;
    }
    push('_', words - next.min(words));
    let mut out = format!("obj{size}[");
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push(',');
        }
        first = false;
    };
    if words <= SHAPE_WORDS {
        for (letter, count) in runs {
            for _ in 0..count {
                sep(&mut out);
                out.push(letter);
            }
        }
    } else {
        let total_runs = runs.len();
        let pointer_count: u64 = runs
            .iter()
            .filter(|(letter, _)| *letter == 'p')
            .map(|(_, count)| count)
            .sum();
        for (letter, count) in runs.into_iter().take(SHAPE_RUNS) {
            sep(&mut out);
            if count == 1 {
                out.push(letter);
            } else {
                out.push_str(&format!("{letter}*{count}"));
            }
        }
        if total_runs > SHAPE_RUNS {
            // Cut short: the pointer count and a hash of the whole layout
            // keep different layouts apart.
            sep(&mut out);
            out.push_str(&format!(
                "...{pointer_count}p#{:04x}",
                fnv16(offsets.as_bytes())
            ));
        }
    }
    out.push(']');
    out
}

/// Runs a compressed shape name lists before it cuts the layout short.
const SHAPE_RUNS: usize = 6;

/// A 16-bit FNV-1a hash (stable across runs and versions, for names).
fn fnv16(bytes: &[u8]) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in bytes {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    ((hash >> 16) ^ (hash & 0xffff)) as u16
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

/// An allocation-site stack: the calls that led to an allocation.
///
/// A heapdump-rs stack has raw return addresses (`pcs`) and no `frames`
/// until a symboliser (`heapdump_symbols::symbolize`) fills them in; a Go
/// memory-profile bucket arrives already symbolised (`frames`, no `pcs`).
/// When both are present and `frame_pcs` is empty, `frames[i]` describes
/// `pcs[i]`; a symboliser that expands inlined calls sets `frame_pcs[i]`
/// to the index in `pcs` of the return address `frames[i]` belongs to
/// (several frames share one address when calls were inlined).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// The stack's id.
    pub id: StackId,
    /// Raw return addresses, innermost first. A symboliser looks up `pc - 1`.
    pub pcs: Vec<u64>,
    /// Symbolised frames, innermost first; empty if not symbolised.
    pub frames: Vec<Frame>,
    /// For each frame, the index in `pcs` of its return address; empty
    /// when frames and pcs correspond one to one.
    pub frame_pcs: Vec<u32>,
    /// Leading frames that belong to the allocator itself (the tracker,
    /// `__rust_alloc`, `alloc::alloc::*`, `RawVec` growth): kept in
    /// `frames`, left out of the allocation site
    /// ([`Stack::site_frames`], [`Stack::frame_labels`]).
    pub allocator_frames: usize,
    /// The frame of the program's own code that called the allocating API
    /// (`myapp::Cache::insert`, `main.buildCache`), as an index into
    /// `frames`, when whoever named the frames could tell it from the
    /// runtime's and libraries' frames ([`Stack::caller_function`]).
    pub caller_frame: Option<usize>,
    /// Trailing frames of the runtime that started the thread (std's
    /// `__rust_begin_short_backtrace` and the calls into it): kept in
    /// `frames` and [`Stack::frame_labels`] (JSON shows every frame), left
    /// out of what a text report prints.
    pub runtime_frames: usize,
    /// A short site: only the first return addresses of the allocation
    /// (enough to reach the code that called the allocating API), not the
    /// whole stack; heapdump-rs 1.1 records one for every allocation whose
    /// stack was not sampled.
    pub short: bool,
}

impl Stack {
    /// A stack of raw return addresses, not symbolised.
    pub fn from_pcs(id: StackId, pcs: Vec<u64>) -> Stack {
        Stack {
            id,
            pcs,
            frames: Vec::new(),
            frame_pcs: Vec::new(),
            allocator_frames: 0,
            caller_frame: None,
            runtime_frames: 0,
            short: false,
        }
    }

    /// The function of [`Stack::caller_frame`]: the program's code that
    /// allocated.
    pub fn caller_function(&self) -> Option<&str> {
        self.frames.get(self.caller_frame?)?.function.as_deref()
    }

    /// How many of [`Stack::frame_labels`]' trailing labels are the
    /// runtime's ([`Stack::runtime_frames`]).
    pub fn runtime_labels(&self) -> usize {
        let labels = if self.frames.is_empty() {
            self.pcs.len()
        } else {
            self.depth()
                .saturating_sub(self.allocator_frames.min(self.frames.len()))
        };
        self.runtime_frames.min(labels)
    }

    /// Number of frames: the longer of `pcs` and `frames`.
    pub fn depth(&self) -> usize {
        self.pcs.len().max(self.frames.len())
    }

    /// The return address frame `index` belongs to, if the stack has pcs.
    pub fn pc_of_frame(&self, index: usize) -> Option<u64> {
        match self.frame_pcs.get(index) {
            Some(&pc_index) => self.pcs.get(pc_index as usize).copied(),
            None if self.frame_pcs.is_empty() => self.pcs.get(index).copied(),
            None => None,
        }
    }

    /// The symbolised frames of the allocation site: `frames` without the
    /// allocator's own leading frames.
    pub fn site_frames(&self) -> &[Frame] {
        self.frames
            .get(self.allocator_frames.min(self.frames.len())..)
            .unwrap_or(&[])
    }

    /// One line per frame of the allocation site, innermost first (the
    /// allocator's own frames left out): `function (file:line)` when
    /// symbolised, else the pc as `0x…`.
    pub fn frame_labels(&self) -> Vec<String> {
        if self.frames.is_empty() {
            return self.pcs.iter().map(|pc| format!("{pc:#x}")).collect();
        }
        (self.allocator_frames.min(self.frames.len())..self.depth())
            .map(|index| {
                let pc = self.pc_of_frame(index);
                match self.frames.get(index) {
                    Some(frame) => frame.label(pc),
                    None => pc.map_or_else(String::new, |pc| format!("{pc:#x}")),
                }
            })
            .collect()
    }
}

/// One symbolised frame of a [`Stack`]. Any part may be unknown.
///
/// Names are shared (`Arc<str>`): every stack through a return address gets
/// the same frames, and a dump can have millions of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// The function's name (`main.buildCache`).
    pub function: Option<Arc<str>>,
    /// The source file.
    pub file: Option<Arc<str>>,
    /// The line in `file`.
    pub line: Option<u64>,
}

impl Frame {
    /// `function (file:line)`, leaving out what is unknown; `pc` (hex) when
    /// nothing is known.
    pub fn label(&self, pc: Option<u64>) -> String {
        let mut out = match (&self.function, pc) {
            (Some(function), _) => function.to_string(),
            (None, Some(pc)) => format!("{pc:#x}"),
            (None, None) => "?".to_owned(),
        };
        match (&self.file, self.line) {
            (Some(file), Some(line)) if line > 0 => out.push_str(&format!(" ({file}:{line})")),
            (Some(file), _) => out.push_str(&format!(" ({file})")),
            _ => {}
        }
        out
    }
}

/// A live heap allocation.
///
/// In a Go dump an object is a whole allocator slot: `size` is the slot's
/// size class (at least what the program asked for), a 16-byte tiny block
/// may hold several small allocations, and since Go 1.22 a slot that starts
/// with a malloc header ([`has_header`](Object::has_header)) is
/// pointed to at `address + 8` by the program.
///
/// 48 bytes: a dump holds millions. The contents and the pointer layout are
/// not in the object but looked up through its [`Dump`]
/// ([`Dump::contents`], [`Dump::pointers`]).
///
/// The contents are usually `size` bytes, the object's memory image. A
/// format that stores objects in another layout than memory (HPROF: field
/// values with full-size ids for references, an array's elements without
/// its header) sets [`Object::set_contents_len`]: `size` is then what the
/// object takes in the heap (what retained sizes add up), and the contents
/// are the stored bytes its pointer list describes.
///
/// An object of size 0 (HPROF's class objects, which VisualVM counts as
/// taking nothing in retained sizes) holds no byte, and is pointed to only
/// at its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Object {
    /// Address returned by the allocator (Go: the slot's first byte).
    pub address: u64,
    /// Size the program asked for (Go: the slot size; HPROF: the size
    /// VisualVM computes); the length of the contents unless
    /// [`Object::set_contents_len`] says otherwise.
    pub size: u64,
    /// Allocation-site stack, `None` if the allocation was not sampled.
    pub site: Option<StackId>,
    /// Where the object's bytes (`size` of them) start in [`Dump::data`]:
    /// for a parsed dump, their offset in the file.
    pub contents_at: u64,
    /// The type's index plus one; 0 for none.
    type_plus_one: u32,
    /// Bit 31: the first word is a runtime header. Bits 0–30: the
    /// pointer list's index plus one; 0 for none (unknown layout).
    layout: u32,
    /// Bytes of contents at `contents_at`; [`SAME_AS_SIZE`] for `size`.
    contents_len: u64,
}

// The point of the layout: keep it at 48 bytes.
const _: () = assert!(std::mem::size_of::<Object>() == 48);

/// `Object::contents_len` when the contents are `size` bytes.
const SAME_AS_SIZE: u64 = u64::MAX;

/// Bit of `Object::layout` that says the object starts with a header word.
const HEADER_BIT: u32 = 1 << 31;

impl Object {
    /// An object with no known pointer layout (scanned conservatively) and
    /// no type, whose `size` bytes of contents start at `contents_at` in
    /// [`Dump::data`].
    pub fn new(address: u64, size: u64, site: Option<StackId>, contents_at: u64) -> Object {
        Object {
            address,
            size,
            site,
            contents_at,
            type_plus_one: 0,
            layout: 0,
            contents_len: SAME_AS_SIZE,
        }
    }

    /// Bytes of contents stored at [`contents_at`](Object::contents_at):
    /// `size` unless [`set_contents_len`](Object::set_contents_len) said
    /// otherwise.
    pub fn contents_len(&self) -> u64 {
        if self.contents_len == SAME_AS_SIZE {
            self.size
        } else {
            self.contents_len
        }
    }

    /// Sets [`contents_len`](Object::contents_len), for formats whose
    /// stored bytes are not the object's memory image (see [`Object`]).
    pub fn set_contents_len(&mut self, len: u64) {
        self.contents_len = len;
    }

    /// One past the object's last byte (saturating at `u64::MAX`).
    pub fn end(&self) -> u64 {
        self.address.saturating_add(self.size)
    }

    /// Whether `address` is one of the object's bytes (its first byte up to,
    /// not including, its end).
    pub fn contains(&self, address: u64) -> bool {
        address >= self.address && address - self.address < self.size
    }

    /// Whether a pointer with value `address` refers to the object: it is
    /// one of its bytes, or the object is empty and `address` is its
    /// address.
    pub fn is_pointed_to_by(&self, address: u64) -> bool {
        self.contains(address) || (self.size == 0 && address == self.address)
    }

    /// The object's type, when the dump names it reliably.
    pub fn type_index(&self) -> Option<TypeIndex> {
        self.type_plus_one.checked_sub(1).map(TypeIndex)
    }

    /// Sets the object's type ([`type_index`](Object::type_index)). The
    /// last index, `u32::MAX`, cannot be stored and reads back as `None`.
    pub fn set_type_index(&mut self, index: Option<TypeIndex>) {
        self.type_plus_one = index.and_then(|index| index.0.checked_add(1)).unwrap_or(0);
    }

    /// The entry of [`Dump::pointer_lists`] that says which words are
    /// pointers; `None` when not known (every aligned word is scanned).
    /// [`Dump::pointers`] looks it up.
    pub fn pointer_list(&self) -> Option<PointerList> {
        (self.layout & !HEADER_BIT).checked_sub(1).map(PointerList)
    }

    /// Sets [`pointer_list`](Object::pointer_list).
    pub fn set_pointer_list(&mut self, list: Option<PointerList>) {
        let plus_one = list.map_or(0, |list| (list.0 + 1) & !HEADER_BIT);
        self.layout = (self.layout & HEADER_BIT) | plus_one;
    }

    /// The first pointer-sized word is a header the runtime keeps in the
    /// object (a type word: Go 1.22+ malloc headers), not program data; the
    /// program's pointers to the object point past it, and reports show it
    /// as `h` in shape names.
    pub fn has_header(&self) -> bool {
        self.layout & HEADER_BIT != 0
    }

    /// Sets [`has_header`](Object::has_header).
    pub fn set_header(&mut self, header: bool) {
        if header {
            self.layout |= HEADER_BIT;
        } else {
            self.layout &= !HEADER_BIT;
        }
    }
}

/// Identifies a pointer layout: its index in [`Dump::pointer_lists`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PointerList(u32);

impl PointerList {
    /// The most layouts a dump can hold (2³¹ − 1: an [`Object`] keeps the
    /// index in 31 bits).
    pub const MAX: usize = (HEADER_BIT - 1) as usize;

    /// The layout at `index`, if below [`PointerList::MAX`].
    pub fn new(index: usize) -> Option<PointerList> {
        u32::try_from(index)
            .ok()
            .filter(|&index| (index as usize) < PointerList::MAX)
            .map(PointerList)
    }

    /// The index into [`Dump::pointer_lists`].
    pub fn index(self) -> usize {
        self.0 as usize
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
    /// Highest `live_bytes` seen (approximate: may be off by up to about
    /// 512 KiB per thread, either way).
    pub peak_live_bytes: u64,
    /// Memory the tracker's own tables use, outside the heap.
    pub tracker_bytes: u64,
    /// Threads in the process at the moment of the dump, and how many of
    /// them have their stack in the dump; `None` when the dump does not say
    /// (Go dumps, older writers).
    pub threads: Option<ThreadCoverage>,
}

/// How many of the process's threads a dump's stack roots cover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ThreadCoverage {
    /// Threads in the process.
    pub threads: u64,
    /// Threads whose stacks were dumped (the others blocked the writer's
    /// stop signal or did not answer in time).
    pub dumped: u64,
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
