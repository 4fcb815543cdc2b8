//! `heapdump summary`: a one-page overview of a dump, as text or JSON.

use std::io::{self, Write};

use heapdump_inspect::analysis::summary::{ContextSummary, RuntimeStatsSummary};
use heapdump_inspect::analysis::{SiteFrames, Summary};
use heapdump_inspect::reader::dump::contents_mode_name;
use heapdump_inspect::reader::Hex;

use crate::describe::{emit, frames_up_to};
use crate::human::{bytes, count, plural, size_bound, utc_time};
use crate::{load, Result};

/// Most frames of a site's stack the text report shows (JSON has all).
const MAX_FRAMES: usize = 16;

/// Arguments of `heapdump summary`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dump and how to name it.
    #[command(flatten)]
    pub dump: load::DumpArgs,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// How many allocation sites to list, by live bytes.
    #[arg(long, visible_alias = "limit", value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// List the standard library's and the runtime's own types (std's
    /// thread-info map, the tracker's) one by one instead of as one
    /// "std and runtime internals" row.
    #[arg(long)]
    pub internals: bool,
}

/// Runs `heapdump summary`.
pub fn run(args: &Args) -> Result<()> {
    let symbols = args.dump.symbols()?;
    // The summary needs no dominator tree.
    let heap = load::open(&args.dump.dump, &symbols, false)?;
    let symbols_from = symbols
        .binary
        .as_ref()
        .map(|path| path.display().to_string());
    let summary = Summary::compute_with(heap.graph(), args.top, &heap.root_namer(), symbols_from);
    let internals = args.internals;
    Ok(emit(
        &summary,
        heap.caveats(),
        args.json,
        |summary, out| print_with(summary, internals, out),
    )?)
}

/// Writes the text report, the runtime's own types folded into one row.
pub fn print(summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
    print_with(summary, false, out)
}

