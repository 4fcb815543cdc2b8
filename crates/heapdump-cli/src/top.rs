//! `heapdump top`: the heap by class and by allocation site.

use std::io::{self, Write};

use heapdump_inspect::analysis::top::{
    top_with, Internals, TopOptions, TopOrder, TopReport, TopRow,
};

use crate::describe::{emit, frames_up_to};
use crate::human::{bytes, count, label_width, table_row};
use crate::{load, Result};

/// Row order of `heapdump top`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Order {
    /// Retained bytes.
    Retained,
    /// Shallow bytes.
    Shallow,
    /// Object count.
    Count,
}

/// Arguments of `heapdump top`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dump and how to name it.
    #[command(flatten)]
    pub dump: load::DumpArgs,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Rows per table.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Order rows by retained bytes, shallow bytes or object count.
    #[arg(long, value_enum, default_value_t = Order::Retained)]
    pub sort: Order,
    /// Show the standard library's and the runtime's own classes and sites
    /// (std's thread-info map, the tracker's) as rows of their own instead
    /// of one "std and runtime internals" row.
    #[arg(long)]
    pub internals: bool,
}

/// Runs `heapdump top`.
pub fn run(args: &Args) -> Result<()> {
    let heap = args.dump.open(true)?;
    let options = TopOptions {
        limit: args.limit,
        order: match args.sort {
            Order::Retained => TopOrder::Retained,
            Order::Shallow => TopOrder::Shallow,
            Order::Count => TopOrder::Count,
        },
    };
    let internals = if args.internals {
        Internals::Show
    } else {
        Internals::Fold
    };
    let report = load::report("histogram", || {
        top_with(heap.graph(), heap.analysis(), &options, internals)
    });
    Ok(emit(&report, heap.caveats(), args.json, print)?)
}

fn table(out: &mut dyn Write, title: &str, rows: &[TopRow], with_frames: bool) -> io::Result<()> {
    writeln!(out, "{title}")?;
    let widths = [12, 14, 14, 14];
    let header = ["objects", "shallow", "retained", "unreachable"];
    let width = label_width(rows.iter().map(|row| row.group.label.as_str()));
    table_row(
        out,
        ("", width),
        &header.iter().zip(widths).collect::<Vec<_>>(),
    )?;
    for row in rows {
        let cells = [
            count(row.totals.objects),
            bytes(row.totals.shallow_bytes),
            bytes(row.totals.retained_bytes),
            bytes(row.totals.unreachable_bytes),
        ];
        table_row(
            out,
            (&row.group.label, width),
            &cells.iter().zip(widths).collect::<Vec<_>>(),
        )?;
        if with_frames {
            frames_up_to(out, &row.group.frames, "      ", 4)?;
        }
    }
    Ok(())
}

/// Writes the text report.
pub fn print(report: &TopReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{} objects, {}; reachable from the roots: {} objects, {}",
        count(report.objects),
        bytes(report.bytes),
        count(report.reachable_objects),
        bytes(report.reachable_bytes),
    )?;
    let order = match report.order {
        TopOrder::Retained => "retained bytes",
        TopOrder::Shallow => "shallow bytes",
        TopOrder::Count => "object count",
    };
    writeln!(
        out,
        "Retained: what a group keeps alive (objects it dominates), not counting objects of the \
         group inside another's."
    )?;
    writeln!(out)?;
    table(
        out,
        &format!(
            "By class, by {order} ({} of {} classes):",
            report.by_class.len(),
            count(report.class_count)
        ),
        &report.by_class,
        false,
    )?;
    writeln!(out)?;
    table(
        out,
        &format!(
            "By allocation site, by {order} ({} of {} sites):",
            report.by_site.len(),
            count(report.site_count)
        ),
        &report.by_site,
        true,
    )
}
