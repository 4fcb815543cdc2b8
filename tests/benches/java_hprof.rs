//! heapdump on a big JDK heap dump, side by side with VisualVM's heap
//! library and hprof-slurp; prints the figures and the ratios
//! (docs/PERFORMANCE.md, "Java HPROF dumps").
//!
//! `tests/java/BigHeap.java` builds a heap of about N objects (default
//! 3,000,000; `cargo bench -p heapdump-tests --bench java_hprof -- N`) and
//! dumps it with `HotSpotDiagnosticMXBean.dumpHeap` (live objects) to
//! `target/bench-dumps/java-big-N.hprof`, reused by later runs. Then, each
//! in its own process, on the warm file:
//!
//! - heapdump's parse alone (the reader's HPROF decoder, best of 3): GB/s;
//! - `heapdump leaks` end to end (open, parse, graph, dominators, retained
//!   sizes, the leaks report: what the CLI runs): wall time, peak RSS;
//! - VisualVM's heap library (`tests/java/VisualVmRetained.java`): open,
//!   histogram, retained sizes (`getBiggestObjectsByRetainedSize`, its root
//!   search and dominators over the whole heap): wall time, peak RSS
//!   (`/usr/bin/time`), its cache directory removed before and after;
//!   the two take turns, 3 runs each, and each figure is the median of its
//!   runs (the highest peak RSS): a noisy machine moves one run by 10%;
//! - hprof-slurp (its class histogram): wall time, peak RSS.
//!
//! Needs a JDK, Debian's `visualvm` and `hprof-slurp` on the PATH; a
//! missing tool's row is skipped with a note, or fails the bench when
//! `HEAPDUMP_REQUIRE_ORACLES` is set (as in CI).
//!
//! With `HEAPDUMP_BENCH_MAX_RATIO=R` (CI sets it), the bench fails when
//! `heapdump leaks` takes more than R times VisualVM's retained-size time,
//! or more than R times its peak RSS: not the targets (figures on
//! a small dump and a shared runner are noisy), a guard against a
//! regression by a large factor.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use heapdump_analysis::leaks::{leaks, LeakOptions};
use heapdump_inspect::{Heap, NoProgress, Options};

const DEFAULT_OBJECTS: u64 = 3_000_000;
const VISUALVM_JAR: &str =
    "/usr/share/visualvm/visualvm/modules/org-graalvm-visualvm-lib-jfluid-heap.jar";

/// Peak resident set size of this process (`VmHWM`), bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// What `/usr/bin/time` saw of one run.
struct Timed {
    wall: f64,
    /// Peak RSS, bytes.
    rss: u64,
    /// CPU seconds in the kernel: on this VM mostly page faults, which
    /// cost 1.7-6 µs each (the hypervisor backs each fresh page).
    sys: f64,
    stdout: String,
}

/// Runs `command` under `/usr/bin/time`; `None` (with its stderr) if it
/// fails.
fn timed(command: &mut Command, label: &str) -> Option<Timed> {
    let times = std::env::temp_dir().join(format!("java-hprof-bench-{}.time", std::process::id()));
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|arg| arg.to_owned()).collect();
    let output = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M %S")
        .arg("-o")
        .arg(&times)
        .arg(program)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "{label} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let text = std::fs::read_to_string(&times).ok()?;
    let _ = std::fs::remove_file(&times);
    let mut fields = text.split_whitespace();
    let wall: f64 = fields.next()?.parse().ok()?;
    let kb: u64 = fields.next()?.parse().ok()?;
    let sys: f64 = fields.next()?.parse().ok()?;
    Some(Timed {
        wall,
        rss: kb * 1024,
        sys,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    })
}

fn java_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("java")
}

/// Compiles `tests/java/SOURCE` into `classes`, with `classpath` if given.
fn javac(source: &str, classpath: Option<&str>, classes: &Path) {
    let mut command = Command::new("javac");
    if let Some(classpath) = classpath {
        command.arg("-cp").arg(classpath);
    }
    let status = command
        .arg("-d")
        .arg(classes)
        .arg(java_dir().join(source))
        .status()
        .expect("javac");
    assert!(status.success(), "javac {source}");
}

