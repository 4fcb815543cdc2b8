//! What goes into the HPROF file, decided before the first byte is written:
//! which objects, the Java class of each, the classes' field layouts, the
//! synthetic classes and threads that carry the roots, the ids, and every
//! string (HPROF wants all strings before the heap dump).

use std::collections::HashMap;

use heapdump_reader::{
    ContextRef, Dump, HeapGraph, Object, ObjectClass, ObjectId, Pointers, RootKind, Stack,
};
use heapdump_symbols::RootNamer;

use super::encode::basic;
use super::Options;
use heapdump_analysis::reach;

/// Marks an object that is not written (unreachable and dropped).
pub(crate) const NO_CLASS: u32 = u32::MAX;

/// Most fields (static or instance) one class declares: VisualVM reads the
/// counts as signed 16-bit numbers.
pub(crate) const MAX_FIELDS: usize = 32_000;

/// Most frames one stack trace keeps.
const MAX_FRAMES: usize = 1024;

/// Size of `java.lang.Object` in its CLASS DUMP. A size above 0 switches
/// VisualVM to reading every class's size verbatim ("new size" mode, see
/// the crate docs); 4 makes its reference size 4, so that an `Object[]` of
/// `n` elements is `8 + 4n` bytes, exactly, for even `n`.
pub(crate) const OBJECT_CLASS_SIZE: u32 = 4;

/// Largest instance size VisualVM can show (it reads sizes as `int`).
const MAX_INSTANCE_SIZE: u64 = i32::MAX as u64;

/// How the objects of a [`DataClass`] are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Representation {
    /// An INSTANCE DUMP whose fields cover the object (or, for very large
    /// objects, its pointer words); the class's size is the object's size.
    Instance,
    /// An OBJECT ARRAY DUMP of `elements` references (element `i` is the
    /// object's word `i` when it is a pointer, else null): for objects with
    /// more pointer words than a class can declare fields. VisualVM sizes it
    /// `8 + 4 × elements`, the object's size.
    ObjectArray {
        /// Number of elements.
        elements: u64,
        /// Element `i` is the object's word `i` (when there is room for
        /// every word and the pointers are on the word grid); otherwise the
        /// pointers in order.
        positional: bool,
    },
}

/// The kind of one instance field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// A pointer word: an object reference to the target's start.
    Reference,
    /// Any other pointer-sized word: `long` (8-byte words) or `int`.
    Word,
    /// One byte of the tail after the last whole word.
    Byte,
}

/// One instance field: the object's bytes at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FieldSpec {
    pub offset: u64,
    pub kind: FieldKind,
}

/// A Java class standing for one kind of heap object: a type, an allocation
/// site or a size-and-layout shape, at one object size.
#[derive(Clone, Debug)]
pub struct DataClass {
    /// The class name as VisualVM shows it (object-array classes end in
    /// `[]`).
    pub name: String,
    /// The size of every object of the class.
    pub size: u64,
    /// Objects written as this class.
    pub instances: u64,
    /// Their bytes (`instances × size`).
    pub bytes: u64,
    /// How the objects are written.
    pub representation: Representation,
    /// Pointer words whose references a class could not declare (objects
    /// lose them), per object.
    pub dropped_pointer_words: u64,
    pub(crate) vm_name: String,
    pub(crate) fields: Vec<FieldSpec>,
    /// The first object of the class (an index in the dump's objects):
    /// the names of its fields name the class's.
    pub(crate) sample: usize,
    pub(crate) id: u64,
    pub(crate) serial: u32,
}

/// A synthetic class other than a data class: the `java.*` classes viewers
/// expect, holders of global roots, classes of stack frames.
#[derive(Clone, Debug)]
pub(crate) struct ClassDef {
    pub vm_name: String,
    pub id: u64,
    pub serial: u32,
    pub super_id: u64,
    pub size: u32,
    /// Static fields: name and the object id they hold.
    pub statics: Vec<(String, u64)>,
    /// Instance fields: name and basic type.
    pub fields: Vec<(String, u8)>,
}

/// One frame of a stack trace as HPROF shows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FrameSpec {
    /// Index into the code classes ([`Plan::code_classes`]).
    pub class: usize,
    pub method: String,
    pub file: String,
    /// > 0, or -1 when unknown.
    pub line: i32,
}

/// A thread (an OS thread of a Rust service or a goroutine): a
/// `java.lang.Thread` instance, its stack trace, and its stack's roots.
#[derive(Clone, Debug)]
pub(crate) struct ThreadSpec {
    pub serial: u32,
    pub trace_serial: u32,
    pub object_id: u64,
    pub name: String,
    /// OS thread id or goroutine id.
    pub tid: u64,
    pub frames: Vec<FrameSpec>,
    /// (object id, frame number) of each object its stack points at.
    pub locals: Vec<(u64, u32)>,
}

