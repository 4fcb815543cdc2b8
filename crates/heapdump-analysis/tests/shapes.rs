//! The analyses on hand-built dumps of known shape: a chain of a million
//! objects, diamonds, cycles, a hub with a million referrers, garbage of
//! every kind, and a random heap checked against the definition of
//! dominance. Dumps are written with the format's `DumpBuilder` and read
//! back with the reader, as the CLI does.

use heapdump_analysis::describe::thousands;
use heapdump_analysis::leaks::{leaks, LeakOptions, SuspectKind};
use heapdump_analysis::paths::{path, PathOptions, PATH_END_STEPS};
use heapdump_analysis::retained::{retained, RetainedOptions};
use heapdump_analysis::top::{top, TopOptions};
use heapdump_analysis::{analyze, DomNode, Dominator, Reachability};
use heapdump_format::builder::{DumpBuilder, Module, Params};
use heapdump_reader::ObjectId;

mod support;

use support::{dump_bytes, read, BASE, SEGMENT};

fn idom(analysis: &heapdump_analysis::Analysis, object: u32) -> Option<Dominator> {
    analysis.immediate_dominator(ObjectId(object))
}

#[test]
fn a_chain_of_a_million() {
    const N: u32 = 1_000_000;
    let edges: Vec<Vec<u32>> = (0..N)
        .map(|i| if i + 1 < N { vec![i + 1] } else { vec![] })
        .collect();
    let bytes = dump_bytes(&edges, &[0], 16);
    let graph = read(&bytes);
    let analysis = analyze(&graph);
    assert_eq!(analysis.reachable_objects(), u64::from(N));
    assert_eq!(analysis.reachable_bytes(), 16 * u64::from(N));
    assert_eq!(idom(&analysis, 0), Some(Dominator::Root));
    for object in [1, 2, N / 2, N - 1] {
        assert_eq!(
            idom(&analysis, object),
            Some(Dominator::Object(ObjectId(object - 1)))
        );
        assert_eq!(
            analysis.retained_size_of(ObjectId(object)),
            Some(16 * u64::from(N - object))
        );
    }
    // Reports stay within their limits on a million-deep tree.
    let report = retained(
        &graph,
        &analysis,
        &RetainedOptions {
            depth: 1000,
            ..RetainedOptions::default()
        },
    );
    assert_eq!(report.tree.len(), 1);
    let mut depth = 0;
    let mut node = &report.tree[0];
    while let Some(child) = node.children.first() {
        node = child;
        depth += 1;
    }
    assert_eq!(depth, heapdump_analysis::retained::MAX_DEPTH - 1);
    let why = path(
        &graph,
        &analysis,
        BASE + 64 * u64::from(N - 1),
        &PathOptions::default(),
    )
    .unwrap();
    assert_eq!(why.paths.len(), 1);
    // A million-object path keeps its ends and counts the rest, by class:
    // every object here is 16 bytes.
    let ends = 2 * PATH_END_STEPS;
    assert_eq!(why.paths[0].object_count(), u64::from(N));
    assert_eq!(why.paths[0].steps.len(), ends);
    let omitted = why.paths[0].omitted.as_ref().expect("a long path omits");
    assert_eq!(omitted.at, PATH_END_STEPS);
    assert_eq!(omitted.objects, u64::from(N) - ends as u64);
    assert_eq!(omitted.classes.len(), 1);
    assert_eq!(omitted.classes[0].objects, omitted.objects);
    assert_eq!(omitted.classes[0].class, "1..16 B");
    // The last steps are the chain's last objects, ending at the target.
    let last = why.paths[0].steps.last().unwrap();
    assert_eq!(last.object.id, N - 1);
    assert_eq!(last.field_offset, None);
    assert_eq!(why.dominators.len(), ends);
    let omitted = why.dominators_omitted.as_ref().expect("a long chain omits");
    assert_eq!(omitted.objects, u64::from(N) - 1 - ends as u64);
    assert_eq!(why.dominators[0].id, 0);
    assert_eq!(why.dominators[ends - 1].id, N - 2);
    let report = leaks(&graph, &analysis, &LeakOptions::default());
    let suspect = &report.suspects[0];
    assert_eq!(suspect.kind, SuspectKind::Single);
    assert_eq!(suspect.object.id, 0);
    // Each step down keeps all but one object of its parent, so the walk
    // goes on to the chain's end, where the last object retains 16 of the
    // 32 bytes (under 70%) and the one before 32 of 48.
    assert_eq!(suspect.accumulation_point.object.id, N - 3);
    assert_eq!(suspect.accumulation_point.depth, u64::from(N - 3));
    // Its path goes down the chain in order, each step through the word
    // at offset 0, the last with none; the middle is counted, not listed.
    let path = suspect.path.as_ref().unwrap();
    assert_eq!(path.object_count(), u64::from(N) - 2);
    let steps = &path.steps;
    assert_eq!(steps.len(), ends);
    let gap = N - 2 - ends as u32;
    for (index, step) in steps.iter().enumerate() {
        let id = if index < PATH_END_STEPS {
            index as u32
        } else {
            index as u32 + gap
        };
        assert_eq!(step.object.id, id);
        let last = index + 1 == steps.len();
        assert_eq!(step.field_offset, (!last).then_some(0), "step {index}");
    }
    // "a chain of" counts every object, the omitted ones too.
    assert!(
        suspect.summary.contains(&format!(
            "through a chain of {}",
            thousands(u64::from(N) - 2)
        )),
        "{}",
        suspect.summary
    );
}

