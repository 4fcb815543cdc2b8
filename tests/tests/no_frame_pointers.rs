//! A service built without frame pointers gets empty allocation stacks
//! and thread stacks without a frame chain; the dump says so, with the fix,
//! instead of leaving the user to wonder. The sample service is built here
//! with `-C force-frame-pointers=no` (its own target directory), run, and
//! its dump read: one `NoFramePointers` caveat. This test program itself
//! (built with frame pointers, as the workspace is) gets none.

use std::path::PathBuf;
use std::process::Command;

use heapdump_inspect::{CaveatKind, Heap, NoProgress, Options};
use heapdump_tests::{build_in_own_target, temp_path};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// Builds `leaky-service` without frame pointers; the binary's path.
fn build_without_frame_pointers() -> PathBuf {
    build_in_own_target(
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-frame-pointers"),
        "leaky-service",
        "leaky-service",
        &[("RUSTFLAGS", "-C force-frame-pointers=no")],
    )
}

#[test]
fn a_service_without_frame_pointers_is_told_so() {
    let binary = build_without_frame_pointers();
    let dump = temp_path("no-frame-pointers");
    // Every site recorded: every stack is there to be empty.
    let output = Command::new(&binary)
        .args(["--requests", "2000", "--out"])
        .arg(&dump)
        .env("HEAPDUMP_SAMPLE_RATE", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let heap = Heap::open(&dump, &Options::default(), &mut NoProgress)
        .unwrap_or_else(|error| panic!("{error}"));
    let caveats = heap.caveats();
    let caveat = caveats
        .iter()
        .find(|caveat| caveat.kind == CaveatKind::NoFramePointers)
        .unwrap_or_else(|| panic!("a caveat about frame pointers: {caveats:#?}"));
    assert!(
        caveat
            .fix
            .contains("RUSTFLAGS=\"-C force-frame-pointers=yes\""),
        "{caveat:?}"
    );
    assert!(
        caveat.message.contains("allocation stacks are empty"),
        "{caveat:?}"
    );
    assert!(caveat.message.contains("thread stacks"), "{caveat:?}");
    // The workspace builds with line tables: no caveat about names.
    assert_eq!(caveats.len(), 1, "{caveats:#?}");
    std::fs::remove_file(&dump).ok();

    // This program has frame pointers: its dump has no such caveat.
    heapdump::set_sample_rate(1);
    let boxes: Vec<Box<[u64; 4]>> = (0..100).map(|i| Box::new([i; 4])).collect();
    let own = temp_path("with-frame-pointers");
    heapdump::write_file(&own).unwrap_or_else(|error| panic!("{error}"));
    std::hint::black_box(&boxes);
    let heap = Heap::open(&own, &Options::default(), &mut NoProgress)
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(heap.caveats().is_empty(), "{:#?}", heap.caveats());
    assert!(!heap.stack_frames().is_empty());
    std::fs::remove_file(&own).ok();
}