/// An allocation-site stack trace.
#[derive(Clone, Debug)]
pub(crate) struct SiteTrace {
    pub serial: u32,
    pub frames: Vec<FrameSpec>,
}

/// Where a thread comes from: an OS thread's stack root, or the frames of
/// an execution context (a goroutine).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ThreadKey {
    Os(u64),
    Context(ContextRef),
}

/// The holder class of a root word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Holder {
    /// A global root (by root index): a module segment, a section.
    Global(usize),
    /// A thread's or goroutine's stack (by thread index).
    Thread(usize),
    /// Any other root.
    Other,
}

/// What groups objects into one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Group {
    Type(u32),
    Site(u64),
    Shape,
}

/// The key of a data class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ClassKey<'data> {
    group: Group,
    size: u64,
    /// The exact pointer layout, when the dump gives one.
    pointers: Option<&'data [u8]>,
    header: bool,
}

/// Everything the writer needs, computed from a [`HeapGraph`] by
/// [`Plan::new`].
pub struct Plan<'g, 'data> {
    pub(crate) graph: &'g HeapGraph<'data>,
    /// Data class of each object, [`NO_CLASS`] when it is not written.
    pub(crate) object_class: Vec<u32>,
    pub(crate) classes: Vec<DataClass>,
    /// `java.*` classes, then holders, then code classes.
    pub(crate) other_classes: Vec<ClassDef>,
    pub(crate) threads: Vec<ThreadSpec>,
    /// Code class index → index into `other_classes`.
    pub(crate) code_classes: Vec<usize>,
    code: CodeClasses,
    pub(crate) sites: HashMap<u64, SiteTrace>,
    pub(crate) unknown_roots: Vec<u64>,
    pub(crate) unreachable_roots: Vec<u64>,
    /// Written objects that unreachable objects left out refer to, in a
    /// dump whose objects are all alive
    /// ([`Capabilities::unreached_objects_hold`](heapdump_reader::Capabilities::unreached_objects_hold)):
    /// held from outside the written heap, so written as `ROOT UNKNOWN`s.
    pub(crate) outside_roots: Vec<u64>,
    pub(crate) thread_class_id: u64,
    pub(crate) word_size: u64,
    pub(crate) big_endian: bool,
    pub(crate) segment_bytes: usize,
    objects: u64,
    bytes: u64,
    dropped_objects: u64,
    dropped_bytes: u64,
    unaligned_objects: u64,
}

impl<'g, 'data> Plan<'g, 'data> {
    /// Plans the conversion of `graph`; `namer` names the words of global
    /// roots (static fields).
    pub fn new(graph: &'g HeapGraph<'data>, namer: &RootNamer<'_>, options: &Options) -> Self {
        let dump = graph.dump();
        let word_size: u64 = if dump.info.pointer_size == 4 { 4 } else { 8 };
        let mut kept = reach::reachable(graph);
        let unreachable: Vec<bool> = kept.iter().map(|&seen| !seen).collect();
        let unreachable_roots = if options.keep_unreachable {
            reach::unreachable_roots(graph, &mut kept)
        } else {
            Vec::new()
        };
        // An object at address 0 would have the null id.
        for (index, object) in dump.objects.iter().enumerate() {
            if object.address == 0 {
                if let Some(flag) = kept.get_mut(index) {
                    *flag = false;
                }
            }
        }

        let mut plan = Plan {
            graph,
            object_class: vec![NO_CLASS; graph.object_count()],
            classes: Vec::new(),
            other_classes: Vec::new(),
            threads: Vec::new(),
            code_classes: Vec::new(),
            code: CodeClasses::default(),
            sites: HashMap::new(),
            unknown_roots: Vec::new(),
            unreachable_roots: unreachable_roots
                .iter()
                .filter_map(|id| graph.object(*id))
                .map(|object| object.address)
                .filter(|&address| address != 0)
                .collect(),
            outside_roots: Vec::new(),
            thread_class_id: 0,
            word_size,
            big_endian: dump.info.big_endian,
            segment_bytes: options.segment_bytes,
            objects: 0,
            bytes: 0,
            dropped_objects: 0,
            dropped_bytes: 0,
            unaligned_objects: 0,
        };
        for (index, object) in dump.objects.iter().enumerate() {
            if !kept.get(index).copied().unwrap_or(false)
                && unreachable.get(index).copied().unwrap_or(false)
            {
                plan.dropped_objects += 1;
                plan.dropped_bytes = plan.dropped_bytes.saturating_add(object.size);
            }
        }
        if dump.capabilities.unreached_objects_hold {
            let is_kept = |id: ObjectId| kept.get(id.index()).copied().unwrap_or(false);
            let mut outside: Vec<u64> = Vec::new();
            for (source, _) in graph.objects().filter(|(id, _)| !is_kept(*id)) {
                let strong = graph.references(source).map(|(target, _)| target);
                for target in strong.chain(graph.weak_references(source)) {
                    if let Some(object) = graph.object(target).filter(|_| is_kept(target)) {
                        outside.push(object.address);
                    }
                }
            }
            outside.sort_unstable();
            outside.dedup();
            plan.outside_roots = outside;
        }
        let (masks, odd) = plan.classify(&kept);
        plan.lay_out(masks, odd);
        plan.name_classes();
        plan.plan_roots(namer);
        plan.plan_sites();
        plan.assign_ids();
        plan
    }

