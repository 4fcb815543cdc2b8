//! Java HPROF heap dumps (`JAVA PROFILE 1.0.1`, `1.0.2`, and Android's
//! `1.0.3`), with 4- or 8-byte identifiers: what `jcmd PID GC.heap_dump`,
//! `-XX:+HeapDumpOnOutOfMemoryError` and
//! `HotSpotDiagnosticMXBean.dumpHeap` write.
//!
//! A dump is a header (the version, a NUL, the u4 identifier size, the u8
//! time in ms), then top-level records: u1 tag, u4 time, u4 body length,
//! body. Big-endian throughout. Records are read in one sequential pass
//! (names, classes, stack frames and traces); records this reader does
//! not use, and unknown tags, are skipped by their length. The heap is in
//! HEAP DUMP (0x0C) and HEAP DUMP SEGMENT (0x1C) records, whose
//! sub-records carry no length (an unknown sub-record tag stops the reader
//! with [`ErrorKind::UnknownTag`]); segments are decoded **in parallel**
//! (rayon, one task per segment: JDK 11+ writes 1 MiB segments; a single
//! HEAP DUMP record of JDK 8 and older is one task), in two walks: the
//! first takes the classes and roots and counts the objects, then the
//! classes are resolved, and the second writes each object, typed and
//! sized, straight into its place in the object table (allocated once, at
//! its size; in address order, with the class objects between them, when
//! the file's objects are, as HotSpot writes them; else sorted after).
//! Every length is checked against its record and the file; nothing is
//! allocated from a count before the bytes it counts are known to be
//! there.
//!
//! How the JVM's heap lands in the common model:
//!
//! | HPROF | model |
//! |---|---|
//! | INSTANCE DUMP (0x21) | [`Object`] at its id, typed by its class ([`TypeInfo`] `java.util.HashMap$Node`); contents: the field values as stored (borrowed from the file), pointer list: the offsets of its reference fields (own fields first, then the superclass's, as HPROF lays them out); in subclasses of `java.lang.ref.Reference`, `referent` is a weak pointer word ([`Dump::weak_pointers`]), as VisualVM skips it in its search from the roots (and counts it as a referrer in its dominators) |
//! | OBJECT ARRAY DUMP (0x22) | [`Object`] typed `java.lang.String[]`; contents: the element ids, pointer list: a run over every element |
//! | PRIMITIVE ARRAY DUMP (0x23) | [`Object`] typed `byte[]`, `char[]`, ...; contents: the elements; no pointers |
//! | CLASS DUMP (0x20) | an [`Object`] of size 0 at the class's id (the `java.lang.Class` mirror), typed by the class it describes ([`TypeInfo`] `class java.util.HashMap`, [`CLASS_OBJECT_PREFIX`]); contents: the static field entries, pointer list: the values of reference statics. Field layouts, names and loaders go to [`HprofDump`] |
//! | ROOT JAVA FRAME (0x03), ROOT JNI LOCAL (0x02) | [`RootKind::Frame`] of `thread N` at the frame's depth, the method from the thread's STACK TRACE (`java.lang.Thread.sleep`), the object as a value |
//! | ROOT THREAD OBJECT (0x08) | [`RootKind::Held`] `thread object` of its thread, and an [`ExecutionContext`] (`thread`) with the frames of its STACK TRACE |
//! | ROOT STICKY CLASS (0x05) | [`RootKind::Held`] `system class`, named by the class |
//! | ROOT JNI GLOBAL (0x01), MONITOR USED (0x07), THREAD BLOCK (0x06), NATIVE STACK (0x04) | [`RootKind::Held`] `JNI global`, `monitor used`, `thread block`, `native stack` |
//! | ROOT UNKNOWN (0xFF) and Android's roots (0x89–0x8E) | [`RootKind::Other`] |
//! | UTF8, LOAD CLASS, STACK FRAME, STACK TRACE | names of classes, fields and frames; [`HprofDump`] |
//!
//! Shallow sizes are VisualVM's (its heap library, `lib.profiler.heap`),
//! so that retained sizes equal VisualVM's: an object header is
//! `id size + reference size` bytes, where the reference size is 4 when
//! the ids are 4 bytes or the dump was written with compressed oops (a
//! `java.vm.compressedOopsMode` string is in the heap: HotSpot puts it in
//! the system properties then), else the id size; an instance takes
//! `align8(header + its fields' bytes)`, references counted at the
//! reference size; an array `align8(header + 4 + length × element size)`
//! (references at the reference size). When `java.lang.Object`'s CLASS
//! DUMP gives a non-zero instance size (Android), that is the header and
//! every class's recorded instance size is used as it is. Class objects
//! take 0 bytes: VisualVM lists them apart from the instances and counts
//! nothing for them in retained sizes.
//!
//! Retained sizes equal VisualVM's because the model states its two rules
//! for dominators: weak pointer words count as referrers (above), and
//! [`Capabilities::unreached_objects_hold`]: HotSpot writes only live
//! objects (with `live=true`), so what the roots do not reach is held by
//! memory the dump leaves out, and so is everything it refers to.

use std::borrow::Cow;
use std::collections::HashMap;

use rayon::prelude::*;

use crate::cursor::Cursor;
use crate::dump::{
    Capabilities, ContextFrame, ContextRef, Dump, DumpInfo, ExecutionContext, ExecutionContexts,
    FormatExtras, Object, PointerList, PointerOffsets, Pointers, Root, RootKind, TypeIndex,
    TypeInfo,
};
use crate::error::{Error, ErrorKind};
use crate::formats::rust::check_overlaps;
use crate::formats::{bad_value, Format};
use crate::graph::{MAX_OBJECTS, MAX_ROOTS};

mod model;
#[cfg(test)]
mod tests;

pub use model::{HprofClass, HprofDump, HprofStatic, HprofThread, StringLayout};

/// The format's name.
pub const NAME: &str = "hprof";

/// What every HPROF header starts with.
pub const MAGIC: &[u8] = b"JAVA PROFILE 1.0.";

/// What HPROF dumps call their execution contexts.
pub const CONTEXT_NOUN: &str = "thread";

/// What the type of a class object is named: `class ` and the class's
/// name (`class java.util.HashMap`), so reports name the class a class
/// object (its statics) belongs to.
pub const CLASS_OBJECT_PREFIX: &str = "class ";

/// How many bytes of the file between two calls of the progress callback.
const PROGRESS_STEP: u64 = 16 << 20;

/// Top-level record tags.
pub mod tag {
    /// A UTF8 string with its id.
    pub const UTF8: u8 = 0x01;
    /// LOAD CLASS: a class's serial number, id and name.
    pub const LOAD_CLASS: u8 = 0x02;
    /// UNLOAD CLASS.
    pub const UNLOAD_CLASS: u8 = 0x03;
    /// STACK FRAME.
    pub const STACK_FRAME: u8 = 0x04;
    /// STACK TRACE.
    pub const STACK_TRACE: u8 = 0x05;
    /// START THREAD (old agents).
    pub const START_THREAD: u8 = 0x0A;
    /// HEAP DUMP: the whole heap in one record.
    pub const HEAP_DUMP: u8 = 0x0C;
    /// HEAP DUMP SEGMENT (1.0.2).
    pub const HEAP_DUMP_SEGMENT: u8 = 0x1C;
    /// HEAP DUMP END (1.0.2).
    pub const HEAP_DUMP_END: u8 = 0x2C;
}

/// Heap dump sub-record tags.
pub mod sub {
    /// ROOT UNKNOWN.
    pub const ROOT_UNKNOWN: u8 = 0xFF;
    /// ROOT JNI GLOBAL.
    pub const ROOT_JNI_GLOBAL: u8 = 0x01;
    /// ROOT JNI LOCAL.
    pub const ROOT_JNI_LOCAL: u8 = 0x02;
    /// ROOT JAVA FRAME.
    pub const ROOT_JAVA_FRAME: u8 = 0x03;
    /// ROOT NATIVE STACK.
    pub const ROOT_NATIVE_STACK: u8 = 0x04;
    /// ROOT STICKY CLASS.
    pub const ROOT_STICKY_CLASS: u8 = 0x05;
    /// ROOT THREAD BLOCK.
    pub const ROOT_THREAD_BLOCK: u8 = 0x06;
    /// ROOT MONITOR USED.
    pub const ROOT_MONITOR_USED: u8 = 0x07;
    /// ROOT THREAD OBJECT.
    pub const ROOT_THREAD_OBJECT: u8 = 0x08;
    /// CLASS DUMP.
    pub const CLASS_DUMP: u8 = 0x20;
    /// INSTANCE DUMP.
    pub const INSTANCE_DUMP: u8 = 0x21;
    /// OBJECT ARRAY DUMP.
    pub const OBJECT_ARRAY_DUMP: u8 = 0x22;
    /// PRIMITIVE ARRAY DUMP.
    pub const PRIMITIVE_ARRAY_DUMP: u8 = 0x23;
    /// Android: HEAP DUMP INFO (heap id and name).
    pub const HEAP_DUMP_INFO: u8 = 0xFE;
    /// Android: ROOT INTERNED STRING.
    pub const ROOT_INTERNED_STRING: u8 = 0x89;
    /// Android: ROOT FINALIZING.
    pub const ROOT_FINALIZING: u8 = 0x8A;
    /// Android: ROOT DEBUGGER.
    pub const ROOT_DEBUGGER: u8 = 0x8B;
    /// Android: ROOT REFERENCE CLEANUP.
    pub const ROOT_REFERENCE_CLEANUP: u8 = 0x8C;
    /// Android: ROOT VM INTERNAL.
    pub const ROOT_VM_INTERNAL: u8 = 0x8D;
    /// Android: ROOT JNI MONITOR.
    pub const ROOT_JNI_MONITOR: u8 = 0x8E;
    /// Android: UNREACHABLE (obsolete).
    pub const UNREACHABLE: u8 = 0x90;
    /// Android: PRIMITIVE ARRAY NODATA.
    pub const PRIMITIVE_ARRAY_NODATA: u8 = 0xC3;
}

