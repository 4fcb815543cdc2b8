//! The heap in a browser: server-rendered HTML pages and a JSON API over an
//! opened heap dump ([`heapdump_inspect::Heap`]), for `heapdump serve`.
//!
//! [`App`] holds the heap (or two, for the diff view) and an [`Index`] of
//! what the pages need, computed once at start-up; [`App::handle`] answers
//! one request (a pure function of the URL, which the tests and the bench
//! call directly); [`start`] serves an `App` over HTTP on worker threads
//! (tiny_http).
//!
//! Pages (stable URLs): `/` (overview and leak suspects), `/classes` and
//! `/sites` (histograms, `?sort=retained|shallow|count`, paged),
//! `/class/N` and `/site/N` (a group's objects), `/dominators` and
//! `/dominators/0xADDR` (the dominator tree, children on demand),
//! `/object/0xADDR`, `/roots`, `/root/N`, `/unreachable`, `/flame`
//! (`?root=0xADDR`), `/diff`. JSON: `/api/summary`, `/api/leaks`,
//! `/api/top`, `/api/dominators[/0xADDR]`, `/api/object/0xADDR`,
//! `/api/path/0xADDR`, `/api/unreachable`, `/api/diff`, `/api/caveats`
//! (what the dump cannot answer, with the fix; the CLI puts them in each
//! report as `caveats`): the shapes of the
//! CLI's `--json` where the CLI has the report.
//!
//! Every list is paged or bounded; every text from the dump is escaped; a
//! bad URL is a 400 or 404 page, never a panic.

#![warn(missing_docs)]

mod api;
mod flame;
pub mod html;
pub mod index;
mod pages;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use heapdump_inspect::analysis::diff::{diff, DiffOptions, DiffReport};
use heapdump_inspect::Heap;

pub use index::Index;

/// Longest request target (path and query) accepted.
pub const MAX_URL: usize = 2048;

/// Most rows a page or API call returns.
pub const MAX_LIMIT: usize = 1000;

/// One opened heap and its index.
#[derive(Debug)]
pub struct Served {
    /// The heap.
    pub heap: Heap,
    /// What the pages need, precomputed.
    pub index: Index,
    /// How the pages name it (the file name).
    pub name: String,
    /// The `/flame` page of the whole heap, drawn once.
    flame: std::sync::OnceLock<Result<String, Failure>>,
}

impl Served {
    /// Indexes `heap` (opened with the analyses), named `name`.
    pub fn new(heap: Heap, name: impl Into<String>) -> Served {
        let index = Index::build(&heap);
        Served {
            heap,
            index,
            name: name.into(),
            flame: std::sync::OnceLock::new(),
        }
    }
}

/// What the server shows: one heap, or two with what grew between them
/// (every page but `/diff` then shows the newer one).
#[derive(Debug)]
pub struct App {
    /// The heap the pages show (the newer one in a diff).
    pub current: Served,
    /// The older heap of a diff.
    pub old: Option<Served>,
    /// What grew from `old` to `current`.
    pub diff: Option<DiffReport>,
    /// Whether any `Host` header is accepted (the server listens on a
    /// non-loopback address); otherwise only loopback names, against DNS
    /// rebinding.
    pub any_host: bool,
}

impl App {
    /// Serves one heap (opened with the analyses).
    pub fn new(heap: Heap, name: impl Into<String>) -> App {
        App {
            current: Served::new(heap, name),
            old: None,
            diff: None,
            any_host: false,
        }
        .warmed()
    }

    /// Draws the pages kept after their first request (`/flame`).
    fn warmed(self) -> App {
        let _ = self.handle("/flame");
        self
    }

    /// Serves `new`, with the diff from `old`.
    pub fn with_diff(
        old: Heap,
        old_name: impl Into<String>,
        new: Heap,
        new_name: impl Into<String>,
    ) -> App {
        let mut report = diff(
            (old.graph(), old.analysis()),
            (new.graph(), new.analysis()),
            &DiffOptions::default(),
        );
        let namer = new.root_namer();
        for grower in &mut report.growers {
            for retainer in &mut grower.retainers {
                if let Some(path) = &mut retainer.path {
                    path.name_root(new.graph(), &namer);
                }
            }
        }
        App {
            current: Served::new(new, new_name),
            old: Some(Served::new(old, old_name)),
            diff: Some(report),
            any_host: false,
        }
        .warmed()
    }

    /// Answers a GET of `target` (path and query). Never panics on any
    /// input.
    pub fn handle(&self, target: &str) -> Response {
        if target.len() > MAX_URL {
            return Response::error(400, "The address is too long.", false);
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let api = path.starts_with("/api/");
        let query = match Query::parse(query) {
            Ok(query) => query,
            Err(message) => return Response::error(400, &message, api),
        };
        let result = if api {
            api::route(self, path, &query)
        } else {
            pages::route(self, path, &query)
        };
        result.unwrap_or_else(|(status, message)| Response::error(status, &message, api))
    }
}

/// A request's failure: status and message.
pub type Failure = (u16, String);

/// An answer: status, content type, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A 200 HTML page.
    pub fn html(body: String) -> Response {
        Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
        }
    }

    /// A 200 JSON document.
    pub fn json<T: serde::Serialize>(value: &T) -> Response {
        match serde_json::to_vec_pretty(value) {
            Ok(body) => Response {
                status: 200,
                content_type: "application/json",
                body,
            },
            Err(err) => Response::error(500, &err.to_string(), true),
        }
    }

    /// An error page (or JSON `{"error": …}` for the API).
    pub fn error(status: u16, message: &str, json: bool) -> Response {
        if json {
            let body = serde_json::json!({ "status": status, "error": message });
            return Response {
                status,
                content_type: "application/json",
                body: serde_json::to_vec_pretty(&body).unwrap_or_default(),
            };
        }
        let title = match status {
            400 => "Bad request",
            403 => "Forbidden",
            404 => "Not found",
            405 => "Method not allowed",
            _ => "Error",
        };
        let body = format!(
            "<p>{}</p><p><a href=\"/\">Back to the overview</a></p>",
            html::escape(message)
        );
        Response {
            status,
            content_type: "text/html; charset=utf-8",
            body: html::page("", "", false, &format!("{status} {title}"), &body).into_bytes(),
        }
    }
}

