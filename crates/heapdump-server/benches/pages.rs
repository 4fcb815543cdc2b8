//! Latency of every page of `heapdump serve` on synthetic dumps (the
//! analysis bench's generator): start-up (open, analyse, index), then each
//! page's median and slowest of several requests, through `App::handle`
//! (no sockets: the page's own cost).
//!
//! ```text
//! cargo bench -p heapdump-server --bench pages              # 1M objects
//! cargo bench -p heapdump-server --bench pages -- 10000000  # 10M
//! ```
//!
//! Dumps are generated once into `target/bench-dumps/` and shared with the
//! analysis bench.

#[path = "../../heapdump-analysis/benches/support/synthetic.rs"]
mod synthetic;

use std::time::{Duration, Instant};

use heapdump_inspect::analysis::DomNode;
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_server::App;

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn main() {
    let objects = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .find_map(|arg| arg.parse::<u64>().ok())
        .unwrap_or(1_000_000);
    let path = synthetic::cached(objects);

    let start = Instant::now();
    let heap = Heap::open(&path, &Options::default(), &mut NoProgress).unwrap();
    let opened = start.elapsed();
    let start = Instant::now();
    let app = App::new(heap, "synthetic");
    let indexed = start.elapsed();
    println!(
        "{objects} objects: open + analyse {:.0} ms, index for the pages (and the whole-heap flame graph) {:.0} ms",
        ms(opened),
        ms(indexed)
    );

    // Addresses to ask about: the biggest top-level object, a hub (the
    // most referred-to object), a leaf.
    let graph = app.current.heap.graph();
    let analysis = app.current.heap.analysis();
    let address_of_node = |node: DomNode| {
        analysis
            .object(node)
            .and_then(|id| graph.object(id))
            .map_or(0, |object| object.address)
    };
    let top = analysis
        .children(DomNode::ROOT)
        .first()
        .copied()
        .map_or(0, address_of_node);
    let hub = synthetic::address(0);
    let leaf = synthetic::address(objects - 1);
    let biggest_class = app
        .current
        .index
        .classes
        .by_retained
        .first()
        .and_then(|&row| app.current.index.classes.rows.get(row as usize))
        .map_or(0, |row| row.0);
    let pages = [
        "/".to_owned(),
        "/classes".to_owned(),
        "/classes?sort=count&offset=0".to_owned(),
        "/sites?sort=shallow".to_owned(),
        format!("/class/{biggest_class}"),
        format!("/class/{biggest_class}?offset=500000"),
        "/dominators".to_owned(),
        format!("/dominators/{top:#x}"),
        format!("/dominators/{top:#x}?fragment=1"),
        format!("/object/{hub:#x}"),
        format!("/object/{top:#x}"),
        format!("/object/{leaf:#x}"),
        "/flame".to_owned(),
        format!("/flame?root={top:#x}"),
        "/roots".to_owned(),
        "/root/0".to_owned(),
        "/unreachable".to_owned(),
        "/waste".to_owned(),
        "/api/summary".to_owned(),
        "/api/leaks".to_owned(),
        "/api/waste".to_owned(),
        "/api/top?limit=100".to_owned(),
        "/api/dominators?limit=100".to_owned(),
        format!("/api/object/{hub:#x}"),
        format!("/api/path/{leaf:#x}"),
        "/object/0x1".to_owned(),
    ];
    println!(
        "{:<44} {:>7} {:>9} {:>9} {:>10}",
        "page", "status", "median", "slowest", "bytes"
    );
    let mut worst = (0.0f64, String::new());
    for page in &pages {
        let mut times = Vec::new();
        let mut response = app.handle(page);
        for _ in 0..7 {
            let start = Instant::now();
            response = app.handle(page);
            times.push(ms(start.elapsed()));
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let slowest = times[times.len() - 1];
        if slowest > worst.0 {
            worst = (slowest, page.clone());
        }
        println!(
            "{page:<44} {:>7} {median:>7.3}ms {slowest:>7.3}ms {:>10}",
            response.status,
            response.body.len()
        );
    }
    println!("slowest page: {} at {:.1} ms", worst.1, worst.0);
}
