//! Names from the binary: turns the raw return addresses of heapdump-rs
//! allocation-site stacks into frames (function, file, line, with inlined
//! calls expanded), and infers the type of each sampled object from the
//! allocating API its site went through (`Box::<T>::new` → `T`).
//!
//! Binaries are read by [`Binary`] (the one place that reads executables);
//! this module adds the DWARF side: `addr2line` over `gimli` for line
//! tables and inlined chains, `rustc-demangle` for names, the symbol table
//! when there is no debug info, and `module+0xoffset` when there is no
//! binary at all.
//!
//! - [`Symbolizer::new`] finds a binary for each module that holds a PC:
//!   the one the user gives for the main executable (refused when its
//!   build-id differs from the dump's), else the path the dump records when
//!   that file is still there with the same build-id.
//! - [`Symbolizer::symbolize`] resolves every unique PC once (`pc - 1`:
//!   they are return addresses), in parallel, and fills [`Stack::frames`](heapdump_reader::Stack::frames),
//!   [`Stack::frame_pcs`](heapdump_reader::Stack::frame_pcs) and [`Stack::allocator_frames`](heapdump_reader::Stack::allocator_frames).
//! - [`infer_types`] names objects' types from their sites into
//!   [`Dump::types`] and [`Object::type_index`](heapdump_reader::Object) (marked
//!   [`TypeInfo::from_site`]), so every report groups by them.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use gimli::{EndianSlice, RunTimeEndian};
use object::{Object as _, ObjectSection as _};
use rayon::prelude::*;

use heapdump_reader::{Dump, Frame, Module, TypeIndex, TypeInfo};

use crate::binary::Binary;
use crate::error::Error;

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// Where a module's names come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A binary: the path, and whether it has DWARF line tables.
    Binary {
        /// The binary's path.
        path: String,
        /// It has `.debug_info` (functions, files, lines, inlining).
        debug_info: bool,
    },
    /// No binary: PCs are named `module+0xoffset`. Why not.
    None(String),
}

/// One module of the dump and where its names come from.
#[derive(Clone, Debug)]
pub struct ModuleSource {
    /// The module's path as the dump records it.
    pub module: String,
    /// Where its names come from.
    pub source: Source,
    /// It is the main executable (module 0), not a shared library.
    pub main: bool,
}

impl fmt::Display for ModuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Binary {
                path,
                debug_info: true,
            } => write!(f, "{}: debug info from {path}", self.module),
            Source::Binary {
                path,
                debug_info: false,
            } => write!(
                f,
                "{}: symbol names only from {path} (no debug info: no files, lines or inlined frames)",
                self.module
            ),
            Source::None(why) => write!(f, "{}: offsets only ({why})", self.module),
        }
    }
}

struct SymModule {
    name: String,
    bias: u64,
    binary: Option<Binary>,
    debug_info: bool,
}

/// Resolves the PCs of a dump's stacks through its modules' binaries.
pub struct Symbolizer {
    modules: Vec<SymModule>,
    /// `(start, end, index into modules)`, by start.
    ranges: Vec<(u64, u64, usize)>,
    sources: Vec<ModuleSource>,
}

/// What [`Symbolizer::symbolize`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SymbolizeStats {
    /// Stacks given frames.
    pub stacks: usize,
    /// Distinct PCs resolved.
    pub pcs: usize,
    /// PCs resolved to a function by debug info or a symbol.
    pub named_pcs: usize,
}

impl Symbolizer {
    /// Finds the binaries of `dump`'s modules that hold a stack PC. `main`,
    /// when given, is the main executable (module 0): it is refused with
    /// [`Error::BinaryMismatch`] when
    /// its build-id differs from the dump's. Other modules (and module 0
    /// without `main`) use the path the dump records, when that file exists
    /// with the same build-id; otherwise their PCs are named by offset.
    pub fn new(dump: &Dump<'_>, main: Option<Binary>) -> Result<Symbolizer, Error> {
        Symbolizer::with_pcs(dump, main, &[])
    }

    /// As [`Symbolizer::new`], and the modules that hold any of `pcs`
    /// (return addresses found elsewhere than in the dump's stacks: the
    /// frames of thread stack roots) get their binaries too.
    pub fn with_pcs(
        dump: &Dump<'_>,
        main: Option<Binary>,
        pcs: &[u64],
    ) -> Result<Symbolizer, Error> {
        let mut ranges = Vec::new();
        for (index, module) in dump.modules.iter().enumerate() {
            for range in &module.ranges {
                ranges.push((range.start, range.start.saturating_add(range.size), index));
            }
        }
        ranges.sort_unstable();
        let mut used = vec![false; dump.modules.len()];
        let stack_pcs = dump
            .stacks
            .iter()
            .filter(|stack| stack.frames.is_empty())
            .flat_map(|stack| stack.pcs.iter());
        for &pc in stack_pcs.chain(pcs) {
            if let Some(index) = find_range(&ranges, pc.wrapping_sub(1)) {
                if let Some(slot) = used.get_mut(index) {
                    *slot = true;
                }
            }
        }
        let mut main = main;
        let mut modules = Vec::with_capacity(dump.modules.len());
        let mut sources = Vec::new();
        for (index, module) in dump.modules.iter().enumerate() {
            let given = if index == 0 { main.take() } else { None };
            let (binary, source) = match given {
                Some(binary) => {
                    binary.check_module(module)?;
                    (Some(binary), None)
                }
                None if used.get(index).copied().unwrap_or(false) => recorded_binary(module),
                None => (None, Some(String::new())),
            };
            let debug_info = binary.as_ref().is_some_and(has_debug_info);
            let source = match (&binary, source) {
                (Some(binary), _) => Some(Source::Binary {
                    path: binary.path().display().to_string(),
                    debug_info,
                }),
                (None, Some(why)) if why.is_empty() => None,
                (None, Some(why)) => Some(Source::None(why)),
                (None, None) => None,
            };
            if let Some(source) = source {
                sources.push(ModuleSource {
                    module: module.path.clone(),
                    source,
                    main: index == 0,
                });
            }
            modules.push(SymModule {
                name: module_name(&module.path, index),
                bias: module.load_bias,
                binary,
                debug_info,
            });
        }
        Ok(Symbolizer {
            modules,
            ranges,
            sources,
        })
    }

    /// Where each module that holds a stack PC gets its names.
    pub fn sources(&self) -> &[ModuleSource] {
        &self.sources
    }

    /// Whether any PC can be named by a function (some module has a
    /// binary).
    pub fn has_binaries(&self) -> bool {
        self.modules.iter().any(|module| module.binary.is_some())
    }

    /// The frames of return address `pc`, innermost (inlined) first; one
    /// frame at least. Slow for many PCs (it reads the DWARF each call):
    /// use [`Symbolizer::symbolize`].
    pub fn resolve(&self, pc: u64) -> Vec<Frame> {
        let mut contexts = Contexts::new(self);
        contexts.resolve(pc)
    }

