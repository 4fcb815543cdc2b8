//! Runs the analysis subcommands (`top`, `retained`, `leaks`, `path`,
//! `diff`) on small dumps built with the format builder.

use std::path::PathBuf;
use std::process::{Command, Output};

use heapdump_format::builder::{DumpBuilder, Module, Params};
use heapdump_inspect::reader::SiteId;

const BASE: u64 = 0x10_0000;
/// The cache's table, above the entries.
const TABLE: u64 = 0x90_0000;

fn address(index: u64) -> u64 {
    BASE + 0x100 * index
}

/// A cache (a table at TABLE) holding `entries` entries of 48 bytes, each allocated
/// at site 9, held by a stack root; plus a 2-object cycle nothing holds.
fn cache_dump(entries: u64) -> Vec<u8> {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&Params {
        pid: 99,
        ..Params::default()
    })
    .unwrap();
    dump.module(&Module::default()).unwrap();
    dump.root_thread_stack(1, "main", 0x7fff_0000, &TABLE.to_le_bytes())
        .unwrap();
    dump.stack(9, &[0x4010, 0x4020]).unwrap();
    dump.stack(10, &[0x5010]).unwrap();
    let table: Vec<u8> = (1..=entries)
        .flat_map(|i| address(i).to_le_bytes())
        .collect();
    dump.object(TABLE, 10, &table).unwrap();
    for i in 1..=entries {
        dump.object(address(i), 9, &[1; 48]).unwrap();
    }
    let (a, b) = (address(entries + 1), address(entries + 2));
    dump.object(a, 10, &b.to_le_bytes()).unwrap();
    dump.object(b, 10, &a.to_le_bytes()).unwrap();
    dump.finish().unwrap()
}

/// How reports name the site of stack 9 (`0x4010`, `0x4020`) and of
/// stack 10 (`0x5010`): by the id of their frames, not the stack id.
fn site_label(pcs: &[&str]) -> String {
    let key: Vec<String> = pcs.iter().map(|pc| pc.to_string()).collect();
    format!("site {}", SiteId::of(&key).short())
}

fn site_9() -> String {
    site_label(&["0x4010", "0x4020"])
}

fn site_10() -> String {
    site_label(&["0x5010"])
}

