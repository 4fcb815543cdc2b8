//! Output files written whole or not at all: [`AtomicFile`].

pub use heapdump_format::atomic_file::AtomicFile;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
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
