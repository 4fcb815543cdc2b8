//! The HPROF reader on dumps the JDK writes: `tests/java/LeakyCache.java`
//! (a static `HashMap` cache of sessions with `byte[]` payloads, a linked
//! list, a tree, duplicate strings) is compiled and run in a temporary
//! directory and dumps its own heap with
//! `HotSpotDiagnosticMXBean.dumpHeap(path, true)`. Checked: the instance
//! counts the program built; the top leak suspect is the cache, held from
//! the static field `LeakyCache.CACHE`; every object's shallow size, and
//! retained size, against VisualVM's heap library on the same file (the
//! oracle shared with heapdump-convert's HPROF tests): all equal, with
//! VisualVM's two rules for dominators checked where they apply and
//! plain dominators (petgraph's) shown to differ; the object count of
//! every class against hprof-slurp's histogram (`cargo install hprof-slurp
//! --version 0.10.0 --locked`, which `.ci/run` does); and the round trip
//! through heapdump's own HPROF converter (a Go dump and the JDK's: every
//! reachable object back at its address with its size, references and
//! retained size).
//!
//! A missing JDK, VisualVM or hprof-slurp skips loudly, and fails with
//! `HEAPDUMP_REQUIRE_ORACLES=1` (CI).

#[path = "../../crates/heapdump-convert/tests/oracle/visualvm.rs"]
mod visualvm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use heapdump_analysis::leaks::{leaks, LeakOptions};
use heapdump_inspect::{Heap, NoProgress, Options};
use heapdump_reader::formats::hprof;

const SESSIONS: u64 = 500;

