//! `HEAPDUMP_STOP_SIGNAL`: only a real-time signal may stop threads during a
//! dump. Any other value fails the dump with an error naming the variable
//! and the value, and takes over no signal (with 15, the service used to
//! ignore SIGTERM after its first dump; with 11, a null dereference hung).
//!
//! One test in its own program: the variable is read until a handler is
//! installed, and once installed it stays.

use std::fs::OpenOptions;

use heapdump::{Error, Options, STOP_SIGNAL_ENV};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// The handler address `signal` has now (`SIG_DFL` is 0).
fn handler_of(signal: i32) -> libc::sighandler_t {
    // SAFETY: reading the disposition only.
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        assert_eq!(libc::sigaction(signal, core::ptr::null(), &mut action), 0);
        action.sa_sigaction
    }
}

#[test]
fn only_real_time_stop_signals_are_accepted() {
    let kept: Box<[u8; 100]> = Box::new([3; 100]);
    let sink = OpenOptions::new().write(true).open("/dev/null").unwrap();
    let before = [libc::SIGTERM, libc::SIGSEGV, libc::SIGUSR1].map(handler_of);
    let below = (libc::SIGRTMIN() - 1).to_string();
    let above = (libc::SIGRTMAX() + 1).to_string();
    for bad in ["15", "11", " 10 ", "0", "-38", "SIGRTMIN+5", &below, &above] {
        std::env::set_var(STOP_SIGNAL_ENV, bad);
        let error = heapdump::write(&sink).expect_err(bad);
        assert!(
            matches!(&error, Error::BadStopSignal(value) if value == bad),
            "{bad}: {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("HEAPDUMP_STOP_SIGNAL={bad:?}")),
            "{message}"
        );
        // Said at set-up too, not only at the first signal.
        let error =
            heapdump::dump_on_signal(libc::SIGUSR2, "/tmp", Options::default()).expect_err(bad);
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
        assert!(error.to_string().contains(STOP_SIGNAL_ENV), "{error}");
        assert_eq!(
            [libc::SIGTERM, libc::SIGSEGV, libc::SIGUSR1].map(handler_of),
            before,
            "{bad}: a refused value takes over no signal"
        );
    }
    // A real-time signal is accepted, and its handler installed.
    let chosen = libc::SIGRTMIN() + 6;
    std::env::set_var(STOP_SIGNAL_ENV, chosen.to_string());
    let report = heapdump::write(&sink).unwrap();
    assert!(report.objects >= 1);
    assert_ne!(handler_of(chosen), libc::SIG_DFL);
    assert_eq!(handler_of(libc::SIGRTMIN() + 4), libc::SIG_DFL);
    drop(kept);
}
