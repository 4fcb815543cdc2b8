//! Running the analyses with a spinner on stderr when it is a terminal;
//! shared by the subcommands that need the dominator tree.

use std::io::IsTerminal;
use std::time::Duration;

use heapdump_analysis::{analyze_with_progress, Analysis};
use heapdump_reader::HeapGraph;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner on stderr showing `message`, hidden unless stderr is a
/// terminal.
pub fn spinner(message: &'static str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    let style = ProgressStyle::with_template("{spinner} {msg:>14} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Analyses `graph`, showing each step.
pub fn analysis(graph: &HeapGraph<'_>) -> Analysis {
    let bar = spinner("analysing");
    let analysis = analyze_with_progress(graph, &mut |step| bar.set_message(step.description()));
    bar.finish_and_clear();
    analysis
}

/// Runs `report` with a spinner showing `message`.
pub fn report<T>(message: &'static str, report: impl FnOnce() -> T) -> T {
    let bar = spinner(message);
    let result = report();
    bar.finish_and_clear();
    result
}