    /// The frames of each of `pcs` (return addresses), innermost (inlined)
    /// first, one list per PC in the same order; resolved in parallel,
    /// each DWARF context made once per worker. `progress(done, total)`
    /// counts PCs.
    pub fn resolve_all(
        &self,
        pcs: &[u64],
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Vec<Vec<Frame>> {
        let total = pcs.len() as u64;
        progress(0, total);
        let threads = rayon::current_num_threads().max(1);
        let chunk = pcs.len().div_ceil(threads * 4).max(256);
        let done = std::sync::atomic::AtomicU64::new(0);
        let progress = std::sync::Mutex::new(progress);
        pcs.par_chunks(chunk)
            .flat_map_iter(|chunk| {
                let mut contexts = Contexts::new(self);
                let out: Vec<Vec<Frame>> = chunk.iter().map(|&pc| contexts.resolve(pc)).collect();
                let now = done.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed)
                    + chunk.len() as u64;
                if let Ok(mut progress) = progress.try_lock() {
                    (*progress)(now, total);
                }
                out
            })
            .collect()
    }

    /// The binary that names the main executable (module 0): the one
    /// given to [`Symbolizer::new`], or the one at the path the dump
    /// records when its build-id matches.
    pub fn main_binary(&self) -> Option<&Binary> {
        self.modules.first()?.binary.as_ref()
    }

    /// Fills the frames of every stack of `dump` that has PCs and no
    /// frames. `progress(done, total)` counts distinct PCs.
    pub fn symbolize(
        &self,
        dump: &mut Dump<'_>,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> SymbolizeStats {
        let mut pcs: Vec<u64> = dump
            .stacks
            .iter()
            .filter(|stack| stack.frames.is_empty())
            .flat_map(|stack| stack.pcs.iter().copied())
            .collect();
        pcs.sort_unstable();
        pcs.dedup();
        let resolved = self.resolve_all(&pcs, progress);
        let total = pcs.len() as u64;
        let named_pcs = resolved
            .iter()
            .filter(|frames| {
                frames.first().is_some_and(|frame| {
                    frame.file.is_some()
                        || frame.line.is_some()
                        || frame
                            .function
                            .as_deref()
                            .is_some_and(|name| !name.contains("+0x"))
                })
            })
            .count();
        let mut stacks = 0;
        for stack in dump.stacks.iter_mut() {
            if !stack.frames.is_empty() || stack.pcs.is_empty() {
                continue;
            }
            stacks += 1;
            let mut frames = Vec::with_capacity(stack.pcs.len() * 2);
            let mut frame_pcs = Vec::with_capacity(stack.pcs.len() * 2);
            for (index, pc) in stack.pcs.iter().enumerate() {
                if let Ok(at) = pcs.binary_search(pc) {
                    if let Some(chain) = resolved.get(at) {
                        for frame in chain {
                            frames.push(frame.clone());
                            frame_pcs.push(index as u32);
                        }
                    }
                }
            }
            qualify_closures(&mut frames);
            stack.allocator_frames = site_start(&frames);
            stack.caller_frame = caller_frame(&frames, stack.allocator_frames);
            stack.runtime_frames = runtime_tail(&frames, stack.allocator_frames);
            stack.frames = frames;
            stack.frame_pcs = frame_pcs;
        }
        progress(total, total);
        SymbolizeStats {
            stacks,
            pcs: pcs.len(),
            named_pcs,
        }
    }
}

fn find_range(ranges: &[(u64, u64, usize)], address: u64) -> Option<usize> {
    let after = ranges.partition_point(|&(start, _, _)| start <= address);
    let &(start, end, index) = ranges.get(after.checked_sub(1)?)?;
    (address >= start && address < end).then_some(index)
}

/// The binary at the path the dump records for `module`, if it is there
/// with the same build-id; else why not.
fn recorded_binary(module: &Module) -> (Option<Binary>, Option<String>) {
    if module.path.is_empty() {
        return (None, Some("the dump records no path".to_owned()));
    }
    let path = Path::new(&module.path);
    match std::fs::metadata(path) {
        Err(_) => return (None, Some(format!("{} is not there", module.path))),
        Ok(metadata) if !metadata.is_file() => {
            return (None, Some(format!("{} is not a regular file", module.path)))
        }
        Ok(_) => {}
    }
    let binary = match Binary::open(path) {
        Ok(binary) => binary,
        Err(err) => return (None, Some(err.to_string())),
    };
    if module.build_id.is_empty() || binary.build_id().is_empty() {
        return (
            None,
            Some(format!(
                "{} has no build-id to check it against the dump's; give the binary explicitly",
                module.path
            )),
        );
    }
    match binary.check_module(module) {
        Ok(()) => (Some(binary), None),
        Err(err) => (None, Some(format!("not used: {err}"))),
    }
}

fn module_name(path: &str, index: usize) -> String {
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => format!("module{index}"),
    }
}

fn has_debug_info(binary: &Binary) -> bool {
    object::File::parse(binary.data()).is_ok_and(|file| {
        file.section_by_name(".debug_info")
            .is_some_and(|section| section.size() > 0)
    })
}

/// A DWARF context for `binary`, if it has debug info.
fn dwarf_context(binary: &Binary) -> Option<addr2line::Context<Reader<'_>>> {
    let file = object::File::parse(binary.data()).ok()?;
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Reader<'_>, gimli::Error> {
        let data = file
            .section_by_name(id.name())
            .filter(|section| {
                // Compressed sections would need decompressing first: use
                // the symbol table instead.
                section
                    .compressed_file_range()
                    .is_ok_and(|range| range.format == object::CompressionFormat::None)
            })
            .and_then(|section| section.data().ok())
            .unwrap_or(&[]);
        Ok(EndianSlice::new(data, endian))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    addr2line::Context::from_dwarf(dwarf).ok()
}

/// Per-thread DWARF contexts (addr2line's are not `Sync`), made on first
/// use for each module.
struct Contexts<'s> {
    symbolizer: &'s Symbolizer,
    contexts: HashMap<usize, Option<addr2line::Context<Reader<'s>>>>,
    /// Qualified subprogram names, per module and unit.
    names: HashMap<usize, HashMap<usize, UnitNames>>,
}