/// Basic type code of references.
const OBJECT_TYPE: u8 = 2;

/// The size in the dump of a value of basic type `code`, and its Java name;
/// `None` for an unknown code.
fn basic_type(code: u8, id_size: u8) -> Option<(u8, &'static str)> {
    Some(match code {
        OBJECT_TYPE => (id_size, "Object"),
        4 => (1, "boolean"),
        5 => (2, "char"),
        6 => (4, "float"),
        7 => (8, "double"),
        8 => (1, "byte"),
        9 => (2, "short"),
        10 => (4, "int"),
        11 => (8, "long"),
        _ => return None,
    })
}

/// The JVM's name of the primitive array class of element type `code`.
fn primitive_array_class(code: u8) -> &'static str {
    match code {
        4 => "[Z",
        5 => "[C",
        6 => "[F",
        7 => "[D",
        8 => "[B",
        9 => "[S",
        10 => "[I",
        _ => "[J",
    }
}

/// A JVM class name in Java's source form: `java/util/HashMap$Node` →
/// `java.util.HashMap$Node`, `[B` → `byte[]`, `[[Ljava/lang/String;` →
/// `java.lang.String[][]`.
pub fn java_name(jvm: &str) -> String {
    let dims = jvm.bytes().take_while(|&b| b == b'[').count();
    if dims == 0 {
        return jvm.replace('/', ".");
    }
    let element = jvm.get(dims..).unwrap_or("");
    let base = match element {
        "Z" => "boolean".to_owned(),
        "C" => "char".to_owned(),
        "F" => "float".to_owned(),
        "D" => "double".to_owned(),
        "B" => "byte".to_owned(),
        "S" => "short".to_owned(),
        "I" => "int".to_owned(),
        "J" => "long".to_owned(),
        other => other
            .strip_prefix('L')
            .and_then(|name| name.strip_suffix(';'))
            .unwrap_or(other)
            .replace('/', "."),
    };
    format!("{base}{}", "[]".repeat(dims))
}

/// Java HPROF heap dumps (files that start with `JAVA PROFILE 1.0.`).
#[derive(Clone, Copy, Debug, Default)]
pub struct HprofFormat;

impl Format for HprofFormat {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["hprof"]
    }

    fn matches(&self, bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC)
    }

    /// References are explicit; the roots are the GC roots the JVM wrote,
    /// which leave out some of what it holds (see `root_caveat`).
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pointers_exact: true,
            roots_complete: false,
            unreached_objects_hold: true,
            every_site_hint: None,
        }
    }

    fn object_text(&self, dump: &Dump<'_>, object: &Object) -> Option<String> {
        string_text(dump, object)
    }

    fn field_name(&self, dump: &Dump<'_>, object: &Object, offset: u64) -> Option<String> {
        field_name(dump, object, offset)
    }

    fn root_caveat(&self, dump: &Dump<'_>) -> Option<String> {
        let _ = dump;
        Some(
            "HotSpot's roots leave out what the JVM holds from places it does not dump: \
             the instance fields of java.lang.Class objects (a class's cached name \
             string, its reflection data), threads hidden from tools (compiler and \
             service threads, with their names), and the VM's own tables (method \
             types, member names); objects held only there look unreachable, in \
             VisualVM too. Objects held only by Reference.referent (weak, soft, \
             final, phantom) are unreachable as VisualVM counts them."
                .to_owned(),
        )
    }

    fn parse<'data>(
        &self,
        bytes: &'data [u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Dump<'data>, Error> {
        parse(bytes, progress)
    }
}

/// The HPROF-only part of `dump`, if it is an HPROF dump.
pub fn extras<'a>(dump: &'a Dump<'_>) -> Option<&'a HprofDump> {
    dump.extras.get::<HprofDump>()
}

