//! Opening a dump with the library's pipeline ([`heapdump_inspect::Heap`]),
//! with progress bars and spinners on stderr when it is a terminal. Shared
//! by every subcommand.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use heapdump_inspect::{Heap, Options, Progress, Step, Unit};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Result;

/// How a subcommand names frames and types from binaries (flattened into
/// its arguments).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SymbolArgs {
    /// The dumped program's executable: names Go globals (`main.cache`
    /// instead of `bss`), and Rust frames and types when the executable the
    /// dump records has moved or been rebuilt (its build-id is checked).
    #[arg(long = "bin", value_name = "BIN")]
    pub binary: Option<PathBuf>,
    /// Do not name frames and types from binaries: stack frames stay raw
    /// addresses, objects without a type in the dump keep a size class
    /// (`--bin` still names global roots).
    #[arg(long)]
    pub no_symbols: bool,
}

/// The dump a command reads and the options every such command takes: the
/// dumped program's executable right after the dump (as Go's tools take
/// it: `dumptodot heapdump bin`) or as `--bin`, and `--no-symbols`.
#[derive(Clone, Debug, clap::Args)]
pub struct DumpArgs {
    /// The heap dump file: heapdump-rs, Go's `debug.WriteHeapDump`, or
    /// Java HPROF.
    pub dump: PathBuf,
    /// The dumped program's executable (the same as `--bin BIN`).
    #[arg(value_name = "BIN")]
    pub executable: Option<PathBuf>,
    /// Naming frames and types from binaries.
    #[command(flatten)]
    pub symbols: SymbolArgs,
}

impl DumpArgs {
    /// The naming options, with the positional binary as `--bin`; both
    /// given and different is an error.
    pub fn symbols(&self) -> Result<SymbolArgs> {
        symbols_with(self.executable.as_deref(), &self.symbols)
    }

    /// Opens the dump (see [`open`]).
    pub fn open(&self, analyze: bool) -> Result<Heap> {
        open(&self.dump, &self.symbols()?, analyze)
    }
}

/// `symbols` with `binary` (given positionally) as its `--bin`.
pub fn symbols_with(binary: Option<&Path>, symbols: &SymbolArgs) -> Result<SymbolArgs> {
    match (binary, &symbols.binary) {
        (Some(positional), Some(flag)) if positional != flag.as_path() => Err(format!(
            "two executables given: {} and --bin {}",
            positional.display(),
            flag.display()
        )
        .into()),
        (Some(positional), _) => Ok(SymbolArgs {
            binary: Some(positional.to_path_buf()),
            ..symbols.clone()
        }),
        (None, _) => Ok(symbols.clone()),
    }
}

/// Opens the dump at `path` with the library's pipeline, naming it as
/// `symbols` says; with the analyses (dominators, retained sizes) if
/// `analyze`.
pub fn open(path: &Path, symbols: &SymbolArgs, analyze: bool) -> Result<Heap> {
    let options = Options {
        binary: symbols.binary.clone(),
        symbols: !symbols.no_symbols,
        analyze,
    };
    let mut bars = Bars::default();
    let heap = Heap::open(path, &options, &mut bars);
    bars.clear();
    Ok(heap?)
}

/// The CLI's [`Progress`]: a bar for each step that counts, a spinner for
/// the analyses, notes as `heapdump: …` lines; with `HEAPDUMP_TIMINGS` set
/// in the environment, each step's wall time as a `heapdump: time …` line.
#[derive(Default)]
struct Bars {
    bar: Option<ProgressBar>,
    /// The step running and when it started, when timings are asked for.
    timing: Option<(Step, Instant)>,
}

impl Bars {
    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some((step, started)) = self.timing.take() {
            print_time(step.description(), started);
        }
    }
}

impl Progress for Bars {
    fn start(&mut self, step: Step) {
        self.clear();
        if timings() {
            self.timing = Some((step, Instant::now()));
        }
        self.bar = Some(match step.unit() {
            Some(Unit::Bytes) => progress_bar(step.description(), 0),
            Some(unit) => {
                let bar = progress_bar(step.description(), 0);
                let template = format!(
                    "{{msg:>14}} [{{bar:40}}] {{pos}}/{{len}} {} ({{eta}})",
                    unit.name()
                );
                bar.set_style(
                    ProgressStyle::with_template(&template)
                        .map(|style| style.progress_chars("=> "))
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            }
            None => spinner(step.description()),
        });
    }

    fn advance(&mut self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    fn finish(&mut self) {
        self.clear();
    }

    fn note(&mut self, note: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("heapdump: {note}")),
            None => eprintln!("heapdump: {note}"),
        }
    }
}

/// Refuses to write a file over `out` when it holds a heap dump in a known
/// format (a `DUMP OUT` given the wrong way round would lose the dump),
/// unless it is a dump in the very format being written (`output_header`:
/// the output's first bytes; `heapdump hprof` run again over its own
/// output). `what` names the output in the message.
pub fn refuse_to_overwrite_a_dump(
    out: &Path,
    output_header: Option<&[u8]>,
    what: &str,
) -> Result<()> {
    let Some(format) = heapdump_inspect::reader::dump_format_at(out) else {
        return Ok(());
    };
    let written = output_header.and_then(heapdump_inspect::reader::formats::detect);
    if written.is_some_and(|written| written.name() == format.name()) {
        return Ok(());
    }
    Err(format!(
        "refusing to write {what} over {}: it looks like a heap dump ({}); check the order of the arguments",
        out.display(),
        format.name()
    )
    .into())
}

/// Where bars are drawn: stderr if it is a terminal, nowhere otherwise.
fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A byte-counting progress bar on stderr, hidden unless stderr is a
/// terminal.
pub fn progress_bar(message: &'static str, total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), draw_target());
    let style = ProgressStyle::with_template(
        "{msg:>14} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}

/// A spinner on stderr showing `message`, hidden unless stderr is a
/// terminal.
pub fn spinner(message: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, draw_target());
    let style = ProgressStyle::with_template("{spinner} {msg:>14} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Runs `report` with a spinner showing `message` (and its time, with
/// `HEAPDUMP_TIMINGS` set).
pub fn report<T>(message: &'static str, report: impl FnOnce() -> T) -> T {
    let bar = spinner(message);
    let started = Instant::now();
    let result = report();
    bar.finish_and_clear();
    if timings() {
        print_time(message, started);
    }
    result
}

/// Whether `HEAPDUMP_TIMINGS` asks for each step's wall time on stderr.
fn timings() -> bool {
    std::env::var_os("HEAPDUMP_TIMINGS").is_some()
}

/// Prints the wall time since `started` of the step `what` on stderr.
fn print_time(what: &str, started: Instant) {
    eprintln!(
        "heapdump: time {:>8.3} s  {what}",
        started.elapsed().as_secs_f64()
    );
}
