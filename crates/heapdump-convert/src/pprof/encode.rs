//! The encoding half: profile.proto, gzip-compressed, written field by
//! field; and folded stacks.
//!
//! profile.proto (github.com/google/pprof, `proto/profile.proto`) needs
//! only varints and length-delimited fields, so a dozen lines over
//! heapdump-format's `put_uvarint` write it: the top-level `Profile`
//! message's fields go straight into the gzip stream (a top-level message
//! has no length), and each nested message (a sample, a location) is
//! built in one reused buffer first. Field numbers are profile.proto's.

use std::collections::BTreeMap;
use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use heapdump_format::{put_uvarint, MAX_UVARINT_LEN};

use super::plan::Planned;
use super::CollapsedValue;

/// Protobuf wire types.
const VARINT: u64 = 0;
const LENGTH_DELIMITED: u64 = 2;

/// Appends `value` as a varint.
fn varint(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0u8; MAX_UVARINT_LEN];
    let len = put_uvarint(&mut buf, value);
    out.extend_from_slice(buf.get(..len).unwrap_or(&[]));
}

fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, field << 3 | wire);
}

/// A varint field, left out when 0 (proto3's default).
fn uint(out: &mut Vec<u8>, field: u64, value: u64) {
    if value != 0 {
        key(out, field, VARINT);
        varint(out, value);
    }
}

/// A bool field, left out when false.
fn boolean(out: &mut Vec<u8>, field: u64, value: bool) {
    uint(out, field, u64::from(value));
}

/// A length-delimited field (bytes, string, message).
fn bytes(out: &mut Vec<u8>, field: u64, value: &[u8]) {
    key(out, field, LENGTH_DELIMITED);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// A packed repeated varint field, left out when empty.
fn packed(out: &mut Vec<u8>, scratch: &mut Vec<u8>, field: u64, values: &[u64]) {
    if values.is_empty() {
        return;
    }
    scratch.clear();
    for &value in values {
        varint(scratch, value);
    }
    bytes(out, field, scratch);
}

/// `Profile` fields.
mod profile {
    pub const SAMPLE_TYPE: u64 = 1;
    pub const SAMPLE: u64 = 2;
    pub const MAPPING: u64 = 3;
    pub const LOCATION: u64 = 4;
    pub const FUNCTION: u64 = 5;
    pub const STRING_TABLE: u64 = 6;
    pub const TIME_NANOS: u64 = 9;
    pub const PERIOD_TYPE: u64 = 11;
    pub const PERIOD: u64 = 12;
    pub const COMMENT: u64 = 13;
    pub const DEFAULT_SAMPLE_TYPE: u64 = 14;
}

/// Counts the bytes written through it.
struct Counting<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `planned` as gzip-compressed profile.proto; returns the bytes
/// written.
pub(super) fn write_pprof<W: Write>(planned: &Planned, out: W) -> io::Result<u64> {
    let mut gz = GzEncoder::new(
        Counting {
            inner: out,
            bytes: 0,
        },
        Compression::default(),
    );
    let tables = &planned.tables;
    // Sample types as the Go runtime's heap profiles name them.
    let [objects, count, space, bytes_unit, space_type] = planned.type_names;

    let mut top: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut message: Vec<u8> = Vec::new();
    let mut inner: Vec<u8> = Vec::new();
    let mut scratch: Vec<u8> = Vec::new();
    let flush = |top: &mut Vec<u8>, gz: &mut GzEncoder<Counting<W>>, force: bool| {
        if force || top.len() >= 1 << 16 {
            let result = gz.write_all(top);
            top.clear();
            result
        } else {
            Ok(())
        }
    };

    for (kind, unit) in [(objects, count), (space, bytes_unit)] {
        message.clear();
        uint(&mut message, 1, kind);
        uint(&mut message, 2, unit);
        bytes(&mut top, profile::SAMPLE_TYPE, &message);
    }
    for sample in &planned.samples {
        message.clear();
        packed(&mut message, &mut scratch, 1, &sample.locations);
        packed(&mut message, &mut scratch, 2, &sample.values);
        for &(label_key, label_value) in &sample.labels {
            inner.clear();
            uint(&mut inner, 1, label_key);
            uint(&mut inner, 2, label_value);
            bytes(&mut message, 3, &inner);
        }
        bytes(&mut top, profile::SAMPLE, &message);
        flush(&mut top, &mut gz, false)?;
    }
    for (index, mapping) in tables.mappings.iter().enumerate() {
        message.clear();
        uint(&mut message, 1, index as u64 + 1);
        uint(&mut message, 2, mapping.start);
        uint(&mut message, 3, mapping.limit);
        uint(&mut message, 4, mapping.file_offset);
        uint(&mut message, 5, mapping.filename);
        uint(&mut message, 6, mapping.build_id);
        boolean(&mut message, 7, mapping.symbolized);
        boolean(&mut message, 8, mapping.symbolized);
        boolean(&mut message, 9, mapping.symbolized);
        boolean(&mut message, 10, mapping.symbolized);
        bytes(&mut top, profile::MAPPING, &message);
    }
    for (index, location) in tables.locations.iter().enumerate() {
        message.clear();
        uint(&mut message, 1, index as u64 + 1);
        uint(&mut message, 2, location.mapping);
        uint(&mut message, 3, location.address);
        for &(function, line) in &location.lines {
            inner.clear();
            uint(&mut inner, 1, function);
            uint(&mut inner, 2, line as u64);
            bytes(&mut message, 4, &inner);
        }
        bytes(&mut top, profile::LOCATION, &message);
        flush(&mut top, &mut gz, false)?;
    }
    for (index, function) in tables.functions.iter().enumerate() {
        message.clear();
        uint(&mut message, 1, index as u64 + 1);
        uint(&mut message, 2, function.name);
        // No system_name: pprof takes a function whose name equals its
        // system name for not yet demangled and "simplifies" anything that
        // looks like C++, cutting `hash table of (u64, Session)` to
        // `hash table of ` and Rust's generic arguments; our names are
        // final.
        uint(&mut message, 4, function.filename);
        bytes(&mut top, profile::FUNCTION, &message);
        flush(&mut top, &mut gz, false)?;
    }
    for text in &tables.strings {
        bytes(&mut top, profile::STRING_TABLE, text.as_bytes());
        flush(&mut top, &mut gz, false)?;
    }
    uint(&mut top, profile::TIME_NANOS, planned.time_nanos);
    message.clear();
    uint(&mut message, 1, space_type);
    uint(&mut message, 2, bytes_unit);
    bytes(&mut top, profile::PERIOD_TYPE, &message);
    // Every object is counted: no sampling period to scale by.
    uint(&mut top, profile::PERIOD, 1);
    packed(&mut top, &mut scratch, profile::COMMENT, &planned.comments);
    uint(&mut top, profile::DEFAULT_SAMPLE_TYPE, space);
    flush(&mut top, &mut gz, true)?;
    let mut counting = gz.finish()?;
    counting.flush()?;
    Ok(counting.bytes)
}

/// A frame's name in folded stacks: `;` separates frames there and a line
/// ends the stack, so both become `,` and a space.
fn folded_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ';' => ',',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect()
}

