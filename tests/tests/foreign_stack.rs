//! An allocation made while running on a stack that is not the thread's own
//! (a coroutine's, a `stacker` segment, a signal stack) must not make the
//! allocation-site walk read between that stack and the thread's stack top,
//! which may be unmapped. Found in review: the walk followed a garbage frame
//! pointer into a hole and crashed inside `malloc`.

#![cfg(target_arch = "x86_64")]

use std::arch::asm;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

extern "C" fn allocate_on_the_other_stack() {
    std::hint::black_box(Box::new([7u8; 64]));
}

#[test]
fn allocating_on_a_foreign_stack_does_not_walk_into_unmapped_memory() {
    heapdump::set_sample_rate(1);
    // Looks up this thread's stack bounds.
    std::hint::black_box(Box::new(1u64));
    const LEN: usize = 3 << 20;
    // SAFETY: a fresh private mapping; its top 2 MiB are unmapped again to
    // leave a hole above the new stack.
    let (top, hole) = unsafe {
        let region = libc::mmap(
            core::ptr::null_mut(),
            LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(region, libc::MAP_FAILED);
        let region = region as usize;
        assert_eq!(libc::munmap((region + (1 << 20)) as *mut _, 2 << 20), 0);
        (region + (1 << 20) - 64, region + (2 << 20))
    };
    // SAFETY: runs the function on the new stack with a frame pointer that
    // points into the hole (as a frame without frame pointers would leave
    // it), then restores both registers.
    unsafe {
        asm!(
            "mov r12, rsp",
            "mov r13, rbp",
            "mov rsp, {stack}",
            "mov rbp, {hole}",
            "call {function}",
            "mov rsp, r12",
            "mov rbp, r13",
            stack = in(reg) top,
            hole = in(reg) hole,
            function = sym allocate_on_the_other_stack,
            out("r12") _,
            out("r13") _,
            clobber_abi("C"),
        );
    }
    // Getting here is the test; the tracker still works.
    assert!(heapdump::stats().allocated_objects >= 2);
}
