//! Files written whole or not at all (feature `atomic-file`, needs std):
//! [`AtomicFile`], used by the writer's `heapdump::write_file` and by
//! heapdump-convert's outputs.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How many taken temporary names [`AtomicFile::create`] tries past.
const ATTEMPTS: u32 = 100;

/// A file being written under a temporary name beside its final path, with
/// mode 0600 (dumps hold the service's secrets, and so do their
/// conversions). [`AtomicFile::commit`] syncs it, renames it into place and
/// syncs the directory; dropping it uncommitted removes it, so the final
/// path never holds a partial file and nothing is left behind.
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    /// Empty once committed.
    temp: PathBuf,
    path: PathBuf,
    directory: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file for `path` in the same directory:
    /// `.<name>.tmp.<pid>-<n>`, a name no other file has (`O_EXCL`; a
    /// taken name is skipped, up to 100 times), opened close-on-exec.
    pub fn create(path: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let path = path.as_ref().to_path_buf();
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", path.display()),
            )
        })?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Unique within the process too (two threads writing the same path).
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut attempt = 0u32;
        loop {
            let mut temp_name = OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(
                ".tmp.{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let temp = directory.join(temp_name);
            // std opens every file with O_CLOEXEC.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
            {
                Ok(file) => {
                    return Ok(AtomicFile {
                        file,
                        temp,
                        path,
                        directory,
                    })
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempt < ATTEMPTS => {
                    attempt += 1;
                }
                Err(err) => {
                    return Err(io::Error::new(
                        err.kind(),
                        format!(
                            "cannot create {} (as {}): {err}",
                            path.display(),
                            temp.display()
                        ),
                    ))
                }
            }
        }
    }

    /// The open temporary file, to write to.
    pub fn file(&mut self) -> &File {
        &self.file
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the file, renames it to its final path, and syncs the
    /// directory so the rename itself is durable (a directory that cannot
    /// be opened or synced is not an error: the file is in place).
    pub fn commit(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.temp, &self.path).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot rename to {}: {err}", self.path.display()),
            )
        })?;
        self.temp = PathBuf::new();
        if let Ok(directory) = File::open(&self.directory) {
            let _ = directory.sync_all();
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn commit_renames_with_mode_0600_and_drop_leaves_nothing() {
        let dir =
            std::env::temp_dir().join(format!("heapdump-format-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.hdump");
        let mut first = AtomicFile::create(&path).unwrap();
        // A second writer of the same path gets its own temporary file.
        let mut second = AtomicFile::create(&path).unwrap();
        assert_ne!(first.temp, second.temp);
        first.file().write_all(b"first").unwrap();
        second.file().write_all(b"second").unwrap();
        assert!(!path.exists());
        drop(second);
        first.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        assert_eq!(
            AtomicFile::create(dir.join("missing/x"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            AtomicFile::create("/").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