/// Reads fixed-size big-endian fields off a cursor.
trait BigEndian<'data> {
    fn u1(&mut self, what: &'static str) -> Result<u8, Error>;
    fn u2(&mut self, what: &'static str) -> Result<u16, Error>;
    fn u4(&mut self, what: &'static str) -> Result<u32, Error>;
    fn u8_(&mut self, what: &'static str) -> Result<u64, Error>;
    fn id(&mut self, id_size: u8, what: &'static str) -> Result<u64, Error>;
}

impl<'data> BigEndian<'data> for Cursor<'data> {
    #[inline]
    fn u1(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.array::<1>(what)?[0])
    }
    #[inline]
    fn u2(&mut self, what: &'static str) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    #[inline]
    fn u4(&mut self, what: &'static str) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    #[inline]
    fn u8_(&mut self, what: &'static str) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    #[inline]
    fn id(&mut self, id_size: u8, what: &'static str) -> Result<u64, Error> {
        if id_size == 4 {
            Ok(u64::from(self.u4(what)?))
        } else {
            self.u8_(what)
        }
    }
}

/// A big-endian id from `bytes` (4 or 8 of them); 0 if too short.
fn read_id(bytes: &[u8], id_size: u8) -> u64 {
    if id_size == 4 {
        bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u64::from(u32::from_be_bytes(b)))
    } else {
        bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes)
    }
}

/// A STACK FRAME record.
#[derive(Clone, Copy, Debug)]
struct RawFrame {
    method: u64,
    source: u64,
    class_serial: u32,
    line: i32,
}

/// A CLASS DUMP sub-record.
#[derive(Clone, Debug)]
struct RawClass<'data> {
    id: u64,
    super_id: u64,
    loader_id: u64,
    instance_size: u32,
    /// File offset of the record.
    offset: u64,
    /// The static field entries (after their u2 count), and where they
    /// start in the file.
    statics: &'data [u8],
    statics_at: u64,
    /// (name id, type, offset of the value in `statics`).
    static_fields: Vec<(u64, u8, u64)>,
    /// (name id, type) of the declared instance fields.
    fields: Vec<(u64, u8)>,
}

/// What an object record says about the object's kind.
#[derive(Clone, Copy, Debug)]
enum RawKind {
    Instance { class_id: u64 },
    ObjectArray { class_id: u64, length: u32 },
    PrimitiveArray { element: u8, length: u32 },
}

/// An object record.
#[derive(Clone, Copy, Debug)]
struct RawObject {
    id: u64,
    kind: RawKind,
    /// Where the stored contents start in the file, and their length.
    contents_at: u64,
    contents_len: u64,
    /// File offset of the record, for errors.
    offset: u64,
}

/// A root sub-record.
#[derive(Clone, Copy, Debug)]
struct RawRoot {
    tag: u8,
    id: u64,
    thread_serial: u32,
    /// Frame number (JAVA FRAME, JNI LOCAL) or stack trace serial (THREAD
    /// OBJECT).
    extra: u32,
}

/// What [`walk_segment`] hands on: each sub-record of a segment, in file
/// order. Objects are passed by value and never stored as [`RawObject`]s:
/// the first walk ([`Scan`]) counts them, the second ([`Fill`]) writes
/// each one's [`Object`] into its place in the final table.
trait SegmentVisitor<'data> {
    /// A CLASS DUMP sub-record: its tag read, at `offset`; reads the rest.
    fn class(&mut self, c: &mut Cursor<'data>, offset: u64) -> Result<(), Error>;
    /// A root sub-record.
    fn root(&mut self, root: RawRoot);
    /// An object record.
    fn object(&mut self, object: RawObject) -> Result<(), Error>;
}

/// What the first walk of one segment learns: its classes and roots, how
/// many objects it holds (so the object table is allocated once, at its
/// size, and each segment's part of it is known), and what the objects
/// need made before they can be written in parallel.
#[derive(Debug, Default)]
struct Scan<'data> {
    /// The file, and its id size.
    bytes: &'data [u8],
    id_size: u8,
    classes: Vec<RawClass<'data>>,
    roots: Vec<RawRoot>,
    objects: usize,
    /// File offset of the last object record (for errors).
    last_offset: Option<u64>,
    /// The first and last object ids, and whether the ids rise.
    first_id: Option<u64>,
    last_id: Option<u64>,
    sorted: bool,
    /// Object array lengths in order of first appearance, with the offset
    /// of that first record; `lengths` is the set of them.
    array_lengths: Vec<(u32, u64)>,
    lengths: std::collections::HashSet<u32, BuildIdHasher>,
    /// Primitive array element types in order of first appearance.
    elements: Vec<u8>,
    /// A byte or char array holds `java.vm.compressedOopsMode`.
    compressed_oops_key: bool,
}

impl<'data> Scan<'data> {
    fn new(bytes: &'data [u8], id_size: u8) -> Scan<'data> {
        Scan {
            bytes,
            id_size,
            sorted: true,
            ..Scan::default()
        }
    }
}

/// The system property HotSpot sets with compressed oops.
const COMPRESSED_OOPS_KEY: &[u8] = b"java.vm.compressedOopsMode";

impl<'data> SegmentVisitor<'data> for Scan<'data> {
    fn class(&mut self, c: &mut Cursor<'data>, offset: u64) -> Result<(), Error> {
        let id_size = self.id_size;
        self.classes.push(class_dump(c, offset, id_size)?);
        Ok(())
    }

    fn root(&mut self, root: RawRoot) {
        self.roots.push(root);
    }

    fn object(&mut self, object: RawObject) -> Result<(), Error> {
        self.objects += 1;
        self.last_offset = Some(object.offset);
        if self.first_id.is_none() {
            self.first_id = Some(object.id);
        }
        if self.last_id.is_some_and(|last| last > object.id) {
            self.sorted = false;
        }
        self.last_id = Some(object.id);
        match object.kind {
            RawKind::Instance { .. } => {}
            RawKind::ObjectArray { length, .. } => {
                if self.lengths.insert(length) {
                    self.array_lengths.push((length, object.offset));
                }
            }
            RawKind::PrimitiveArray { element, length } => {
                if !self.elements.contains(&element) {
                    self.elements.push(element);
                }
                if length as usize == COMPRESSED_OOPS_KEY.len()
                    && !self.compressed_oops_key
                    && is_compressed_oops_key(self.bytes, &object, element)
                {
                    self.compressed_oops_key = true;
                }
            }
        }
        Ok(())
    }
}

/// Whether the primitive array `object` (of element type `element`) holds
/// the text `java.vm.compressedOopsMode`, as bytes or as chars.
fn is_compressed_oops_key(bytes: &[u8], object: &RawObject, element: u8) -> bool {
    let text = contents(bytes, object.contents_at, object.contents_len);
    match element {
        8 => text == COMPRESSED_OOPS_KEY,
        5 => text
            .chunks_exact(2)
            .map(|pair| match pair {
                [high, low] => u16::from_be_bytes([*high, *low]),
                _ => 0,
            })
            .eq(COMPRESSED_OOPS_KEY.iter().map(|&b| u16::from(b))),
        _ => false,
    }
}

/// What every instance of a class is in the model (an object array of it
/// takes its type and computes its size from its length).
#[derive(Clone, Copy, Debug)]
struct ClassShape {
    /// The instance size (VisualVM's).
    size: u64,
    /// Bytes of field values an instance must store.
    stored: u64,
    type_index: Option<TypeIndex>,
    list: Option<PointerList>,
}

/// The second walk of one segment: writes each object's [`Object`] into
/// the segment's part of the object table, in file order.
struct Fill<'a> {
    id_size: u8,
    header: u64,
    reference: u64,
    class_index: &'a HashMap<u64, usize, BuildIdHasher>,
    shapes: &'a [ClassShape],
    array_lists: &'a HashMap<u32, PointerList, BuildIdHasher>,
    /// The type of primitive arrays, by element type code.
    primitive_types: &'a [Option<TypeIndex>; 256],
    /// The empty pointer list.
    none: PointerList,
    /// The class objects, in address order, each written just before
    /// the first object at a higher address; `next_class` is the first
    /// not written yet.
    class_objects: &'a [Object],
    next_class: usize,
    /// The segment's part of the table, not yet written.
    slots: std::slice::IterMut<'a, std::mem::MaybeUninit<Object>>,
    written: usize,
}

impl<'data> SegmentVisitor<'data> for Fill<'_> {
    fn class(&mut self, c: &mut Cursor<'data>, offset: u64) -> Result<(), Error> {
        class_dump(c, offset, self.id_size).map(drop)
    }

    fn root(&mut self, _root: RawRoot) {}

    fn object(&mut self, raw: RawObject) -> Result<(), Error> {
        let unknown_class = |class_id: u64| {
            bad_value(
                raw.offset,
                "class id",
                class_id,
                "no CLASS DUMP record has this id",
            )
        };
        let shape = |class_id: u64| {
            self.class_index
                .get(&class_id)
                .and_then(|&index| self.shapes.get(index))
                .ok_or_else(|| unknown_class(class_id))
        };
        let (size, type_index, list) = match raw.kind {
            RawKind::Instance { class_id } => {
                let shape = shape(class_id)?;
                if raw.contents_len < shape.stored {
                    return Err(bad_value(
                        raw.offset,
                        "instance field bytes",
                        raw.contents_len,
                        "fewer than the class's fields take",
                    ));
                }
                (shape.size, shape.type_index, shape.list)
            }
            RawKind::ObjectArray { class_id, length } => {
                let shape = shape(class_id)?;
                let list = self.array_lists.get(&length).copied().ok_or_else(|| {
                    bad_value(
                        raw.offset,
                        "object array length",
                        u64::from(length),
                        "not seen by the first reading of the segment",
                    )
                })?;
                let size = align8(self.header + 4 + u64::from(length) * self.reference);
                (size, shape.type_index, Some(list))
            }
            RawKind::PrimitiveArray { element, length } => {
                let element_size =
                    basic_type(element, self.id_size).map_or(1, |(size, _)| u64::from(size));
                let size = align8(self.header + 4 + u64::from(length) * element_size);
                let type_index = self
                    .primitive_types
                    .get(usize::from(element))
                    .copied()
                    .flatten();
                (size, type_index, Some(self.none))
            }
        };
        let mut object = Object::new(raw.id, size, None, raw.contents_at);
        object.set_contents_len(raw.contents_len);
        object.set_type_index(type_index);
        object.set_pointer_list(list);
        while let Some(class) = self
            .class_objects
            .get(self.next_class)
            .filter(|class| class.address < raw.id)
        {
            self.next_class += 1;
            self.write(*class, raw.offset)?;
        }
        self.write(object, raw.offset)
    }
}

impl Fill<'_> {
    /// Writes `object` into the next entry of the segment's part.
    fn write(&mut self, object: Object, offset: u64) -> Result<(), Error> {
        let slot = self.slots.next().ok_or_else(|| {
            bad_value(
                offset,
                "object records",
                self.written as u64 + 1,
                "more than the first reading of the segment counted",
            )
        })?;
        slot.write(object);
        self.written += 1;
        Ok(())
    }
}

/// Everything the top-level records say.
struct Records<'data> {
    version: String,
    id_size: u8,
    time_ms: u64,
    strings: HashMap<u64, &'data [u8]>,
    /// Class id → name id (LOAD CLASS).
    class_names: HashMap<u64, u64>,
    /// Class serial → class id.
    class_serials: HashMap<u32, u64>,
    frames: HashMap<u64, RawFrame>,
    /// Trace serial → (thread serial, frame ids).
    traces: HashMap<u32, (u32, &'data [u8])>,
    /// Heap dump segment bodies and their file offsets.
    segments: Vec<(u64, &'data [u8])>,
    skipped: HashMap<u8, u64>,
}

impl<'data> Records<'data> {
    fn string(&self, id: u64) -> Option<Cow<'data, str>> {
        self.strings
            .get(&id)
            .map(|bytes| String::from_utf8_lossy(bytes))
    }

    /// The Java name of class `id`.
    fn class_name(&self, id: u64) -> String {
        match self
            .class_names
            .get(&id)
            .and_then(|&name| self.string(name))
        {
            Some(name) => java_name(&name),
            None => format!("<class {id:#x}>"),
        }
    }

    /// `Class.method` of a frame id, and its source file and line.
    fn frame(&self, frame_id: u64) -> ContextFrame {
        let Some(frame) = self.frames.get(&frame_id) else {
            return ContextFrame {
                function: format!("<frame {frame_id:#x}>"),
                ..ContextFrame::default()
            };
        };
        let method = self
            .string(frame.method)
            .map_or_else(|| "?".to_owned(), Cow::into_owned);
        let class = self
            .class_serials
            .get(&frame.class_serial)
            .map_or_else(|| "?".to_owned(), |&id| self.class_name(id));
        ContextFrame {
            depth: 0,
            function: format!("{class}.{method}"),
            file: self
                .string(frame.source)
                .map_or_else(String::new, Cow::into_owned),
            line: u64::try_from(frame.line).unwrap_or(0),
            bytes: 0,
        }
    }
}