/// Writes the text report; `internals`: the runtime's own types one by one.
pub fn print_with(summary: &Summary, internals: bool, out: &mut dyn Write) -> io::Result<()> {
    if let Some(runtime) = &summary.runtime_stats {
        print_runtime_header(summary, runtime, out)?;
    } else {
        print_header(summary, out)?;
    }
    if summary.runtime_stats.is_none() {
        writeln!(out)?;
        writeln!(out, "Modules: {}", count(summary.module_count))?;
    }
    for module in &summary.modules {
        write!(out, "  #{:<3} {}", module.id, module.path)?;
        if !module.build_id.is_empty() {
            write!(out, "  build-id {}", Hex(&module.build_id))?;
        }
        writeln!(out, "  load bias {:#x}", module.load_bias)?;
    }

    let roots = &summary.roots;
    writeln!(out)?;
    // Only module segments and thread stacks: one line says it all.
    let total_roots: u64 = summary.roots_by_kind.iter().map(|kind| kind.roots).sum();
    if roots.segments + roots.thread_stacks == total_roots {
        writeln!(
            out,
            "Roots: {} ({}), {} ({}); {} pointing into objects",
            plural(roots.segments, "segment", "segments"),
            bytes(roots.segment_bytes),
            plural(roots.thread_stacks, "thread stack", "thread stacks"),
            bytes(roots.thread_stack_bytes),
            plural(summary.root_reference_count, "word", "words"),
        )?;
    } else {
        writeln!(
            out,
            "Roots: {}; {} pointing into objects",
            count(summary.roots_by_kind.iter().map(|kind| kind.roots).sum()),
            plural(summary.root_reference_count, "word", "words"),
        )?;
        writeln!(
            out,
            "  {:<20}{:>10}{:>14}{:>12}",
            "kind", "roots", "bytes", "pointers"
        )?;
        for kind in &summary.roots_by_kind {
            writeln!(
                out,
                "  {:<20}{:>10}{:>14}{:>12}",
                kind.kind,
                count(kind.roots),
                bytes(kind.bytes),
                count(kind.references),
            )?;
        }
    }
    print_globals(summary, out)?;
    writeln!(
        out,
        "Objects: {} live, {} ({} bytes), {}",
        count(summary.object_count),
        bytes(summary.live_bytes),
        count(summary.live_bytes),
        plural(summary.reference_count, "reference", "references"),
    )?;
    writeln!(
        out,
        "  reachable from roots: {} in {}; unreachable: {} in {}",
        bytes(summary.reachable.bytes),
        plural(summary.reachable.objects, "object", "objects"),
        bytes(summary.unreachable.bytes),
        plural(summary.unreachable.objects, "object", "objects"),
    )?;

    if let Some(contexts) = &summary.contexts {
        print_contexts(contexts, out)?;
    }

    writeln!(out)?;
    match (&summary.stats, &summary.stats_agreement) {
        (Some(_), Some(agreement)) if summary.runtime_stats.is_some() => {
            if let Some(runtime) = &summary.runtime_stats {
                print_runtime_stats(summary, runtime, agreement.all(), out)?;
            }
        }
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
            if let Some(coverage) = stats.threads {
                writeln!(
                    out,
                    "  threads         {} of {} stacks in the dump{}",
                    coverage.dumped,
                    coverage.threads,
                    if coverage.dumped < coverage.threads {
                        " (the others blocked the stop signal: objects they hold may look unreachable)"
                    } else {
                        ""
                    }
                )?;
            }
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
    // Symbolised stacks may have more frames than PCs (inlined calls).
    let symbolised = summary.top_sites.iter().any(|site| !site.frames.is_empty())
        && summary
            .top_sites
            .iter()
            .all(|site| site.pcs.is_empty() || !site.frames.is_empty());
    let sampled = if summary.runtime_stats.is_some() {
        "sampled objects only"
    } else if symbolised {
        "symbolised"
    } else {
        "PCs not symbolised"
    };
    writeln!(
        out,
        "Top allocation sites by live bytes ({} of {} with live objects; {sampled}):",
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
        if let Some(profile) = &site.profile {
            writeln!(
                out,
                "          profile: {} of {} sampled, {} freed",
                plural(profile.allocs, "allocation", "allocations"),
                bytes(profile.object_size),
                count(profile.frees),
            )?;
        }
        if site.frames.is_empty() {
            let pcs = SiteFrames {
                labels: site.pcs.clone(),
                runtime: 0,
            };
            frames_up_to(out, &pcs, "          ", MAX_FRAMES)?;
        } else {
            frames_up_to(out, &site.frames, "          ", MAX_FRAMES)?;
        }
    }
    writeln!(
        out,
        "  not sampled: {} in {}",
        bytes(summary.not_sampled.bytes),
        plural(summary.not_sampled.objects, "object", "objects"),
    )?;

    if summary
        .top_classes
        .iter()
        .any(|class| !class.name.ends_with("[?]"))
    {
        writeln!(out)?;
        writeln!(
            out,
            "Top types and shapes by bytes ({} of {}; obj<size>[...] is a shape: p pointer, \
             _ other word, h malloc header):",
            summary.top_classes.len(),
            count(summary.class_count),
        )?;
        // (bytes, objects, name): the runtime's own types as one row
        // unless asked for.
        let mut rows: Vec<(u64, u64, String)> = summary
            .top_classes
            .iter()
            .filter(|class| internals || !class.runtime)
            .map(|class| (class.totals.bytes, class.totals.objects, class.name.clone()))
            .collect();
        let folded = &summary.runtime_classes;
        if !internals && folded.classes > 0 {
            rows.push((
                folded.totals.bytes,
                folded.totals.objects,
                format!(
                    "std and runtime internals ({}; --internals lists them)",
                    plural(folded.classes, "type", "types")
                ),
            ));
            rows.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        }
        for (class_bytes, objects, name) in rows {
            writeln!(
                out,
                "  {:>12} in {:<16} {}",
                bytes(class_bytes),
                plural(objects, "object", "objects"),
                name,
            )?;
        }
    }

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

/// The heapdump-rs header lines: process, executable, pointers, sampling.
fn print_header(summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
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
        0 => writeln!(out, "  sampling    not recorded")?,
        1 => writeln!(out, "  sampling    every allocation's site")?,
        rate => writeln!(
            out,
            "  sampling    one allocation site per {} allocated (mean)",
            bytes(rate)
        )?,
    }

    Ok(())
}

/// The header lines of a dump written by a runtime with its own
/// statistics (Go).
fn print_runtime_header(
    summary: &Summary,
    runtime: &RuntimeStatsSummary,
    out: &mut dyn Write,
) -> io::Result<()> {
    let info = &summary.info;
    writeln!(
        out,
        "{} heap dump ({} format {}) written by {} ({}, {}-bit {})",
        runtime.runtime,
        info.format,
        info.format_version,
        runtime.version,
        info.arch,
        u32::from(info.pointer_size) * 8,
        if info.big_endian {
            "big-endian"
        } else {
            "little-endian"
        }
    )?;
    match &summary.symbols_from {
        Some(path) => writeln!(out, "  symbols     {path}")?,
        None => writeln!(
            out,
            "  symbols     none (give the executable after the dump to name globals)"
        )?,
    }
    Ok(())
}

/// Named global roots.
fn print_globals(summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
    if summary.global_roots.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "Global roots pointing into objects: {} (showing {}):",
        count(summary.global_root_count),
        summary.global_roots.len()
    )?;
    for global in &summary.global_roots {
        writeln!(
            out,
            "  {:<32} -> {:#x} {} ({})",
            global.name,
            global.target,
            global.target_class,
            bytes(global.target_size)
        )?;
    }
    Ok(())
}

