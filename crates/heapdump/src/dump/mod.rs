//! Writing a dump: close the live set's gate, stop the other threads, then
//! stream every record of `docs/FORMAT.md` to the file descriptor; or, with
//! `Snapshot::Fork`, fork once everything is stopped, let the threads go,
//! and have the child stream the records from its copy of the process.
//!
//! Nothing here allocates through the global allocator once the gate is
//! closed: buffers are mapped with `mmap`, and the calling thread is marked
//! busy so that anything std might allocate on its behalf goes untracked to
//! the inner allocator instead of waiting at the gate.

mod encode;
mod freeze;
mod redact;

pub(crate) use freeze::write_dump;

use crate::lock::SpinLock;
use crate::Error;

/// One dump at a time.
pub(crate) static DUMP_LOCK: SpinLock = SpinLock::new();

const WORD: usize = core::mem::size_of::<usize>();

/// One live block of the snapshot.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    address: usize,
    /// Requested size in bytes.
    size: usize,
    /// Allocation-site stack id (a sampled stack or a short site), 0 if none.
    stack_id: u64,
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::Io(error)
    }
}