/// Decodes an HPROF file.
fn parse<'data>(
    bytes: &'data [u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Dump<'data>, Error> {
    let total = bytes.len() as u64;
    let records = records(bytes, progress)?;
    let id_size = records.id_size;

    // The segments, in parallel; the earliest error in the file wins.
    let scans: Vec<Result<Scan<'data>, Error>> = records
        .segments
        .par_iter()
        .map(|&(offset, body)| {
            let mut scan = Scan::new(bytes, id_size);
            walk_segment(body, offset, id_size, &mut scan)?;
            Ok(scan)
        })
        .collect();
    let scans = scans.into_iter().collect::<Result<Vec<_>, Error>>()?;
    progress(total.saturating_mul(3) / 4, total);
    let dump = build(bytes, &records, scans)?;
    progress(total, total);
    Ok(dump)
}

/// Reads the header and the top-level records.
fn records<'data>(
    bytes: &'data [u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Records<'data>, Error> {
    let total = bytes.len() as u64;
    let nul = bytes.iter().take(64).position(|&b| b == 0);
    let version = nul
        .and_then(|nul| bytes.get(..nul))
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let version = match version {
        Some(v)
            if v == "JAVA PROFILE 1.0.1"
                || v == "JAVA PROFILE 1.0.2"
                || v == "JAVA PROFILE 1.0.3" =>
        {
            v
        }
        other => {
            let shown = other.unwrap_or_else(|| {
                String::from_utf8_lossy(bytes.get(..32).unwrap_or(bytes)).into_owned()
            });
            return Err(Error::new(
                0,
                ErrorKind::UnsupportedHeader {
                    format: "a Java HPROF dump",
                    header: shown,
                    supported: "\"JAVA PROFILE 1.0.1\", \"1.0.2\" and \"1.0.3\"",
                },
            ));
        }
    };
    let header_len = version.len() as u64 + 1;
    let mut file = Cursor::new(bytes, 0, "file");
    file.take(header_len, "header", 0)?;
    let id_offset = file.offset();
    let id_size = file.u4("identifier size")?;
    if id_size != 4 && id_size != 8 {
        return Err(bad_value(
            id_offset,
            "identifier size",
            u64::from(id_size),
            "must be 4 or 8",
        ));
    }
    let id_size = id_size as u8;
    let time_ms = file.u8_("dump time")?;
    let mut records = Records {
        version,
        id_size,
        time_ms,
        strings: HashMap::new(),
        class_names: HashMap::new(),
        class_serials: HashMap::new(),
        frames: HashMap::new(),
        traces: HashMap::new(),
        segments: Vec::new(),
        skipped: HashMap::new(),
    };
    let mut next_progress = PROGRESS_STEP;
    while !file.is_empty() {
        let record_offset = file.offset();
        let tag = file.u1("record tag")?;
        file.u4("record time")?;
        let len_offset = file.offset();
        let len = file.u4("record length")?;
        let mut body = file.sub_cursor(u64::from(len), "record body", len_offset, "record")?;
        match tag {
            tag::UTF8 => {
                let id = body.id(id_size, "string id")?;
                let text = body.take(body.remaining() as u64, "string", len_offset)?;
                records.strings.insert(id, text);
            }
            tag::LOAD_CLASS => {
                let serial = body.u4("class serial")?;
                let id = body.id(id_size, "class id")?;
                body.u4("stack trace serial")?;
                let name = body.id(id_size, "class name id")?;
                records.class_names.insert(id, name);
                records.class_serials.insert(serial, id);
            }
            tag::STACK_FRAME => {
                let id = body.id(id_size, "frame id")?;
                let method = body.id(id_size, "method name id")?;
                body.id(id_size, "method signature id")?;
                let source = body.id(id_size, "source file id")?;
                let class_serial = body.u4("class serial")?;
                let line = body.u4("line number")? as i32;
                records.frames.insert(
                    id,
                    RawFrame {
                        method,
                        source,
                        class_serial,
                        line,
                    },
                );
            }
            tag::STACK_TRACE => {
                let serial = body.u4("stack trace serial")?;
                let thread = body.u4("thread serial")?;
                let count_offset = body.offset();
                let count = body.u4("frame count")?;
                let frames = body.take(
                    u64::from(count) * u64::from(id_size),
                    "stack trace frames",
                    count_offset,
                )?;
                records.traces.insert(serial, (thread, frames));
            }
            tag::HEAP_DUMP | tag::HEAP_DUMP_SEGMENT => {
                let offset = body.offset();
                let data = body.take(body.remaining() as u64, "heap dump segment", len_offset)?;
                records.segments.push((offset, data));
            }
            tag::HEAP_DUMP_END => {}
            other => {
                *records.skipped.entry(other).or_default() += 1;
            }
        }
        let _ = record_offset;
        if file.offset() >= next_progress {
            progress(file.offset() / 2, total);
            next_progress = file.offset().saturating_add(PROGRESS_STEP);
        }
    }
    Ok(records)
}

/// The error for an unknown heap dump sub-record tag.
fn unknown_sub_record(tag: u8) -> ErrorKind {
    ErrorKind::UnknownTag {
        format: "HPROF heap dump sub-record",
        tag: u64::from(tag),
        reason: "sub-records carry no length, so the rest of the segment cannot be read \
                 (a newer or vendor-specific writer, or a corrupt file)",
    }
}

/// Walks one heap dump segment (its body at file offset `base`), handing
/// each sub-record to `visitor`.
fn walk_segment<'data, V: SegmentVisitor<'data>>(
    body: &'data [u8],
    base: u64,
    id_size: u8,
    visitor: &mut V,
) -> Result<(), Error> {
    let mut c = Cursor::new(body, base, "heap dump segment");
    let id = u64::from(id_size);
    while !c.is_empty() {
        let offset = c.offset();
        let tag = c.u1("sub-record tag")?;
        match tag {
            sub::ROOT_UNKNOWN
            | sub::ROOT_STICKY_CLASS
            | sub::ROOT_MONITOR_USED
            | sub::ROOT_INTERNED_STRING
            | sub::ROOT_FINALIZING
            | sub::ROOT_DEBUGGER
            | sub::ROOT_REFERENCE_CLEANUP
            | sub::ROOT_VM_INTERNAL => {
                let object = c.id(id_size, "root object id")?;
                visitor.root(RawRoot {
                    tag,
                    id: object,
                    thread_serial: 0,
                    extra: 0,
                });
            }
            sub::UNREACHABLE => {
                c.id(id_size, "object id")?;
            }
            sub::ROOT_JNI_GLOBAL => {
                let object = c.id(id_size, "root object id")?;
                c.id(id_size, "JNI global ref id")?;
                visitor.root(RawRoot {
                    tag,
                    id: object,
                    thread_serial: 0,
                    extra: 0,
                });
            }
            sub::ROOT_JNI_LOCAL
            | sub::ROOT_JAVA_FRAME
            | sub::ROOT_THREAD_OBJECT
            | sub::ROOT_JNI_MONITOR => {
                let object = c.id(id_size, "root object id")?;
                let thread_serial = c.u4("thread serial")?;
                let extra = c.u4("frame number")?;
                visitor.root(RawRoot {
                    tag,
                    id: object,
                    thread_serial,
                    extra,
                });
            }
            sub::ROOT_NATIVE_STACK | sub::ROOT_THREAD_BLOCK => {
                let object = c.id(id_size, "root object id")?;
                let thread_serial = c.u4("thread serial")?;
                visitor.root(RawRoot {
                    tag,
                    id: object,
                    thread_serial,
                    extra: 0,
                });
            }
            sub::HEAP_DUMP_INFO => {
                c.u4("heap id")?;
                c.id(id_size, "heap name id")?;
            }
            sub::CLASS_DUMP => visitor.class(&mut c, offset)?,
            sub::INSTANCE_DUMP => {
                let object = c.id(id_size, "object id")?;
                c.u4("stack trace serial")?;
                let class_id = c.id(id_size, "class id")?;
                let len_offset = c.offset();
                let len = c.u4("field bytes")?;
                let contents_at = c.offset();
                c.take(u64::from(len), "instance field values", len_offset)?;
                visitor.object(RawObject {
                    id: object,
                    kind: RawKind::Instance { class_id },
                    contents_at,
                    contents_len: u64::from(len),
                    offset,
                })?;
            }
            sub::OBJECT_ARRAY_DUMP => {
                let object = c.id(id_size, "object id")?;
                c.u4("stack trace serial")?;
                let len_offset = c.offset();
                let length = c.u4("array length")?;
                let class_id = c.id(id_size, "array class id")?;
                let contents_at = c.offset();
                let bytes = u64::from(length) * id;
                c.take(bytes, "array elements", len_offset)?;
                visitor.object(RawObject {
                    id: object,
                    kind: RawKind::ObjectArray { class_id, length },
                    contents_at,
                    contents_len: bytes,
                    offset,
                })?;
            }
            sub::PRIMITIVE_ARRAY_DUMP | sub::PRIMITIVE_ARRAY_NODATA => {
                let object = c.id(id_size, "object id")?;
                c.u4("stack trace serial")?;
                let len_offset = c.offset();
                let length = c.u4("array length")?;
                let type_offset = c.offset();
                let element = c.u1("element type")?;
                let size = match basic_type(element, id_size) {
                    Some((size, _)) if element != OBJECT_TYPE => size,
                    _ => {
                        return Err(bad_value(
                            type_offset,
                            "element type",
                            u64::from(element),
                            "must be a primitive basic type (4 to 11)",
                        ))
                    }
                };
                let contents_at = c.offset();
                let bytes = if tag == sub::PRIMITIVE_ARRAY_NODATA {
                    0
                } else {
                    u64::from(length) * u64::from(size)
                };
                c.take(bytes, "array elements", len_offset)?;
                visitor.object(RawObject {
                    id: object,
                    kind: RawKind::PrimitiveArray { element, length },
                    contents_at,
                    contents_len: bytes,
                    offset,
                })?;
            }
            other => return Err(Error::new(offset, unknown_sub_record(other))),
        }
    }
    Ok(())
}

