//! Allocation overhead of the tracker: the same allocation-heavy workload
//! under the plain system allocator, under `heapdump::Tracker` with the
//! default settings (`sampled`: a short site for every allocation, one full
//! stack per 512 KiB) and with every allocation's stack recorded (`every`,
//! sample rate 1), and, for comparison, under heaptrack (`heaptrack`: the
//! system allocator, run by `/usr/bin/heaptrack`, which intercepts malloc
//! with `LD_PRELOAD` and records every allocation's stack; skipped with a
//! note when heaptrack is not installed).
//!
//! A process has one global allocator, so this binary's global allocator is a
//! switch that forwards to `System` or to a `Tracker` according to a mode set
//! once at startup. The parent process re-runs its own executable once per
//! mode and repetition (`HEAPDUMP_BENCH_MODE=system|sampled|every`), rounds
//! interleaved, and prints medians and ratios against `system` from the same
//! run. The figures are for reading, not asserting: nothing here fails on a
//! slow result.
//!
//! ```text
//! cargo bench -p heapdump --bench alloc_overhead            # full run
//! cargo bench -p heapdump --bench alloc_overhead -- --quick # a short one
//! ```
//!
//! Two workloads: `micro` (the target's: nothing but allocator calls, each
//! block replacing a random live one) and `service` (requests of a small
//! service: format a request line, split it, build a session with strings
//! and a body, checksum the body, keep it in a bounded cache; about 15
//! allocator calls among other work per request). The `service` figures say
//! what a program that does more than allocate pays; the targets are
//! checked on `micro`.
//!
//! One child by hand (for `perf record`, say): run the bench binary with
//! `HEAPDUMP_BENCH_MODE=every HEAPDUMP_BENCH_THREADS=2 HEAPDUMP_BENCH_OPS=4000000`
//! (and `HEAPDUMP_BENCH_WORKLOAD=service`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const MODE_SYSTEM: u8 = 0;
const MODE_SAMPLED: u8 = 1;
const MODE_EVERY: u8 = 2;
/// `heaptrack` runs the system allocator (under heaptrack's preload).
const MODES: [(&str, u8); 4] = [
    ("system", MODE_SYSTEM),
    ("sampled", MODE_SAMPLED),
    ("every", MODE_EVERY),
    ("heaptrack", MODE_SYSTEM),
];
/// Index of `heaptrack` in [`MODES`].
const HEAPTRACK: usize = 3;
/// Where heaptrack is installed (Debian's package).
const HEAPTRACK_PATH: &str = "/usr/bin/heaptrack";

/// Targets from issue 14, as ratios against `system`: the default settings
/// (a short site for every allocation) on `micro` by wall time and on
/// `service` by CPU time, and every stack on `micro`.
const TARGET_SAMPLED: f64 = 1.35;
const TARGET_SAMPLED_SERVICE_CPU: f64 = 1.10;
const TARGET_EVERY: f64 = 1.5;

const ENV_MODE: &str = "HEAPDUMP_BENCH_MODE";
const ENV_THREADS: &str = "HEAPDUMP_BENCH_THREADS";
const ENV_OPS: &str = "HEAPDUMP_BENCH_OPS";
const ENV_QUICK: &str = "HEAPDUMP_BENCH_QUICK";
const ENV_ROUNDS: &str = "HEAPDUMP_BENCH_ROUNDS";
const ENV_WORKLOAD: &str = "HEAPDUMP_BENCH_WORKLOAD";

/// Not yet read from the environment.
const MODE_UNSET: u8 = u8::MAX;

/// Read from `HEAPDUMP_BENCH_MODE` at the process's first allocation and
/// never changed: a block is always freed by the allocator that made it (the
/// tracker's blocks carry a header that `System` knows nothing of). Every
/// mode pays for the same load and branch, so the comparison is fair.
static MODE: AtomicU8 = AtomicU8::new(MODE_UNSET);
static TRACKER: heapdump::Tracker = heapdump::Tracker::system();

