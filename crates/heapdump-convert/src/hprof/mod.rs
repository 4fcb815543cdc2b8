//! HPROF (`JAVA PROFILE 1.0.2`, 8-byte ids) for VisualVM, Eclipse MAT and
//! other Java heap viewers.
//!
//! # How a heap becomes a Java heap
//!
//! - **Objects** keep their addresses as ids. Each becomes an instance of a
//!   class standing for its kind: its type when the dump names one
//!   (`main.Entry`), else its allocation site (`obj48[?]@site17`), else its
//!   size and pointer layout (`obj48[?]`, `obj48[p,_,_,_,_,_]`); a group
//!   spanning several sizes gets one class per size (`main.Entry (48 B)`).
//!   The class's fields cover the object word by word, named by offset
//!   (`f0x10`): pointer words are object references to the start of the
//!   object they point into (interior pointers resolved), other words
//!   `long` (`int` for 4-byte pointers), tail bytes `byte`. Objects with
//!   more words than a class can declare (32,000) keep only their pointer
//!   words as fields, or, with more pointers than that, become `Object[]`s
//!   (`obj1048576[?][]`) whose element `i` is word `i`.
//! - **Sizes.** `java.lang.Object`'s class dump declares 4 bytes, which puts
//!   VisualVM in its "new size" mode: it takes each class's declared size as
//!   the shallow size of its instances, verbatim, and counts references as
//!   4 bytes in arrays, so an `Object[]` of `(size − 8) / 4` elements is
//!   `size` bytes. Every object's shallow size in VisualVM is its size in
//!   the dump (objects of 2 GiB and more, which VisualVM cannot size, are
//!   the exception). Eclipse MAT recomputes sizes from the layout and shows
//!   approximations.
//! - **Roots.** The words of global roots (module data segments; Go's data
//!   and BSS) become static fields of one class per segment
//!   (`globals.leaky-service@0x5581…`, `globals.data`), named after the
//!   symbol when the executable is given; every class is a sticky-class
//!   root. Each thread (Rust) or goroutine (Go) becomes a
//!   `java.lang.Thread` (size 0) with a thread-object root and a stack
//!   trace (a goroutine's frames named after their functions; a Rust
//!   thread's stack as one frame), and each object its stack points at a
//!   Java-frame root of that frame. Every other root is `ROOT UNKNOWN`.
//! - **Unreachable objects** are left out by default, as MAT does: VisualVM
//!   intersects the dominators of every referrer, reachable or not, so one
//!   garbage object pointing into a live structure makes it retain almost
//!   nothing. Without them, VisualVM's retained sizes equal
//!   heapdump's. [`Options::keep_unreachable`] writes them too, each
//!   garbage structure held by a `ROOT UNKNOWN` on its entry object (the
//!   one no other garbage points at, or one per garbage cycle); retained
//!   sizes then count garbage referrers too. In a dump whose objects are
//!   all alive (a JDK's HPROF: `Capabilities::unreached_objects_hold`),
//!   the unreachable objects are held by memory the dump leaves out, and
//!   so is every written object they refer to: each of those is written as
//!   a `ROOT UNKNOWN` and a static of `roots.outside`, so that its
//!   dominators (in heapdump and VisualVM) stay what they were.
//! - **Weak references** (Java's `Reference.referent`) are written as
//!   plain references to written objects: the classes here are no
//!   weak-reference classes. The objects they point at are reachable, and
//!   dominators count weak referrers anyway (heapdump and VisualVM), so
//!   reachability and retained sizes are unchanged.
//! - **Allocation sites** become stack traces (raw return addresses as
//!   `0x…` methods until they are symbolised) referenced by their objects.
//!
//! The file is streamed: the heap dump goes out in `HEAP DUMP SEGMENT`s of
//! at most [`Options::segment_bytes`] (1 MiB, as JDK 11+ writes), each
//! non-empty, then `HEAP DUMP END`; no record exceeds 4 GiB, so heaps of any
//! size convert.

mod encode;

pub use encode::HEADER;
mod plan;

use std::io::{self, Write};

use heapdump_reader::HeapGraph;
use heapdump_symbols::RootNamer;

