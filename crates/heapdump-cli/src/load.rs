//! Opening, parsing and graph building, with progress bars on stderr when it
//! is a terminal. Shared by every subcommand that reads a dump.

use std::io::IsTerminal;
use std::path::Path;

use heapdump_reader::{parse, DumpFile, HeapGraph};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Result;

/// Memory-maps the dump at `path`.
pub fn open(path: &Path) -> Result<DumpFile> {
    Ok(DumpFile::open(path)?)
}

/// Parses `file` and builds its reference graph.
pub fn graph(file: &DumpFile) -> Result<HeapGraph<'_>> {
    let bar = progress_bar("parsing", file.bytes().len() as u64);
    let dump = parse(file.bytes(), &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let dump = dump?;

    let bar = progress_bar("building graph", 0);
    let graph = HeapGraph::build(dump, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    Ok(graph)
}

/// A byte-counting progress bar on stderr, hidden unless stderr is a
/// terminal.
fn progress_bar(message: &'static str, total: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    let style = ProgressStyle::with_template(
        "{msg:>14} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}
