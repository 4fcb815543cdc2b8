//! The heapdump-rs format, version 1.x, as `docs/FORMAT.md` describes it.
//!
//! One sequential pass over the records: every record's length is checked
//! against the file before its body is decoded, fields are decoded inside the
//! body (bytes left after the known fields are skipped, as newer minor
//! versions append fields), unknown tags are skipped whole. OBJECT records,
//! the bulk of a dump, are only counted in that pass and cut into runs of
//! `OBJECTS_PER_RUN` (65,536); the runs are then decoded in parallel, each straight
//! into its part of the object table. The first error in file order wins,
//! as if everything had been decoded in one pass. Afterwards the objects are
//! sorted by address if the file did not have them in order, and checked
//! for overlaps; every allocation site an object names must exist.

use std::collections::HashSet;

use std::mem::MaybeUninit;

use heapdump_format::encode::Stats as WireStats;
use heapdump_format::{tag, ContentsMode, MAGIC, VERSION_MAJOR, VERSION_MINOR};
use rayon::prelude::*;

use crate::cursor::Cursor;
use crate::dump::{
    AllocatorStats, Capabilities, Dump, DumpInfo, Module, ModuleRange, Object, Root, RootKind,
    Stack, StackId, ThreadCoverage,
};
use crate::error::{Error, ErrorKind};
use crate::formats::{bad_value, unique_id, unique_stack_id, Format};
use crate::graph::{MAX_OBJECTS, MAX_ROOTS};

/// The format's name.
pub const NAME: &str = "heapdump-rs";

/// How many bytes of the file between two calls of the progress callback.
const PROGRESS_STEP: u64 = 4 << 20;

/// The heapdump-rs format (files that start with `heapdump-rs\0`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RustFormat;

impl Format for RustFormat {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["hdump"]
    }

    fn matches(&self, bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC)
    }

    /// Conservative scanning; the roots miss memory the writer does not
    /// dump; sites are sampled unless `HEAPDUMP_SAMPLE_RATE=1` (before
    /// format 1.1, which gives every object a short site: the hint is
    /// dropped for such dumps in `finish`).
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pointers_exact: false,
            roots_complete: false,
            unreached_objects_hold: false,
            every_site_hint: Some("dump with HEAPDUMP_SAMPLE_RATE=1 to record every site"),
        }
    }

    fn root_caveat(&self, dump: &Dump<'_>) -> Option<String> {
        let thread_stacks = dump
            .roots
            .iter()
            .filter(|root| matches!(root.kind, RootKind::ThreadStack { .. }))
            .count();
        Some(format!(
            "This dump's roots are the modules' writable segments (statics) and {} \
             thread stack{} (with saved registers and static thread-locals). Memory the \
             writer does not dump is not a root: dynamic thread-locals of dlopen'ed \
             libraries, memory that C code allocated with malloc, the stacks of threads \
             that block the dump's stop signal. Objects held only from there look \
             unreachable.",
            thread_stacks,
            if thread_stacks == 1 { "" } else { "s" }
        ))
    }

    fn parse<'data>(
        &self,
        bytes: &'data [u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Dump<'data>, Error> {
        Parser::new(bytes).run(progress)
    }
}

/// Name of the region a record body is, for error messages.
fn record_region(tag: u64) -> &'static str {
    match tag {
        tag::END => "END record",
        tag::PARAMS => "PARAMS record",
        tag::MODULE => "MODULE record",
        tag::ROOT_SEGMENT => "ROOT_SEGMENT record",
        tag::ROOT_THREAD_STACK => "ROOT_THREAD_STACK record",
        tag::STACK => "STACK record",
        tag::OBJECT => "OBJECT record",
        tag::STATS => "STATS record",
        _ => "record",
    }
}

/// Slots of a run's cache of known stack ids.
const KNOWN_STACKS: usize = 256;

/// OBJECT records decoded by one parallel task.
const OBJECTS_PER_RUN: u64 = 1 << 16;

/// A run of consecutive records holding `objects` OBJECT records (and
/// possibly others, which the first pass already read), file bytes
/// `[start, end)`.
#[derive(Clone, Copy, Debug)]
struct ObjectRun {
    start: u64,
    end: u64,
    objects: u64,
}

