//! `/flame`: an icicle graph of retained size along the dominator tree,
//! objects grouped by class at each level (the children of every object of
//! a frame, merged by class), as nested `div`s: width is retained bytes.
//! A frame links to the flame graph under its biggest object (for a frame
//! of one object, the object itself). Bounded: at most [`DEPTH`] levels,
//! frames under [`MIN_SHARE`] of the top are left out, and at most
//! [`BUDGET`] tree nodes are visited per request.

use std::collections::HashMap;
use std::fmt::Write;

use heapdump_inspect::analysis::class::{Classifier, Grouping};
use heapdump_inspect::analysis::DomNode;
use heapdump_inspect::Heap;

use crate::api::dominator_node;
use crate::html::{bytes, count, escape, object_link, percent};
use crate::pages::frame;
use crate::{App, Failure, Query, Served};

/// Levels below the top.
const DEPTH: usize = 10;
/// Smallest frame drawn, as a share of the top frame.
const MIN_SHARE: f64 = 0.004;
/// Dominator-tree nodes visited for a graph under one object (about
/// 50 ms).
const BUDGET: usize = 400_000;
/// Dominator-tree nodes visited for the whole heap's graph, drawn once
/// when the server starts and kept.
const ROOT_BUDGET: usize = 5_000_000;

/// One frame: objects of one class at one level.
struct Frame {
    label: String,
    bytes: u64,
    objects: u64,
    /// The biggest object of the frame.
    biggest: DomNode,
    children: Vec<Frame>,
}

/// A frame being gathered: bytes, objects, the biggest, the nodes.
type Members = (u64, u64, DomNode, Vec<DomNode>);

/// The frames under `nodes`, merged by class, biggest first.
fn children(
    heap: &Heap,
    classifier: &Classifier<'_>,
    nodes: &[DomNode],
    min_bytes: u64,
    depth: usize,
    budget: &mut usize,
) -> (Vec<Frame>, u64) {
    let analysis = heap.analysis();
    let objects = &heap.graph().dump().objects;
    // group → (bytes, objects, biggest, nodes)
    let mut groups: HashMap<usize, Members> = HashMap::new();
    'outer: for &node in nodes {
        for &child in analysis.children(node) {
            if *budget == 0 {
                break 'outer;
            }
            *budget -= 1;
            let Some(id) = analysis.object(child) else {
                continue;
            };
            let Some(object) = objects.get(id.index()) else {
                continue;
            };
            let retained = analysis.retained_size(child);
            let entry =
                groups
                    .entry(classifier.group_of(object))
                    .or_insert((0, 0, child, Vec::new()));
            entry.0 = entry.0.saturating_add(retained);
            entry.1 += 1;
            if retained > analysis.retained_size(entry.2) {
                entry.2 = child;
            }
            entry.3.push(child);
        }
    }
    let mut groups: Vec<(usize, Members)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    let mut frames = Vec::new();
    let mut other = 0u64;
    for (group, (total, count, biggest, members)) in groups {
        if total < min_bytes || total == 0 {
            other = other.saturating_add(total);
            continue;
        }
        let grandchildren = if depth + 1 < DEPTH {
            children(heap, classifier, &members, min_bytes, depth + 1, budget).0
        } else {
            Vec::new()
        };
        frames.push(Frame {
            label: classifier.label(group).label,
            bytes: total,
            objects: count,
            biggest,
            children: grandchildren,
        });
    }
    (frames, other)
}

/// A warm colour from the label, stable across requests.
fn colour(label: &str) -> String {
    let hash = label.bytes().fold(2166136261u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(16777619)
    });
    format!(
        "hsl({},{}%,{}%)",
        10 + hash % 45,
        55 + (hash >> 8) % 30,
        62 + (hash >> 16) % 14
    )
}

