//! The pprof converter on the committed Go sample dumps
//! (`samples/go/dumps`, Go 1.26 with its binary and Go 1.19 without),
//! checked by the real `go tool pprof`: `-raw` totals are the dump's live
//! objects and bytes, `-top` names the sample's allocating functions
//! (`main.main`, `main.holder`) with the bytes the memory profile's sites
//! give them, the retention profile's cumulative bytes at `main.cache` are
//! what `leaks` says the cache retains, and the folded stacks sum to the
//! same totals.

use std::path::PathBuf;

use heapdump_analysis::leaks::{leaks, LeakOptions};
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_tests::pprof_oracle::{allocated_under, go, top, write_and_check};

#[test]
fn go_tool_pprof_reads_both_profiles_of_go_dumps() {
    let Some(go) = go() else {
        return;
    };
    let dumps = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/go/dumps");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pprof-go");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, binary) in [("go1.26", true), ("go1.19", false)] {
        let options = Options {
            binary: binary.then(|| dumps.join(format!("{name}.bin"))),
            ..Options::default()
        };
        let heap = Heap::open(
            dumps.join(format!("{name}.godump")),
            &options,
            &mut NoProgress,
        )
        .unwrap();
        let (sites, retention) = write_and_check(&go, &heap, &dir, name);
        // The sample's allocating functions, by the memory profile's sites
        // (the runtime's own frames left out).
        let rows = top(&go, &[sites.to_str().unwrap()]);
        for function in ["main.main", "main.holder"] {
            let (_, bytes) = allocated_under(&heap, function);
            assert!(bytes > 0, "{name}: {function} allocated");
            assert_eq!(
                rows.get(function).map(|row| row.1),
                Some(bytes),
                "{name}: -top's cumulative bytes of {function}: {rows:#?}"
            );
        }
        assert!(
            rows.get("main.main").is_some_and(|row| row.0 > 0),
            "{name}: main.main allocates itself"
        );
        if binary {
            // The cache is held by the global main.cache.
            let mut report = leaks(heap.graph(), heap.analysis(), &LeakOptions::default());
            report.name_roots(heap.graph(), &heap.root_namer());
            let suspect = report
                .suspects
                .iter()
                .find(|suspect| {
                    suspect
                        .path
                        .as_ref()
                        .is_some_and(|path| path.root.name == "main.cache")
                })
                .expect("a suspect held by main.cache");
            let rows = top(&go, &["-cum", retention.to_str().unwrap()]);
            eprintln!(
                "{name} retention: main.cache: -top {:?}, leaks retains {}",
                rows.get("main.cache"),
                suspect.retained_bytes
            );
            assert_eq!(
                rows.get("main.cache").map(|row| row.1),
                Some(suspect.retained_bytes as i64),
                "{name}: cumulative bytes at main.cache"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
