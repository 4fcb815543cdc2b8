//! `Tracker` over an allocator that, like many, sets up its fork handling
//! at its first allocation: a `pthread_atfork` prepare handler that takes
//! the lock every allocation takes. The tracker's own prepare handler must
//! run before it (handlers run in the reverse order of registration), or it
//! waits out its timeout for a thread blocked on that lock inside the
//! tracker.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Once;

/// The system allocator behind one pthread mutex, with fork handlers that
/// hold the mutex across a fork (as jemalloc's and tcmalloc's do with their
/// arena locks), registered at the first allocation.
struct LazyLockedAlloc;

static mut LOCK: libc::pthread_mutex_t = libc::PTHREAD_MUTEX_INITIALIZER;
static SET_UP: Once = Once::new();

extern "C" fn lock() {
    // SAFETY: an initialised process-wide mutex.
    unsafe { libc::pthread_mutex_lock(&raw mut LOCK) };
}

extern "C" fn unlock() {
    // SAFETY: locked by `lock` in the prepare handler, on this thread.
    unsafe { libc::pthread_mutex_unlock(&raw mut LOCK) };
}

impl LazyLockedAlloc {
    fn locked<T>(&self, call: impl FnOnce() -> T) -> T {
        SET_UP.call_once(|| {
            // SAFETY: handlers that only lock and unlock `LOCK`.
            unsafe { libc::pthread_atfork(Some(lock), Some(unlock), Some(unlock)) };
        });
        lock();
        let result = call();
        unlock();
        result
    }
}

// SAFETY: forwards to `System` under a lock.
unsafe impl GlobalAlloc for LazyLockedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        self.locked(|| unsafe { System.alloc(layout) })
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        self.locked(|| unsafe { System.dealloc(block, layout) })
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        self.locked(|| unsafe { System.realloc(block, layout, new_size) })
    }
}

#[global_allocator]
static ALLOC: heapdump::Tracker<LazyLockedAlloc> = heapdump::Tracker::new(LazyLockedAlloc);

heapdump_tests::inner_allocator_tests!();