/// Skips a value of basic type `code`; returns its size.
fn value(c: &mut Cursor<'_>, id_size: u8, what: &'static str) -> Result<u8, Error> {
    let offset = c.offset();
    let code = c.u1(what)?;
    let Some((size, _)) = basic_type(code, id_size) else {
        return Err(bad_value(
            offset,
            what,
            u64::from(code),
            "not a basic type (2, 4 to 11)",
        ));
    };
    c.take(u64::from(size), "value", offset)?;
    Ok(code)
}

/// Reads a CLASS DUMP sub-record (its tag read, at `offset`).
fn class_dump<'data>(
    c: &mut Cursor<'data>,
    offset: u64,
    id_size: u8,
) -> Result<RawClass<'data>, Error> {
    let id = c.id(id_size, "class id")?;
    c.u4("stack trace serial")?;
    let super_id = c.id(id_size, "superclass id")?;
    let loader_id = c.id(id_size, "class loader id")?;
    for what in ["signers id", "protection domain id", "reserved", "reserved"] {
        c.id(id_size, what)?;
    }
    let instance_size = c.u4("instance size")?;
    let pool = c.u2("constant pool size")?;
    for _ in 0..pool {
        c.u2("constant pool index")?;
        value(c, id_size, "constant pool entry type")?;
    }
    let statics_count = c.u2("static field count")?;
    let statics_at = c.offset();
    let mut static_fields = Vec::new();
    let mut start = c.clone();
    for _ in 0..statics_count {
        let name = c.id(id_size, "static field name id")?;
        let value_offset = c.offset() + 1 - statics_at;
        let code = value(c, id_size, "static field type")?;
        static_fields.push((name, code, value_offset));
    }
    let statics_len = c.offset() - statics_at;
    let statics = start.take(statics_len, "static fields", statics_at)?;
    let fields_count = c.u2("instance field count")?;
    let mut fields = Vec::new();
    for _ in 0..fields_count {
        let name = c.id(id_size, "field name id")?;
        let type_offset = c.offset();
        let code = c.u1("field type")?;
        if basic_type(code, id_size).is_none() {
            return Err(bad_value(
                type_offset,
                "field type",
                u64::from(code),
                "not a basic type (2, 4 to 11)",
            ));
        }
        fields.push((name, code));
    }
    Ok(RawClass {
        id,
        super_id,
        loader_id,
        instance_size,
        offset,
        statics,
        statics_at,
        static_fields,
        fields,
    })
}

/// The size rule: (header bytes, reference bytes, Android's "recorded
/// sizes" mode, words). `compressed_oops_key`: a byte or char array holds
/// `java.vm.compressedOopsMode`.
fn size_rule(
    records: &Records<'_>,
    classes: &[RawClass<'_>],
    compressed_oops_key: bool,
) -> (u64, u64, bool, String) {
    let id_size = u64::from(records.id_size);
    let object_class = classes
        .iter()
        .find(|class| records.class_name(class.id) == "java.lang.Object");
    if let Some(object) = object_class.filter(|class| class.instance_size > 0) {
        let header = u64::from(object.instance_size);
        let reference = header.saturating_sub(id_size).max(1);
        return (
            header,
            reference,
            true,
            format!(
                "java.lang.Object's recorded instance size {header} is the header; \
                 recorded instance sizes used as they are"
            ),
        );
    }
    if id_size == 4 {
        return (8, 4, false, "4-byte ids: references of 4 bytes".to_owned());
    }
    if compressed_oops_key {
        (
            id_size + 4,
            4,
            false,
            "compressed oops (java.vm.compressedOopsMode is set): references of 4 bytes".to_owned(),
        )
    } else {
        (
            id_size * 2,
            id_size,
            false,
            "no compressed oops: references of the id size".to_owned(),
        )
    }
}

/// The bytes at `at..at + len` of the file; empty if not there.
fn contents(bytes: &[u8], at: u64, len: u64) -> &[u8] {
    usize::try_from(at)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(at, len)| bytes.get(at..at.checked_add(len)?))
        .unwrap_or(&[])
}

/// Rounds up to a multiple of 8.
fn align8(size: u64) -> u64 {
    size.saturating_add(7) & !7
}

/// A class's instance layout: stored bytes, VisualVM's field bytes,
/// pointer offsets.
struct Layout {
    stored: u64,
    shallow_fields: u64,
    pointers: Vec<u64>,
    /// The offset of `Reference.referent` in a subclass of
    /// `java.lang.ref.Reference` (a weak pointer word).
    weak: Option<u64>,
}

/// Where `java.lang.ref.Reference.referent` is: the class's index and
/// the field's position among its own fields.
fn referent_field(
    classes: &[RawClass<'_>],
    names: &[String],
    records: &Records<'_>,
) -> Option<(usize, usize)> {
    let class = names
        .iter()
        .position(|name| name == "java.lang.ref.Reference")?;
    let field = classes
        .get(class)?
        .fields
        .iter()
        .position(|&(name, code)| {
            code == OBJECT_TYPE && records.string(name).is_some_and(|name| name == "referent")
        })?;
    Some((class, field))
}

/// Where `java.lang.String` keeps its text: its own fields come first in
/// an instance's stored values (its superclass, `Object`, has none).
fn string_layout(
    classes: &[RawClass<'_>],
    names: &[String],
    records: &Records<'_>,
    id_size: u8,
) -> Option<StringLayout> {
    let index = names.iter().position(|name| name == "java.lang.String")?;
    let mut offset = 0u64;
    let mut value = None;
    let mut coder = None;
    for &(name, code) in &classes.get(index)?.fields {
        let field = records.string(name);
        match field.as_deref() {
            Some("value") if code == OBJECT_TYPE => value = Some(offset),
            Some("coder") if code == 8 => coder = Some(offset),
            _ => {}
        }
        offset += basic_type(code, id_size).map_or(0, |(size, _)| u64::from(size));
    }
    Some(StringLayout {
        type_index: u32::try_from(index).ok()?,
        value_offset: value?,
        coder_offset: coder,
    })
}

/// The text of a `java.lang.String` instance: its `value` array decoded
/// as Latin-1 (`coder` 0), UTF-16 in the little-endian order of x86 and
/// ARM JVMs (`coder` 1: HotSpot dumps the array's bytes as they are in
/// memory), or, for a `char[]` (JDK 8), UTF-16 as HPROF stores chars,
/// big-endian. `None` for other objects or a value that is not there.
fn string_text(dump: &Dump<'_>, object: &Object) -> Option<String> {
    let extras = extras(dump)?;
    let layout = extras.string_layout?;
    if object.type_index() != Some(TypeIndex(layout.type_index)) {
        return None;
    }
    let contents = dump.contents(object);
    let at = usize::try_from(layout.value_offset).ok()?;
    let id = read_id(
        contents.get(at..at.checked_add(usize::from(extras.id_size))?)?,
        extras.id_size,
    );
    let coder = match layout.coder_offset {
        Some(offset) => contents.get(usize::try_from(offset).ok()?).copied(),
        None => None,
    };
    let array = object_near(&dump.objects, object, id)?;
    let bytes = dump.contents(array);
    let element = dump
        .types
        .get(array.type_index()?.0 as usize)?
        .name
        .as_str();
    let units = |big_endian: bool| {
        bytes.chunks_exact(2).map(move |pair| match pair {
            [a, b] if big_endian => u16::from_be_bytes([*a, *b]),
            [a, b] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        })
    };
    Some(match (element, coder) {
        ("char[]", _) => char::decode_utf16(units(true))
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
        ("byte[]", Some(1)) => char::decode_utf16(units(false))
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
        ("byte[]", _) => bytes.iter().map(|&byte| char::from(byte)).collect(),
        _ => return None,
    })
}

/// The object at `address` in `objects` (sorted by address), searched
/// from `near`'s place when `near` is one of them: a string's value array
/// sits next to it (HotSpot allocates them together), and a search over
/// millions of objects from the middle costs a cache miss per step.
fn object_near<'a>(objects: &'a [Object], near: &Object, address: u64) -> Option<&'a Object> {
    // `near`'s index, if it is an element of `objects` (a copy is not).
    let start = (near as *const Object as usize)
        .checked_sub(objects.as_ptr() as usize)
        .map(|bytes| bytes / std::mem::size_of::<Object>())
        .filter(|&index| {
            objects
                .get(index)
                .is_some_and(|found| std::ptr::eq(found, near))
        });
    let index = match start {
        // Galloping: bounds 1, 2, 4, ... objects away, then a binary search
        // between the last two.
        Some(start) if address >= near.address => {
            let mut step = 1;
            while objects
                .get(start + step)
                .is_some_and(|found| found.address < address)
            {
                step *= 2;
            }
            let end = (start + step + 1).min(objects.len());
            let low = start + step / 2;
            low + objects
                .get(low..end)?
                .binary_search_by_key(&address, |object| object.address)
                .ok()?
        }
        Some(start) => {
            let mut step = 1;
            while start
                .checked_sub(step)
                .and_then(|index| objects.get(index))
                .is_some_and(|found| found.address > address)
            {
                step *= 2;
            }
            let low = start.saturating_sub(step);
            let end = start + 1 - step / 2;
            low + objects
                .get(low..end)?
                .binary_search_by_key(&address, |object| object.address)
                .ok()?
        }
        None => objects
            .binary_search_by_key(&address, |object| object.address)
            .ok()?,
    };
    objects.get(index)
}

