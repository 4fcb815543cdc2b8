//! Dominators and retained sizes against the definition, on 10,000 small
//! random graphs: `d` dominates `w` when removing `d` cuts `w` off from the
//! virtual root.

use heapdump_analysis::dominators::{Algorithm, Dominators};
use heapdump_analysis::FlowGraph;

/// Successor lists without repeats that say so, as the heap graph does (the
/// depth-first search then skips its check for copies of tree edges).
struct Distinct(Vec<Vec<u32>>);

impl FlowGraph for Distinct {
    fn node_count(&self) -> usize {
        self.0.len()
    }

    fn successors(&self, node: u32) -> &[u32] {
        self.0.get(node as usize).map_or(&[], Vec::as_slice)
    }

    fn distinct_successors(&self) -> bool {
        true
    }
}

/// SplitMix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// Nodes reachable from the virtual root (edges to `roots`) without
/// passing through `removed`.
fn reachable(graph: &[Vec<u32>], roots: &[u32], removed: Option<u32>) -> Vec<bool> {
    let mut seen = vec![false; graph.len()];
    let mut stack: Vec<u32> = roots
        .iter()
        .copied()
        .filter(|&r| Some(r) != removed)
        .collect();
    while let Some(node) = stack.pop() {
        if seen[node as usize] {
            continue;
        }
        seen[node as usize] = true;
        for &next in &graph[node as usize] {
            if Some(next) != removed && !seen[next as usize] {
                stack.push(next);
            }
        }
    }
    seen
}

/// `dominators[w]`: the strict dominators of `w` (objects only; the virtual
/// root dominates everything), or `None` if `w` is unreachable.
fn brute_force(graph: &[Vec<u32>], roots: &[u32]) -> Vec<Option<Vec<u32>>> {
    let all = reachable(graph, roots, None);
    let mut dominators: Vec<Option<Vec<u32>>> =
        all.iter().map(|&reached| reached.then(Vec::new)).collect();
    for d in 0..graph.len() as u32 {
        if !all[d as usize] {
            continue;
        }
        let without = reachable(graph, roots, Some(d));
        for w in 0..graph.len() {
            if all[w] && !without[w] && w as u32 != d {
                dominators[w].as_mut().unwrap().push(d);
            }
        }
    }
    dominators
}

fn random_graph(rng: &mut Rng) -> (Vec<Vec<u32>>, Vec<u32>) {
    let nodes = 1 + rng.below(24) as usize;
    let density = 1 + rng.below(4);
    let mut graph = vec![Vec::new(); nodes];
    for (node, successors) in graph.iter_mut().enumerate() {
        let count = rng.below(density * 2 + 1);
        for _ in 0..count {
            // Mostly forward edges (tree-like, as heaps are), some back.
            let target = if rng.below(3) == 0 {
                rng.below(nodes as u64)
            } else {
                (node as u64 + 1 + rng.below(4)).min(nodes as u64 - 1)
            };
            successors.push(target as u32);
        }
    }
    let root_count = 1 + rng.below(3);
    let roots = (0..root_count)
        .map(|_| rng.below(nodes as u64) as u32)
        .collect();
    (graph, roots)
}

#[test]
fn dominators_match_the_definition_on_random_graphs() {
    let mut rng = Rng(0x5eed);
    let mut fell_back = 0;
    for case in 0..10_000 {
        let (graph, roots) = random_graph(&mut rng);
        let sizes: Vec<u64> = (0..graph.len()).map(|_| 1 + rng.below(100)).collect();
        let expected = brute_force(&graph, &roots);
        for algorithm in [
            Algorithm::SemiNca,
            Algorithm::SemiNcaUnguarded,
            Algorithm::SimpleLengauerTarjan,
        ] {
            let dominators = Dominators::compute_with(&graph, &roots, algorithm);
            fell_back += usize::from(dominators.fell_back());
            for (w, strict) in expected.iter().enumerate() {
                let got = dominators.immediate_dominator(w as u32);
                let Some(strict) = strict else {
                    assert_eq!(
                        got, None,
                        "case {case} {algorithm:?}: node {w} is unreachable"
                    );
                    continue;
                };
                // The immediate dominator is the strict dominator that all
                // the others dominate: the one with the most dominators.
                let idom = strict
                    .iter()
                    .copied()
                    .max_by_key(|&d| expected[d as usize].as_ref().unwrap().len());
                assert_eq!(
                    got,
                    Some(idom),
                    "case {case} {algorithm:?}: idom of {w} in {graph:?} roots {roots:?}"
                );
            }
            // Preorder numbering: every idom comes before its node.
            for (node, idom) in dominators.idoms().iter().enumerate().skip(1) {
                assert!(idom.index() < node);
            }
        }
        // The same graph without repeated edges, saying so: same result.
        let distinct = Distinct(
            graph
                .iter()
                .map(|successors| {
                    let mut successors = successors.clone();
                    successors.sort_unstable();
                    successors.dedup();
                    successors
                })
                .collect(),
        );
        let plain = Dominators::compute(&distinct.0, &roots);
        let fast = Dominators::compute(&distinct, &roots);
        assert_eq!(plain.idoms(), fast.idoms(), "case {case}: {graph:?}");
        assert_eq!(plain.node_of(), fast.node_of(), "case {case}");

        // Retained sizes: the sum over everything a node dominates.
        let dominators = Dominators::compute(&graph, &roots);
        let mut retained = vec![0u64; dominators.len()];
        for (node, &object) in dominators.node_of().iter().enumerate().skip(1) {
            retained[node] = sizes[object as usize];
        }
        for node in (1..retained.len()).rev() {
            let up = dominators.idoms()[node].index();
            retained[up] += retained[node];
        }
        for (w, strict) in expected.iter().enumerate() {
            let Some(_) = strict else { continue };
            let mut sum = sizes[w];
            for (v, other) in expected.iter().enumerate() {
                if let Some(other) = other {
                    if other.contains(&(w as u32)) {
                        sum += sizes[v];
                    }
                }
            }
            let node = dominators.preorder(w as u32).unwrap();
            assert_eq!(
                retained[node.index()],
                sum,
                "case {case}: retained size of {w}"
            );
        }
    }
    assert_eq!(fell_back, 0, "small graphs stay within the step budget");
}