/// What decoding one run found besides its objects.
struct RunSummary {
    bytes: u64,
    /// Bytes after the known fields of OBJECT records (a newer minor
    /// version's appended fields).
    leftover_bytes: u64,
    sorted: bool,
    first_address: Option<u64>,
    last_address: Option<u64>,
    /// `(stack_id, offset of the field)` of objects naming a stack no STACK
    /// record has.
    unresolved_stacks: Vec<(u64, u64)>,
}

/// Everything read so far.
struct Parser<'data> {
    bytes: &'data [u8],
    info: Option<DumpInfo>,
    modules: Vec<Module>,
    module_ids: HashSet<u64>,
    roots: Vec<Root<'data>>,
    stacks: Vec<Stack>,
    stack_ids: HashSet<u64>,
    /// OBJECT records seen so far, cut into runs.
    object_runs: Vec<ObjectRun>,
    object_count: u64,
    objects: Vec<Object>,
    object_bytes: u64,
    /// The END record's object bytes and their offset, checked once the
    /// objects are decoded.
    end_object_bytes: Option<(u64, u64)>,
    objects_sorted: bool,
    stats: Option<AllocatorStats>,
    /// `(module_id, offset of the field)` of segments whose module had not
    /// been read yet when the segment was.
    unresolved_modules: Vec<(u64, u64)>,
    /// `(stack_id, offset of the field)` of objects whose stack had not been
    /// read yet when the object was.
    unresolved_stacks: Vec<(u64, u64)>,
    /// The file's version is this reader's own (or older): every record and
    /// field is known, so an unknown tag or bytes left in a record mean a
    /// corrupt file. A newer minor version's are skipped instead.
    strict: bool,
    /// The file's version, `major.minor`.
    version: String,
    /// The file's minor version: which appended fields its records have.
    minor: u16,
    /// PARAMS `short_site_frames` (1.1): 0 when the writer recorded no
    /// short sites.
    short_site_frames: u64,
    /// Records and bytes of a newer minor version skipped.
    skipped_records: u64,
    skipped_bytes: u64,
}

impl<'data> Parser<'data> {
    fn new(bytes: &'data [u8]) -> Parser<'data> {
        Parser {
            bytes,
            info: None,
            modules: Vec::new(),
            module_ids: HashSet::new(),
            roots: Vec::new(),
            stacks: Vec::new(),
            stack_ids: HashSet::new(),
            object_runs: Vec::new(),
            object_count: 0,
            objects: Vec::new(),
            object_bytes: 0,
            end_object_bytes: None,
            objects_sorted: true,
            stats: None,
            unresolved_modules: Vec::new(),
            unresolved_stacks: Vec::new(),
            strict: true,
            version: String::new(),
            minor: 0,
            short_site_frames: 0,
            skipped_records: 0,
            skipped_bytes: 0,
        }
    }

    fn run(mut self, progress: &mut dyn FnMut(u64, u64)) -> Result<Dump<'data>, Error> {
        let records = self.records(progress);
        // Objects before the point where the records failed (or all of
        // them) are decoded either way: an error inside one of them comes
        // first in the file.
        let objects = self.decode_objects();
        match (records, objects) {
            (Err(records), Err(objects)) => Err(if objects.offset < records.offset {
                objects
            } else {
                records
            }),
            (Err(error), Ok(())) | (Ok(()), Err(error)) => Err(error),
            (Ok(()), Ok(())) => {
                if let Some((expected, offset)) = self.end_object_bytes {
                    check_count("object bytes", expected, self.object_bytes, offset)?;
                }
                let total = self.bytes.len() as u64;
                let dump = self.finish()?;
                progress(total, total);
                Ok(dump)
            }
        }
    }

