//! What a dump cannot answer, and how to build the program so that it can:
//! one [`Caveat`] per gap, which every report prints (text and JSON).
//!
//! - [`CaveatKind::NoFramePointers`]: the program was built without frame
//!   pointers, so allocation stacks stop after a frame or two (no caller
//!   to name) and thread stacks have no frame chain (no frame to name a
//!   stack root by). Told from the stacks themselves: most raw allocation
//!   stacks end within [`SHALLOW`] return addresses, or no thread stack
//!   has a frame-pointer chain.
//! - [`CaveatKind::NoLineTables`]: the executable has symbols but no debug
//!   info, so frames have no files, lines or inlined calls, and types are
//!   inferred less often.
//! - [`CaveatKind::NoSymbols`]: no usable executable (stripped, moved, or
//!   another build), so frames are module offsets.

use heapdump_reader::{ContentsMode, Dump, RootKind};
use heapdump_symbols::{Source, StackRootFrames, Symbolizer};
use serde::Serialize;

/// Raw allocation stacks with at most this many return addresses are cut
/// short: the writer leaves out its own first frame, and a stack through
/// `__rust_alloc` into the program and up to `main` has at least five.
pub const SHALLOW: usize = 2;

/// A kind of gap in what a dump can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaveatKind {
    /// Stacks empty or cut short: built without frame pointers.
    NoFramePointers,
    /// Frames without files and lines: no line tables.
    NoLineTables,
    /// Frames named by module offset: no usable executable.
    NoSymbols,
}

/// One thing the dump cannot answer, why, and the fix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Caveat {
    /// What kind of gap.
    pub kind: CaveatKind,
    /// What is missing and why, in words for the user.
    pub message: String,
    /// How to build or run so that the next dump has it.
    pub fix: String,
}

impl std::fmt::Display for Caveat {
    /// `message; fix`, one line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; fix: {}", self.message, self.fix)
    }
}

/// The caveats of `dump`: `raw_stack_depths` are the numbers of return
/// addresses of its allocation stacks that came raw (a frame-pointer walk
/// by the writer, empty when the walk found no frame; none for formats
/// whose stacks come symbolised),
/// `frames` the thread stacks' chains, `symbolizer` what named the frames
/// (if anything did).
pub fn caveats(
    dump: &Dump<'_>,
    raw_stack_depths: &[usize],
    frames: &StackRootFrames,
    symbolizer: Option<&Symbolizer>,
) -> Vec<Caveat> {
    let mut out = Vec::new();
    let threads = dump
        .roots
        .iter()
        .filter(|root| matches!(root.kind, RootKind::ThreadStack { .. }))
        .count();
    let shallow = raw_stack_depths
        .iter()
        .filter(|&&depth| depth <= SHALLOW)
        .count();
    // Most stacks shallow (a few legitimately are: a thread's first
    // allocation in its start routine); or x86-64 thread stacks, whole in
    // the dump, without one frame chain among them.
    let stacks_cut = !raw_stack_depths.is_empty() && shallow * 2 > raw_stack_depths.len();
    // A redacted dump keeps only the words that point into objects: frame
    // records (stack addresses, return addresses) are zeroed.
    let chains_missing = threads > 0
        && frames.is_empty()
        && walks_chains(dump)
        && dump.info.contents_mode == ContentsMode::Full;
    if stacks_cut || chains_missing {
        let mut what = Vec::new();
        if stacks_cut {
            what.push(format!(
                "{} of {} allocation stacks are empty or end within {SHALLOW} frames (no caller \
                 to name)",
                shallow,
                raw_stack_depths.len()
            ));
        }
        if chains_missing {
            what.push(format!(
                "none of the {threads} thread stacks has a frame chain (stack roots cannot be \
                 named by frame)"
            ));
        }
        out.push(Caveat {
            kind: CaveatKind::NoFramePointers,
            message: format!(
                "the program was built without frame pointers: {}",
                what.join("; ")
            ),
            fix:
                "rebuild with RUSTFLAGS=\"-C force-frame-pointers=yes\" (or `rustflags = [\"-C\", \
                  \"force-frame-pointers=yes\"]` under [build] in .cargo/config.toml)"
                    .to_owned(),
        });
    }
    let main = symbolizer.and_then(|symbolizer| {
        let source = symbolizer.sources().iter().find(|source| source.main)?;
        Some((source, symbolizer.main_binary()))
    });
    if let Some((source, binary)) = main {
        let has_symbols =
            binary.is_some_and(|binary| binary.symbols().iter().any(|symbol| symbol.is_code));
        match &source.source {
            Source::Binary {
                debug_info: false,
                path,
            } if has_symbols => out.push(Caveat {
                kind: CaveatKind::NoLineTables,
                message: format!(
                    "frames have no files or lines and inlined calls are not shown: {path} has \
                     no line tables"
                ),
                fix: "build with `debug = \"line-tables-only\"` under [profile.release] in \
                      Cargo.toml (and do not strip it), or give the unstripped executable with \
                      --bin"
                    .to_owned(),
            }),
            Source::Binary {
                debug_info: false,
                path,
            } => out.push(Caveat {
                kind: CaveatKind::NoSymbols,
                message: format!(
                    "frames are named by offset only: {path} is stripped (no symbols, no line \
                     tables)"
                ),
                fix: "give the unstripped executable with --bin, built with `debug = \
                      \"line-tables-only\"` under [profile.release] in Cargo.toml"
                    .to_owned(),
            }),
            Source::None(why) => out.push(Caveat {
                kind: CaveatKind::NoSymbols,
                message: format!(
                    "frames of {} are named by offset only: {why}",
                    source.module
                ),
                fix: "give the dumped executable with --bin (the same build, not stripped)"
                    .to_owned(),
            }),
            Source::Binary { .. } => {}
        }
    }
    out
}

/// Whether the dump's thread stacks are where [`StackRootFrames`] looks
/// for frame chains (x86-64, 64-bit words), so that finding none means
/// something.
fn walks_chains(dump: &Dump<'_>) -> bool {
    matches!(dump.info.arch.as_str(), "x86_64" | "x86-64" | "amd64") && dump.info.pointer_size == 8
}
