//! A spin lock that never allocates, for the tracker's tables.
//!
//! The tracker runs inside the global allocator, so it cannot use a lock that
//! might allocate or park through the allocator. Hold times are a few dozen
//! nanoseconds, except while a dump is written, when waiters yield the CPU.

use core::hint::spin_loop;
use core::sync::atomic::{AtomicBool, Ordering};

pub(crate) struct SpinLock {
    locked: AtomicBool,
}

impl SpinLock {
    pub(crate) const fn new() -> SpinLock {
        SpinLock {
            locked: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) {
        let mut spins = 0u32;
        loop {
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            while self.locked.load(Ordering::Relaxed) {
                if spins < 200 {
                    spins += 1;
                    spin_loop();
                } else {
                    // Long waits happen while a dump is being written.
                    crate::sys::yield_now();
                }
            }
        }
    }

    pub(crate) fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

/// Holds a [`SpinLock`] until dropped.
pub(crate) struct SpinLockGuard<'a>(&'a SpinLock);

impl SpinLock {
    /// Locks and returns a guard that unlocks on drop.
    pub(crate) fn guard(&self) -> SpinLockGuard<'_> {
        self.lock();
        SpinLockGuard(self)
    }
}

impl Drop for SpinLockGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}
