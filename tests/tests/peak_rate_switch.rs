//! `stats().peak_live_bytes` when another thread switches the sample rate
//! to 1. In its own test binary: the peak is the whole process's, and the
//! tests in peak.rs expect to set it.

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const MIB: u64 = 1 << 20;

/// A thread whose sample rate another thread switches to 1 (every stack)
/// still publishes its live bytes every step: it used to count down the
/// interval it had drawn at the old rate first (here 2^40 bytes), so blocks
/// it allocated and another thread freed never reached the peak.
#[test]
fn peak_follows_a_thread_switched_to_every_stack_by_another() {
    let tolerance = 4 * MIB;
    heapdump::set_sample_rate(1 << 40);
    let (to_main, from_worker) = std::sync::mpsc::channel::<Vec<Vec<u8>>>();
    let (to_worker, from_main) = std::sync::mpsc::channel::<u64>();
    let worker = std::thread::spawn(move || {
        // The first allocation draws this thread's interval at 2^40.
        std::hint::black_box(vec![0u8; 64]);
        to_main.send(Vec::new()).unwrap();
        let blocks = from_main.recv().unwrap();
        let blocks: Vec<Vec<u8>> = (0..blocks).map(|_| vec![3u8; MIB as usize]).collect();
        to_main.send(blocks).unwrap();
        // Alive until the main thread has freed the blocks and read the peak.
        from_main.recv().unwrap();
    });
    from_worker.recv().unwrap();
    heapdump::set_sample_rate(1);
    // More than anything before, so that only these blocks can set the peak.
    let stats = heapdump::stats();
    let blocks = (stats.peak_live_bytes - stats.live_bytes) / MIB + 64;
    let target = stats.live_bytes + blocks * MIB;
    to_worker.send(blocks).unwrap();
    drop(from_worker.recv().unwrap());
    let peak = heapdump::stats().peak_live_bytes;
    to_worker.send(0).unwrap();
    worker.join().unwrap();
    heapdump::set_sample_rate(heapdump::DEFAULT_SAMPLE_RATE);
    assert!(
        peak + tolerance >= target,
        "peak {} MiB, expected about {} MiB",
        peak / MIB,
        target / MIB
    );
}