/// The mode, read from the environment the first time (with `getenv`, which
/// does not allocate).
#[inline]
fn mode() -> u8 {
    let mode = MODE.load(Ordering::Relaxed);
    if mode != MODE_UNSET {
        return mode;
    }
    // SAFETY: a NUL-terminated name; the value, if any, is a C string owned
    // by the C library.
    let value = unsafe { libc::getenv(c"HEAPDUMP_BENCH_MODE".as_ptr()) };
    let name = if value.is_null() {
        &b""[..]
    } else {
        // SAFETY: as above.
        unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes()
    };
    let mode = MODES
        .iter()
        .find(|(mode_name, _)| mode_name.as_bytes() == name)
        .map_or(MODE_SYSTEM, |&(_, mode)| mode);
    MODE.store(mode, Ordering::Relaxed);
    mode
}
struct Switch;

// SAFETY: every call goes to `System` or to `TRACKER` according to `MODE`,
// which is set at the first allocation and never changes, so each block is freed
// or reallocated by the allocator that allocated it.
unsafe impl GlobalAlloc for Switch {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mode() == MODE_SYSTEM {
            // SAFETY: forwarded contract.
            unsafe { System.alloc(layout) }
        } else {
            // SAFETY: forwarded contract.
            unsafe { TRACKER.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mode() == MODE_SYSTEM {
            // SAFETY: forwarded contract.
            unsafe { System.alloc_zeroed(layout) }
        } else {
            // SAFETY: forwarded contract.
            unsafe { TRACKER.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if mode() == MODE_SYSTEM {
            // SAFETY: forwarded contract.
            unsafe { System.dealloc(block, layout) }
        } else {
            // SAFETY: forwarded contract.
            unsafe { TRACKER.dealloc(block, layout) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if mode() == MODE_SYSTEM {
            // SAFETY: forwarded contract.
            unsafe { System.realloc(block, layout, new_size) }
        } else {
            // SAFETY: forwarded contract.
            unsafe { TRACKER.realloc(block, layout, new_size) }
        }
    }
}

#[global_allocator]
static ALLOC: Switch = Switch;

fn main() {
    match std::env::var(ENV_MODE) {
        Ok(mode) => child(&mode),
        Err(_) => parent(),
    }
}

// ---------------------------------------------------------------- workload

/// Small blocks kept live per thread (a rolling window).
const WINDOW: usize = 1024;
/// Vectors grown by pushing (reallocs), kept live per thread.
const GROWN_WINDOW: usize = 64;
/// Bigger blocks (16-256 KiB) kept live per thread.
const BIG_WINDOW: usize = 8;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// What one thread did: operations made (for `micro` allocator calls, allocs
/// and reallocs, each block also freed later; for `service` requests).
#[derive(Default, Clone, Copy)]
struct Done {
    calls: u64,
    /// CPU time the thread spent in the timed part (set by the caller).
    cpu_ns: u64,
}

/// CPU time of the calling thread: unlike wall time, it leaves out the time
/// the thread waited for a CPU while other processes ran.
fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Per-thread workload state: the live windows.
struct Workload {
    rng: Rng,
    small: Vec<Vec<u8>>,
    grown: Vec<Vec<u32>>,
    big: Vec<Vec<u8>>,
}

impl Workload {
    fn new(seed: u64) -> Workload {
        Workload {
            rng: Rng(seed | 1),
            small: (0..WINDOW).map(|_| Vec::new()).collect(),
            grown: (0..GROWN_WINDOW).map(|_| Vec::new()).collect(),
            big: (0..BIG_WINDOW).map(|_| Vec::new()).collect(),
        }
    }

    /// `iterations` rounds of: one small block of 16..=512 bytes replacing a
    /// random one of the 1024 live ones; every 16th round, a `Vec<u32>`
    /// grown by pushing to 1..=256 elements (a chain of reallocs) replacing
    /// one of 64; every 1024th round, a 16-256 KiB block replacing one of 8.
    fn run(&mut self, iterations: u64) -> Done {
        let mut done = Done::default();
        for i in 0..iterations {
            let r = self.rng.next();
            let size = 16 + (r % 497) as usize;
            let slot = (r >> 40) as usize % WINDOW;
            let mut block = Vec::<u8>::with_capacity(size);
            block.push(r as u8);
            // Replacing frees the old block.
            self.small[slot] = black_box(block);
            done.calls += 1;

            if i % 16 == 0 {
                let len = 1 + (r >> 20) as usize % 256;
                let mut grown = Vec::<u32>::new();
                let mut capacity = 0;
                for value in 0..len as u32 {
                    grown.push(value);
                    if grown.capacity() != capacity {
                        capacity = grown.capacity();
                        done.calls += 1;
                    }
                }
                let slot = (r >> 8) as usize % GROWN_WINDOW;
                self.grown[slot] = black_box(grown);
            }
            if i % 1024 == 0 {
                let size = (16 << 10) + (r >> 16) as usize % (240 << 10);
                let mut block = Vec::<u8>::with_capacity(size);
                block.push(1);
                // Touch the last page too, as a real user would.
                // SAFETY: within capacity; u8 needs no initialisation beyond
                // what we write.
                unsafe {
                    block.as_mut_ptr().add(size - 1).write(1);
                }
                let slot = (r >> 4) as usize % BIG_WINDOW;
                self.big[slot] = black_box(block);
                done.calls += 1;
            }
        }
        done
    }
}

/// The `service` workload runs this many times fewer requests than `micro`
/// runs iterations (a request costs about ten iterations).
const SERVICE_DIVISOR: u64 = 8;

/// Sessions the service keeps per thread (a bounded cache, oldest out).
const SESSIONS: usize = 4096;

/// A cached session of the `service` workload.
struct Session {
    user: String,
    tags: Vec<String>,
    body: Vec<u8>,
    checksum: u64,
}

/// Per-thread state of the `service` workload.
struct Service {
    rng: Rng,
    sessions: std::collections::HashMap<String, Session>,
    order: std::collections::VecDeque<String>,
}

impl Service {
    fn new(seed: u64) -> Service {
        Service {
            rng: Rng(seed | 1),
            sessions: std::collections::HashMap::with_capacity(SESSIONS + 1),
            order: std::collections::VecDeque::with_capacity(SESSIONS + 1),
        }
    }

    /// `requests` requests; returns how many were served.
    fn run(&mut self, requests: u64) -> Done {
        for _ in 0..requests {
            self.request();
        }
        Done {
            calls: requests,
            cpu_ns: 0,
        }
    }

    fn request(&mut self) {
        let r = self.rng.next();
        let line = format!(
            "GET /users/u{}/items?limit={}&sort=recent HTTP/1.1",
            r % 100_000,
            (r >> 17) % 50
        );
        let parts: Vec<&str> = line.split(['/', '?', '&', ' ']).collect();
        let user = parts[2].to_string();
        let tags: Vec<String> = parts[3..].iter().map(|part| part.to_uppercase()).collect();
        let body_len = 32 + (r >> 24) as usize % 512;
        let body: Vec<u8> = (0..body_len).map(|i| i as u8 ^ r as u8).collect();
        let checksum = body
            .iter()
            .fold(0u64, |sum, &byte| sum.rotate_left(5) ^ u64::from(byte));
        let key = format!("{user}:{}", r % 7);
        let session = Session {
            user,
            tags,
            body,
            checksum,
        };
        if self.sessions.insert(key.clone(), session).is_none() {
            self.order.push_back(key);
        }
        if self.order.len() > SESSIONS {
            let evicted = self
                .order
                .pop_front()
                .and_then(|oldest| self.sessions.remove(&oldest));
            if let Some(session) = evicted {
                // Logged on the way out, say.
                black_box(
                    session.user.len()
                        + session.tags.len()
                        + session.body.len()
                        + session.checksum as usize,
                );
            }
        }
        black_box(&self.sessions);
    }
}

/// Which workload a child runs.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Micro,
    Service,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Micro => "micro",
            Kind::Service => "service",
        }
    }
}

// ------------------------------------------------------------------- child

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

fn child(mode_name: &str) {
    let Some(&(_, mode)) = MODES.iter().find(|(name, _)| *name == mode_name) else {
        eprintln!("unknown {ENV_MODE}={mode_name}; expected system, sampled, every or heaptrack");
        std::process::exit(2);
    };
    let threads = env_number(ENV_THREADS).unwrap_or(2).max(1) as usize;
    let iterations = env_number(ENV_OPS).unwrap_or(4_000_000).max(1);
    let kind = match std::env::var(ENV_WORKLOAD).as_deref() {
        Ok("service") => Kind::Service,
        Ok("micro") | Err(_) => Kind::Micro,
        Ok(other) => {
            eprintln!("unknown {ENV_WORKLOAD}={other}; expected micro or service");
            std::process::exit(2);
        }
    };
    if mode == MODE_EVERY {
        heapdump::set_sample_rate(1);
    }
    // Every allocation of this process went to the chosen allocator.
    assert_eq!(self::mode(), mode, "{ENV_MODE} changed after startup");

    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|index| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let seed = 0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) * 0x1234_5678_9ABC);
                let mut micro = Workload::new(seed);
                let mut service = Service::new(seed);
                let mut run = |count: u64| match kind {
                    Kind::Micro => micro.run(count),
                    Kind::Service => service.run(count),
                };
                // Warm up: fill the windows and the cache, let tables grow.
                run(iterations / 10 + SESSIONS as u64 * 4);
                barrier.wait();
                let cpu_start = thread_cpu_ns();
                let mut done = run(iterations);
                done.cpu_ns = thread_cpu_ns() - cpu_start;
                barrier.wait();
                drop(micro);
                drop(service);
                done
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    barrier.wait();
    let elapsed = start.elapsed();
    let done: Vec<Done> = handles
        .into_iter()
        .map(|handle| handle.join().expect("workload thread panicked"))
        .collect();
    let calls: u64 = done.iter().map(|done| done.calls).sum();
    let cpu_ns: u64 = done.iter().map(|done| done.cpu_ns).sum();
    let calls_per_thread = calls as f64 / threads as f64;
    let ns_per_call = elapsed.as_nanos() as f64 / calls_per_thread;
    let cpu_ns_per_call = cpu_ns as f64 / calls as f64;

