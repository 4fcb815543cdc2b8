//! The dot converter, checked by Graphviz: `dot -Tsvg` must lay out the
//! default view (and the focus and whole-graph views where they are small)
//! of a dump of a leaky-service-like heap and of the committed Go sample
//! dumps, without error, within the node budget.

mod oracle;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use heapdump_convert::dot::{self, View};
use heapdump_reader::{parse, DumpFile, HeapGraph};
use heapdump_symbols::RootNamer;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

#[allow(dead_code)]
struct Session {
    user: String,
    body: Vec<u8>,
}

/// Writes `view` of the dump at `path` to a file and lays it out.
fn draw(path: &Path, view: View, max_nodes: usize, name: &str) -> (dot::Report, String) {
    let file = DumpFile::open(path).unwrap();
    let dump = parse(file.bytes(), &mut |_, _| {}).unwrap();
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let analysis = heapdump_analysis::analyze(&graph);
    let options = dot::Options {
        view: view.clone(),
        max_nodes,
    };
    let mut bytes = Vec::new();
    let report = dot::write_dot(
        &graph,
        &analysis,
        &RootNamer::without_binary(),
        &options,
        &mut bytes,
    )
    .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let nodes = text
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            (line.starts_with('o') || line.starts_with('r'))
                && line.contains(" [")
                && !line.contains("->")
        })
        .count() as u64;
    assert_eq!(nodes, report.objects + report.roots, "{name}: node lines");
    if view != View::All {
        assert!(
            (report.objects + report.roots) as usize <= max_nodes,
            "{name}: {report:?} over {max_nodes} nodes"
        );
    }
    assert!(
        text.contains("legend"),
        "{name}: a legend says what was left out"
    );
    assert_eq!(
        report.objects + report.objects_left_out,
        graph.object_count() as u64,
        "{name}"
    );
    let out = oracle::temp_dir().join(format!("{name}.dot"));
    std::fs::write(&out, &text).unwrap();
    if oracle::dot().is_some() {
        let svg = oracle::dot_svg(&out);
        eprintln!("{name}: {report:?}, SVG of {svg} bytes");
    }
    (report, text)
}

#[test]
fn graphviz_lays_out_the_views() {
    // A heap like the sample service's: a cache of sessions.
    let sessions: HashMap<u64, Session> = (0..2000u64)
        .map(|id| {
            (
                id,
                Session {
                    user: format!("user-\"{id}\"\\"),
                    body: vec![id as u8; 64 + (id as usize * 37) % 192],
                },
            )
        })
        .collect();
    let dir = oracle::temp_dir();
    let path = dir.join("sessions.hdump");
    heapdump::write_file(&path).unwrap();
    std::hint::black_box(&sessions);

    let (report, text) = draw(&path, View::Retainers, 200, "rust-default");
    assert!(report.objects > 10, "{report:?}");
    assert!(report.roots > 0, "roots are drawn: {report:?}");
    assert!(text.contains("cluster"), "roots are drawn apart");
    assert!(
        text.contains("more dominated"),
        "left-out children are summarised"
    );
    let (report, _) = draw(&path, View::Retainers, 30, "rust-small");
    assert!(report.objects + report.roots <= 30);
    let address = sessions.values().next().unwrap().body.as_ptr() as u64;
    let (report, text) = draw(&path, View::Focus { address, depth: 2 }, 100, "rust-focus");
    assert!(report.objects >= 2, "{report:?}");
    assert!(text.contains(&format!("{address:#x}")));

    let go_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/go/dumps");
    let mut go_dumps: Vec<PathBuf> = std::fs::read_dir(&go_dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "godump"))
                .collect()
        })
        .unwrap_or_default();
    go_dumps.sort();
    if go_dumps.is_empty() {
        eprintln!("\nSKIPPED the Go part: no samples/go/dumps/*.godump\n");
    }
    for (index, go) in go_dumps.iter().enumerate() {
        draw(go, View::Retainers, 200, &format!("go{index}-default"));
        draw(go, View::All, 200, &format!("go{index}-all"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn focus_on_a_missing_address_is_an_error() {
    let dump = heapdump_reader::Dump::new(heapdump_reader::DumpInfo {
        format: "test",
        format_version: "1".to_owned(),
        pointer_size: 8,
        sample_rate: 1,
        ..heapdump_reader::DumpInfo::default()
    });
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let analysis = heapdump_analysis::analyze(&graph);
    let options = dot::Options {
        view: View::Focus {
            address: 0x1000,
            depth: 1,
        },
        max_nodes: 10,
    };
    let err = dot::write_dot(
        &graph,
        &analysis,
        &RootNamer::without_binary(),
        &options,
        Vec::new(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "no object holds address 0x1000");
}

/// With the binary's symbols, each Go global that holds a shown object is
/// a root node of its own, named (`main.cache`, `main.listHead`), not one
/// `bss` node for all of them; the default view stays within its budget
/// and Graphviz lays it out.
#[test]
fn go_globals_are_nodes_of_their_own() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/go/dumps");
    let file = DumpFile::open(dir.join("go1.26.godump")).unwrap();
    let binary = heapdump_symbols::Binary::open(dir.join("go1.26.bin")).unwrap();
    let dump = parse(file.bytes(), &mut |_, _| {}).unwrap();
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let namer = RootNamer::new(graph.dump(), Some(&binary)).unwrap();
    let analysis = heapdump_analysis::analyze(&graph);
    let options = dot::Options::default();
    let mut bytes = Vec::new();
    let report = dot::write_dot(&graph, &analysis, &namer, &options, &mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let root_labels: Vec<&str> = text
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('r') && line.contains(" [") && !line.contains("->"))
        .filter_map(|line| line.split("label=\"").nth(1))
        .collect();
    assert_eq!(root_labels.len() as u64, report.roots);
    assert!(
        root_labels
            .iter()
            .any(|label| label.starts_with("main.cache\\nbss")),
        "{root_labels:?}"
    );
    assert!(
        !root_labels.iter().any(|label| label.starts_with("bss\\n")),
        "no node for the whole section: {root_labels:?}"
    );
    // Named globals: no two nodes for one.
    let mut names: Vec<&str> = root_labels
        .iter()
        .map(|label| label.split("\\n").next().unwrap())
        .collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "{root_labels:?}");
    assert!((report.objects + report.roots) as usize <= options.max_nodes);
    let out = oracle::temp_dir().join("go-globals.dot");
    std::fs::write(&out, &text).unwrap();
    if oracle::dot().is_some() {
        oracle::dot_svg(&out);
    }
}