/// The dump of `objects` objects, written by the JDK on first use.
fn big_dump(objects: u64) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("bench-dumps");
    std::fs::create_dir_all(&dir).expect("bench-dumps directory");
    let dump = dir.join(format!("java-big-{objects}.hprof"));
    if dump.is_file() {
        return dump;
    }
    let classes = dir.join("java");
    javac("BigHeap.java", None, &classes);
    let partial = dump.with_extension("partial.hprof");
    let _ = std::fs::remove_file(&partial);
    let started = Instant::now();
    let status = Command::new("java")
        .arg("-Xmx4g")
        .arg("-cp")
        .arg(&classes)
        .arg("BigHeap")
        .arg(&partial)
        .arg(objects.to_string())
        .status()
        .expect("java BigHeap");
    assert!(status.success(), "java BigHeap");
    std::fs::rename(&partial, &dump).expect("rename the dump");
    eprintln!("wrote {} in {:.1?}", dump.display(), started.elapsed());
    dump
}

/// Child: the reader's parse alone, best of three; prints seconds.
fn child_parse(path: &Path) {
    let file = heapdump_reader::DumpFile::open(path).expect("open");
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {}).expect("parse");
        best = best.min(started.elapsed().as_secs_f64());
        std::hint::black_box(dump.objects.len());
    }
    println!("{best}");
}

/// Child: `heapdump leaks` end to end; prints seconds, peak RSS, objects,
/// references and the top suspect.
fn child_leaks(path: &Path) {
    let started = Instant::now();
    let heap = Heap::open(path, &Options::default(), &mut NoProgress).expect("open");
    let report = leaks(heap.graph(), heap.analysis(), &LeakOptions::default());
    let seconds = started.elapsed().as_secs_f64();
    let top = report
        .suspects
        .first()
        .map(|suspect| {
            format!(
                "{} retaining {}",
                suspect.object.class, suspect.retained_bytes
            )
        })
        .unwrap_or_default();
    println!(
        "{seconds} {} {} {} {top}",
        peak_rss(),
        heap.graph().object_count(),
        heap.graph().reference_count()
    );
}

/// A tool the bench compares against is missing: a note, or a failure
/// when `HEAPDUMP_REQUIRE_ORACLES` is set.
fn missing(what: &str) {
    if std::env::var_os("HEAPDUMP_REQUIRE_ORACLES").is_some() {
        eprintln!("FAILED: {what}, and HEAPDUMP_REQUIRE_ORACLES is set");
        std::process::exit(1);
    }
    println!("skipped: {what}");
}

/// The ratio `HEAPDUMP_BENCH_MAX_RATIO` allows, if set.
fn max_ratio() -> Option<f64> {
    let text = std::env::var("HEAPDUMP_BENCH_MAX_RATIO").ok()?;
    match text.trim().parse::<f64>() {
        Ok(ratio) if ratio > 0.0 => Some(ratio),
        _ => {
            eprintln!("FAILED: HEAPDUMP_BENCH_MAX_RATIO={text:?} is not a positive number");
            std::process::exit(2);
        }
    }
}

/// Runs of `heapdump leaks` and of VisualVM, taken in turns.
const ROUNDS: usize = 3;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// The middle of `values` (the upper one of an even count); 0 for none.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// `values`, comma-separated, to two decimals.
fn list(values: &[f64]) -> String {
    let shown: Vec<String> = values.iter().map(|value| format!("{value:.2}")).collect();
    shown.join(", ")
}

/// One `heapdump leaks` run (the child's `--leaks` line), or the median
/// of several.
struct LeaksRun {
    wall: f64,
    rss: u64,
    /// Kernel CPU seconds.
    sys: f64,
    /// Every run's wall time, in the order they ran.
    walls: String,
    objects: String,
    references: String,
    top: String,
}

