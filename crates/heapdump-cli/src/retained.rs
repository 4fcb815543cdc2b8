//! `heapdump retained`: the dominator tree from the top.

use std::io::{self, Write};

use heapdump_inspect::analysis::retained::{
    retained, RetainedNode, RetainedOptions, RetainedReport, MAX_DEPTH,
};

use crate::describe::emit;
use crate::describe::object;
use crate::human::{bytes, count, plural};
use crate::{load, Result};

/// Arguments of `heapdump retained`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dump and how to name it.
    #[command(flatten)]
    pub dump: load::DumpArgs,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Levels of the tree to show (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_DEPTH as u64))]
    pub depth: usize,
    /// Children listed per node, biggest first.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub children: usize,
    /// Leave out nodes retaining less than this percentage of the reachable
    /// heap.
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub min_percent: f64,
}

/// Runs `heapdump retained`.
pub fn run(args: &Args) -> Result<()> {
    let heap = args.dump.open(true)?;
    let options = RetainedOptions {
        depth: args.depth.min(MAX_DEPTH),
        children: args.children,
        min_percent: args.min_percent,
    };
    let mut report = retained(heap.graph(), heap.analysis(), &options);
    report.name_roots(heap.graph(), &heap.root_namer());
    Ok(emit(&report, heap.caveats(), args.json, print)?)
}

fn others(out: &mut dyn Write, indent: &str, others: u64, other_bytes: u64) -> io::Result<()> {
    if others > 0 {
        writeln!(
            out,
            "{indent}... {} more retaining {}",
            plural(others, "object", "objects"),
            bytes(other_bytes)
        )?;
    }
    Ok(())
}

fn node(out: &mut dyn Write, node: &RetainedNode, depth: usize) -> io::Result<()> {
    let indent = "  ".repeat(depth + 1);
    let held = match &node.root {
        Some(root) => format!("  held by {root}"),
        None => String::new(),
    };
    writeln!(
        out,
        "{indent}{:>5.1}% {:>10}  {}  dominates {}{held}",
        node.percent,
        bytes(node.object.retained.unwrap_or(0)),
        object(&node.object),
        plural(node.dominated_objects, "object", "objects"),
    )?;
    for child in &node.children {
        self::node(out, child, depth + 1)?;
    }
    others(
        out,
        &"  ".repeat(depth + 2),
        node.other_children,
        node.other_bytes,
    )
}

/// Writes the text report.
pub fn print(report: &RetainedReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "Reachable from the roots: {} objects, {}; {} directly under the roots (retained \
         sizes, biggest first):",
        count(report.reachable_objects),
        bytes(report.reachable_bytes),
        plural(report.top_level_objects, "object", "objects"),
    )?;
    for child in &report.tree {
        node(out, child, 0)?;
    }
    others(out, "  ", report.other_children, report.other_bytes)
}
