//! Errors about the dumped program's executables.

use std::path::PathBuf;

/// Why an executable given with a dump cannot name it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The executable could not be opened or memory-mapped.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The executable.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The executable given with the dump cannot be used.
    #[error("cannot use {} as the dumped program: {reason}", path.display())]
    BadBinary {
        /// The executable.
        path: PathBuf,
        /// Why not.
        reason: String,
    },

    /// The executable given with the dump is not the one that was dumped.
    #[error("{} does not match the dump: {reason}", path.display())]
    BinaryMismatch {
        /// The executable.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}
