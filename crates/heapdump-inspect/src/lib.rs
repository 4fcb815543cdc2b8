//! Inspect a heap dump in one call: the library under the `heapdump`
//! command, its server and its converters.
//!
//! [`Heap::open`] runs the whole pipeline on a file, whatever its format:
//!
//! 1. memory-map the file and detect its format ([`reader::parse`]: a
//!    heapdump-rs dump, or a Go heap dump);
//! 2. decode it into the common model ([`reader::Dump`]);
//! 3. name its allocation sites and object types from the dumped program's
//!    binaries ([`symbols`]: the `binary` of [`Options`] for the main
//!    executable, else the paths the dump records, build-ids checked);
//! 4. find the references between objects ([`reader::HeapGraph`]);
//! 5. analyse it ([`analysis::analyze`]: reachability, dominator tree,
//!    retained sizes).
//!
//! The reports ([`analysis::top`], [`analysis::leaks`], [`analysis::paths`],
//! [`analysis::diff`], [`analysis::Summary`]) and the converters
//! ([`convert::hprof`], [`convert::dot`]) take the graph and analysis a
//! [`Heap`] holds. A [`Progress`] sees each step (the `heapdump` command
//! draws progress bars with it; [`NoProgress`] ignores them).
//!
//! ```no_run
//! use heapdump_inspect::analysis::top::{top, TopOptions, TopOrder};
//! use heapdump_inspect::{Heap, NoProgress, Options};
//!
//! let heap = Heap::open("service.hdump", &Options::default(), &mut NoProgress)?;
//! let options = TopOptions { limit: 5, order: TopOrder::Retained };
//! let report = top(heap.graph(), heap.analysis(), &options);
//! for row in &report.by_class {
//!     println!("{} retains {} bytes", row.group.label, row.totals.retained_bytes);
//! }
//! # Ok::<(), heapdump_inspect::Error>(())
//! ```
//!
//! The crates it is made of can be used on their own, each with one job:
//! [`reader`] (formats → common model → graph), [`symbols`] (names from
//! binaries), [`analysis`] (analyses and reports), [`convert`] (HPROF and
//! Graphviz dot). docs/ARCHITECTURE.md shows how they fit.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub mod caveats;

pub use caveats::{Caveat, CaveatKind};

pub use heapdump_analysis as analysis;
pub use heapdump_convert as convert;
pub use heapdump_reader as reader;
pub use heapdump_symbols as symbols;

use heapdump_analysis::Analysis;
use heapdump_reader::{Dump, DumpFile, HeapGraph};
use heapdump_symbols::{Binary, RootNamer, RustLayouts, Source, StackRootFrames, Symbolizer};

/// Why a heap could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The dump cannot be read: missing, or not a valid dump (with the byte
    /// offset of what is wrong).
    #[error(transparent)]
    Read(#[from] heapdump_reader::Error),
    /// A binary cannot name the dump: unreadable, or not the program that
    /// was dumped.
    #[error(transparent)]
    Symbols(#[from] heapdump_symbols::Error),
}

/// How [`Heap::open`] names things.
#[derive(Clone, Debug)]
pub struct Options {
    /// The dumped program's executable: names global roots (`main.cache`
    /// instead of `bss+0x8`), and the frames and types of Rust allocation
    /// sites when the executable the dump records has moved or been
    /// rebuilt (its build-id is checked). `None`: the paths the dump
    /// records are used where their build-ids match.
    pub binary: Option<PathBuf>,
    /// Name stack frames and object types from the binaries (`true` by
    /// default). Without it stack frames stay raw addresses and objects
    /// without a type in the dump are grouped by size class; `binary`, if
    /// given, is still checked and names global roots.
    pub symbols: bool,
    /// Run the analyses while opening (`true` by default). Otherwise
    /// [`Heap::analysis`] runs them the first time it is called, without
    /// progress; a program that only needs the graph (a summary) saves
    /// their time.
    pub analyze: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            binary: None,
            symbols: true,
            analyze: true,
        }
    }
}

