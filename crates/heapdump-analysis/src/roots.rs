//! Which roots a dump covers, so that a report can say how far to trust
//! "unreachable".

use heapdump_reader::{HeapGraph, Root};
use serde::Serialize;

/// The roots of a dump, by kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RootCoverage {
    /// One entry per kind of root, in order of first appearance.
    pub kinds: Vec<RootKindTotals>,
    /// Root words that point into objects.
    pub references: u64,
    /// What the roots leave out, in plain words; empty when nothing is known
    /// to be left out.
    pub caveat: String,
}

/// Roots of one kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RootKindTotals {
    /// The kind, e.g. `segment`, `thread stack`.
    pub kind: String,
    /// Number of roots of the kind.
    pub roots: u64,
    /// Bytes of memory they cover.
    pub bytes: u64,
    /// Names of the first few roots of the kind (thread names, ...).
    pub examples: Vec<String>,
    /// Whether `kind` is a countable noun (`2 thread stacks`, not `2 data`:
    /// [`heapdump_reader::RootKind::label_is_countable`]).
    #[serde(skip)]
    pub countable: bool,
}

/// Names of roots listed per kind.
const EXAMPLES: usize = 4;

/// A human name for a root (`thread 42 "main" stack`,
/// `main.holder (goroutine 18, frame 1)`): the dump's [`Root::name`], or one
/// made from its kind and address when the name is empty.
pub fn root_name(root: &Root<'_>) -> String {
    if root.name.is_empty() {
        root.kind.default_name(root.address)
    } else {
        root.name.clone()
    }
}

impl RootCoverage {
    /// The roots of `graph`'s dump.
    pub fn of(graph: &HeapGraph<'_>) -> RootCoverage {
        let dump = graph.dump();
        let mut kinds: Vec<RootKindTotals> = Vec::new();
        for root in &dump.roots {
            let label = root.kind.label().into_owned();
            let index = match kinds.iter().position(|kind| kind.kind == label) {
                Some(index) => index,
                None => {
                    kinds.push(RootKindTotals {
                        kind: label,
                        countable: root.kind.label_is_countable(),
                        ..RootKindTotals::default()
                    });
                    kinds.len() - 1
                }
            };
            if let Some(totals) = kinds.get_mut(index) {
                totals.roots += 1;
                totals.bytes = totals.bytes.saturating_add(root.contents.len() as u64);
                if totals.examples.len() < EXAMPLES {
                    totals.examples.push(root_name(root));
                }
            }
        }
        let caveat = dump.root_caveat().unwrap_or_default();
        RootCoverage {
            kinds,
            references: graph.root_references().len() as u64,
            caveat,
        }
    }
}
