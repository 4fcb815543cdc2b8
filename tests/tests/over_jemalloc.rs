//! `Tracker` over jemalloc instead of the system allocator: the checks of
//! `heapdump_tests::inner_allocator`.

use heapdump_tests::inner_allocator;

#[global_allocator]
static ALLOC: heapdump::Tracker<tikv_jemallocator::Jemalloc> =
    heapdump::Tracker::new(tikv_jemallocator::Jemalloc);

#[test]
fn blocks_of_every_shape_round_trip() {
    inner_allocator::blocks_of_every_shape_round_trip();
}

#[test]
fn dumps_while_threads_churn() {
    inner_allocator::dumps_while_threads_churn(20);
}

#[test]
fn forks_while_threads_allocate() {
    inner_allocator::forks_while_threads_allocate(20);
}
