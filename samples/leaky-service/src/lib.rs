//! A small service that leaks, written the way such services get written:
//! a session cache keyed by request id that nobody evicts, an `Rc` cycle
//! that keeps itself alive, and a few structures that live for the whole
//! run. The binary (`src/main.rs`) installs heapdump's tracker and writes a
//! dump when it is done, as a real service would on a signal or an admin
//! endpoint; tests run the same code in-process with their own tracker.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// Read once at start, shared by every handler.
// Fields are what a heap dump shows; this sample never reads some of them.
#[allow(dead_code)]
pub struct Config {
    service_name: String,
    upstreams: Vec<String>,
    max_body_bytes: usize,
}

/// What the cache keeps per request: the leak. Sessions are never evicted.
#[allow(dead_code)]
pub struct Session {
    request_id: u64,
    user: String,
    /// The request body, kept "for debugging".
    body: Vec<u8>,
    config: Arc<Config>,
}

impl Session {
    /// Bytes of heap the session owns: its user name and body buffers (the
    /// session itself lives inline in the cache's table).
    pub fn owned_heap_bytes(&self) -> usize {
        self.user.capacity() + self.body.capacity()
    }

    /// The request body the session keeps.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Addresses of the heap buffers the session owns (user name, body).
    pub fn buffer_addresses(&self) -> [usize; 2] {
        [self.user.as_ptr() as usize, self.body.as_ptr() as usize]
    }
}

/// A node of a graph of subscriptions; two of them point at each other, so
/// dropping the handles leaves both alive (an `Rc` cycle).
#[allow(dead_code)]
pub struct Subscription {
    topic: String,
    peer: RefCell<Option<Rc<Subscription>>>,
}

/// The service's state.
pub struct Service {
    config: Arc<Config>,
    /// The leak: grows by one entry per request, forever.
    sessions: HashMap<u64, Session>,
    /// Long-lived and bounded: a routing table built at start.
    routes: Vec<(String, usize)>,
    /// Requests handled so far.
    handled: u64,
}

impl Default for Service {
    fn default() -> Self {
        Service::new()
    }
}

impl Service {
    /// A service with its configuration and routes, and an empty cache.
    pub fn new() -> Service {
        let config = Arc::new(Config {
            service_name: "leaky-service".to_string(),
            upstreams: (0..4).map(|i| format!("10.0.0.{i}:8080")).collect(),
            max_body_bytes: 4096,
        });
        let routes = ["/login", "/logout", "/orders", "/orders/:id", "/health"]
            .iter()
            .enumerate()
            .map(|(index, path)| (path.to_string(), index))
            .collect();
        Service {
            config,
            sessions: HashMap::new(),
            routes,
            handled: 0,
        }
    }

    /// Handles one request; returns the index of its route.
    pub fn handle(&mut self, request_id: u64) -> usize {
        let body_len = 64 + (request_id as usize * 37) % 192;
        let body = vec![(request_id % 251) as u8; body_len.min(self.config.max_body_bytes)];
        let route = self.routes[request_id as usize % self.routes.len()].1;
        self.sessions.insert(
            request_id,
            Session {
                request_id,
                user: format!("user-{}", request_id % 1000),
                body,
                config: Arc::clone(&self.config),
            },
        );
        self.handled += 1;
        route
    }

    /// Handles `count` more requests, numbered on from the last.
    pub fn handle_many(&mut self, count: u64) {
        let first = self.handled;
        for request_id in first..first + count {
            std::hint::black_box(self.handle(request_id));
        }
    }

    /// The session cache.
    pub fn sessions(&self) -> &HashMap<u64, Session> {
        &self.sessions
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.config.service_name
    }

    /// Requests handled so far.
    pub fn handled(&self) -> u64 {
        self.handled
    }
}

/// Builds two subscriptions that point at each other and drops both
/// handles: the cycle keeps both alive with nothing else pointing at them.
/// Returns the addresses of the two `Rc` values (inside their allocations),
/// bitwise negated, for tests: a plain address kept in a local would be a
/// pointer to a conservative scan of the stack and keep the cycle
/// reachable. Negate again (`!address`) to use them.
#[inline(never)]
pub fn leak_a_cycle() -> [usize; 2] {
    let left = Rc::new(Subscription {
        topic: "orders".to_string(),
        peer: RefCell::new(None),
    });
    let right = Rc::new(Subscription {
        topic: "payments".to_string(),
        peer: RefCell::new(Some(Rc::clone(&left))),
    });
    *left.peer.borrow_mut() = Some(Rc::clone(&right));
    [
        !(Rc::as_ptr(&left) as usize),
        !(Rc::as_ptr(&right) as usize),
    ]
    // Both handles go out of scope here; the cycle keeps both alive.
}

/// Overwrites the stack below the caller with zeros, as the frames of later
/// requests would in a real service, so that stale copies of pointers left
/// by returned functions (such as `leak_a_cycle`'s handles) do not look
/// like live references to a conservative scan of the stack.
#[inline(never)]
pub fn scrub_stack() {
    let mut scratch = [0u8; 64 * 1024];
    std::hint::black_box(&mut scratch);
}

/// An object pool's allocation, as arenas and pools do it: one
/// `std::alloc::alloc` per value, so the allocation site names no type
/// (`heapdump` types such objects from the containers that point at
/// them). Used by the `pooled-cache` sample and the type propagation tests.
#[inline(never)]
pub fn pooled<T>(value: T) -> Box<T> {
    let layout = std::alloc::Layout::new::<T>();
    assert!(layout.size() > 0, "pooled values have a size");
    // SAFETY: the layout's size is not zero; the block is written before
    // `Box` owns it, and `Box` frees it with the same layout.
    unsafe {
        let raw = std::alloc::alloc(layout).cast::<T>();
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        raw.write(value);
        Box::from_raw(raw)
    }
}