    /// The sequential pass: every record but the objects' bodies.
    fn records(&mut self, progress: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
        let total = self.bytes.len() as u64;
        let mut file = Cursor::new(self.bytes, 0, "file");
        self.header(&mut file)?;
        let version = self.version.clone();
        progress(file.offset(), total);
        let mut next_progress = PROGRESS_STEP;

        let mut record_count: u64 = 0;
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
            let len_offset = file.offset();
            let body_len = file.uvarint("record body length")?;
            let mut body =
                file.sub_cursor(body_len, "record body", len_offset, record_region(tag))?;
            if record_count == 0 && tag != tag::PARAMS {
                return Err(Error::new(
                    record_offset,
                    ErrorKind::ParamsNotFirst {
                        tag,
                        name: tag::name(tag),
                    },
                ));
            }
            match tag {
                tag::END => {
                    self.end(&mut body, record_count)?;
                    self.leftover(&body, tag)?;
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
                tag::PARAMS => self.params(&mut body, record_offset, &version)?,
                tag::MODULE => self.module(&mut body)?,
                tag::ROOT_SEGMENT => self.root_segment(&mut body, record_offset)?,
                tag::ROOT_THREAD_STACK => self.root_thread_stack(&mut body, record_offset)?,
                tag::STACK => self.stack(&mut body)?,
                tag::OBJECT => self.count_object(record_offset, file.offset())?,
                tag::STATS => self.stats(&mut body, record_offset)?,
                _ if self.strict => {
                    return Err(Error::new(
                        record_offset,
                        ErrorKind::UnknownTag {
                            format: NAME,
                            tag,
                            reason: "no record of this file's version has it (a corrupt file?)",
                        },
                    ))
                }
                // A record of a newer minor version: skipped whole (its
                // bytes are counted as left over below).
                _ => self.skipped_records += 1,
            }
            // What the known fields left of the body. OBJECT bodies are
            // decoded, and checked, in `decode_run`.
            if tag != tag::OBJECT {
                self.leftover(&body, tag)?;
            }
            record_count += 1;
            if file.offset() >= next_progress {
                progress(file.offset(), total);
                next_progress = file.offset().saturating_add(PROGRESS_STEP);
            }
        }
        Ok(())
    }

    /// Bytes left in `body` after its known fields: an error in a file of
    /// this reader's version, counted and skipped in a newer one.
    fn leftover(&mut self, body: &Cursor<'data>, tag: u64) -> Result<(), Error> {
        let count = body.remaining() as u64;
        if count == 0 {
            return Ok(());
        }
        if self.strict {
            return Err(Error::new(
                body.offset(),
                ErrorKind::LeftoverBytes {
                    name: tag::name(tag),
                    count,
                    version: self.version.clone(),
                },
            ));
        }
        self.skipped_bytes += count;
        Ok(())
    }

    /// Reads the 16-byte header: the version, and whether this reader
    /// knows all of it ([`Parser::strict`]).
    fn header(&mut self, file: &mut Cursor<'data>) -> Result<(), Error> {
        let magic: [u8; 12] = file.array("magic")?;
        if &magic != MAGIC {
            return Err(Error::new(
                0,
                ErrorKind::UnknownFormat {
                    first_bytes: crate::error::FirstBytes::of(self.bytes),
                    known: crate::formats::KNOWN_FORMATS,
                },
            ));
        }
        let version_offset = file.offset();
        let major = u16::from_le_bytes(file.array("major version")?);
        let minor = u16::from_le_bytes(file.array("minor version")?);
        if major != VERSION_MAJOR {
            return Err(Error::new(
                version_offset,
                ErrorKind::UnsupportedVersion {
                    format: NAME,
                    major,
                    minor,
                    supported: VERSION_MAJOR,
                },
            ));
        }
        self.version = format!("{major}.{minor}");
        self.minor = minor;
        // `<=`, not `==`: older minor versions are fully known too (their
        // records end before the fields later versions appended).
        let known = minor <= VERSION_MINOR;
        self.strict = known;
        Ok(())
    }

