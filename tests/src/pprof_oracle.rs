//! The real `go tool pprof` as the oracle of heapdump's pprof profiles
//! (`tests/pprof_*.rs`): running it, reading its `-raw` and `-top`
//! output, and the checks both profiles of any dump must pass.
//!
//! Without `go` a test prints a loud skip and passes, unless
//! `HEAPDUMP_REQUIRE_ORACLES=1` (CI), where it fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use heapdump_inspect::convert::pprof::{self, CollapsedValue, Plan};
use heapdump_inspect::Heap;

/// The `go` command whose `tool pprof` is the oracle, or a loud skip (a
/// failure under `HEAPDUMP_REQUIRE_ORACLES=1`).
pub fn go() -> Option<PathBuf> {
    let candidates = [PathBuf::from("/usr/bin/go"), PathBuf::from("go")];
    for go in candidates {
        let works = Command::new(&go)
            .args(["tool", "pprof", "-h"])
            .output()
            .is_ok_and(|output| {
                String::from_utf8_lossy(&output.stderr).contains("usage")
                    || String::from_utf8_lossy(&output.stdout).contains("usage")
            });
        if works {
            return Some(go);
        }
    }
    let message = "SKIPPED: `go tool pprof` is missing (install Debian's golang-go); CI sets \
                   HEAPDUMP_REQUIRE_ORACLES=1 and fails instead.";
    if std::env::var("HEAPDUMP_REQUIRE_ORACLES").is_ok_and(|value| value == "1") {
        panic!("HEAPDUMP_REQUIRE_ORACLES=1 but {message}");
    }
    eprintln!("\n{}\n{message}\n{}\n", "!".repeat(72), "!".repeat(72));
    None
}

/// Runs `go tool pprof ARGS`; panics with its message on failure.
pub fn pprof(go: &Path, args: &[&str]) -> String {
    let output = Command::new(go)
        .arg("tool")
        .arg("pprof")
        .args(args)
        .env("GOTOOLCHAIN", "local")
        .output()
        .expect("run go tool pprof");
    assert!(
        output.status.success(),
        "go tool pprof {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("pprof prints UTF-8")
}

/// The totals of `-raw`'s samples: (objects, bytes, samples).
pub fn raw_totals(go: &Path, profile: &Path) -> (u64, u64, u64) {
    let text = pprof(go, &["-raw", profile.to_str().unwrap()]);
    let mut lines = text.lines().skip_while(|line| *line != "Samples:");
    assert_eq!(lines.next(), Some("Samples:"), "{text}");
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("inuse_objects/count inuse_space/bytes"),
        "sample types: {header}"
    );
    let (mut objects, mut bytes, mut samples) = (0u64, 0u64, 0u64);
    for line in lines.take_while(|line| !line.starts_with("Locations")) {
        let Some((values, _)) = line.split_once(':') else {
            continue;
        };
        let values: Vec<&str> = values.split_whitespace().collect();
        if let [count, size] = values.as_slice() {
            if let (Ok(count), Ok(size)) = (count.parse::<u64>(), size.parse::<u64>()) {
                objects += count;
                bytes += size;
                samples += 1;
            }
        }
    }
    (objects, bytes, samples)
}

/// `-top`'s rows, every node: name → (flat, cum), in bytes (or objects
/// with `-sample_index=inuse_objects`).
pub fn top(go: &Path, args: &[&str]) -> HashMap<String, (i64, i64)> {
    let mut all = vec!["-top", "-unit=B", "-nodecount=1000000", "-nodefraction=0"];
    all.extend_from_slice(args);
    let text = pprof(go, &all);
    let mut rows = HashMap::new();
    let number = |text: &str| -> Option<i64> { text.trim_end_matches('B').parse::<i64>().ok() };
    for line in text
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("flat"))
        .skip(1)
    {
        let mut rest = line.trim_start();
        let mut columns = Vec::new();
        for _ in 0..5 {
            let end = rest.find(' ').unwrap_or(rest.len());
            columns.push(&rest[..end]);
            rest = rest[end..].trim_start();
        }
        if let (Some(flat), Some(cum)) = (number(columns[0]), number(columns[3])) {
            rows.insert(rest.to_owned(), (flat, cum));
        }
    }
    assert!(!rows.is_empty(), "no rows in -top:\n{text}");
    rows
}

/// Sums of a folded-stacks file's values.
pub fn folded_total(plan: &Plan, value: CollapsedValue) -> u64 {
    let mut text = Vec::new();
    plan.write_collapsed(value, &mut text).unwrap();
    String::from_utf8(text)
        .unwrap()
        .lines()
        .map(|line| {
            let (stack, value) = line.rsplit_once(' ').expect("stack and value");
            assert!(!stack.is_empty());
            value.parse::<u64>().expect("a value")
        })
        .sum()
}

/// Writes both profiles of `heap` into `dir` as `name-sites.pb.gz` and
/// `name-retention.pb.gz`, checks their totals with `-raw` and the folded
/// stacks' totals; returns (sites, retention) paths.
pub fn write_and_check(go: &Path, heap: &Heap, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let dump = heap.dump();
    let expected = (dump.objects.len() as u64, dump.live_bytes());
    let options = pprof::Options::default();
    let sites = Plan::sites(heap.graph(), &options);
    let retention = Plan::retention(heap.graph(), heap.analysis(), &heap.root_namer(), &options);
    let mut paths = Vec::new();
    for (kind, plan) in [("sites", &sites), ("retention", &retention)] {
        let report = plan.report();
        assert_eq!((report.objects, report.bytes), expected, "{name} {kind}");
        let path = dir.join(format!("{name}-{kind}.pb.gz"));
        let mut file = Vec::new();
        let written = plan.write_pprof(&mut file).unwrap();
        assert_eq!(written, file.len() as u64);
        std::fs::write(&path, &file).unwrap();
        let (objects, bytes, samples) = raw_totals(go, &path);
        eprintln!(
            "{name} {kind}: go tool pprof -raw reads {samples} samples, {objects} objects, \
             {bytes} bytes (the dump: {} objects, {} bytes); {} bytes gzipped; {report:?}",
            expected.0,
            expected.1,
            file.len()
        );
        assert_eq!((objects, bytes), expected, "{name} {kind}: -raw totals");
        assert_eq!(samples, report.samples, "{name} {kind}: samples");
        assert_eq!(
            folded_total(plan, CollapsedValue::Bytes),
            expected.1,
            "{name} {kind}: folded bytes"
        );
        assert_eq!(
            folded_total(plan, CollapsedValue::Objects),
            expected.0,
            "{name} {kind}: folded objects"
        );
        paths.push(path);
    }
    let retention_path = paths.pop().unwrap();
    (paths.pop().unwrap(), retention_path)
}

/// Objects and bytes of `heap` whose allocation site has a frame of
/// `function`.
pub fn allocated_under(heap: &Heap, function: &str) -> (i64, i64) {
    let dump = heap.dump();
    let mut totals = (0i64, 0i64);
    for object in &dump.objects {
        let Some(stack) = object.site.and_then(|id| dump.stack(id)) else {
            continue;
        };
        if stack
            .site_frames()
            .iter()
            .any(|frame| frame.function.as_deref() == Some(function))
        {
            totals.0 += 1;
            totals.1 += object.size as i64;
        }
    }
    totals
}