    // Evidence that the tracker was really in the path, and that its table
    // is still consistent: every workload block has been freed, so only a
    // handful of std's blocks should be live, and a dump should succeed.
    let mut extra = String::new();
    if mode != MODE_SYSTEM {
        let stats = heapdump::stats();
        let dump = match std::fs::OpenOptions::new().write(true).open("/dev/null") {
            Ok(null) => match heapdump::write(&null) {
                Ok(report) => format!("ok stacks={}", report.stacks),
                Err(error) => format!("error:{error:?}"),
            },
            Err(error) => format!("error:{error}"),
        };
        extra = format!(
            " tracked_allocs={} live_objects_after={} sample_rate={} tracker_bytes={} dump={dump}",
            stats.allocated_objects, stats.live_objects, stats.sample_rate, stats.tracker_bytes
        );
    }
    let kind = kind.name();
    println!(
        "RESULT workload={kind} mode={mode_name} threads={threads} calls={calls} elapsed_ms={:.1} ns_per_op={ns_per_call:.2} cpu_ns_per_op={cpu_ns_per_call:.2}{extra}",
        elapsed.as_secs_f64() * 1e3
    );
}

// ------------------------------------------------------------------ parent

struct Run {
    ns_per_op: f64,
    cpu_ns_per_op: f64,
    line: String,
}