    fn params(
        &mut self,
        body: &mut Cursor<'data>,
        record_offset: u64,
        version: &str,
    ) -> Result<(), Error> {
        if self.info.is_some() {
            return Err(Error::new(
                record_offset,
                ErrorKind::DuplicateRecord { name: "PARAMS" },
            ));
        }
        let pointer_size_offset = body.offset();
        let pointer_size = body.uvarint("pointer_size")?;
        let pointer_size = match pointer_size {
            4 => 4,
            8 => 8,
            other => {
                return Err(bad_value(
                    pointer_size_offset,
                    "pointer_size",
                    other,
                    "must be 4 or 8",
                ))
            }
        };
        let big_endian = body.bool("big_endian")?;
        let arch = body.string("arch")?.into_owned();
        let os = body.string("os")?.into_owned();
        let pid = body.uvarint("pid")?;
        let time_unix_ns = body.uvarint("time_unix_ns")?;
        let executable = body.string("executable")?.into_owned();
        let build_id = body.bytes("build_id")?.to_vec();
        let writer = body.string("writer")?.into_owned();
        let mode_offset = body.offset();
        let mode = body.uvarint("contents_mode")?;
        let contents_mode = ContentsMode::from_u64(mode).ok_or_else(|| {
            bad_value(
                mode_offset,
                "contents_mode",
                mode,
                "must be 0 (full) or 1 (redacted)",
            )
        })?;
        let sample_rate = body.uvarint("sample_rate")?;
        if self.minor >= 1 {
            self.short_site_frames = body.uvarint("short_site_frames")?;
        }
        self.info = Some(DumpInfo {
            format: NAME,
            format_version: version.to_owned(),
            pointer_size,
            big_endian,
            arch,
            os,
            pid,
            time_unix_ns,
            executable,
            build_id,
            writer,
            contents_mode,
            sample_rate,
        });
        Ok(())
    }

    fn module(&mut self, body: &mut Cursor<'data>) -> Result<(), Error> {
        let id = unique_id(
            body,
            "module_id",
            &mut self.module_ids,
            "another MODULE record has the same id",
        )?;
        let path = body.string("path")?.into_owned();
        let build_id = body.bytes("build_id")?.to_vec();
        let load_bias = body.uvarint("load_bias")?;
        let range_count = body.uvarint("range_count")?;
        // Each range takes at least 3 bytes: the count cannot reserve more
        // than the body holds.
        let reserve = range_count.min(body.remaining() as u64 / 3) as usize;
        let mut ranges = Vec::with_capacity(reserve);
        for _ in 0..range_count {
            let start = body.uvarint("range start")?;
            let size = body.uvarint("range size")?;
            let flags = body.uvarint("range flags")?;
            ranges.push(ModuleRange { start, size, flags });
        }
        self.modules.push(Module {
            id,
            path,
            build_id,
            load_bias,
            ranges,
        });
        Ok(())
    }

    fn push_root(&mut self, root: Root<'data>, record_offset: u64) -> Result<(), Error> {
        if self.roots.len() as u64 >= MAX_ROOTS {
            return Err(Error::new(
                record_offset,
                ErrorKind::TooManyRoots { max: MAX_ROOTS },
            ));
        }
        self.roots.push(root);
        Ok(())
    }

    fn root_segment(&mut self, body: &mut Cursor<'data>, record_offset: u64) -> Result<(), Error> {
        let module_offset = body.offset();
        let module_id = body.uvarint("module_id")?;
        let address_offset = body.offset();
        let address = body.uvarint("address")?;
        let contents = body.bytes("contents")?;
        check_range(address_offset, address, contents.len() as u64)?;
        if !self.module_ids.contains(&module_id) {
            self.unresolved_modules.push((module_id, module_offset));
        }
        self.push_root(
            Root::new(RootKind::Segment { module_id }, address, contents),
            record_offset,
        )
    }

    fn root_thread_stack(
        &mut self,
        body: &mut Cursor<'data>,
        record_offset: u64,
    ) -> Result<(), Error> {
        let thread_id = body.uvarint("thread_id")?;
        let name = body.string("name")?.into_owned();
        let address_offset = body.offset();
        let address = body.uvarint("address")?;
        let contents = body.bytes("contents")?;
        check_range(address_offset, address, contents.len() as u64)?;
        self.push_root(
            Root::new(RootKind::ThreadStack { thread_id, name }, address, contents),
            record_offset,
        )
    }