/// A request's query parameters.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=1&b=2` (percent-decoded; at most 16 parameters).
    pub fn parse(query: &str) -> Result<Query, String> {
        let mut pairs = Vec::new();
        for part in query.split('&').filter(|part| !part.is_empty()) {
            if pairs.len() >= 16 {
                return Err("Too many query parameters.".to_owned());
            }
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Query { pairs })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `name` as a number, `default` if absent; an error if not a number.
    pub fn number(&self, name: &str, default: usize) -> Result<usize, Failure> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|_| (400, format!("{name}={value:?} is not a number."))),
        }
    }

    /// `offset` and `limit` (at most [`MAX_LIMIT`], at least 1).
    pub fn page(&self, default_limit: usize) -> Result<(usize, usize), Failure> {
        let offset = self.number("offset", 0)?;
        let limit = self.number("limit", default_limit)?.clamp(1, MAX_LIMIT);
        Ok((offset, limit))
    }
}

/// Percent-decodes a query component (`+` is a space).
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'%' => {
                let hex = bytes
                    .get(at + 1..at + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| "A malformed %-escape in the query.".to_owned())?;
                out.push(hex);
                at += 3;
            }
            b'+' => {
                out.push(b' ');
                at += 1;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "The query is not UTF-8.".to_owned())
}

/// Parses an address: `0x…` hex or decimal.
pub fn parse_address(text: &str) -> Result<u64, Failure> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| {
        (
            400,
            format!("{text:?} is not an address (0x… hex or decimal)."),
        )
    })
}

/// Whether `host` (a `Host` header's value) names this machine's loopback
/// interface.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A running server.
pub struct Running {
    /// The address it listens on.
    pub address: SocketAddr,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Waits until the server stops (it stops only when [`Running::stop`]
    /// is called from another thread, or the process is interrupted).
    pub fn wait(self) {
        for worker in self.workers {
            let _ = worker.join();
        }
    }

    /// Stops the workers and waits for them.
    pub fn stop(self) {
        for _ in &self.workers {
            self.server.unblock();
        }
        self.wait();
    }
}

/// Binds `address` and serves `app` on `threads` worker threads, in the
/// background. A bind failure is an error naming the address.
pub fn start(app: App, address: SocketAddr, threads: usize) -> io::Result<Running> {
    let listener = TcpListener::bind(address)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot listen on {address}: {err}")))?;
    let address = listener.local_addr()?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|err| io::Error::other(format!("cannot serve on {address}: {err}")))?;
    let server = Arc::new(server);
    let app = Arc::new(app);
    let workers = (0..threads.max(1))
        .map(|_| {
            let server = Arc::clone(&server);
            let app = Arc::clone(&app);
            std::thread::Builder::new()
                .name("heapdump-serve".to_owned())
                .spawn(move || {
                    while let Ok(request) = server.recv() {
                        respond(&app, request);
                    }
                })
        })
        .collect::<io::Result<_>>()?;
    Ok(Running {
        address,
        server,
        workers,
    })
}

/// Answers one HTTP request.
fn respond(app: &App, request: tiny_http::Request) {
    let method = request.method().clone();
    let host_ok = app.any_host
        || request
            .headers()
            .iter()
            .find(|header| header.field.equiv("Host"))
            .map(|header| loopback_host(header.value.as_str()))
            .unwrap_or(true);
    let response = if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
        Response::error(405, "Only GET is served.", false)
    } else if !host_ok {
        Response::error(
            403,
            "This server answers only requests addressed to localhost.",
            false,
        )
    } else {
        let target = request.url().to_owned();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| app.handle(&target)))
            .unwrap_or_else(|_| Response::error(500, "Internal error.", false))
    };
    // Always a Content-Length (bodies are in memory), never chunked.
    let mut reply = tiny_http::Response::from_data(response.body)
        .with_status_code(response.status)
        .with_chunked_threshold(usize::MAX);
    let headers = [
        ("Content-Type", response.content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    ];
    for (name, value) in headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            reply.add_header(header);
        }
    }
    let _ = request.respond(reply);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_addresses() {
        let query = Query::parse("sort=count&offset=20&name=a%20b+c").unwrap();
        assert_eq!(query.get("sort"), Some("count"));
        assert_eq!(query.number("offset", 0), Ok(20));
        assert_eq!(query.get("name"), Some("a b c"));
        assert!(query.number("sort", 0).is_err());
        assert!(Query::parse("a=%zz").is_err());
        assert!(Query::parse("a=%f").is_err());
        assert!(Query::parse("a=%ff").is_err());
        assert_eq!(parse_address("0x10"), Ok(16));
        assert_eq!(parse_address("16"), Ok(16));
        assert!(parse_address("0xzz").is_err());
        assert!(parse_address("").is_err());
    }

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "127.0.0.1:7000", "[::1]:7000", "localhost:80"] {
            assert!(loopback_host(host), "{host}");
        }
        for host in ["evil.example", "evil.example:7000", "10.0.0.1:7000"] {
            assert!(!loopback_host(host), "{host}");
        }
    }
}
