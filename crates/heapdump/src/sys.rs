//! Thin wrappers over the system calls the tracker needs. Nothing here
//! allocates through the global allocator: the tracker runs inside it.

use core::ptr;

/// Maps `len` bytes of zeroed, private, anonymous memory outside the heap.
/// Pages are committed on first touch (`MAP_NORESERVE`).
pub(crate) fn map(len: usize) -> Option<*mut u8> {
    // SAFETY: an anonymous private mapping has no preconditions; failure is
    // reported as MAP_FAILED.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        None
    } else {
        Some(addr.cast())
    }
}

/// Unmaps a region returned by [`map`].
///
/// # Safety
/// `addr` and `len` must be exactly a region returned by `map`, no longer used.
pub(crate) unsafe fn unmap(addr: *mut u8, len: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { libc::munmap(addr.cast(), len) };
}

/// An owned anonymous mapping, unmapped on drop.
pub(crate) struct Region {
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

impl Region {
    /// Maps a new zeroed region of `len` bytes (rounded up to a page).
    pub(crate) fn new(len: usize) -> Option<Region> {
        let len = len.max(1).div_ceil(4096) * 4096;
        map(len).map(|ptr| Region { ptr, len })
    }

    /// The region as a byte slice.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is ours, `len` bytes long and readable/writable.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the region came from `map` and is dropped once.
        unsafe { unmap(self.ptr, self.len) }
    }
}

/// The calling thread's `errno`, as the last failed call left it.
pub(crate) fn errno() -> i32 {
    // SAFETY: errno is thread-local and always readable.
    unsafe { *libc::__errno_location() }
}

/// Yields the processor to another thread.
pub(crate) fn yield_now() {
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
}

/// Waits on a futex while `word` holds `expected`. Returns on a wake-up,
/// a signal or a spurious wake-up: callers loop.
pub(crate) fn futex_wait(word: &core::sync::atomic::AtomicU32, expected: u32) {
    // SAFETY: a futex wait on a live atomic, with no timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes every thread waiting on the futex `word`.
pub(crate) fn futex_wake_all(word: &core::sync::atomic::AtomicU32) {
    // SAFETY: a futex wake on a live atomic.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

// membarrier(2) commands (linux/membarrier.h).
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

/// Registers the process for [`membarrier`] (Linux 4.14+); false if the
/// kernel (or a seccomp filter) does not allow it.
pub(crate) fn membarrier_register() -> bool {
    // SAFETY: membarrier takes no pointers.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
            0,
            0,
        ) == 0
    }
}

/// Runs a full memory barrier on every running thread of the process, so
/// their later loads see our earlier stores. False if it failed.
pub(crate) fn membarrier() -> bool {
    // SAFETY: membarrier takes no pointers.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 }
}

/// The calling thread's OS thread id.
pub(crate) fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

/// The calling thread's stack as `(lowest, highest)` addresses, from the C
/// library; `None` if it cannot tell.
pub(crate) fn thread_stack_bounds() -> Option<(usize, usize)> {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread; we
    // destroy it before returning. These calls use the C library's malloc,
    // never Rust's global allocator, so they cannot re-enter the tracker.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut stack_addr: *mut libc::c_void = ptr::null_mut();
        let mut stack_size: libc::size_t = 0;
        let result = libc::pthread_attr_getstack(&attr, &mut stack_addr, &mut stack_size);
        libc::pthread_attr_destroy(&mut attr);
        if result != 0 || stack_addr.is_null() {
            return None;
        }
        let low = stack_addr as usize;
        Some((low, low + stack_size))
    }
}

/// Writes all of `bytes` to `fd`, retrying on `EINTR` and partial writes,
/// waiting with `poll` when a non-blocking fd is full.
pub(crate) fn write_all(fd: i32, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable slice for its length.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if written < 0 {
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(code) if code == libc::EAGAIN || code == libc::EWOULDBLOCK => {
                    wait_writable(fd)?;
                    continue;
                }
                _ => return Err(error),
            }
        }
        if written == 0 {
            // Not `io::Error::new`: it allocates, and this runs while other
            // threads are stopped, one of them maybe holding malloc's lock.
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[written as usize..];
    }
    Ok(())
}

fn wait_writable(fd: i32) -> std::io::Result<()> {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pollfd, 1, -1) };
        if ready >= 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINTR) {
            return Err(error);
        }
    }
}