/// Writes `planned` as folded stacks (`root;...;leaf value`, one line per
/// distinct stack of function names, sorted), the value being `value` of
/// each sample; lines whose value is 0 are left out. Returns the bytes
/// written.
pub(super) fn write_collapsed<W: Write>(
    planned: &Planned,
    value: CollapsedValue,
    mut out: W,
) -> io::Result<u64> {
    let tables = &planned.tables;
    let name_of = |function: u64| -> String {
        function
            .checked_sub(1)
            .and_then(|index| tables.functions.get(index as usize))
            .and_then(|function| tables.strings.get(function.name as usize))
            .map_or_else(|| "?".to_owned(), |name| folded_name(name))
    };
    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for sample in &planned.samples {
        let amount = match value {
            CollapsedValue::Objects => sample.values[0],
            CollapsedValue::Bytes => sample.values[1],
        };
        if amount == 0 {
            continue;
        }
        let mut frames: Vec<String> = Vec::new();
        for &location in sample.locations.iter().rev() {
            let Some(row) = location
                .checked_sub(1)
                .and_then(|index| tables.locations.get(index as usize))
            else {
                continue;
            };
            if row.lines.is_empty() {
                frames.push(format!("{:#x}", row.address));
            }
            for &(function, _) in row.lines.iter().rev() {
                frames.push(name_of(function));
            }
        }
        let entry = lines.entry(frames.join(";")).or_insert(0);
        *entry = entry.saturating_add(amount);
    }
    let mut written = 0u64;
    for (stack, amount) in lines {
        let line = format!("{stack} {amount}\n");
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()?;
    Ok(written)
}