/// A step of [`Heap::open`], as [`Progress`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Decoding the file; progress in bytes of the file.
    Parse,
    /// Naming stack frames from the binaries; progress in distinct
    /// addresses.
    Symbolize,
    /// Typing objects from the executable's debug info (Go); no progress
    /// within it.
    Types,
    /// Finding the references between objects; progress in bytes of
    /// object contents scanned.
    BuildGraph,
    /// One step of the analyses; no progress within it.
    Analyze(analysis::Step),
}

impl Step {
    /// What the step does, for a progress bar (`parsing`, `dominators`).
    pub fn description(self) -> &'static str {
        match self {
            Step::Parse => "parsing",
            Step::Symbolize => "symbolising",
            Step::Types => "typing objects",
            Step::BuildGraph => "building graph",
            Step::Analyze(step) => step.description(),
        }
    }

    /// The unit of [`Progress::advance`]'s numbers in this step, `None`
    /// when the step reports none.
    pub fn unit(self) -> Option<Unit> {
        match self {
            Step::Parse | Step::BuildGraph => Some(Unit::Bytes),
            Step::Symbolize => Some(Unit::Addresses),
            Step::Types | Step::Analyze(_) => None,
        }
    }
}

/// What a [`Step`]'s progress counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unit {
    /// Bytes (of the file, or of object contents).
    Bytes,
    /// Distinct return addresses.
    Addresses,
}

impl Unit {
    /// The unit's name, plural (`bytes`, `addresses`).
    pub fn name(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Addresses => "addresses",
        }
    }
}

/// What [`Heap::open`] tells as it works. Every method has an empty default.
/// `Send`: some steps report from worker threads (one at a time).
pub trait Progress: Send {
    /// `step` starts. Every step ends with [`Progress::finish`] before the
    /// next one starts.
    fn start(&mut self, step: Step) {
        let _ = step;
    }
    /// The current step has done `done` of `total` (in [`Step::unit`]);
    /// `total` may grow as the step learns more.
    fn advance(&mut self, done: u64, total: u64) {
        let _ = (done, total);
    }
    /// The current step ended.
    fn finish(&mut self) {}
    /// Something worth telling the user that does not stop the work:
    /// where names are missing, how many objects kept a size class.
    fn note(&mut self, note: &str) {
        let _ = note;
    }
}

/// A [`Progress`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// An opened heap: the mapped file, its graph, the executable that names
/// it, and its analysis. Owns everything it borrows from, so it can be kept
/// (and shared between threads: it is `Send` and `Sync`) as one value.
pub struct Heap {
    cell: HeapCell,
}

// A server shares one `Heap` between its request threads.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Heap>();
};

/// What a [`Heap`] holds besides its file, borrowing from it.
struct Opened<'file> {
    graph: HeapGraph<'file>,
    /// The main executable: the one given, else the one at the path the
    /// dump records (build-id checked), for global roots' names.
    binary: Option<Binary>,
    load_bias: u64,
    /// The frames of thread stack roots, for stack words' names.
    stack_frames: StackRootFrames,
    /// What the dump cannot answer.
    caveats: Vec<Caveat>,
    analysis: OnceLock<Analysis>,
}

self_cell::self_cell!(
    struct HeapCell {
        owner: DumpFile,
        #[covariant]
        dependent: Opened,
    }
);

impl Heap {
    /// Opens the dump at `path` and runs the pipeline on it (see the crate
    /// docs), telling `progress` about each step.
    pub fn open(
        path: impl AsRef<Path>,
        options: &Options,
        progress: &mut dyn Progress,
    ) -> Result<Heap, Error> {
        let file = DumpFile::open(path.as_ref())?;
        Heap::from_file(file, options, progress)
    }