/// Execution contexts (goroutines) by state and wait reason.
fn print_contexts(contexts: &ContextSummary, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    let mut heading = String::new();
    let mut letters = contexts.noun.chars();
    if let Some(first) = letters.next() {
        heading.extend(first.to_uppercase());
        heading.push_str(letters.as_str());
        heading.push('s');
    }
    writeln!(
        out,
        "{heading}: {} ({} runtime), {} ({}), {}",
        count(contexts.count),
        count(contexts.system),
        plural(contexts.frames, "frame", "frames"),
        bytes(contexts.frame_bytes),
        plural(contexts.os_threads, "OS thread", "OS threads"),
    )?;
    let statuses: Vec<String> = contexts
        .by_status
        .iter()
        .map(|status| format!("{} {}", count(status.count), status.name))
        .collect();
    writeln!(out, "  by status: {}", statuses.join(", "))?;
    for reason in &contexts.by_wait_reason {
        writeln!(
            out,
            "  {:>8}  waiting: {}",
            count(reason.count),
            reason.name
        )?;
    }
    Ok(())
}

/// The runtime's own statistics (Go's memstats, whose field names the
/// lines quote) against what the dump holds.
fn print_runtime_stats(
    summary: &Summary,
    stats: &RuntimeStatsSummary,
    agree: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "{} {}:", stats.runtime, stats.source)?;
    let line =
        |out: &mut dyn Write, label: &str, value: String| writeln!(out, "  {label:<14}{value}");
    line(
        out,
        "heap alloc",
        format!(
            "{} in {} (HeapAlloc, HeapObjects)",
            bytes(stats.heap_alloc),
            plural(stats.heap_objects, "object", "objects")
        ),
    )?;
    line(
        out,
        "heap in use",
        format!(
            "{} of {} from the OS",
            bytes(stats.heap_inuse),
            bytes(stats.heap_sys)
        ),
    )?;
    line(out, "stacks", bytes(stats.stack_inuse))?;
    line(out, "sys", bytes(stats.sys))?;
    line(
        out,
        "allocated",
        format!(
            "{} in {} since start, {} freed",
            bytes(stats.total_alloc),
            plural(stats.mallocs, "object", "objects"),
            count(stats.frees)
        ),
    )?;
    line(
        out,
        "GC",
        // The runtime's goal is all ones while no next cycle is planned
        // (GOGC=off, or during the dump's stop-the-world).
        if stats.next_gc >= 1 << 62 {
            format!("{} cycles, no next cycle planned", count(stats.num_gc))
        } else {
            format!(
                "{} cycles, next at {}",
                count(stats.num_gc),
                bytes(stats.next_gc)
            )
        },
    )?;
    line(
        out,
        "profile",
        format!(
            "{}, {} (sampled live objects)",
            plural(stats.buckets, "bucket", "buckets"),
            plural(stats.alloc_samples, "alloc sample", "alloc samples")
        ),
    )?;
    if agree {
        writeln!(
            out,
            "  The dump's {} and {} bytes agree with HeapObjects and HeapAlloc.",
            plural(summary.object_count, "object", "objects"),
            count(summary.live_bytes),
        )
    } else {
        writeln!(
            out,
            "  The dump has {} and {} bytes; memstats say {} and {} bytes \
             (differences: objects allocated or swept after the stats were read).",
            plural(summary.object_count, "object", "objects"),
            count(summary.live_bytes),
            count(stats.heap_objects),
            count(stats.heap_alloc),
        )
    }
}