/// Blocks `SIGPIPE` on the calling thread while alive, so writing to a pipe
/// whose reader is gone returns `EPIPE` instead of killing the process; on
/// drop, discards a `SIGPIPE` raised meanwhile and restores the mask.
pub(crate) struct SigpipeBlock {
    old_mask: libc::sigset_t,
}

impl SigpipeBlock {
    pub(crate) fn new() -> SigpipeBlock {
        // SAFETY: plain signal-mask manipulation on the calling thread.
        unsafe {
            let mut block: libc::sigset_t = core::mem::zeroed();
            let mut old_mask: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut block);
            libc::sigaddset(&mut block, libc::SIGPIPE);
            libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old_mask);
            SigpipeBlock { old_mask }
        }
    }
}

impl Drop for SigpipeBlock {
    fn drop(&mut self) {
        // SAFETY: as in `new`; sigtimedwait with a zero timeout only takes a
        // pending SIGPIPE off this thread, if there is one.
        unsafe {
            let mut pipe: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut pipe);
            libc::sigaddset(&mut pipe, libc::SIGPIPE);
            let mut pending: libc::sigset_t = core::mem::zeroed();
            libc::sigpending(&mut pending);
            if libc::sigismember(&pending, libc::SIGPIPE) == 1
                && libc::sigismember(&self.old_mask, libc::SIGPIPE) == 0
            {
                let zero = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::sigtimedwait(&pipe, ptr::null_mut(), &zero);
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, ptr::null_mut());
        }
    }
}

/// The calling process's id, from the kernel: a C library that caches it
/// would give the parent's in a child forked with a bare `clone`.
/// Async-signal-safe.
pub(crate) fn process_id() -> libc::pid_t {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::syscall(libc::SYS_getpid) as libc::pid_t }
}

/// Copies `out.len()` bytes of this process's memory at `source` into
/// `out` without faulting (`process_vm_readv`): `false` if any of it is not
/// mapped (a library unloaded since its segments were listed, say). Where
/// `process_vm_readv` is refused (a sandbox), it copies plainly.
///
/// # Safety
/// If `process_vm_readv` is refused, `source` must be readable for
/// `out.len()` bytes.
pub(crate) unsafe fn read_own_memory(source: usize, out: &mut [u8]) -> bool {
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: out.len(),
    };
    let remote = libc::iovec {
        iov_base: source as *mut libc::c_void,
        iov_len: out.len(),
    };
    // SAFETY: one local iovec over `out`; the kernel checks the remote one.
    let read = unsafe { libc::process_vm_readv(process_id(), &local, 1, &remote, 1, 0) };
    if read == out.len() as isize {
        return true;
    }
    let refused = read < 0
        && matches!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ENOSYS | libc::EPERM)
        );
    if refused {
        // SAFETY: guaranteed by the caller.
        unsafe { ptr::copy_nonoverlapping(source as *const u8, out.as_mut_ptr(), out.len()) };
    }
    refused
}

/// Forks the process with the bare `clone` system call: no `pthread_atfork`
/// handlers (ours would wait for the dump that is forking), and no exit
/// signal, so a `SIGCHLD` handler of the service neither sees nor reaps the
/// child. Returns the child's pid in the parent and 0 in the child, which
/// has only the calling thread and must not allocate (another thread may
/// have held the C library's malloc lock at the fork).
pub(crate) fn fork_quietly() -> std::io::Result<libc::pid_t> {
    // SAFETY: clone with no flags (exit signal 0) and no new stack is fork;
    // the child returns here on a copy of this thread's stack.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            0 as libc::c_long,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(pid as libc::pid_t)
    }
}

/// In a forked child: asks to be killed when the forking thread ends (the
/// service died: nobody waits for the dump), and says whether `parent` is
/// still there (it may have died before the request).
pub(crate) fn die_with_parent(parent: u32) -> bool {
    // SAFETY: prctl with an integer argument; getppid has no preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        libc::getppid() as u32 == parent
    }
}