impl<'s> Contexts<'s> {
    fn new(symbolizer: &'s Symbolizer) -> Contexts<'s> {
        Contexts {
            symbolizer,
            contexts: HashMap::new(),
            names: HashMap::new(),
        }
    }

    fn resolve(&mut self, pc: u64) -> Vec<Frame> {
        let lookup = pc.wrapping_sub(1);
        let Some(index) = find_range(&self.symbolizer.ranges, lookup) else {
            return vec![Frame::default()];
        };
        let Some(module) = self.symbolizer.modules.get(index) else {
            return vec![Frame::default()];
        };
        let probe = lookup.wrapping_sub(module.bias);
        let mut out = Vec::new();
        if let Some(binary) = &module.binary {
            if module.debug_info {
                let context = self
                    .contexts
                    .entry(index)
                    .or_insert_with(|| dwarf_context(binary));
                if let Some(context) = context {
                    let names = self.names.entry(index).or_default();
                    dwarf_frames(context, names, probe, &mut out);
                }
            }
            // The outermost frame is the function that holds the code: its
            // symbol has the full path, which DWARF may lack.
            if let (Some(last), Some((symbol, _))) = (
                out.last_mut(),
                binary.symbol_at(probe).filter(|(s, _)| s.is_code),
            ) {
                let name = demangle(&symbol.name);
                let short = last.function.as_deref().map(last_segment).unwrap_or("");
                last.function = Some(with_generic_args(&name, short).into());
            }
            let named = out.first().is_some_and(|frame| frame.function.is_some());
            if !named {
                if let Some((symbol, _)) = binary.symbol_at(probe).filter(|(s, _)| s.is_code) {
                    let name = demangle(&symbol.name);
                    match out.first_mut() {
                        Some(frame) => frame.function = Some(name.into()),
                        None => out.push(Frame {
                            function: Some(name.into()),
                            file: None,
                            line: None,
                        }),
                    }
                }
            }
        }
        if out.is_empty() {
            out.push(Frame {
                function: Some(
                    format!("{}+{:#x}", module.name, pc.wrapping_sub(module.bias)).into(),
                ),
                file: None,
                line: None,
            });
        }
        out
    }
}

/// Qualified names of the subprograms of one unit, by DIE offset.
type UnitNames = HashMap<usize, String>;

/// The inlined chain at `probe`, innermost first.
fn dwarf_frames(
    context: &addr2line::Context<Reader<'_>>,
    names: &mut HashMap<usize, UnitNames>,
    probe: u64,
    out: &mut Vec<Frame>,
) {
    let Ok(mut frames) = context.find_frames(probe).skip_all_loads() else {
        return;
    };
    let unit = context.find_dwarf_and_unit(probe).skip_all_loads();
    let unit_names = unit.map(|unit| {
        let key = match unit.header.offset() {
            gimli::UnitSectionOffset::DebugInfoOffset(offset) => offset.0,
            gimli::UnitSectionOffset::DebugTypesOffset(offset) => offset.0 | (1 << 62),
        };
        &*names.entry(key).or_insert_with(|| qualified_names(unit))
    });
    while let Ok(Some(frame)) = frames.next() {
        let linkage = frame
            .function
            .as_ref()
            .and_then(|name| name.raw_name().ok())
            .map(|name| demangle(&name));
        // The DIE's own name carries the generic arguments
        // (`new<myservice::Session>`), which legacy-mangled linkage names
        // leave out (`alloc::boxed::Box<T>::new`); its namespaces give the
        // path that line-tables-only inlined frames lack.
        let die_name = match (frame.dw_die_offset, unit, unit_names) {
            (Some(offset), Some(unit), Some(unit_names)) => {
                die_name(unit.unit, unit_names, offset, 0)
            }
            _ => None,
        };
        let (file, line) = match frame.location {
            Some(location) => (
                location.file.map(str::to_owned),
                location.line.map(u64::from),
            ),
            None => (None, None),
        };
        let function = match (linkage, die_name) {
            (Some(linkage), Some(qualified)) if has_path(&linkage) => {
                Some(with_generic_args(&linkage, last_segment(&qualified)))
            }
            (Some(linkage), None) if has_path(&linkage) => Some(linkage),
            (_, Some(qualified)) if has_path(&qualified) => Some(qualified),
            (linkage, qualified) => qualified.or(linkage).map(|name| {
                // Line-tables-only DWARF has no namespaces: the path of the
                // source file stands in (`alloc::boxed::new<T>`).
                match file.as_deref().and_then(module_of_file) {
                    Some(module) => format!("{module}::{name}"),
                    None => name,
                }
            }),
        };
        out.push(Frame {
            function: function.map(Into::into),
            file: file.map(Into::into),
            line,
        });
    }
}

/// The module a source file holds, from its path: the directory before
/// the last `/src/` is the crate (a version suffix dropped, `-` → `_`),
/// the rest the module (`/rustc/…/library/alloc/src/vec/mod.rs` →
/// `alloc::vec`, `…/hashbrown-0.15.2/src/raw/mod.rs` → `hashbrown::raw`).
fn module_of_file(file: &str) -> Option<String> {
    let at = file.rfind("/src/")?;
    let krate_dir = file.get(..at)?.rsplit('/').next()?;
    let krate = match krate_dir.rsplit_once('-') {
        Some((name, version)) if version.starts_with(|c: char| c.is_ascii_digit()) => name,
        _ => krate_dir,
    };
    if krate.is_empty() {
        return None;
    }
    let mut module = krate.replace('-', "_");
    let rest = file.get(at + 5..)?.strip_suffix(".rs")?;
    for part in rest.split('/') {
        if matches!(part, "mod" | "lib" | "main") || part.is_empty() {
            continue;
        }
        module.push_str("::");
        module.push_str(part);
    }
    Some(module)
}

/// Qualified names (`alloc::boxed::{impl#0}::new<my::Session>`) of the
/// subprograms of `unit`, by DIE offset: namespaces and types around each
/// `DW_TAG_subprogram`, joined with its `DW_AT_name`.
fn qualified_names(unit: gimli::UnitRef<'_, Reader<'_>>) -> UnitNames {
    let mut names = UnitNames::new();
    let mut path: Vec<Option<String>> = Vec::new();
    let mut cursor = unit.entries();
    let mut depth: isize = 0;
    while let Ok(Some((delta, entry))) = cursor.next_dfs() {
        depth += delta;
        path.truncate(depth.max(0) as usize);
        let name = entry
            .attr_value(gimli::DW_AT_name)
            .ok()
            .flatten()
            .and_then(|value| unit.attr_string(value).ok())
            .map(|name| name.to_string_lossy().into_owned());
        let tag = entry.tag();
        if tag == gimli::DW_TAG_subprogram {
            if let Some(name) = &name {
                let mut full = String::new();
                for part in path.iter().flatten() {
                    full.push_str(part);
                    full.push_str("::");
                }
                full.push_str(name);
                names.insert(entry.offset().0, full);
            }
        }
        let scope = matches!(
            tag,
            gimli::DW_TAG_namespace
                | gimli::DW_TAG_structure_type
                | gimli::DW_TAG_enumeration_type
                | gimli::DW_TAG_union_type
                | gimli::DW_TAG_subprogram
        );
        path.push(if scope { name } else { None });
    }
    names
}

/// The qualified name of the subprogram the DIE at `offset` (an inlined
/// call or a subprogram) belongs to, following abstract origins and
/// specifications.
fn die_name(
    unit: &gimli::Unit<Reader<'_>>,
    names: &UnitNames,
    offset: gimli::UnitOffset,
    depth: u32,
) -> Option<String> {
    if let Some(name) = names.get(&offset.0) {
        return Some(name.clone());
    }
    if depth > 4 {
        return None;
    }
    let entry = unit.entry(offset).ok()?;
    for attr in [gimli::DW_AT_abstract_origin, gimli::DW_AT_specification] {
        if let Ok(Some(gimli::AttributeValue::UnitRef(next))) = entry.attr_value(attr) {
            return die_name(unit, names, next, depth + 1);
        }
    }
    None
}

/// `alloc::boxed::Box<T>::new` and `new<my::Session>` →
/// `alloc::boxed::Box<T>::new<my::Session>`: the linkage name's path with
/// the DIE name's generic arguments. Legacy mangling names every closure
/// and async body `{{closure}}`; the DIE's name says which, so
/// `svc::login::{{closure}}` and `{async_fn#0}` →
/// `svc::login::{async_fn#0}`.
fn with_generic_args(linkage: &str, short: &str) -> String {
    if last_segment(linkage) == "{{closure}}"
        && bare_closure(short).is_some_and(|(_, _, prefix)| prefix.is_empty())
    {
        if let Some(path) = linkage.strip_suffix("{{closure}}") {
            return format!("{path}{short}");
        }
    }
    let Some(open) = short.find('<') else {
        return linkage.to_owned();
    };
    let (base, args) = short.split_at(open);
    let last = last_segment(linkage);
    if last == base && !linkage.ends_with('>') {
        format!("{linkage}{args}")
    } else {
        linkage.to_owned()
    }
}

/// Whether `name` has a `::` path outside its generic arguments.
fn has_path(name: &str) -> bool {
    last_segment(name).len() != name.len()
}

/// The last `::` segment of a path, outside brackets.
fn last_segment(path: &str) -> &str {
    let mut depth = 0i32;
    let bytes = path.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'>') if i > 0 && bytes.get(i - 1) == Some(&b'-') => {}
            Some(b'<') | Some(b'(') | Some(b'[') => depth += 1,
            Some(b'>') | Some(b')') | Some(b']') => depth -= 1,
            Some(b':') if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    path.get(start..).unwrap_or(path)
}

