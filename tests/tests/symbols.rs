//! Names from the binary: this test program allocates known types in named
//! functions with every site sampled, dumps itself, and symbolises the dump
//! with its own executable. Each object must come back with its type and the
//! function, file and line that allocated it; a binary with another
//! build-id is refused; stripped copies fall back to symbol names or
//! offsets without failing.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use heapdump_analysis::class::{Classifier, Grouping};
use heapdump_inspect::{Caveat, CaveatKind, NoProgress, Options};
use heapdump_reader::{DumpFile, HeapGraph, Object};
use heapdump_symbols::symbolize::{infer_types, Symbolizer};
use heapdump_symbols::Binary;
use heapdump_tests::{temp_path, TempPath};

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

#[allow(dead_code)]
struct Session {
    id: u64,
    user: u64,
    scores: [u64; 6],
}

#[allow(dead_code)]
struct Config {
    name: &'static str,
    limit: u64,
}

fn session(id: u64) -> Session {
    Session {
        id,
        user: id * 7,
        scores: [id; 6],
    }
}

#[inline(never)]
fn make_box() -> (Box<Session>, u32) {
    (Box::new(session(1)), line!())
}

#[inline(never)]
fn make_vec() -> (Vec<Session>, u32) {
    let (mut sessions, line) = (Vec::with_capacity(10), line!());
    sessions.push(session(2));
    (sessions, line)
}

#[inline(never)]
fn make_map() -> (HashMap<u64, Session>, u32) {
    let mut map = HashMap::new();
    let line = (map.insert(3, session(3)), line!()).1;
    (map, line)
}

#[inline(never)]
fn make_arc() -> (Arc<Config>, u32) {
    let config = Config {
        name: "service",
        limit: 4,
    };
    (Arc::new(config), line!())
}

#[inline(never)]
fn make_string() -> (String, u32) {
    (String::from(black_box("a session's user name")), line!())
}

/// What one allocation must come back as.
struct Expected {
    function: &'static str,
    line: u32,
    /// The inferred type's name contains this.
    type_name: &'static str,
}

struct Heap {
    boxed: Box<Session>,
    vec: Vec<Session>,
    map: HashMap<u64, Session>,
    arc: Arc<Config>,
    string: String,
    expected: Vec<Expected>,
}

fn build() -> Heap {
    let (boxed, box_line) = make_box();
    let (vec, vec_line) = make_vec();
    let (map, map_line) = make_map();
    let (arc, arc_line) = make_arc();
    let (string, string_line) = make_string();
    let expected = vec![
        Expected {
            function: "symbols::make_box",
            line: box_line,
            type_name: "symbols::Session",
        },
        Expected {
            function: "symbols::make_vec",
            line: vec_line,
            type_name: "[symbols::Session]",
        },
        Expected {
            function: "symbols::make_map",
            line: map_line,
            type_name: "hash table of (u64, symbols::Session)",
        },
        Expected {
            function: "symbols::make_arc",
            line: arc_line,
            type_name: "ArcInner<symbols::Config>",
        },
        Expected {
            function: "symbols::make_string",
            line: string_line,
            type_name: "str",
        },
    ];
    Heap {
        boxed,
        vec,
        map,
        arc,
        string,
        expected,
    }
}

/// Writes a dump of this process with every site sampled.
fn dump_self(name: &str) -> (TempPath, Heap) {
    heapdump::set_sample_rate(1);
    let heap = build();
    let path = temp_path(name);
    heapdump::write_file(&path).unwrap_or_else(|error| panic!("{error}"));
    (path, heap)
}