    fn stack(&mut self, body: &mut Cursor<'data>) -> Result<(), Error> {
        let stack_id = unique_stack_id(
            body,
            "stack_id",
            &mut self.stack_ids,
            "another STACK record has the same id",
        )?;
        let frame_count = body.uvarint("frame_count")?;
        // Each pc takes at least one byte.
        let reserve = frame_count.min(body.remaining() as u64) as usize;
        let mut pcs = Vec::with_capacity(reserve);
        for _ in 0..frame_count {
            pcs.push(body.uvarint("pc")?);
        }
        let mut stack = Stack::from_pcs(stack_id, pcs);
        if self.minor >= 1 {
            stack.short = body.bool("short")?;
        }
        self.stacks.push(stack);
        Ok(())
    }

    /// Counts an OBJECT record (`[record_offset, end)` of the file) into
    /// the current run; its body is decoded later, in parallel.
    fn count_object(&mut self, record_offset: u64, end: u64) -> Result<(), Error> {
        if self.object_count >= MAX_OBJECTS {
            return Err(Error::new(
                record_offset,
                ErrorKind::TooManyObjects { max: MAX_OBJECTS },
            ));
        }
        self.object_count += 1;
        match self.object_runs.last_mut() {
            Some(run) if run.objects < OBJECTS_PER_RUN => {
                run.end = end;
                run.objects += 1;
            }
            _ => self.object_runs.push(ObjectRun {
                start: record_offset,
                end,
                objects: 1,
            }),
        }
        Ok(())
    }

    /// Decodes the counted OBJECT records, a run per task, into
    /// `self.objects`. On an error, the one earliest in the file.
    fn decode_objects(&mut self) -> Result<(), Error> {
        let count = usize::try_from(self.object_count).unwrap_or(usize::MAX);
        let mut objects: Vec<Object> = Vec::new();
        if objects.try_reserve_exact(count).is_err() {
            return Err(Error::new(
                self.object_runs.first().map_or(0, |run| run.start),
                ErrorKind::TooManyObjects { max: MAX_OBJECTS },
            ));
        }
        // Each run writes its own part of the table.
        let mut rest = &mut objects.spare_capacity_mut()[..count];
        let mut parts = Vec::with_capacity(self.object_runs.len());
        for run in &self.object_runs {
            let (part, tail) = rest.split_at_mut(run.objects as usize);
            parts.push((*run, part));
            rest = tail;
        }
        let (bytes, stack_ids) = (self.bytes, &self.stack_ids);
        let strict = self.strict.then_some(self.version.as_str());
        let summaries: Vec<Result<RunSummary, Error>> = parts
            .into_par_iter()
            .map(|(run, part)| decode_run(bytes, run, part, stack_ids, strict))
            .collect();
        let mut previous_last: Option<u64> = None;
        for summary in summaries {
            // Runs are in file order: the first error is the earliest.
            let summary = summary?;
            if let (Some(last), Some(first)) = (previous_last, summary.first_address) {
                if first <= last {
                    self.objects_sorted = false;
                }
            }
            self.objects_sorted &= summary.sorted;
            previous_last = summary.last_address.or(previous_last);
            self.unresolved_stacks.extend(summary.unresolved_stacks);
            self.object_bytes = self.object_bytes.saturating_add(summary.bytes);
            self.skipped_bytes = self.skipped_bytes.saturating_add(summary.leftover_bytes);
        }
        // SAFETY: every run decoded without error wrote exactly its
        // `objects` entries (one per OBJECT record it counted), and the runs
        // cover the first `count` entries.
        unsafe { objects.set_len(count) };
        self.objects = objects;
        Ok(())
    }

