//! Runs the `heapdump` binary on small dumps built with the format builder.

use std::path::PathBuf;
use std::process::{Command, Output};

use heapdump_format::builder::{DumpBuilder, Module, Params, Stats};

fn dump_path(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}.hdump"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Two objects, the first sampled and pointing at the second; a stack root
/// pointing at the first.
fn small_dump(live_objects: u64) -> Vec<u8> {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&Params {
        pid: 777,
        executable: "/srv/app",
        ..Params::default()
    })
    .unwrap();
    dump.module(&Module {
        path: "/srv/app",
        build_id: &[0xab, 0xcd],
        ..Module::default()
    })
    .unwrap();
    dump.root_thread_stack(1, "main", 0x9000, &0x1000u64.to_le_bytes())
        .unwrap();
    dump.stack(5, &[0x4010, 0x4020]).unwrap();
    dump.object(0x1000, 5, &0x2000u64.to_le_bytes()).unwrap();
    dump.object(0x2000, 0, &[0; 24]).unwrap();
    dump.stats(&Stats {
        live_bytes: 32,
        live_objects,
        ..Stats::default()
    })
    .unwrap();
    dump.finish().unwrap()
}

fn heapdump(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heapdump"))
        // Plain output whatever the caller's terminal width.
        .env_remove("COLUMNS")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn summary_prints_a_report() {
    let path = dump_path("report", &small_dump(2));
    let output = heapdump(&["summary", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let version = format!(
        "heapdump-rs 1.{} dump of pid 777 (x86_64 linux)",
        heapdump_format::VERSION_MINOR
    );
    for expected in [
        version.as_str(),
        "executable  /srv/app",
        "Modules: 1",
        "/srv/app  build-id abcd",
        "1 thread stack (8 B); 1 word pointing into objects",
        "Objects: 2 live, 32 B (32 bytes), 1 reference",
        "The dump's 2 objects and 32 bytes agree with the allocator stats.",
        "8 B in 1 object  (stack 5)",
        "0x4010",
        "not sampled: 24 B in 1 object",
        "size up to",
        "  16 B  ",
        "  32 B  ",
    ] {
        assert!(stdout.contains(expected), "{expected:?} not in:\n{stdout}");
    }
    // No progress bar when stderr is not a terminal.
    assert_eq!(text(&output.stderr), "");
}

#[test]
fn summary_reports_disagreeing_stats() {
    let path = dump_path("disagree", &small_dump(3));
    let output = heapdump(&["summary", path.to_str().unwrap()]);
    assert!(output.status.success());
    assert!(text(&output.stdout).contains("DISAGREES with the allocator stats"));
}

#[test]
fn summary_json() {
    let path = dump_path("json", &small_dump(2));
    let output = heapdump(&["summary", "--json", "--top", "1", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["info"]["format"], "heapdump-rs");
    assert_eq!(json["info"]["pid"], 777);
    assert_eq!(json["object_count"], 2);
    assert_eq!(json["live_bytes"], 32);
    assert_eq!(json["reference_count"], 1);
    assert_eq!(json["root_reference_count"], 1);
    assert_eq!(json["stats_agreement"]["objects"], true);
    assert_eq!(json["top_sites"][0]["stack_id"], 5);
    assert_eq!(json["top_sites"][0]["pcs"][1], "0x4020");
    assert_eq!(json["not_sampled"]["bytes"], 24);
    assert_eq!(json["modules"][0]["build_id"], "abcd");
}

#[test]
fn bad_dumps_are_errors_with_offsets() {
    let mut bytes = small_dump(2);
    bytes.truncate(bytes.len() - 3);
    let path = dump_path("truncated", &bytes);
    let output = heapdump(&["summary", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("heapdump: error: at byte offset "),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(text(&output.stdout), "");

    let output = heapdump(&["summary", "/nonexistent/dump.hdump"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).starts_with("heapdump: error: cannot read /nonexistent/dump.hdump: ")
    );

    let path = dump_path("not-a-dump", b"hello, world");
    let output = heapdump(&["summary", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("not a heap dump in a known format"));
}

/// A committed Go heap dump and its executable (samples/go/dumps).
fn go_sample(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples/go/dumps")
        .join(name);
    path.to_str().unwrap().to_owned()
}

#[test]
fn summary_reads_go_dumps_with_and_without_the_binary() {
    let dump = go_sample("go1.26.godump");
    let binary = go_sample("go1.26.bin");
    let output = heapdump(&["summary", &dump, &binary]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for expected in [
        "Go heap dump (go format 1.7) written by go1.26.6 (amd64, 64-bit little-endian)",
        "goroutine frame",
        "main.listHead",
        "main.cache",
        "main.Big",
        "Goroutines: ",
        "waiting: chan receive",
        "agree with HeapObjects and HeapAlloc",
        "main.main (heapdump.invalid/goheap/main.go:",
        "Top types and shapes by bytes",
        // Typed from the binary's DWARF.
        "map[int64]*main.Entry",
        "main.Entry",
    ] {
        assert!(stdout.contains(expected), "{expected:?} not in:\n{stdout}");
    }
    // Without the binary, objects keep their shapes.
    let output = heapdump(&["summary", &dump]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("obj16[_,p]"));

    let output = heapdump(&["summary", &dump, "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["info"]["format"], "go");
    assert_eq!(json["stats_agreement"]["objects"], true);
    assert!(json["goroutines"]["count"].as_u64().unwrap() >= 2);
    assert!(json["global_roots"][0]["name"]
        .as_str()
        .unwrap()
        .starts_with("data+0x"));
    assert!(json["go_memstats"]["heap_objects"].as_u64().unwrap() > 0);
    // Go's stacks come named, its roots exact: nothing to caveat.
    assert_eq!(json["caveats"], serde_json::json!([]));

    // The wrong executable is refused, not used for wrong names.
    let other = go_sample("go1.19.bin");
    let output = heapdump(&["summary", &dump, &other]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("does not match the dump"),
        "{}",
        text(&output.stderr)
    );
}

/// `--bin` names the global root a leak is held from (`main.cache`, not
/// `bss`) in `leaks`, `path` and their JSON, for both Go dumps.
#[test]
fn bin_names_global_roots_in_leaks_and_path() {
    for version in ["go1.19", "go1.26"] {
        let dump = go_sample(&format!("{version}.godump"));
        let binary = go_sample(&format!("{version}.bin"));

        let output = heapdump(&["leaks", &dump]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let unnamed = text(&output.stdout);
        assert!(!unnamed.contains("main.cache"), "{unnamed}");

        let output = heapdump(&["leaks", &dump, "--bin", &binary, "--json"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let suspect = &json["suspects"][0];
        assert_eq!(suspect["path"]["root"]["name"], "main.cache", "{version}");
        assert!(suspect["summary"]
            .as_str()
            .unwrap()
            .contains("kept alive from root main.cache (bss)"));

        let address = format!("{:#x}", suspect["object"]["address"].as_u64().unwrap());
        let output = heapdump(&["path", &dump, &address, "--bin", &binary]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stdout = text(&output.stdout);
        assert!(stdout.contains("root main.cache (bss)"), "{stdout}");
    }
    let output = heapdump(&[
        "leaks",
        &go_sample("go1.26.godump"),
        "--bin",
        &go_sample("go1.19.bin"),
    ]);
    assert!(
        !output.status.success(),
        "a binary of another program is refused"
    );
}

/// Go's converter names run the same code as `heapdump dot` and `heapdump
/// hprof`, with Go's argument order, and report errors under their own
/// names.
#[test]
fn go_converter_names_convert_and_fail_cleanly() {
    let dump = small_dump(2);
    let dump = dump_path("converters", &dump);
    let dump = dump.to_str().unwrap();

    let dot = Command::new(env!("CARGO_BIN_EXE_dumptodot"))
        .arg(dump)
        .output()
        .unwrap();
    assert!(dot.status.success(), "{}", text(&dot.stderr));
    let same = heapdump(&["dot", dump]);
    assert_eq!(text(&dot.stdout), text(&same.stdout));
    assert!(text(&dot.stdout).contains("digraph"));

    let hprof = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-converters.hprof");
    let converted = Command::new(env!("CARGO_BIN_EXE_dumptohprof"))
        .args([dump, hprof.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(converted.status.success(), "{}", text(&converted.stderr));
    let bytes = std::fs::read(&hprof).unwrap();
    assert!(bytes.starts_with(b"JAVA PROFILE 1.0.2\0"));

    let missing = Command::new(env!("CARGO_BIN_EXE_dumptodot"))
        .arg("/nonexistent/dump")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).starts_with("dumptodot: error: cannot read /nonexistent/dump"),
        "{}",
        text(&missing.stderr)
    );
}

/// Every command that reads a dump takes the same naming options: the
/// executable right after the dump (as Go's tools take it) or as `--bin`,
/// and `--no-symbols`.
#[test]
fn every_dump_reading_command_takes_the_common_options() {
    let dump = go_sample("go1.26.godump");
    let bin = go_sample("go1.26.bin");
    let out = |name: &str| {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli-common-{name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let (hprof, pprof, dot) = (out("x.hprof"), out("x.pb.gz"), out("x.dot"));
    let commands: Vec<Vec<&str>> = vec![
        vec!["summary", &dump],
        vec!["top", &dump],
        vec!["retained", &dump],
        vec!["leaks", &dump],
        vec!["waste", &dump],
        vec!["dot", &dump, "-o", &dot],
        vec!["pprof", &dump, "-o", &pprof],
    ];
    for command in &commands {
        let name = command[0];
        // The executable right after the dump, and as --bin.
        let mut positional = command.clone();
        positional.insert(2, &bin);
        let mut flag = command.clone();
        flag.extend(["--bin", &bin]);
        for args in [&positional, &flag] {
            let output = heapdump(args);
            assert!(
                output.status.success(),
                "{args:?}: {}",
                text(&output.stderr)
            );
        }
        // --no-symbols, and --bin with --no-symbols (the binary still names
        // global roots).
        let mut plain = command.clone();
        plain.push("--no-symbols");
        let output = heapdump(&plain);
        assert!(
            output.status.success(),
            "{plain:?}: {}",
            text(&output.stderr)
        );
        flag.push("--no-symbols");
        let output = heapdump(&flag);
        assert!(
            output.status.success(),
            "{flag:?}: {}",
            text(&output.stderr)
        );
        // Two different executables are refused.
        let mut both = positional.clone();
        both.extend(["--bin", "/bin/true"]);
        let output = heapdump(&both);
        assert!(!output.status.success(), "{name}");
        assert!(
            text(&output.stderr).contains("two executables given"),
            "{name}: {}",
            text(&output.stderr)
        );
    }
    // hprof: DUMP [BIN] OUT, or --bin.
    for args in [
        vec!["hprof", &dump, &bin, &hprof],
        vec!["hprof", &dump, &hprof, "--bin", &bin, "--no-symbols"],
    ] {
        let output = heapdump(&args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    // path and diff take --bin and --no-symbols.
    for args in [
        vec!["diff", &dump, &dump, "--bin", &bin, "--no-symbols"],
        vec!["path", &dump, "0x1", "--bin", &bin, "--no-symbols"],
    ] {
        let output = heapdump(&args);
        assert_ne!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn option_ranges_are_checked() {
    let dump = go_sample("go1.26.godump");
    let output = heapdump(&["retained", &dump, "--depth", "100"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("1..=64"),
        "{}",
        text(&output.stderr)
    );
    // --limit is the row count of every report.
    for command in ["summary", "top", "leaks", "diff"] {
        let mut args = vec![command, &dump];
        if command == "diff" {
            args.push(&dump);
        }
        args.extend(["--limit", "3"]);
        let output = heapdump(&args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
}

/// `leaks --fail-above` exits 3 after the report when a suspect retains
/// more, 0 otherwise; bad arguments exit 2, errors 1.
#[test]
fn exit_codes() {
    let dump = go_sample("go1.26.godump");
    let bin = go_sample("go1.26.bin");
    // The cache retains about 64% of the Go sample's reachable heap.
    let gated = heapdump(&["leaks", &dump, &bin, "--fail-above", "50"]);
    assert_eq!(gated.status.code(), Some(3), "{}", text(&gated.stderr));
    assert!(
        text(&gated.stdout).contains("main.cache"),
        "the report is printed"
    );
    assert!(
        text(&gated.stderr).contains("more than --fail-above 50%"),
        "{}",
        text(&gated.stderr)
    );
    let passed = heapdump(&["leaks", &dump, &bin, "--fail-above", "90"]);
    assert_eq!(passed.status.code(), Some(0), "{}", text(&passed.stderr));
    let usage = heapdump(&["leaks", &dump, "--fail-above", "lots"]);
    assert_eq!(usage.status.code(), Some(2));
    let missing = heapdump(&["leaks", "/nonexistent/dump"]);
    assert_eq!(missing.status.code(), Some(1));
}

/// Text reports follow the output's width: `COLUMNS` (or the terminal's)
/// cuts table rows and frames to fit; piped without it, plain output.
#[test]
fn report_widths_follow_columns() {
    let dump = go_sample("go1.26.godump");
    let bin = go_sample("go1.26.bin");
    let widest = |columns: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_heapdump"));
        command.env_remove("COLUMNS");
        if let Some(columns) = columns {
            command.env("COLUMNS", columns);
        }
        let output = command.args(["top", &dump, &bin]).output().unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        // Table rows and frames: the lines that start with spaces.
        text(&output.stdout)
            .lines()
            .filter(|line| line.starts_with("  "))
            .map(|line| line.chars().count())
            .max()
            .unwrap()
    };
    assert!(widest(None) > 80, "plain rows are wider than 80 columns");
    assert_eq!(widest(Some("80")), 80);
    assert!(widest(Some("200")) <= 200);
}