fn run_leaks(me: &Path, dump: &Path) -> LeaksRun {
    let run = timed(Command::new(me).arg("--leaks").arg(dump), "heapdump leaks").expect("leaks");
    let fields: Vec<&str> = run.stdout.split_whitespace().collect();
    LeaksRun {
        wall: run.wall,
        sys: run.sys,
        rss: fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(0),
        walls: String::new(),
        objects: fields.get(2).unwrap_or(&"?").to_string(),
        references: fields.get(3).unwrap_or(&"?").to_string(),
        top: fields
            .get(4..)
            .map(|rest| rest.join(" "))
            .unwrap_or_default(),
    }
}

impl LeaksRun {
    /// The run of median wall time, with the highest peak RSS of all.
    fn median(mut runs: Vec<LeaksRun>) -> LeaksRun {
        let walls: Vec<f64> = runs.iter().map(|run| run.wall).collect();
        let rss = runs.iter().map(|run| run.rss).max().unwrap_or(0);
        runs.sort_by(|a, b| a.wall.total_cmp(&b.wall));
        let mut middle = runs.swap_remove(runs.len() / 2);
        middle.walls = list(&walls);
        middle.rss = rss;
        middle
    }
}

/// VisualVM's times: the whole run and its stages, in seconds.
struct VisualVmRun {
    wall: f64,
    rss: u64,
    /// Kernel CPU seconds.
    sys: f64,
    open: f64,
    histogram: f64,
    retained: f64,
    /// Every run's retained-size time, in the order they ran.
    retained_runs: String,
}

/// Compiles the VisualVM driver next to the dump; `None` (with a note,
/// or a failure in CI) without Debian's `visualvm`.
fn visualvm_classes(dump: &Path) -> Option<PathBuf> {
    if !Path::new(VISUALVM_JAR).is_file() {
        missing(&format!("VisualVM's heap library ({VISUALVM_JAR})"));
        return None;
    }
    let classes = dump.with_file_name("java");
    javac("VisualVmRetained.java", Some(VISUALVM_JAR), &classes);
    Some(classes)
}

/// One VisualVM run, its cache directory removed before and after.
fn run_visualvm(dump: &Path, classes: &Path) -> Option<VisualVmRun> {
    let cache = dump.with_extension("hprof.hwcache");
    let _ = std::fs::remove_dir_all(&cache);
    let result = timed(
        Command::new("java")
            .arg("-Xmx8g")
            .arg("-cp")
            .arg(format!("{VISUALVM_JAR}:{}", classes.display()))
            .arg("VisualVmRetained")
            .arg(dump),
        "VisualVM",
    );
    let _ = std::fs::remove_dir_all(&cache);
    let Timed {
        wall,
        rss,
        sys,
        stdout,
    } = result?;
    let stages: Vec<f64> = stdout
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    Some(VisualVmRun {
        wall,
        rss,
        sys,
        open: stages.first().copied().unwrap_or(0.0),
        histogram: stages.get(1).copied().unwrap_or(0.0),
        retained: stages.get(2).copied().unwrap_or(0.0),
        retained_runs: String::new(),
    })
}

