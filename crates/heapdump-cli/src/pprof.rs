//! `heapdump pprof`: a pprof profile (or folded stacks) of live objects by
//! allocation site, or of what holds them (the dominator tree), for
//! `go tool pprof`, its flame graphs and `-diff_base`.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use heapdump_inspect::convert::output::AtomicFile;
use heapdump_inspect::convert::pprof::{self, CollapsedValue, Kind, Plan};

use crate::human::bytes;
use crate::{load, Result};

/// Which profile `--profile` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    /// Live objects by allocation site (`inuse_objects`, `inuse_space`).
    Sites,
    /// Every object under its chain in the dominator tree: a flame graph of
    /// what holds the memory.
    Retention,
}

/// Which file `--format` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// gzip-compressed profile.proto, for `go tool pprof`.
    Pprof,
    /// Folded stacks (`a;b;c 123`), for inferno, speedscope, flamegraph.pl.
    Collapsed,
}

/// Which value a folded stack carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueArg {
    /// Bytes.
    #[value(name = "inuse_space")]
    InuseSpace,
    /// Objects.
    #[value(name = "inuse_objects")]
    InuseObjects,
}

/// Arguments of `heapdump pprof`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The heap dump file (heapdump-rs, or Go's `debug.WriteHeapDump`).
    pub dump: PathBuf,
    /// The dumped program's executable (names global roots and, for Rust
    /// dumps whose executable moved, frames and types).
    #[arg(value_name = "BIN")]
    pub executable: Option<PathBuf>,
    /// Write the profile here (mode 0600, whole or not at all).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Which profile.
    #[arg(long, value_enum, default_value_t = ProfileArg::Sites)]
    pub profile: ProfileArg,
    /// Which file format.
    #[arg(long, value_enum, default_value_t = FormatArg::Pprof)]
    pub format: FormatArg,
    /// With --format collapsed: the value of each line.
    #[arg(long, value_enum, value_name = "VALUE", default_value_t = ValueArg::InuseSpace)]
    pub sample_index: ValueArg,
    /// Retention: most frames in a stack (deeper dominators go into one
    /// frame).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_depth: usize,
    /// Naming frames and types from binaries.
    #[command(flatten)]
    pub symbols: load::SymbolArgs,
}

/// Runs `heapdump pprof`.
pub fn run(args: &Args) -> Result<()> {
    load::refuse_to_overwrite_a_dump(&args.output, None, "a profile")?;
    // `pprof DUMP BIN` (as Go's tools take it) or `pprof DUMP --bin BIN`.
    let symbols = load::symbols_with(args.executable.as_deref(), &args.symbols)?;
    let kind = match args.profile {
        ProfileArg::Sites => Kind::Sites,
        ProfileArg::Retention => Kind::Retention,
    };
    let heap = load::open(&args.dump, &symbols, kind == Kind::Retention)?;
    let options = pprof::Options {
        max_depth: args.max_depth,
    };
    let plan = load::report("planning profile", || match kind {
        Kind::Sites => Plan::sites(heap.graph(), &options),
        Kind::Retention => {
            Plan::retention(heap.graph(), heap.analysis(), &heap.root_namer(), &options)
        }
    });
    let mut output = AtomicFile::create(&args.output)?;
    let out = BufWriter::with_capacity(1 << 20, output.file());
    let written = match args.format {
        FormatArg::Pprof => plan.write_pprof(out),
        FormatArg::Collapsed => plan.write_collapsed(
            match args.sample_index {
                ValueArg::InuseSpace => CollapsedValue::Bytes,
                ValueArg::InuseObjects => CollapsedValue::Objects,
            },
            out,
        ),
    }
    .map_err(|err| format!("writing {}: {err}", args.output.display()))?;
    output.commit()?;
    let report = plan.report();
    let mut notes = Vec::new();
    if report.site_not_recorded_objects > 0 {
        notes.push(format!(
            "{} objects ({}) without a recorded site",
            report.site_not_recorded_objects,
            bytes(report.site_not_recorded_bytes)
        ));
    }
    if report.collapsed_objects > 0 {
        notes.push(format!(
            "{} objects merged into their dominator's frame of the same class",
            report.collapsed_objects
        ));
    }
    if report.cut_objects > 0 {
        notes.push(format!(
            "{} objects under the cut frame of chains deeper than {}",
            report.cut_objects, args.max_depth
        ));
    }
    writeln!(
        io::stderr().lock(),
        "wrote {} ({} profile, {}, {} bytes): {} objects, {} in {} {}{}",
        args.output.display(),
        match kind {
            Kind::Sites => "sites",
            Kind::Retention => "retention",
        },
        match args.format {
            FormatArg::Pprof => "pprof",
            FormatArg::Collapsed => "folded stacks",
        },
        written,
        report.objects,
        bytes(report.bytes),
        report.samples,
        if report.samples == 1 {
            "sample"
        } else {
            "samples"
        },
        if notes.is_empty() {
            String::new()
        } else {
            format!("; {}", notes.join("; "))
        }
    )?;
    crate::describe::caveats_to_stderr(heap.caveats())?;
    Ok(())
}
