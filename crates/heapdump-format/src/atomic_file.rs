//! Files written whole or not at all (feature `atomic-file`, needs std):
//! [`AtomicFile`], used by the writer's `heapdump::write_file` and by
//! heapdump-convert's outputs.

use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// How many taken temporary names [`AtomicFile::create`] tries past.
const ATTEMPTS: u32 = 100;

/// A temporary file of a dead process is removed only if it was not
/// written for this long: a process in another pid namespace (a volume
/// shared between containers) can look dead from here while it writes.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// A 64-bit value no other process can guess: std's `RandomState` keys
/// are drawn from the OS's random source, hashed with a per-process
/// counter and the time.
fn unpredictable() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    hasher.write_u128(now);
    hasher.finish()
}

/// The temporary-name prefix for the target file `name`: `.<name>.tmp.`.
fn temp_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".tmp.");
    prefix
}

/// Whether process `pid` exists (`/proc/PID`); `None` if this cannot be
/// told (no `/proc`).
fn process_exists(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(Path::new("/proc").join(pid.to_string()).exists())
}

/// Removes the temporary files for the same target left in `directory` by
/// processes that died while writing (`.<name>.tmp.<pid>-*` whose pid no
/// longer exists and which were not written for [`STALE_AFTER`]). Best
/// effort: any error leaves a file where it is.
fn remove_stale(directory: &Path, prefix: &OsStr) {
    let Ok(entries) = fs::read_dir(directory) else {
        return;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.as_bytes().strip_prefix(prefix.as_bytes()) else {
            continue;
        };
        let Some(dash) = rest.iter().position(|&byte| byte == b'-') else {
            continue;
        };
        let Some(pid) = std::str::from_utf8(&rest[..dash])
            .ok()
            .and_then(|digits| digits.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own || process_exists(pid) != Some(false) {
            continue;
        }
        // Not followed: only a regular file (what a writer leaves) goes.
        let Ok(metadata) = fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let idle = metadata
            .modified()
            .ok()
            .and_then(|modified| modified.elapsed().ok());
        if metadata.is_file() && idle.is_some_and(|idle| idle >= STALE_AFTER) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

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
    /// `.<name>.tmp.<pid>-<16 hex digits>`, the digits unpredictable (from
    /// the OS's random source, so no one can plant the name beforehand),
    /// a name no other file has (`O_EXCL`, which also refuses a symlink; a
    /// taken name is skipped, up to 100 times), opened close-on-exec. The
    /// error of a failed attempt names the temporary path. First removes
    /// the temporary files of the same target left by dead processes
    /// (whose pid no longer exists, not written for a minute).
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
        let prefix = temp_prefix(name);
        remove_stale(&directory, &prefix);
        let mut attempt = 0u32;
        loop {
            let mut temp_name = prefix.clone();
            temp_name.push(format!("{}-{:016x}", std::process::id(), unpredictable()));
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

    /// A fresh empty directory for one test.
    fn test_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "heapdump-format-atomic-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Names planted in advance (files and symlinks, as a local user could
    /// make in a shared directory such as /var/tmp) no longer block a
    /// create: with `.<name>.tmp.<pid>-<n>` for n = 0, 1, ..., every
    /// attempt met one and failed with EEXIST.
    #[test]
    fn planted_temporary_names_do_not_block_a_create() {
        let dir = test_dir("planted");
        let path = dir.join("service.hdump");
        let pid = std::process::id();
        for n in 0..1000 {
            let planted = dir.join(format!(".service.hdump.tmp.{pid}-{n}"));
            if n % 2 == 0 {
                fs::write(&planted, b"").unwrap();
            } else {
                std::os::unix::fs::symlink("/nonexistent", &planted).unwrap();
            }
        }
        let mut file = AtomicFile::create(&path).unwrap();
        let temp_name = file.temp.file_name().unwrap().to_str().unwrap().to_owned();
        let suffix = temp_name
            .strip_prefix(&format!(".service.hdump.tmp.{pid}-"))
            .unwrap();
        assert_eq!(suffix.len(), 16, "{temp_name}");
        assert!(suffix.bytes().all(|byte| byte.is_ascii_hexdigit()));
        file.file().write_all(b"dump").unwrap();
        file.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"dump");
        // An error names the temporary path it could not create.
        let error = AtomicFile::create(dir.join("missing/x")).unwrap_err();
        assert!(error.to_string().contains(".x.tmp."), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A temporary file left by a dead process for the same target is
    /// removed at the next create; one of a live process, one written a
    /// moment ago (its pid may live in another pid namespace) and one for
    /// another target are kept.
    #[test]
    fn stale_temporary_files_of_dead_processes_are_removed() {
        let dir = test_dir("stale");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert!(!Path::new(&format!("/proc/{dead}")).exists());
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let plant = |name: String, modified: SystemTime| {
            let planted = dir.join(name);
            File::create(&planted)
                .unwrap()
                .set_modified(modified)
                .unwrap();
            planted
        };
        let stale = plant(format!(".a.hdump.tmp.{dead}-0123456789abcdef"), an_hour_ago);
        let stale_old_style = plant(format!(".a.hdump.tmp.{dead}-7"), an_hour_ago);
        let live = plant(
            format!(".a.hdump.tmp.{}-0123456789abcdef", std::process::id()),
            an_hour_ago,
        );
        let init = plant(".a.hdump.tmp.1-0123456789abcdef".into(), an_hour_ago);
        let recent = plant(
            format!(".a.hdump.tmp.{dead}-fedcba9876543210"),
            SystemTime::now(),
        );
        let other_target = plant(format!(".b.hdump.tmp.{dead}-0123456789abcdef"), an_hour_ago);
        let file = AtomicFile::create(dir.join("a.hdump")).unwrap();
        assert!(!stale.exists(), "the dead process's temporary file is gone");
        assert!(!stale_old_style.exists());
        for kept in [&live, &init, &recent, &other_target] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        drop(file);
        fs::remove_dir_all(&dir).unwrap();
    }
}
