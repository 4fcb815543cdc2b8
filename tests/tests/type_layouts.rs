//! With full debug info (`debug = 2`), type layouts from the DWARF name
//! the fields of Rust objects and carry types through them: the sample
//! `pooled-cache` (sessions and their profiles from a pool, so no site
//! names their types) is built so in its own target directory, run at the
//! default settings, and its dump read: every session is typed from the
//! cache's table, every profile from its session's `profile` field, and
//! the path from the cache to a profile names the fields on the way.

use std::path::PathBuf;
use std::process::Command;

use heapdump_analysis::paths::{path, PathOptions};
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_tests::{build_in_own_target, temp_path};

const SESSIONS: u64 = 2_000;

/// Builds `pooled-cache` with `debug = 2`; the binary's path.
fn build_with_full_debug_info() -> PathBuf {
    build_in_own_target(
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("full-debug-info"),
        "leaky-service",
        "pooled-cache",
        &[("CARGO_PROFILE_RELEASE_DEBUG", "2")],
    )
}

#[test]
fn full_debug_info_types_objects_through_fields_and_names_them() {
    let binary = build_with_full_debug_info();
    let dump = temp_path("type-layouts");
    let output = Command::new(&binary)
        .args(["--sessions", &SESSIONS.to_string(), "--out"])
        .arg(&dump)
        .env_remove("HEAPDUMP_SAMPLE_RATE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let options = Options {
        binary: Some(binary),
        ..Options::default()
    };
    let heap = Heap::open(&dump, &options, &mut NoProgress).unwrap_or_else(|e| panic!("{e}"));
    let graph = heap.graph();
    let dump_model = graph.dump();
    let count = |name: &str| {
        graph
            .objects()
            .filter(|(_, object)| {
                object
                    .type_index()
                    .and_then(|index| dump_model.type_info(index))
                    .is_some_and(|info| info.name == name)
            })
            .count() as u64
    };
    assert_eq!(count("pooled_cache::Session"), SESSIONS);
    // Only the session's layout says what its `profile` points at.
    assert_eq!(count("pooled_cache::Profile"), SESSIONS);

    // The path to a profile, with the field names of the objects on the
    // way.
    let (profile, _) = graph
        .objects()
        .find(|(_, object)| {
            object
                .type_index()
                .and_then(|index| dump_model.type_info(index))
                .is_some_and(|info| info.name == "pooled_cache::Profile")
        })
        .expect("a profile");
    let address = graph.object(profile).unwrap().address;
    let report = path(graph, heap.analysis(), address, &PathOptions::default()).unwrap();
    let first = report.paths.first().expect("a path");
    let steps: Vec<(String, Option<String>)> = first
        .steps
        .iter()
        .map(|step| (step.object.class.clone(), step.field.clone()))
        .collect();
    let session_step = steps
        .iter()
        .find(|(class, _)| class == "pooled_cache::Session")
        .unwrap_or_else(|| panic!("through a session: {steps:?}"));
    assert_eq!(session_step.1.as_deref(), Some("profile"), "{steps:?}");
    // The session's fields, and an element of a vector's buffer by index.
    let session_type = dump_model
        .types
        .iter()
        .find(|info| info.name == "pooled_cache::Session")
        .unwrap();
    let fields: Vec<&str> = session_type
        .fields
        .iter()
        .map(|field| field.name.as_str())
        .collect();
    for field in ["id", "user", "payload", "profile"] {
        assert!(fields.contains(&field), "{fields:?}");
    }
    assert_eq!(session_type.size, 64);

    // Exported to HPROF (VisualVM's class view), the session's fields keep
    // their names, and the later words of a field of several words (the
    // `String` `user`: pointer, capacity, length, in the compiler's order)
    // are named by their offset in it. The reader names the reference
    // fields: `profile`, and the buffer pointers of `user` and `payload`.
    let mut hprof = Vec::new();
    heapdump_inspect::convert::hprof::write_hprof(
        graph,
        &heap.root_namer(),
        &heapdump_inspect::convert::hprof::Options::default(),
        &mut hprof,
        &mut |_, _| {},
    )
    .unwrap();
    let exported = heapdump_inspect::reader::parse(&hprof, &mut |_, _| {}).unwrap();
    let session = exported
        .objects
        .iter()
        .find(|object| {
            object
                .type_index()
                .and_then(|index| exported.type_info(index))
                .is_some_and(|info| info.name == "pooled_cache::Session")
        })
        .expect("a session in the HPROF file");
    let exported_fields: Vec<String> = (0..8)
        .filter_map(|word| exported.field_name(session, word * 8))
        .collect();
    assert!(
        exported_fields.iter().any(|name| name == "profile"),
        "{exported_fields:?}"
    );
    for field in ["user", "payload"] {
        assert!(
            exported_fields.iter().any(|name| name.starts_with(field)),
            "{field} in {exported_fields:?}"
        );
    }
    assert!(
        !exported_fields.iter().any(|name| name.starts_with("f0x")),
        "{exported_fields:?}"
    );
    std::fs::remove_file(&dump).ok();

    // Damaged debug info is an error or fewer layouts, never a panic.
    let data = std::fs::read(options.binary.as_ref().unwrap()).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..40 {
        let mut damaged = data.clone();
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % damaged.len() as u64) as usize;
            damaged[at] ^= (seed >> 32) as u8 | 1;
        }
        let _ = heapdump_symbols::RustLayouts::read(&damaged);
    }
}