    /// Runs the pipeline on a dump already mapped (or read into memory).
    pub fn from_file(
        file: DumpFile,
        options: &Options,
        progress: &mut dyn Progress,
    ) -> Result<Heap, Error> {
        let binary = match &options.binary {
            Some(path) => Some(Binary::open(path)?),
            None => None,
        };
        let cell = HeapCell::try_new(file, |file| {
            let built = build_graph(file, binary.as_ref(), options.symbols, progress)?;
            let graph = built.graph;
            let analysis = OnceLock::new();
            if options.analyze {
                let mut started = false;
                let done = analysis::analyze_with_progress(&graph, &mut |step| {
                    if started {
                        progress.finish();
                    }
                    started = true;
                    progress.start(Step::Analyze(step));
                });
                if started {
                    progress.finish();
                }
                let _ = analysis.set(done);
            }
            Ok::<_, Error>(Opened {
                graph,
                binary: binary.or(built.recorded_binary),
                load_bias: built.load_bias,
                stack_frames: built.stack_frames,
                caveats: built.caveats,
                analysis,
            })
        })?;
        Ok(Heap { cell })
    }

    /// The object/reference graph, and through [`HeapGraph::dump`] the
    /// decoded dump.
    pub fn graph(&self) -> &HeapGraph<'_> {
        &self.cell.borrow_dependent().graph
    }

    /// The decoded dump: what it says about itself, roots, stacks, objects.
    pub fn dump(&self) -> &Dump<'_> {
        self.graph().dump()
    }

    /// Reachability, the dominator tree and retained sizes; computed here
    /// the first time if [`Options::analyze`] was off.
    pub fn analysis(&self) -> &Analysis {
        let opened = self.cell.borrow_dependent();
        opened
            .analysis
            .get_or_init(|| analysis::analyze(&opened.graph))
    }

    /// Names root words: globals by the symbols of [`Options::binary`]
    /// where it was given, else of the executable at the path the dump
    /// records (when its build-id matches), else by address
    /// (`data+0x1a8`); words of thread stacks by the frame that holds them
    /// when the stack has a frame-pointer chain.
    pub fn root_namer(&self) -> RootNamer<'_> {
        let opened = self.cell.borrow_dependent();
        let namer = match &opened.binary {
            Some(binary) => {
                RootNamer::with_load_bias(opened.graph.dump(), binary, opened.load_bias)
            }
            None => RootNamer::without_binary(),
        };
        namer.with_stack_frames(&opened.stack_frames)
    }

    /// The frames of thread stack roots found from their frame-pointer
    /// chains (empty without frame pointers, or for formats whose threads
    /// are not whole stacks).
    pub fn stack_frames(&self) -> &StackRootFrames {
        &self.cell.borrow_dependent().stack_frames
    }

    /// What the dump cannot answer (stacks cut short for want of frame
    /// pointers, frames without lines), each with its fix: every report
    /// prints them.
    pub fn caveats(&self) -> &[Caveat] {
        &self.cell.borrow_dependent().caveats
    }

    /// The main executable: the one given in [`Options::binary`], else the
    /// one at the path the dump records when its build-id matches (and
    /// names were asked for).
    pub fn binary(&self) -> Option<&Binary> {
        self.cell.borrow_dependent().binary.as_ref()
    }

    /// The mapped file.
    pub fn file(&self) -> &DumpFile {
        self.cell.borrow_owner()
    }
}

impl std::fmt::Debug for Heap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heap")
            .field("format", &self.dump().info.format)
            .field("objects", &self.graph().object_count())
            .field("references", &self.graph().reference_count())
            .finish_non_exhaustive()
    }
}

/// What [`build_graph`] makes.
struct Built<'file> {
    graph: HeapGraph<'file>,
    /// The load bias of the main executable.
    load_bias: u64,
    /// The main executable found at the path the dump records, when none
    /// was given.
    recorded_binary: Option<Binary>,
    stack_frames: StackRootFrames,
    caveats: Vec<Caveat>,
}

