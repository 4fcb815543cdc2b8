//! `heapdump path`: why an object is alive.

use std::io::{self, Write};
use std::path::PathBuf;

use heapdump_inspect::analysis::paths::{path, PathOptions, PathReport};

use crate::describe::emit;
use crate::describe::{object, omitted_line};
use crate::human::{bytes, parse_address, plural};
use crate::{load, Result};

/// Arguments of `heapdump path`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The heap dump file.
    pub dump: PathBuf,
    /// An address inside the object (hex with 0x, or decimal).
    #[arg(value_parser = parse_address)]
    pub address: u64,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// How many shortest paths to show, each through a different referrer.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub paths: usize,
    /// Naming frames and types from binaries.
    #[command(flatten)]
    pub symbols: load::SymbolArgs,
}

/// Runs `heapdump path`.
pub fn run(args: &Args) -> Result<()> {
    let heap = load::open(&args.dump, &args.symbols, true)?;
    let namer = heap.root_namer();
    let options = PathOptions { paths: args.paths };
    let mut report = load::report("paths", || {
        path(heap.graph(), heap.analysis(), args.address, &options)
    })?;
    for path in &mut report.paths {
        path.name_root(heap.graph(), &namer);
    }
    Ok(emit(&report, heap.caveats(), args.json, print)?)
}

/// Writes the text report.
pub fn print(report: &PathReport, out: &mut dyn Write) -> io::Result<()> {
    write!(out, "{:#x} is ", report.address)?;
    if report.offset_in_object > 0 {
        write!(out, "{} bytes into ", report.offset_in_object)?;
    }
    writeln!(out, "{}", object(&report.object))?;
    match report.object.retained {
        Some(retained) => writeln!(out, "  retains {}", bytes(retained))?,
        None => writeln!(out, "  {}", report.object.reachability.description())?,
    }
    writeln!(
        out,
        "  referenced by {} and {}",
        plural(report.referrers, "object", "objects"),
        plural(report.root_references, "root word", "root words"),
    )?;
    if !report.dominators.is_empty() {
        writeln!(
            out,
            "Dominators (freeing any of these frees it), from the top:"
        )?;
        for (index, dominator) in report.dominators.iter().enumerate() {
            if let Some(omitted) = report
                .dominators_omitted
                .as_ref()
                .filter(|omitted| omitted.at == index)
            {
                writeln!(out, "  {}", omitted_line(omitted))?;
            }
            writeln!(
                out,
                "  {}  retains {}",
                object(dominator),
                bytes(dominator.retained.unwrap_or(0))
            )?;
        }
    } else if report.object.retained.is_some() {
        writeln!(
            out,
            "Dominators: none (held by more than one path, or by a root directly)"
        )?;
    }
    for (index, found) in report.paths.iter().enumerate() {
        writeln!(
            out,
            "Path {} ({}):",
            index + 1,
            plural(found.object_count(), "object", "objects")
        )?;
        crate::describe::path(out, found, "  ")?;
    }
    if !report.unreachable_referrers.is_empty() {
        writeln!(out, "Held by unreachable objects:")?;
        for referrer in &report.unreachable_referrers {
            writeln!(out, "  {}", object(referrer))?;
        }
    }
    Ok(())
}
