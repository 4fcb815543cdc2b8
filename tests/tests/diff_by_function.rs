//! `diff` by site as the user sees it: this program adds entries to a
//! cache from one function, dumps itself before and after N more, and the
//! diff of the two symbolised dumps has a site at that function that grew
//! by exactly N objects, at the default settings (each allocation's short
//! site, no sampling rate set). The site's id comes from its frames: a
//! child process running the same code (another address space, another
//! depot) names the site with the same id.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use heapdump_inspect::analysis::diff::{diff, DiffOptions};
use heapdump_inspect::analysis::{Classifier, GroupLabel, Grouping};
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_tests::temp_path;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

const FIRST: u64 = 1_000;
const MORE: u64 = 750;
/// The child's dump path, when this test runs as the child.
const CHILD_ENV: &str = "HEAPDUMP_TEST_DIFF_CHILD";

#[allow(dead_code)]
struct Entry {
    id: u64,
    payload: [u64; 5],
}

/// The function whose site must grow: one `Box<Entry>` per entry.
// Each session its own allocation: what the site must count.
#[allow(clippy::vec_box)]
#[inline(never)]
fn add_entries(cache: &mut Vec<Box<Entry>>, count: u64) {
    let first = cache.len() as u64;
    for id in first..first + count {
        cache.push(Box::new(Entry {
            id,
            payload: [id; 5],
        }));
    }
}

/// Adds the batches (one call site for all of them, as a request loop
/// has) and writes a dump after each.
#[allow(clippy::vec_box)]
fn run_batches(cache: &mut Vec<Box<Entry>>, batches: &[(u64, PathBuf)]) {
    for (count, path) in black_box(batches) {
        let count = *count;
        add_entries(cache, count);
        heapdump::write_file(path).unwrap_or_else(|error| panic!("{error}"));
    }
}

fn open(path: &Path) -> Heap {
    let options = Options {
        binary: Some(std::env::current_exe().unwrap()),
        ..Options::default()
    };
    Heap::open(path, &options, &mut NoProgress).unwrap_or_else(|error| panic!("{error}"))
}

/// Whether a site's frames (program frames first) show `add_entries`
/// allocating.
fn at_add_entries(label: &GroupLabel) -> bool {
    label
        .frames
        .labels
        .iter()
        .take(3)
        .any(|frame| frame.starts_with("diff_by_function::add_entries "))
}

#[test]
fn a_site_at_the_adding_function_grows_by_exactly_n() {
    // Default settings: every allocation carries its short site.
    let mut cache = Vec::with_capacity((FIRST + MORE) as usize);
    let child = std::env::var_os(CHILD_ENV).map(PathBuf::from);
    let (first, second) = (temp_path("diff-first"), temp_path("diff-second"));
    // The child runs the same code (the same call stack) with one dump.
    let batches = match &child {
        Some(path) => vec![(FIRST, path.clone())],
        None => vec![(FIRST, first.to_path_buf()), (MORE, second.to_path_buf())],
    };
    run_batches(&mut cache, &batches);
    black_box(&cache);
    if child.is_some() {
        return;
    }

    let (old, new) = (open(&first), open(&second));
    let report = diff(
        (old.graph(), old.analysis()),
        (new.graph(), new.analysis()),
        &DiffOptions {
            limit: 1000,
            ..DiffOptions::default()
        },
    );
    let sites: Vec<_> = report
        .by_site
        .iter()
        .filter(|row| at_add_entries(&row.group))
        .collect();
    let boxes = sites
        .iter()
        .find(|row| row.new_objects == FIRST + MORE)
        .unwrap_or_else(|| panic!("a site of add_entries' boxes: {sites:#?}"));
    assert_eq!(boxes.old_objects, FIRST, "{boxes:#?}");
    assert_eq!(boxes.object_growth, MORE as i64, "{boxes:#?}");
    assert_eq!(
        boxes.byte_growth,
        (MORE * std::mem::size_of::<Entry>() as u64) as i64
    );
    let site_id = boxes.group.site_id.expect("a site id");
    assert_eq!(boxes.group.label, format!("site {}", site_id.short()));
    // One row per site: no other row of the diff has its id.
    assert_eq!(
        report
            .by_site
            .iter()
            .filter(|row| row.group.site_id == Some(site_id))
            .count(),
        1
    );
    // `top` groups by the same identity: the site holds every box.
    let classifier = Classifier::new(new.graph(), Grouping::Site);
    let in_site = new
        .dump()
        .objects
        .iter()
        .filter(|object| classifier.label(classifier.group_of(object)).site_id == Some(site_id))
        .count() as u64;
    assert_eq!(in_site, FIRST + MORE);

    // Another process of the same binary: the same site has the same id.
    let child_dump = temp_path("diff-child");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_site_at_the_adding_function_grows_by_exactly_n",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &child_dump)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "child: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let child = open(&child_dump);
    let classifier = Classifier::new(child.graph(), Grouping::Site);
    let child_ids: Vec<_> = (0..classifier.group_count())
        .map(|group| classifier.label(group))
        .filter(at_add_entries)
        .filter_map(|label| label.site_id)
        .collect();
    assert!(
        child_ids.contains(&site_id),
        "{site_id} among the child's sites at add_entries: {child_ids:?}"
    );
    for path in [&first, &second, &child_dump] {
        std::fs::remove_file(path).ok();
    }
}
