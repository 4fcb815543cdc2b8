//! The writer on its own: a dump of a known heap has the right counts, and
//! failures are errors, not crashes. (Reading dumps back is tested in the
//! top-level tests crate, with the reader.)

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

use std::io::Read;
use std::os::fd::AsRawFd;

#[test]
fn dump_counts_match_stats_and_failures_are_errors() {
    let boxes: Vec<Box<[u8; 100]>> = (0..1000).map(|_| Box::new([7u8; 100])).collect();
    let path = std::env::temp_dir().join(format!("writer-smoke-{}.hdump", std::process::id()));
    // The test harness's own threads may allocate between the two stats()
    // calls now and then; the writer itself never does, so one of a few
    // tries must see identical stats.
    let (before, report) = (0..5)
        .find_map(|_| {
            let file = std::fs::File::create(&path).unwrap();
            let before = heapdump::stats();
            let report = heapdump::write(&file).unwrap();
            (heapdump::stats() == before).then_some((before, report))
        })
        .expect("writing must not allocate tracked memory");
    assert_eq!(report.objects, before.live_objects);
    assert_eq!(report.object_bytes, before.live_bytes);
    assert!(report.objects >= 1001);

    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes.len() as u64, report.file_bytes);
    assert_eq!(&bytes[..12], heapdump_format::MAGIC);
    std::fs::remove_file(&path).unwrap();

    // A closed descriptor.
    let closed = std::fs::File::open("/dev/null").unwrap();
    let fd = closed.as_raw_fd();
    drop(closed);
    let error = heapdump::write_raw_fd(fd, &heapdump::Options::default()).unwrap_err();
    assert!(matches!(error, heapdump::Error::Io(_)), "{error}");

    // A pipe whose reader is gone: EPIPE, and the process lives on.
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::close(fds[0]) };
    let error = heapdump::write_raw_fd(fds[1], &heapdump::Options::default()).unwrap_err();
    assert!(error.to_string().contains("Broken pipe"), "{error}");
    unsafe { libc::close(fds[1]) };

    // A full disk: /dev/full fails every write with ENOSPC.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let error = heapdump::write(&full).unwrap_err();
    assert!(
        matches!(&error, heapdump::Error::Io(io) if io.raw_os_error() == Some(libc::ENOSPC)),
        "{error}"
    );

    // The process still allocates and dumps.
    let report = heapdump::write(std::fs::File::create("/dev/null").unwrap()).unwrap();
    assert!(report.objects >= 1001);
    drop(boxes);
}
