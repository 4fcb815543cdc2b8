//! Objects whose allocation sites do not tell their type (a pool that
//! allocates with `std::alloc::alloc`, as arenas and object pools do) are
//! typed from the containers that point at them, at the default settings:
//! a `HashMap<u64, Box<Session>>` cache names its pooled sessions
//! `Session`, and a chain of pooled blocks (`Vec<Box<Vec<Box<Item>>>>`,
//! each inner vector's header and buffer and each item from the pool) is
//! typed level by level. Without propagation all of them keep a size
//! class. A program of its own (`harness = false`): nothing else
//! allocates beside it.

use std::alloc::{alloc, Layout};
use std::collections::HashMap;
use std::hint::black_box;

use heapdump_analysis::leaks::{leaks, LeakOptions};
use heapdump_inspect::{Heap, Options, Progress};
use heapdump_tests::temp_path;
use leaky_service::pooled;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// A cached session: allocated by the pool.
pub struct Session {
    pub id: u64,
    pub user: String,
    pub payload: Vec<u8>,
}

/// An indexed item: allocated by the pool.
pub struct Item {
    pub key: u64,
    pub weight: [u32; 6],
}

/// A vector whose buffer comes from the pool.
#[inline(never)]
fn pooled_vec<T>(values: impl ExactSizeIterator<Item = T>) -> Vec<T> {
    let capacity = values.len();
    let layout = Layout::array::<T>(capacity).unwrap();
    assert!(layout.size() > 0);
    // SAFETY: as in `pooled`; the first `len` elements are written.
    unsafe {
        let raw = alloc(layout).cast::<T>();
        assert!(!raw.is_null());
        let mut len = 0;
        for value in values {
            raw.add(len).write(value);
            len += 1;
        }
        Vec::from_raw_parts(raw, len, capacity)
    }
}

const SESSIONS: u64 = 3_000;
const LISTS: u64 = 40;
const ITEMS: u64 = 25;

/// Notes the pipeline gives.
struct Notes(Vec<String>);

impl Progress for Notes {
    fn note(&mut self, note: &str) {
        self.0.push(note.to_owned());
    }
}

fn main() {
    pooled_objects_are_typed_from_their_containers();
    println!("type_propagation: ok");
}

fn pooled_objects_are_typed_from_their_containers() {
    assert!(
        std::env::var_os(heapdump::SAMPLE_RATE_ENV).is_none(),
        "run without {}",
        heapdump::SAMPLE_RATE_ENV
    );
    let mut cache: HashMap<u64, Box<Session>> = HashMap::new();
    for id in 0..SESSIONS {
        let session = pooled(Session {
            id,
            user: format!("user-{id}"),
            payload: vec![7; 64],
        });
        cache.insert(id, session);
    }
    let index: Vec<Box<Vec<Box<Item>>>> = (0..LISTS)
        .map(|list| {
            pooled(pooled_vec((0..ITEMS as usize).map(|key| {
                pooled(Item {
                    key: list * ITEMS + key as u64,
                    weight: [1; 6],
                })
            })))
        })
        .collect();
    let path = temp_path("type-propagation");
    let written = heapdump::write_file(&path).unwrap_or_else(|error| panic!("{error}"));
    assert!(written.objects > 0);

    let options = Options {
        binary: Some(std::env::current_exe().unwrap()),
        ..Options::default()
    };
    let mut notes = Notes(Vec::new());
    let heap = Heap::open(&path, &options, &mut notes).unwrap_or_else(|e| panic!("{e}"));
    let graph = heap.graph();
    let dump = graph.dump();
    let type_of = |address: u64| {
        let object = graph.object(graph.object_at(address)?)?;
        dump.type_info(object.type_index()?)
            .map(|info| info.name.clone())
    };
    let mut wrong = Vec::new();
    for session in cache.values() {
        let name = type_of(&**session as *const Session as u64);
        if name.as_deref() != Some("type_propagation::Session") {
            wrong.push(name);
        }
    }
    for list in &index {
        let header = type_of(&**list as *const Vec<Box<Item>> as u64);
        if header.as_deref() != Some("Vec<Box<type_propagation::Item>>") {
            wrong.push(header);
        }
        let buffer = type_of(list.as_ptr() as u64);
        if buffer.as_deref() != Some("[Box<type_propagation::Item>]") {
            wrong.push(buffer);
        }
        for item in list.iter() {
            let name = type_of(&**item as *const Item as u64);
            if name.as_deref() != Some("type_propagation::Item") {
                wrong.push(name);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} pooled objects not typed as expected, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );

    // The pipeline says how many were typed so: at least every pooled one.
    let pooled_count = SESSIONS + LISTS * (2 + ITEMS);
    let note = notes
        .0
        .iter()
        .find(|note| note.contains("from the containers pointing at them"))
        .unwrap_or_else(|| panic!("no note on propagation: {:?}", notes.0));
    let propagated: u64 = note
        .split(", ")
        .nth(1)
        .and_then(|part| part.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("a count in {note:?}"));
    assert!(
        propagated >= pooled_count,
        "{propagated} typed by propagation, {pooled_count} pooled: {note}"
    );

    // The leak report's top suspect is the cache's table, and what it holds
    // is named: the pooled sessions.
    let report = leaks(heap.graph(), heap.analysis(), &LeakOptions::default());
    let suspect = report.suspects.first().expect("a suspect");
    assert!(
        suspect
            .object
            .class
            .contains("hash table of (u64, Box<type_propagation::Session>)"),
        "{:#?}",
        suspect.object
    );
    let text = format!("{suspect:?}");
    assert!(
        text.contains("\"type_propagation::Session\""),
        "the suspect's contents name the sessions: {text}"
    );
    black_box((&cache, &index));
    std::fs::remove_file(&path).ok();
}
