//! How fast `heapdump::write` dumps a large live heap, and how long another
//! thread is held up meanwhile.
//!
//! The tracker is the global allocator. The bench builds a live heap (1 GiB;
//! 64 MiB with `--quick`) of many small blocks and some large ones, filled
//! with pointers and pseudo-random words, then times dumps of it:
//!
//! * to `/dev/null` (the writer alone; but `write(2)` to `/dev/null` does not
//!   even read its buffer, so blocks of 64 KiB and more, which the writer
//!   hands to the kernel straight from the heap, cost next to nothing there);
//! * to a `memfd` (every byte copied into memory, no disk);
//! * to a file in the temp directory (page cache), then `fsync` timed apart;
//! * redacted (`ContentsMode::Redacted`), to `/dev/null` and to the file;
//! * with `Snapshot::Fork` (a forked child writes; the threads are stopped
//!   only while the process forks), to a `memfd` and to the file.
//!
//! During every dump a probe thread allocates and frees 48-byte blocks in a
//! loop, reading the clock between every two calls; it records the longest
//! gap that overlapped the dump (its pause: waiting for the tracker's locks
//! or stopped by the dump's signal) and how many calls it completed
//! meanwhile. The same probe runs over a quiet period as long as the longest
//! dump, for comparison.
//! Nothing is asserted on timings: the bench prints figures.
//!
//! ```text
//! cargo bench -p heapdump --bench dump_speed            # 1 GiB heap
//! cargo bench -p heapdump --bench dump_speed -- --quick # 64 MiB heap
//! ```

use std::fs::File;
use std::hint::black_box;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heapdump::{ContentsMode, DumpReport, Options, Snapshot};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn range(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }
}

/// The heap under test: half of the bytes in small blocks of 16-1024 B, a
/// quarter in 4-64 KiB blocks and a quarter in 1-8 MiB blocks (which glibc
/// serves with `mmap`). Each block's first word points to the block made
/// before it, one word in eight points to an earlier block, and the other
/// words are pseudo-random (the worst case for redaction, which looks every
/// word up among the live blocks).
struct Heap {
    blocks: Vec<Vec<u64>>,
    bytes: usize,
    small: usize,
    medium: usize,
    large: usize,
}

fn build_heap(total: usize) -> Heap {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut heap = Heap {
        blocks: Vec::with_capacity(total / 512 + 1024),
        bytes: 0,
        small: 0,
        medium: 0,
        large: 0,
    };
    let classes = [
        (total / 2, 16, KIB),
        (total / 4, 4 * KIB, 64 * KIB),
        (total / 4, MIB, 8 * MIB),
    ];
    let mut previous: u64 = 0;
    for (class, &(budget, low, high)) in classes.iter().enumerate() {
        let mut used = 0;
        while used < budget {
            let size = rng.range(low, high).min(budget - used).max(16) / 8 * 8;
            let words = size / 8;
            let mut block = Vec::<u64>::with_capacity(words);
            block.push(previous);
            for index in 1..words {
                let random = rng.next();
                let word = if index % 8 == 0 && !heap.blocks.is_empty() {
                    let target = (random as usize) % heap.blocks.len();
                    heap.blocks[target].as_ptr() as u64
                } else {
                    random
                };
                block.push(word);
            }
            previous = block.as_ptr() as u64;
            heap.blocks.push(block);
            used += size;
            match class {
                0 => heap.small += 1,
                1 => heap.medium += 1,
                _ => heap.large += 1,
            }
        }
        heap.bytes += used;
    }
    heap
}

/// Gaps longer than this are logged with their times.
const SLOW_CALL: Duration = Duration::from_micros(100);
/// Room for that many slow calls, reserved up front so logging never
/// allocates.
const SLOW_LOG: usize = 1 << 16;

/// What the probe thread saw over one window of time.
#[derive(Default, Clone, Copy)]
struct Probe {
    /// Allocator calls (allocs and frees) completed within the window.
    calls: u64,
    /// Longest gap between two clock reads of the probe (each gap holds one
    /// allocator call), cut to the window; zero if no gap overlapping the
    /// window was longer than `SLOW_CALL`.
    max_call: Duration,
    /// Gaps over 1 ms that overlapped the window.
    over_1ms: u64,
}

