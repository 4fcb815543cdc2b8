//! `Tracker` over jemalloc instead of the system allocator: the checks of
//! `heapdump_tests::inner_allocator`.

#[global_allocator]
static ALLOC: heapdump::Tracker<tikv_jemallocator::Jemalloc> =
    heapdump::Tracker::new(tikv_jemallocator::Jemalloc);

heapdump_tests::inner_allocator_tests!();
