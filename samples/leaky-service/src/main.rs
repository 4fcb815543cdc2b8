//! The sample service's binary: installs heapdump's tracker, handles
//! requests, leaks, and writes a dump (see the library for the service).
//!
//! ```text
//! leaky-service [--requests N] [--out PATH] [--redacted] [--stop]
//!               [--then-requests N --then-out PATH] [--wait-for-signal]
//! ```
//!
//! Dumps are written from a forked child (`heapdump::Snapshot::Fork`, the
//! default); `--stop` stops the other threads for the whole dump instead
//! (`heapdump::Snapshot::Stop`).
//! `--wait-for-signal` handles the requests, then waits, writing a dump into
//! the current directory on every `SIGUSR2` (`heapdump::dump_on_signal`).
//!
//! With `--then-requests N --then-out PATH` it handles N more requests after
//! the first dump and writes a second one, for `heapdump diff`.

use std::process::ExitCode;

use leaky_service::{leak_a_cycle, scrub_stack, Service};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

struct Args {
    requests: u64,
    out: String,
    redacted: bool,
    stop: bool,
    wait_for_signal: bool,
    then_requests: u64,
    then_out: Option<String>,
}

const USAGE: &str =
    "usage: leaky-service [--requests N] [--out PATH] [--redacted] [--stop] [--wait-for-signal] \
                     [--then-requests N --then-out PATH]";

fn number(flag: &str, value: Option<String>) -> Result<u64, String> {
    let value = value.ok_or(format!("{flag} needs a number"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value}"))
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        requests: 10_000,
        out: "leaky-service.hdump".to_string(),
        redacted: false,
        stop: false,
        wait_for_signal: false,
        then_requests: 0,
        then_out: None,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--requests" => args.requests = number("--requests", words.next())?,
            "--out" => args.out = words.next().ok_or("--out needs a path")?,
            "--redacted" => args.redacted = true,
            "--stop" => args.stop = true,
            "--wait-for-signal" => args.wait_for_signal = true,
            "--then-requests" => args.then_requests = number("--then-requests", words.next())?,
            "--then-out" => args.then_out = Some(words.next().ok_or("--then-out needs a path")?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if args.then_requests > 0 && args.then_out.is_none() {
        return Err("--then-requests needs --then-out PATH".into());
    }
    Ok(args)
}

/// Writes a dump to `path` and prints one line about it.
fn dump(service: &Service, path: &str, options: &heapdump::Options) -> Result<(), String> {
    // The README's `--out target/leaky-service.hdump` when cargo builds
    // elsewhere (CARGO_TARGET_DIR): make the folder.
    if let Some(folder) = std::path::Path::new(path)
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder)
            .map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
    }
    let report = heapdump::write_file_with(path, options).map_err(|error| error.to_string())?;
    for warning in report.warnings() {
        eprintln!("leaky-service: {warning}");
    }
    println!(
        "{}: handled {} requests ({} sessions cached), wrote {} ({} objects, {} bytes live, {} sampled stacks, {} bytes)",
        service.name(),
        service.handled(),
        service.sessions().len(),
        path,
        report.objects,
        report.object_bytes,
        report.stacks,
        report.file_bytes,
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("leaky-service: {message}");
            return ExitCode::from(2);
        }
    };
    let options = heapdump::Options {
        contents: if args.redacted {
            heapdump::ContentsMode::Redacted
        } else {
            heapdump::ContentsMode::Full
        },
        snapshot: if args.stop {
            heapdump::Snapshot::Stop
        } else {
            heapdump::Snapshot::Fork
        },
    };
    let mut service = Service::new();
    if args.wait_for_signal {
        return wait_for_signals(service, args.requests, options);
    }
    let batches = [
        (args.requests, Some(args.out.as_str())),
        (args.then_requests, args.then_out.as_deref()),
    ];
    leak_a_cycle();
    let mut result = Ok(());
    // One loop whose body has no branch on the batch, so that every request
    // comes from the same call stack (and allocation sites match between
    // the two dumps), as in a service's request loop (`black_box` keeps the
    // compiler from unrolling it).
    for &(requests, out) in std::hint::black_box(&batches[..]) {
        let Some(out) = out else { break };
        service.handle_many(requests);
        scrub_stack();
        result = dump(&service, out, &options);
        if result.is_err() {
            break;
        }
    }
    // The service runs on after the dump in real life.
    std::hint::black_box(&service);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("leaky-service: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--wait-for-signal`: handles `requests`, then runs on, writing a dump
/// into the current directory on every `SIGUSR2`.
fn wait_for_signals(mut service: Service, requests: u64, options: heapdump::Options) -> ExitCode {
    if let Err(error) = heapdump::dump_on_signal(libc::SIGUSR2, ".", options) {
        eprintln!("leaky-service: {error}");
        return ExitCode::FAILURE;
    }
    leak_a_cycle();
    service.handle_many(requests);
    let pid = std::process::id();
    println!(
        "{}: handled {} requests; `kill -USR2 {pid}` writes a dump into this directory, \
         Ctrl-C ends",
        service.name(),
        service.handled()
    );
    loop {
        std::thread::park();
        std::hint::black_box(&service);
    }
}