/// Compiles and runs LeakyCache; the dump's path, or `None` (skipped).
fn jdk_dump(name: &str) -> Option<PathBuf> {
    if !visualvm::runs("java", "-version") || !visualvm::runs("javac", "-version") {
        return visualvm::missing("java or javac is missing");
    }
    let dir = visualvm::temp_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/LeakyCache.java");
    let output = Command::new("javac")
        .arg("-d")
        .arg(&dir)
        .arg(&source)
        .output()
        .expect("run javac");
    assert!(
        output.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = dir.join("app.hprof");
    let _ = std::fs::remove_file(&dump);
    let output = Command::new("java")
        .arg("-Xmx256m")
        .arg("-cp")
        .arg(&dir)
        .arg("LeakyCache")
        .arg(&dump)
        .arg(SESSIONS.to_string())
        .output()
        .expect("run java");
    assert!(
        output.status.success(),
        "java: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // What the program counted ("count NAME N"), for the waste report.
    std::fs::write(dir.join("counts.txt"), &output.stdout).unwrap();
    Some(dump)
}

/// The "count NAME VALUE" lines LeakyCache printed for the dump at `dump`.
fn program_counts(dump: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(dump.with_file_name("counts.txt")).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("count "))
        .filter_map(|line| line.split_once(' '))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

#[test]
fn jdk_dump_counts_leaks_and_visualvm_sizes() {
    let Some(path) = jdk_dump("counts") else {
        return;
    };
    let started = std::time::Instant::now();
    let heap = Heap::open(&path, &Options::default(), &mut NoProgress).expect("open the dump");
    let elapsed = started.elapsed();
    let graph = heap.graph();
    let dump = graph.dump();
    let analysis = heap.analysis();
    eprintln!(
        "{} bytes, {} objects opened and analysed in {:?}",
        std::fs::metadata(&path).unwrap().len(),
        dump.objects.len(),
        elapsed
    );

    // What the program built.
    let mut counts: HashMap<String, u64> = HashMap::new();
    for object in &dump.objects {
        *counts
            .entry(dump.class_name(&dump.object_class(object)))
            .or_default() += 1;
    }
    assert_eq!(counts["LeakyCache$Session"], SESSIONS);
    assert_eq!(counts["LeakyCache$ListNode"], 300);
    assert_eq!(counts["LeakyCache$TreeNode"], 255);
    let payloads = dump
        .objects
        .iter()
        .filter(|object| {
            dump.class_name(&dump.object_class(object)) == "byte[]" && object.contents_len() == 1000
        })
        .count() as u64;
    assert!(payloads >= SESSIONS, "{payloads} payloads");

    // Strings as text: the 200 duplicates and the sessions' user names.
    let texts: Vec<String> = dump
        .objects
        .iter()
        .filter_map(|object| dump.object_text(object))
        .collect();
    let duplicates = texts
        .iter()
        .filter(|text| *text == "duplicate-value")
        .count();
    assert!(duplicates >= 200, "{duplicates} duplicate strings");
    for id in [0, SESSIONS - 1] {
        let user = format!("user-{id}");
        assert!(texts.contains(&user), "no string {user:?}");
    }
    assert!(texts.iter().any(|text| text == "LeakyCache"), "class names");

    // The top suspect: the cache's map, held from LeakyCache.CACHE.
    let report = leaks(graph, analysis, &LeakOptions::default());
    let top = report.suspects.first().expect("a suspect");
    eprintln!("top suspect: {}", top.summary);
    let extras = hprof::extras(dump).expect("HPROF extras");
    let path_steps = &top.path.as_ref().expect("a path").steps;
    let map_step = path_steps
        .iter()
        .position(|step| step.object.class == "java.util.HashMap")
        .expect("the path goes through the HashMap");
    let holder = &path_steps[map_step - 1];
    let field = extras
        .static_field_name(holder.object.address, holder.field_offset.unwrap())
        .expect("the holder is a class's static field");
    assert_eq!(field, "LeakyCache.CACHE");
    // The model names it too (Dump::field_name), on the path and in the
    // suspect's summary.
    assert_eq!(holder.field.as_deref(), Some("LeakyCache.CACHE"));
    assert!(
        top.summary.contains("held by LeakyCache.CACHE"),
        "{}",
        top.summary
    );
    assert!(
        path_steps
            .iter()
            .skip(map_step)
            .any(|step| step.field.as_deref() == Some("table")),
        "HashMap.table is named: {path_steps:?}"
    );
    let map = &path_steps[map_step].object;
    assert_eq!(
        holder.object.class, "class LeakyCache",
        "the holder is LeakyCache's class object"
    );
    assert_eq!(
        top.object.address, map.address,
        "the top suspect is the map: {}",
        top.summary
    );
    assert_eq!(top.object.class, "java.util.HashMap");
    let per_session = 32 + 1016 + 24; // Session, byte[1000], HashMap$Node
    assert!(
        map.retained.unwrap() > SESSIONS * per_session,
        "the map retains the sessions: {:?}",
        map.retained
    );

    // VisualVM: every object's shallow and retained size.
    let Some(view) = visualvm::visualvm(&path, 10, true) else {
        return;
    };
    let by_address: HashMap<u64, &heapdump_reader::Object> = dump
        .objects
        .iter()
        .map(|object| (object.address, object))
        .collect();
    assert_eq!(
        view.objects.len() as u64 + extras.classes.len() as u64,
        dump.objects.len() as u64
    );
    let live: u64 = dump.objects.iter().map(|object| object.size).sum();
    assert_eq!(view.bytes, live, "total bytes");
    let mut retained_differ = Vec::new();
    for (address, (class, shallow, retained)) in &view.objects {
        let object = by_address
            .get(address)
            .unwrap_or_else(|| panic!("VisualVM's {address:#x} ({class}) is not ours"));
        assert_eq!(
            *shallow, object.size,
            "shallow size of {address:#x} ({class})"
        );
        let id = graph.object_at(*address).unwrap();
        let ours = analysis.retained_size_of(id).unwrap_or(0);
        if ours != *retained {
            retained_differ.push((*address, class.clone(), *retained, ours));
        }
    }
    for (address, class, theirs, ours) in retained_differ.iter().take(20) {
        eprintln!("retained differs: {address:#x} {class}: VisualVM {theirs}, heapdump {ours}");
    }
    eprintln!(
        "retained sizes: {} of {} objects differ from VisualVM",
        retained_differ.len(),
        view.objects.len()
    );
    // Reachability: the objects VisualVM's breadth-first search from the
    // roots never meets (retained size 0) are exactly our unreachable ones.
    let mut unreachable_classes: HashMap<&str, u64> = HashMap::new();
    let mut disagree = Vec::new();
    for (address, (class, _, retained)) in &view.objects {
        let id = graph.object_at(*address).unwrap();
        let ours = analysis.retained_size_of(id).is_none();
        if ours {
            *unreachable_classes.entry(class).or_default() += 1;
        }
        if ours != (*retained == 0) {
            disagree.push((*address, class.clone(), *retained));
        }
    }
    let mut unreachable_classes: Vec<_> = unreachable_classes.into_iter().collect();
    unreachable_classes.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    eprintln!(
        "unreachable: {} objects, {:?}",
        unreachable_classes.iter().map(|(_, n)| n).sum::<u64>(),
        unreachable_classes.iter().take(8).collect::<Vec<_>>()
    );
    assert!(
        disagree.is_empty(),
        "reachability disagrees with VisualVM: {disagree:x?}"
    );
    assert!(dump.root_caveat().is_some(), "the caveat explains them");
    // The cache itself agrees exactly.
    let theirs = view.objects[&map.address].2;
    assert_eq!(map.retained, Some(theirs), "the map's retained size");
    // Every retained size agrees.
    assert!(
        retained_differ.is_empty(),
        "{} retained sizes differ from VisualVM's: {:x?}",
        retained_differ.len(),
        &retained_differ[..retained_differ.len().min(20)]
    );
    check_visualvm_rules(graph, analysis, &view.objects);
}

/// The two rules of VisualVM's dominator tree that heapdump follows
/// (`heapdump_analysis::analyze`), checked where they apply in the dump,
/// and shown to matter: plain dominators over the strong references
/// (petgraph's, an independent computation) give other retained sizes than
/// VisualVM's for some objects, each of which has in its dominator subtree
/// an object one of the rules applies to.
///
/// 1. A weak reference (`Reference.referent`) counts as a referrer: the
///    immediate dominator of an object a reachable `Reference` refers to
///    also dominates that `Reference`.
/// 2. A reference from an object the roots do not reach (HotSpot writes
///    only live objects: those are held by memory the dump leaves out)
///    counts as one from outside the heap: its target is dominated by the
///    virtual root.
fn check_visualvm_rules(
    graph: &heapdump_reader::HeapGraph<'_>,
    analysis: &heapdump_analysis::Analysis,
    visualvm: &HashMap<u64, (String, u64, u64)>,
) {
    use heapdump_analysis::Dominator;
    use heapdump_reader::{HeapNode, ObjectId};

    let reached = |id: ObjectId| analysis.retained_size_of(id).is_some();
    let dominates = |dominator: Dominator, mut object: ObjectId| loop {
        match analysis.immediate_dominator(object) {
            None => return false,
            Some(up) if up == dominator => return true,
            Some(Dominator::Root) => return false,
            Some(Dominator::Object(up)) => object = up,
        }
    };
    // The objects each rule applies to.
    let mut ruled = vec![false; graph.object_count()];
    let (mut weak, mut held) = (0u64, 0u64);
    for (source, _) in graph.objects() {
        let source_reached = reached(source);
        for target in graph.weak_references(source) {
            if !source_reached || !reached(target) {
                continue;
            }
            let up = analysis.immediate_dominator(target).unwrap();
            assert!(
                up == Dominator::Root || up == Dominator::Object(source) || dominates(up, source),
                "rule 1: {target} is weakly referred to by {source}, not dominated by {up:?}"
            );
            weak += 1;
            ruled[target.index()] = true;
        }
        if source_reached {
            continue;
        }
        let strong = graph.references(source).map(|(target, _)| target);
        for target in strong.chain(graph.weak_references(source)) {
            if reached(target) {
                assert_eq!(
                    analysis.immediate_dominator(target),
                    Some(Dominator::Root),
                    "rule 2: {target} is referred to by the unreachable {source}"
                );
                held += 1;
                ruled[target.index()] = true;
            }
        }
    }
    eprintln!(
        "VisualVM's rules: {weak} weak references, {held} references from unreachable objects"
    );
    assert!(weak > 0 && held > 0, "both rules apply in the dump");

    // Plain dominators over strong references: the retained sizes the rules
    // change.
    let plain = petgraph::algo::dominators::simple_fast(graph, HeapNode::Root);
    let mut retained = vec![0u64; graph.object_count()];
    let mut ruled_below = vec![false; graph.object_count()];
    for (id, object) in graph.objects() {
        let mut node = HeapNode::Object(id);
        let is_ruled = ruled[id.index()];
        while let HeapNode::Object(up) = node {
            retained[up.index()] += object.size;
            ruled_below[up.index()] |= is_ruled;
            node = plain.immediate_dominator(node).unwrap_or(HeapNode::Root);
        }
    }
    let mut changed = 0u64;
    for (id, object) in graph.objects() {
        // Class objects are not VisualVM's instances.
        let Some((_, _, theirs)) = visualvm.get(&object.address) else {
            continue;
        };
        if reached(id) && retained[id.index()] != *theirs {
            changed += 1;
            assert!(
                ruled_below[id.index()],
                "{id} ({:#x}): plain dominators give {}, VisualVM {theirs}, and no rule applies below it",
                object.address,
                retained[id.index()]
            );
        }
    }
    eprintln!(
        "plain dominators over strong references: {changed} retained sizes differ from VisualVM's"
    );
    assert!(changed > 0, "the rules change retained sizes in the dump");
}

/// Converts the dump at `source` to HPROF with heapdump's converter, reads
/// that back with the HPROF decoder, and checks that every object the
/// converter writes (the reachable ones) is there with its size, its
/// references (by address; weak ones read back as plain references) and
/// its retained size (the converter writes what VisualVM's dominator rules
/// need: weak references as plain ones, and the objects that the
/// unreachable objects it leaves out refer to as roots). Returns the number
/// of references compared.
fn round_trip(label: &str, source: &Path, options: &Options) -> u64 {
    let heap = Heap::open(source, options, &mut NoProgress).expect("open the source");
    let graph = heap.graph();
    let analysis = heap.analysis();
    let out = visualvm::temp_dir().join(format!("{label}.round-trip.hprof"));
    let namer = heap.root_namer();
    let report = heapdump_inspect::convert::hprof::write_hprof(
        graph,
        &namer,
        &heapdump_inspect::convert::hprof::Options::default(),
        std::io::BufWriter::new(std::fs::File::create(&out).unwrap()),
        &mut |_, _| {},
    )
    .expect("write HPROF");
    assert_eq!(report.dropped_references, 0, "{label}: references dropped");
    let back = Heap::open(&out, &Options::default(), &mut NoProgress).expect("read it back");
    let back_graph = back.graph();
    let back_analysis = back.analysis();
    let mut compared = 0u64;
    let mut objects = 0u64;
    for (id, object) in graph.objects() {
        if analysis.retained_size_of(id).is_none() {
            continue; // unreachable: not written
        }
        objects += 1;
        let back_id = back_graph
            .object_at(object.address)
            .unwrap_or_else(|| panic!("{label}: {:#x} is missing", object.address));
        let back_object = back_graph.object(back_id).unwrap();
        assert_eq!(back_object.address, object.address, "{label}: address");
        let dump = graph.dump();
        let back_dump = back_graph.dump();
        assert_eq!(
            back_object.size,
            object.size,
            "{label}: size of {:#x} ({}, back: {})",
            object.address,
            dump.class_name(&dump.object_class(object)),
            back_dump.class_name(&back_dump.object_class(back_object))
        );
        let targets = |graph: &heapdump_reader::HeapGraph<'_>, id| {
            let mut targets: Vec<u64> = graph
                .references(id)
                .map(|(target, _)| graph.object(target).unwrap().address)
                .collect();
            targets.sort_unstable();
            targets
        };
        // The converter writes weak references (to written objects) as
        // plain ones: its classes are no weak-reference classes.
        let mut ours = targets(graph, id);
        ours.extend(
            graph
                .weak_references(id)
                .filter(|&target| analysis.retained_size_of(target).is_some())
                .map(|target| graph.object(target).unwrap().address),
        );
        ours.sort_unstable();
        ours.dedup();
        compared += ours.len() as u64;
        assert_eq!(
            targets(back_graph, back_id),
            ours,
            "{label}: references of {:#x}",
            object.address
        );
        assert_eq!(
            back_analysis.retained_size_of(back_id),
            analysis.retained_size_of(id),
            "{label}: retained size of {:#x}",
            object.address
        );
    }
    eprintln!("{label}: {objects} objects and {compared} references round-trip through HPROF");
    let _ = std::fs::remove_file(&out);
    compared
}

#[test]
fn dumps_round_trip_through_heapdumps_hprof_converter() {
    // A Go dump (exact pointers, goroutine frames, globals named from the
    // binary).
    let go = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/go/dumps/go1.26.godump");
    let options = Options {
        binary: Some(go.with_extension("bin")),
        ..Options::default()
    };
    assert!(round_trip("go1.26", &go, &options) > 0);
    // The JDK's own dump: packed instance fields (references at any byte
    // offset) and 8-byte ids for 4-byte compressed references.
    let Some(path) = jdk_dump("round-trip") else {
        return;
    };
    let references = round_trip("jdk", &path, &Options::default());
    assert!(references > 30_000, "{references} references");
}

/// hprof-slurp's class histogram of `path` (class name → instances), or
/// `None` when hprof-slurp is missing (a loud skip; a failure in CI).
fn hprof_slurp(path: &Path) -> Option<HashMap<String, u64>> {
    if !visualvm::runs("hprof-slurp", "--version") {
        return visualvm::missing(
            "hprof-slurp is missing (`cargo install hprof-slurp --version 0.10.0 --locked`)",
        );
    }
    let json = path.with_extension("slurp.json");
    let output = Command::new("hprof-slurp")
        .arg(path)
        .arg("--top")
        .arg("1000000")
        .arg("--json")
        .arg("--output")
        .arg(&json)
        .output()
        .expect("run hprof-slurp");
    assert!(
        output.status.success(),
        "hprof-slurp: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("hprof-slurp's JSON")).unwrap();
    let _ = std::fs::remove_file(&json);
    let classes = value["heap"]["top_allocated_classes"]
        .as_array()
        .expect("top_allocated_classes");
    assert_eq!(
        classes.len() as u64,
        value["heap"]["class_count"].as_u64().unwrap(),
        "every class listed"
    );
    Some(
        classes
            .iter()
            .map(|class| {
                (
                    class["class_name"].as_str().unwrap().to_owned(),
                    class["instance_count"].as_u64().unwrap(),
                )
            })
            .collect(),
    )
}

#[test]
fn object_counts_per_class_equal_hprof_slurps() {
    let Some(path) = jdk_dump("slurp") else {
        return;
    };
    let file = heapdump_reader::DumpFile::open(&path).unwrap();
    let dump = heapdump_reader::parse(file.bytes(), &mut |_, _| {}).expect("parse");
    let mut ours: HashMap<String, u64> = HashMap::new();
    for object in &dump.objects {
        let name = dump.class_name(&dump.object_class(object));
        if !name.starts_with(hprof::CLASS_OBJECT_PREFIX) {
            *ours.entry(name).or_default() += 1;
        }
    }
    let Some(theirs) = hprof_slurp(&path) else {
        return;
    };
    let mut differ: Vec<_> = ours
        .iter()
        .filter(|(name, count)| theirs.get(*name) != Some(*count))
        .map(|(name, count)| (name.clone(), *count, theirs.get(name).copied()))
        .chain(
            theirs
                .iter()
                .filter(|(name, _)| !ours.contains_key(*name))
                .map(|(name, count)| (name.clone(), 0, Some(*count))),
        )
        .collect();
    differ.sort();
    assert!(
        differ.is_empty(),
        "(class, ours, hprof-slurp's): {differ:?}"
    );
    eprintln!(
        "{} classes, {} objects: the same counts as hprof-slurp",
        ours.len(),
        ours.values().sum::<u64>()
    );
}

/// `heapdump serve` on a JDK dump: the top suspect's object page names its
/// fields (`table`) and the static field that holds it
/// (`LeakyCache.CACHE`), from the format's field names; the page of the
/// linked list's last node counts its hundreds of dominators.
#[test]
fn serve_names_the_fields_of_a_jdk_dump() {
    let Some(path) = jdk_dump("serve") else {
        return;
    };
    let heap = Heap::open(&path, &Options::default(), &mut NoProgress).expect("open the dump");
    // The list's last node, whose dominators are every node above it.
    let (graph, analysis) = (heap.graph(), heap.analysis());
    let depth = |node| {
        std::iter::successors(Some(node), |&node| analysis.idom(node))
            .take_while(|&node| node != heapdump_analysis::DomNode::ROOT)
            .count()
            - 1
    };
    let (deepest, dominators) = graph
        .objects()
        .filter_map(|(id, _)| {
            let object = heapdump_analysis::describe::ObjectRef::new(graph, analysis, id)?;
            (object.class == "LeakyCache$ListNode")
                .then_some((object.address, depth(analysis.node(id)?)))
        })
        .max_by_key(|&(_, depth)| depth)
        .expect("the list's nodes");
    let app = heapdump_server::App::new(heap, "app.hprof");
    let leaks = app.handle("/api/leaks");
    assert_eq!(leaks.status, 200);
    let leaks: serde_json::Value = serde_json::from_slice(&leaks.body).unwrap();
    let address = leaks["suspects"][0]["object"]["address"].as_u64().unwrap();
    let page = app.handle(&format!("/object/{address:#x}"));
    assert_eq!(page.status, 200);
    let page = String::from_utf8(page.body).unwrap();
    assert!(page.contains("<code>table</code>"), "{page}");
    assert!(page.contains("LeakyCache.CACHE"), "{page}");

    // Its page counts them all and shows the chain's ends, as `heapdump
    // path` does, with the middle counted.
    assert!(dominators >= 299, "{dominators}");
    let page = String::from_utf8(app.handle(&format!("/object/{deepest:#x}")).body).unwrap();
    assert!(
        page.contains(&format!("<h2>Dominators ({dominators}), nearest first")),
        "{page}"
    );
    assert!(
        page.contains(&format!("… {} more objects (", dominators - 32)),
        "{page}"
    );
    let path: serde_json::Value =
        serde_json::from_slice(&app.handle(&format!("/api/path/{deepest:#x}")).body).unwrap();
    assert_eq!(path["dominators"].as_array().unwrap().len(), 32);
    assert_eq!(
        path["dominators_omitted"]["objects"],
        dominators as u64 - 32
    );
}

/// `heapdump waste` on the JDK's dump finds exactly what the program built
/// and counted: the copies of a string built at run time (each with its own
/// `byte[]`, counted with its string), the `duplicate-value` strings, the
/// payloads with equal contents, the empty and sparse collections its
/// holders keep, each held from the field the program put it in.
#[test]
fn waste_finds_the_duplicates_and_collections_the_program_counted() {
    use heapdump_analysis::waste::{waste, CollectionState, Referrer, WasteOptions};

    let Some(path) = jdk_dump("waste") else {
        return;
    };
    let counts = program_counts(&path);
    let count = |name: &str| -> u64 { counts[name].parse().unwrap() };
    let heap = Heap::open(&path, &Options::default(), &mut NoProgress).expect("open the dump");
    let (graph, analysis) = (heap.graph(), heap.analysis());
    let dump = graph.dump();
    let report = waste(
        graph,
        analysis,
        &WasteOptions {
            limit: usize::MAX,
            referrers: 100,
        },
    );
    let held_by = |referrers: &[Referrer], class: &str, field: &str| {
        referrers
            .iter()
            .find(|r| r.class == class && r.field.as_deref() == Some(field))
            .map_or(0, |r| r.count)
    };

    // The run-time copies: one group, each copy a String and its own byte[].
    let value = &counts["copies-value"];
    let copies = report
        .strings
        .rows
        .iter()
        .find(|row| row.preview == format!("{value:?}"))
        .expect("the copies' group");
    assert_eq!(copies.count, count("copies"));
    assert_eq!(copies.class, "java.lang.String");
    assert_eq!(copies.length, value.len() as u64);
    let members: Vec<&heapdump_reader::Object> = dump
        .objects
        .iter()
        .filter(|object| dump.object_text(object).as_deref() == Some(value.as_str()))
        .collect();
    assert_eq!(members.len() as u64, copies.count);
    let retained: Vec<u64> = members
        .iter()
        .map(|object| {
            let id = graph.object_at(object.address).unwrap();
            analysis.retained_size_of(id).unwrap()
        })
        .collect();
    assert!(retained.iter().all(|&size| size == retained[0]));
    // A String and its byte[] of 10 Latin-1 bytes.
    assert!(retained[0] > members[0].size, "each copy retains its array");
    assert_eq!(copies.size, retained[0]);
    assert_eq!(copies.wasted_bytes, (copies.count - 1) * copies.size);
    assert_eq!(
        held_by(&copies.referrers, "java.lang.String[]", "[]"),
        copies.count
    );
    // Their arrays are counted with the strings, not again as values.
    assert!(
        !report
            .values
            .rows
            .iter()
            .any(|row| row.preview == format!("{value:?}")),
        "a copy's own byte[] is not a duplicate value of its own"
    );

    // duplicate-value: the program's copies, plus the literal they were
    // made from when the dump holds it (from the class's constant pool).
    let duplicates = report
        .strings
        .rows
        .iter()
        .find(|row| row.preview == "\"duplicate-value\"")
        .expect("the duplicate-value group");
    let literal = duplicates.count - count("duplicates");
    assert!(literal <= 1, "{} copies", duplicates.count);
    assert_eq!(
        held_by(&duplicates.referrers, "java.lang.Object[]", "[]"),
        duplicates.count
    );

    // Payloads with equal contents: groups of byte[] held by Session.payload.
    let payloads: Vec<_> = report
        .values
        .rows
        .iter()
        .filter(|row| held_by(&row.referrers, "LeakyCache$Session", "payload") > 0)
        .collect();
    assert_eq!(payloads.len() as u64, count("payload-groups"));
    let extra: u64 = payloads.iter().map(|row| row.count - 1).sum();
    assert_eq!(extra, count("payload-extra"));
    for row in &payloads {
        assert_eq!(row.class, "byte[]");
        assert_eq!(row.length, 1000);
        assert_eq!(
            held_by(&row.referrers, "LeakyCache$Session", "payload"),
            row.count
        );
        assert_eq!(row.wasted_bytes, (row.count - 1) * row.size);
    }
    assert!(report.values.groups >= count("payload-groups"));

    // Collections, by the holders' fields.
    let held = |class: &str, state: CollectionState, field: &str| {
        report
            .collections
            .rows
            .iter()
            .filter(|row| row.class == class && row.state == state)
            .map(|row| held_by(&row.referrers, "LeakyCache$Holder", field))
            .sum::<u64>()
    };
    assert_eq!(
        held("java.util.HashMap", CollectionState::Empty, "map"),
        count("empty-maps")
    );
    assert_eq!(
        held("java.util.ArrayList", CollectionState::Empty, "list"),
        count("empty-lists")
    );
    assert_eq!(
        held("java.util.HashMap", CollectionState::Sparse, "map"),
        count("sparse-holders")
    );
    assert_eq!(
        held("java.util.ArrayList", CollectionState::Sparse, "list"),
        count("sparse-holders")
    );
    // Sparse maps: 1,024 buckets, one used, each.
    let sparse = report
        .collections
        .rows
        .iter()
        .find(|row| row.class == "java.util.HashMap" && row.state == CollectionState::Sparse)
        .unwrap();
    assert!(sparse.slots >= 1024 * count("sparse-holders"));
    assert!(report.collections.empty >= count("empty-maps") + count("empty-lists"));
}
