//! `heapdump leaks`: leak suspects, then the unreachable objects.

use std::io::{self, Write};

use heapdump_inspect::analysis::leaks::{
    leaks, LeakOptions, LeakReport, SuspectKind, UnreachableGroup,
};
use heapdump_inspect::analysis::roots::RootCoverage;

use crate::describe::emit;
use crate::describe::{frames, frames_up_to, group, object, path, wrap};
use crate::human::{bytes, count, plural};
use crate::{load, Result};

/// Text width of wrapped paragraphs.
const WIDTH: usize = 100;

/// Arguments of `heapdump leaks`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dump and how to name it.
    #[command(flatten)]
    pub dump: load::DumpArgs,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// A suspect retains more than this percentage of the reachable heap.
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0)]
    pub threshold: f64,
    /// Most suspects to report.
    #[arg(long, visible_alias = "limit", value_name = "N", default_value_t = 10)]
    pub max_suspects: usize,
    /// Unreachable groups listed per grouping.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub unreachable_groups: usize,
    /// Exit with status 3 (after printing the report) when a suspect
    /// retains more than this percentage of the reachable heap: a gate for
    /// CI jobs and load tests.
    #[arg(long, value_name = "PERCENT")]
    pub fail_above: Option<f64>,
}

/// Runs `heapdump leaks`.
pub fn run(args: &Args) -> Result<()> {
    let heap = args.dump.open(true)?;
    let options = LeakOptions {
        // A suspect --fail-above asks about must be in the report.
        threshold_percent: args.threshold.min(args.fail_above.unwrap_or(f64::INFINITY)),
        max_suspects: args.max_suspects,
        unreachable_groups: args.unreachable_groups,
        ..LeakOptions::default()
    };
    let mut report = load::report("leak suspects", || {
        leaks(heap.graph(), heap.analysis(), &options)
    });
    report.name_roots(heap.graph(), &heap.root_namer());
    emit(&report, heap.caveats(), args.json, print)?;
    if let Some(limit) = args.fail_above {
        if let Some(suspect) = report
            .suspects
            .iter()
            .find(|suspect| suspect.percent > limit)
        {
            return Err(Box::new(crate::Found(format!(
                "a leak suspect retains {:.1}% of the reachable heap, more than --fail-above {limit}%",
                suspect.percent
            ))));
        }
    }
    Ok(())
}

/// Prints which roots a dump covers.
pub fn roots(out: &mut dyn Write, roots: &RootCoverage) -> io::Result<()> {
    let kinds: Vec<String> = roots
        .kinds
        .iter()
        .map(|kind| {
            // "5 segments", "2 thread stacks", but "3 data" (a section's
            // name) and "2 other".
            let name = if kind.roots == 1 || !kind.countable {
                kind.kind.clone()
            } else if kind.kind.ends_with('s') {
                format!("{}es", kind.kind) // "683 system classes"
            } else {
                format!("{}s", kind.kind)
            };
            format!("{} {name} ({})", count(kind.roots), bytes(kind.bytes))
        })
        .collect();
    writeln!(
        out,
        "Roots: {}; {} pointing into objects.",
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        },
        plural(roots.references, "word", "words"),
    )?;
    if !roots.caveat.is_empty() {
        wrap(out, &roots.caveat, "  ", WIDTH)?;
    }
    Ok(())
}

fn unreachable_group(out: &mut dyn Write, group: &UnreachableGroup) -> io::Result<()> {
    writeln!(
        out,
        "  {:<34} {:>10} {:>12}  {}",
        group.reachability.description(),
        count(group.objects),
        bytes(group.bytes),
        group.group.label,
    )?;
    if let Some(example) = &group.example {
        writeln!(out, "      e.g. {}", object(example))?;
    }
    if !group.group.frames.is_empty() {
        frames_up_to(out, &group.group.frames, "      ", 4)?;
    }
    Ok(())
}

