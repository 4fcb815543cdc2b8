//! `heapdump`: inspect heap dumps of Rust services. The subcommands live
//! in the `heapdump_cli` library, one module each.

// Doc comments here are clap's help texts: `DUMP [BIN]` is usage, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use heapdump_cli::{convert, diff, leaks, path, pprof, retained, serve, summary, top, waste};

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
    /// Memory spent on copies of one value (duplicate strings, byte arrays,
    /// buffers) and on empty or sparse collections, with who holds them.
    Waste(waste::Args),
    /// Convert to HPROF for VisualVM or Eclipse MAT: DUMP [BIN] OUT.hprof.
    Hprof(convert::HprofArgs),
    /// Draw what holds the memory as Graphviz dot (to stdout or -o).
    Dot(convert::DotArgs),
    /// Print a completion script for SHELL (bash, zsh, fish, elvish,
    /// powershell) to standard output.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output.
    Man,
    /// A pprof profile for `go tool pprof` (or folded stacks): live objects
    /// by allocation site, or what holds them as a flame graph.
    Pprof(pprof::Args),
    /// The heap in a browser: DUMP [BIN], or OLD NEW for what grew; serves
    /// on http://127.0.0.1:7000/ by default (--addr).
    Serve(serve::Args),
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
        Command::Waste(args) => waste::run(&args),
        Command::Hprof(args) => convert::run_hprof(&args),
        Command::Dot(args) => convert::run_dot(&args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "heapdump",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map_err(Into::into),
        Command::Pprof(args) => pprof::run(&args),
        Command::Serve(args) => serve::run(&args),
    };
    heapdump_cli::exit_code("heapdump", result)
}