    /// The data classes, in the order they are written.
    pub fn classes(&self) -> &[DataClass] {
        &self.classes
    }

    /// Objects that will be written.
    pub fn objects(&self) -> u64 {
        self.objects
    }

    /// Their bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Unreachable objects left out (none with
    /// [`Options::keep_unreachable`]).
    pub fn dropped_objects(&self) -> u64 {
        self.dropped_objects
    }

    /// Their bytes.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes
    }

    /// Unreachable objects written as roots of their own
    /// ([`Options::keep_unreachable`]).
    pub fn unreachable_roots(&self) -> u64 {
        self.unreachable_roots.len() as u64
    }

    /// Objects whose address is not a multiple of the pointer size: their
    /// words are written as data, without references.
    pub fn unaligned_objects(&self) -> u64 {
        self.unaligned_objects
    }

    /// Threads (OS threads or goroutines) written as `java.lang.Thread`s.
    pub fn threads(&self) -> u64 {
        self.threads.len() as u64
    }

    /// Calls `visit(class, field, object id)` for every static field of the
    /// holder classes that carry the roots (`globals.…`, `stack.…`,
    /// `roots.…`).
    pub fn for_each_static(&self, visit: &mut dyn FnMut(&str, &str, u64)) {
        for def in &self.other_classes {
            for (name, id) in &def.statics {
                visit(&def.vm_name, name, *id);
            }
        }
    }

    /// The name of the data class of `object`, if it is written.
    pub fn class_of(&self, object: ObjectId) -> Option<&DataClass> {
        let class = *self.object_class.get(object.index())?;
        self.classes.get(class as usize)
    }

    /// Assigns every kept object to a data class; returns each class's
    /// pointer-word mask (bit `i`: word `i` holds a pointer in some object)
    /// and its exact pointer offsets off that word grid: not a multiple of
    /// the word size, or past the object's size (packed fields, or stored
    /// contents longer than the object, as HPROF's with 8-byte ids and
    /// compressed references).
    fn classify(&mut self, kept: &[bool]) -> (Vec<Vec<u64>>, Vec<Vec<u64>>) {
        let graph = self.graph;
        let dump = graph.dump();
        let mut index: HashMap<ClassKey<'g>, u32> = HashMap::new();
        let mut masks: Vec<Vec<u64>> = Vec::new();
        let mut odd: Vec<Vec<u64>> = Vec::new();
        for (object_index, object) in dump.objects.iter().enumerate() {
            if !kept.get(object_index).copied().unwrap_or(false) {
                continue;
            }
            let key = class_key(dump, object);
            let class = *index.entry(key).or_insert_with(|| {
                self.classes.push(DataClass {
                    name: String::new(),
                    size: object.size,
                    instances: 0,
                    bytes: 0,
                    representation: Representation::Instance,
                    dropped_pointer_words: 0,
                    vm_name: group_name(dump, object, key.group),
                    fields: Vec::new(),
                    sample: object_index,
                    id: 0,
                    serial: 0,
                });
                masks.push(Vec::new());
                odd.push(Vec::new());
                (self.classes.len() - 1) as u32
            });
            if let Some(slot) = self.object_class.get_mut(object_index) {
                *slot = class;
            }
            if let Some(data) = self.classes.get_mut(class as usize) {
                data.instances += 1;
                data.bytes = data.bytes.saturating_add(object.size);
            }
            self.objects += 1;
            self.bytes = self.bytes.saturating_add(object.size);
            let Some(mask) = masks.get_mut(class as usize) else {
                continue;
            };
            if object.address % self.word_size != 0 {
                self.unaligned_objects += 1;
                continue;
            }
            let words = object.size / self.word_size;
            match graph.dump().pointers(object) {
                Pointers::Exact(offsets) => {
                    let stored = dump.contents(object).len() as u64;
                    for offset in offsets.iter() {
                        if offset % self.word_size == 0 && offset / self.word_size < words {
                            set_bit(mask, offset / self.word_size);
                        } else if offset.saturating_add(self.word_size) <= stored {
                            if let Some(list) = odd.get_mut(class as usize) {
                                list.push(offset);
                            }
                        }
                    }
                }
                Pointers::Unknown => {
                    let scanned =
                        words.min(graph.dump().contents(object).len() as u64 / self.word_size);
                    for word in 0..scanned {
                        let value = self.word(object, word * self.word_size);
                        if let Some(target) = graph.object_at(value) {
                            if kept.get(target.index()).copied().unwrap_or(false) {
                                set_bit(mask, word);
                            }
                        }
                    }
                }
            }
        }
        for list in &mut odd {
            list.sort_unstable();
            list.dedup();
        }
        (masks, odd)
    }

    /// Chooses each class's representation and fields from its size and
    /// pointer mask (and pointer offsets off the word grid).
    fn lay_out(&mut self, masks: Vec<Vec<u64>>, odd: Vec<Vec<u64>>) {
        let word_size = self.word_size;
        for ((class, mask), odd) in self.classes.iter_mut().zip(masks).zip(odd) {
            let size = class.size;
            let words = size / word_size;
            let tail = size % word_size;
            let pointer_words: Vec<u64> = bits(&mask).filter(|&word| word < words).collect();
            if !odd.is_empty() {
                // Pointers off the word grid: the fields are the pointers
                // alone, at their offsets (the class's size stays the
                // object's: VisualVM reads it verbatim).
                let mut offsets: Vec<u64> = pointer_words
                    .iter()
                    .map(|&word| word * word_size)
                    .chain(odd)
                    .collect();
                offsets.sort_unstable();
                offsets.dedup();
                let elements = size.saturating_sub(8) / 4;
                if offsets.len() > MAX_FIELDS && size <= MAX_INSTANCE_SIZE && size % 4 == 0 {
                    class.dropped_pointer_words = (offsets.len() as u64).saturating_sub(elements);
                    class.representation = Representation::ObjectArray {
                        elements,
                        positional: false,
                    };
                } else {
                    class.dropped_pointer_words = offsets.len().saturating_sub(MAX_FIELDS) as u64;
                    offsets.truncate(MAX_FIELDS);
                }
                class.fields = offsets
                    .into_iter()
                    .map(|offset| FieldSpec {
                        offset,
                        kind: FieldKind::Reference,
                    })
                    .collect();
            } else if size <= MAX_INSTANCE_SIZE && (words + tail) as usize <= MAX_FIELDS {
                let mut pointers = pointer_words.iter().peekable();
                for word in 0..words {
                    let kind = if pointers.peek() == Some(&&word) {
                        pointers.next();
                        FieldKind::Reference
                    } else {
                        FieldKind::Word
                    };
                    class.fields.push(FieldSpec {
                        offset: word * word_size,
                        kind,
                    });
                }
                for byte in 0..tail {
                    class.fields.push(FieldSpec {
                        offset: words * word_size + byte,
                        kind: FieldKind::Byte,
                    });
                }
            } else if pointer_words.len() <= MAX_FIELDS || size > MAX_INSTANCE_SIZE || size % 8 != 0
            {
                let kept_words = pointer_words.len().min(MAX_FIELDS);
                class.dropped_pointer_words = (pointer_words.len() - kept_words) as u64;
                class.fields = pointer_words
                    .iter()
                    .take(kept_words)
                    .map(|&word| FieldSpec {
                        offset: word * word_size,
                        kind: FieldKind::Reference,
                    })
                    .collect();
            } else {
                let elements = (size - 8) / 4;
                class.representation = Representation::ObjectArray {
                    elements,
                    positional: elements >= words,
                };
                class.fields = pointer_words
                    .iter()
                    .map(|&word| FieldSpec {
                        offset: word * word_size,
                        kind: FieldKind::Reference,
                    })
                    .collect();
            }
        }
    }

    /// Names classes: the group's name, with the size when a group spans
    /// several classes, and `#n` for any name still taken.
    fn name_classes(&mut self) {
        let mut per_group: HashMap<String, usize> = HashMap::new();
        for class in &self.classes {
            *per_group.entry(class.vm_name.clone()).or_insert(0) += 1;
        }
        let mut taken: HashMap<String, usize> = HashMap::new();
        for class in &mut self.classes {
            let mut base = class.vm_name.clone();
            let shared = per_group.get(&base).copied().unwrap_or(0) > 1;
            if shared && !base.starts_with(&format!("obj{}[", class.size)) {
                base = format!("{base} ({} B)", class.size);
            }
            let count = taken.entry(base.clone()).or_insert(0);
            *count += 1;
            if *count > 1 {
                base = format!("{base} #{count}");
            }
            let base = vm_safe(&base);
            match class.representation {
                Representation::Instance => {
                    class.name = base.clone();
                    class.vm_name = base;
                }
                Representation::ObjectArray { .. } => {
                    class.name = format!("{base}[]");
                    class.vm_name = format!("[L{base};");
                }
            }
        }
    }

    /// Holder classes for global roots, threads for stacks, and the other
    /// roots.
    fn plan_roots(&mut self, namer: &RootNamer<'_>) {
        let graph = self.graph;
        let dump = graph.dump();

        // Threads, and each execution context's frames by depth.
        let mut threads: HashMap<ThreadKey, usize> = HashMap::new();
        let mut depths: Vec<Vec<(u64, String)>> = Vec::new();
        for root in &dump.roots {
            let (key, name) = match &root.kind {
                RootKind::ThreadStack { thread_id, .. } => {
                    (ThreadKey::Os(*thread_id), root.name.clone())
                }
                RootKind::Frame { context, .. } => {
                    (ThreadKey::Context(*context), context.to_string())
                }
                _ => continue,
            };
            let thread = *threads.entry(key).or_insert_with(|| {
                self.threads.push(ThreadSpec {
                    serial: 0,
                    trace_serial: 0,
                    object_id: 0,
                    name,
                    tid: match key {
                        ThreadKey::Os(id) => id,
                        ThreadKey::Context(context) => context.id,
                    },
                    frames: Vec::new(),
                    locals: Vec::new(),
                });
                depths.push(Vec::new());
                self.threads.len() - 1
            });
            if let RootKind::Frame {
                depth, function, ..
            } = &root.kind
            {
                if let Some(list) = depths.get_mut(thread) {
                    list.push((*depth, function.clone()));
                }
            }
        }
        for (thread, list) in self.threads.iter_mut().zip(depths.iter_mut()) {
            list.sort();
            list.dedup_by_key(|(depth, _)| *depth);
            thread.frames = if list.is_empty() {
                // An OS thread's stack: one frame named after the thread.
                vec![FrameSpec {
                    class: self.code.intern("native"),
                    method: format!("stack of {}", thread.name),
                    file: String::new(),
                    line: -1,
                }]
            } else {
                list.iter()
                    .take(MAX_FRAMES)
                    .map(|(_, function)| self.code.frame(Some(function), None, None, None))
                    .collect()
            };
        }

        // Each root word that points at a written object. Every one is a
        // static field of a holder class, even those that are also
        // Java-frame roots: VisualVM counts a root object with one heap
        // referrer into that referrer's retained size unless a second
        // referrer (the holder) exists.
        let mut holders: HashMap<Holder, usize> = HashMap::new();
        let mut holder_statics: Vec<(String, Vec<(String, u64)>)> = Vec::new();
        let mut unknown: Vec<u64> = Vec::new();
        for reference in graph.root_references() {
            let Some(target) = self.object_id(reference.target) else {
                continue;
            };
            let Some(root) = graph.root(reference.root) else {
                continue;
            };
            let local = |key: ThreadKey, depth: u64| -> Option<(usize, u32)> {
                let thread = *threads.get(&key)?;
                let list = depths.get(thread)?;
                let frame = list
                    .binary_search_by_key(&depth, |(depth, _)| *depth)
                    .unwrap_or(0)
                    .min(MAX_FRAMES - 1);
                Some((thread, frame as u32))
            };
            let thread_local = match &root.kind {
                kind if kind.is_global() => None,
                RootKind::ThreadStack { thread_id, .. } => local(ThreadKey::Os(*thread_id), 0),
                RootKind::Frame { context, depth, .. } => {
                    local(ThreadKey::Context(*context), *depth)
                }
                _ => None,
            };
            let holder = if root.kind.is_global() {
                Holder::Global(reference.root.index())
            } else if let Some((thread, frame)) = thread_local {
                if let Some(spec) = self.threads.get_mut(thread) {
                    spec.locals.push((target, frame));
                }
                Holder::Thread(thread)
            } else {
                unknown.push(target);
                Holder::Other
            };
            let index = *holders.entry(holder).or_insert_with(|| {
                let name = match holder {
                    Holder::Global(_) => holder_name(dump, root),
                    Holder::Thread(thread) => format!(
                        "stack.{}",
                        self.threads
                            .get(thread)
                            .map_or("thread", |spec| spec.name.as_str())
                    ),
                    Holder::Other => "roots.other".to_owned(),
                };
                holder_statics.push((name, Vec::new()));
                holder_statics.len() - 1
            });
            if let Some((_, statics)) = holder_statics.get_mut(index) {
                statics.push((namer.slot_name(root, reference.offset), target));
            }
        }
        if !self.outside_roots.is_empty() {
            let statics = self
                .outside_roots
                .iter()
                .map(|&id| (format!("held@{id:#x}"), id))
                .collect();
            holder_statics.push(("roots.outside".to_owned(), statics));
        }
        if !self.unreachable_roots.is_empty() {
            let statics = self
                .unreachable_roots
                .iter()
                .map(|&id| (format!("garbage@{id:#x}"), id))
                .collect();
            holder_statics.push(("roots.unreachable".to_owned(), statics));
        }
        for thread in &mut self.threads {
            thread.locals.sort_unstable();
            thread.locals.dedup();
        }
        unknown.sort_unstable();
        unknown.dedup();
        self.unknown_roots = unknown;

        // The java.* classes viewers expect, then the holders.
        let mut defs = vec![
            class_def("java/lang/Object", OBJECT_CLASS_SIZE, Vec::new()),
            class_def("java/lang/Class", 0, Vec::new()),
            class_def("java/lang/ClassLoader", 0, Vec::new()),
            class_def(
                "java/lang/String",
                0,
                vec![("value".to_owned(), basic::OBJECT)],
            ),
            class_def("java/lang/Thread", 0, vec![("tid".to_owned(), basic::LONG)]),
            class_def(
                "java/lang/ref/Reference",
                0,
                vec![("referent".to_owned(), basic::OBJECT)],
            ),
            class_def("java/lang/ref/WeakReference", 0, Vec::new()),
            class_def("java/lang/ref/SoftReference", 0, Vec::new()),
            class_def("java/lang/ref/FinalReference", 0, Vec::new()),
            class_def("java/lang/ref/PhantomReference", 0, Vec::new()),
        ];
        for name in [
            "[Z",
            "[C",
            "[F",
            "[D",
            "[B",
            "[S",
            "[I",
            "[J",
            "[Ljava/lang/Object;",
        ] {
            defs.push(class_def(name, 0, Vec::new()));
        }
        for (name, statics) in holder_statics {
            let parts = statics.len().div_ceil(MAX_FIELDS).max(1);
            let mut statics = statics.into_iter();
            for part in 0..parts {
                let name = if part == 0 {
                    name.clone()
                } else {
                    format!("{name} (part {})", part + 1)
                };
                let mut def = class_def(&vm_safe(&name), 0, Vec::new());
                def.statics = statics.by_ref().take(MAX_FIELDS).collect();
                defs.push(def);
            }
        }
        self.other_classes = defs;
    }

    /// A stack trace for every allocation-site stack some written object
    /// has.
    fn plan_sites(&mut self) {
        let dump = self.graph.dump();
        let mut used: Vec<u64> = dump
            .objects
            .iter()
            .zip(&self.object_class)
            .filter(|(_, &class)| class != NO_CLASS)
            .filter_map(|(object, _)| object.site.map(|site| site.get()))
            .collect();
        used.sort_unstable();
        used.dedup();
        for site in used {
            let Some(stack) = heapdump_reader::StackId::new(site).and_then(|id| dump.stack(id))
            else {
                continue;
            };
            let frames = site_frames(stack, &mut self.code);
            self.sites.insert(site, SiteTrace { serial: 0, frames });
        }
    }

    /// Serial numbers and ids: classes, threads, traces.
    fn assign_ids(&mut self) {
        // Code classes join the other classes.
        let code_names = std::mem::take(&mut self.code.names);
        let first_code = self.other_classes.len();
        for name in &code_names {
            self.other_classes
                .push(class_def(&vm_safe(name), 0, Vec::new()));
        }
        self.code_classes = (first_code..first_code + code_names.len()).collect();

        let total = self.other_classes.len() + self.classes.len() + self.threads.len();
        let mut ids = free_ids(self.graph, total as u64).into_iter();
        let mut serial = 0u32;
        let mut next = || {
            serial += 1;
            (ids.next().unwrap_or(0), serial)
        };
        for def in &mut self.other_classes {
            (def.id, def.serial) = next();
        }
        for class in &mut self.classes {
            (class.id, class.serial) = next();
        }
        let object_id = self.other_classes.first().map_or(0, |def| def.id);
        for def in self.other_classes.iter_mut().skip(1) {
            def.super_id = object_id;
        }
        let reference_id = self
            .other_classes
            .iter()
            .find(|def| def.vm_name == "java/lang/ref/Reference")
            .map_or(object_id, |def| def.id);
        for def in &mut self.other_classes {
            if def.vm_name.starts_with("java/lang/ref/") && def.vm_name != "java/lang/ref/Reference"
            {
                def.super_id = reference_id;
            }
        }
        self.thread_class_id = self
            .other_classes
            .iter()
            .find(|def| def.vm_name == "java/lang/Thread")
            .map_or(0, |def| def.id);
        // Trace 1 is the empty one; threads' traces follow, then sites'.
        let mut trace = 1u32;
        for (index, thread) in self.threads.iter_mut().enumerate() {
            thread.serial = index as u32 + 1;
            thread.object_id = ids.next().unwrap_or(0);
            trace += 1;
            thread.trace_serial = trace;
        }
        let mut keys: Vec<u64> = self.sites.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            if let Some(site) = self.sites.get_mut(&key) {
                trace += 1;
                site.serial = trace;
            }
        }
    }

    /// The id of `object` in the file (its address), if it is written.
    pub(crate) fn object_id(&self, object: ObjectId) -> Option<u64> {
        if *self.object_class.get(object.index())? == NO_CLASS {
            return None;
        }
        self.graph.object(object).map(|object| object.address)
    }

    /// The id that the word at `offset` of `object` refers to: the start of
    /// the written object it points into, or 0.
    pub(crate) fn reference_at(&self, object: &Object, offset: u64) -> u64 {
        let value = self.word(object, offset);
        self.graph
            .object_at(value)
            .and_then(|target| self.object_id(target))
            .unwrap_or(0)
    }

    /// The word at `offset` of `object`, in the dump's byte order; bytes
    /// past the contents read as 0.
    pub(crate) fn word(&self, object: &Object, offset: u64) -> u64 {
        let mut bytes = [0u8; 8];
        let size = self.word_size as usize;
        let contents = self.graph.dump().contents(object);
        if let Ok(start) = usize::try_from(offset) {
            for (index, slot) in bytes.iter_mut().take(size).enumerate() {
                *slot = start
                    .checked_add(index)
                    .and_then(|at| contents.get(at))
                    .copied()
                    .unwrap_or(0);
            }
        }
        let word = bytes.get(..size).unwrap_or(&[]);
        let mut value = 0u64;
        if self.big_endian {
            for &byte in word {
                value = value << 8 | u64::from(byte);
            }
        } else {
            for &byte in word.iter().rev() {
                value = value << 8 | u64::from(byte);
            }
        }
        value
    }

    /// The trace serial of `object`'s allocation site, 1 when unknown.
    pub(crate) fn trace_of(&self, object: &Object) -> u32 {
        object
            .site
            .and_then(|site| self.sites.get(&site.get()))
            .map_or(1, |site| site.serial)
    }
}

