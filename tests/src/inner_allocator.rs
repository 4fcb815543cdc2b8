//! The tracker over another allocator: the checks that `tests/over_*.rs`
//! run with `Tracker<mimalloc::MiMalloc>` and `Tracker<Jemalloc>` installed.
//!
//! Each function assumes the calling test program installed a `Tracker` as
//! its global allocator; what it checks must hold whatever allocator the
//! tracker forwards to.

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{assert_child_succeeded, read_graph, temp_path, Churn, Watchdog};

/// Held by each check: the tests of one program run on parallel threads,
/// and the counts one checks must not move with another's allocations.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A block allocated through the global allocator by hand, with the byte
/// pattern it was filled with.
struct Block {
    pointer: *mut u8,
    layout: Layout,
    seed: u8,
}

impl Block {
    fn expected(&self) -> Vec<u8> {
        (0..self.layout.size())
            .map(|index| (index as u8).wrapping_mul(7).wrapping_add(self.seed) | 1)
            .collect()
    }

    fn fill(&mut self) {
        let expected = self.expected();
        // SAFETY: the block is live and `layout.size()` bytes long.
        unsafe { std::ptr::copy_nonoverlapping(expected.as_ptr(), self.pointer, expected.len()) };
    }
}

/// Sizes from one byte to past the usual mmap thresholds, alignments from 1
/// to 64 KiB, plain and zeroed, then reallocated up and down (a move, and
/// one in place): a dump finds every block at its address with its size and
/// contents, and its counts equal `heapdump::stats()`.
pub fn blocks_of_every_shape_round_trip() {
    let _serial = one_at_a_time();
    let sizes = [1usize, 7, 16, 24, 100, 4000, 70_000, 3 << 20];
    let alignments = [1usize, 8, 16, 64, 4096, 65536];
    let mut blocks = Vec::new();
    for (index, (&size, &align)) in sizes
        .iter()
        .flat_map(|size| alignments.iter().map(move |align| (size, align)))
        .enumerate()
    {
        let layout = Layout::from_size_align(size, align).unwrap();
        let zeroed = index % 2 == 1;
        // SAFETY: a non-zero size.
        let pointer = unsafe {
            if zeroed {
                alloc_zeroed(layout)
            } else {
                alloc(layout)
            }
        };
        assert!(!pointer.is_null(), "allocating {layout:?}");
        assert_eq!(pointer as usize % align, 0, "{layout:?} is aligned");
        if zeroed {
            // SAFETY: just allocated, `size` bytes.
            let bytes = unsafe { std::slice::from_raw_parts(pointer, size) };
            assert!(bytes.iter().all(|&byte| byte == 0), "{layout:?} is zeroed");
        }
        let mut block = Block {
            pointer,
            layout,
            seed: index as u8,
        };
        block.fill();
        blocks.push(block);
    }
    // Grow every third block (past the mmap threshold for some), shrink
    // every third; contents up to the smaller size survive.
    for (index, block) in blocks.iter_mut().enumerate() {
        let new_size = match index % 3 {
            0 => block.layout.size() * 3 + 200_000,
            1 => block.layout.size().div_ceil(2),
            _ => continue,
        };
        let kept = block.expected()[..block.layout.size().min(new_size)].to_vec();
        // SAFETY: a live block with its layout; a non-zero new size.
        let moved = unsafe { realloc(block.pointer, block.layout, new_size) };
        assert!(
            !moved.is_null(),
            "reallocating {:?} to {new_size}",
            block.layout
        );
        // SAFETY: the new block holds at least `kept.len()` bytes.
        let survived = unsafe { std::slice::from_raw_parts(moved, kept.len()) };
        assert_eq!(survived, &kept[..], "realloc kept the contents");
        block.pointer = moved;
        block.layout = Layout::from_size_align(new_size, block.layout.align()).unwrap();
        block.fill();
    }

    let path = temp_path("inner-allocator-shapes");
    let file = std::fs::File::create(&path).unwrap();
    let stats = heapdump::stats();
    let report = heapdump::write(&file).unwrap();
    drop(file);
    assert_eq!(report.objects, stats.live_objects);
    assert_eq!(report.object_bytes, stats.live_bytes);
    read_graph(&path, |graph| {
        let dump = graph.dump();
        assert_eq!(dump.objects.len() as u64, stats.live_objects);
        assert_eq!(dump.live_bytes(), stats.live_bytes);
        assert_eq!(
            dump.stats.expect("a STATS record").live_bytes,
            stats.live_bytes
        );
        for block in &blocks {
            let id = graph
                .object_at(block.pointer as u64)
                .unwrap_or_else(|| panic!("no object for {:?}", block.layout));
            let object = graph.object(id).unwrap();
            assert_eq!(object.address, block.pointer as u64, "{:?}", block.layout);
            assert_eq!(object.size as usize, block.layout.size());
            assert!(
                dump.contents(object) == &block.expected()[..],
                "contents of {:?}",
                block.layout
            );
        }
    });
    std::fs::remove_file(&path).unwrap();
    let before_free = heapdump::stats();
    for block in &blocks {
        // SAFETY: live, with its layout.
        unsafe { dealloc(block.pointer, block.layout) };
    }
    let after = heapdump::stats();
    assert_eq!(
        after.live_objects + blocks.len() as u64,
        before_free.live_objects,
        "the blocks were counted freed"
    );
}

