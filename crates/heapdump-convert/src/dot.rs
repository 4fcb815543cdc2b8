//! Graphviz dot: a picture of what holds the memory, small enough for
//! Graphviz to lay out and a person to read.
//!
//! A real heap has millions of objects; no layout of all of them is
//! readable. The default view ([`View::Retainers`]) shows the biggest
//! retainers, descending the dominator tree from the top by retained size,
//! and for each top-level retainer one shortest path from a root that holds
//! it, at most [`Options::max_nodes`] nodes in all. [`View::Focus`] shows
//! the neighbourhood of one object (referrers and referents up to a depth);
//! [`View::All`] the whole graph.
//!
//! Object nodes are labelled with their type or shape, address, shallow
//! and retained size, and filled darker the more they retain; edges carry
//! the name of the field holding the pointer where the dump names fields
//! (Java, Go with its binary's DWARF), else its offset (dotted edges
//! stand for "dominates" where the picture leaves the path out). Roots are
//! drawn apart, in a cluster: each global the binary names (`main.cache`)
//! is a node of its own, labelled with its section, its edges with the
//! offset in it; any other root (a frame, a thread's stack, a section's
//! unnamed words) is one node labelled with the root's name, its edges
//! with the word (stack slot). Root nodes count against the node budget
//! (a fifth of it). A note says what was left out.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::io::{self, Write};

use dot_writer::{Attributes, DotWriter, Shape, Style};
use heapdump_analysis::paths::ShortestPathTree;
use heapdump_analysis::{Analysis, DomNode};
use heapdump_reader::{HeapGraph, ObjectId, RootId};
use heapdump_symbols::RootNamer;

/// Which part of the graph to draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    /// The biggest retainers and the paths from roots that hold them.
    Retainers,
    /// The objects within `depth` references of the object holding
    /// `address`, in either direction.
    Focus {
        /// Any address inside the object.
        address: u64,
        /// How many references away to go.
        depth: usize,
    },
    /// Every object, reference and root.
    All,
}

/// How to draw.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which part of the graph.
    pub view: View,
    /// Most nodes (objects and roots) in the picture, except for
    /// [`View::All`]. 200 by default.
    pub max_nodes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            view: View::Retainers,
            max_nodes: 200,
        }
    }
}

/// What [`write_dot`] drew.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Object nodes.
    pub objects: u64,
    /// Root nodes.
    pub roots: u64,
    /// Edges (references, root words, "dominates").
    pub edges: u64,
    /// Objects left out.
    pub objects_left_out: u64,
    /// Bytes of the objects left out.
    pub bytes_left_out: u64,
}