#[test]
fn diamonds_and_cycles() {
    // 0 -> 1, 2; 1 -> 3; 2 -> 3; 3 -> 4 (a diamond), 4 -> 5 -> 6 -> 4 (a
    // cycle), 6 -> 7.
    let edges = vec![
        vec![1, 2],
        vec![3],
        vec![3],
        vec![4],
        vec![5],
        vec![6],
        vec![4, 7],
        vec![],
    ];
    let bytes = dump_bytes(&edges, &[0], 32);
    let graph = read(&bytes);
    let analysis = analyze(&graph);
    let expected = [
        None,
        Some(0),
        Some(0),
        Some(0),
        Some(3),
        Some(4),
        Some(5),
        Some(6),
    ];
    for (object, expected) in expected.iter().enumerate() {
        let want = match expected {
            None => Dominator::Root,
            Some(up) => Dominator::Object(ObjectId(*up)),
        };
        assert_eq!(
            idom(&analysis, object as u32),
            Some(want),
            "object {object}"
        );
    }
    assert_eq!(analysis.retained_size_of(ObjectId(0)), Some(8 * 32));
    assert_eq!(analysis.retained_size_of(ObjectId(1)), Some(32));
    assert_eq!(analysis.retained_size_of(ObjectId(3)), Some(5 * 32));
    assert_eq!(analysis.retained_size_of(ObjectId(4)), Some(4 * 32));
    assert_eq!(analysis.children(DomNode::ROOT).len(), 1);
}

#[test]
fn a_hub_with_a_million_referrers() {
    const N: u32 = 1_000_000;
    // Object 0 is the hub; 1..=N point at it.
    let mut edges: Vec<Vec<u32>> = vec![vec![]];
    edges.extend((1..=N).map(|_| vec![0]));
    // Held by roots one by one: the hub is shared, so the root dominates it.
    let roots: Vec<u32> = (1..=N).collect();
    let bytes = dump_bytes(&edges, &roots, 16);
    let graph = read(&bytes);
    let analysis = analyze(&graph);
    assert_eq!(idom(&analysis, 0), Some(Dominator::Root));
    assert_eq!(analysis.retained_size_of(ObjectId(0)), Some(16));
    assert_eq!(analysis.retained_size_of(ObjectId(N)), Some(16));
    assert_eq!(analysis.children(DomNode::ROOT).len(), N as usize + 1);
    let report = top(&graph, &analysis, &TopOptions::default());
    assert_eq!(report.objects, u64::from(N) + 1);

    // Held by one array instead: the array dominates everything.
    let array = N + 1;
    edges.push((1..=N).collect());
    let bytes = dump_bytes(&edges, &[array], 16);
    let graph = read(&bytes);
    let analysis = analyze(&graph);
    assert_eq!(idom(&analysis, 0), Some(Dominator::Object(ObjectId(array))));
    assert_eq!(
        analysis.retained_size_of(ObjectId(array)),
        Some(u64::from(N) * 8 + 16 * u64::from(N + 1))
    );
    let report = leaks(&graph, &analysis, &LeakOptions::default());
    assert_eq!(report.suspects[0].object.id, array);
    assert_eq!(report.suspects[0].accumulation_point.object.id, array);
    assert_eq!(
        report.suspects[0].accumulation_point.direct_children,
        u64::from(N) + 1
    );
}