/// Classes of stack frames, named after the part of a function name before
/// its last `.` or `::` (Go's package or receiver, Rust's module or type).
#[derive(Clone, Debug, Default)]
pub(crate) struct CodeClasses {
    map: HashMap<String, usize>,
    names: Vec<String>,
}

impl CodeClasses {
    fn intern(&mut self, name: &str) -> usize {
        if let Some(&index) = self.map.get(name) {
            return index;
        }
        self.names.push(name.to_owned());
        self.map.insert(name.to_owned(), self.names.len() - 1);
        self.names.len() - 1
    }

    /// A frame for `function` (or the raw `pc` when not symbolised).
    fn frame(
        &mut self,
        function: Option<&str>,
        pc: Option<u64>,
        file: Option<&str>,
        line: Option<u64>,
    ) -> FrameSpec {
        let (class, method) = match function {
            Some(function) => split_function(function),
            None => (
                "native".to_owned(),
                pc.map_or_else(|| "?".to_owned(), |pc| format!("{pc:#x}")),
            ),
        };
        FrameSpec {
            class: self.intern(&class),
            method,
            file: file.unwrap_or("").to_owned(),
            line: line
                .filter(|&line| line > 0)
                .and_then(|line| i32::try_from(line).ok())
                .unwrap_or(-1),
        }
    }
}