pub use plan::{DataClass, Plan, Representation};

use encode::{basic, basic_size, sub, tag, PutBe, RecordWriter, SegmentWriter, ID_SIZE};
use plan::{FieldKind, FieldSpec, FrameSpec, NO_CLASS};

/// How to convert.
#[derive(Clone, Debug)]
pub struct Options {
    /// Write unreachable objects too, each garbage structure held by a
    /// `ROOT UNKNOWN` (see the module docs). Off by default.
    pub keep_unreachable: bool,
    /// Largest `HEAP DUMP SEGMENT` body in bytes (a sub-record larger than
    /// this gets a segment of its own). 1 MiB by default; clamped to 64 KiB
    /// … 4 GiB − 1.
    pub segment_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            keep_unreachable: false,
            segment_bytes: 1 << 20,
        }
    }
}

/// What [`Plan::write`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Heap objects written.
    pub objects: u64,
    /// Their bytes: the total VisualVM shows.
    pub bytes: u64,
    /// Data classes written (one per kind and size of object).
    pub classes: u64,
    /// Unreachable objects left out.
    pub dropped_objects: u64,
    /// Their bytes.
    pub dropped_bytes: u64,
    /// Unreachable objects written as `ROOT UNKNOWN`s (with
    /// [`Options::keep_unreachable`]).
    pub unreachable_roots: u64,
    /// Threads and goroutines written as `java.lang.Thread`s.
    pub threads: u64,
    /// GC root records written.
    pub gc_roots: u64,
    /// Pointer words of very large objects that no field could hold,
    /// summed over objects.
    pub dropped_references: u64,
    /// `HEAP DUMP SEGMENT` records written.
    pub segments: u64,
    /// The largest segment's body length.
    pub largest_segment: u64,
    /// Bytes in the file.
    pub file_bytes: u64,
}

/// Converts `graph` to HPROF on `out` with `options`: [`Plan::new`] then
/// [`Plan::write`]. `namer` names static fields (global roots' words);
/// `progress(bytes_done, bytes_total)` is called as objects are written.
pub fn write_hprof<W: Write>(
    graph: &HeapGraph<'_>,
    namer: &RootNamer<'_>,
    options: &Options,
    out: W,
    progress: &mut dyn FnMut(u64, u64),
) -> io::Result<Report> {
    Plan::new(graph, namer, options).write(out, progress)
}

/// Bytes of object contents between two progress calls.
const PROGRESS_STEP: u64 = 16 << 20;

/// Interned UTF8 strings: the id of each, in first-use order.
#[derive(Default)]
struct Strings {
    ids: std::collections::HashMap<String, u64>,
    order: Vec<String>,
}

impl Strings {
    fn add(&mut self, text: &str) {
        if !self.ids.contains_key(text) {
            let id = (self.order.len() as u64 + 1) * 8;
            self.ids.insert(text.to_owned(), id);
            self.order.push(text.to_owned());
        }
    }

    fn id(&self, text: &str) -> u64 {
        self.ids.get(text).copied().unwrap_or(0)
    }
}

/// The names of `class`'s instance fields, in the order of its fields: as
/// the dump names the fields of the class's objects (Go fields from DWARF:
/// `ID`, `Payload`, `[2].elem`; Rust fields from type layouts), the later
/// words of a field of several words by their offset in it (a `String`
/// field `user`: `user`, `user+0x8`, `user+0x10`), else `f0x10` by offset;
/// each name once.
fn field_names(dump: &heapdump_reader::Dump<'_>, class: &DataClass) -> Vec<String> {
    let sample = dump.objects.get(class.sample);
    let mut names = std::collections::HashSet::new();
    // Each name's first word.
    let mut starts = std::collections::HashMap::new();
    class
        .fields
        .iter()
        .map(|field| {
            let named = sample
                .and_then(|object| dump.field_name(object, field.offset))
                .filter(|name| !name.is_empty());
            let name = named.map(|name| match starts.get(&name) {
                Some(&start) => format!("{name}+{:#x}", field.offset.saturating_sub(start)),
                None => {
                    starts.insert(name.clone(), field.offset);
                    name
                }
            });
            match name {
                Some(name) if names.insert(name.clone()) => name,
                _ => format!("f{:#x}", field.offset),
            }
        })
        .collect()
}

