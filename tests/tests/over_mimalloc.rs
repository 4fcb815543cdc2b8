//! `Tracker` over mimalloc instead of the system allocator: the checks of
//! `heapdump_tests::inner_allocator`.

#[global_allocator]
static ALLOC: heapdump::Tracker<mimalloc::MiMalloc> = heapdump::Tracker::new(mimalloc::MiMalloc);

heapdump_tests::inner_allocator_tests!();