/// A thread that allocates and frees 48-byte blocks (64 live) until told to
/// stop, reading the clock around each call. It counts the calls it
/// completes, and logs the start and end of every slow gap, so that the gaps
/// overlapping a window can be picked out afterwards, however they straddle
/// it.
struct Prober {
    epoch: Instant,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
    handle: std::thread::JoinHandle<Vec<(u64, u64)>>,
}

impl Prober {
    fn start() -> Prober {
        let epoch = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let completed = Arc::new(AtomicU64::new(0));
        let handle = {
            let (stop, completed) = (Arc::clone(&stop), Arc::clone(&completed));
            std::thread::spawn(move || {
                let mut slow: Vec<(u64, u64)> = Vec::with_capacity(SLOW_LOG);
                let mut live: Vec<Option<Box<[u8; 48]>>> = (0..64).map(|_| None).collect();
                let mut log = |start: Instant, end: Instant| {
                    if end - start > SLOW_CALL && slow.len() < slow.capacity() {
                        let nanos = |at: Instant| (at - epoch).as_nanos() as u64;
                        slow.push((nanos(start), nanos(end)));
                    }
                };
                let mut index = 0usize;
                // The clock is read between every two calls and the gaps are
                // contiguous, so a stall shows up wherever it hits: inside
                // the allocator (waiting for the tracker's locks) or anywhere
                // else (the thread stopped by the dump's signal).
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let block = black_box(Box::new([index as u8; 48]));
                    let allocated = Instant::now();
                    log(last, allocated);
                    // Replacing frees the block allocated 64 calls ago.
                    live[index % 64] = Some(block);
                    let freed = Instant::now();
                    log(allocated, freed);
                    completed.fetch_add(2, Ordering::Relaxed);
                    index += 1;
                    last = freed;
                }
                slow
            })
        };
        // Wait until it is really running (its first calls set up its
        // thread state).
        while completed.load(Ordering::Relaxed) < 10_000 {
            std::thread::sleep(Duration::from_millis(1));
        }
        Prober {
            epoch,
            stop,
            completed,
            handle,
        }
    }

    /// Stops the probe and reports on the window `[from, to]`, given with the
    /// probe's completed-call counts at those times.
    fn finish(self, from: (Instant, u64), to: (Instant, u64)) -> Probe {
        self.stop.store(true, Ordering::Relaxed);
        let slow = self.handle.join().expect("probe thread panicked");
        let from_ns = (from.0 - self.epoch).as_nanos() as u64;
        let to_ns = (to.0 - self.epoch).as_nanos() as u64;
        let overlapping = slow
            .iter()
            .filter(|&&(start, end)| start < to_ns && end > from_ns)
            // Only the part inside the window counts.
            .map(|&(start, end)| Duration::from_nanos(end.min(to_ns) - start.max(from_ns)));
        let mut probe = Probe {
            calls: to.1 - from.1,
            ..Probe::default()
        };
        for took in overlapping {
            probe.max_call = probe.max_call.max(took);
            if took > Duration::from_millis(1) {
                probe.over_1ms += 1;
            }
        }
        probe
    }

    fn mark(&self) -> (Instant, u64) {
        let completed = self.completed.load(Ordering::Relaxed);
        (Instant::now(), completed)
    }
}

/// One timed dump.
struct Timed {
    seconds: f64,
    report: DumpReport,
    probe: Probe,
}

fn timed_dump(fd: &File, contents: ContentsMode, snapshot: Snapshot) -> Timed {
    let options = Options { contents, snapshot };
    let prober = Prober::start();
    let from = prober.mark();
    let result = heapdump::write_with(fd, &options);
    let to = prober.mark();
    let probe = prober.finish(from, to);
    let report = result.unwrap_or_else(|error| panic!("heap dump failed: {error}"));
    Timed {
        seconds: (to.0 - from.0).as_secs_f64(),
        report,
        probe,
    }
}