/// Two threads allocate, grow and free while `dumps` dumps are written:
/// every dump reads back with its objects apart and its counts agreeing.
pub fn dumps_while_threads_churn(dumps: usize) {
    let _serial = one_at_a_time();
    let _watchdog = Watchdog::start(Duration::from_secs(120), "dumps_while_threads_churn");
    let churn = Churn::start(2);
    let path = temp_path("inner-allocator-churn");
    for dump in 0..dumps {
        let report = heapdump::write_file(&path).unwrap();
        assert_eq!(report.threads_dumped, report.threads, "dump {dump}");
        read_graph(&path, |graph| {
            let dump = graph.dump();
            assert_eq!(dump.objects.len() as u64, report.objects);
            assert_eq!(dump.live_bytes(), report.object_bytes);
            for pair in dump.objects.windows(2) {
                assert!(pair[0].end() <= pair[1].address, "objects never overlap");
            }
        });
    }
    std::fs::remove_file(&path).unwrap();
    assert!(churn.stop() > 1000, "the workers ran");
}

/// Forks while two threads allocate: each fork returns at once (the
/// tracker's fork handler closes its gate before the inner allocator takes
/// its own locks, so it never waits out its timeout for a thread stuck in
/// the inner allocator), and each child can allocate and write a dump.
pub fn forks_while_threads_allocate(forks: usize) {
    let _serial = one_at_a_time();
    let _watchdog = Watchdog::start(Duration::from_secs(120), "forks_while_threads_allocate");
    let churn = Churn::start(2);
    // Let both workers get going.
    while churn.operations() < 10_000 {
        std::thread::yield_now();
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..forks {
        let started = Instant::now();
        // SAFETY: the child only allocates, writes a dump to /dev/null and
        // leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // A child that hangs must not outlive the test (and hold its
            // output open): it dies with it.
            // SAFETY: prctl with an integer argument.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
            let allocated: Vec<Box<u64>> = (0..1000).map(Box::new).collect();
            let code = match std::fs::OpenOptions::new().write(true).open("/dev/null") {
                Ok(sink) => match heapdump::write(&sink) {
                    Ok(report) if report.objects >= allocated.len() as u64 => 0,
                    Ok(_) => 2,
                    Err(_) => 3,
                },
                Err(_) => 4,
            };
            // SAFETY: leaving the child without running the parent's
            // destructors or test harness.
            unsafe { libc::_exit(code) };
        }
        slowest = slowest.max(started.elapsed());
        assert_child_succeeded(pid);
    }
    churn.stop();
    eprintln!("the slowest of {forks} forks took {slowest:?}");
    // The tracker's fork handler gives up waiting after 1 s; a fork that
    // took half that was waiting for it.
    assert!(
        slowest < Duration::from_millis(500),
        "the slowest of {forks} forks took {slowest:?}: the fork handler waited for a thread it \
         could not get out of the tracker"
    );
}