/// A child that runs longer than this is killed and reported (a table gone
/// wrong could make the tracker spin forever).
const CHILD_TIMEOUT: Duration = Duration::from_secs(180);

fn run_child(
    exe: &std::path::Path,
    kind: Kind,
    mode: &str,
    threads: usize,
    iterations: u64,
) -> Result<Run, String> {
    // heaptrack: the bench under `heaptrack -o DIR/out EXE`, its data file
    // removed afterwards.
    let heaptrack_dir =
        std::env::temp_dir().join(format!("heapdump-bench-heaptrack-{}", std::process::id()));
    let mut command = if mode == "heaptrack" {
        std::fs::create_dir_all(&heaptrack_dir)
            .map_err(|error| format!("{}: {error}", heaptrack_dir.display()))?;
        let mut command = Command::new(HEAPTRACK_PATH);
        command.arg("-o").arg(heaptrack_dir.join("out")).arg(exe);
        command
    } else {
        Command::new(exe)
    };
    let mut child = command
        .env(ENV_WORKLOAD, kind.name())
        .env(ENV_MODE, mode)
        .env(ENV_THREADS, threads.to_string())
        .env(ENV_OPS, iterations.to_string())
        // `sampled` means the default rate, not whatever the caller's
        // environment says.
        .env_remove(heapdump::SAMPLE_RATE_ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot re-run the bench executable: {error}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > CHILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "mode={mode} threads={threads}: killed after {CHILD_TIMEOUT:?}"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(error) => return Err(format!("mode={mode}: wait failed: {error}")),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_string(&mut stdout);
    }
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    if mode == "heaptrack" {
        let _ = std::fs::remove_dir_all(&heaptrack_dir);
    }
    let line = stdout.lines().find(|line| line.starts_with("RESULT "));
    let parsed = line.and_then(|line| {
        Some((
            line,
            field(line, "ns_per_op")?,
            field(line, "cpu_ns_per_op")?,
        ))
    });
    match parsed {
        Some((line, ns_per_op, cpu_ns_per_op)) if status.success() => Ok(Run {
            ns_per_op,
            cpu_ns_per_op,
            line: line.trim_start_matches("RESULT ").to_string(),
        }),
        _ => Err(format!(
            "mode={mode} threads={threads}: {status}; stdout: {} stderr: {}",
            stdout.trim(),
            stderr.lines().take(3).collect::<Vec<_>>().join(" | ")
        )),
    }
}

fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
}

/// The first three fields of /proc/loadavg: other work on the machine makes
/// the figures noisy, so the bench says how busy it was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| String::from("?"))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

fn parent() {
    // `cargo bench` passes `--bench`; other unknown arguments are ignored too.
    let quick = std::env::args().any(|arg| arg == "--quick")
        || std::env::var(ENV_QUICK).is_ok_and(|value| value != "0" && !value.is_empty());
    let verbose = std::env::args().any(|arg| arg == "--verbose" || arg == "-v");
    let rounds = env_number(ENV_ROUNDS)
        .unwrap_or(if quick { 5 } else { 21 })
        .max(1) as usize;
    let iterations = env_number(ENV_OPS).unwrap_or(if quick { 200_000 } else { 1_000_000 });
    let exe = std::env::current_exe().expect("cannot find the bench executable");

    println!(
        "alloc_overhead, micro: {iterations} iterations per thread (~1.4 allocator calls each: \
         a 16-512 B block among 1024 live, every 16th a Vec<u32> grown by push, \
         every 1024th a 16-256 KiB block); service: {} requests per thread (~15 allocator \
         calls each, among formatting, splitting and checksumming); {rounds} interleaved rounds{}",
        iterations / SERVICE_DIVISOR,
        if quick { " (--quick)" } else { "" }
    );
    println!(
        "micro: ns/op = wall time / allocator calls per thread; cpu/op = thread CPU time / calls \
         (each call's block is freed later, and the free is in the time); service: per request"
    );
    let heaptrack = std::path::Path::new(HEAPTRACK_PATH).exists();
    if !heaptrack {
        println!("{HEAPTRACK_PATH} not found: no heaptrack column (Debian: apt install heaptrack)");
    }
    println!("load average before: {}", load_average());
    // The target is on 2 threads; 1 thread separates the tracker's own cost
    // from the cost of sharing cache lines between threads.
    for (kind, threads) in [(Kind::Micro, 2usize), (Kind::Micro, 1), (Kind::Service, 2)] {
        let iterations = match kind {
            Kind::Micro => iterations,
            Kind::Service => (iterations / SERVICE_DIVISOR).max(1),
        };
        // runs[mode][round]
        let mut runs: Vec<Vec<Option<Run>>> = (0..MODES.len()).map(|_| Vec::new()).collect();
        let mut failures = Vec::new();
        for round in 0..rounds {
            for (index, (mode, _)) in MODES.iter().enumerate() {
                if index == HEAPTRACK && !heaptrack {
                    runs[index].push(None);
                    continue;
                }
                let run = run_child(&exe, kind, mode, threads, iterations);
                if let Err(failure) = &run {
                    failures.push(format!("  round {round}: {failure}"));
                }
                runs[index].push(run.ok());
            }
        }
        let lines: Vec<&str> = runs
            .iter()
            .flatten()
            .flatten()
            .map(|run| run.line.as_str())
            .collect();
        if verbose {
            for line in &lines {
                println!("  {line}");
            }
        } else if let Some(line) = lines.iter().rev().find(|line| line.contains("mode=every")) {
            println!("last `every` child: {line}");
        }
        // The timings stand, but say so when the tracker's table was found
        // inconsistent afterwards (a dump failed or live counts are absurd).
        let suspicious: Vec<&&str> = lines
            .iter()
            .filter(|line| {
                line.contains("dump=error")
                    || field(line, "live_objects_after").is_some_and(|live| live > 1e6)
            })
            .collect();
        if !suspicious.is_empty() {
            println!(
                "WARNING: {} of {} tracker children ended with an inconsistent table:",
                suspicious.len(),
                lines.iter().filter(|line| line.contains("dump=")).count()
            );
            for line in suspicious.iter().take(3) {
                println!("  {line}");
            }
        }
        for failure in &failures {
            println!("FAILED: {failure}");
        }
        let wall = |index: usize| -> Vec<f64> {
            runs[index]
                .iter()
                .flatten()
                .map(|run| run.ns_per_op)
                .collect()
        };
        let cpu = |index: usize| -> Vec<f64> {
            runs[index]
                .iter()
                .flatten()
                .map(|run| run.cpu_ns_per_op)
                .collect()
        };
        let kind_name = kind.name();
        let shown: Vec<usize> = (0..MODES.len())
            .filter(|&index| index != HEAPTRACK || heaptrack)
            .collect();
        if shown.iter().any(|&index| wall(index).is_empty()) {
            println!("{kind_name}, {threads} thread(s): not every mode completed; no table.");
            continue;
        }
        let baseline = median(&wall(0));
        let cpu_baseline = median(&cpu(0));
        let fastest = |index: usize| wall(index).into_iter().fold(f64::INFINITY, f64::min);
        println!();
        println!("{kind_name}, {threads} thread(s), median of {rounds}:");
        println!(
            "  {:<9} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8} {:>9} {:>8} {:>10}  result",
            "mode",
            if kind == Kind::Micro {
                "ns/op"
            } else {
                "ns/req"
            },
            "min",
            "max",
            "vs system",
            "per-round",
            "min ratio",
            "cpu/op",
            "cpu ratio",
            "target"
        );
        for &index in &shown {
            let mode = MODES[index].0;
            let values = wall(index);
            let mid = median(&values);
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(0.0, f64::max);
            // Ratio within each round (paired), then the median: robust to
            // the machine getting slower or faster between rounds.
            let paired: Vec<f64> = runs[index]
                .iter()
                .zip(&runs[0])
                .filter_map(|(run, base)| Some(run.as_ref()?.ns_per_op / base.as_ref()?.ns_per_op))
                .collect();
            let cpu_mid = median(&cpu(index));
            let (target, verdict) = match (mode, threads, kind) {
                ("sampled", 2, Kind::Micro) => (
                    format!("<={TARGET_SAMPLED:.2}x"),
                    verdict(mid / baseline, TARGET_SAMPLED),
                ),
                ("sampled", 2, Kind::Service) => (
                    format!("cpu<={TARGET_SAMPLED_SERVICE_CPU:.2}x"),
                    verdict(cpu_mid / cpu_baseline, TARGET_SAMPLED_SERVICE_CPU),
                ),
                ("every", 2, Kind::Micro) => (
                    format!("<={TARGET_EVERY:.2}x"),
                    verdict(mid / baseline, TARGET_EVERY),
                ),
                _ => (String::from("-"), String::new()),
            };
            let paired = if paired.is_empty() {
                String::from("-")
            } else {
                format!("{:.2}x", median(&paired))
            };
            println!(
                "  {mode:<9} {mid:>8.1} {min:>8.1} {max:>8.1} {:>9.2}x {paired:>10} {:>8.2}x {cpu_mid:>8.1} {:>8.2}x {target:>10}  {verdict}",
                mid / baseline,
                min / fastest(0),
                cpu_mid / cpu_baseline,
            );
        }
        println!();
    }
    println!("load average after: {}", load_average());
}

fn verdict(ratio: f64, target: f64) -> String {
    if ratio <= target {
        String::from("met")
    } else {
        String::from("MISSED")
    }
}
