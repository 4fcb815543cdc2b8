//! `stats().peak_live_bytes`: threads publish their live bytes in steps, not
//! on every call, and the peak must still be right to within those steps.
//! In its own test binary: no other test's allocations move the peak.

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const MIB: u64 = 1 << 20;

/// The tests here measure the whole process's peak: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A 1 KiB block in a chain: a list of them has no big allocation of its own
/// (a `Vec` of blocks would free its buffer, a big block, last).
struct Node {
    bytes: [u8; 1008],
    next: Option<Box<Node>>,
}

/// Allocates `small` bytes in 1 KiB blocks and `large` bytes in 1 MiB blocks,
/// holds them until the peak is read, then frees them all, the small blocks
/// last.
fn allocate_and_free(small: u64, large: u64) -> u64 {
    let large: Vec<Vec<u8>> = (0..large / MIB).map(|_| vec![2u8; MIB as usize]).collect();
    let mut chain: Option<Box<Node>> = None;
    for _ in 0..small / 1024 {
        chain = Some(Box::new(Node {
            bytes: [1; 1008],
            next: chain,
        }));
    }
    let peak = heapdump::stats().peak_live_bytes;
    drop(large);
    // One node at a time: a recursive drop of a long chain would overflow.
    while let Some(mut node) = chain {
        std::hint::black_box(&node.bytes);
        chain = node.next.take();
    }
    peak
}

#[test]
fn peak_follows_threads_that_allocate_free_and_exit() {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    // Published steps are 256 KiB per thread; a few threads exist here.
    let tolerance = 4 * MIB;
    let before = heapdump::stats();
    let base = before.live_bytes;

    // A thread holds 96 MiB at once (64 MiB of small blocks), frees it all
    // and exits.
    let seen = std::thread::spawn(|| allocate_and_free(64 * MIB, 32 * MIB))
        .join()
        .unwrap();
    assert!(
        seen + tolerance >= base + 96 * MIB,
        "peak {seen} while {} bytes were live",
        base + 96 * MIB
    );
    let after_first = heapdump::stats();
    assert!(after_first.live_bytes < base + tolerance);

    // This thread holds 64 MiB in small blocks and frees them (small frees
    // are published in batches), then another thread holds 48 MiB: had
    // either thread's frees not been published, the shared count would
    // climb past the real peak now.
    allocate_and_free(64 * MIB, 0);
    std::thread::spawn(|| allocate_and_free(32 * MIB, 16 * MIB))
        .join()
        .unwrap();

    let peak = heapdump::stats().peak_live_bytes;
    assert!(
        peak + tolerance >= base + 96 * MIB && peak <= base + 96 * MIB + tolerance,
        "peak {} MiB, expected about {} MiB",
        peak / MIB,
        (base + 96 * MIB) / MIB
    );
}

/// One big block freed soon after, and one block grown by a big realloc:
/// each must reach the peak although nothing else is allocated meanwhile.
#[test]
fn one_big_block_reaches_the_peak() {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let tolerance = 4 * MIB;
    // Bigger than anything before, so that only this block can set the peak.
    let stats = heapdump::stats();
    let size = stats.peak_live_bytes - stats.live_bytes + 64 * MIB;
    let target = stats.live_bytes + size;

    let big = vec![1u8; size as usize];
    std::hint::black_box(&big);
    drop(big);
    let peak = heapdump::stats().peak_live_bytes;
    assert!(
        peak + tolerance >= target,
        "peak {} MiB after a {} MiB block",
        peak / MIB,
        target / MIB
    );

    let mut grown = vec![1u8; 16];
    grown.reserve_exact((size + 32 * MIB) as usize);
    std::hint::black_box(&grown);
    drop(grown);
    let peak = heapdump::stats().peak_live_bytes;
    assert!(
        peak + tolerance >= target + 32 * MIB,
        "peak {} MiB after growing a block to {} MiB",
        peak / MIB,
        (target + 32 * MIB) / MIB
    );
}