fn symbolised<R>(
    dump_path: &Path,
    binary: Option<&Path>,
    check: impl FnOnce(&HeapGraph<'_>) -> R,
) -> R {
    let file = DumpFile::open(dump_path).unwrap_or_else(|error| panic!("{error}"));
    let mut dump =
        heapdump_reader::parse(file.bytes(), &mut |_, _| {}).unwrap_or_else(|e| panic!("{e}"));
    let binary = binary.map(|path| Binary::open(path).unwrap_or_else(|e| panic!("{e}")));
    let symbolizer = Symbolizer::new(&dump, binary).unwrap_or_else(|e| panic!("{e}"));
    symbolizer.symbolize(&mut dump, &mut |_, _| {});
    infer_types(&mut dump);
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    check(&graph)
}

/// The object whose allocation site has a frame in `function`.
fn allocated_in<'g>(graph: &'g HeapGraph<'g>, function: &str) -> Vec<&'g Object> {
    let dump = graph.dump();
    dump.objects
        .iter()
        .filter(|object| {
            object
                .site
                .and_then(|id| dump.stack(id))
                .is_some_and(|stack| {
                    stack.site_frames().iter().take(3).any(|frame| {
                        frame.function.as_deref() == Some(function)
                            || frame
                                .function
                                .as_deref()
                                .is_some_and(|name| name.starts_with(&format!("{function}<")))
                    })
                })
        })
        .collect()
}

#[test]
fn types_and_sites_come_from_the_binary() {
    let (path, heap) = dump_self("symbols");
    let exe = std::env::current_exe().unwrap();
    symbolised(&path, Some(&exe), |graph| {
        let dump = graph.dump();
        let classes = Classifier::new(graph, Grouping::Class);
        for expected in &heap.expected {
            let objects = allocated_in(graph, expected.function);
            let typed: Vec<String> = objects
                .iter()
                .filter_map(|object| object.type_index())
                .filter_map(|index| dump.type_info(index))
                .map(|info| info.name.clone())
                .collect();
            assert!(
                typed.iter().any(|name| name == expected.type_name),
                "{}: types {typed:?}, expected {}",
                expected.function,
                expected.type_name
            );
            let object = objects
                .iter()
                .find(|object| {
                    object
                        .type_index()
                        .and_then(|index| dump.type_info(index))
                        .is_some_and(|info| info.name == expected.type_name)
                })
                .unwrap();
            assert!(dump
                .type_info(object.type_index().unwrap())
                .is_some_and(|info| info.from_site));
            // Reports group and name it by its type.
            let label = classes.label(classes.group_of(object));
            assert_eq!(label.label, expected.type_name);
            // The site names the function, file and line that allocated it.
            let stack = dump.stack(object.site.unwrap()).unwrap();
            let frame = stack
                .site_frames()
                .iter()
                .find(|frame| {
                    frame
                        .function
                        .as_deref()
                        .is_some_and(|name| name.starts_with(expected.function))
                })
                .unwrap();
            assert!(
                frame
                    .file
                    .as_deref()
                    .is_some_and(|file| file.ends_with("tests/symbols.rs")),
                "{frame:?}"
            );
            assert_eq!(frame.line, Some(u64::from(expected.line)), "{frame:?}");
            let labels = stack.frame_labels();
            assert!(
                labels
                    .iter()
                    .take(3)
                    .any(|label| label.starts_with(expected.function)
                        && label.ends_with(&format!("symbols.rs:{})", expected.line))),
                "{labels:?}"
            );
            // The allocator's own frames are kept but are not the site.
            assert!(stack.allocator_frames > 0, "{:?}", stack.frames);
        }
        // The Box holds exactly one Session.
        let boxed = dump
            .objects
            .iter()
            .find(|object| object.address == &*heap.boxed as *const Session as u64)
            .unwrap();
        assert_eq!(boxed.size, std::mem::size_of::<Session>() as u64);
    });
    black_box((&heap.vec, &heap.map, &heap.arc, &heap.string));
    std::fs::remove_file(&path).ok();
}

#[test]
fn another_binary_is_refused_and_stripped_ones_fall_back() {
    let (path, heap) = dump_self("symbols-stripped");
    // A binary with another build-id: refused, with a clear message.
    let other = ["/bin/ls", "/usr/bin/env", "/bin/sh"]
        .into_iter()
        .map(Path::new)
        .find(|path| Binary::open(path).is_ok_and(|binary| !binary.build_id().is_empty()))
        .expect("a system binary with a build-id");
    let file = DumpFile::open(&path).unwrap();
    let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {}).unwrap();
    let error = match Symbolizer::new(&dump, Some(Binary::open(other).unwrap())) {
        Ok(_) => panic!("{} accepted for this test's dump", other.display()),
        Err(error) => error,
    };
    assert!(
        matches!(error, heapdump_symbols::Error::BinaryMismatch { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("build-id"), "{error}");

    let exe = std::env::current_exe().unwrap();
    // No debug info: names from the symbol table.
    let no_debug = temp_path("symbols-no-debug.bin");
    run(
        "objcopy",
        &[
            "--strip-debug",
            exe.to_str().unwrap(),
            no_debug.to_str().unwrap(),
        ],
    );
    symbolised(&path, Some(&no_debug), |graph| {
        let dump = graph.dump();
        let names: Vec<&str> = dump
            .stacks
            .iter()
            .flat_map(|stack| stack.frames.iter())
            .filter_map(|frame| frame.function.as_deref())
            .collect();
        assert!(
            names
                .iter()
                .any(|name| name.starts_with("symbols::make_box")),
            "{names:?}"
        );
        assert!(dump
            .stacks
            .iter()
            .flat_map(|stack| stack.frames.iter())
            .all(|frame| frame.line.is_none()));
    });
    // Every report says why, with the fix.
    let caveats = caveats_with(&path, &no_debug);
    assert!(
        caveats
            .iter()
            .any(|caveat| caveat.kind == CaveatKind::NoLineTables
                && caveat.fix.contains("debug = \"line-tables-only\"")),
        "{caveats:#?}"
    );
    // No symbols either: offsets in the module.
    let stripped = temp_path("symbols-stripped.bin");
    run(
        "strip",
        &["-o", stripped.to_str().unwrap(), exe.to_str().unwrap()],
    );
    symbolised(&path, Some(&stripped), |graph| {
        let dump = graph.dump();
        let module = exe.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(dump
            .stacks
            .iter()
            .flat_map(|stack| stack.frames.iter())
            .filter_map(|frame| frame.function.as_deref())
            .any(|name| name.starts_with(&format!("{module}+0x"))));
    });
    let caveats = caveats_with(&path, &stripped);
    assert!(
        caveats
            .iter()
            .any(|caveat| caveat.kind == CaveatKind::NoSymbols
                && caveat.message.contains("stripped")),
        "{caveats:#?}"
    );
    // With its own (unstripped, line tables) executable: no caveat.
    assert_eq!(caveats_with(&path, &exe), Vec::new());
    black_box(&heap.expected);
    for file in [&no_debug, &stripped] {
        std::fs::remove_file(file).ok();
    }
}

/// The caveats of the dump at `path` named with `binary`.
fn caveats_with(path: &Path, binary: &Path) -> Vec<Caveat> {
    let options = Options {
        binary: Some(binary.to_owned()),
        ..Options::default()
    };
    let heap = heapdump_inspect::Heap::open(path, &options, &mut NoProgress)
        .unwrap_or_else(|e| panic!("{e}"));
    heap.caveats().to_vec()
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|error| panic!("{program} (binutils): {error}"));
    assert!(status.success(), "{program} {args:?}: {status}");
}
