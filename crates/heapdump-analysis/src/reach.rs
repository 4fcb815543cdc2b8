//! Which objects the roots reach, without the dominator tree (the summary,
//! the HPROF converter), and for the unreachable rest, which of them to
//! present as roots of their own. [`analyze`](crate::analyze) finds
//! reachability as part of its depth-first search instead, and tells the
//! unreachable objects apart ([`Reachability`](crate::Reachability)).

use heapdump_reader::{HeapGraph, ObjectId};

/// Marks every object reachable from the graph's roots.
pub fn reachable(graph: &HeapGraph<'_>) -> Vec<bool> {
    let mut seen = vec![false; graph.object_count()];
    let mut stack: Vec<u32> = Vec::new();
    for reference in graph.root_references() {
        mark(&mut seen, &mut stack, reference.target.0);
    }
    flood(graph, &mut seen, &mut stack);
    seen
}

/// Unreachable objects to treat as roots so that every object is reached:
/// first those no other unreachable object points at (the objects whose
/// last pointer was lost), then, for garbage cycles that none of those
/// reach, the lowest-addressed object of each. Marks everything as seen.
pub fn unreachable_roots(graph: &HeapGraph<'_>, seen: &mut [bool]) -> Vec<ObjectId> {
    let count = seen.len();
    let mut held = vec![false; count];
    for source in 0..count {
        if seen.get(source).copied().unwrap_or(true) {
            continue;
        }
        for (target, _) in graph.references(ObjectId(source as u32)) {
            if target.index() != source {
                if let Some(flag) = held.get_mut(target.index()) {
                    *flag = true;
                }
            }
        }
    }
    let mut roots = Vec::new();
    let mut stack = Vec::new();
    for object in 0..count {
        if !seen.get(object).copied().unwrap_or(true) && !held.get(object).copied().unwrap_or(true)
        {
            roots.push(ObjectId(object as u32));
            mark(seen, &mut stack, object as u32);
        }
    }
    flood(graph, seen, &mut stack);
    for object in 0..count {
        if !seen.get(object).copied().unwrap_or(true) {
            roots.push(ObjectId(object as u32));
            mark(seen, &mut stack, object as u32);
            flood(graph, seen, &mut stack);
        }
    }
    roots
}

fn mark(seen: &mut [bool], stack: &mut Vec<u32>, object: u32) {
    if let Some(flag) = seen.get_mut(object as usize) {
        if !*flag {
            *flag = true;
            stack.push(object);
        }
    }
}

fn flood(graph: &HeapGraph<'_>, seen: &mut [bool], stack: &mut Vec<u32>) {
    while let Some(object) = stack.pop() {
        for (target, _) in graph.references(ObjectId(object)) {
            mark(seen, stack, target.0);
        }
    }
}