/// Writes the text report.
pub fn print(report: &LeakReport, out: &mut dyn Write) -> io::Result<()> {
    roots(out, &report.roots)?;
    writeln!(
        out,
        "Heap: {} in {}; reachable from the roots: {} in {}.",
        bytes(report.bytes),
        plural(report.objects, "object", "objects"),
        bytes(report.reachable_bytes),
        plural(report.reachable_objects, "object", "objects"),
    )?;
    writeln!(out)?;
    if report.suspects.is_empty() {
        writeln!(
            out,
            "No leak suspects: nothing retains more than {:.1}% ({}) of the reachable heap.",
            report.threshold_percent,
            bytes(report.threshold_bytes)
        )?;
    }
    for (rank, suspect) in report.suspects.iter().enumerate() {
        let what = match (&suspect.kind, &suspect.group) {
            (SuspectKind::Group, Some(label)) => format!(
                "{} of {}",
                plural(suspect.objects, "object", "objects"),
                group(label)
            ),
            _ => "one object".to_owned(),
        };
        writeln!(
            out,
            "Suspect {}: {what} retain{} {} ({:.1}%)",
            rank + 1,
            if suspect.objects == 1 { "s" } else { "" },
            bytes(suspect.retained_bytes),
            suspect.percent,
        )?;
        wrap(out, &suspect.summary, "  ", WIDTH)?;
        writeln!(out, "  object:              {}", object(&suspect.object))?;
        for member in suspect.members.iter().skip(1) {
            writeln!(out, "  also:                {}", object(member))?;
        }
        let point = &suspect.accumulation_point;
        if point.depth == 0 {
            writeln!(out, "  accumulation point:  the object itself")?;
        } else {
            writeln!(
                out,
                "  accumulation point:  {} ({} down)",
                object(&point.object),
                plural(point.depth, "level", "levels")
            )?;
        }
        writeln!(
            out,
            "  it holds directly:   {}",
            plural(point.direct_children, "object", "objects")
        )?;
        // The same objects twice: once by class, once by site.
        for (heading, shares) in [
            ("by class:", &point.content_by_class),
            ("by allocation site:", &point.content_by_site),
        ] {
            if shares.is_empty() {
                continue;
            }
            writeln!(out, "    {heading}")?;
            for share in shares {
                writeln!(
                    out,
                    "      {:>10} retaining {:>10}  {}",
                    count(share.objects),
                    bytes(share.retained_bytes),
                    share.group.label
                )?;
            }
        }
        match &suspect.path {
            Some(found) => {
                writeln!(out, "  shortest path from a root:")?;
                path(out, found, "    ")?;
            }
            None => writeln!(out, "  shortest path from a root: none found")?,
        }
        match suspect.object.site {
            Some(stack) => {
                writeln!(
                    out,
                    "  allocation site of the object ({}):",
                    site_and_stack(&suspect.object, stack)
                )?;
                frames(out, &suspect.site, "    ")?;
            }
            None => match report.every_site_hint {
                Some(hint) => {
                    writeln!(out, "  allocation site of the object: not sampled ({hint})")?
                }
                None => writeln!(out, "  allocation site of the object: not sampled")?,
            },
        }
        if point.depth > 0 {
            if let Some(stack) = point.object.site {
                writeln!(
                    out,
                    "  allocation site of the accumulation point ({}):",
                    site_and_stack(&point.object, stack)
                )?;
                frames(out, &suspect.accumulation_site, "    ")?;
            }
        }
        writeln!(out)?;
    }

    let unreachable = &report.unreachable;
    writeln!(
        out,
        "Unreachable: {} in {} (not reachable from any root in the dump).",
        bytes(unreachable.bytes),
        plural(unreachable.objects, "object", "objects"),
    )?;
    for kind in &unreachable.by_reachability {
        writeln!(
            out,
            "  {:<34} {:>10} {:>12}",
            kind.reachability.description(),
            count(kind.objects),
            bytes(kind.bytes)
        )?;
    }
    if unreachable.objects > 0 {
        writeln!(out, "By allocation site:")?;
        for group in &unreachable.by_site {
            unreachable_group(out, group)?;
        }
        writeln!(out, "By class:")?;
        for group in &unreachable.by_class {
            unreachable_group(out, group)?;
        }
    }
    Ok(())
}

/// `site 3f2a9c1e, stack 154` (the site's id and the dump's stack id).
fn site_and_stack(
    object: &heapdump_inspect::analysis::describe::ObjectRef,
    stack: heapdump_inspect::reader::StackId,
) -> String {
    match object.site_id {
        Some(site) => format!("site {}, stack {stack}", site.short()),
        None => format!("stack {stack}"),
    }
}