/// The frames of an allocation-site stack, innermost first.
fn site_frames(stack: &Stack, code: &mut CodeClasses) -> Vec<FrameSpec> {
    (0..stack.depth().min(MAX_FRAMES))
        .map(|index| {
            let pc = stack.pcs.get(index).copied();
            match stack.frames.get(index) {
                Some(frame) => code.frame(
                    frame.function.as_deref(),
                    pc,
                    frame.file.as_deref(),
                    frame.line,
                ),
                None => code.frame(None, pc, None, None),
            }
        })
        .collect()
}

/// Splits `main.(*T).serve` into `main.(*T)` and `serve`,
/// `app::cache::Cache::insert` into `app::cache::Cache` and `insert`; a name
/// with neither separator is a method of `native`.
fn split_function(function: &str) -> (String, String) {
    let mut depth = 0i32;
    let mut split = None;
    let bytes = function.as_bytes();
    for (index, &byte) in bytes.iter().enumerate() {
        match byte {
            b'(' | b'[' | b'<' => depth += 1,
            b')' | b']' | b'>' => depth -= 1,
            b'.' if depth == 0 => split = Some((index, 1)),
            b':' if depth == 0 && bytes.get(index + 1) == Some(&b':') => split = Some((index, 2)),
            _ => {}
        }
    }
    match split {
        Some((index, len)) if index > 0 && index + len < function.len() => (
            function.get(..index).unwrap_or("native").to_owned(),
            function.get(index + len..).unwrap_or(function).to_owned(),
        ),
        _ => ("native".to_owned(), function.to_owned()),
    }
}

