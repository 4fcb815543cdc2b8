//! `heapdump diff`: what grew between two dumps of one process.

use std::io::{self, Write};
use std::path::PathBuf;

use heapdump_inspect::analysis::diff::{diff, DiffOptions, DiffReport, GroupGrowth};

use crate::describe::emit;
use crate::describe::{group, object, path};
use crate::human::{
    bytes, count, label_width, plural, signed_bytes, signed_count, table_row, utc_time,
};
use crate::{load, Result};

/// Arguments of `heapdump diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The older heap dump.
    pub old: PathBuf,
    /// The newer heap dump (of the same process).
    pub new: PathBuf,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Rows per table.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Top growers whose retainers in NEW are shown.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub growers: usize,
    /// Naming frames and types from binaries (both dumps are of one
    /// program).
    #[command(flatten)]
    pub symbols: load::SymbolArgs,
}

/// Runs `heapdump diff`.
pub fn run(args: &Args) -> Result<()> {
    let old = load::open(&args.old, &args.symbols, true)?;
    let new = load::open(&args.new, &args.symbols, true)?;
    let namer = new.root_namer();
    let options = DiffOptions {
        limit: args.limit,
        growers: args.growers,
        ..DiffOptions::default()
    };
    let mut report = load::report("diff", || {
        diff(
            (old.graph(), old.analysis()),
            (new.graph(), new.analysis()),
            &options,
        )
    });
    for grower in &mut report.growers {
        for retainer in &mut grower.retainers {
            if let Some(path) = &mut retainer.path {
                path.name_root(new.graph(), &namer);
            }
        }
    }
    let caveats = crate::describe::caveats_of_both(old.caveats(), new.caveats());
    Ok(emit(&report, &caveats, args.json, print)?)
}

fn table(out: &mut dyn Write, title: &str, rows: &[GroupGrowth]) -> io::Result<()> {
    writeln!(out, "{title}")?;
    if rows.is_empty() {
        return writeln!(out, "  no change");
    }
    let widths = [12, 14, 12, 14];
    let header = ["objects", "bytes", "now objects", "now bytes"];
    let width = label_width(rows.iter().map(|row| row.group.label.as_str()));
    table_row(
        out,
        ("", width),
        &header.iter().zip(widths).collect::<Vec<_>>(),
    )?;
    for row in rows {
        let cells = [
            signed_count(row.object_growth),
            signed_bytes(row.byte_growth),
            count(row.new_objects),
            bytes(row.new_bytes),
        ];
        table_row(
            out,
            (&row.group.label, width),
            &cells.iter().zip(widths).collect::<Vec<_>>(),
        )?;
    }
    Ok(())
}

/// Writes the text report.
pub fn print(report: &DiffReport, out: &mut dyn Write) -> io::Result<()> {
    for (name, totals) in [("old", &report.old), ("new", &report.new)] {
        // Go dumps record neither the pid nor the time.
        let process = match (totals.pid, totals.time_unix_ns) {
            (0, 0) => String::new(),
            (0, time) => format!(": at {}", utc_time(time)),
            (pid, 0) => format!(": pid {pid}"),
            (pid, time) => format!(": pid {pid} at {}", utc_time(time)),
        };
        writeln!(
            out,
            "{name}{process}: {} in {} ({} reachable)",
            bytes(totals.bytes),
            plural(totals.objects, "object", "objects"),
            bytes(totals.reachable_bytes),
        )?;
    }
    if !report.same_process {
        writeln!(
            out,
            "warning: the dumps come from different processes; sites are matched by return \
             address and may not line up."
        )?;
    }
    writeln!(out)?;
    table(out, "Growth by class:", &report.by_class)?;
    writeln!(out)?;
    table(out, "Growth by allocation site:", &report.by_site)?;
    for grower in &report.growers {
        writeln!(out)?;
        writeln!(
            out,
            "{} grew by {} ({}); in NEW it is held by:",
            group(&grower.growth.group),
            plural(
                grower.growth.object_growth.max(0) as u64,
                "object",
                "objects"
            ),
            signed_bytes(grower.growth.byte_growth),
        )?;
        for retainer in &grower.retainers {
            match &retainer.object {
                Some(found) => writeln!(
                    out,
                    "  {} of them ({}) under {}",
                    count(retainer.objects),
                    bytes(retainer.bytes),
                    object(found)
                )?,
                None => writeln!(
                    out,
                    "  {} of them ({}) directly under the roots",
                    count(retainer.objects),
                    bytes(retainer.bytes)
                )?,
            }
            if let Some(found) = &retainer.path {
                path(out, found, "      ")?;
            }
        }
    }
    Ok(())
}
