//! `heapdump`: inspect heap dumps of Rust services.
//!
//! Each subcommand lives in its own module with its `Args` and `run`;
//! `load` opens, parses and builds the graph with progress bars on stderr.

// Doc comments here are clap's help texts: `DUMP [BIN]` is usage, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

mod analyze;
mod convert;
mod describe;
mod diff;
mod human;
mod leaks;
mod load;
mod path;
mod retained;
mod summary;
mod top;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// What a subcommand returns: any error is printed as `heapdump: error: …`.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Inspect heap dumps of Rust services (written by `heapdump::write`).
#[derive(Debug, Parser)]
#[command(name = "heapdump", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Overview of a dump: process, roots, objects, allocator stats, top
    /// allocation sites, size classes.
    Summary(summary::Args),
    /// Histogram by class and by allocation site: count, shallow and
    /// retained bytes.
    Top(top::Args),
    /// The dominator tree from the top: what retains the most memory.
    Retained(retained::Args),
    /// Leak suspects (what retains more than a threshold of the heap, where
    /// it accumulates, how it is reached) and unreachable objects.
    Leaks(leaks::Args),
    /// Why an object is alive: shortest paths from the roots, dominators.
    Path(path::Args),
    /// What grew between two dumps of one process, and what holds it.
    Diff(diff::Args),
    /// Convert to HPROF for VisualVM or Eclipse MAT: DUMP [BIN] OUT.hprof.
    Hprof(convert::HprofArgs),
    /// Draw what holds the memory as Graphviz dot (to stdout or -o).
    Dot(convert::DotArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Summary(args) => summary::run(&args),
        Command::Top(args) => top::run(&args),
        Command::Retained(args) => retained::run(&args),
        Command::Leaks(args) => leaks::run(&args),
        Command::Path(args) => path::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Hprof(args) => convert::run_hprof(&args),
        Command::Dot(args) => convert::run_dot(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `heapdump summary x | head`: the reader went away; not an error.
        Err(err) if is_broken_pipe(err.as_ref()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "heapdump: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &(dyn std::error::Error + 'static)) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|err| err.kind() == std::io::ErrorKind::BrokenPipe)
}