/// A class with `java.lang.Object` as super class (set later).
fn class_def(name: &str, size: u32, fields: Vec<(String, u8)>) -> ClassDef {
    ClassDef {
        vm_name: name.to_owned(),
        id: 0,
        serial: 0,
        super_id: 0,
        size,
        statics: Vec::new(),
        fields,
    }
}

/// The key of the data class of `object`.
fn class_key<'a>(dump: &'a Dump<'_>, object: &Object) -> ClassKey<'a> {
    let group = match dump.object_class(object) {
        ObjectClass::Type(index) => Group::Type(index.0),
        ObjectClass::Shape { .. } => match object.site {
            Some(site) => Group::Site(site.get()),
            None => Group::Shape,
        },
    };
    ClassKey {
        group,
        size: object.size,
        pointers: dump
            .pointers(object)
            .exact()
            .map(|offsets| offsets.as_bytes()),
        header: object.has_header(),
    }
}

/// The name of the group of `object`: its type's name, or its shape's
/// (`obj48[?]`), with `@main.buildCache` or `@site17` for a sampled
/// allocation.
fn group_name(dump: &Dump<'_>, object: &Object, group: Group) -> String {
    let class = dump.object_class(object);
    match group {
        Group::Type(_) | Group::Shape => dump.class_name(&class),
        Group::Site(site) => format!("{}@{}", dump.class_name(&class), site_name(dump, site)),
    }
}