/// Longest UTF8 string written; longer names are cut.
const MAX_STRING: usize = 4096;

fn clip(text: &str) -> &str {
    if text.len() <= MAX_STRING {
        return text;
    }
    let mut end = MAX_STRING;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

impl Plan<'_, '_> {
    /// Writes the HPROF file to `out` (wrap files in a `BufWriter`),
    /// calling `progress(bytes_done, bytes_total)` as objects are written.
    pub fn write<W: Write>(
        &self,
        out: W,
        progress: &mut dyn FnMut(u64, u64),
    ) -> io::Result<Report> {
        let graph = self.graph;
        let dump = graph.dump();
        let word_type = if self.word_size == 4 {
            basic::INT
        } else {
            basic::LONG
        };
        let mut records = RecordWriter::new(out, dump.info.time_unix_ns / 1_000_000)?;

        // Every string first.
        let mut strings = Strings::default();
        strings.add("()");
        strings.add("");
        for def in &self.other_classes {
            strings.add(clip(&def.vm_name));
            for (name, _) in &def.statics {
                strings.add(clip(name));
            }
            for (name, _) in &def.fields {
                strings.add(clip(name));
            }
        }
        let class_fields: Vec<Vec<String>> = self
            .classes
            .iter()
            .map(|class| match class.representation {
                Representation::Instance => field_names(dump, class),
                Representation::ObjectArray { .. } => Vec::new(),
            })
            .collect();
        for (class, names) in self.classes.iter().zip(&class_fields) {
            strings.add(clip(&class.vm_name));
            for name in names {
                strings.add(clip(name));
            }
        }
        let frames = self
            .threads
            .iter()
            .flat_map(|thread| thread.frames.iter())
            .chain(self.sites.values().flat_map(|site| site.frames.iter()));
        for frame in frames.clone() {
            strings.add(clip(&frame.method));
            strings.add(clip(&frame.file));
        }
        for text in &strings.order {
            records.record(tag::UTF8, |body| {
                body.id(strings.id(text));
                body.extend_from_slice(text.as_bytes());
            })?;
        }

        // Classes.
        let classes = self
            .other_classes
            .iter()
            .map(|def| (def.serial, def.id, def.vm_name.as_str()))
            .chain(
                self.classes
                    .iter()
                    .map(|class| (class.serial, class.id, class.vm_name.as_str())),
            );
        for (serial, id, name) in classes.clone() {
            records.record(tag::LOAD_CLASS, |body| {
                body.u4(serial);
                body.id(id);
                body.u4(1);
                body.id(strings.id(clip(name)));
            })?;
        }

        // Stack traces: the empty one, threads', allocation sites'.
        records.record(tag::STACK_TRACE, |body| {
            body.u4(1);
            body.u4(0);
            body.u4(0);
        })?;
        let mut next_frame_id = 0u64;
        let mut trace = |records: &mut RecordWriter<W>,
                         serial: u32,
                         thread: u32,
                         frames: &[FrameSpec]|
         -> io::Result<()> {
            let first = next_frame_id + 1;
            for frame in frames {
                next_frame_id += 1;
                let class_serial = self
                    .code_classes
                    .get(frame.class)
                    .and_then(|&index| self.other_classes.get(index))
                    .map_or(1, |def| def.serial);
                records.record(tag::STACK_FRAME, |body| {
                    body.id(next_frame_id * 8);
                    body.id(strings.id(clip(&frame.method)));
                    body.id(strings.id("()"));
                    body.id(strings.id(clip(&frame.file)));
                    body.u4(class_serial);
                    body.u4(frame.line as u32);
                })?;
            }
            records.record(tag::STACK_TRACE, |body| {
                body.u4(serial);
                body.u4(thread);
                body.u4(frames.len() as u32);
                for id in first..first + frames.len() as u64 {
                    body.id(id * 8);
                }
            })
        };
        for thread in &self.threads {
            trace(
                &mut records,
                thread.trace_serial,
                thread.serial,
                &thread.frames,
            )?;
        }
        let mut sites: Vec<_> = self.sites.values().collect();
        sites.sort_by_key(|site| site.serial);
        for site in sites {
            trace(&mut records, site.serial, 0, &site.frames)?;
        }

        // The heap dump: classes, roots, threads, objects.
        let mut gc_roots = 0u64;
        let mut dropped_references = 0u64;
        let mut segments = SegmentWriter::new(&mut records, self.segment_bytes);
        for def in &self.other_classes {
            let statics: Vec<(u64, u8, u64)> = def
                .statics
                .iter()
                .map(|(name, value)| (strings.id(clip(name)), basic::OBJECT, *value))
                .collect();
            let fields: Vec<(u64, u8)> = def
                .fields
                .iter()
                .map(|(name, kind)| (strings.id(clip(name)), *kind))
                .collect();
            segments
                .small(|buf| class_dump(buf, def.id, def.super_id, def.size, &statics, &fields))?;
        }
        let object_class_id = self.other_classes.first().map_or(0, |def| def.id);
        for (class, names) in self.classes.iter().zip(&class_fields) {
            let (size, fields): (u32, Vec<(u64, u8)>) = match class.representation {
                Representation::Instance => (
                    class.size.min(i32::MAX as u64) as u32,
                    class
                        .fields
                        .iter()
                        .zip(names)
                        .map(|(field, name)| {
                            let kind = match field.kind {
                                FieldKind::Reference => basic::OBJECT,
                                FieldKind::Word => word_type,
                                FieldKind::Byte => basic::BYTE,
                            };
                            (strings.id(clip(name)), kind)
                        })
                        .collect(),
                ),
                Representation::ObjectArray { .. } => (0, Vec::new()),
            };
            segments.small(|buf| class_dump(buf, class.id, object_class_id, size, &[], &fields))?;
        }
        for (_, id, _) in classes {
            gc_roots += 1;
            segments.small(|buf| {
                buf.u1(sub::ROOT_STICKY_CLASS);
                buf.id(id);
            })?;
        }
        for thread in &self.threads {
            gc_roots += 1;
            segments.small(|buf| {
                buf.u1(sub::ROOT_THREAD_OBJECT);
                buf.id(thread.object_id);
                buf.u4(thread.serial);
                buf.u4(thread.trace_serial);
            })?;
            for &(object, frame) in &thread.locals {
                gc_roots += 1;
                segments.small(|buf| {
                    buf.u1(sub::ROOT_JAVA_FRAME);
                    buf.id(object);
                    buf.u4(thread.serial);
                    buf.u4(frame);
                })?;
            }
        }
        let roots = self.unknown_roots.iter().chain(&self.outside_roots);
        for &object in roots.chain(&self.unreachable_roots) {
            gc_roots += 1;
            segments.small(|buf| {
                buf.u1(sub::ROOT_UNKNOWN);
                buf.id(object);
            })?;
        }
        for thread in &self.threads {
            segments.small(|buf| {
                buf.u1(sub::INSTANCE_DUMP);
                buf.id(thread.object_id);
                buf.u4(1);
                buf.id(self.thread_class_id);
                buf.u4(8);
                buf.u8(thread.tid);
            })?;
        }

        let total = self.bytes();
        let mut done = 0u64;
        let mut reported = 0u64;
        progress(0, total);
        for (index, object) in dump.objects.iter().enumerate() {
            let Some(&class_index) = self.object_class.get(index) else {
                break;
            };
            if class_index == NO_CLASS {
                continue;
            }
            let Some(class) = self.classes.get(class_index as usize) else {
                continue;
            };
            dropped_references += class.dropped_pointer_words;
            let trace = self.trace_of(object);
            match class.representation {
                Representation::Instance => {
                    let values: u64 = class
                        .fields
                        .iter()
                        .map(|field| match field.kind {
                            FieldKind::Reference => u64::from(ID_SIZE),
                            FieldKind::Word => self.word_size,
                            FieldKind::Byte => 1,
                        })
                        .sum();
                    segments.small(|buf| {
                        buf.u1(sub::INSTANCE_DUMP);
                        buf.id(object.address);
                        buf.u4(trace);
                        buf.id(class.id);
                        buf.u4(values as u32);
                        for field in &class.fields {
                            self.put_field(buf, object, field);
                        }
                    })?;
                }
                Representation::ObjectArray {
                    elements,
                    positional,
                } => {
                    let len = 1 + 8 + 4 + 4 + 8 + elements * u64::from(ID_SIZE);
                    segments.streamed(len, |out| {
                        self.write_array(out, object, class, trace, elements, positional)
                    })?;
                }
            }
            done = done.saturating_add(object.size);
            if done - reported >= PROGRESS_STEP {
                reported = done;
                progress(done.min(total), total);
            }
        }
        let (segment_count, largest_segment) = segments.finish()?;
        progress(total, total);
        let file_bytes = records.written();
        records.finish()?;
        Ok(Report {
            objects: self.objects(),
            bytes: self.bytes(),
            classes: self.classes.len() as u64,
            dropped_objects: self.dropped_objects(),
            dropped_bytes: self.dropped_bytes(),
            unreachable_roots: self.unreachable_roots(),
            threads: self.threads(),
            gc_roots,
            dropped_references,
            segments: segment_count,
            largest_segment,
            file_bytes,
        })
    }

    /// Appends the value of `field` of `object`.
    fn put_field(&self, buf: &mut Vec<u8>, object: &heapdump_reader::Object, field: &FieldSpec) {
        match field.kind {
            FieldKind::Reference => buf.id(self.reference_at(object, field.offset)),
            FieldKind::Word => {
                let value = self.word(object, field.offset);
                if self.word_size == 4 {
                    buf.u4(value as u32);
                } else {
                    buf.u8(value);
                }
            }
            FieldKind::Byte => buf.u1(usize::try_from(field.offset)
                .ok()
                .and_then(|at| self.graph.dump().contents(object).get(at))
                .copied()
                .unwrap_or(0)),
        }
    }

    /// Streams the OBJECT ARRAY DUMP of `object`.
    fn write_array(
        &self,
        out: &mut dyn Write,
        object: &heapdump_reader::Object,
        class: &DataClass,
        trace: u32,
        elements: u64,
        positional: bool,
    ) -> io::Result<()> {
        let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
        buf.u1(sub::OBJECT_ARRAY_DUMP);
        buf.id(object.address);
        buf.u4(trace);
        buf.u4(elements as u32);
        buf.id(class.id);
        // Element i is word i when the plan says so, else the pointers in
        // order.
        let mut pointers = class.fields.iter().peekable();
        for element in 0..elements {
            let value = if positional {
                match pointers.peek() {
                    Some(field) if field.offset / self.word_size == element => {
                        pointers.next();
                        self.reference_at(object, element * self.word_size)
                    }
                    _ => 0,
                }
            } else {
                pointers
                    .next()
                    .map_or(0, |field| self.reference_at(object, field.offset))
            };
            buf.id(value);
            if buf.len() >= 64 << 10 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)
    }
}

/// Appends a CLASS DUMP sub-record.
fn class_dump(
    buf: &mut Vec<u8>,
    id: u64,
    super_id: u64,
    size: u32,
    statics: &[(u64, u8, u64)],
    fields: &[(u64, u8)],
) {
    buf.u1(sub::CLASS_DUMP);
    buf.id(id);
    buf.u4(1);
    buf.id(super_id);
    for _ in 0..5 {
        // Loader, signers, protection domain, two reserved.
        buf.id(0);
    }
    buf.u4(size);
    buf.u2(0);
    buf.u2(statics.len() as u16);
    for &(name, kind, value) in statics {
        buf.id(name);
        buf.u1(kind);
        match basic_size(kind) {
            1 => buf.u1(value as u8),
            2 => buf.u2(value as u16),
            4 => buf.u4(value as u32),
            _ => buf.u8(value),
        }
    }
    buf.u2(fields.len() as u16);
    for &(name, kind) in fields {
        buf.id(name);
        buf.u1(kind);
    }
}