fn dump_path(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("analyses-{name}.hdump"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn heapdump(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heapdump"))
        // Plain output whatever the caller's terminal width.
        .env_remove("COLUMNS")
        .args(args)
        .output()
        .unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let output = heapdump(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "no progress bar off a terminal"
    );
    String::from_utf8(output.stdout).unwrap()
}

fn contains_all(text: &str, expected: &[&str]) {
    for needle in expected {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

#[test]
fn leaks_names_the_cache_and_the_cycle() {
    let path = dump_path("leaks", &cache_dump(100));
    let path = path.to_str().unwrap();
    let text = run_ok(&["leaks", path]);
    contains_all(
        &text,
        &[
            "Roots: 1 thread stack (8 B)",
            "Suspect 1: one object retains",
            format!("0x900000 (800 B, 513..1024 B, {})", site_10()).as_str(),
            "accumulation point:  the object itself",
            "it holds directly:   100 objects",
            format!("100 retaining   4.69 KiB  {}", site_9()).as_str(),
            "root thread 1 \"main\" stack (thread stack) [word +0x0 at 0x7fff0000] ->",
            format!("allocation site of the object ({}, stack 10):", site_10()).as_str(),
            "0x5010",
            "Unreachable: 16 B in 2 objects",
            "unreachable, held only by a cycle",
        ],
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&["leaks", path, "--json"])).unwrap();
    assert_eq!(json["suspects"][0]["object"]["address"], TABLE);
    assert_eq!(json["suspects"][0]["retained_bytes"], 800 + 100 * 48);
    assert_eq!(json["unreachable"]["objects"], 2);
}

#[test]
fn top_retained_and_path() {
    let path = dump_path("top", &cache_dump(10));
    let path = path.to_str().unwrap();
    contains_all(
        &run_ok(&["top", path]),
        &[
            "Caveat: the program was built without frame pointers: 2 of 2 allocation stacks are \
             empty or end within 2 frames",
            "fix: rebuild with RUSTFLAGS=\"-C force-frame-pointers=yes\"",
            "By class",
            "33..64 B",
            "By allocation site",
            site_9().as_str(),
            "      0x4010\n      0x4020\n",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&run_ok(&["top", path, "--json"])).unwrap();
    assert_eq!(json["objects"], 13);
    // Stacks of one and two return addresses: a program without frame
    // pointers, said in every report, with the fix.
    assert_eq!(json["caveats"][0]["kind"], "no_frame_pointers");
    assert!(json["caveats"][0]["fix"]
        .as_str()
        .unwrap()
        .contains("force-frame-pointers=yes"));
    assert_eq!(json["by_site"][0]["label"], site_label(&["0x5010"]));
    assert_eq!(json["by_site"][0]["stack_id"], 10);
    assert_eq!(
        json["by_site"][0]["site_id"].as_str().map(str::len),
        Some(16)
    );
    assert_eq!(json["by_site"][0]["retained_bytes"], 80 + 10 * 48);

    contains_all(
        &run_ok(&["retained", path, "--min-percent", "0"]),
        &[
            "Caveat: the program was built without frame pointers",
            "Reachable from the roots: 11 objects",
            "dominates 11 objects",
            "dominates 1 object",
        ],
    );
    serde_json::from_str::<serde_json::Value>(&run_ok(&["retained", path, "--json"])).unwrap();

    let entry = format!("{:#x}", address(3) + 5);
    contains_all(
        &run_ok(&["path", path, &entry]),
        &[
            format!("is 5 bytes into 0x100300 (48 B, 33..64 B, {})", site_9()).as_str(),
            "Dominators (freeing any of these frees it), from the top:",
            format!("0x900000 (80 B, 65..128 B, {})  [word +0x10] ->", site_10()).as_str(),
        ],
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&["path", path, &address(3).to_string(), "--json"])).unwrap();
    assert_eq!(json["paths"][0]["steps"][0]["field_offset"], 16);

    let output = heapdump(&["path", path, "0x10"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("no object in the dump holds address 0x10"));
    let output = heapdump(&["path", path, "zebra"]);
    assert!(!output.status.success());
}

#[test]
fn diff_shows_the_growth_and_its_holder() {
    let old = dump_path("diff-old", &cache_dump(10));
    let new = dump_path("diff-new", &cache_dump(25));
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    contains_all(
        &run_ok(&["diff", old, new]),
        &[
            "Growth by allocation site:",
            site_9().as_str(),
            "+15",
            "+720 B",
            format!(
                "{} grew by 15 objects (+720 B); in NEW it is held by:",
                site_9()
            )
            .as_str(),
            "25 of them (1.17 KiB) under 0x900000",
        ],
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&["diff", old, new, "--json"])).unwrap();
    assert_eq!(json["same_process"], true);
}

/// `waste`: the cache's entries hold equal bytes (48 bytes of 1), one
/// group of copies held from the table; the unreachable cycle is left out.
#[test]
fn waste_groups_equal_entries() {
    let path = dump_path("waste", &cache_dump(30));
    let path = path.to_str().unwrap();
    contains_all(
        &run_ok(&["waste", path]),
        &[
            "Duplicate values (objects without references, equal contents): 1 group, 29 extra \
             copies, 1.36 KiB wasted",
            "obj48[?]",
            "01 01 01",
            "held by obj240[?] (30)",
            "Collections: none the dump names",
        ],
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&["waste", path, "--json", "--limit", "1"])).unwrap();
    let row = &json["values"]["rows"][0];
    assert_eq!(row["count"], 30);
    assert_eq!(row["size"], 48);
    assert_eq!(row["wasted_bytes"], 29 * 48);
    assert_eq!(row["referrers"][0]["count"], 30);
    assert_eq!(json["strings"]["groups"], 0);
}

/// A linked list of `length` 32-byte nodes (each pointing at the next
/// with its first word), held by a stack root.
fn list_dump(length: u64) -> Vec<u8> {
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&Params::default()).unwrap();
    dump.module(&Module::default()).unwrap();
    dump.root_thread_stack(1, "main", 0x7fff_0000, &address(0).to_le_bytes())
        .unwrap();
    dump.stack(9, &[0x4010]).unwrap();
    for i in 0..length {
        let mut node = [0u8; 32];
        if i + 1 < length {
            node[..8].copy_from_slice(&address(i + 1).to_le_bytes());
        }
        dump.object(address(i), 9, &node).unwrap();
    }
    dump.finish().unwrap()
}

#[test]
fn long_paths_keep_their_ends() {
    let path = dump_path("list", &list_dump(1000));
    let path = path.to_str().unwrap();
    let last = format!("{:#x}", address(999));
    let text = run_ok(&["path", path, &last]);
    // 16 objects, the omitted ones in one line, 16 objects, and the
    // dominators the same way: not a thousand lines.
    assert!(text.lines().count() < 90, "{text}");
    contains_all(
        &text,
        &[
            "Path 1 (1,000 objects):",
            "... 968 more objects (968 17..32 B) ->",
            "... 967 more objects (967 17..32 B)",
            &format!("{:#x} (32 B", address(15)),
            &format!("{:#x} (32 B", address(984)),
        ],
    );
    assert!(
        !text.contains(&format!("{:#x} (32 B", address(16))),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&["path", path, &last, "--json"])).unwrap();
    let found = &json["paths"][0];
    assert_eq!(found["steps"].as_array().unwrap().len(), 32);
    assert_eq!(found["omitted"]["at"], 16);
    assert_eq!(found["omitted"]["objects"], 968);
    assert_eq!(found["omitted"]["classes"][0]["class"], "17..32 B");
    assert_eq!(json["dominators_omitted"]["objects"], 967);

    let text = run_ok(&["leaks", path]);
    contains_all(
        &text,
        &["through a chain of", "more objects (", "levels down"],
    );
    assert!(text.lines().count() < 120, "{text}");
}