fn render(heap: &Heap, frames: &[Frame], parent_bytes: u64, total: u64, out: &mut String) {
    let graph = heap.graph();
    let analysis = heap.analysis();
    for frame in frames {
        let width = if parent_bytes == 0 {
            0.0
        } else {
            frame.bytes as f64 * 100.0 / parent_bytes as f64
        };
        let address = analysis
            .object(frame.biggest)
            .and_then(|id| graph.object(id))
            .map_or(0, |object| object.address);
        let title = if frame.objects == 1 {
            format!(
                "{} at {address:#x}: retains {} ({})",
                frame.label,
                bytes(frame.bytes),
                percent(frame.bytes, total)
            )
        } else {
            format!(
                "{} objects of {}: retain {} ({}); click for the biggest",
                count(frame.objects),
                frame.label,
                bytes(frame.bytes),
                percent(frame.bytes, total)
            )
        };
        let text = if frame.objects == 1 {
            frame.label.clone()
        } else {
            format!("{} × {}", count(frame.objects), frame.label)
        };
        let _ = write!(
            out,
            "<div class=\"f\" style=\"width:{width:.3}%\"><a href=\"/flame?root={address:#x}\" \
             style=\"background:{}\" title=\"{}\">{} <span class=\"muted\">{}</span></a>",
            colour(&frame.label),
            escape(&title),
            escape(&text),
            bytes(frame.bytes)
        );
        if !frame.children.is_empty() {
            out.push_str("<div class=\"c\">");
            render(heap, &frame.children, frame.bytes, total, out);
            out.push_str("</div>");
        }
        out.push_str("</div>");
    }
}

/// The `/flame` page, `?root=0xADDR` for the graph under one object.
pub fn page(app: &App, served: &Served, query: &Query) -> Result<String, Failure> {
    match query.get("root") {
        None | Some("") => served
            .flame
            .get_or_init(|| draw(app, served, query))
            .clone(),
        Some(_) => draw(app, served, query),
    }
}

fn draw(app: &App, served: &Served, query: &Query) -> Result<String, Failure> {
    let heap = &served.heap;
    let graph = heap.graph();
    let analysis = heap.analysis();
    let classifier = Classifier::new(graph, Grouping::Class);
    let total = analysis.reachable_bytes();
    let (node, object) = match query.get("root") {
        None | Some("") => (DomNode::ROOT, None),
        Some(address) => dominator_node(served, address)?,
    };
    let top_bytes = match node {
        DomNode::ROOT => total,
        node => analysis.retained_size(node),
    };
    let min_bytes = ((top_bytes as f64) * MIN_SHARE) as u64;
    let full_budget = if node == DomNode::ROOT {
        ROOT_BUDGET
    } else {
        BUDGET
    };
    let mut budget = full_budget;
    let (frames, other) = children(heap, &classifier, &[node], min_bytes, 0, &mut budget);

    let mut body = String::new();
    match &object {
        None => {
            let _ = write!(
                body,
                "<p>What retains the {} of reachable memory, along the dominator tree; each level's objects \
                 grouped by class. Width is retained size; click a frame to zoom into its biggest object.</p>",
                bytes(total)
            );
        }
        Some(object) => {
            let _ = write!(
                body,
                "<p><a href=\"/flame\">top</a> › {} <code>{}</code> retains {} ({}) · \
                 <a href=\"/dominators/{:#x}\">dominator subtree</a></p>",
                object_link(object.address),
                escape(&object.class),
                bytes(top_bytes),
                percent(top_bytes, total),
                object.address
            );
        }
    }
    let label = match &object {
        None => "all reachable objects".to_owned(),
        Some(object) => object.class.clone(),
    };
    let _ = write!(
        body,
        "<div class=\"flame\"><div class=\"f\" style=\"width:100%\"><a href=\"/flame\" style=\"background:#e8c39e\" \
         title=\"{}\">{} <span class=\"muted\">{}</span></a><div class=\"c\">",
        escape(&label),
        escape(&label),
        bytes(top_bytes)
    );
    render(heap, &frames, top_bytes, total, &mut body);
    body.push_str("</div></div></div>");
    let mut notes = Vec::new();
    if other > 0 {
        notes.push(format!("{} in frames too small to draw", bytes(other)));
    }
    if budget == 0 {
        notes.push(format!(
            "stopped after visiting {} objects: zoom in for the rest",
            count(full_budget as u64)
        ));
    }
    if !notes.is_empty() {
        let _ = write!(
            body,
            "<p class=\"muted\">{}.</p>",
            escape(&notes.join("; "))
        );
    }
    let title = match &object {
        Some(object) => format!("Flame graph under {:#x}", object.address),
        None => "Flame graph of retained memory".to_owned(),
    };
    Ok(frame(app, served, "/flame", &title, &body))
}