/// Parses `file`, checks that `binary` is the dumped program (its load
/// bias), names sites and types (unless `symbols` is off), finds the
/// frames of thread stacks, and builds the graph, giving the file's pages
/// back as it goes.
fn build_graph<'file>(
    file: &'file DumpFile,
    binary: Option<&Binary>,
    symbols: bool,
    progress: &mut dyn Progress,
) -> Result<Built<'file>, Error> {
    progress.start(Step::Parse);
    let dump = heapdump_reader::parse(file.bytes(), &mut |done, total| {
        progress.advance(done, total)
    });
    progress.finish();
    let mut dump = dump?;
    for warning in &dump.warnings {
        progress.note(warning);
    }
    // A wrong binary is found before the long steps.
    let load_bias = match binary {
        Some(binary) => binary.load_bias(&dump)?,
        None => 0,
    };
    // Parsing read every page of the file; the graph build reads each
    // object's contents once more, in address order, wave by wave (its
    // progress steps), and the reports only a few bytes: give the pages
    // back after parsing and after each wave, so that the file's pages do
    // not add to the peak next to the graph and the analyses. (Pages read
    // again are mapped again.)
    file.release_pages();
    let raw_stack_depths: Vec<usize> = dump
        .stacks
        .iter()
        .filter(|stack| stack.frames.is_empty())
        .map(|stack| stack.pcs.len())
        .collect();
    let mut stack_frames = StackRootFrames::walk(&dump);
    if symbols {
        if let Some(binary) = binary {
            type_from_debug_info(&mut dump, binary, load_bias, progress);
        }
    }
    let symbolizer = match symbols {
        true => name_from_binaries(&mut dump, binary, &stack_frames.pcs(), progress)?,
        false => None,
    };
    if let Some(symbolizer) = &symbolizer {
        stack_frames.name(|pcs| symbolizer.resolve_all(pcs, &mut |_, _| {}));
    }
    let caveats = caveats::caveats(&dump, &raw_stack_depths, &stack_frames, symbolizer.as_ref());
    let mut load_bias = load_bias;
    let recorded_binary = match (
        binary,
        symbolizer.as_ref().and_then(Symbolizer::main_binary),
    ) {
        (None, Some(recorded)) => match recorded.load_bias(&dump) {
            Ok(bias) => {
                load_bias = bias;
                Some(recorded.clone())
            }
            Err(_) => None,
        },
        _ => None,
    };
    progress.start(Step::BuildGraph);
    let graph = HeapGraph::build(dump, &mut |done, total| {
        file.release_pages();
        progress.advance(done, total);
    });
    progress.finish();
    file.release_pages();
    Ok(Built {
        graph,
        load_bias,
        recorded_binary,
        stack_frames,
        caveats,
    })
}

