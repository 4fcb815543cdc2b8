//! Async fns and closures are named with their enclosing function
//! (`async_names::svc::login::{async_fn#0}`, `…::make_sessions::{closure#0}`),
//! as the program's source has them, not as a bare `{async_fn#0}` in a
//! module: a report's site must say which handler allocated.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_tests::temp_path;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

#[allow(dead_code)]
pub struct Session {
    id: u64,
    scores: [u64; 6],
}

/// A future that is pending once, as a handler waiting on I/O is.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

pub mod svc {
    use super::*;

    /// An async handler that allocates the session after an await.
    pub async fn login(id: u64) -> Box<Session> {
        YieldOnce(false).await;
        Box::new(Session {
            id: black_box(id),
            scores: [id; 6],
        })
    }
}

/// Runs a future to completion on this thread.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

// Each session its own allocation: what the site must count.
#[allow(clippy::vec_box)]
#[inline(never)]
fn make_sessions(count: u64) -> Vec<Box<Session>> {
    (0..count)
        .map(|id| {
            Box::new(Session {
                id: black_box(id),
                scores: [id; 6],
            })
        })
        .collect()
}

/// The functions of the program's frames of the site of the object at
/// `address`.
fn site_functions(heap: &Heap, address: usize) -> Vec<String> {
    let graph = heap.graph();
    let object = graph
        .object(graph.object_at(address as u64).expect("the object"))
        .unwrap();
    let stack = graph
        .dump()
        .stack(object.site.expect("a site"))
        .expect("the stack");
    stack
        .site_frames()
        .iter()
        .filter_map(|frame| frame.function.as_deref().map(str::to_owned))
        .collect()
}

#[test]
fn async_fns_and_closures_are_named_with_their_function() {
    heapdump::set_sample_rate(1);
    let logged_in = block_on(svc::login(7));
    let made = make_sessions(3);
    let path = temp_path("async-names");
    heapdump::write_file(&path).unwrap_or_else(|error| panic!("{error}"));
    let options = Options {
        binary: Some(std::env::current_exe().unwrap()),
        ..Options::default()
    };
    let heap = Heap::open(&path, &options, &mut NoProgress).unwrap_or_else(|e| panic!("{e}"));

    let functions = site_functions(&heap, &*logged_in as *const Session as usize);
    assert!(
        functions
            .iter()
            .any(|name| name.starts_with("async_names::svc::login::{async_fn#0}")),
        "{functions:#?}"
    );
    assert!(
        !functions
            .iter()
            .any(|name| name.starts_with("async_names::svc::{async_fn")),
        "{functions:#?}"
    );
    let functions = site_functions(&heap, &*made[1] as *const Session as usize);
    assert!(
        functions
            .iter()
            .any(|name| name.starts_with("async_names::make_sessions::{closure#0}")),
        "{functions:#?}"
    );
    black_box((&logged_in, &made));
    std::fs::remove_file(&path).ok();
}
