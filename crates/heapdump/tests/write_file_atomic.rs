//! `write_file` writes a whole dump or leaves nothing behind. This test runs
//! in its own process because it lowers the file-size limit.

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

use std::os::unix::fs::PermissionsExt;

fn leftovers(directory: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn write_file_is_whole_or_nothing() {
    let directory = std::env::temp_dir().join(format!("heapdump-atomic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("service.hdump");
    let heap: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 16 * 1024]).collect();

    // A good dump: mode 0600, and only the dump itself in the directory.
    let report = heapdump::write_file(&path).unwrap();
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!(metadata.len(), report.file_bytes);
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(leftovers(&directory), ["service.hdump"]);
    let good = std::fs::read(&path).unwrap();

    // A directory nobody can create files in (even root cannot in /proc).
    let error = heapdump::write_file("/proc/self/service.hdump").unwrap_err();
    assert!(matches!(error, heapdump::Error::File { .. }), "{error}");
    // The message names the path.
    assert!(
        error.to_string().contains("/proc/self/service.hdump"),
        "{error}"
    );

    // A dump that fails half-way (the file-size limit is hit): an error, the
    // old dump untouched, no temporary file left.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit {
            rlim_cur: 256 * 1024,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let error = heapdump::write_file(&path).unwrap_err();
    unsafe {
        let unlimited = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        libc::setrlimit(libc::RLIMIT_FSIZE, &unlimited);
    }
    assert!(error.to_string().contains("too large"), "{error}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good,
        "the old dump must be untouched"
    );
    assert_eq!(leftovers(&directory), ["service.hdump"]);

    drop(heap);
    std::fs::remove_dir_all(&directory).unwrap();
}
