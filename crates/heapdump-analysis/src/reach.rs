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
    // The targets alone: `references` would read each edge's field offset
    // too, a second array as big.
    let csr = graph.csr();
    while let Some(object) = stack.pop() {
        for &target in csr.neighbors_slice(object) {
            mark(seen, stack, target);
        }
    }
}

/// A set of objects, one bit each.
pub(crate) struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    /// An empty set over `len` objects.
    pub(crate) fn new(len: usize) -> Bits {
        Bits {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Whether `index` is in the set (`false` out of range).
    #[inline]
    pub(crate) fn contains(&self, index: usize) -> bool {
        self.words
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// Adds `index`; whether it was new (`false` out of range).
    #[inline]
    pub(crate) fn insert(&mut self, index: usize) -> bool {
        match self.words.get_mut(index / 64) {
            Some(word) if *word & (1 << (index % 64)) == 0 => {
                *word |= 1 << (index % 64);
                true
            }
            _ => false,
        }
    }

    /// The indexes below `len` not in the set, ascending.
    pub(crate) fn absent(&self) -> impl Iterator<Item = usize> + '_ {
        let len = self.len;
        self.words
            .iter()
            .enumerate()
            .filter(|(_, &word)| word != u64::MAX)
            .flat_map(|(position, &word)| {
                (0..64)
                    .filter(move |bit| word & (1 << bit) == 0)
                    .map(move |bit| position * 64 + bit)
            })
            .take_while(move |&index| index < len)
    }
}

/// [`reachable`] as a bit set: an eighth of the memory, so that the flood's
/// marks mostly stay in cache.
pub(crate) fn reachable_bits(graph: &HeapGraph<'_>) -> Bits {
    let mut seen = Bits::new(graph.object_count());
    let mut stack: Vec<u32> = Vec::new();
    for reference in graph.root_references() {
        if seen.insert(reference.target.index()) {
            stack.push(reference.target.0);
        }
    }
    let csr = graph.csr();
    while let Some(object) = stack.pop() {
        for &target in csr.neighbors_slice(object) {
            if seen.insert(target as usize) {
                stack.push(target);
            }
        }
    }
    seen
}