/// Types the objects of a dump whose runtime records no types (Go) from
/// the executable's debug info, and notes how many kept their shapes.
fn type_from_debug_info(
    dump: &mut Dump<'_>,
    binary: &Binary,
    load_bias: u64,
    progress: &mut dyn Progress,
) {
    progress.start(Step::Types);
    let stats = heapdump_symbols::go::type_objects(dump, binary, load_bias);
    progress.finish();
    let Some(stats) = stats else {
        return;
    };
    if let Some(reason) = &stats.skipped {
        progress.note(&format!("types: {reason}"));
        return;
    }
    let percent = |part: u64, whole: u64| {
        if whole == 0 {
            100.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    let untyped = stats.objects - stats.typed_objects;
    if untyped > 0 {
        progress.note(&format!(
            "types: {} of {} objects ({:.1}%, {:.1}% of bytes) typed from the DWARF of {}; \
             {untyped} not reached through a typed pointer keep their shapes",
            stats.typed_objects,
            stats.objects,
            percent(stats.typed_objects, stats.objects),
            percent(stats.typed_bytes, stats.bytes),
            binary.path().display(),
        ));
    }
}

/// Names the frames of `dump`'s raw stacks and the types of its objects
/// from the binaries (from their sites, then from the typed objects
/// pointing at them, field by field when the executable has type layouts),
/// and notes where names came from and how many objects keep a size
/// class. The symbolizer, when the dump has raw stacks or
/// `frame_pcs` (the return addresses of thread stacks' frames, which it
/// names too).
fn name_from_binaries(
    dump: &mut Dump<'_>,
    binary: Option<&Binary>,
    frame_pcs: &[u64],
    progress: &mut dyn Progress,
) -> Result<Option<Symbolizer>, Error> {
    let raw = dump
        .stacks
        .iter()
        .any(|stack| stack.frames.is_empty() && !stack.pcs.is_empty());
    if !raw && frame_pcs.is_empty() {
        return Ok(None);
    }
    let symbolizer = Symbolizer::with_pcs(dump, binary.cloned(), frame_pcs)?;
    // Say where names are missing: a shared library without a binary. (The
    // executable without debug info or without a binary is a caveat,
    // which every report shows: `caveats`.) A shared library with symbols
    // but no debug info (libc, usually) is normal and not worth a line per
    // run.
    for source in symbolizer.sources() {
        let note = match source.source {
            Source::Binary { .. } => false,
            Source::None(_) => !source.main,
        };
        if note {
            progress.note(&format!("names: {source}"));
        }
    }
    if !symbolizer.has_binaries() {
        return Ok(Some(symbolizer));
    }
    progress.start(Step::Symbolize);
    let stats = symbolizer.symbolize(dump, &mut |done, total| progress.advance(done, total));
    progress.finish();
    if stats.named_pcs == 0 {
        return Ok(Some(symbolizer));
    }
    let types = heapdump_symbols::infer_types(dump);
    if types.pointer_free_objects > 0 {
        progress.note(&format!(
            "references: {} objects ({} bytes) of types without pointers (str, [u8], arrays \
             of numbers) are not scanned for pointers",
            types.pointer_free_objects, types.pointer_free_bytes
        ));
    }
    // Type layouts, when the executable has full debug info (`debug = 2`).
    let layouts = match binary.or(symbolizer.main_binary()) {
        Some(main) => match RustLayouts::read(main.data()) {
            Ok(layouts) => layouts,
            Err(reason) => {
                progress.note(&format!(
                    "types: the type layouts of {} cannot be read: {reason}",
                    main.path().display()
                ));
                None
            }
        },
        None => None,
    };
    let propagated = heapdump_symbols::propagate_types(dump, layouts.as_ref());
    if propagated.untyped_objects > 0 || propagated.typed_objects > 0 {
        let (unsampled, untold) = dump
            .objects
            .iter()
            .filter(|object| object.type_index().is_none())
            .fold((0u64, 0u64), |(unsampled, untold), object| {
                match object.site {
                    None => (unsampled + 1, untold),
                    Some(_) => (unsampled, untold + 1),
                }
            });
        let sampling = match dump.capabilities.every_site_hint {
            Some(hint) if dump.info.sample_rate > 1 && unsampled > 0 => format!(
                "; the dump samples one site per {} bytes: {hint}",
                dump.info.sample_rate
            ),
            _ => String::new(),
        };
        let propagated_part = match propagated.typed_objects {
            0 => String::new(),
            typed => format!(", {typed} from the containers pointing at them"),
        };
        let conflicts = match propagated.conflicting_objects {
            0 => String::new(),
            conflicts => {
                format!("; {conflicts} of them given different types by different pointers")
            }
        };
        progress.note(&format!(
            "types: {} objects named from their allocation sites{propagated_part}; {} keep a \
             size class ({unsampled} not sampled, {untold} whose site does not tell the \
             type{conflicts}){sampling}",
            types.typed_objects, propagated.untyped_objects,
        ));
    }
    Ok(Some(symbolizer))
}
