//! `heapdump serve` end to end: the server (`heapdump_server::start`) on
//! 127.0.0.1 with a free port, over a dump of the sample service taken
//! in-process with the tracker (every site recorded) and over the Go
//! sample dump with its binary:
//!
//! - HTTP level (plain `TcpStream` GETs): the JSON API's shapes against
//!   the library's own reports (what the CLI's `--json` prints), and bad
//!   requests (404, 400, 405, 403 for a foreign `Host`) answered without
//!   taking the server down;
//! - the external oracle, a real browser: headless Debian `chromium`
//!   loads `/`, `/classes`, an object's page, `/dominators` and `/flame`
//!   (`--dump-dom`, after its scripts ran), and the DOM must show the
//!   cache's class (`hash table of (u64, leaky_service::Session)`) or root
//!   (`main.cache`) and links to objects; screenshots of `/` and `/flame`
//!   are written under the target directory for review.
//!
//! Without chromium the browser half prints a loud skip, unless
//! `HEAPDUMP_REQUIRE_ORACLES=1` (CI), where it fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use heapdump_inspect::analysis::leaks::{leaks, LeakOptions};
use heapdump_inspect::analysis::top::{top, TopOptions, TopOrder};
use heapdump_inspect::analysis::waste::{waste, WasteOptions};
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_server::{start, App, Running};
use heapdump_tests::temp_path;
use leaky_service::{scrub_stack, Service};
use serde_json::Value;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const CACHE_CLASS: &str = "hash table of (u64, leaky_service::Session)";

/// Held by each test for its whole run. The tests share one process, and
/// two of them dump its heap: a dump taken while another test has heaps
/// open or a service running holds that test's objects too (under load
/// they outgrew the sample's cache as the top suspect, and `[u8]` in the
/// diff), so the tests run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes [`ONE_AT_A_TIME`] (a failed test's poisoned lock is taken too).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A dump of the sample service with every allocation site recorded.
fn sample_dump() -> heapdump_tests::TempPath {
    heapdump::set_sample_rate(1);
    let mut service = Service::new();
    service.handle_many(2_000);
    scrub_stack();
    let path = temp_path("serve-browser");
    heapdump::write_file(&path).unwrap();
    std::hint::black_box(&service);
    path
}

fn go_sample() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/go/dumps");
    (root.join("go1.26.godump"), root.join("go1.26.bin"))
}

fn serve(dump: &Path, binary: Option<&Path>, name: &str) -> (Running, Heap) {
    let options = Options {
        binary: binary.map(Path::to_path_buf),
        ..Options::default()
    };
    // One heap for the server, one for the test's own reports (the oracle
    // for the API's numbers).
    let served = Heap::open(dump, &options, &mut NoProgress).unwrap();
    let own = Heap::open(dump, &options, &mut NoProgress).unwrap();
    let app = App::new(served, name);
    let running = start(app, "127.0.0.1:0".parse().unwrap(), 2).unwrap();
    (running, own)
}

/// A raw HTTP/1.1 request; (status, body).
fn request(address: SocketAddr, method: &str, target: &str, host: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, body.to_owned())
}

fn get(address: SocketAddr, target: &str) -> (u16, String) {
    request(address, "GET", target, &address.to_string())
}

