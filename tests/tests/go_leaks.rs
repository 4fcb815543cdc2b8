//! The analyses on the committed Go sample dumps (`samples/go/dumps/`): the
//! cache map (100 entries, each an `*Entry` with a 64-byte payload) is a
//! leak suspect whose accumulation point holds every entry, and it retains
//! everything the program put in the cache.

use std::path::{Path, PathBuf};

use heapdump_analysis::leaks::{leaks, LeakOptions};
use heapdump_analysis::{analyze, DomNode};
use heapdump_reader::{DumpFile, HeapGraph};
use serde_json::Value;

fn dumps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/go/dumps")
}

fn addresses(facts: &Value, key: &str) -> Vec<u64> {
    facts[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in the facts"))
        .iter()
        .map(|value| value.as_u64().unwrap())
        .collect()
}

fn check(name: &str) {
    let facts: Value = serde_json::from_str(
        &std::fs::read_to_string(dumps().join(format!("{name}.facts.json"))).unwrap(),
    )
    .unwrap();
    let file = DumpFile::open(dumps().join(format!("{name}.godump"))).unwrap();
    let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {}).unwrap();
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let analysis = analyze(&graph);

    let node_at = |address: u64| {
        let id = graph
            .object_at(address)
            .unwrap_or_else(|| panic!("no object at {address:#x}"));
        analysis
            .node(id)
            .unwrap_or_else(|| panic!("{address:#x} is unreachable"))
    };
    let entries: Vec<DomNode> = addresses(&facts, "entry_addrs")
        .into_iter()
        .map(node_at)
        .collect();
    let payloads: Vec<DomNode> = addresses(&facts, "payload_addrs")
        .into_iter()
        .map(node_at)
        .collect();
    // The nearest common dominator of all entries: the map's storage.
    let ancestors = |node: DomNode| {
        let mut chain = vec![node];
        let mut up = analysis.idom(node);
        while let Some(node) = up {
            chain.push(node);
            up = analysis.idom(node);
        }
        chain
    };
    let mut common = ancestors(entries[0]);
    for &entry in &entries[1..] {
        let chain = ancestors(entry);
        common.retain(|node| chain.contains(node));
    }
    let map = common
        .iter()
        .copied()
        .find(|&node| !entries.contains(&node))
        .unwrap();
    assert_ne!(
        map,
        DomNode::ROOT,
        "{name}: one object dominates the whole cache"
    );
    let built: u64 = entries
        .iter()
        .chain(&payloads)
        .map(|&node| graph.object(analysis.object(node).unwrap()).unwrap().size)
        .sum();
    let retained = analysis.retained_size(map);
    assert!(
        retained >= built && retained <= built + 16 * 1024,
        "{name}: the map retains {retained} bytes; the entries and payloads are {built}"
    );

    // A suspect's accumulation point is the map or inside it, down to
    // where the entries hang.
    let report = leaks(
        &graph,
        &analysis,
        &LeakOptions {
            threshold_percent: 2.0,
            ..LeakOptions::default()
        },
    );
    let map_object = analysis.object(map).unwrap().0;
    let chain_to_entry: Vec<u32> = ancestors(entries[0])
        .into_iter()
        .filter_map(|node| analysis.object(node).map(|id| id.0))
        .collect();
    let suspect = report
        .suspects
        .iter()
        .find(|suspect| {
            let point = suspect.accumulation_point.object.id;
            chain_to_entry.contains(&point)
                && chain_to_entry.iter().position(|&id| id == point)
                    <= chain_to_entry.iter().position(|&id| id == map_object)
        })
        .unwrap_or_else(|| {
            panic!(
                "{name}: the cache among the suspects: {:#?}",
                report.suspects
            )
        });
    assert!(suspect.retained_bytes >= built);
    assert!(suspect.path.is_some());
    assert!(!suspect.summary.is_empty());
}

#[test]
fn the_go_cache_is_a_suspect_go1_19() {
    check("go1.19");
}

#[test]
fn the_go_cache_is_a_suspect_go1_26() {
    check("go1.26");
}