/// The name of the reference at `offset` of `object`: a class object's
/// static (`LeakyCache.CACHE`), an instance's field (`next`, its own
/// fields first, then its superclass's, as HPROF stores them), an object
/// array's element (`[3]`).
fn field_name(dump: &Dump<'_>, object: &Object, offset: u64) -> Option<String> {
    let extras = extras(dump)?;
    if extras.class_index.contains_key(&object.address) {
        return extras.static_field_name(object.address, offset);
    }
    let type_index = object.type_index()?.0 as usize;
    // Instances and object arrays are typed by their class, whose types
    // come first, in class order.
    let class = extras.classes.get(type_index)?;
    if class.name.ends_with("[]") {
        return Some(format!("[{}]", offset / u64::from(extras.id_size)));
    }
    let mut at = 0u64;
    let mut current = Some(class);
    let mut steps = 0usize;
    while let Some(class) = current {
        for (name, code) in &class.fields {
            if at == offset && *code == OBJECT_TYPE {
                return Some(name.clone());
            }
            at += basic_type(*code, extras.id_size).map_or(0, |(size, _)| u64::from(size));
        }
        steps += 1;
        if steps > extras.classes.len() {
            return None; // a superclass cycle
        }
        current = extras
            .class_index
            .get(&class.super_id)
            .and_then(|&index| extras.classes.get(index));
    }
    None
}