/// A short name for an allocation site: the program's function that
/// allocated ([`Stack::caller_function`]) when the frames say, else the
/// site's first named frame, else `site17`.
fn site_name(dump: &Dump<'_>, site: u64) -> String {
    let stack = heapdump_reader::StackId::new(site).and_then(|id| dump.stack(id));
    stack
        .and_then(|stack| {
            stack.caller_function().or_else(|| {
                stack
                    .site_frames()
                    .iter()
                    .find_map(|frame| frame.function.as_deref())
            })
        })
        .map_or_else(|| format!("site{site}"), str::to_owned)
}

/// The holder class name of a global root: `globals.<module>@0x…` for a
/// module segment, `globals.<root name>` for a section (Go:
/// `globals.data`, `globals.bss`).
fn holder_name(dump: &Dump<'_>, root: &heapdump_reader::Root<'_>) -> String {
    match &root.kind {
        RootKind::Segment { module_id } => {
            let module = dump
                .modules
                .iter()
                .find(|module| module.id == *module_id)
                .map(|module| {
                    module
                        .path
                        .rsplit('/')
                        .next()
                        .filter(|name| !name.is_empty())
                        .unwrap_or("module")
                        .to_owned()
                })
                .unwrap_or_else(|| format!("module{module_id}"));
            format!("globals.{module}@{:#x}", root.address)
        }
        _ => format!("globals.{}", root.name),
    }
}

