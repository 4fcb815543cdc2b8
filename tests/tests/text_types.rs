//! Strings are `str` however they were made (`String::from`, `clone`,
//! `to_owned`, `to_string`, `format!`, serde), and blocks of types without
//! pointers (`str`, `[u8]`, arrays of numbers) are not scanned for them: a
//! byte buffer that happens to hold an object's address draws no reference
//! to it, while a `[usize]` holding the same address still does.

use std::hint::black_box;

use heapdump_inspect::reader::{ObjectId, Pointers};
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_tests::temp_path;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

#[inline(never)]
fn strings(seed: &str) -> Vec<(&'static str, String)> {
    let from = String::from(black_box(seed));
    let cloned = black_box(&from).clone();
    let owned = black_box(seed).to_owned();
    let to_string = black_box(seed).to_string();
    let formatted = format!("{seed}-{}", black_box(7));
    let json = format!("\"{seed} from json\"");
    let deserialized: String = serde_json::from_str(&json).unwrap();
    vec![
        ("String::from", from),
        ("clone", cloned),
        ("to_owned", owned),
        ("to_string", to_string),
        ("format!", formatted),
        ("serde", deserialized),
    ]
}

#[test]
fn strings_are_str_and_byte_buffers_are_not_scanned() {
    heapdump::set_sample_rate(1);
    let made = strings("a session's user name, long enough");
    let target = Box::new([7u64; 8]);
    let address = &*target as *const [u64; 8] as usize;
    // The target's address inside a byte buffer, and inside a [usize].
    let bytes: Vec<u8> = address.to_le_bytes().repeat(4);
    let words: Vec<usize> = vec![address; 4];
    let path = temp_path("text-types");
    heapdump::write_file(&path).unwrap_or_else(|error| panic!("{error}"));

    let options = Options {
        binary: Some(std::env::current_exe().unwrap()),
        ..Options::default()
    };
    let heap = Heap::open(&path, &options, &mut NoProgress).unwrap_or_else(|e| panic!("{e}"));
    let graph = heap.graph();
    let dump = graph.dump();
    let type_of = |id: ObjectId| {
        graph
            .object(id)
            .and_then(|object| object.type_index())
            .and_then(|index| dump.type_info(index))
            .map(|info| info.name.clone())
    };
    let mut wrong = Vec::new();
    for (how, string) in &made {
        let id = graph.object_at(string.as_ptr() as u64).expect("the string");
        if type_of(id).as_deref() != Some("str") {
            wrong.push((*how, type_of(id)));
        }
    }
    assert!(wrong.is_empty(), "strings not typed str: {wrong:?}");

    let target_id = graph.object_at(address as u64).expect("the target");
    let bytes_id = graph.object_at(bytes.as_ptr() as u64).expect("the bytes");
    let words_id = graph.object_at(words.as_ptr() as u64).expect("the words");
    assert_eq!(type_of(bytes_id).as_deref(), Some("[u8]"));
    assert_eq!(type_of(words_id).as_deref(), Some("[usize]"));
    let bytes_object = graph.object(bytes_id).unwrap();
    assert!(matches!(dump.pointers(bytes_object), Pointers::Exact(_)));
    assert_eq!(graph.references(bytes_id).count(), 0);
    assert!(graph.references(words_id).any(|(to, _)| to == target_id));
    black_box((&made, &target, &bytes, &words));
    std::fs::remove_file(&path).ok();
}