/// The summary names the field holding a suspect even when the suspect
/// sits in the middle of a long path, which the report leaves out: two
/// stack words hold chains of 40 and 45 nodes that both end at the
/// suspect, which holds a chain of 14 nodes down to a 64 KiB block: the
/// path's last 16 objects start at the suspect, its holder is left out.
/// Read back from HPROF, where fields have names (`f0x0`).
#[test]
fn a_suspect_in_a_long_paths_middle_is_named_by_its_holder() {
    const SHORT: u64 = 40;
    const LONG: u64 = 45;
    const BELOW: u64 = 14;
    let suspect = address(SHORT + LONG);
    let block = 0x80_0000;
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&Params::default()).unwrap();
    dump.module(&Module::default()).unwrap();
    let roots: Vec<u8> = [address(0), address(SHORT)]
        .iter()
        .flat_map(|word| word.to_le_bytes())
        .collect();
    dump.root_thread_stack(1, "main", 0x7fff_0000, &roots)
        .unwrap();
    dump.stack(9, &[0x4010]).unwrap();
    // Node i points at node i + 1; each chain's last node at the suspect;
    // the chain below the suspect ends at the block.
    let node = |next: u64| {
        let mut node = [0u8; 32];
        node[..8].copy_from_slice(&next.to_le_bytes());
        node
    };
    for i in 0..SHORT + LONG + 1 + BELOW {
        let next = match i {
            i if i + 1 == SHORT || i + 1 == SHORT + LONG => suspect,
            i if i + 1 == SHORT + LONG + 1 + BELOW => block,
            i => address(i + 1),
        };
        dump.object(address(i), 9, &node(next)).unwrap();
    }
    dump.object(block, 9, &[7; 64 << 10]).unwrap();
    let dump = dump_path("suspect-mid-path", &dump.finish().unwrap());
    let hprof = dump.with_extension("hprof");
    let converted = heapdump(&["hprof", dump.to_str().unwrap(), hprof.to_str().unwrap()]);
    assert!(converted.status.success(), "{converted:?}");

    let text = run_ok(&["leaks", hprof.to_str().unwrap()]);
    contains_all(&text, &["... 24 more objects ("]);
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&["leaks", hprof.to_str().unwrap(), "--json"])).unwrap();
    let found = &json["suspects"][0];
    assert_eq!(found["object"]["address"], suspect, "{text}");
    assert_eq!(found["held_by"], "f0x0", "{text}");
    let summary = found["summary"].as_str().unwrap();
    assert!(
        summary.ends_with("through a chain of 56 objects, held by f0x0."),
        "{summary}"
    );
    // The holder, the short chain's last node, is not among the steps shown.
    let steps = found["path"]["steps"].as_array().unwrap();
    let shown = |address: u64| {
        steps
            .iter()
            .any(|step| step["object"]["address"] == address)
    };
    assert!(shown(suspect) && !shown(address(SHORT - 1)), "{text}");
}