impl VisualVmRun {
    /// Each figure's median over `runs` (the highest peak RSS); `None`
    /// for no runs.
    fn median(runs: Vec<VisualVmRun>) -> Option<VisualVmRun> {
        if runs.is_empty() {
            return None;
        }
        let figure = |of: fn(&VisualVmRun) -> f64| -> f64 {
            let mut values: Vec<f64> = runs.iter().map(of).collect();
            median(&mut values)
        };
        let retained: Vec<f64> = runs.iter().map(|run| run.retained).collect();
        Some(VisualVmRun {
            wall: figure(|run| run.wall),
            sys: figure(|run| run.sys),
            open: figure(|run| run.open),
            histogram: figure(|run| run.histogram),
            retained: figure(|run| run.retained),
            rss: runs.iter().map(|run| run.rss).max().unwrap_or(0),
            retained_runs: list(&retained),
        })
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, path] if mode == "--parse" => return child_parse(Path::new(path)),
        [mode, path] if mode == "--leaks" => return child_leaks(Path::new(path)),
        _ => {}
    }
    let objects = args
        .iter()
        .find_map(|arg| arg.parse::<u64>().ok())
        .unwrap_or(DEFAULT_OBJECTS);
    let max_ratio = max_ratio();
    if !runs("java", "-version") || !runs("javac", "-version") {
        missing("java or javac is missing");
        return;
    }
    let dump = big_dump(objects);
    let bytes = std::fs::metadata(&dump).expect("dump").len();
    // Warm the page cache.
    let _ = std::fs::read(&dump);
    let me = std::env::current_exe().expect("the bench binary");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{}: {:.1} MB, load {}",
        dump.display(),
        bytes as f64 / 1e6,
        load.split_whitespace().next().unwrap_or("?")
    );

    let parse = Command::new(&me)
        .arg("--parse")
        .arg(&dump)
        .output()
        .expect("parse child");
    let parse_s: f64 = String::from_utf8_lossy(&parse.stdout)
        .trim()
        .parse()
        .expect("parse seconds");
    println!(
        "heapdump parse:        {parse_s:7.2} s  {:.2} GB/s",
        bytes as f64 / parse_s / 1e9
    );

    // heapdump and VisualVM take turns, so that a busy spell of this
    // noisy machine slows both; each figure is the median of its runs.
    let visualvm = visualvm_classes(&dump);
    let mut leaks_runs = Vec::new();
    let mut visualvm_runs = Vec::new();
    for _ in 0..ROUNDS {
        leaks_runs.push(run_leaks(&me, &dump));
        if let Some(classes) = &visualvm {
            match run_visualvm(&dump, classes) {
                Some(run) => visualvm_runs.push(run),
                None => missing("VisualVM's heap library did not run"),
            }
        }
    }
    let leaks = LeaksRun::median(leaks_runs);
    println!(
        "heapdump leaks:        {:7.2} s  {:7.0} MiB  (median of {} s, in the order they ran; kernel CPU {:.2} s; {} objects, {} references; top suspect {})",
        leaks.wall,
        mib(leaks.rss),
        leaks.walls,
        leaks.sys,
        leaks.objects,
        leaks.references,
        leaks.top
    );
    if let Some(vm) = VisualVmRun::median(visualvm_runs) {
        println!(
            "VisualVM library:      {:7.2} s  {:7.0} MiB  (kernel CPU {:.2} s; open {:.2} s, histogram {:.2} s, retained sizes {:.2} s; medians; retained sizes run by run: {} s)",
            vm.wall,
            mib(vm.rss),
            vm.sys,
            vm.open,
            vm.histogram,
            vm.retained,
            vm.retained_runs
        );
        println!(
            "ratio heapdump leaks / VisualVM: time {:.3} (1/{:.0}) of its whole run, {:.3} (1/{:.0}) of its retained sizes alone; peak RSS {:.3}",
            leaks.wall / vm.wall,
            vm.wall / leaks.wall,
            leaks.wall / vm.retained.max(1e-9),
            vm.retained / leaks.wall,
            leaks.rss as f64 / vm.rss as f64
        );
        if let Some(max) = max_ratio {
            let time = leaks.wall / vm.retained.max(1e-9);
            let memory = leaks.rss as f64 / vm.rss.max(1) as f64;
            if time > max || memory > max {
                eprintln!(
                    "FAILED: heapdump leaks took {time:.3} of VisualVM's retained-size time \
                     and {memory:.3} of its peak RSS; HEAPDUMP_BENCH_MAX_RATIO allows {max}"
                );
                std::process::exit(1);
            }
        }
    }

    if runs("hprof-slurp", "--version") {
        let result = timed(
            Command::new("hprof-slurp")
                .arg(&dump)
                .arg("--top")
                .arg("10"),
            "hprof-slurp",
        );
        if let Some(Timed { wall, rss, .. }) = result {
            println!(
                "hprof-slurp histogram: {wall:7.2} s  {:7.0} MiB  {:.2} GB/s",
                mib(rss),
                bytes as f64 / wall / 1e9
            );
            println!(
                "ratio heapdump parse / hprof-slurp: time {:.3}; heapdump leaks / hprof-slurp: time {:.2}, peak RSS {:.2}",
                parse_s / wall,
                leaks.wall / wall,
                leaks.rss as f64 / rss as f64
            );
        } else {
            missing("hprof-slurp did not run");
        }
    } else {
        missing("hprof-slurp is not on the PATH");
    }
}