    fn stats(&mut self, body: &mut Cursor<'data>, record_offset: u64) -> Result<(), Error> {
        if self.stats.is_some() {
            return Err(Error::new(
                record_offset,
                ErrorKind::DuplicateRecord { name: "STATS" },
            ));
        }
        // The field order is heapdump-format's, which the writer and the
        // builder encode with.
        let mut fields = [0u64; WireStats::FIELDS.len()];
        for (value, name) in fields.iter_mut().zip(WireStats::FIELDS) {
            *value = body.uvarint(name)?;
        }
        let wire = WireStats::from_fields(fields);
        self.stats = Some(AllocatorStats {
            live_bytes: wire.live_bytes,
            live_objects: wire.live_objects,
            allocated_bytes: wire.allocated_bytes,
            allocated_objects: wire.allocated_objects,
            freed_bytes: wire.freed_bytes,
            freed_objects: wire.freed_objects,
            peak_live_bytes: wire.peak_live_bytes,
            tracker_bytes: wire.tracker_bytes,
            threads: None,
        });
        // Appended fields: older writers end the record here. Bytes that do
        // not decode as both counts are an error in a file of this reader's
        // version, and a newer minor version's fields otherwise (left in
        // `body`, where `leftover` counts them).
        if body.is_empty() {
            return Ok(());
        }
        let [threads_field, dumped_field] = WireStats::THREAD_FIELDS;
        let mut appended = body.clone();
        match (
            appended.uvarint(threads_field),
            appended.uvarint(dumped_field),
        ) {
            (Ok(threads), Ok(dumped)) => {
                *body = appended;
                if let Some(stats) = &mut self.stats {
                    stats.threads = Some(ThreadCoverage { threads, dumped });
                }
            }
            (Err(error), _) | (_, Err(error)) if self.strict => return Err(error),
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, body: &mut Cursor<'data>, record_count: u64) -> Result<(), Error> {
        let checks: [(&'static str, u64); 2] = [
            ("records", record_count),
            ("OBJECT records", self.object_count),
        ];
        for (what, actual) in checks {
            let offset = body.offset();
            let expected = body.uvarint(what)?;
            check_count(what, expected, actual, offset)?;
        }
        // The objects' bytes are known once their bodies are decoded.
        let offset = body.offset();
        self.end_object_bytes = Some((body.uvarint("object bytes")?, offset));
        Ok(())
    }

    /// Cross-record checks, then the [`Dump`].
    fn finish(mut self) -> Result<Dump<'data>, Error> {
        let Some(info) = self.info.take() else {
            return Err(Error::new(0, ErrorKind::MissingParams));
        };
        if let Some(&(id, offset)) = self
            .unresolved_modules
            .iter()
            .find(|(id, _)| !self.module_ids.contains(id))
        {
            return Err(bad_value(
                offset,
                "module_id",
                id,
                "no MODULE record has this id",
            ));
        }
        if let Some(&(id, offset)) = self
            .unresolved_stacks
            .iter()
            .find(|(id, _)| !self.stack_ids.contains(id))
        {
            return Err(bad_value(
                offset,
                "stack_id",
                id,
                "no STACK record has this id",
            ));
        }

        let mut objects = self.objects;
        if !self.objects_sorted {
            objects.par_sort_unstable_by_key(|object| object.address);
        }
        check_overlaps(&objects)?;
        let mut stacks = self.stacks;
        stacks.sort_unstable_by_key(|stack| stack.id);

        let mut dump = Dump::new(info);
        dump.modules = self.modules;
        dump.roots = self.roots;
        dump.stacks = stacks;
        dump.objects = objects;
        dump.data = self.bytes;
        dump.stats = self.stats;
        if self.short_site_frames > 0 {
            // Every object not sampled has its short site: no hint to dump
            // again at rate 1 for sites.
            dump.capabilities.every_site_hint = None;
        }
        if self.skipped_records > 0 || self.skipped_bytes > 0 {
            dump.warnings.push(format!(
                "the dump is format version {}, newer than this reader's {VERSION_MAJOR}.{VERSION_MINOR}: \
                 skipped {} records and {} bytes of fields it does not know",
                self.version, self.skipped_records, self.skipped_bytes
            ));
        }
        Ok(dump)
    }
}

/// An END record's count `what` must be what the file holds.
fn check_count(what: &'static str, expected: u64, actual: u64, offset: u64) -> Result<(), Error> {
    if expected == actual {
        return Ok(());
    }
    Err(Error::new(
        offset,
        ErrorKind::CountMismatch {
            what,
            expected,
            actual,
        },
    ))
}

/// Decodes the OBJECT records of `run` into `out`, one entry per record.
/// `strict`: the file's version when this reader knows all of its fields
/// (bytes after them are an error), `None` for a newer minor version (they
/// are counted and skipped).
fn decode_run(
    bytes: &[u8],
    run: ObjectRun,
    out: &mut [MaybeUninit<Object>],
    stack_ids: &HashSet<u64>,
    strict: Option<&str>,
) -> Result<RunSummary, Error> {
    let mut summary = RunSummary {
        bytes: 0,
        leftover_bytes: 0,
        sorted: true,
        first_address: None,
        last_address: None,
        unresolved_stacks: Vec::new(),
    };
    // Stack ids found in `stack_ids` lately, by a hash of the id: objects of
    // a few sites skip most of the (SipHash) set lookups. Ids are never 0,
    // so an empty slot never matches.
    let mut known_stacks = [0u64; KNOWN_STACKS];
    let range = usize::try_from(run.start).unwrap_or(usize::MAX)
        ..usize::try_from(run.end).unwrap_or(usize::MAX);
    let mut file = Cursor::new(bytes.get(range).unwrap_or(&[]), run.start, "file");
    let mut written = 0;
    while !file.is_empty() {
        // The first pass checked every record's framing.
        let tag = file.uvarint("record tag")?;
        let len_offset = file.offset();
        let body_len = file.uvarint("record body length")?;
        let mut body = file.sub_cursor(body_len, "record body", len_offset, record_region(tag))?;
        if tag != tag::OBJECT {
            continue;
        }
        let address_offset = body.offset();
        let address = body.uvarint("address")?;
        let size = body.uvarint("size")?;
        let stack_offset = body.offset();
        let stack_id = body.uvarint("stack_id")?;
        let contents_offset = body.offset();
        let contents = body.bytes("contents")?;
        if contents.len() as u64 != size {
            return Err(Error::new(
                contents_offset,
                ErrorKind::ContentsSizeMismatch {
                    address,
                    size,
                    contents_len: contents.len() as u64,
                },
            ));
        }
        check_range(address_offset, address, size)?;
        if !body.is_empty() {
            let count = body.remaining() as u64;
            if let Some(version) = strict {
                return Err(Error::new(
                    body.offset(),
                    ErrorKind::LeftoverBytes {
                        name: "OBJECT",
                        count,
                        version: version.to_owned(),
                    },
                ));
            }
            summary.leftover_bytes += count;
        }
        let site = StackId::new(stack_id);
        if site.is_some() {
            let slot = (stack_id ^ stack_id >> 16 ^ stack_id >> 32) as usize % KNOWN_STACKS;
            if known_stacks[slot] != stack_id {
                if stack_ids.contains(&stack_id) {
                    known_stacks[slot] = stack_id;
                } else {
                    summary.unresolved_stacks.push((stack_id, stack_offset));
                }
            }
        }
        if summary.last_address.is_some_and(|last| address <= last) {
            summary.sorted = false;
        }
        summary.first_address.get_or_insert(address);
        summary.last_address = Some(address);
        // Sizes equal contents lengths, which the file bounds: no overflow.
        summary.bytes = summary.bytes.saturating_add(size);
        let Some(slot) = out.get_mut(written) else {
            // Cannot happen: the first pass counted this run's records.
            return Err(Error::new(
                run.start,
                ErrorKind::TooManyObjects { max: MAX_OBJECTS },
            ));
        };
        slot.write(Object::new(address, size, site, offset_in(bytes, contents)));
        written += 1;
    }
    if written != out.len() {
        return Err(Error::new(
            run.start,
            ErrorKind::TooManyObjects { max: MAX_OBJECTS },
        ));
    }
    Ok(summary)
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

/// File offset of `part`, a slice of `file`: where an object's contents
/// start ([`Object::contents_at`]).
pub(crate) fn offset_in(file: &[u8], part: &[u8]) -> u64 {
    (part.as_ptr() as usize).saturating_sub(file.as_ptr() as usize) as u64
}

/// Checks sorted `objects` for duplicates and overlaps. The error's offset is
/// that of the later object's contents.
pub(crate) fn check_overlaps(objects: &[Object]) -> Result<(), Error> {
    for pair in objects.windows(2) {
        let [first, second] = pair else { continue };
        let kind = if first.address == second.address {
            ErrorKind::DuplicateObject {
                address: first.address,
            }
        } else if second.address < first.end() {
            ErrorKind::OverlappingObjects {
                first: first.address,
                first_size: first.size,
                second: second.address,
            }
        } else {
            continue;
        };
        return Err(Error::new(second.contents_at, kind));
    }
    Ok(())
}
