//! End-to-end timing of the reader and the analyses on synthetic dumps:
//! parse, graph build, dominators, retained sizes, reports, peak RSS.
//!
//! ```text
//! cargo bench -p heapdump-analysis --bench analysis              # 1M and 10M objects
//! cargo bench -p heapdump-analysis --bench analysis -- 1000000   # just 1M
//! ```
//!
//! Dumps are generated once into `target/bench-dumps/` (see
//! `support/synthetic.rs`) and reused. Each size runs in a child process of
//! its own, so that its peak RSS (`VmHWM`) is its own; the peak includes the
//! pages of the memory-mapped dump that were read.

#[path = "support/synthetic.rs"]
mod synthetic;

use std::process::Command;
use std::time::Instant;

use heapdump_analysis::leaks::{leaks, LeakOptions};
use heapdump_analysis::retained::{retained, RetainedOptions};
use heapdump_analysis::top::{top, TopOptions};
use heapdump_analysis::{analyze_with_progress, Step};
use heapdump_reader::{parse, DumpFile, HeapGraph};

/// A field of `/proc/self/status` in bytes (`VmHWM`: peak resident set
/// size; `VmRSS`, `RssAnon`, `RssFile`: now).
fn status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Peak resident set size of this process so far (`VmHWM`).
fn peak_rss() -> u64 {
    status("VmHWM")
}

/// Resets `VmHWM` to the current RSS (Linux: `5` to `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

fn seconds(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// Runs one size in this process and prints one line per stage.
fn run(objects: u64) {
    let path = synthetic::cached(objects);
    let total = Instant::now();
    let file = DumpFile::open(&path).unwrap();
    let start = Instant::now();
    let dump = parse(file.bytes(), &mut |_, _| {}).unwrap();
    // As `heapdump` does (crates/heapdump-cli/src/load.rs): the file's pages
    // are given back after parsing, after each wave of the graph build and
    // after it.
    file.release_pages();
    let parse_time = seconds(start);
    let start = Instant::now();
    let graph = HeapGraph::build(dump, &mut |_, _| file.release_pages());
    file.release_pages();
    let graph_time = seconds(start);
    let after_graph_peak = peak_rss();
    let (graph_rss, graph_anon, graph_file) =
        (status("VmRSS"), status("RssAnon"), status("RssFile"));
    reset_peak_rss();

    let mut marks: Vec<(Step, Instant)> = Vec::new();
    let start = Instant::now();
    let analysis = analyze_with_progress(&graph, &mut |step| marks.push((step, Instant::now())));
    let end = Instant::now();
    let stage = |step: Step| {
        let index = marks.iter().position(|(s, _)| *s == step).unwrap();
        let next = marks.get(index + 1).map_or(end, |(_, at)| *at);
        next.duration_since(marks[index].1).as_secs_f64()
    };
    let analysis_time = seconds(start);

    let start = Instant::now();
    let top_report = top(&graph, &analysis, &TopOptions::default());
    let top_time = seconds(start);
    let start = Instant::now();
    let retained_report = retained(&graph, &analysis, &RetainedOptions::default());
    let retained_time = seconds(start);
    let start = Instant::now();
    let leak_report = leaks(&graph, &analysis, &LeakOptions::default());
    let leaks_time = seconds(start);
    let total_time = seconds(total);

    println!(
        "{objects} objects, {} references, {} reachable, dominator fallback: {}",
        graph.reference_count(),
        analysis.reachable_objects(),
        analysis.fell_back()
    );
    println!("  parse                 {parse_time:7.2} s");
    println!(
        "  graph build           {graph_time:7.2} s   (peak RSS so far {} MiB; now {} MiB: {} anonymous, {} file pages)",
        mib(after_graph_peak),
        mib(graph_rss),
        mib(graph_anon),
        mib(graph_file)
    );
    println!(
        "  dominators            {:7.2} s   (DFS, predecessors, semi-NCA)",
        stage(Step::Dominators)
    );
    println!(
        "  retained sizes        {:7.2} s   (sweep, children CSR)",
        stage(Step::RetainedSizes)
    );
    println!("  unreachable           {:7.2} s", stage(Step::Unreachable));
    println!("  analyze() total       {analysis_time:7.2} s");
    println!(
        "  report top            {top_time:7.2} s   ({} classes)",
        top_report.class_count
    );
    println!(
        "  report retained       {retained_time:7.2} s   ({} top-level)",
        retained_report.top_level_objects
    );
    println!(
        "  report leaks          {leaks_time:7.2} s   ({} suspects)",
        leak_report.suspects.len()
    );
    println!("  end to end            {total_time:7.2} s");
    let analysis_peak = peak_rss();
    println!(
        "  peak RSS              {:7} MiB (dump file {} MiB; analyses and reports peak at {} MiB, {} MiB over the graph)",
        mib(after_graph_peak.max(analysis_peak)),
        mib(file.bytes().len() as u64),
        mib(analysis_peak),
        mib(analysis_peak.saturating_sub(graph_rss))
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    if let Some(objects) = args.first().and_then(|arg| arg.parse::<u64>().ok()) {
        if std::env::var_os("HEAPDUMP_BENCH_CHILD").is_some() {
            run(objects);
            return;
        }
        // Written here, so that the child's peak RSS is its own.
        synthetic::cached(objects);
        let status = Command::new(std::env::current_exe().unwrap())
            .arg(objects.to_string())
            .env("HEAPDUMP_BENCH_CHILD", "1")
            .status()
            .unwrap();
        assert!(status.success());
        return;
    }
    for objects in [1_000_000u64, 10_000_000] {
        // Written here, so that the child's peak RSS is its own.
        synthetic::cached(objects);
        let status = Command::new(std::env::current_exe().unwrap())
            .arg(objects.to_string())
            .env("HEAPDUMP_BENCH_CHILD", "1")
            .status()
            .unwrap();
        assert!(status.success());
    }
}