/// The instance layout of class `index`: its own fields, then its
/// superclass's, up to `java.lang.Object`.
fn layout(
    index: usize,
    classes: &[RawClass<'_>],
    class_index: &HashMap<u64, usize>,
    id_size: u8,
    reference: u64,
    referent: Option<(usize, usize)>,
) -> Layout {
    let mut layout = Layout {
        stored: 0,
        shallow_fields: 0,
        pointers: Vec::new(),
        weak: None,
    };
    let mut current = Some(index);
    let mut steps = 0usize;
    while let Some(at) = current {
        let Some(class) = classes.get(at) else { break };
        for (position, &(_, code)) in class.fields.iter().enumerate() {
            let size = basic_type(code, id_size).map_or(0, |(size, _)| u64::from(size));
            if code == OBJECT_TYPE {
                // VisualVM skips `referent` in the subclasses of Reference
                // (weak, soft, final, phantom), not in Reference itself.
                if referent == Some((at, position)) && at != index {
                    layout.weak = Some(layout.stored);
                }
                layout.pointers.push(layout.stored);
                layout.shallow_fields += reference;
            } else {
                layout.shallow_fields += size;
            }
            layout.stored += size;
        }
        steps += 1;
        if steps > classes.len() {
            break; // a superclass cycle
        }
        current = class_index.get(&class.super_id).copied();
    }
    layout
}

/// Builds the common model from the records and the segments.
fn build<'data>(
    bytes: &'data [u8],
    records: &Records<'data>,
    mut scans: Vec<Scan<'data>>,
) -> Result<Dump<'data>, Error> {
    let id_size = records.id_size;
    let id = u64::from(id_size);
    let mut classes = Vec::new();
    let mut raw_roots = Vec::new();
    for scan in &mut scans {
        classes.append(&mut scan.classes);
        raw_roots.append(&mut scan.roots);
    }
    let object_count: usize = scans.iter().map(|scan| scan.objects).sum();
    if object_count as u64 + classes.len() as u64 > MAX_OBJECTS {
        let offset = scans
            .iter()
            .rev()
            .find_map(|scan| scan.last_offset)
            .unwrap_or(0);
        return Err(Error::new(
            offset,
            ErrorKind::TooManyObjects { max: MAX_OBJECTS },
        ));
    }
    if raw_roots.len() as u64 > MAX_ROOTS {
        return Err(Error::new(0, ErrorKind::TooManyRoots { max: MAX_ROOTS }));
    }
    let mut class_index: HashMap<u64, usize> = HashMap::with_capacity(classes.len());
    for (index, class) in classes.iter().enumerate() {
        if class_index.insert(class.id, index).is_some() {
            return Err(Error::new(
                class.offset,
                ErrorKind::DuplicateObject { address: class.id },
            ));
        }
    }
    let compressed_oops_key = scans.iter().any(|scan| scan.compressed_oops_key);
    let (header, reference, recorded_sizes, rule) =
        size_rule(records, &classes, compressed_oops_key);

    let mut dump = Dump::new(DumpInfo {
        format: NAME,
        format_version: records
            .version
            .strip_prefix("JAVA PROFILE ")
            .unwrap_or(&records.version)
            .to_owned(),
        pointer_size: id_size,
        big_endian: true,
        arch: String::new(),
        os: String::new(),
        pid: 0,
        time_unix_ns: records.time_ms.saturating_mul(1_000_000),
        executable: String::new(),
        build_id: Vec::new(),
        writer: records.version.clone(),
        contents_mode: heapdump_format::ContentsMode::Full,
        sample_rate: 0,
    });
    dump.data = bytes;

    // Types: one per class, in class order; then one per class for the
    // class objects, and primitive array types the dump has no class for.
    let names: Vec<String> = classes
        .iter()
        .map(|class| records.class_name(class.id))
        .collect();
    let referent = referent_field(&classes, &names, records);
    let string_layout = string_layout(&classes, &names, records, id_size);
    let layouts: Vec<Layout> = (0..classes.len())
        .map(|index| layout(index, &classes, &class_index, id_size, reference, referent))
        .collect();
    let mut model_classes = Vec::with_capacity(classes.len());
    for (index, class) in classes.iter().enumerate() {
        let name = names.get(index).cloned().unwrap_or_default();
        let is_array = name.ends_with("[]");
        // Recorded sizes hold for every class an INSTANCE DUMP names (a
        // converter may write an array-named class's objects as instances).
        let instance_size = match layouts.get(index) {
            _ if recorded_sizes => u64::from(class.instance_size),
            _ if is_array => 0,
            Some(layout) => align8(header + layout.shallow_fields),
            None => 0,
        };
        dump.types.push(TypeInfo::named(
            class.id,
            name.clone(),
            instance_size,
            false,
        ));
        let string = |id: u64| {
            records
                .string(id)
                .map_or_else(|| format!("<string {id:#x}>"), Cow::into_owned)
        };
        model_classes.push(HprofClass {
            id: class.id,
            name,
            super_id: class.super_id,
            loader_id: class.loader_id,
            dump_instance_size: class.instance_size,
            instance_size,
            statics: class
                .static_fields
                .iter()
                .map(|&(name, code, offset)| HprofStatic {
                    name: string(name),
                    type_code: code,
                    offset,
                })
                .collect(),
            fields: class
                .fields
                .iter()
                .map(|&(name, code)| (string(name), code))
                .collect(),
        });
    }
    let type_of_class = |index: usize| u32::try_from(index).ok().map(TypeIndex);
    let extra_type = |dump: &mut Dump<'data>, name: &str| -> Option<TypeIndex> {
        if let Some(index) = dump.types.iter().position(|info| info.name == name) {
            return type_of_class(index);
        }
        let index = u32::try_from(dump.types.len()).ok()?;
        dump.types
            .push(TypeInfo::named(0, name.to_owned(), 0, false));
        Some(TypeIndex(index))
    };
    // Class objects: one type per class, named by the class it describes
    // (`class java.lang.String`), size 0 like the objects.
    let mut class_object_types: Vec<Option<TypeIndex>> = Vec::with_capacity(classes.len());
    for (index, class) in classes.iter().enumerate() {
        let name = names.get(index).map_or("", String::as_str);
        class_object_types.push(u32::try_from(dump.types.len()).ok().map(TypeIndex));
        dump.types.push(TypeInfo::named(
            class.id,
            format!("{CLASS_OBJECT_PREFIX}{name}"),
            0,
            false,
        ));
    }

    // Pointer lists: one with no pointers, one per class with reference
    // fields (instances) and with reference statics (class objects), one
    // per object array length.
    let too_many = |offset: u64| {
        bad_value(
            offset,
            "pointer layouts",
            PointerList::MAX as u64,
            "more distinct layouts than the model holds",
        )
    };
    let none = dump
        .push_pointer_list(PointerOffsets::from_field_list(&[0]))
        .ok_or_else(|| too_many(0))?;
    let mut instance_lists: Vec<PointerList> = Vec::with_capacity(classes.len());
    for (index, layout) in layouts.iter().enumerate() {
        let list = if layout.pointers.is_empty() {
            none
        } else {
            let offset = classes.get(index).map_or(0, |class| class.offset);
            let list = dump
                .push_pointer_list_encoded(Cow::Owned(PointerOffsets::encode(
                    layout.pointers.iter().copied(),
                )))
                .ok_or_else(|| too_many(offset))?;
            if let Some(weak) = layout.weak {
                dump.weak_pointers.push((list, vec![weak]));
            }
            list
        };
        instance_lists.push(list);
    }

    let mut class_objects: Vec<Object> = Vec::with_capacity(classes.len());
    for (index, class) in classes.iter().enumerate() {
        let mut object = Object::new(class.id, 0, None, class.statics_at);
        object.set_contents_len(class.statics.len() as u64);
        object.set_type_index(class_object_types.get(index).copied().flatten());
        let statics = class
            .static_fields
            .iter()
            .filter(|(_, code, _)| *code == OBJECT_TYPE)
            .map(|&(_, _, offset)| offset);
        let list = if class
            .static_fields
            .iter()
            .any(|(_, code, _)| *code == OBJECT_TYPE)
        {
            dump.push_pointer_list_encoded(Cow::Owned(PointerOffsets::encode(statics)))
                .ok_or_else(|| too_many(class.offset))?
        } else {
            none
        };
        object.set_pointer_list(Some(list));
        class_objects.push(object);
    }
    // Made in the order the objects first need them, as one pass over the
    // objects would: primitive array types the dump has no class for, and
    // a pointer list per object array length.
    let mut primitive_types = [None; 256];
    let mut made = [false; 256];
    for &element in scans.iter().flat_map(|scan| &scan.elements) {
        let slot = usize::from(element);
        if made.get(slot).copied().unwrap_or(true) {
            continue;
        }
        let jvm = java_name(primitive_array_class(element));
        let type_index = match names.iter().position(|name| *name == jvm) {
            Some(index) => type_of_class(index),
            None => extra_type(&mut dump, &jvm),
        };
        if let (Some(made), Some(type_slot)) = (made.get_mut(slot), primitive_types.get_mut(slot)) {
            *made = true;
            *type_slot = type_index;
        }
    }
    let mut array_lists: HashMap<u32, PointerList, BuildIdHasher> = HashMap::default();
    for &(length, offset) in scans.iter().flat_map(|scan| &scan.array_lengths) {
        if let std::collections::hash_map::Entry::Vacant(entry) = array_lists.entry(length) {
            let list = dump
                .push_pointer_list_encoded(Cow::Owned(PointerOffsets::encode_run(
                    0,
                    id,
                    u64::from(length),
                )))
                .ok_or_else(|| too_many(offset))?;
            entry.insert(list);
        }
    }
    // Class ids are addresses: a multiplicative hash is enough, and much
    // cheaper than SipHash once per object.
    let fast_index: HashMap<u64, usize, BuildIdHasher> = class_index
        .iter()
        .map(|(&id, &index)| (id, index))
        .collect();
    let shapes: Vec<ClassShape> = (0..classes.len())
        .map(|index| ClassShape {
            size: dump.types.get(index).map_or(0, |info| info.size),
            stored: layouts.get(index).map_or(0, |layout| layout.stored),
            type_index: type_of_class(index),
            list: instance_lists.get(index).copied(),
        })
        .collect();

    // HotSpot writes objects in address order, and class objects come
    // first. When the objects are in order (the usual case), each segment
    // writes its objects and the class objects between them straight into
    // their final places; otherwise the objects are written in file order,
    // sorted, and the class objects merged in.
    class_objects.sort_unstable_by_key(|object| object.address);
    let mut in_order = true;
    let mut previous_last: Option<u64> = None;
    for scan in &scans {
        in_order &= scan.sorted;
        if let (Some(last), Some(first)) = (previous_last, scan.first_id) {
            in_order &= last <= first;
        }
        previous_last = scan.last_id.or(previous_last);
    }
    let placed: &[Object] = if in_order { &class_objects } else { &[] };
    // How many of the placed class objects come before an object at `id`
    // (a class object at the same address comes after it).
    let rank = |id: Option<u64>| id.map_or(0, |id| placed.partition_point(|c| c.address < id));

    // The objects, written in parallel into the table, each segment into
    // its own part, without an intermediate copy; on an error, the one
    // earliest in the file.
    let total = object_count + classes.len();
    let mut objects: Vec<Object> = Vec::new();
    if objects.try_reserve_exact(total).is_err() {
        return Err(Error::new(
            0,
            ErrorKind::TooManyObjects { max: MAX_OBJECTS },
        ));
    }
    let mut rest = objects
        .spare_capacity_mut()
        .get_mut(..total)
        .unwrap_or_default();
    let mut parts = Vec::with_capacity(scans.len());
    let mut before = 0; // class objects placed before the next segment
    for (scan, &(offset, body)) in scans.iter().zip(&records.segments) {
        let after = if scan.objects > 0 {
            rank(scan.last_id)
        } else {
            before
        };
        let len = scan.objects + after.saturating_sub(before);
        let (part, tail) = rest.split_at_mut(len.min(rest.len()));
        parts.push((offset, body, len, before, part));
        rest = tail;
        before = after;
    }
    let filled: Vec<Result<(), Error>> = parts
        .into_par_iter()
        .map(|(offset, body, expected, next_class, part)| {
            let mut fill = Fill {
                id_size,
                header,
                reference,
                class_index: &fast_index,
                shapes: &shapes,
                array_lists: &array_lists,
                primitive_types: &primitive_types,
                none,
                class_objects: placed,
                next_class,
                slots: part.iter_mut(),
                written: 0,
            };
            walk_segment(body, offset, id_size, &mut fill)?;
            if fill.written != expected {
                return Err(bad_value(
                    offset,
                    "object records",
                    fill.written as u64,
                    "not as many as the first reading of the segment counted",
                ));
            }
            Ok(())
        })
        .collect();
    filled.into_iter().collect::<Result<Vec<()>, Error>>()?;
    // The class objects after the last object (all of them when the
    // objects were out of order).
    let trailing = placed.get(before..).unwrap_or(&[]);
    let unplaced: &[Object] = if in_order { trailing } else { &class_objects };
    let tail = std::mem::take(&mut rest);
    if tail.len() != unplaced.len() {
        return Err(bad_value(
            0,
            "objects",
            total as u64,
            "the segments' parts and the class objects do not fill the table",
        ));
    }
    for (slot, object) in tail.iter_mut().zip(unplaced) {
        slot.write(*object);
    }
    // SAFETY: every segment's walk wrote exactly the entries of its part
    // (checked above), the parts are consecutive from the start of the
    // table, and the class objects left over filled the rest: all `total`
    // entries are written.
    unsafe { objects.set_len(total) };
    if !in_order {
        // Sort the objects, then merge the class objects in.
        let (objects_part, classes_part) = objects.split_at_mut(object_count);
        objects_part.par_sort_unstable_by_key(|object| object.address);
        let _ = classes_part;
        objects.truncate(object_count);
        objects = merge_by_address(class_objects, objects);
    }
    // `check_overlaps`, in parallel over chunks (each with the next
    // chunk's first object); the first bad pair in the table wins.
    const CHUNK: usize = 1 << 16;
    let bad = (0..objects.len().div_ceil(CHUNK))
        .into_par_iter()
        .find_map_first(|chunk| {
            let start = chunk * CHUNK;
            let end = start.saturating_add(CHUNK + 1).min(objects.len());
            let mut pairs = objects.get(start..end)?.windows(2);
            pairs
                .position(|pair| {
                    matches!(pair, [first, second]
                        if first.address == second.address || second.address < first.end())
                })
                .map(|index| start + index)
        });
    if let Some(index) = bad {
        check_overlaps(objects.get(index..index + 2).unwrap_or(&[]))?;
    }
    dump.objects = objects;

    roots(&mut dump, records, &model_classes, &class_index, &raw_roots);

    let mut skipped: Vec<(u8, u64)> = records.skipped.iter().map(|(&t, &n)| (t, n)).collect();
    skipped.sort_unstable();
    let threads = raw_roots
        .iter()
        .filter(|root| root.tag == sub::ROOT_THREAD_OBJECT)
        .map(|root| HprofThread {
            serial: root.thread_serial,
            object_id: root.id,
            trace_serial: root.extra,
        })
        .collect();
    dump.extras = FormatExtras::new(HprofDump {
        version: records.version.clone(),
        id_size,
        reference_size: reference as u8,
        header_size: header as u8,
        size_rule: rule,
        time_ms: records.time_ms,
        classes: model_classes,
        segments: records.segments.len() as u64,
        strings: records.strings.len() as u64,
        skipped_records: skipped,
        threads,
        class_index,
        string_layout,
    });
    Ok(dump)
}

