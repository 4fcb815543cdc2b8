//! VisualVM's heap library as a test oracle, shared by heapdump-convert's
//! HPROF tests and heapdump-tests' Java HPROF reader tests (included with
//! `#[path]`): runs `HprofCheck.java` (compiled once per test process) on an
//! HPROF file and parses what it prints.
//!
//! When a tool is missing the test prints a loud skip and passes, unless
//! `HEAPDUMP_REQUIRE_ORACLES=1` is set (CI), where it fails.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// Where Debian's `visualvm` package puts the heap library.
pub const DEFAULT_JAR: &str =
    "/usr/share/visualvm/visualvm/modules/org-graalvm-visualvm-lib-jfluid-heap.jar";

/// Whether missing oracles fail the test.
pub fn required() -> bool {
    std::env::var("HEAPDUMP_REQUIRE_ORACLES").is_ok_and(|value| value == "1")
}

/// Reports a missing oracle: a panic when oracles are required, otherwise a
/// loud message. Returns `None` for `?`-style early returns.
pub fn missing<T>(what: &str) -> Option<T> {
    let message = format!(
        "SKIPPED: {what}. Install Debian's `visualvm`, `graphviz` and a JDK \
         (`openjdk-17-jdk-headless`) to run this check; CI sets \
         HEAPDUMP_REQUIRE_ORACLES=1 and fails instead."
    );
    if required() {
        panic!("HEAPDUMP_REQUIRE_ORACLES=1 but {message}");
    }
    eprintln!("\n{}\n{message}\n{}\n", "!".repeat(72), "!".repeat(72));
    None
}

pub fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// A temporary directory for this test process.
pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heapdump-convert-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The compiled checker: (jar, class directory).
fn checker() -> Option<(PathBuf, PathBuf)> {
    static CHECKER: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    let result = CHECKER.get_or_init(|| {
        let jar = PathBuf::from(
            std::env::var("HEAPDUMP_VISUALVM_JAR").unwrap_or_else(|_| DEFAULT_JAR.to_owned()),
        );
        if !jar.is_file() {
            return Err(format!(
                "VisualVM's heap library {} is missing",
                jar.display()
            ));
        }
        if !runs("java", "-version") || !runs("javac", "-version") {
            return Err("java or javac is missing".to_owned());
        }
        let classes = temp_dir().join("java");
        std::fs::create_dir_all(&classes).unwrap();
        let source = classes.join("HprofCheck.java");
        std::fs::write(&source, include_str!("../java/HprofCheck.java")).unwrap();
        let output = Command::new("javac")
            .arg("-cp")
            .arg(&jar)
            .arg("-d")
            .arg(&classes)
            .arg(&source)
            .output()
            .map_err(|err| format!("javac: {err}"))?;
        assert!(
            output.status.success(),
            "javac failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((jar, classes))
    });
    match result {
        Ok(paths) => Some(paths.clone()),
        Err(what) => missing(what),
    }
}

/// What VisualVM sees in an HPROF file.
#[derive(Debug, Default)]
pub struct VisualVmView {
    pub instances: u64,
    pub bytes: u64,
    /// Class name → (count, bytes, instance size).
    pub classes: BTreeMap<String, (u64, u64, i64)>,
    /// Class name → its instance fields' names.
    pub fields: BTreeMap<String, Vec<String>>,
    /// Root kind → count.
    pub roots: BTreeMap<String, u64>,
    /// (id, class, shallow, retained), biggest retained size first.
    pub biggest: Vec<(u64, String, u64, u64)>,
    /// Every instance (with `all`): id → (class, shallow, retained).
    pub objects: HashMap<u64, (String, u64, u64)>,
}

/// Opens `hprof` with VisualVM's library; `None` when the oracle is
/// missing (and not required).
pub fn visualvm(hprof: &Path, biggest: usize, all: bool) -> Option<VisualVmView> {
    let (jar, classes) = checker()?;
    let _ = std::fs::remove_dir_all(hprof.with_extension("hprof.hwcache"));
    let mut command = Command::new("java");
    command
        .arg("-Xmx2g")
        .arg("-cp")
        .arg(format!("{}:{}", jar.display(), classes.display()))
        .arg("HprofCheck")
        .arg(hprof)
        .arg(biggest.to_string());
    if all {
        command.arg("--all");
    }
    let output = command.output().expect("run java");
    let _ = std::fs::remove_dir_all(hprof.with_extension("hprof.hwcache"));
    assert!(
        output.status.success(),
        "VisualVM's library failed on {}:\n{}",
        hprof.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut view = VisualVmView::default();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("bad checker line {line:?}: {err}"));
        let u = |key: &str| {
            value[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key} in {line}"))
        };
        let s = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        match value["kind"].as_str() {
            Some("summary") => {
                view.instances = u("instances");
                view.bytes = u("bytes");
            }
            Some("class") => {
                let size = value["instance_size"].as_i64().unwrap_or(0);
                view.classes
                    .insert(s("name"), (u("count"), u("bytes"), size));
                let fields = value["fields"].as_array().map(|names| {
                    names
                        .iter()
                        .filter_map(|name| name.as_str().map(str::to_owned))
                        .collect()
                });
                view.fields.insert(s("name"), fields.unwrap_or_default());
            }
            Some("root") => {
                view.roots.insert(s("root_kind"), u("count"));
            }
            Some("biggest") => {
                view.biggest
                    .push((u("id"), s("class"), u("shallow"), u("retained")))
            }
            Some("object") => {
                view.objects
                    .insert(u("id"), (s("class"), u("shallow"), u("retained")));
            }
            _ => panic!("unknown checker line {line}"),
        }
    }
    Some(view)
}