/// What went wrong.
#[derive(Debug)]
pub enum Error {
    /// [`View::Focus`] names an address no object holds.
    NoObjectAt(u64),
    /// Writing failed.
    Io(io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoObjectAt(address) => write!(f, "no object holds address {address:#x}"),
            Error::Io(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            Error::NoObjectAt(_) => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Io(err)
    }
}

/// Children of a dominator-tree node considered when descending.
const CHILDREN_PER_NODE: usize = 16;

/// Draws `graph` (with its `analysis`) as dot on `out`; `namer` names the
/// root words.
pub fn write_dot<W: Write>(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    namer: &RootNamer<'_>,
    options: &Options,
    out: W,
) -> Result<Report, Error> {
    let max_nodes = options.max_nodes.max(2);
    let (objects, description, root_budget) = match options.view {
        View::Retainers => (
            retainers(graph, analysis, max_nodes),
            format!(
                "the biggest retainers and the paths that hold them (at most {max_nodes} nodes)"
            ),
            max_nodes / 5,
        ),
        View::Focus { address, depth } => {
            let center = graph.object_at(address).ok_or(Error::NoObjectAt(address))?;
            (
                neighbourhood(graph, center, depth, max_nodes),
                format!(
                    "the objects within {depth} references of {address:#x} (at most {max_nodes} nodes)"
                ),
                max_nodes / 5,
            )
        }
        View::All => (
            (0..graph.object_count() as u32).map(ObjectId).collect(),
            "every object".to_owned(),
            usize::MAX,
        ),
    };
    let mut out = Latch {
        inner: out,
        error: None,
    };
    let report = draw(
        graph,
        analysis,
        namer,
        &objects,
        &description,
        root_budget,
        &mut out,
    );
    match out.error {
        Some(err) => Err(Error::Io(err)),
        None => {
            out.inner.flush()?;
            Ok(report)
        }
    }
}

/// The default selection: dominator-tree nodes by retained size from the
/// top, then shortest root paths to the top-level ones.
fn retainers(graph: &HeapGraph<'_>, analysis: &Analysis, max_nodes: usize) -> Vec<ObjectId> {
    let object_budget = max_nodes - max_nodes / 5;
    let retainer_budget = (object_budget * 3 / 5).max(1);
    let mut chosen: Vec<ObjectId> = Vec::new();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut queue: BinaryHeap<(u64, Reverse<u32>)> = BinaryHeap::new();
    let push_children = |queue: &mut BinaryHeap<(u64, Reverse<u32>)>, node: DomNode| {
        for child in analysis.children(node).iter().take(CHILDREN_PER_NODE) {
            queue.push((analysis.retained_size(*child), Reverse(child.0)));
        }
    };
    push_children(&mut queue, DomNode::ROOT);
    let mut tops: Vec<ObjectId> = Vec::new();
    while chosen.len() < retainer_budget {
        let Some((_, Reverse(node))) = queue.pop() else {
            break;
        };
        let node = DomNode(node);
        let Some(object) = analysis.object(node) else {
            continue;
        };
        if seen.insert(object) {
            chosen.push(object);
            if analysis.idom(node) == Some(DomNode::ROOT) {
                tops.push(object);
            }
        }
        push_children(&mut queue, node);
    }
    // Paths from roots to the top-level retainers.
    let tree = ShortestPathTree::build_for(graph, &tops);
    for top in tops {
        let Some(path) = tree.objects_to(top) else {
            continue;
        };
        let new: Vec<ObjectId> = path.into_iter().filter(|id| !seen.contains(id)).collect();
        if chosen.len() + new.len() > object_budget {
            continue;
        }
        for id in new {
            seen.insert(id);
            chosen.push(id);
        }
    }
    // The rest of the budget: more retainers (their dominators are shown).
    while chosen.len() < object_budget {
        let Some((_, Reverse(node))) = queue.pop() else {
            break;
        };
        let node = DomNode(node);
        if let Some(object) = analysis.object(node) {
            if seen.insert(object) {
                chosen.push(object);
            }
        }
        push_children(&mut queue, node);
    }
    chosen
}

/// The objects within `depth` references of `center`, either way,
/// breadth-first, at most `max_nodes`.
fn neighbourhood(
    graph: &HeapGraph<'_>,
    center: ObjectId,
    depth: usize,
    max_nodes: usize,
) -> Vec<ObjectId> {
    let budget = (max_nodes - max_nodes / 5).max(1);
    // Referrers of every object (the graph stores referents only).
    let mut referrers: HashMap<u32, Vec<u32>> = HashMap::new();
    if depth > 0 {
        for (source, _) in graph.objects() {
            for (target, _) in graph.references(source) {
                referrers.entry(target.0).or_default().push(source.0);
            }
        }
    }
    let mut chosen = vec![center];
    let mut seen: HashSet<u32> = HashSet::from([center.0]);
    let mut queue: VecDeque<(u32, usize)> = VecDeque::from([(center.0, 0)]);
    while let Some((object, distance)) = queue.pop_front() {
        if distance >= depth {
            continue;
        }
        let forward = graph
            .references(ObjectId(object))
            .map(|(target, _)| target.0);
        let backward = referrers.get(&object).into_iter().flatten().copied();
        for next in forward.chain(backward) {
            if chosen.len() >= budget {
                return chosen;
            }
            if seen.insert(next) {
                chosen.push(ObjectId(next));
                queue.push_back((next, distance + 1));
            }
        }
    }
    chosen
}

/// Writes the graph of `objects`.
#[allow(clippy::too_many_arguments)]
fn draw(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    namer: &RootNamer<'_>,
    objects: &[ObjectId],
    description: &str,
    root_budget: usize,
    mut out: &mut dyn Write,
) -> Report {
    let dump = graph.dump();
    let shown: HashSet<ObjectId> = objects.iter().copied().collect();
    let mut report = Report {
        objects: objects.len() as u64,
        ..Report::default()
    };
    for (id, object) in graph.objects() {
        if !shown.contains(&id) {
            report.objects_left_out += 1;
            report.bytes_left_out = report.bytes_left_out.saturating_add(object.size);
        }
    }
    // Root words pointing at shown objects, grouped into root nodes: one
    // per named global (`main.cache`: a global section's word the binary
    // names), one per other root (a frame, a thread's stack, the words of
    // a section no symbol names).
    let mut root_words: Vec<RootNode> = Vec::new();
    let mut root_index: HashMap<(RootId, Option<String>), usize> = HashMap::new();
    let mut roots_left_out = 0u64;
    for reference in graph.root_references() {
        if !shown.contains(&reference.target) {
            continue;
        }
        let Some(root) = graph.root(reference.root) else {
            continue;
        };
        let slot = namer.slot_name(root, reference.offset);
        let global = (root.kind.is_global() && slot != root.slot_name(reference.offset))
            .then(|| split_symbol(&slot));
        let key = (reference.root, global.map(|(name, _)| name.to_owned()));
        let index = match root_index.get(&key) {
            Some(&index) => index,
            None if root_words.len() < root_budget => {
                root_words.push(RootNode {
                    root: reference.root,
                    global: key.1.clone(),
                    words: Vec::new(),
                });
                root_index.insert(key, root_words.len() - 1);
                root_words.len() - 1
            }
            None => {
                roots_left_out += 1;
                continue;
            }
        };
        // The edge's label: the offset in the global, or the word's name
        // without the root's.
        let label = match global {
            Some((_, offset)) => offset.to_owned(),
            None => slot
                .strip_prefix(root.name.as_str())
                .map(str::trim)
                .filter(|rest| !rest.is_empty())
                .unwrap_or(&slot)
                .to_owned(),
        };
        if let Some(node) = root_words.get_mut(index) {
            node.words.push((reference.offset, reference.target, label));
        }
    }
    report.roots = root_words.len() as u64;
    let max_retained = objects
        .iter()
        .filter_map(|&id| analysis.retained_size_of(id))
        .max()
        .unwrap_or(1)
        .max(2);

    let _ = writeln!(out, "// heapdump dot: {description}");
    let _ = writeln!(
        out,
        "// {} of {} objects shown; {} objects ({}) left out; render with: dot -Tsvg heap.dot > heap.svg",
        report.objects,
        graph.object_count(),
        report.objects_left_out,
        heapdump_analysis::describe::human_bytes(report.bytes_left_out)
    );
    let mut writer = DotWriter::from(&mut out);
    writer.set_pretty_print(true);
    let mut digraph = writer.digraph();
    digraph
        .graph_attributes()
        .set("rankdir", "LR", false)
        .set("fontname", "Helvetica", true);
    digraph
        .node_attributes()
        .set_shape(Shape::Rectangle)
        .set_style(Style::Filled)
        .set("colorscheme", "ylorrd9", false)
        .set("fontname", "Helvetica", true)
        .set_font_size(10.0);
    digraph
        .edge_attributes()
        .set("fontname", "Helvetica", true)
        .set_font_size(9.0);

    // The legend.
    let legend = format!(
        "heapdump: {}\\l{} of {} objects shown, {} roots\\lleft out: {} objects ({}){}\\lfill: retained size (darker retains more)\\lsolid edge: a pointer (+offset in the referrer)\\ldotted edge: dominates (path not shown)\\ldashed: objects it dominates that are not shown\\l",
        escape(description),
        report.objects,
        graph.object_count(),
        report.roots,
        report.objects_left_out,
        heapdump_analysis::describe::human_bytes(report.bytes_left_out),
        if roots_left_out > 0 {
            format!(", {roots_left_out} root words")
        } else {
            String::new()
        },
    );
    digraph
        .node_named("legend")
        .set("shape", "note", false)
        .set("fillcolor", "white", false)
        .set("label", &legend, true);

    // Roots, apart.
    {
        let mut cluster = digraph.cluster();
        cluster
            .set_label("roots")
            .set_style(Style::Filled)
            .set("fillcolor", "lightgrey", false)
            .set("fontname", "Helvetica", true);
        for (index, node) in root_words.iter().enumerate() {
            let Some(value) = graph.root(node.root) else {
                continue;
            };
            let name = node.global.as_deref().unwrap_or(&value.name);
            let label = format!("{}\\n{}", escape(name), escape(&value.kind.label()));
            cluster
                .node_named(format!("r{index}"))
                // A rounded box, not an Mrecord: Graphviz loses flat edges
                // from record-shaped nodes ("lost r0 o38 edge", seen on the
                // sample), and record labels would parse `{`, `|` and `<`
                // in Rust names.
                .set("style", "rounded,filled", true)
                .set("fillcolor", "white", false)
                .set("label", &label, true);
        }
    }

    // Objects.
    for &id in objects {
        let Some(object) = graph.object(id) else {
            continue;
        };
        let class = dump.class_name(&dump.object_class(object));
        let retained = analysis.retained_size_of(id);
        let level = match retained {
            Some(size) => {
                1 + ((size.max(1) as f64).ln() / (max_retained as f64).ln() * 8.0).clamp(0.0, 8.0)
                    as u32
            }
            None => 1,
        };
        let label = format!(
            "{}\\n{:#x}\\nshallow {}\\nretained {}",
            escape(&class),
            object.address,
            heapdump_analysis::describe::human_bytes(object.size),
            retained.map_or_else(
                || "unreachable".to_owned(),
                heapdump_analysis::describe::human_bytes
            ),
        );
        let mut node = digraph.node_named(format!("o{}", id.0));
        node.set("label", &label, true)
            .set("fillcolor", &level.to_string(), false);
        if level >= 7 {
            node.set("fontcolor", "white", false);
        }
    }

    // Edges: references between shown objects, root words, dominators.
    let mut has_shown_referrer: HashSet<ObjectId> = HashSet::new();
    for &source in objects {
        for (target, offset) in graph.references(source) {
            if shown.contains(&target) {
                has_shown_referrer.insert(target);
                report.edges += 1;
                // The field's name where the dump names it (HPROF
                // fields, Go fields from DWARF), else its offset.
                let label = graph
                    .object(source)
                    .and_then(|object| graph.dump().field_name(object, u64::from(offset)))
                    .map_or_else(|| offset_label(offset), |name| escape(&name));
                digraph
                    .edge(format!("o{}", source.0), format!("o{}", target.0))
                    .attributes()
                    .set_label(&label);
            }
        }
    }
    for (index, node) in root_words.iter().enumerate() {
        // One edge per target: the lowest word's.
        let mut per_target: HashMap<ObjectId, (u64, &str)> = HashMap::new();
        for (offset, target, label) in &node.words {
            per_target
                .entry(*target)
                .or_insert((*offset, label.as_str()));
        }
        let mut targets: Vec<(ObjectId, (u64, &str))> = per_target.into_iter().collect();
        targets.sort();
        for (target, (_, label)) in targets {
            has_shown_referrer.insert(target);
            report.edges += 1;
            digraph
                .edge(format!("r{index}"), format!("o{}", target.0))
                .attributes()
                .set_label(&escape(label));
        }
    }
    for &id in objects {
        if has_shown_referrer.contains(&id) {
            continue;
        }
        let Some(node) = analysis.node(id) else {
            continue;
        };
        let Some(dominator) = analysis.idom(node).and_then(|up| analysis.object(up)) else {
            continue;
        };
        if shown.contains(&dominator) {
            report.edges += 1;
            digraph
                .edge(format!("o{}", dominator.0), format!("o{}", id.0))
                .attributes()
                .set_style(Style::Dotted)
                .set_label("dominates");
        }
    }
    // What each shown object dominates but the picture leaves out.
    for &id in objects {
        let Some(node) = analysis.node(id) else {
            continue;
        };
        let (count, bytes) = analysis
            .children(node)
            .iter()
            .filter(|child| {
                analysis
                    .object(**child)
                    .is_some_and(|object| !shown.contains(&object))
            })
            .fold((0u64, 0u64), |(count, bytes), child| {
                (
                    count + 1,
                    bytes.saturating_add(analysis.retained_size(*child)),
                )
            });
        if count == 0 {
            continue;
        }
        let label = format!(
            "{count} more dominated\\nretaining {}",
            heapdump_analysis::describe::human_bytes(bytes)
        );
        digraph
            .node_named(format!("m{}", id.0))
            .set("shape", "plaintext", false)
            .set("style", "", true)
            .set("label", &label, true);
        report.edges += 1;
        digraph
            .edge(format!("o{}", id.0), format!("m{}", id.0))
            .attributes()
            .set_style(Style::Dashed);
    }
    report
}

/// A root node of the picture: a root, or one named global of a global
/// root, with the words that point at shown objects: (offset in the root,
/// target, edge label).
struct RootNode {
    root: RootId,
    global: Option<String>,
    words: Vec<(u64, ObjectId, String)>,
}

/// A global's word name split into the symbol and the offset in it:
/// `main.cache+0x8` into (`main.cache`, `+0x8`), `main.cache` into
/// (`main.cache`, ``).
fn split_symbol(slot: &str) -> (&str, &str) {
    match slot.rfind("+0x") {
        Some(at) if at > 0 => slot.split_at(at),
        _ => (slot, ""),
    }
}

fn offset_label(offset: u32) -> String {
    if offset == u32::MAX {
        "+4GiB+".to_owned()
    } else {
        format!("+{offset:#x}")
    }
}

/// Escapes text for a quoted dot string.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A writer that never fails: the first error is kept (and later writes
/// dropped) so that dot-writer, which panics on write errors, never sees
/// one.
struct Latch<W: Write> {
    inner: W,
    error: Option<io::Error>,
}

impl<W: Write> Write for Latch<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_none() {
            if let Err(err) = self.inner.write_all(buf) {
                self.error = Some(err);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