/// If `fd` is a pipe or FIFO, another descriptor of this process that reads
/// from it (open for reading on the same pipe), if there is one: a thread
/// of this process may be the pipe's reader, and a dump that stops every
/// other thread would fill the pipe and wait for it forever. Raw syscalls
/// only (`fstat`, `fcntl`, `getdents64` into a mapped buffer): no heap.
pub(crate) fn pipe_reader_in_process(fd: i32) -> Option<i32> {
    let identity = |fd: i32| {
        // SAFETY: fstat fills a zeroed stat; a bad descriptor fails.
        let mut stat: libc::stat = unsafe { core::mem::zeroed() };
        let ok = unsafe { libc::fstat(fd, &mut stat) } == 0;
        (ok && stat.st_mode & libc::S_IFMT == libc::S_IFIFO).then_some((stat.st_dev, stat.st_ino))
    };
    let pipe = identity(fd)?;
    let mut reader = None;
    crate::threads::for_each_number_in(c"/proc/self/fd", |other| {
        let Ok(other) = i32::try_from(other) else {
            return;
        };
        if reader.is_some() || other == fd || identity(other) != Some(pipe) {
            return;
        }
        // SAFETY: F_GETFL on a descriptor number; a closed one fails.
        let flags = unsafe { libc::fcntl(other, libc::F_GETFL) };
        if flags >= 0 && flags & libc::O_ACCMODE != libc::O_WRONLY {
            reader = Some(other);
        }
    })?;
    reader
}

/// In a forked child that writes a dump to `keep`: closes every other
/// descriptor (the service's sockets and files must close when the service
/// closes them, not when the dump is done), makes the child the OOM
/// killer's first choice rather than the service, and restores the default
/// action of the signals that report a crash (a crash in the child ends it,
/// without running the service's crash reporter).
pub(crate) fn become_dump_child(keep: i32) {
    let keep = keep.max(0) as libc::c_uint;
    // SAFETY: closing descriptors of this (child) process only.
    unsafe {
        let closed_low =
            keep == 0 || libc::syscall(libc::SYS_close_range, 0 as libc::c_uint, keep - 1, 0) == 0;
        let closed_high = libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0) == 0;
        if !(closed_low && closed_high) {
            // No close_range (Linux before 5.9): one by one.
            let mut limit: libc::rlimit = core::mem::zeroed();
            let highest = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(1 << 20) as libc::c_uint
            } else {
                1024
            };
            for fd in (0..highest).filter(|&fd| fd != keep) {
                libc::close(fd as i32);
            }
        }
    }
    // SAFETY: a NUL-terminated path; writing a short string.
    unsafe {
        let fd = libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            libc::write(fd, b"1000".as_ptr().cast(), 4);
            libc::close(fd);
        }
    }
    for signal in [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGABRT,
    ] {
        // SAFETY: restoring a default disposition.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
}

/// Waits for the child `pid` of [`fork_quietly`] to end; its wait status.
pub(crate) fn wait_for_child(pid: libc::pid_t) -> std::io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; `__WALL` because it has no
        // exit signal.
        let waited = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if waited == pid {
            return Ok(status);
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINTR) {
            return Err(error);
        }
    }
}

/// Leaves the process at once, without destructors or `atexit` handlers.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions.
    unsafe { libc::_exit(code) }
}

/// One page of memory shared with child processes forked after it is made
/// (anonymous, `MAP_SHARED`), holding a `T`: how a child hands back a result.
pub(crate) struct SharedPage<T: Copy> {
    ptr: *mut T,
}

impl<T: Copy> SharedPage<T> {
    /// Maps a page holding `value`.
    pub(crate) fn new(value: T) -> Option<SharedPage<T>> {
        const { assert!(core::mem::size_of::<T>() <= 4096) };
        // SAFETY: an anonymous shared mapping has no preconditions.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return None;
        }
        let ptr = addr.cast::<T>();
        // SAFETY: a fresh page, page-aligned, large enough for `T`.
        unsafe { ptr.write_volatile(value) };
        Some(SharedPage { ptr })
    }

    /// Stores `value` (volatile: another process reads it).
    pub(crate) fn set(&self, value: T) {
        // SAFETY: the page is mapped while `self` lives.
        unsafe { self.ptr.write_volatile(value) }
    }

    /// The value stored last, by this process or a child.
    pub(crate) fn get(&self) -> T {
        // SAFETY: as in `set`.
        unsafe { self.ptr.read_volatile() }
    }
}

impl<T: Copy> Drop for SharedPage<T> {
    fn drop(&mut self) {
        // SAFETY: the page was mapped by `new`.
        unsafe { libc::munmap(self.ptr.cast(), 4096) };
    }
}
