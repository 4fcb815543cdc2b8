//! Dropping a `Heap` gives back everything opening it allocated: a server
//! that opens and closes dumps must not grow.

use heapdump_inspect::{Heap, NoProgress, Options};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

#[test]
fn a_dropped_heap_frees_what_it_allocated() {
    // A dump of this process (every site recorded, so that opening it
    // symbolises from DWARF and names types), and a Go dump with its binary.
    heapdump::set_sample_rate(1);
    let kept: Vec<Box<[u8; 100]>> = (0..1000).map(|_| Box::new([7; 100])).collect();
    let own = heapdump_tests::temp_path("heap-drop");
    heapdump::write_file(&own).unwrap();
    drop(kept);
    let dumps = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/go/dumps");
    let go = Options {
        binary: Some(dumps.join("go1.26.bin")),
        ..Options::default()
    };
    let open = || {
        let heap = Heap::open(&own, &Options::default(), &mut NoProgress).unwrap();
        assert!(heap.analysis().reachable_bytes() > 0);
        drop(heap);
        let heap = Heap::open(dumps.join("go1.26.godump"), &go, &mut NoProgress).unwrap();
        assert!(heap.analysis().reachable_bytes() > 0);
    };
    // The first opening starts rayon's pool and other lazily made,
    // process-wide state.
    open();
    let before = heapdump::stats().live_bytes;
    for _ in 0..5 {
        open();
    }
    let after = heapdump::stats().live_bytes;
    assert!(
        after <= before + 64 * 1024,
        "live bytes grew from {before} to {after} over five opened and dropped heaps"
    );
}
