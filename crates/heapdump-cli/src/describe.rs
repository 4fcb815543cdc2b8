//! How the analysis subcommands print objects, paths and sites.

use std::io::{self, Write};

use heapdump_analysis::describe::ObjectRef;
use heapdump_analysis::paths::RootPath;
use heapdump_analysis::{GroupLabel, Grouping, Reachability};

use crate::human::{bytes, plural};

/// Most frames of a stack printed (JSON has all).
pub const MAX_FRAMES: usize = 8;

/// `0x55d0c4a3b010 (1.50 KiB, 1025..2048-byte objects, site 7)`.
pub fn object(object: &ObjectRef) -> String {
    let mut text = format!(
        "{:#x} ({}, {}",
        object.address,
        bytes(object.size),
        object.class
    );
    match object.site {
        Some(site) => text.push_str(&format!(", site {site}")),
        None => text.push_str(", site not sampled"),
    }
    if object.reachability != Reachability::Reachable {
        text.push_str(&format!(", {}", object.reachability.description()));
    }
    text.push(')');
    text
}

/// `class 33..64 B`, `site 17`, `allocation not sampled`.
pub fn group(label: &GroupLabel) -> String {
    match label.grouping {
        Grouping::Class => format!("class {}", label.label),
        Grouping::Site => label.label.clone(),
    }
}

/// Prints a path from a root, one step per line, indented by `indent`.
pub fn path(out: &mut dyn Write, path: &RootPath, indent: &str) -> io::Result<()> {
    writeln!(
        out,
        "{indent}root {} ({}) [word +{:#x} at {:#x}] ->",
        path.root.name, path.root.kind, path.root.offset, path.root.word_address
    )?;
    for step in &path.steps {
        let field = match step.field_offset {
            Some(offset) => format!("  [word +{offset:#x}] ->"),
            None => String::new(),
        };
        writeln!(out, "{indent}  {}{field}", object(&step.object))?;
    }
    Ok(())
}

/// Prints stack frames, at most [`MAX_FRAMES`].
pub fn frames(out: &mut dyn Write, frames: &[String], indent: &str) -> io::Result<()> {
    frames_up_to(out, frames, indent, MAX_FRAMES)
}

/// Prints stack frames, at most `limit`.
pub fn frames_up_to(
    out: &mut dyn Write,
    frames: &[String],
    indent: &str,
    limit: usize,
) -> io::Result<()> {
    for frame in frames.iter().take(limit) {
        writeln!(out, "{indent}{frame}")?;
    }
    if frames.len() > limit {
        writeln!(
            out,
            "{indent}... {} more",
            plural((frames.len() - limit) as u64, "frame", "frames")
        )?;
    }
    Ok(())
}

/// Wraps `text` at `width` columns, each line starting with `indent`.
pub fn wrap(out: &mut dyn Write, text: &str, indent: &str, width: usize) -> io::Result<()> {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
            writeln!(out, "{indent}{line}")?;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        writeln!(out, "{indent}{line}")?;
    }
    Ok(())
}

/// Writes a subcommand's report to stdout: as JSON with `--json`, else as
/// text with `print`.
pub fn emit<T: serde::Serialize>(
    report: &T,
    as_json: bool,
    print: impl FnOnce(&T, &mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    if as_json {
        json(&mut out, report)?;
    } else {
        print(report, &mut out)?;
    }
    out.flush()
}

/// Writes `value` as pretty JSON and a newline.
fn json<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    writeln!(out)
}
