//! Output files written whole or not at all: [`AtomicFile`].

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A file being written under a temporary name beside its final path, with
/// mode 0600 (dumps hold the service's secrets, and so do their
/// conversions). [`AtomicFile::commit`] syncs it and renames it into place;
/// dropping it uncommitted removes it, so the final path never holds a
/// partial file.
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    temp: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file for `path` in the same directory.
    pub fn create(path: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let path = path.as_ref().to_path_buf();
        let name = path
            .file_name()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: not a file name", path.display()),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut attempt = 0u32;
        loop {
            let temp = dir.join(format!(".{name}.tmp{}-{attempt}", std::process::id()));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
            {
                Ok(file) => return Ok(AtomicFile { file, temp, path }),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
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

    /// The open temporary file, to write to (through a `BufWriter`).
    pub fn file(&mut self) -> &File {
        &self.file
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the file and renames it to its final path.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.temp, &self.path).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot rename to {}: {err}", self.path.display()),
            )
        })?;
        self.temp = PathBuf::new();
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
        let dir = std::env::temp_dir().join(format!("heapdump-convert-out-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.hprof");
        let mut out = AtomicFile::create(&path).unwrap();
        out.file().write_all(b"hello").unwrap();
        assert!(!path.exists());
        out.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let other = dir.join("b.hprof");
        {
            let mut out = AtomicFile::create(&other).unwrap();
            out.file().write_all(b"partial").unwrap();
        }
        assert!(!other.exists());
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
