//! `heapdump waste`: duplicate strings and values, empty and sparse
//! collections.

use std::io::{self, Write};

use heapdump_inspect::analysis::waste::{
    waste, CollectionState, DuplicateSection, Referrer, WasteOptions, WasteReport, SPARSE_FRACTION,
    SPARSE_MIN_SLOTS,
};

use crate::describe::emit;
use crate::human::{bytes, count, label_width, plural, table_row};
use crate::{load, Result};

/// Arguments of `heapdump waste`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dump and how to name it.
    #[command(flatten)]
    pub dump: load::DumpArgs,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Rows per section.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Referrers shown per row.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(0..=100))]
    pub referrers: u16,
}

/// Runs `heapdump waste`.
pub fn run(args: &Args) -> Result<()> {
    let heap = args.dump.open(true)?;
    let options = WasteOptions {
        limit: args.limit,
        referrers: usize::from(args.referrers),
    };
    let report = load::report("waste", || waste(heap.graph(), heap.analysis(), &options));
    Ok(emit(&report, heap.caveats(), args.json, print)?)
}

/// A referrer as text: `Class.field` (a field that names its class
/// already, a static's `Class.FIELD`, alone), `Class[]` for array
/// elements, with its count.
fn referrer(referrer: &Referrer) -> String {
    let place = match referrer.field.as_deref() {
        None => referrer.class.clone(),
        Some("[]") => format!("{} element", referrer.class),
        Some(field) if field.contains('.') => field.to_owned(),
        Some(field) => format!("{}.{field}", referrer.class),
    };
    format!("{place} ({})", count(referrer.count))
}

fn referrers(out: &mut dyn Write, referrers: &[Referrer]) -> io::Result<()> {
    if referrers.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = referrers.iter().map(referrer).collect();
    writeln!(out, "      held by {}", list.join(", "))
}

fn duplicates(out: &mut dyn Write, title: &str, section: &DuplicateSection) -> io::Result<()> {
    writeln!(
        out,
        "{title}: {}, {}, {} wasted ({} examined)",
        plural(section.groups, "group", "groups"),
        plural(section.extra_copies, "extra copy", "extra copies"),
        bytes(section.wasted_bytes),
        count(section.examined),
    )?;
    if section.rows.is_empty() {
        return Ok(());
    }
    let widths = [10, 12, 14];
    let header = ["copies", "each", "wasted"];
    let width = label_width(section.rows.iter().map(|row| row.class.as_str()));
    table_row(
        out,
        ("", width),
        &header.iter().zip(widths).collect::<Vec<_>>(),
    )?;
    for row in &section.rows {
        let cells = [count(row.count), bytes(row.size), bytes(row.wasted_bytes)];
        table_row(
            out,
            (&row.class, width),
            &cells.iter().zip(widths).collect::<Vec<_>>(),
        )?;
        writeln!(out, "      {} ({} long)", row.preview, count(row.length))?;
        referrers(out, &row.referrers)?;
    }
    Ok(())
}

/// Writes the text report.
pub fn print(report: &WasteReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "Reachable: {} objects, {}",
        count(report.reachable_objects),
        bytes(report.reachable_bytes)
    )?;
    writeln!(out)?;
    duplicates(
        out,
        "Duplicate strings (a copy's size is what it retains)",
        &report.strings,
    )?;
    writeln!(out)?;
    duplicates(
        out,
        "Duplicate values (objects without references, equal contents)",
        &report.values,
    )?;
    writeln!(out)?;
    let collections = &report.collections;
    if collections.examined == 0 {
        return writeln!(
            out,
            "Collections: none the dump names (empty and sparse collections are found by class \
             and field name, in Java dumps)"
        );
    }
    writeln!(
        out,
        "Collections: {} examined, {} empty, {} sparse (over {SPARSE_MIN_SLOTS} slots, at most \
         1/{SPARSE_FRACTION} used), {} wasted",
        count(collections.examined),
        count(collections.empty),
        count(collections.sparse),
        bytes(collections.wasted_bytes),
    )?;
    if collections.rows.is_empty() {
        return Ok(());
    }
    let widths = [8, 10, 12, 14];
    let header = ["state", "count", "used/slots", "wasted"];
    let width = label_width(collections.rows.iter().map(|row| row.class.as_str()));
    table_row(
        out,
        ("", width),
        &header.iter().zip(widths).collect::<Vec<_>>(),
    )?;
    for row in &collections.rows {
        let state = match row.state {
            CollectionState::Empty => "empty",
            CollectionState::Sparse => "sparse",
        };
        let cells = [
            state.to_owned(),
            count(row.count),
            format!("{}/{}", count(row.used), count(row.slots)),
            bytes(row.wasted_bytes),
        ];
        table_row(
            out,
            (&row.class, width),
            &cells.iter().zip(widths).collect::<Vec<_>>(),
        )?;
        referrers(out, &row.referrers)?;
    }
    Ok(())
}
