//! Opening a dump file: a read-only memory map, so that parsing borrows the
//! file's bytes instead of copying them.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, UncheckedAdvice};

use crate::error::{Error, ErrorKind};

/// A dump file mapped into memory.
#[derive(Debug)]
pub struct DumpFile {
    path: PathBuf,
    /// `None` for an empty file, which cannot be mapped.
    map: Option<Mmap>,
}

impl DumpFile {
    /// Opens and memory-maps `path` read-only.
    ///
    /// The file must not be truncated or modified while it is mapped (as with
    /// any memory map): the dumps this reads are written once and then only
    /// read.
    pub fn open(path: impl AsRef<Path>) -> Result<DumpFile, Error> {
        let path = path.as_ref().to_path_buf();
        let io_error = |source| {
            Error::new(
                0,
                ErrorKind::Io {
                    path: path.clone(),
                    source,
                },
            )
        };
        let file = open_regular_file(&path).map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the map is read-only and private to this process. Like
            // every reader of memory-mapped files, it relies on nobody
            // truncating or rewriting the file while it is open; dump files
            // are written once and then only read.
            Some(unsafe { Mmap::map(&file) }.map_err(io_error)?)
        };
        Ok(DumpFile { path, map })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Gives back the memory of the pages read so far: they leave this
    /// process's resident set (they stay in the page cache) and are mapped
    /// again, with the same bytes, if something reads them later. For after
    /// the steps that read every object's contents (parsing, the graph
    /// build), when the reports read only a few. A hint: when the system
    /// refuses it, nothing changes.
    pub fn release_pages(&self) {
        let Some(map) = &self.map else {
            return;
        };
        // SAFETY: MADV_DONTNEED on a shared, read-only file mapping only
        // drops this process's page table entries: the next read of any
        // byte faults the page back in from the file, with the same bytes,
        // so borrowed slices of the map keep their contents. (It would not
        // be sound on a private or anonymous mapping, whose pages would read
        // back as the file's or as zeros; `Mmap::map` maps shared.)
        let _ignored = unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) };
    }
}

/// Opens `path` for reading if it is a regular file; anything else (a
/// directory, a FIFO, whose `open` would wait for a writer forever, a
/// socket, a device) is an `InvalidInput` error that says what it is.
/// Dumps and binaries are opened through it.
pub fn open_regular_file(path: &Path) -> std::io::Result<File> {
    let not_regular = |file_type: std::fs::FileType| {
        use std::os::unix::fs::FileTypeExt;
        let what = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_fifo() {
            "a FIFO (named pipe)"
        } else if file_type.is_socket() {
            "a socket"
        } else if file_type.is_block_device() || file_type.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        };
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("is {what}, not a regular file"),
        )
    };
    // Checked before opening (opening a FIFO blocks) and again on what was
    // opened (the path may have changed in between).
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(not_regular(metadata.file_type()));
    }
    let file = File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_regular(metadata.file_type()));
    }
    Ok(file)
}