/// Hashes a `u64` id by one multiplication (Fibonacci hashing): ids are
/// addresses, spread enough for a hash table, and the table's own keys are
/// compared in full.
#[derive(Clone, Copy, Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (value ^ (value >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// [`IdHasher`]'s builder.
type BuildIdHasher = std::hash::BuildHasherDefault<IdHasher>;

/// Two address-sorted runs of objects as one, in `b`'s allocation: `a`
/// (the few class objects) is merged in from the back, so the big table is
/// neither copied nor reallocated more than once.
fn merge_by_address(a: Vec<Object>, mut b: Vec<Object>) -> Vec<Object> {
    let Some(&first) = a.first() else {
        return b;
    };
    let mut i = b.len();
    b.resize(b.len() + a.len(), first);
    let mut j = a.len();
    let mut k = b.len();
    while j > 0 && k > 0 {
        let from_b = i > 0
            && matches!((b.get(i - 1), a.get(j - 1)), (Some(x), Some(y)) if x.address > y.address);
        let next = if from_b {
            i -= 1;
            b.get(i).copied()
        } else {
            j -= 1;
            a.get(j).copied()
        };
        k -= 1;
        if let (Some(slot), Some(next)) = (b.get_mut(k), next) {
            *slot = next;
        }
    }
    b
}

/// The [`ContextRef`] of thread `serial`.
fn thread_ref(serial: u32) -> ContextRef {
    ContextRef {
        noun: CONTEXT_NOUN,
        id: u64::from(serial),
    }
}

/// Fills the roots and the threads: each thread's frame roots together
/// (its [`ExecutionContext::frame_roots`]), then the other roots in the
/// order of the file.
fn roots(
    dump: &mut Dump<'_>,
    records: &Records<'_>,
    classes: &[HprofClass],
    class_index: &HashMap<u64, usize>,
    raw_roots: &[RawRoot],
) {
    let id_size = records.id_size;
    let value_root = |kind: RootKind, name: Option<String>, value: u64| {
        let mut root = Root::new(kind, 0, &[]);
        if let Some(name) = name {
            root.name = name;
        }
        root.pointers = Pointers::Exact(PointerOffsets::from_field_list(&[0]));
        root.values = vec![value];
        root
    };
    // Threads, in the order of their THREAD OBJECT roots.
    let mut threads: Vec<(u32, u32)> = Vec::new();
    for root in raw_roots {
        if root.tag == sub::ROOT_THREAD_OBJECT && !threads.iter().any(|t| t.0 == root.thread_serial)
        {
            threads.push((root.thread_serial, root.extra));
        }
    }
    // Frame lists by thread serial: from the THREAD OBJECT's trace, else
    // any trace of the thread.
    let frames_of = |serial: u32, trace: u32| -> Vec<ContextFrame> {
        let frames = records
            .traces
            .get(&trace)
            .or_else(|| {
                records
                    .traces
                    .values()
                    .find(|(thread, frames)| *thread == serial && !frames.is_empty())
            })
            .map_or(&[][..], |(_, frames)| *frames);
        frames
            .chunks_exact(usize::from(id_size))
            .enumerate()
            .map(|(depth, frame)| ContextFrame {
                depth: depth as u64,
                ..records.frame(read_id(frame, id_size))
            })
            .collect()
    };
    let mut contexts = Vec::new();
    for &(serial, trace) in &threads {
        let frames = frames_of(serial, trace);
        let start = dump.roots.len();
        let mut frame_roots: Vec<&RawRoot> = raw_roots
            .iter()
            .filter(|root| {
                root.thread_serial == serial
                    && (root.tag == sub::ROOT_JAVA_FRAME
                        || (root.tag == sub::ROOT_JNI_LOCAL && root.extra != u32::MAX))
            })
            .collect();
        frame_roots.sort_by_key(|root| root.extra);
        for root in frame_roots {
            let depth = u64::from(root.extra);
            let function = frames
                .get(root.extra as usize)
                .map_or_else(|| "?".to_owned(), |frame| frame.function.clone());
            let kind = RootKind::Frame {
                context: thread_ref(serial),
                depth,
                function,
            };
            let name = if root.tag == sub::ROOT_JNI_LOCAL {
                Some(format!("JNI local in {}", kind.default_name(0)))
            } else {
                None
            };
            dump.roots.push(value_root(kind, name, root.id));
        }
        contexts.push(ExecutionContext {
            id: u64::from(serial),
            name: String::new(),
            state: String::new(),
            wait_reason: String::new(),
            system: false,
            frames,
            frame_roots: start..dump.roots.len(),
        });
    }
    let known_thread = |serial: u32| threads.iter().any(|t| t.0 == serial);
    for root in raw_roots {
        let context = (root.thread_serial != 0 || known_thread(root.thread_serial))
            .then(|| thread_ref(root.thread_serial));
        let held = |what: &'static str| RootKind::Held { what, context };
        let (kind, name) = match root.tag {
            sub::ROOT_JAVA_FRAME if known_thread(root.thread_serial) => continue,
            sub::ROOT_JNI_LOCAL if known_thread(root.thread_serial) && root.extra != u32::MAX => {
                continue
            }
            sub::ROOT_JAVA_FRAME => (held("java frame"), None),
            sub::ROOT_JNI_LOCAL => (held("JNI local"), None),
            sub::ROOT_JNI_GLOBAL => (
                RootKind::Held {
                    what: "JNI global",
                    context: None,
                },
                None,
            ),
            sub::ROOT_STICKY_CLASS => {
                let name = class_index
                    .get(&root.id)
                    .and_then(|&index| classes.get(index))
                    .map(|class| format!("system class {}", class.name));
                (
                    RootKind::Held {
                        what: "system class",
                        context: None,
                    },
                    name,
                )
            }
            sub::ROOT_THREAD_OBJECT => (held("thread object"), None),
            sub::ROOT_THREAD_BLOCK => (held("thread block"), None),
            sub::ROOT_NATIVE_STACK => (held("native stack"), None),
            sub::ROOT_MONITOR_USED => (
                RootKind::Held {
                    what: "monitor used",
                    context: None,
                },
                None,
            ),
            sub::ROOT_JNI_MONITOR => (held("JNI monitor"), None),
            sub::ROOT_INTERNED_STRING => (other("interned string"), None),
            sub::ROOT_FINALIZING => (other("finalizing"), None),
            sub::ROOT_DEBUGGER => (other("debugger"), None),
            sub::ROOT_REFERENCE_CLEANUP => (other("reference cleanup"), None),
            sub::ROOT_VM_INTERNAL => (other("VM internal"), None),
            _ => (other("unknown root"), None),
        };
        dump.roots.push(value_root(kind, name, root.id));
    }
    if !threads.is_empty() {
        dump.contexts = Some(ExecutionContexts {
            noun: CONTEXT_NOUN,
            contexts,
            os_threads: 0,
        });
    }
}

/// A root the dump only names.
fn other(description: &str) -> RootKind {
    RootKind::Other {
        description: description.to_owned(),
    }
}
