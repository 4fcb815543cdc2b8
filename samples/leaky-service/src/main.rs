//! A small service that leaks, written the way such services get written:
//! a session cache keyed by request id that nobody evicts, an `Rc` cycle
//! that keeps itself alive, and a few structures that live for the whole
//! run. It installs heapdump's tracker and writes a dump when it is done, as
//! a real service would on a signal or an admin endpoint.
//!
//! ```text
//! leaky-service [--requests N] [--out PATH] [--redacted]
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// Read once at start, shared by every handler.
#[allow(dead_code)]
struct Config {
    service_name: String,
    upstreams: Vec<String>,
    max_body_bytes: usize,
}

/// What the cache keeps per request: the leak. Sessions are never evicted.
// Fields are what a heap dump shows; this sample never reads some of them.
#[allow(dead_code)]
struct Session {
    request_id: u64,
    user: String,
    /// The request body, kept "for debugging".
    body: Vec<u8>,
    config: Arc<Config>,
}

/// A node of a graph of subscriptions; two of them point at each other, so
/// dropping the handles leaves both alive (an `Rc` cycle).
#[allow(dead_code)]
struct Subscription {
    topic: String,
    peer: RefCell<Option<Rc<Subscription>>>,
}

struct Service {
    config: Arc<Config>,
    /// The leak: grows by one entry per request, forever.
    sessions: HashMap<u64, Session>,
    /// Long-lived and bounded: a routing table built at start.
    routes: Vec<(String, usize)>,
}

impl Service {
    fn new() -> Service {
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
        }
    }

    fn handle(&mut self, request_id: u64) -> usize {
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
        route
    }
}

fn leak_a_cycle() {
    let left = Rc::new(Subscription {
        topic: "orders".to_string(),
        peer: RefCell::new(None),
    });
    let right = Rc::new(Subscription {
        topic: "payments".to_string(),
        peer: RefCell::new(Some(Rc::clone(&left))),
    });
    *left.peer.borrow_mut() = Some(Rc::clone(&right));
    // Both handles go out of scope here; the cycle keeps both alive.
}

struct Args {
    requests: u64,
    out: String,
    redacted: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        requests: 10_000,
        out: "leaky-service.hdump".to_string(),
        redacted: false,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--requests" => {
                let value = words.next().ok_or("--requests needs a number")?;
                args.requests = value
                    .parse()
                    .map_err(|_| format!("--requests: not a number: {value}"))?;
            }
            "--out" => args.out = words.next().ok_or("--out needs a path")?,
            "--redacted" => args.redacted = true,
            "-h" | "--help" => {
                return Err("usage: leaky-service [--requests N] [--out PATH] [--redacted]".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("leaky-service: {message}");
            return ExitCode::from(2);
        }
    };
    let mut service = Service::new();
    let mut routed = [0usize; 5];
    for request_id in 0..args.requests {
        routed[service.handle(request_id)] += 1;
    }
    leak_a_cycle();

    let options = heapdump::Options {
        contents: if args.redacted {
            heapdump::ContentsMode::Redacted
        } else {
            heapdump::ContentsMode::Full
        },
    };
    match heapdump::write_file_with(&args.out, &options) {
        Ok(report) => {
            println!(
                "{}: handled {} requests ({} sessions cached, upstreams {}), wrote {} ({} objects, {} bytes live, {} sampled stacks, {} bytes)",
                service.config.service_name,
                args.requests,
                service.sessions.len(),
                service.config.upstreams.len(),
                args.out,
                report.objects,
                report.object_bytes,
                report.stacks,
                report.file_bytes,
            );
            // The service runs on after the dump in real life.
            std::hint::black_box((&service, routed));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("leaky-service: {error}");
            ExitCode::FAILURE
        }
    }
}