/// A demangled Rust name without its hash, and without the suffixes LLVM
/// gives the copies it makes (`myleak::AUDIT_LOG.0` when it splits a
/// static, `.llvm.123`); other names as they are.
pub fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(demangled) => {
            let mut out = format!("{demangled:#}");
            while let Some((stem, suffix)) = out.rsplit_once('.') {
                let llvm = !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit());
                if !llvm || stem.is_empty() || stem.ends_with('.') {
                    break;
                }
                out.truncate(stem.len());
                if let Some(stem) = out.strip_suffix(".llvm") {
                    out.truncate(stem.len());
                }
            }
            out
        }
        Err(_) => name.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Allocation sites

/// Frames of the allocator itself: the tracker, the allocation shims,
/// `alloc::alloc`, `RawVec` growth.
fn is_allocator_frame(name: &str) -> bool {
    let name = name.trim_start_matches('<');
    let name = name.strip_prefix("__rustc::").unwrap_or(name);
    [
        "heapdump::",
        "__rust_alloc",
        "__rust_realloc",
        "__rust_alloc_zeroed",
        "__rg_",
        "__rdl_",
        "alloc::alloc::",
        "std::alloc::",
        "core::alloc::",
        "alloc::raw_vec::",
        "alloc::boxed::box_new_uninit",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// Frames of the standard library (and hashbrown, std's hash table) and of
/// the allocator: the allocating API, not the program's own code.
fn is_library_frame(name: &str) -> bool {
    const LIBRARY: [&str; 8] = [
        "alloc::",
        "core::",
        "std::",
        "hashbrown::",
        "heapdump::",
        "__rust",
        "__rg_",
        "__rdl_",
    ];
    let is_lib_path = |path: &str| {
        let path = path.strip_prefix("__rustc::").unwrap_or(path);
        LIBRARY.iter().any(|prefix| path.starts_with(prefix))
    };
    // Inherent methods of primitive types are std's (`<[u8]>::to_vec_in`,
    // `<str>::to_owned`, `<[_]>::to_vec_in::ConvertVec`).
    let primitive = |ty: &str| {
        let ty = ty.trim_start_matches(['<', '&', '*']);
        ty.starts_with('[')
            || ty.starts_with('(')
            || matches!(
                ty.split(['<', '>']).next().unwrap_or(""),
                "str"
                    | "u8"
                    | "u16"
                    | "u32"
                    | "u64"
                    | "usize"
                    | "i8"
                    | "i16"
                    | "i32"
                    | "i64"
                    | "isize"
                    | "bool"
                    | "char"
                    | "f32"
                    | "f64"
                    | "T"
            )
    };
    if let Some(rest) = name.strip_prefix('<') {
        // `<X as Trait>::f`: library if X is a library or primitive type and
        // the trait is the library's (a derived `Clone` of the program's own
        // type is the program's code).
        if let Some((self_ty, tail)) = rest.split_once(" as ") {
            let self_ty = self_ty.trim_start_matches(['<', '&', '*']);
            let tail = tail.trim_start_matches('<');
            return (primitive(self_ty) || is_lib_path(self_ty))
                && (is_lib_path(tail) || primitive(tail));
        }
        return is_lib_path(rest) || primitive(rest);
    }
    is_lib_path(name)
}

/// Number of leading frames left out of the allocation site: the
/// allocator's, and of a leading run of library frames all but the
/// outermost (`Vec::push`, `HashMap::insert`: the API the program called).
fn site_start(frames: &[Frame]) -> usize {
    let name = |frame: &Frame| frame.function.clone().unwrap_or_default();
    let allocator = frames
        .iter()
        .take_while(|frame| is_allocator_frame(&name(frame)))
        .count();
    let library = frames
        .iter()
        .take_while(|frame| is_library_frame(&name(frame)))
        .count();
    if library == frames.len() || library <= allocator {
        allocator.min(frames.len())
    } else {
        library - 1
    }
}

/// The first frame of the site (from `start`) outside the standard
/// library and the allocator: the program's code that allocated.
fn caller_frame(frames: &[Frame], start: usize) -> Option<usize> {
    (start..frames.len()).find(|&index| {
        frames
            .get(index)
            .and_then(|frame| frame.function.as_deref())
            .is_some_and(|name| !is_library_frame(name))
    })
}

/// How many trailing frames belong to the Rust runtime that started the
/// thread: from std's `__rust_begin_short_backtrace` (where `main` or a
/// thread's closure is called) outwards, with the `FnOnce::call_once` shims
/// into it; what std's own short backtraces leave out. A stack without the
/// marker (a walk cut short) has none.
fn runtime_tail(frames: &[Frame], start: usize) -> usize {
    let name = |index: usize| {
        frames
            .get(index)
            .and_then(|frame| frame.function.as_deref())
            .unwrap_or("")
    };
    let Some(marker) =
        (start..frames.len()).find(|&index| name(index).contains("__rust_begin_short_backtrace"))
    else {
        return 0;
    };
    let mut end = marker;
    while end > start + 1 && name(end - 1).starts_with("core::ops::function::") {
        end -= 1;
    }
    frames.len() - end
}

/// Names closures and async fn bodies with their enclosing function where
/// the DWARF does not: line-tables-only debug info names an inlined
/// `async fn login`'s body `{async_fn#0}` with no path (or only the
/// module, from the source file: `svc::{async_fn#0}`), but the function
/// that polls it is generic over its future, and its name carries the
/// future's full type (`block_on<svc::login::{async_fn_env#0}>`, tokio's
/// `Core<svc::login::{async_fn_env#0}, _>::poll`); a closure's caller
/// names its `{closure_env#N}` type the same way (`Map<I, F>::fold<…,
/// app::make::{closure_env#0}>`). So a frame named `…{async_fn#N}` or
/// `…{closure#N}` whose path is not whole takes the path of the nearest
/// caller's `PATH::{async_fn_env#N}` (`PATH::{closure_env#N}`) that
/// agrees with the module it has. When several such frames sit below one
/// mention (an async fn awaiting another), the outermost takes it: the
/// future an executor polls is the outermost body; the inner ones keep
/// their names.
fn qualify_closures(frames: &mut [Frame]) {
    // (index, kind, number, prefix) of frames to name.
    let mut pending: Vec<(usize, &'static str, String, String)> = Vec::new();
    for index in 0..frames.len() {
        let Some(name) = frames.get(index).and_then(|frame| frame.function.clone()) else {
            continue;
        };
        // A mention of an environment type names the nearest pending frame
        // (the outermost of those below it) of that kind and number.
        if !pending.is_empty() {
            let mut found = None;
            for (at, (_, kind, number, prefix)) in pending.iter().enumerate().rev() {
                if let Some(path) = env_path(&name, kind, number) {
                    if path_agrees(&path, prefix) {
                        found = Some((at, path));
                        break;
                    }
                }
            }
            if let Some((at, path)) = found {
                let (frame_index, kind, number, _) = pending.swap_remove(at);
                if let Some(frame) = frames.get_mut(frame_index) {
                    let tail = frame
                        .function
                        .as_deref()
                        .and_then(|name| name.find(&format!("{{{kind}#{number}}}")))
                        .and_then(|start| frame.function.as_deref()?.get(start..))
                        .unwrap_or("")
                        .to_owned();
                    frame.function = Some(format!("{path}::{tail}").into());
                }
                // Frames below it are not the future polled here.
                pending.retain(|&(pending_index, ..)| pending_index > frame_index);
            }
        }
        if let Some((kind, number, prefix)) = bare_closure(&name) {
            pending.push((index, kind, number, prefix));
        }
    }
}

/// A frame name that is a closure or async fn body without its enclosing
/// function: (kind, number, module prefix), for `{async_fn#0}`,
/// `svc::{async_fn#0}`, `{closure#1}<T>`. A name with a path that holds a
/// function already (as symbol tables name them) is not taken: only names
/// whose prefix has no segment that looks like a function can tell; so a
/// prefix is taken as it is, and [`path_agrees`] checks it against the
/// mention.
fn bare_closure(name: &str) -> Option<(&'static str, String, String)> {
    // Generic arguments after the closure (`{closure#0}<T>`).
    let base = match name.rfind("}<") {
        Some(at) if name.ends_with('>') => name.get(..=at).unwrap_or(name),
        _ => split_generic_args(name).0,
    };
    let last = last_segment(base);
    let prefix = base
        .get(..base.len() - last.len())
        .unwrap_or("")
        .trim_end_matches("::");
    for kind in ["async_fn", "async_block", "closure"] {
        if let Some(number) = last
            .strip_prefix(&format!("{{{kind}#"))
            .and_then(|rest| rest.strip_suffix('}'))
            .filter(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
        {
            // A closure inside a closure (`f::{closure#0}::{closure#0}`)
            // has its enclosing function's path already when the prefix
            // ends in a closure.
            if prefix.ends_with('}') {
                return None;
            }
            return Some((kind, number.to_owned(), prefix.to_owned()));
        }
    }
    None
}

/// In `name`, the path of a `PATH::{KIND_env#NUMBER}` type, if mentioned.
fn env_path(name: &str, kind: &str, number: &str) -> Option<String> {
    let needle = format!("::{{{kind}_env#{number}}}");
    let end = name.find(&needle)?;
    let before = name.get(..end)?;
    let start = before
        .rfind(['<', ',', ' ', '(', '&', '*', '[', ';'])
        .map_or(0, |at| at + 1);
    let path = before.get(start..)?.trim();
    (!path.is_empty()).then(|| path.to_owned())
}

/// Whether `path` (from an environment type) can be the enclosing
/// function of a frame whose name had module `prefix`: every segment of
/// the prefix appears in the path, in order.
fn path_agrees(path: &str, prefix: &str) -> bool {
    let mut segments = path.split("::");
    prefix
        .split("::")
        .filter(|segment| !segment.is_empty())
        .all(|wanted| segments.any(|segment| segment == wanted))
}

/// Splits `f<A, B>` into (`f`, [`A`, `B`]) when the name ends with generic
/// arguments.
pub(crate) fn split_generic_args(name: &str) -> (&str, Vec<&str>) {
    if !name.ends_with('>') {
        return (name, Vec::new());
    }
    let bytes = name.as_bytes();
    let mut depth = 0i32;
    let mut open = None;
    for (i, &byte) in bytes.iter().enumerate().rev() {
        match byte {
            b'>' if i > 0 && bytes.get(i - 1) == Some(&b'-') => {}
            b'>' | b')' | b']' => depth += 1,
            b'<' | b'(' | b'[' => {
                depth -= 1;
                if depth == 0 {
                    open = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(open) = open else {
        return (name, Vec::new());
    };
    // Generic arguments follow a name directly (`new<T>`); `<X as Y>` does
    // not.
    let before = open
        .checked_sub(1)
        .and_then(|i| bytes.get(i))
        .copied()
        .unwrap_or(b':');
    if !(before.is_ascii_alphanumeric() || before == b'_') {
        return (name, Vec::new());
    }
    let inner = name.get(open + 1..name.len() - 1).unwrap_or("");
    (name.get(..open).unwrap_or(name), split_top_level(inner))
}

/// `A, B<C, D>, (E, F)` → [`A`, `B<C, D>`, `(E, F)`].
pub(crate) fn split_top_level(list: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let bytes = list.as_bytes();
    for (i, &byte) in bytes.iter().enumerate() {
        match byte {
            b'>' if i > 0 && bytes.get(i - 1) == Some(&b'-') => {}
            b'<' | b'(' | b'[' => depth += 1,
            b'>' | b')' | b']' => depth -= 1,
            b',' if depth == 0 => {
                out.push(list.get(start..i).unwrap_or("").trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = list.get(start..).unwrap_or("").trim();
    if !last.is_empty() {
        out.push(last);
    }
    out
}

/// `alloc::vec::Vec<T,A>::push` → `alloc::vec::Vec::push`: generic
/// parameter lists (those right after a name) removed.
fn without_generics(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0usize;
    let mut prev = ' ';
    for c in path.chars() {
        if depth > 0 {
            match c {
                '>' if prev == '-' => {}
                '<' => depth += 1,
                '>' => depth -= 1,
                _ => {}
            }
            prev = c;
            continue;
        }
        if c == '<' && (prev.is_alphanumeric() || prev == '_') {
            depth = 1;
            continue;
        }
        out.push(c);
        prev = c;
    }
    out
}

/// The name reports show for a type from a frame's generic argument:
/// well-known std paths shortened.
pub(crate) fn short_type(ty: &str) -> String {
    let mut out = ty.to_owned();
    for (long, short) in [
        (", alloc::alloc::Global", ""),
        ("alloc::string::String", "String"),
        ("alloc::vec::Vec<", "Vec<"),
        ("alloc::boxed::Box<", "Box<"),
        ("alloc::sync::Arc<", "Arc<"),
        ("alloc::rc::Rc<", "Rc<"),
        ("std::collections::hash::map::HashMap<", "HashMap<"),
        ("std::collections::hash::set::HashSet<", "HashSet<"),
        ("std::hash::random::RandomState", "RandomState"),
        ("alloc::collections::vec_deque::VecDeque<", "VecDeque<"),
        ("alloc::collections::btree::map::BTreeMap<", "BTreeMap<"),
    ] {
        out = out.replace(long, short);
    }
    out
}

/// What block a container type allocates: `Vec<X>` → `[X]`, `String` →
/// `str`, `HashMap<K, V, S>` → its table (for `collect::<B>` and friends).
fn container_block(ty: &str) -> Option<String> {
    let (base, args) = split_generic_args(ty);
    let plain = without_generics(base);
    let first = args.first().map(|arg| short_type(arg));
    match plain.as_str() {
        "alloc::string::String" => Some("str".to_owned()),
        "alloc::vec::Vec" | "alloc::collections::vec_deque::VecDeque" => {
            first.map(|t| format!("[{t}]"))
        }
        "alloc::boxed::Box" => first.map(|t| {
            if t.starts_with('[') || t == "str" {
                t
            } else {
                t.to_string()
            }
        }),
        "std::collections::hash::map::HashMap" | "hashbrown::map::HashMap" => {
            let k = short_type(args.first()?);
            let v = short_type(args.get(1)?);
            Some(format!("hash table of ({k}, {v})"))
        }
        "std::collections::hash::set::HashSet" | "hashbrown::set::HashSet" => {
            first.map(|t| format!("hash table of {t}"))
        }
        _ => None,
    }
}

/// Whether a generic argument is an allocator (`alloc::alloc::Global`),
/// not an element type.
pub(crate) fn is_allocator_type(ty: &str) -> bool {
    matches!(
        ty,
        "alloc::alloc::Global" | "Global" | "std::alloc::System" | "System"
    )
}

/// The block a frame of an allocating API allocates, if the frame tells.
/// Frames are named by their path (`alloc::vec::Vec<T,A>::push` from a
/// symbol, or `alloc::vec::push` from line-tables-only DWARF and the
/// source file), so the rules go by module.
fn frame_block(name: &str) -> Option<String> {
    let (base, args) = split_generic_args(name);
    let plain = without_generics(base);
    let plain = plain.trim_start_matches('<');
    let args: Vec<&str> = args
        .into_iter()
        .filter(|arg| !is_allocator_type(arg))
        .collect();
    let arg = |i: usize| args.get(i).map(|arg| short_type(arg));
    let within = |module: &str| plain.starts_with(module);
    if within("alloc::string::")
        || within("alloc::fmt::format")
        || within("alloc::str::")
        || plain.starts_with("str as ")
        || within("alloc::string::String")
    {
        return Some("str".to_owned());
    }
    if within("alloc::sync::") {
        return arg(0).map(|t| format!("ArcInner<{t}>"));
    }
    if within("alloc::rc::") {
        return arg(0).map(|t| format!("RcInner<{t}>"));
    }
    if within("std::collections::hash::map::") || within("hashbrown::map::") {
        return Some(format!("hash table of ({}, {})", arg(0)?, arg(1)?));
    }
    if within("std::collections::hash::set::") || within("hashbrown::set::") {
        return arg(0).map(|t| format!("hash table of {t}"));
    }
    if within("hashbrown::raw::") {
        // `RawTable<T>` methods; `RawTableInner`'s have no element type.
        return arg(0)
            .filter(|t| t.starts_with('('))
            .map(|t| format!("hash table of {t}"));
    }
    if within("core::iter::traits::iterator::") && base.ends_with("collect") {
        return args.get(1).and_then(|b| container_block(b));
    }
    if within("alloc::vec::")
        || within("alloc::slice::")
        || within("alloc::collections::vec_deque::")
        || within("alloc::collections::binary_heap::")
    {
        return arg(0).map(|t| format!("[{t}]"));
    }
    if within("alloc::collections::btree::") && args.len() >= 2 {
        return Some(format!("BTreeMap node of ({}, {})", arg(0)?, arg(1)?));
    }
    if within("alloc::boxed::") {
        return arg(0);
    }
    None
}

/// Sizes of primitive types, for the block-size cross-check.
fn primitive_size(ty: &str, pointer_size: u64) -> Option<u64> {
    Some(match ty {
        "u8" | "i8" | "bool" => 1,
        "u16" | "i16" => 2,
        "u32" | "i32" | "f32" | "char" => 4,
        "u64" | "i64" | "f64" => 8,
        "u128" | "i128" => 16,
        "usize" | "isize" => pointer_size,
        "String" => 3 * pointer_size,
        _ if ty.starts_with("fn(") => pointer_size,
        _ if ty.starts_with('&') || ty.starts_with("*const") || ty.starts_with("*mut") => {
            if ty.contains("str") || ty.contains('[') || ty.contains("dyn ") {
                return None;
            }
            pointer_size
        }
        _ if ty.starts_with("Vec<") && ty.ends_with('>') => 3 * pointer_size,
        _ => return None,
    })
}

/// Whether a block of `size` bytes can hold the block type `block`, as far
/// as sizes are known (primitive element types only: layouts of other types
/// need `debug = 2`, which is not read yet).
pub(crate) fn size_fits(block: &str, size: u64, pointer_size: u64) -> bool {
    if let Some(element) = block.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        return match primitive_size(element, pointer_size) {
            Some(element) => size.checked_rem(element) == Some(0),
            _ => true,
        };
    }
    match primitive_size(block, pointer_size) {
        Some(expected) => size == expected,
        None => true,
    }
}

/// The type of the block a stack allocated, from its frames: the outermost
/// frame of the leading library run (the allocating API, as the program
/// called it) that names one, so that a merged out-of-line frame
/// (`RawVec<u32>::grow_one` standing for `Vec<Bar>`) loses to the caller's
/// inlined `Vec<Bar>::push`.
pub fn site_type(frames: &[Frame]) -> Option<String> {
    let library = frames
        .iter()
        .take_while(|frame| is_library_frame(frame.function.as_deref().unwrap_or("")))
        .count();
    frames
        .get(..library)?
        .iter()
        .rev()
        .filter_map(|frame| frame.function.as_deref())
        .find_map(frame_block)
}

/// What [`infer_types`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeStats {
    /// Objects given a type from their site.
    pub typed_objects: u64,
    /// Their bytes.
    pub typed_bytes: u64,
    /// Objects whose allocation was not sampled (no site): size class only.
    pub unsampled_objects: u64,
    /// Their bytes.
    pub unsampled_bytes: u64,
    /// Sampled objects whose site does not tell the type (or whose size
    /// contradicts it): size class only.
    pub untyped_objects: u64,
    /// Their bytes.
    pub untyped_bytes: u64,
    /// Distinct types named.
    pub types: usize,
    /// Typed objects whose type holds no pointers ([`is_pointer_free`]):
    /// not scanned for pointers.
    pub pointer_free_objects: u64,
    /// Their bytes.
    pub pointer_free_bytes: u64,
}

/// Whether values of block type `block` (as [`site_type`] names them) hold
/// no pointers: `str`, a primitive number, `bool` or `char`, and slices and
/// arrays of them (`[u8]`, `[u32; 16]`). `usize` and `isize` are left out:
/// programs keep addresses in them.
pub fn is_pointer_free(block: &str) -> bool {
    let block = block.trim();
    if block == "str" {
        return true;
    }
    if let Some(inner) = block.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        return array_element(inner).is_some_and(is_pointer_free);
    }
    matches!(
        block,
        "u8" | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "f32"
            | "f64"
            | "bool"
            | "char"
    )
}

/// The element type of an array or slice type's inside: `T` of `[T]` or
/// of `[T; N]` (given `T; N`); `None` when the count is not a number.
pub(crate) fn array_element(inner: &str) -> Option<&str> {
    // The `;` outside brackets.
    let mut depth = 0i32;
    let mut split = None;
    for (at, byte) in inner.bytes().enumerate() {
        match byte {
            b'[' | b'(' | b'<' => depth += 1,
            b']' | b')' | b'>' => depth -= 1,
            b';' if depth == 0 => split = Some(at),
            _ => {}
        }
    }
    match split {
        Some(at) => {
            let count = inner.get(at + 1..)?.trim();
            count.parse::<u64>().ok()?;
            inner.get(..at).map(str::trim)
        }
        None => Some(inner.trim()),
    }
}

/// Names the types of `dump`'s objects that have none, from their
/// symbolised allocation sites ([`site_type`]), into [`Dump::types`]
/// (marked [`TypeInfo::from_site`]) and `Object::type_index`. Objects not
/// sampled, or whose site does not tell, are left without a type (reports
/// group them by size class).
pub fn infer_types(dump: &mut Dump<'_>) -> TypeStats {
    let pointer_size = u64::from(dump.info.pointer_size.max(1));
    let mut names: HashMap<String, TypeIndex> = dump
        .types
        .iter()
        .enumerate()
        .filter(|(_, info)| info.from_site)
        .map(|(index, info)| (info.name.clone(), TypeIndex(index as u32)))
        .collect();
    let stack_types: Vec<Option<String>> = dump
        .stacks
        .par_iter()
        .map(|stack| site_type(&stack.frames))
        .collect();
    let mut stats = TypeStats::default();
    let Dump {
        objects,
        stacks,
        types,
        ..
    } = dump;
    for object in objects.iter_mut() {
        if object.type_index().is_some() {
            continue;
        }
        let Some(site) = object.site else {
            stats.unsampled_objects += 1;
            stats.unsampled_bytes += object.size;
            continue;
        };
        let block = stacks
            .binary_search_by_key(&site, |stack| stack.id)
            .ok()
            .and_then(|index| stack_types.get(index))
            .and_then(|name| name.as_deref())
            .filter(|block| size_fits(block, object.size, pointer_size));
        let Some(block) = block else {
            stats.untyped_objects += 1;
            stats.untyped_bytes += object.size;
            continue;
        };
        let index = match names.get(block) {
            Some(&index) => index,
            None => {
                let Ok(next) = u32::try_from(types.len()) else {
                    continue;
                };
                types.push(TypeInfo {
                    pointer_free: is_pointer_free(block),
                    ..TypeInfo::named(0, block.to_owned(), 0, true)
                });
                names.insert(block.to_owned(), TypeIndex(next));
                TypeIndex(next)
            }
        };
        object.set_type_index(Some(index));
        stats.typed_objects += 1;
        stats.typed_bytes += object.size;
        if types
            .get(index.index())
            .is_some_and(|info| info.pointer_free)
        {
            stats.pointer_free_objects += 1;
            stats.pointer_free_bytes += object.size;
        }
    }
    stats.types = names.len();
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_tail_is_what_std_short_backtraces_leave_out() {
        // A site: the program's frames, then std's start of `main`.
        let stack = frames(&[
            "leaky_service::Service::handle",
            "leaky_service::main",
            "core::ops::function::FnOnce::call_once",
            "std::sys::backtrace::__rust_begin_short_backtrace<fn()>",
            "std::rt::lang_start::{{closure}}",
            "std::rt::lang_start_internal",
            "main",
        ]);
        assert_eq!(runtime_tail(&stack, 0), 5);
        assert_eq!(caller_frame(&stack, 0), Some(0));
        // Counted from where the site starts (after the allocator's frames).
        let mut with_allocator = frames(&["__rust_alloc", "alloc::alloc::alloc"]);
        with_allocator.extend(stack.iter().cloned());
        assert_eq!(runtime_tail(&with_allocator, 2), 5);
        // Without the marker (Go, a walk cut short): none.
        let go = frames(&["runtime.mallocgc", "main.main"]);
        assert_eq!(runtime_tail(&go, 0), 0);
        // A marker at the very top leaves nothing to hide it behind: the
        // shim before it stays.
        let odd = frames(&[
            "core::ops::function::FnOnce::call_once",
            "std::sys::backtrace::__rust_begin_short_backtrace",
        ]);
        assert_eq!(runtime_tail(&odd, 0), 1);
    }

    fn frames(names: &[&str]) -> Vec<Frame> {
        names
            .iter()
            .map(|name| Frame {
                function: Some((*name).into()),
                file: None,
                line: None,
            })
            .collect()
    }

    #[test]
    fn llvm_suffixes_are_not_part_of_the_name() {
        assert_eq!(
            demangle("_ZN10root_names7CURRENT17h0123456789abcdefE.0"),
            "root_names::CURRENT"
        );
        assert_eq!(
            demangle("_ZN6myleak3run17h0123456789abcdefE.llvm.4242"),
            "myleak::run"
        );
        assert_eq!(demangle("main.cache"), "main.cache");
    }

    #[test]
    fn closures_and_async_fns_take_their_function_from_the_caller() {
        let mut stack = frames(&[
            "alloc::boxed::new<app::Session>",
            "svc::{async_fn#0}",
            "svc::{async_fn#0}",
            "block_on<app::svc::login::{async_fn_env#0}>",
            "{closure#0}",
            "core::iter::adapters::map::{closure#0}",
            "<core::iter::adapters::map::Map<I,F> as core::iter::traits::iterator::Iterator>::fold<core::ops::range::Range<u64>, (), app::make_sessions::{closure_env#0}>",
            "app::main",
        ]);
        qualify_closures(&mut stack);
        let names: Vec<&str> = stack
            .iter()
            .filter_map(|frame| frame.function.as_deref())
            .collect();
        assert_eq!(
            names[1..5],
            [
                // Inner body: the executor's future is the outer one.
                "svc::{async_fn#0}",
                "app::svc::login::{async_fn#0}",
                "block_on<app::svc::login::{async_fn_env#0}>",
                "app::make_sessions::{closure#0}",
            ]
        );
        // The library's own closure keeps its name (its module disagrees).
        assert_eq!(names[5], "core::iter::adapters::map::{closure#0}");
        // A path that names its function already is left alone.
        assert_eq!(bare_closure("app::f::{closure#0}::{closure#1}"), None);
        assert!(bare_closure("{closure#2}<u8>").is_some());
        assert_eq!(bare_closure("app::f"), None);
    }

    #[test]
    fn generic_args_join_the_linkage_path() {
        assert_eq!(
            with_generic_args("alloc::boxed::Box<T>::new", "new<my::Session>"),
            "alloc::boxed::Box<T>::new<my::Session>"
        );
        assert_eq!(with_generic_args("my::f", "g<u8>"), "my::f");
        // Legacy mangling's `{{closure}}`, told apart by the DIE.
        assert_eq!(
            with_generic_args("app::svc::login::{{closure}}", "{async_fn#0}"),
            "app::svc::login::{async_fn#0}"
        );
        assert_eq!(
            with_generic_args("app::run::{{closure}}::{{closure}}", "{async_block#1}"),
            "app::run::{{closure}}::{async_block#1}"
        );
        assert_eq!(
            with_generic_args("app::make::{{closure}}", "{closure#0}<u8>"),
            "app::make::{closure#0}<u8>"
        );
        assert_eq!(
            with_generic_args("app::make::{{closure}}", "make"),
            "app::make::{{closure}}"
        );
        assert_eq!(last_segment("<a::B<T> as c::D>::e"), "e");
    }

    #[test]
    fn types_from_sites() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (
                &[
                    "<heapdump::tracker::Tracker<A> as core::alloc::global::GlobalAlloc>::alloc",
                    "__rust_alloc",
                    "alloc::alloc::alloc",
                    "alloc::boxed::box_new_uninit",
                    "alloc::boxed::Box<T>::new<my::Session>",
                    "my::make_box",
                ],
                Some("my::Session"),
            ),
            (
                &[
                    "alloc::boxed::Box<T>::new<alloc::sync::ArcInner<my::Config>>",
                    "alloc::sync::Arc<T>::new<my::Config>",
                    "my::make_arc",
                ],
                Some("ArcInner<my::Config>"),
            ),
            (
                &[
                    "alloc::raw_vec::finish_grow<alloc::alloc::Global>",
                    "alloc::raw_vec::RawVec<T,A>::grow_one<u32, alloc::alloc::Global>",
                    "alloc::vec::Vec<T,A>::push<my::Bar, alloc::alloc::Global>",
                    "my::push",
                ],
                Some("[my::Bar]"),
            ),
            (
                &[
                    "hashbrown::raw::RawTable<T,A>::reserve_rehash<(u64, my::Session), alloc::alloc::Global>",
                    "std::collections::hash::map::HashMap<K,V,S>::insert<u64, my::Session, std::hash::random::RandomState>",
                    "my::insert",
                ],
                Some("hash table of (u64, my::Session)"),
            ),
            (
                &[
                    "alloc::raw_vec::RawVec<T,A>::grow_one<u8, alloc::alloc::Global>",
                    "alloc::vec::Vec<T,A>::extend_from_slice<u8, alloc::alloc::Global>",
                    "alloc::string::String::push_str",
                    "my::name",
                ],
                Some("str"),
            ),
            (
                &[
                    "<alloc::vec::Vec<T> as alloc::vec::spec_from_iter::SpecFromIter<T,I>>::from_iter<u64, core::ops::range::Range<u64>>",
                    "core::iter::traits::iterator::Iterator::collect<core::ops::range::Range<u64>, alloc::vec::Vec<u64, alloc::alloc::Global>>",
                    "my::numbers",
                ],
                Some("[u64]"),
            ),
            (
                &[
                    "<alloc::raw_vec::RawVec<u8>>::with_capacity_in<u8, alloc::alloc::Global>",
                    "<alloc::vec::Vec<u8>>::with_capacity_in<u8, alloc::alloc::Global>",
                    "<u8 as <[_]>::to_vec_in::ConvertVec>::to_vec::<alloc::alloc::Global>",
                    "<[u8]>::to_vec_in::<alloc::alloc::Global>",
                    "<alloc::vec::Vec<u8> as core::clone::Clone>::clone<u8, alloc::alloc::Global>",
                    "<alloc::string::String as core::clone::Clone>::clone",
                    "my::strings",
                ],
                Some("str"),
            ),
            (&["__rust_alloc", "my::raw"], None),
            (&["my::Session as core::clone::Clone>::clone"], None),
        ];
        for (names, expected) in cases {
            assert_eq!(site_type(&frames(names)).as_deref(), *expected, "{names:?}");
        }
    }

    #[test]
    fn the_site_starts_at_the_api_the_program_called() {
        let stack = frames(&[
            "<heapdump::tracker::Tracker<A> as core::alloc::global::GlobalAlloc>::alloc",
            "__rust_alloc",
            "alloc::raw_vec::finish_grow<alloc::alloc::Global>",
            "alloc::vec::Vec<T,A>::push<my::Bar, alloc::alloc::Global>",
            "my::push",
            "main",
        ]);
        assert_eq!(site_start(&stack), 3);
        let direct = frames(&["__rust_alloc", "alloc::alloc::alloc", "my::raw", "main"]);
        assert_eq!(site_start(&direct), 2);
        let derived = frames(&["<my::Session as core::clone::Clone>::clone"]);
        assert!(!is_library_frame(
            derived[0].function.as_deref().unwrap_or("")
        ));
        assert!(is_library_frame(
            "<str as alloc::string::ToString>::to_string"
        ));
        // Newer rustc names inherent methods of primitive types so.
        assert!(is_library_frame(
            "<[u8]>::to_vec_in::<alloc::alloc::Global>"
        ));
        assert!(is_library_frame(
            "<u8 as <[_]>::to_vec_in::ConvertVec>::to_vec::<alloc::alloc::Global>"
        ));
        assert!(!is_library_frame("<my::Session>::new"));
    }

    #[test]
    fn text_bytes_and_arrays_of_numbers_hold_no_pointers() {
        for block in ["str", "[u8]", "[u32; 16]", "[[u8; 4]]", "f64", "[char]"] {
            assert!(is_pointer_free(block), "{block}");
        }
        for block in [
            "[usize]",
            "[my::Session]",
            "String",
            "[String]",
            "[u8; n]",
            "hash table of (u64, u64)",
            "ArcInner<str>",
            "[&str]",
        ] {
            assert!(!is_pointer_free(block), "{block}");
        }
    }

    #[test]
    fn block_sizes_cross_check_primitives() {
        assert!(size_fits("[u32]", 12, 8));
        assert!(!size_fits("[u32]", 6, 8));
        assert!(size_fits("[my::Bar]", 6, 8));
        assert!(!size_fits("u64", 16, 8));
    }
}
