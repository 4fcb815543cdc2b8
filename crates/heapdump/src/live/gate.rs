//! The gate a dump closes (and waits behind until no thread is inside
//! the tracker), and what `fork` needs: the tracker's `pthread_atfork`
//! handlers and the child's reset.

use core::sync::atomic::{fence, AtomicBool, Ordering};

use super::{LiveSet, ThreadRecord, EMPTY_LIST, GATE_CLOSED, GATE_NEEDS_FENCE, IDLE};
use crate::sys;

impl LiveSet {
    // ----------------------------------------------------------------- gate

    /// Closes the gate and waits until no other thread is inside the
    /// tracker; the gate opens again when the guard is dropped. `own` (the
    /// dumping thread's record) is skipped. On an error the gate is open.
    pub(crate) fn close_gate(
        &self,
        own: &ThreadRecord,
        timeout: std::time::Duration,
    ) -> Result<GateClosed<'_>, GateError> {
        let gate = self.gate.fetch_or(GATE_CLOSED, Ordering::SeqCst);
        let closed = GateClosed { live: self };
        // Make the closed gate visible to every thread before reading their
        // busy words: with it, the hot path's busy store and gate load need
        // no fence of their own (an asymmetric Dekker handshake).
        if gate & GATE_NEEDS_FENCE != 0 {
            fence(Ordering::SeqCst);
        } else if !sys::membarrier() {
            // It worked when registered (a seccomp filter since?). Threads
            // fence from now on; this time, threads that passed the gate
            // without a fence may be missed, so no snapshot.
            let error = std::io::Error::last_os_error();
            self.gate.fetch_or(GATE_NEEDS_FENCE, Ordering::SeqCst);
            return Err(GateError::Barrier(error));
        }
        let deadline = std::time::Instant::now() + timeout;
        let mut all_idle = true;
        self.for_each_record(|record| {
            if core::ptr::eq(record, own) || !all_idle {
                return;
            }
            let mut spins = 0u32;
            while record.busy.load(Ordering::Acquire) != 0 {
                spins += 1;
                if spins < 100 {
                    core::hint::spin_loop();
                } else if std::time::Instant::now() < deadline {
                    sys::yield_now();
                } else {
                    all_idle = false;
                    return;
                }
            }
        });
        if all_idle {
            Ok(closed)
        } else {
            Err(GateError::Busy)
        }
    }

    /// Waits while the gate is closed. Call with the record not busy.
    #[cold]
    pub(super) fn wait_at_gate(&self) {
        loop {
            let value = self.gate.load(Ordering::Acquire);
            if value & GATE_CLOSED == 0 {
                return;
            }
            sys::futex_wait(&self.gate, value);
        }
    }
}

impl LiveSet {
    /// In a child process after `fork`: only the forking thread exists, so
    /// every other record is returned (its free list dropped: it may have
    /// been mid-update), every lock a vanished thread may have held is
    /// released and the gate is opened. `own` is the forking thread's record, if it has one.
    pub(crate) fn reset_after_fork(&self, own: *const ThreadRecord) {
        self.for_each_record(|record| {
            if core::ptr::eq(record, own) {
                return;
            }
            record.busy.store(IDLE, Ordering::Relaxed);
            // SAFETY: the record's owner does not exist in this process.
            unsafe {
                *record.free.get() = EMPTY_LIST;
                *record.fresh.get() = (0, 0);
                let pending = &mut *record.pending.get();
                for &index in &pending.indices[..pending.len] {
                    self.slot(index).store(0, Ordering::Relaxed);
                }
                pending.len = 0;
            }
            record.claimed.store(false, Ordering::Relaxed);
        });
        self.registry_lock.unlock();
        self.pool_lock.unlock();
        // Forked while another thread was writing a dump: that dump does
        // not go on in the child, so its gate must not stay closed.
        self.gate.fetch_and(!GATE_CLOSED, Ordering::Relaxed);
    }
}

/// Why the gate could not be closed.
#[derive(Debug)]
pub(crate) enum GateError {
    /// A thread stayed inside the tracker past the timeout.
    Busy,
    /// `membarrier` failed.
    Barrier(std::io::Error),
}

/// The gate, closed: no other thread touches the live set until this is
/// dropped.
pub(crate) struct GateClosed<'a> {
    live: &'a LiveSet,
}

impl GateClosed<'_> {
    /// Keeps the gate closed past this guard, until [`LiveSet::open_gate`]
    /// (for `fork`, whose handlers cannot hold a guard).
    pub(crate) fn keep_closed(self) {
        core::mem::forget(self);
    }
}

impl Drop for GateClosed<'_> {
    fn drop(&mut self) {
        self.live.open_gate();
    }
}

impl LiveSet {
    /// Opens the gate and wakes the threads waiting at it.
    pub(crate) fn open_gate(&self) {
        self.gate.fetch_and(!GATE_CLOSED, Ordering::Release);
        sys::futex_wake_all(&self.gate);
    }
}

impl LiveSet {
    /// Registers the tracker's `pthread_atfork` handlers, once. Called from
    /// the first refill, which comes after the inner allocator returned the
    /// process's first tracked block: an inner allocator that registers its
    /// own handlers when it starts (to hold its locks across a fork) has
    /// done so by then, and handlers registered later prepare first. Ours
    /// must: they wait for every thread to leave the tracker, and a thread
    /// inside the inner allocator cannot once the inner's handler holds its
    /// locks.
    pub(super) fn register_fork_handlers(&self) {
        // Once per process, whatever live set asks: the handlers act on the
        // tracker's, and registered twice they would deadlock a fork.
        static REGISTERED: AtomicBool = AtomicBool::new(false);
        if REGISTERED.swap(true, Ordering::Relaxed) {
            return;
        }
        // SAFETY: registers handlers that only take and release the
        // tracker's own locks and gate (see `tracker::before_fork`).
        unsafe {
            libc::pthread_atfork(
                Some(crate::tracker::before_fork),
                Some(crate::tracker::after_fork_in_parent),
                Some(crate::tracker::after_fork_in_child),
            )
        };
    }
}