fn get_json(address: SocketAddr, target: &str) -> Value {
    let (status, body) = get(address, target);
    assert_eq!(status, 200, "{target}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|err| panic!("{target}: {err}: {body}"))
}

/// The API against the library's reports, and bad requests.
fn check_http(address: SocketAddr, own: &Heap) -> u64 {
    // /api/top: the first rows of `heapdump top --json`, row for row.
    let expected = top(
        own.graph(),
        own.analysis(),
        &TopOptions {
            limit: 5,
            order: TopOrder::Retained,
        },
    );
    let expected = serde_json::to_value(&expected).unwrap();
    let served = get_json(address, "/api/top?limit=5");
    assert_eq!(served, expected, "/api/top is `heapdump top --json`");
    let by_count = get_json(address, "/api/top?limit=3&sort=count");
    assert_eq!(by_count["order"], "count");
    assert_eq!(by_count["by_class"].as_array().unwrap().len(), 3);

    // /api/leaks: `heapdump leaks --json`'s suspects (roots named).
    let mut report = leaks(own.graph(), own.analysis(), &LeakOptions::default());
    report.name_roots(own.graph(), &own.root_namer());
    // (Percentages to 9 digits: the report's float sums differ in the last
    // bit from run to run, as rayon splits them differently.)
    let served = rounded(get_json(address, "/api/leaks"));
    let expected = rounded(serde_json::to_value(&report).unwrap());
    assert_eq!(served, expected, "/api/leaks is `heapdump leaks --json`");
    let suspect = report.suspects.first().expect("a leak suspect");
    let address_of = suspect.accumulation_point.object.address;

    // /api/waste: `heapdump waste --json`; /waste shows its rows.
    let expected = waste(own.graph(), own.analysis(), &WasteOptions::default());
    let served = get_json(address, "/api/waste");
    assert_eq!(
        served,
        serde_json::to_value(&expected).unwrap(),
        "/api/waste is `heapdump waste --json`"
    );
    let (status, page) = get(address, "/waste");
    assert_eq!(status, 200, "{page}");
    for row in expected.values.rows.iter().take(3) {
        assert!(page.contains(&format!("{:#x}", row.example)), "{page}");
    }

    // An object: its details and its paths.
    let object = get_json(address, &format!("/api/object/{address_of:#x}"));
    assert_eq!(object["object"]["address"], address_of);
    assert!(object["field_count"].as_u64().unwrap() > 0, "{object}");
    let path = get_json(address, &format!("/api/path/{address_of:#x}"));
    assert_eq!(path["object"]["address"], address_of);
    assert!(!path["paths"].as_array().unwrap().is_empty(), "{path}");
    let tree = get_json(address, "/api/dominators?limit=3");
    assert!(tree["tree"].as_array().unwrap().len() <= 3);
    assert!(tree["reachable_bytes"].as_u64().unwrap() > 0);

    // Bad requests: readable errors, never a crash.
    for (target, status) in [
        ("/object/0x1", 404),
        ("/object/zz", 400),
        ("/object/0x", 400),
        ("/object/0xffffffffffffffffff", 400),
        ("/api/object/zz", 400),
        ("/api/object/0x1", 404),
        ("/nope", 404),
        ("/%ff%fe", 404),
        ("/classes?sort=sideways", 400),
        ("/classes?offset=-1", 400),
        ("/classes?offset=99999999999999999999999", 400),
        ("/classes?a=%zz", 400),
        ("/class/999999999", 404),
        ("/class/x", 400),
        ("/root/4294967295", 404),
        ("/dominators/0x1", 404),
        ("/flame?root=0x1", 404),
        ("/diff", 404),
        ("/classes?offset=18446744073709551615", 200),
    ] {
        let (got, body) = get(address, target);
        assert_eq!(got, status, "{target}: {body}");
        if !target.starts_with("/api/") {
            assert!(body.contains("</html>"), "{target}: {body}");
        }
    }
    let long = format!("/object/0x{}", "1".repeat(5000));
    assert_eq!(get(address, &long).0, 400);
    assert_eq!(request(address, "POST", "/", &address.to_string()).0, 405);
    assert_eq!(request(address, "GET", "/", "evil.example:7000").0, 403);
    // Still serving.
    assert_eq!(get(address, "/").0, 200);
    address_of
}

/// `value` with every non-integer number rounded to 9 significant digits.
fn rounded(value: Value) -> Value {
    match value {
        Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(0.0);
            Value::String(format!("{float:.9e}"))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(rounded).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, rounded(value)))
                .collect(),
        ),
        other => other,
    }
}

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HEAPDUMP_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        let found = Command::new(name).arg("--version").output().ok()?;
        found.status.success().then(|| PathBuf::from(name))
    })
}

fn require_oracles() -> bool {
    std::env::var("HEAPDUMP_REQUIRE_ORACLES").is_ok_and(|value| value == "1")
}

/// Runs headless chromium with `mode` (`--dump-dom` or a screenshot) on
/// `url`; its stdout.
/// Chromium headless, as root, on this machine's closed network.
const HEADLESS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

