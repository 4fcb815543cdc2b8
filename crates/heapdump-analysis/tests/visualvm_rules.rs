//! The two rules by which the dominator tree follows VisualVM's
//! (`analyze`): a weak reference counts as a referrer of a reachable
//! object, and, in a dump whose objects are all alive
//! (`Capabilities::unreached_objects_hold`), a reference from an
//! unreachable object counts as one from outside the heap. Reachability
//! follows strong references only either way. The dump is written with the
//! heapdump-rs `DumpBuilder`, read back, and given a weak pointer word and
//! the capability by hand (as the HPROF reader gives them).

use std::borrow::Cow;

use heapdump_analysis::{analyze, Dominator};
use heapdump_reader::{parse, HeapGraph, ObjectId, PointerList, PointerOffsets};

mod support;

use support::dump_bytes;

// R roots A and W; A holds X and B; W refers to X weakly; X holds Y; V
// refers to Z weakly (Z: weakly held only); U (unreachable) holds B.
const R: u32 = 0;
const A: u32 = 1;
const W: u32 = 2;
const X: u32 = 3;
const Y: u32 = 4;
const V: u32 = 5;
const Z: u32 = 6;
const U: u32 = 7;
const B: u32 = 8;

/// The graph of the dump above, W's and V's first words weak pointers;
/// `held`: the dump's objects are all alive.
fn graph(bytes: &[u8], held: bool) -> HeapGraph<'_> {
    let mut dump = parse(bytes, &mut |_, _| {}).unwrap();
    {
        let list = PointerList::new(dump.pointer_lists.len()).unwrap();
        dump.pointer_lists
            .push(Cow::Owned(PointerOffsets::encode([0u64])));
        dump.weak_pointers.push((list, vec![0]));
        for index in [W, V] {
            dump.objects[index as usize].set_pointer_list(Some(list));
        }
    }
    dump.capabilities.unreached_objects_hold = held;
    HeapGraph::build(dump, &mut |_, _| {})
}

fn idom(analysis: &heapdump_analysis::Analysis, object: u32) -> Option<Dominator> {
    analysis.immediate_dominator(ObjectId(object))
}

#[test]
fn weak_referrers_and_unreachable_holders_share_what_they_refer_to() {
    let mut edges = vec![Vec::new(); 9];
    edges[R as usize] = vec![A, V, W];
    edges[A as usize] = vec![X, B];
    edges[W as usize] = vec![X];
    edges[X as usize] = vec![Y];
    edges[V as usize] = vec![Z];
    edges[U as usize] = vec![B];
    let bytes = dump_bytes(&edges, &[R], 32);
    let object = |id: u32| Some(Dominator::Object(ObjectId(id)));

    // W's and V's words are no references; X is still reachable (through
    // A alone), and W's weak reference makes R its immediate dominator;
    // Z is reached by nothing strong.
    let weak = graph(&bytes, false);
    assert_eq!(weak.references(ObjectId(W)).count(), 0);
    assert_eq!(
        weak.weak_references(ObjectId(W)).collect::<Vec<_>>(),
        [ObjectId(X)]
    );
    let analysis = analyze(&weak);
    assert_eq!(idom(&analysis, X), object(R));
    assert_eq!(idom(&analysis, Y), object(X));
    assert_eq!(idom(&analysis, B), object(A));
    assert_eq!(idom(&analysis, Z), None, "Z is only weakly held");
    assert_eq!(idom(&analysis, U), None);
    assert_eq!(analysis.retained_size_of(ObjectId(A)), Some(2 * 32));
    assert_eq!(analysis.retained_size_of(ObjectId(W)), Some(32));
    assert_eq!(analysis.retained_size_of(ObjectId(R)), Some(7 * 32));

    // Objects all alive: B, which the unreachable U refers to, is held
    // from outside the heap; U stays unreachable.
    let held = graph(&bytes, true);
    let analysis = analyze(&held);
    assert_eq!(idom(&analysis, B), Some(Dominator::Root));
    assert_eq!(idom(&analysis, X), object(R));
    assert_eq!(idom(&analysis, U), None);
    assert_eq!(idom(&analysis, Z), None);
    assert_eq!(analysis.retained_size_of(ObjectId(A)), Some(32));
    assert_eq!(analysis.retained_size_of(ObjectId(R)), Some(6 * 32));
    assert_eq!(analysis.retained_size_of(ObjectId(B)), Some(32));
    assert_eq!(analysis.reachable_objects(), 7);
}
