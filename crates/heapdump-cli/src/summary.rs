//! `heapdump summary`: a one-page overview of a dump, as text or JSON.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use heapdump_reader::dump::contents_mode_name;
use heapdump_reader::{Hex, Summary};

use crate::human::{bytes, count, plural, size_bound, utc_time};
use crate::{load, Result};

/// Most frames of a site's stack the text report shows (JSON has all).
const MAX_FRAMES: usize = 16;

/// Arguments of `heapdump summary`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The heap dump file.
    pub dump: PathBuf,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// How many allocation sites to list, by live bytes.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
}

/// Runs `heapdump summary`.
pub fn run(args: &Args) -> Result<()> {
    let file = load::open(&args.dump)?;
    let graph = load::graph(&file)?;
    let summary = Summary::compute(&graph, args.top);
    let mut out = BufWriter::new(io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary).map_err(io::Error::from)?;
        writeln!(out)?;
    } else {
        print(&summary, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// Writes the text report.
pub fn print(summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
    let info = &summary.info;
    writeln!(
        out,
        "{} {} dump of pid {} ({} {}), written by {}",
        info.format,
        info.format_version,
        info.pid,
        info.arch,
        info.os,
        if info.writer.is_empty() {
            "an unnamed writer"
        } else {
            &info.writer
        }
    )?;
    writeln!(out, "  taken       {}", utc_time(info.time_unix_ns))?;
    let executable = if info.executable.is_empty() {
        "(unknown)"
    } else {
        &info.executable
    };
    if info.build_id.is_empty() {
        writeln!(out, "  executable  {executable}")?;
    } else {
        writeln!(
            out,
            "  executable  {executable} (build-id {})",
            Hex(&info.build_id)
        )?;
    }
    writeln!(
        out,
        "  pointers    {} bytes, {}",
        info.pointer_size,
        if info.big_endian {
            "big-endian"
        } else {
            "little-endian"
        }
    )?;
    writeln!(
        out,
        "  contents    {}",
        contents_mode_name(info.contents_mode)
    )?;
    match info.sample_rate {
        0 | 1 => writeln!(out, "  sampling    every allocation's site")?,
        rate => writeln!(
            out,
            "  sampling    one allocation site per {} allocated (mean)",
            bytes(rate)
        )?,
    }

    writeln!(out)?;
    writeln!(out, "Modules: {}", count(summary.module_count))?;
    for module in &summary.modules {
        write!(out, "  #{:<3} {}", module.id, module.path)?;
        if !module.build_id.is_empty() {
            write!(out, "  build-id {}", Hex(&module.build_id))?;
        }
        writeln!(out, "  load bias {:#x}", module.load_bias)?;
    }

    let roots = &summary.roots;
    writeln!(out)?;
    writeln!(
        out,
        "Roots: {} ({}), {} ({}); {} pointing into objects",
        plural(roots.segments, "segment", "segments"),
        bytes(roots.segment_bytes),
        plural(roots.thread_stacks, "thread stack", "thread stacks"),
        bytes(roots.thread_stack_bytes),
        plural(summary.root_reference_count, "word", "words"),
    )?;
    writeln!(
        out,
        "Objects: {} live, {} ({} bytes), {}",
        count(summary.object_count),
        bytes(summary.live_bytes),
        count(summary.live_bytes),
        plural(summary.reference_count, "reference", "references"),
    )?;

    writeln!(out)?;
    match (&summary.stats, &summary.stats_agreement) {
        (Some(stats), Some(agreement)) => {
            writeln!(out, "Allocator stats:")?;
            let line = |out: &mut dyn Write, label: &str, b: u64, objects: Option<u64>| {
                write!(out, "  {label:<12}{:>12}", bytes(b))?;
                if let Some(objects) = objects {
                    write!(out, " in {}", plural(objects, "object", "objects"))?;
                }
                writeln!(out)
            };
            line(out, "live", stats.live_bytes, Some(stats.live_objects))?;
            line(
                out,
                "allocated",
                stats.allocated_bytes,
                Some(stats.allocated_objects),
            )?;
            line(out, "freed", stats.freed_bytes, Some(stats.freed_objects))?;
            line(out, "peak live", stats.peak_live_bytes, None)?;
            line(out, "tracker", stats.tracker_bytes, None)?;
            if agreement.all() {
                writeln!(
                    out,
                    "  The dump's {} and {} bytes agree with the allocator stats.",
                    plural(summary.object_count, "object", "objects"),
                    count(summary.live_bytes),
                )?;
            } else {
                writeln!(
                    out,
                    "  The dump DISAGREES with the allocator stats: it has {} (stats: {}) \
                     and {} bytes (stats: {}).",
                    plural(summary.object_count, "object", "objects"),
                    count(stats.live_objects),
                    count(summary.live_bytes),
                    count(stats.live_bytes),
                )?;
            }
        }
        _ => writeln!(out, "Allocator stats: none in the dump")?,
    }

    writeln!(out)?;
    writeln!(
        out,
        "Top allocation sites by live bytes ({} of {} with live objects; PCs not symbolised):",
        summary.top_sites.len(),
        count(summary.site_count),
    )?;
    for (rank, site) in summary.top_sites.iter().enumerate() {
        writeln!(
            out,
            "  {:>3}. {:>12} in {}  (stack {})",
            rank + 1,
            bytes(site.totals.bytes),
            plural(site.totals.objects, "object", "objects"),
            site.stack_id,
        )?;
        for pc in site.pcs.iter().take(MAX_FRAMES) {
            writeln!(out, "          {pc}")?;
        }
        if site.pcs.len() > MAX_FRAMES {
            writeln!(
                out,
                "          ... {} more",
                plural((site.pcs.len() - MAX_FRAMES) as u64, "frame", "frames")
            )?;
        }
    }
    writeln!(
        out,
        "  not sampled: {} in {}",
        bytes(summary.not_sampled.bytes),
        plural(summary.not_sampled.objects, "object", "objects"),
    )?;

    writeln!(out)?;
    writeln!(out, "Objects by size class:")?;
    writeln!(
        out,
        "  {:<14}{:>14}{:>14}",
        "size up to", "objects", "bytes"
    )?;
    for class in &summary.size_classes {
        writeln!(
            out,
            "  {:<14}{:>14}{:>14}",
            size_bound(class.max),
            count(class.totals.objects),
            bytes(class.totals.bytes),
        )?;
    }
    Ok(())
}
