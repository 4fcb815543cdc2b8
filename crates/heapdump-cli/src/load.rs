//! Opening, parsing and graph building, with progress bars on stderr when it
//! is a terminal. Shared by every subcommand that reads a dump.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use heapdump_reader::{parse, Dump, DumpFile, HeapGraph};
use heapdump_symbols::symbolize::{infer_types, Source, Symbolizer};
use heapdump_symbols::{Binary, RootNamer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Result;

/// Memory-maps the dump at `path`.
pub fn open(path: &Path) -> Result<DumpFile> {
    Ok(DumpFile::open(path)?)
}

/// How a subcommand names frames and types from binaries (flattened into
/// its arguments).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SymbolArgs {
    /// The dumped program's executable: names Go globals (`main.cache`
    /// instead of `bss`), and Rust frames and types when the executable the
    /// dump records has moved or been rebuilt (its build-id is checked).
    #[arg(long = "bin", value_name = "BIN")]
    pub binary: Option<PathBuf>,
    /// Do not read binaries: stack frames stay raw addresses, objects are
    /// grouped by size class.
    #[arg(long)]
    pub no_symbols: bool,
}

impl SymbolArgs {
    /// Opens `--bin`, if given.
    pub fn open_binary(&self) -> Result<Option<Binary>> {
        Ok(self.binary.as_ref().map(Binary::open).transpose()?)
    }
}

/// Names root words with `binary`'s symbols, if there is one.
pub fn root_namer<'b>(graph: &HeapGraph<'_>, binary: Option<&'b Binary>) -> Result<RootNamer<'b>> {
    Ok(RootNamer::new(graph.dump(), binary)?)
}

/// Parses `file`, names its Rust allocation sites and object types from
/// the binaries (`--bin` for the main executable, else the paths the dump
/// records, build-ids checked), and builds its reference graph.
pub fn graph_with<'f>(file: &'f DumpFile, symbols: &SymbolArgs) -> Result<HeapGraph<'f>> {
    let bar = progress_bar("parsing", file.bytes().len() as u64);
    let dump = parse(file.bytes(), &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let mut dump = dump?;
    // Parsing read every page of the file; the graph build reads each
    // object's contents once more, in address order, wave by wave (its
    // progress steps), and the reports only a few bytes: give the pages
    // back after parsing and after each wave, so that the file's pages do
    // not add to the peak next to the graph and the analyses. (Pages read
    // again are mapped again.)
    file.release_pages();
    if !symbols.no_symbols {
        symbolize(&mut dump, symbols.binary.as_deref())?;
    }

    let bar = progress_bar("building graph", 0);
    let graph = HeapGraph::build(dump, &mut |done, total| {
        file.release_pages();
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    file.release_pages();
    Ok(graph)
}

/// Names the frames of `dump`'s raw stacks and the types of its objects
/// from the binaries, with a progress bar, and says on stderr where names
/// came from and how many objects are left with a size class.
fn symbolize(dump: &mut Dump<'_>, binary: Option<&Path>) -> Result<()> {
    let raw = dump
        .stacks
        .iter()
        .any(|stack| stack.frames.is_empty() && !stack.pcs.is_empty());
    if !raw {
        return Ok(());
    }
    let binary = binary.map(Binary::open).transpose()?;
    let symbolizer = Symbolizer::new(dump, binary)?;
    // Say where names are missing or thin: the executable without debug
    // info, any module without a binary. A shared library with symbols but
    // no debug info (libc, usually) is normal and not worth a line per run.
    for source in symbolizer.sources() {
        let note = match source.source {
            Source::Binary { debug_info, .. } => !debug_info && source.main,
            Source::None(_) => true,
        };
        if note {
            eprintln!("heapdump: names: {source}");
        }
    }
    if !symbolizer.has_binaries() {
        return Ok(());
    }
    let bar = progress_bar("symbolising", 0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} addresses ({eta})")
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let stats = symbolizer.symbolize(dump, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    if stats.named_pcs == 0 {
        return Ok(());
    }
    let types = infer_types(dump);
    let untyped = types.unsampled_objects + types.untyped_objects;
    if untyped > 0 {
        eprintln!(
            "heapdump: types: {} objects named from their allocation sites; {} keep a size class \
             ({} not sampled, {} whose site does not tell the type){}",
            types.typed_objects,
            untyped,
            types.unsampled_objects,
            types.untyped_objects,
            if dump.info.sample_rate > 1 {
                format!(
                    "; the dump samples one site per {} bytes: HEAPDUMP_SAMPLE_RATE=1 records every site",
                    dump.info.sample_rate
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// A byte-counting progress bar on stderr, hidden unless stderr is a
/// terminal. Shared by every subcommand's long steps.
pub fn progress_bar(message: &'static str, total: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    let style = ProgressStyle::with_template(
        "{msg:>14} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}
