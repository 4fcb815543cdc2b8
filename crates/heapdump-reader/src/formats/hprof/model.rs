//! What only HPROF dumps know, kept in [`Dump::extras`](crate::Dump::extras)
//! and reached with [`extras`](super::extras): the classes as the dump
//! describes them (names, superclasses, loaders, field names), the size
//! rule used for shallow sizes, and counts of what the reader skipped.

use std::collections::HashMap;

use serde::Serialize;

/// The HPROF-only part of a dump.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HprofDump {
    /// The header's version (`JAVA PROFILE 1.0.2`).
    pub version: String,
    /// Bytes of an identifier (4 or 8).
    pub id_size: u8,
    /// Bytes of a reference inside an object as VisualVM counts it: 4 with
    /// compressed oops (or 4-byte ids), else the id size.
    pub reference_size: u8,
    /// Bytes of an object header as VisualVM counts it.
    pub header_size: u8,
    /// How `reference_size` was chosen, in words.
    pub size_rule: String,
    /// Milliseconds since the Unix epoch at the dump (the header's time).
    pub time_ms: u64,
    /// The classes (CLASS DUMP records with their LOAD CLASS names).
    pub classes: Vec<HprofClass>,
    /// Heap dump segments (HEAP DUMP and HEAP DUMP SEGMENT records).
    pub segments: u64,
    /// UTF8 records.
    pub strings: u64,
    /// Top-level records of a tag this reader does not use, by tag (known
    /// but unused ones such as CPU SAMPLES, and unknown ones), skipped by
    /// their length.
    pub skipped_records: Vec<(u8, u64)>,
    /// Threads (THREAD OBJECT roots, with their stack traces).
    pub threads: Vec<HprofThread>,
    /// Class id → index in `classes`.
    #[serde(skip)]
    pub class_index: HashMap<u64, usize>,
    /// Where a `java.lang.String` keeps its characters, when the dump has
    /// the class with a `value` field.
    pub string_layout: Option<StringLayout>,
}

/// The fields of `java.lang.String` that hold its text.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StringLayout {
    /// The type of `String` instances (an index into `Dump::types`).
    pub type_index: u32,
    /// Offset of `value` (a `byte[]`, or a `char[]` before JDK 9) in an
    /// instance's stored fields.
    pub value_offset: u64,
    /// Offset of `coder` (0: Latin-1, 1: UTF-16), JDK 9 and later.
    pub coder_offset: Option<u64>,
}

/// One class.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HprofClass {
    /// The class object's id (its address in HotSpot dumps).
    pub id: u64,
    /// The name in Java's source form (`java.util.HashMap$Node`,
    /// `byte[]`).
    pub name: String,
    /// The superclass's id, 0 for none.
    pub super_id: u64,
    /// The class loader's id, 0 for the bootstrap loader.
    pub loader_id: u64,
    /// The instance size the dump records (HotSpot: field bytes).
    pub dump_instance_size: u32,
    /// An instance's shallow size as VisualVM computes it (0 for array
    /// classes).
    pub instance_size: u64,
    /// Static fields: name and, for references, the offset of the value in
    /// the class object's contents.
    pub statics: Vec<HprofStatic>,
    /// Instance fields declared by this class (not inherited), in the
    /// dump's order: name and basic type code.
    pub fields: Vec<(String, u8)>,
}

/// A static field of a class.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HprofStatic {
    /// The field's name.
    pub name: String,
    /// Its basic type code (2 for references).
    pub type_code: u8,
    /// Offset of its value in the class object's contents.
    pub offset: u64,
}

/// A thread: its THREAD OBJECT root and stack trace.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HprofThread {
    /// The thread serial number.
    pub serial: u32,
    /// The `java.lang.Thread` object's id (0 if none).
    pub object_id: u64,
    /// The stack trace's serial number.
    pub trace_serial: u32,
}

impl HprofDump {
    /// The class whose object is at `id`.
    pub fn class(&self, id: u64) -> Option<&HprofClass> {
        self.classes.get(*self.class_index.get(&id)?)
    }

    /// The name of the static reference field whose value is at `offset`
    /// of the class object `class_id`'s contents, as `Class.field`
    /// (`Main.CACHE`).
    pub fn static_field_name(&self, class_id: u64, offset: u64) -> Option<String> {
        let class = self.class(class_id)?;
        let field = class
            .statics
            .iter()
            .find(|field| field.type_code == 2 && field.offset == offset)?;
        Some(format!("{}.{}", class.name, field.name))
    }
}