/// The probe over a quiet window of `length`, no dump running.
fn quiet_probe(length: Duration) -> Probe {
    let prober = Prober::start();
    let from = prober.mark();
    std::thread::sleep(length);
    let to = prober.mark();
    prober.finish(from, to)
}

fn memfd() -> File {
    // SAFETY: a NUL-terminated name; the new descriptor is ours alone.
    let fd = unsafe { libc::memfd_create(c"heapdump-bench".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    File::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn dev_null() -> File {
    File::options()
        .write(true)
        .open("/dev/null")
        .expect("cannot open /dev/null")
}

/// Seconds to write `bytes` to `file` in 1 MiB `write(2)` calls from one
/// buffer: what the target itself costs, for comparison with a dump.
fn raw_write(file: &File, bytes: u64) -> f64 {
    use std::io::Write;
    let buffer = vec![0x5Au8; MIB];
    let mut file = file;
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let chunk = left.min(MIB as u64) as usize;
        file.write_all(&buffer[..chunk]).expect("raw write failed");
        left -= chunk as u64;
    }
    start.elapsed().as_secs_f64()
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

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Removes the bench's temp directory even if a dump panics.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a dump goes.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    DevNull,
    Memfd,
    File,
}

struct Row {
    label: &'static str,
    dumps: usize,
    /// Median, fastest and slowest seconds of the dumps.
    seconds: f64,
    min_seconds: f64,
    max_seconds: f64,
    /// Median seconds of writing as many bytes with plain 1 MiB writes to
    /// the same kind of target (none for /dev/null).
    raw_seconds: Option<f64>,
    /// Median seconds of the fsync after the dump (files only).
    sync_seconds: Option<f64>,
    file_bytes: u64,
    objects: u64,
    /// Threads the dumps saw, and the fewest whose stacks a dump had (the
    /// threads it stopped, itself included).
    threads: (u64, u64),
    /// The probe of the dump whose longest call was the longest.
    probe: Probe,
    /// That dump's duration.
    probe_dump_seconds: f64,
}

fn main() {
    // `cargo bench` passes `--bench`; other unknown arguments are ignored.
    let quick = std::env::args().any(|arg| arg == "--quick")
        || std::env::var("HEAPDUMP_BENCH_QUICK")
            .is_ok_and(|value| value != "0" && !value.is_empty());
    let total = std::env::var("HEAPDUMP_BENCH_HEAP_MIB")
        .ok()
        .and_then(|mib| mib.trim().parse::<usize>().ok())
        .map_or(if quick { 64 * MIB } else { GIB }, |mib| mib.max(1) * MIB);
    let repetitions = if quick { 1 } else { 3 };

    let started = Instant::now();
    let heap = build_heap(total);
    let build_seconds = started.elapsed().as_secs_f64();
    let stats = heapdump::stats();
    println!(
        "dump_speed: live heap {:.0} MiB in {} blocks ({} of 16 B-1 KiB, {} of 4-64 KiB, {} of 1-8 MiB), \
         built in {build_seconds:.2} s{}",
        heap.bytes as f64 / MIB as f64,
        heap.blocks.len(),
        heap.small,
        heap.medium,
        heap.large,
        if quick { " (--quick)" } else { "" }
    );
    println!(
        "tracker: {} live objects, {:.1} MiB live, tracker tables {:.1} MiB; {} dump(s) per row, medians",
        stats.live_objects,
        stats.live_bytes as f64 / MIB as f64,
        stats.tracker_bytes as f64 / MIB as f64,
        repetitions
    );

    println!("load average before: {}", load_average());
    let directory =
        TempDir(std::env::temp_dir().join(format!("heapdump-dump-speed-{}", std::process::id())));
    std::fs::create_dir_all(&directory.0).expect("cannot create the temp directory");
    let path = directory.0.join("bench.hdump");
    let open = |target: Target| -> File {
        match target {
            Target::DevNull => dev_null(),
            Target::Memfd => memfd(),
            Target::File => File::options()
                .write(true)
                .create_new(true)
                .open(&path)
                .expect("cannot create the dump file"),
        }
    };
    let done_with = |file: File| {
        drop(file);
        let _ = std::fs::remove_file(&path);
    };

    let (full, redacted, stop, fork) = (
        ContentsMode::Full,
        ContentsMode::Redacted,
        Snapshot::Stop,
        Snapshot::Fork,
    );
    let plan = [
        ("full -> /dev/null", Target::DevNull, full, stop),
        ("full -> memfd", Target::Memfd, full, stop),
        ("full -> file", Target::File, full, stop),
        ("redacted -> /dev/null", Target::DevNull, redacted, stop),
        ("redacted -> file", Target::File, redacted, stop),
        ("forked full -> memfd", Target::Memfd, full, fork),
        ("forked full -> file", Target::File, full, fork),
    ];
    println!(
        "GB/s = dump file bytes / median seconds; vs plain = dump time / time of the same bytes \
         written with plain 1 MiB writes to the same kind of target; max pause = the longest \
         stall of another thread (allocating in a loop) overlapping a dump, as a share of that \
         dump; calls = that thread's allocator calls completed during that dump; stacks = \
         thread stacks in the dump / threads in the process (fewest over the row's dumps)"
    );
    print_header();
    let mut rows = Vec::new();
    for (label, target, contents, snapshot) in plan {
        let mut seconds = Vec::new();
        let mut raw = Vec::new();
        let mut sync = Vec::new();
        let mut worst: Option<(Probe, f64)> = None;
        let mut report = None;
        let mut fewest_stacks = u64::MAX;
        // Redacted dumps of the full heap take tens of seconds: one will do.
        let dumps = if contents == ContentsMode::Redacted {
            1
        } else {
            repetitions
        };
        for _ in 0..dumps {
            let file = open(target);
            let timed = timed_dump(&file, contents, snapshot);
            if target == Target::File {
                let start = Instant::now();
                file.sync_all().expect("fsync failed");
                sync.push(start.elapsed().as_secs_f64());
            }
            done_with(file);
            // The same number of bytes written plainly, right after.
            if target != Target::DevNull {
                let file = open(target);
                raw.push(raw_write(&file, timed.report.file_bytes));
                if target == Target::File {
                    file.sync_all().expect("fsync failed");
                }
                done_with(file);
            }
            seconds.push(timed.seconds);
            if worst.is_none_or(|(probe, _)| timed.probe.max_call > probe.max_call) {
                worst = Some((timed.probe, timed.seconds));
            }
            fewest_stacks = fewest_stacks.min(timed.report.threads_dumped);
            report = Some(timed.report);
        }
        let report = report.expect("at least one repetition");
        let (probe, probe_dump_seconds) = worst.expect("at least one repetition");
        let row = Row {
            label,
            dumps,
            min_seconds: seconds.iter().copied().fold(f64::INFINITY, f64::min),
            max_seconds: seconds.iter().copied().fold(0.0, f64::max),
            seconds: median(&mut seconds),
            raw_seconds: (!raw.is_empty()).then(|| median(&mut raw)),
            sync_seconds: (!sync.is_empty()).then(|| median(&mut sync)),
            file_bytes: report.file_bytes,
            objects: report.objects,
            threads: (report.threads, fewest_stacks),
            probe,
            probe_dump_seconds,
        };
        print_row(&row);
        rows.push(row);
    }

    // The probe with no dump running, over as long as the longest dump.
    let longest = rows.iter().map(|row| row.seconds).fold(0.2, f64::max);
    let quiet = quiet_probe(Duration::from_secs_f64(longest));
    println!(
        "  {:<22} {:>5} {longest:>7.3}s {:>17} {:>9} {:>11}  {:>9.1}ms {:>9} {:>8}  ({} calls over 1 ms)",
        "no dump, probe only",
        "-",
        "",
        "",
        "",
        quiet.max_call.as_secs_f64() * 1e3,
        "",
        quiet.calls,
        quiet.over_1ms
    );

    let gbps = |row: &Row| row.file_bytes as f64 / row.seconds / 1e9;
    let pause_shares: Vec<f64> = rows[..5].iter().map(pause_share).collect();
    let least_pause = pause_shares.iter().copied().fold(f64::INFINITY, f64::min);
    let worst_pause = pause_shares.iter().copied().fold(0.0, f64::max);
    println!();
    println!(
        "summary: {} objects, {:.0} MiB per dump, {} threads ({} stacks dumped); full dump {:.2} GB/s to /dev/null, {:.2} GB/s to memfd \
         ({:.2}x plain writes), {:.2} GB/s to a file before fsync ({:.2}x plain writes); \
         redacted {:.1}x the time of full to /dev/null; another thread's longest stall \
         lasted {:.0}-{:.0}% of the dump (vs {:.3} ms with no dump)",
        rows[0].objects,
        rows[0].file_bytes as f64 / MIB as f64,
        rows[0].threads.0,
        rows[0].threads.1,
        gbps(&rows[0]),
        gbps(&rows[1]),
        rows[1].seconds / rows[1].raw_seconds.unwrap_or(f64::NAN),
        gbps(&rows[2]),
        rows[2].seconds / rows[2].raw_seconds.unwrap_or(f64::NAN),
        rows[3].seconds / rows[0].seconds,
        least_pause * 100.0,
        worst_pause * 100.0,
        quiet.max_call.as_secs_f64() * 1e3
    );
    let pause = |row: &Row| row.probe.max_call.as_secs_f64() * 1e3;
    println!(
        "forked: {:.2} GB/s to memfd, {:.2} GB/s to a file ({:.2}x and {:.2}x the stopped \
         dump's time); another thread's longest stall {:.1} ms and {:.1} ms ({:.1}% and {:.1}% \
         of the dump; stopped: {:.0} ms and {:.0} ms)",
        gbps(&rows[5]),
        gbps(&rows[6]),
        rows[5].seconds / rows[1].seconds,
        rows[6].seconds / rows[2].seconds,
        pause(&rows[5]),
        pause(&rows[6]),
        pause_share(&rows[5]) * 100.0,
        pause_share(&rows[6]) * 100.0,
        pause(&rows[1]),
        pause(&rows[2]),
    );
    println!("load average after: {}", load_average());
    drop(heap);
    drop(directory);
}

/// The longest stall of the probe thread as a share of its dump.
fn pause_share(row: &Row) -> f64 {
    row.probe.max_call.as_secs_f64() / row.probe_dump_seconds
}

fn print_header() {
    println!(
        "  {:<22} {:>5} {:>8} {:>17} {:>9} {:>11}  {:>11} {:>9} {:>8} {:>7}",
        "dump",
        "dumps",
        "median",
        "(min - max)",
        "GB/s",
        "vs plain",
        "max pause",
        "of dump",
        "calls",
        "stacks"
    );
}

fn print_row(row: &Row) {
    let raw = match row.raw_seconds {
        Some(raw) => format!("{:.2}x", row.seconds / raw),
        None => String::from("-"),
    };
    let sync = row
        .sync_seconds
        .map_or(String::new(), |sync| format!("  (then fsync {sync:.2} s)"));
    // On a busy machine the probe thread may get no CPU during a short dump.
    let idle = if row.probe.calls == 0 && row.probe.max_call.is_zero() {
        "  (probe thread got no CPU during the dump)"
    } else {
        ""
    };
    println!(
        "  {:<22} {:>5} {:>7.3}s {:>17} {:>9.2} {raw:>11}  {:>9.1}ms {:>8.0}% {:>8} {:>7}{sync}{idle}",
        row.label,
        row.dumps,
        row.seconds,
        format!("({:.3} - {:.3})", row.min_seconds, row.max_seconds),
        row.file_bytes as f64 / row.seconds / 1e9,
        row.probe.max_call.as_secs_f64() * 1e3,
        row.probe.max_call.as_secs_f64() / row.probe_dump_seconds * 100.0,
        row.probe.calls,
        format!("{}/{}", row.threads.1, row.threads.0),
    );
}
