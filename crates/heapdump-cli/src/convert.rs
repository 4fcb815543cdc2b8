//! `heapdump hprof` and `heapdump dot` (and the thin `dumptohprof` and
//! `dumptodot` binaries, which run the same code with Go's argument order):
//! converting a dump for VisualVM / Eclipse MAT and for Graphviz.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use heapdump_inspect::convert::output::AtomicFile;
use heapdump_inspect::convert::{dot, hprof};

use crate::human::parse_address;
use crate::{load, Result};

/// Arguments of `heapdump hprof` / `dumptohprof`.
#[derive(Debug, clap::Args)]
pub struct HprofArgs {
    /// The heap dump file.
    #[arg(value_name = "DUMP")]
    pub dump: PathBuf,
    /// The dumped program's executable (optional: names global roots after
    /// their symbols), then the HPROF file to write.
    #[arg(value_name = "[BIN] OUT.hprof", num_args = 1..=2, required = true)]
    pub paths: Vec<PathBuf>,
    /// Keep unreachable objects too, each garbage structure held by a
    /// `ROOT UNKNOWN` (retained sizes then count garbage referrers).
    #[arg(long)]
    pub keep_unreachable: bool,
    /// Naming frames and types from binaries.
    #[command(flatten)]
    pub symbols: load::SymbolArgs,
}

/// Arguments of `heapdump dot` / `dumptodot`.
#[derive(Debug, clap::Args)]
pub struct DotArgs {
    /// The dump and how to name it.
    #[command(flatten)]
    pub dump: load::DumpArgs,
    /// Write the dot file here (mode 0600, whole or not at all) instead of
    /// to standard output.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Most nodes in the picture (objects and roots).
    #[arg(long, value_name = "N", default_value_t = 40)]
    pub max_nodes: usize,
    /// Draw the neighbourhood of the object holding this address (hex
    /// `0x…` or decimal) instead of the biggest retainers.
    #[arg(long, value_name = "ADDR", value_parser = parse_address, conflicts_with = "all")]
    pub focus: Option<u64>,
    /// With --focus: how many references away to go, either way.
    #[arg(long, value_name = "N", default_value_t = 2, requires = "focus")]
    pub depth: usize,
    /// Draw every object and reference (Graphviz cannot lay out large
    /// heaps).
    #[arg(long)]
    pub all: bool,
}

/// `dumptohprof DUMP [BIN] heap.hprof`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dumptohprof",
    version,
    about = "Convert a heap dump to HPROF for VisualVM or Eclipse MAT (same as `heapdump hprof`)"
)]
pub struct HprofCommand {
    /// The arguments, as `heapdump hprof` takes them.
    #[command(flatten)]
    pub args: HprofArgs,
}

/// `dumptodot DUMP [BIN] > heap.dot`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dumptodot",
    version,
    about = "Draw what holds a heap dump's memory as Graphviz dot (same as `heapdump dot`)"
)]
pub struct DotCommand {
    /// The arguments, as `heapdump dot` takes them.
    #[command(flatten)]
    pub args: DotArgs,
}

/// Runs `heapdump hprof`.
pub fn run_hprof(args: &HprofArgs) -> Result<()> {
    let (bin, out) = match args.paths.as_slice() {
        [out] => (None, out),
        [bin, out] => (Some(bin.as_path()), out),
        _ => return Err("expected DUMP [BIN] OUT.hprof".into()),
    };
    load::refuse_to_overwrite_a_dump(out, Some(hprof::HEADER), "HPROF")?;
    let symbols = load::symbols_with(bin, &args.symbols)?;
    let heap = load::open(&args.dump, &symbols, false)?;
    let namer = heap.root_namer();
    let options = hprof::Options {
        keep_unreachable: args.keep_unreachable,
        ..hprof::Options::default()
    };
    let plan = hprof::Plan::new(heap.graph(), &namer, &options);
    let mut output = AtomicFile::create(out)?;
    let bar = load::progress_bar("writing hprof", plan.bytes());
    let report = plan.write(
        BufWriter::with_capacity(1 << 20, output.file()),
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    let report = report.map_err(|err| format!("writing {}: {err}", out.display()))?;
    output.commit()?;
    let mut err = io::stderr().lock();
    writeln!(
        err,
        "wrote {}: {} objects ({} bytes) in {} classes, {} threads, {} GC roots, {} bytes",
        out.display(),
        report.objects,
        report.bytes,
        report.classes,
        report.threads,
        report.gc_roots,
        report.file_bytes
    )?;
    if report.dropped_objects > 0 {
        writeln!(
            err,
            "left out {} unreachable objects ({} bytes): `heapdump leaks` lists them, --keep-unreachable writes them",
            report.dropped_objects, report.dropped_bytes
        )?;
    }
    if report.dropped_references > 0 {
        writeln!(
            err,
            "warning: {} pointer words of very large objects could not be written as references",
            report.dropped_references
        )?;
    }
    drop(err);
    crate::describe::caveats_to_stderr(heap.caveats())?;
    Ok(())
}

/// Runs `heapdump dot`.
pub fn run_dot(args: &DotArgs) -> Result<()> {
    let heap = args.dump.open(true)?;
    let (graph, analysis, namer) = (heap.graph(), heap.analysis(), heap.root_namer());
    let view = match (args.focus, args.all) {
        (Some(address), _) => dot::View::Focus {
            address,
            depth: args.depth,
        },
        (None, true) => dot::View::All,
        (None, false) => dot::View::Retainers,
    };
    let options = dot::Options {
        view,
        max_nodes: args.max_nodes,
    };
    let report = match &args.output {
        Some(path) => {
            let mut output = AtomicFile::create(path)?;
            let report = dot::write_dot(
                graph,
                analysis,
                &namer,
                &options,
                BufWriter::new(output.file()),
            )?;
            output.commit()?;
            report
        }
        None => dot::write_dot(
            graph,
            analysis,
            &namer,
            &options,
            BufWriter::new(io::stdout().lock()),
        )
        .map_err(|err| match err {
            dot::Error::Io(err) => Box::new(err) as Box<dyn std::error::Error + Send + Sync>,
            other => other.to_string().into(),
        })?,
    };
    if io::stderr().is_terminal() || args.output.is_some() {
        writeln!(
            io::stderr().lock(),
            "drew {} objects and {} roots ({} edges); left out {} objects",
            report.objects,
            report.roots,
            report.edges,
            report.objects_left_out
        )?;
    }
    crate::describe::caveats_to_stderr(heap.caveats())?;
    Ok(())
}