#[test]
fn garbage_is_classified_like_leak_sanitizer() {
    // 0: reachable. 1 -> 2 -> 3: 1 is directly unreachable, 2 and 3
    // indirectly. 4 <-> 5 -> 6: a cycle and what hangs off it. 7 -> 7: a
    // self-loop is still direct.
    let edges = vec![
        vec![],
        vec![2],
        vec![3],
        vec![],
        vec![5],
        vec![4, 6],
        vec![],
        vec![7],
    ];
    let bytes = dump_bytes(&edges, &[0], 24);
    let graph = read(&bytes);
    let analysis = analyze(&graph);
    use Reachability::*;
    let expected = [
        Reachable,
        DirectlyUnreachable,
        IndirectlyUnreachable,
        IndirectlyUnreachable,
        InUnreachableCycle,
        InUnreachableCycle,
        InUnreachableCycle,
        DirectlyUnreachable,
    ];
    for (object, want) in expected.iter().enumerate() {
        assert_eq!(
            analysis.reachability(ObjectId(object as u32)),
            *want,
            "object {object}"
        );
    }
    let report = leaks(&graph, &analysis, &LeakOptions::default());
    assert_eq!(report.unreachable.objects, 7);
    assert_eq!(report.unreachable.bytes, 7 * 24);
    let kinds: Vec<(Reachability, u64)> = report
        .unreachable
        .by_reachability
        .iter()
        .map(|kind| (kind.reachability, kind.objects))
        .collect();
    assert_eq!(
        kinds,
        [
            (DirectlyUnreachable, 2),
            (IndirectlyUnreachable, 2),
            (InUnreachableCycle, 3)
        ]
    );
    // Grouped by site: even objects were allocated at site 7.
    assert!(report.unreachable.by_site.iter().any(|group| {
        group.reachability == InUnreachableCycle
            && group.group.stack_id.map(|id| id.get()) == Some(7)
    }));
    serde_json::to_string(&report).unwrap();
}

/// Retained sizes against the definition on random heaps of a few hundred
/// objects, through the whole reader (interior pointers included).
/// A xorshift generator: `next(bound)` is below `bound`.
fn xorshift(mut state: u64) -> impl FnMut(u64) -> u64 {
    move |bound| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    }
}

/// A random heap of 50 to 299 objects, each with up to 3 edges, and 1 to
/// `max_roots` roots: (objects, edges by object, roots).
fn random_heap(
    next: &mut impl FnMut(u64) -> u64,
    max_roots: u64,
) -> (u32, Vec<Vec<u32>>, Vec<u32>) {
    let count = 50 + next(250) as u32;
    let edges: Vec<Vec<u32>> = (0..count)
        .map(|_| {
            (0..next(4))
                .map(|_| next(u64::from(count)) as u32)
                .collect()
        })
        .collect();
    let roots: Vec<u32> = (0..1 + next(max_roots))
        .map(|_| next(u64::from(count)) as u32)
        .collect();
    (count, edges, roots)
}

#[test]
fn random_heaps_match_the_definition() {
    let mut next = xorshift(0x1234_5678);
    for _ in 0..20 {
        let (count, edges, roots) = random_heap(&mut next, 4);
        let bytes = dump_bytes(&edges, &roots, 40);
        let graph = read(&bytes);
        let analysis = analyze(&graph);
        let reach = |removed: Option<u32>| {
            let mut seen = vec![false; count as usize];
            let mut stack: Vec<u32> = roots
                .iter()
                .copied()
                .filter(|&r| Some(r) != removed)
                .collect();
            while let Some(node) = stack.pop() {
                if !std::mem::replace(&mut seen[node as usize], true) {
                    stack.extend(edges[node as usize].iter().filter(|&&t| Some(t) != removed));
                }
            }
            seen
        };
        let all = reach(None);
        for object in 0..count {
            if !all[object as usize] {
                assert_eq!(analysis.retained_size_of(ObjectId(object)), None);
                continue;
            }
            let without = reach(Some(object));
            let dominated = (0..count as usize)
                .filter(|&w| all[w] && !without[w])
                .count() as u64;
            assert_eq!(
                analysis.retained_size_of(ObjectId(object)),
                Some(40 * dominated)
            );
        }
    }
}