fn browser(chromium: &Path, profile: &Path, mode: &[String], url: &str) -> String {
    let output = Command::new("timeout")
        .arg("120")
        .arg(chromium)
        .args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(mode)
        .arg(url)
        .output()
        .expect("runs chromium");
    assert!(
        output.status.success(),
        "chromium on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn dom(chromium: &Path, profile: &Path, url: &str) -> String {
    let dom = browser(chromium, profile, &["--dump-dom".to_owned()], url);
    assert!(dom.contains("</html>"), "{url}: {dom}");
    dom
}

/// The first link in `dom` whose target starts with `prefix`.
fn first_link(dom: &str, prefix: &str) -> Option<String> {
    let start = dom.find(&format!("href=\"{prefix}"))? + "href=\"".len();
    let end = start + dom[start..].find('"')?;
    Some(dom[start..end].replace("&amp;", "&"))
}

/// Loads `url` in chromium with its console on stderr, runs its scripts,
/// and fails on anything the page's console shows (an uncaught exception,
/// a refused script or request: the pages themselves log nothing).
fn without_console_errors(chromium: &Path, profile: &Path, url: &str) {
    let output = Command::new("timeout")
        .arg("120")
        .arg(chromium)
        .args(HEADLESS)
        .args([
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .expect("runs chromium");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        // Our pages log nothing: any console message is an error's.
        .filter(|line| line.contains(":CONSOLE"))
        .collect();
    assert!(errors.is_empty(), "{url}: console errors: {errors:#?}");
}

/// The browser half: pages render in chromium and show what they must.
fn check_browser(address: SocketAddr, label: &str, object: u64, needle: &str) {
    let Some(chromium) = chromium() else {
        if require_oracles() {
            panic!("chromium is missing and HEAPDUMP_REQUIRE_ORACLES=1");
        }
        eprintln!(
            "\n!!!!! SKIPPED: the browser test of `heapdump serve` ({label}): chromium not found \
             (apt-get install chromium) !!!!!\n"
        );
        return;
    };
    let profile = std::env::temp_dir().join(format!(
        "heapdump-serve-chromium-{}-{label}",
        std::process::id()
    ));
    let base = format!("http://{address}");
    let overview = dom(&chromium, &profile, &format!("{base}/"));
    assert!(overview.contains("Leak suspects"), "{overview}");
    assert!(
        overview.contains(needle),
        "{label}: / shows {needle}: {overview}"
    );
    assert!(overview.contains(&format!("href=\"/object/{object:#x}\"")));
    let classes = dom(&chromium, &profile, &format!("{base}/classes?sort=count"));
    assert!(classes.contains("href=\"/class/"), "{classes}");
    assert!(classes.contains("objects ▼"), "sorted by count");
    let page = dom(&chromium, &profile, &format!("{base}/object/{object:#x}"));
    assert!(page.contains("Shortest paths from roots"), "{page}");
    assert!(page.contains("Referrers"), "{page}");
    assert!(page.contains("href=\"/object/0x"), "{page}");
    let tree = dom(&chromium, &profile, &format!("{base}/dominators"));
    assert!(tree.contains("data-node=\"0x"), "{tree}");
    let flame = dom(&chromium, &profile, &format!("{base}/flame"));
    assert!(flame.contains("href=\"/flame?root=0x"), "{flame}");
    assert!(flame.contains("all reachable objects"), "{flame}");

    // A user's walk, by the links the pages render: the top suspect's
    // object, then a root its paths start from, then a dominator subtree
    // and a zoomed flame graph.
    let suspect = first_link(&overview, "/object/0x").expect("a suspect's object link");
    let object_page = dom(&chromium, &profile, &format!("{base}{suspect}"));
    assert!(
        object_page.contains("Shortest paths from roots"),
        "{object_page}"
    );
    let root = first_link(&object_page, "/root/").expect("a path's root link");
    let root_page = dom(&chromium, &profile, &format!("{base}{root}"));
    assert!(root_page.contains("href=\"/object/0x"), "{root_page}");
    let subtree = first_link(&tree, "/dominators/0x").expect("a dominator subtree link");
    let subtree_page = dom(&chromium, &profile, &format!("{base}{subtree}"));
    assert!(subtree_page.contains("href=\"/object/0x"), "{subtree_page}");
    let zoom = first_link(&flame, "/flame?root=0x").expect("a flame zoom link");
    let zoomed = dom(&chromium, &profile, &format!("{base}{zoom}"));
    assert!(zoomed.contains("href=\"/flame"), "{zoomed}");
    for page in ["/", "/dominators", "/flame", suspect.as_str()] {
        without_console_errors(&chromium, &profile, &format!("{base}{page}"));
    }

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (page, name) in [("/", "overview"), ("/flame", "flame")] {
        let file = shots.join(format!("{label}-{name}.png"));
        let _ = std::fs::remove_file(&file);
        browser(
            &chromium,
            &profile,
            &[
                format!("--screenshot={}", file.display()),
                "--window-size=1280,900".to_owned(),
            ],
            &format!("{base}{page}"),
        );
        assert!(
            std::fs::metadata(&file).is_ok_and(|meta| meta.len() > 1000),
            "{}",
            file.display()
        );
        eprintln!("screenshot: {}", file.display());
    }
    let _ = std::fs::remove_dir_all(&profile);
}

#[test]
fn serves_the_sample_service_dump_to_a_browser() {
    let _serial = one_at_a_time();
    let dump = sample_dump();
    let (running, own) = serve(&dump, None, "leaky-service.hdump");
    let address = running.address;
    let object = check_http(address, &own);
    let classes = get_json(address, "/api/top?limit=50");
    assert!(
        classes["by_class"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["label"] == CACHE_CLASS),
        "{classes}"
    );
    // The cache's table is the top suspect's object or its accumulation
    // point: its class shows on the overview and on /classes.
    check_browser(address, "rust", object, &html_escaped(CACHE_CLASS));
    running.stop();
    let _ = std::fs::remove_file(&dump);
}

#[test]
fn serves_the_go_sample_dump_to_a_browser() {
    let _serial = one_at_a_time();
    let (dump, binary) = go_sample();
    let (running, own) = serve(&dump, Some(&binary), "go1.26.godump");
    let address = running.address;
    let object = check_http(address, &own);
    check_browser(address, "go", object, "main.cache");
    running.stop();
}

fn html_escaped(text: &str) -> String {
    heapdump_server::html::escape(text)
}

#[test]
fn refuses_an_address_it_cannot_bind() {
    let _serial = one_at_a_time();
    let (dump, binary) = go_sample();
    let options = Options {
        binary: Some(binary),
        ..Options::default()
    };
    let heap = Heap::open(&dump, &options, &mut NoProgress).unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let err = start(App::new(heap, "go1.26.godump"), address, 1).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("cannot listen on {address}")),
        "{err}"
    );
}

/// `heapdump serve OLD NEW`: the diff view serves the library's diff report
/// (the API, exactly) and a page with the growth and its retainers; the
/// newer dump's pages stay browsable beside it.
#[test]
fn serves_the_diff_of_two_dumps() {
    let _serial = one_at_a_time();
    heapdump::set_sample_rate(1);
    let mut service = Service::new();
    let old_path = temp_path("serve-diff-old");
    let new_path = temp_path("serve-diff-new");
    // One loop, so that both batches come from the same call stack.
    let batches = [(1_000u64, &old_path), (500, &new_path)];
    for &(requests, path) in std::hint::black_box(&batches[..]) {
        service.handle_many(requests);
        scrub_stack();
        heapdump::write_file(path).unwrap();
    }
    std::hint::black_box(&service);
    let open = |path: &Path| Heap::open(path, &Options::default(), &mut NoProgress).unwrap();
    let app = App::with_diff(open(&old_path), "old.hdump", open(&new_path), "new.hdump");
    let running = start(app, "127.0.0.1:0".parse().unwrap(), 2).unwrap();
    let address = running.address;

    // The oracle: the library's own diff of the same files.
    let (old, new) = (open(&old_path), open(&new_path));
    let expected = heapdump_inspect::analysis::diff::diff(
        (old.graph(), old.analysis()),
        (new.graph(), new.analysis()),
        &heapdump_inspect::analysis::diff::DiffOptions::default(),
    );
    let served = get_json(address, "/api/diff");
    let expected = serde_json::to_value(&expected).unwrap();
    assert_eq!(
        rounded(served["by_site"].clone()),
        rounded(expected["by_site"].clone())
    );
    assert_eq!(
        rounded(served["by_class"].clone()),
        rounded(expected["by_class"].clone())
    );
    // 500 more sessions: a site grew by exactly 500 objects.
    assert!(
        served["by_site"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["object_growth"] == 500),
        "{}",
        served["by_site"]
    );
    let (status, page) = get(address, "/diff");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("[u8]"), "{page}");
    let (status, _) = get(address, "/classes");
    assert_eq!(status, 200);
    running.stop();
    let _ = std::fs::remove_file(&old_path);
    let _ = std::fs::remove_file(&new_path);
}
