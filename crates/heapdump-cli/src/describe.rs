//! How the analysis subcommands print objects, paths and sites.

use std::io::{self, Write};

use heapdump_inspect::analysis::describe::ObjectRef;
use heapdump_inspect::analysis::paths::{OmittedSteps, PathStep, RootPath};
use heapdump_inspect::analysis::{GroupLabel, Grouping, Reachability, SiteFrames};
use heapdump_inspect::Caveat;

use crate::human::{bytes, fit_line, plural};

/// Most frames of a stack printed (JSON has all).
pub const MAX_FRAMES: usize = 8;

/// `0x55d0c4a3b010 (1.50 KiB, 1025..2048-byte objects, site 3f2a9c1e)`; a
/// string's text after its class (`java.lang.String "user-7"`).
pub fn object(object: &ObjectRef) -> String {
    let mut text = format!(
        "{:#x} ({}, {}",
        object.address,
        bytes(object.size),
        object.class
    );
    if let Some(value) = &object.text {
        text.push_str(&format!(" {value:?}"));
    }
    match (object.site_id, object.site) {
        (Some(site), _) => text.push_str(&format!(", site {}", site.short())),
        (None, Some(stack)) => text.push_str(&format!(", stack {stack}")),
        (None, None) => text.push_str(", site not sampled"),
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

/// Prints a path from a root, one step per line, indented by `indent`;
/// the objects a long path leaves out, as one line where they were.
pub fn path(out: &mut dyn Write, path: &RootPath, indent: &str) -> io::Result<()> {
    writeln!(
        out,
        "{indent}root {} ({}) [word +{:#x} at {:#x}] ->",
        path.root.name, path.root.kind, path.root.offset, path.root.word_address
    )?;
    let mut text = String::new();
    for (index, step) in path.steps.iter().enumerate() {
        if let Some(omitted) = path.omitted.as_ref().filter(|omitted| omitted.at == index) {
            text.push_str(&format!("{indent}  {} ->\n", omitted_line(omitted)));
        }
        path_step(&mut text, step, indent);
    }
    out.write_all(text.as_bytes())
}

/// `... 1,999,968 more objects (1,999,968 BigHeap$Node)`: the objects a
/// long path or chain of dominators leaves out.
pub fn omitted_line(omitted: &OmittedSteps) -> String {
    format!("... {}", omitted.description())
}

/// Appends one step's line of a path to `text`.
fn path_step(text: &mut String, step: &PathStep, indent: &str) {
    use std::fmt::Write as _;
    text.push_str(indent);
    text.push_str("  ");
    text.push_str(&object(&step.object));
    // Writing to a String cannot fail.
    let _ = match (&step.field, step.field_offset) {
        (Some(name), Some(offset)) => write!(text, "  [{name}, word +{offset:#x}] ->"),
        (None, Some(offset)) => write!(text, "  [word +{offset:#x}] ->"),
        _ => Ok(()),
    };
    text.push('\n');
}

/// Prints stack frames, at most [`MAX_FRAMES`].
pub fn frames(out: &mut dyn Write, frames: &SiteFrames, indent: &str) -> io::Result<()> {
    frames_up_to(out, frames, indent, MAX_FRAMES)
}

/// Prints stack frames, at most `limit`, and not the runtime's frames
/// that start `main` or a thread ([`SiteFrames::program`]).
pub fn frames_up_to(
    out: &mut dyn Write,
    frames: &SiteFrames,
    indent: &str,
    limit: usize,
) -> io::Result<()> {
    let program = frames.program();
    for frame in program.iter().take(limit) {
        writeln!(
            out,
            "{}",
            fit_line(&format!("{indent}{}", short_paths(frame)))
        )?;
    }
    let more = program.len().saturating_sub(limit);
    let runtime = frames.labels.len() - program.len();
    match (more, runtime) {
        (0, 0) => {}
        (more, 0) => writeln!(
            out,
            "{indent}... {} more",
            plural(more as u64, "frame", "frames")
        )?,
        (0, runtime) => writeln!(
            out,
            "{indent}... {} of the runtime starting the thread",
            plural(runtime as u64, "frame", "frames")
        )?,
        (more, runtime) => writeln!(
            out,
            "{indent}... {} more, and {runtime} of the runtime starting the thread",
            plural(more as u64, "frame", "frames")
        )?,
    }
    Ok(())
}

/// A frame label with its source path shortened for reading: the Rust
/// toolchain's `/rustc/<commit>/library/` and Cargo's registry checkouts
/// (`…/.cargo/registry/src/<index>/`) become `…/`, and paths under the
/// current directory become relative. JSON keeps the paths whole.
pub fn short_paths(label: &str) -> String {
    let Some(open) = label.rfind(" (") else {
        return label.to_owned();
    };
    let (function, location) = label.split_at(open + 2);
    let mut path = location;
    // `/rustc/<40 hex digits>/` and `…/registry/src/<index>-<hash>/`.
    if let Some(rest) = path.strip_prefix("/rustc/") {
        if let Some(slash) = rest.find('/') {
            return format!("{function}…{}", &rest[slash..]);
        }
    }
    if let Some(at) = path.find("/registry/src/") {
        let rest = &path[at + "/registry/src/".len()..];
        if let Some(slash) = rest.find('/') {
            return format!("{function}…{}", &rest[slash..]);
        }
    }
    if let Ok(here) = std::env::current_dir() {
        let here = format!("{}/", here.display());
        if let Some(rest) = path.strip_prefix(here.as_str()) {
            path = rest;
        }
    }
    format!("{function}{path}")
}

/// Wraps `text` at `width` columns, each line starting with `indent`.
/// An [`output_width`](crate::human::output_width) narrower than `width`
/// wraps at that.
pub fn wrap(out: &mut dyn Write, text: &str, indent: &str, width: usize) -> io::Result<()> {
    let width = crate::human::output_width().map_or(width, |columns| columns.min(width));
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

/// Writes a subcommand's report to stdout: as JSON with `--json` (the
/// report's fields and `caveats`, always there, maybe empty), else as text
/// with `print`, after one `Caveat:` line per caveat: what the dump cannot
/// answer and the fix ([`Heap::caveats`](heapdump_inspect::Heap::caveats)).
pub fn emit<T: serde::Serialize>(
    report: &T,
    caveats: &[Caveat],
    as_json: bool,
    print: impl FnOnce(&T, &mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    /// A report with the caveats of its dumps beside its own fields.
    #[derive(serde::Serialize)]
    struct WithCaveats<'a, T> {
        #[serde(flatten)]
        report: &'a T,
        caveats: &'a [Caveat],
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    if as_json {
        json(&mut out, &WithCaveats { report, caveats })?;
    } else {
        for caveat in caveats {
            writeln!(out, "Caveat: {caveat}")?;
        }
        if !caveats.is_empty() {
            writeln!(out)?;
        }
        print(report, &mut out)?;
    }
    out.flush()
}

/// Prints what the dump cannot answer on stderr, one line each, for
/// commands whose output is a file rather than a report (`hprof`, `dot`,
/// `pprof`).
pub fn caveats_to_stderr(caveats: &[Caveat]) -> io::Result<()> {
    let mut err = io::stderr().lock();
    for caveat in caveats {
        writeln!(err, "heapdump: caveat: {caveat}")?;
    }
    Ok(())
}

/// The caveats of two dumps (`diff`), each once.
pub fn caveats_of_both(old: &[Caveat], new: &[Caveat]) -> Vec<Caveat> {
    let mut all: Vec<Caveat> = old.to_vec();
    for caveat in new {
        if !all.iter().any(|known| known.message == caveat.message) {
            all.push(caveat.clone());
        }
    }
    all
}

/// Writes `value` as pretty JSON and a newline.
fn json<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A site's frames as the symboliser names them: the program's frames,
    /// then std's start of `main` (five frames, `SiteFrames::runtime`).
    fn main_thread_stack() -> SiteFrames {
        SiteFrames {
            labels: [
                "leaky_service::Service::handle (src/lib.rs:96)",
                "leaky_service::main (src/main.rs:108)",
                "core::ops::function::FnOnce::call_once (core/src/ops/function.rs:250)",
                "std::sys::backtrace::__rust_begin_short_backtrace<fn()> (std/src/sys/backtrace.rs:166)",
                "std::rt::lang_start::{{closure}} (std/src/rt.rs:206)",
                "std::rt::lang_start_internal (std/src/rt.rs:171)",
                "main",
            ]
            .map(String::from)
            .to_vec(),
            runtime: 5,
        }
    }

    fn printed(frames: &SiteFrames, limit: usize) -> String {
        let mut out = Vec::new();
        frames_up_to(&mut out, frames, "", limit).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_runtime_frames_that_start_main_are_not_printed() {
        let stack = main_thread_stack();
        assert_eq!(stack.program(), &stack.labels[..2]);
        assert_eq!(
            printed(&stack, 16),
            "leaky_service::Service::handle (src/lib.rs:96)\n\
             leaky_service::main (src/main.rs:108)\n\
             ... 5 frames of the runtime starting the thread\n"
        );
        assert_eq!(
            printed(&stack, 1),
            "leaky_service::Service::handle (src/lib.rs:96)\n\
             ... 1 frame more, and 5 of the runtime starting the thread\n"
        );
    }

    #[test]
    fn stacks_without_runtime_frames_are_printed_whole() {
        let go = SiteFrames {
            labels: [
                "runtime.mallocgc (runtime/malloc.go:1143)",
                "main.main (main.go:159)",
            ]
            .map(String::from)
            .to_vec(),
            runtime: 0,
        };
        assert_eq!(go.program(), &go.labels[..]);
        assert_eq!(
            printed(&go, 1),
            "runtime.mallocgc (runtime/malloc.go:1143)\n... 1 frame more\n"
        );
    }
}