/// What an accumulation point holds directly, by class and by site, counted
/// here one child at a time: the report's parallel count over dense group
/// totals (more than 4096 children) and its map (fewer) must agree with it,
/// order and ties included.
#[test]
fn accumulation_point_content_matches_a_plain_count() {
    use heapdump_analysis::{Classifier, Grouping};
    use std::collections::BTreeMap;
    for children in [3000u32, 50_000] {
        // An array, after its children, holds children 1..=children; child
        // i has 1-5 16-byte units (five size classes), every other one
        // allocated at a sampled site.
        let address = |index: u32| BASE + 128 * u64::from(index);
        let array_address = address(children + 1);
        let mut dump = DumpBuilder::new(Vec::new()).unwrap();
        dump.params(&Params::default()).unwrap();
        dump.module(&Module::default()).unwrap();
        dump.root_segment(0, SEGMENT, &array_address.to_le_bytes())
            .unwrap();
        dump.stack(7, &[0x4000, 0x4100]).unwrap();
        for child in 1..=children {
            let units = 1 + (child % 5) as usize;
            let stack = if child % 2 == 0 { 7 } else { 0 };
            dump.object(address(child), stack, &vec![0u8; 16 * units])
                .unwrap();
        }
        let holder: Vec<u8> = (1..=children)
            .flat_map(|child| address(child).to_le_bytes())
            .collect();
        dump.object(array_address, 0, &holder).unwrap();
        let bytes = dump.finish().unwrap();
        let graph = read(&bytes);
        let analysis = analyze(&graph);
        let report = leaks(&graph, &analysis, &LeakOptions::default());
        let suspect = &report.suspects[0];
        let point = &suspect.accumulation_point;
        assert_eq!(point.object.address, array_address);
        assert_eq!(point.direct_children, u64::from(children));
        for (grouping, shares) in [
            (Grouping::Class, &point.content_by_class),
            (Grouping::Site, &point.content_by_site),
        ] {
            let classifier = Classifier::new(&graph, grouping);
            let mut counts: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
            for child in 1..=children {
                let id = graph.object_at(address(child)).unwrap();
                let object = graph.object(id).unwrap();
                let entry = counts.entry(classifier.group_of(object)).or_default();
                entry.0 += 1;
                entry.1 += analysis.retained_size_of(id).unwrap();
            }
            let mut expected: Vec<(usize, u64, u64)> = counts
                .into_iter()
                .map(|(group, (objects, bytes))| (group, objects, bytes))
                .collect();
            expected.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
            let expected: Vec<(String, u64, u64)> = expected
                .into_iter()
                .take(LeakOptions::default().content_groups)
                .map(|(group, objects, bytes)| (classifier.label(group).label, objects, bytes))
                .collect();
            let got: Vec<(String, u64, u64)> = shares
                .iter()
                .map(|share| {
                    (
                        share.group.label.clone(),
                        share.objects,
                        share.retained_bytes,
                    )
                })
                .collect();
            assert_eq!(got, expected, "{children} children by {grouping:?}");
            assert!(!got.is_empty());
        }
        // The path to it: the root's word, then the array.
        let path = suspect.path.as_ref().unwrap();
        assert_eq!(path.steps.len(), 1);
    }
}

/// A shortest path to an object through one of its dominators, found in
/// two parts (from the roots to the dominator, then from the dominator
/// alone: what the leaks report does for a suspect's accumulation point),
/// is as short as the search from the roots finds, and follows edges.
#[test]
fn paths_through_a_dominator_are_shortest() {
    use heapdump_analysis::paths::{LocalSearch, ShortestPathTree};
    let mut next = xorshift(0x9abc_def0);
    let mut checked = 0;
    for _ in 0..20 {
        let (count, edges, roots) = random_heap(&mut next, 3);
        let bytes = dump_bytes(&edges, &roots, 40);
        let graph = read(&bytes);
        let analysis = analyze(&graph);
        let tree = ShortestPathTree::build(&graph);
        let mut search = LocalSearch::new(&graph);
        for target in (0..count).map(ObjectId) {
            let Some(shortest) = tree.objects_to(target) else {
                continue;
            };
            let mut up = analysis.node(target).and_then(|node| analysis.idom(node));
            while let Some(node) = up.filter(|&node| node != DomNode::ROOT) {
                let dominator = analysis.object(node).unwrap();
                let mut path = tree.objects_to(dominator).unwrap();
                let below = search
                    .objects_between(&graph, dominator, target)
                    .expect("a dominated object is reachable from its dominator");
                assert_eq!(below.first(), Some(&dominator));
                assert_eq!(below.last(), Some(&target));
                path.extend(&below[1..]);
                assert_eq!(path.len(), shortest.len(), "{dominator:?} -> {target:?}");
                for pair in path.windows(2) {
                    assert!(
                        edges[pair[0].index()].contains(&pair[1].0),
                        "{pair:?} is an edge"
                    );
                }
                checked += 1;
                up = analysis.idom(node);
            }
        }
        // Nothing leads back up from a leaf to the roots' side.
        let leaf = (0..count).find(|&node| edges[node as usize].is_empty());
        if let (Some(leaf), Some(&root)) = (leaf, roots.first()) {
            if leaf != root {
                assert_eq!(
                    search.objects_between(&graph, ObjectId(leaf), ObjectId(root)),
                    None
                );
            }
        }
    }
    assert!(checked > 100, "{checked} paths checked");
}