/// A class name VisualVM shows as it is: `/` (which it turns into `.`)
/// becomes `.`, and a leading `[` (an array descriptor to it) gets a `$`
/// before it.
pub(crate) fn vm_safe(name: &str) -> String {
    let name = name.replace('/', ".");
    if name.starts_with('[') {
        format!("${name}")
    } else {
        name
    }
}

fn set_bit(mask: &mut Vec<u64>, bit: u64) {
    let index = (bit / 64) as usize;
    if mask.len() <= index {
        mask.resize(index + 1, 0);
    }
    if let Some(word) = mask.get_mut(index) {
        *word |= 1 << (bit % 64);
    }
}

fn bits(mask: &[u64]) -> impl Iterator<Item = u64> + '_ {
    mask.iter().enumerate().flat_map(|(index, &word)| {
        (0..64u64)
            .filter(move |bit| word & (1 << bit) != 0)
            .map(move |bit| index as u64 * 64 + bit)
    })
}

/// `count` ids, 16 bytes apart, that are no object's address and lie
/// outside every object: below the first object, in a gap between two, or
/// above the last.
fn free_ids(graph: &HeapGraph<'_>, count: u64) -> Vec<u64> {
    const STEP: u64 = 16;
    const LOWEST: u64 = 0x1_0000;
    let need = count.saturating_mul(STEP);
    let mut start = LOWEST;
    for (_, object) in graph.objects() {
        let room = object.address.saturating_sub(start);
        if room >= need.saturating_add(STEP) {
            break;
        }
        start = start.max(object.end().saturating_add(STEP - 1) / STEP * STEP);
    }
    if start.checked_add(need).is_none() {
        // No room anywhere (a hand-made dump that spans the address
        // space): fall back to ids below the lowest address.
        start = STEP;
    }
    (0..count).map(|index| start + index * STEP).collect()
}
