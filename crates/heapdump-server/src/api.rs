//! The JSON API: the CLI's `--json` shapes (`summary`, `leaks`, `top`,
//! `retained`, `path`, `diff`), paged where the CLI takes a limit, and an
//! object's details.

use heapdump_inspect::analysis::class::{Classifier, SiteFrames};
use heapdump_inspect::analysis::describe::{percent, ObjectRef};
use heapdump_inspect::analysis::paths::{describe_path, dominator_chain, PathReport};
use heapdump_inspect::analysis::retained::{RetainedNode, RetainedReport};
use heapdump_inspect::analysis::top::{TopReport, TopRow};
use heapdump_inspect::analysis::{DomNode, Grouping, Reachability};
use heapdump_inspect::reader::ObjectId;
use serde::Serialize;

use crate::index::Table;
use crate::{parse_address, App, Failure, Query, Response, Served};

/// Referrers whose shortest paths are compared for an object's paths.
const PATH_CANDIDATES: usize = 2000;
/// Shortest paths listed for an object.
const PATHS: usize = 5;

/// Routes an API request.
pub fn route(app: &App, path: &str, query: &Query) -> Result<Response, Failure> {
    let served = &app.current;
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    match segments.as_slice() {
        ["summary"] => Ok(Response::json(&served.index.summary)),
        ["leaks"] => Ok(Response::json(&served.index.leaks)),
        ["unreachable"] => Ok(Response::json(&served.index.leaks.unreachable)),
        ["waste"] => Ok(Response::json(&served.index.waste)),
        ["caveats"] => Ok(Response::json(&served.heap.caveats())),
        ["top"] => top(served, query).map(|report| Response::json(&report)),
        ["dominators"] => dominators(served, None, query).map(|report| Response::json(&report)),
        ["dominators", address] => {
            dominators(served, Some(address), query).map(|report| Response::json(&report))
        }
        ["object", address] => object(served, address).map(|report| Response::json(&report)),
        ["path", address] => {
            let id = object_id(served, address)?;
            let address = parse_address(address)?;
            Ok(Response::json(&path_report(served, id, address)))
        }
        ["diff"] => match &app.diff {
            Some(report) => Ok(Response::json(report)),
            None => Err((404, "No diff: the server shows one dump.".to_owned())),
        },
        _ => Err((404, format!("There is no API at {path}."))),
    }
}

/// The object holding the address `text` (`0x…`): 400 if it is not an
/// address, 404 if no object holds it.
/// The dominator-tree node of the object at `text` (an address as the URL
/// has it) and the object as reports show it: 404 for an unreachable object,
/// which is not in the tree.
pub fn dominator_node(
    served: &Served,
    text: &str,
) -> Result<(DomNode, Option<ObjectRef>), Failure> {
    let graph = served.heap.graph();
    let analysis = served.heap.analysis();
    let id = object_id(served, text)?;
    let node = analysis.node(id).ok_or_else(|| {
        (
            404,
            format!("The object at {text} is unreachable: it is not in the dominator tree."),
        )
    })?;
    Ok((node, ObjectRef::new(graph, analysis, id)))
}

pub fn object_id(served: &Served, text: &str) -> Result<ObjectId, Failure> {
    let address = parse_address(text)?;
    served.heap.graph().object_at(address).ok_or_else(|| {
        (
            404,
            format!("No object in the dump holds address {address:#x}."),
        )
    })
}

/// `heapdump path`'s report for object `id` (asked for as `address`),
/// from the precomputed referrers and shortest-path tree: the shortest
/// paths through the first [`PATH_CANDIDATES`] referrers, and the
/// dominators as `heapdump path` gives them (a long chain's ends).
pub fn path_report(served: &Served, id: ObjectId, address: u64) -> PathReport {
    let graph = served.heap.graph();
    let analysis = served.heap.analysis();
    let index = &served.index;
    let object = ObjectRef::new(graph, analysis, id);
    let start = graph.object(id).map_or(address, |found| found.address);

    let (dominators, dominators_omitted) = dominator_chain(graph, analysis, id);

    let referrers: Vec<u32> = index
        .referrers(id)
        .iter()
        .copied()
        .filter(|&source| source != id.0)
        .collect();
    let root_references = index.root_references_to(&served.heap, id).len() as u64;
    let mut paths = Vec::new();
    let mut unreachable_referrers = Vec::new();
    if analysis.reachability(id) == Reachability::Reachable {
        // The shallowest referrers first, by the search's depths (no path
        // is built for the others: a referrer may be a million steps deep).
        let mut shallow: Vec<(u32, u32)> = referrers
            .iter()
            .filter_map(|&source| Some((index.path_tree.depth(ObjectId(source))?, source)))
            .collect();
        let wanted = PATH_CANDIDATES.min(shallow.len());
        if wanted > 0 && wanted < shallow.len() {
            shallow.select_nth_unstable(wanted - 1);
        }
        shallow.truncate(wanted);
        shallow.sort_unstable();
        let mut candidates: Vec<Vec<ObjectId>> = Vec::new();
        if root_references > 0 {
            candidates.push(vec![id]);
        }
        for &(_, source) in &shallow {
            if candidates.len() >= PATHS {
                break;
            }
            if let Some(mut objects) = index.path_tree.objects_to(ObjectId(source)) {
                if !objects.contains(&id) {
                    objects.push(id);
                    candidates.push(objects);
                }
            }
        }
        candidates.sort_by_key(|objects| objects.len());
        let namer = served.heap.root_namer();
        paths = candidates
            .iter()
            .take(PATHS)
            .filter_map(|objects| describe_path(graph, analysis, objects))
            .collect();
        for path in &mut paths {
            path.name_root(graph, &namer);
        }
    } else {
        unreachable_referrers = referrers
            .iter()
            .take(PATHS)
            .filter_map(|&source| ObjectRef::new(graph, analysis, ObjectId(source)))
            .collect();
    }
    PathReport {
        address,
        object: object.unwrap_or(ObjectRef {
            id: id.0,
            address: start,
            size: 0,
            class: String::new(),
            site: None,
            site_id: None,
            allocated_in: None,
            retained: None,
            reachability: Reachability::DirectlyUnreachable,
            text: None,
        }),
        offset_in_object: address.saturating_sub(start),
        dominators,
        dominators_omitted,
        referrers: referrers.len() as u64,
        root_references,
        paths,
        unreachable_referrers,
    }
}

fn rows(classifier: &Classifier<'_>, table: &Table, query: &Query, order: &[u32]) -> Vec<TopRow> {
    let (offset, limit) = query.page(20).unwrap_or((0, 20));
    order
        .iter()
        .skip(offset)
        .take(limit)
        .filter_map(|&row| table.rows.get(row as usize))
        .map(|&(group, totals)| TopRow {
            group: classifier.label(group),
            totals,
        })
        .collect()
}

/// `heapdump top --json`, `?sort=retained|shallow|count&offset=&limit=`.
fn top(served: &Served, query: &Query) -> Result<TopReport, Failure> {
    query.page(20)?;
    let order = match query.get("sort").unwrap_or("retained") {
        "retained" => heapdump_inspect::analysis::top::TopOrder::Retained,
        "shallow" => heapdump_inspect::analysis::top::TopOrder::Shallow,
        "count" => heapdump_inspect::analysis::top::TopOrder::Count,
        other => {
            return Err((
                400,
                format!("sort={other:?}: use retained, shallow or count."),
            ))
        }
    };
    let graph = served.heap.graph();
    let analysis = served.heap.analysis();
    let index = &served.index;
    let classes = Classifier::new(graph, Grouping::Class);
    let sites = Classifier::new(graph, Grouping::Site);
    Ok(TopReport {
        objects: graph.object_count() as u64,
        bytes: graph.dump().live_bytes(),
        reachable_objects: analysis.reachable_objects(),
        reachable_bytes: analysis.reachable_bytes(),
        order,
        class_count: index.classes.rows.len() as u64,
        by_class: rows(
            &classes,
            &index.classes,
            query,
            index.classes.ordered(order),
        ),
        site_count: index.sites.rows.len() as u64,
        by_site: rows(&sites, &index.sites, query, index.sites.ordered(order)),
    })
}

/// `heapdump retained --json` one level deep under the virtual root or an
/// object, `?offset=&limit=`.
fn dominators(
    served: &Served,
    address: Option<&&str>,
    query: &Query,
) -> Result<RetainedReport, Failure> {
    let graph = served.heap.graph();
    let analysis = served.heap.analysis();
    let (offset, limit) = query.page(20)?;
    let node = match address {
        None => DomNode::ROOT,
        Some(address) => dominator_node(served, address)?.0,
    };
    let total = analysis.reachable_bytes();
    let children = analysis.children(node);
    let mut tree = Vec::new();
    let mut other_children = 0u64;
    let mut other_bytes = 0u64;
    for (at, &child) in children.iter().enumerate() {
        let retained = analysis.retained_size(child);
        if at < offset || at >= offset.saturating_add(limit) {
            other_children += 1;
            other_bytes = other_bytes.saturating_add(retained);
            continue;
        }
        let Some(object) = ObjectRef::of_node(graph, analysis, child) else {
            continue;
        };
        let grandchildren = analysis.children(child);
        tree.push(RetainedNode {
            object,
            percent: percent(retained, total),
            dominated_objects: served.index.dominated_objects(child).unwrap_or(1),
            children: Vec::new(),
            other_children: grandchildren.len() as u64,
            other_bytes: grandchildren
                .iter()
                .map(|&grandchild| analysis.retained_size(grandchild))
                .fold(0u64, u64::saturating_add),
            root: None,
        });
    }
    Ok(RetainedReport {
        reachable_objects: analysis.reachable_objects(),
        reachable_bytes: total,
        top_level_objects: analysis.children(DomNode::ROOT).len() as u64,
        tree,
        other_children,
        other_bytes,
    })
}

/// One pointer field of an object.
#[derive(Debug, Serialize)]
struct Field {
    /// Offset of the word in the object.
    offset: u64,
    /// The object it points into.
    target: ObjectRef,
}

/// An object's page as data.
#[derive(Debug, Serialize)]
struct ObjectDetails {
    /// The object.
    object: ObjectRef,
    /// Objects in its dominator subtree (itself included); 0 if unreachable.
    dominated_objects: u64,
    /// Its allocation site's frames.
    site_frames: SiteFrames,
    /// Its pointer fields (at most 1,000), by offset.
    fields: Vec<Field>,
    /// Number of pointer fields.
    field_count: u64,
    /// Some objects pointing at it (at most 1,000).
    referrers: Vec<ObjectRef>,
    /// Number of objects pointing at it.
    referrer_count: u64,
    /// Number of root words pointing at it.
    root_references: u64,
}

fn object(served: &Served, address: &str) -> Result<ObjectDetails, Failure> {
    let id = object_id(served, address)?;
    let graph = served.heap.graph();
    let analysis = served.heap.analysis();
    let found = graph
        .object(id)
        .ok_or_else(|| (404, format!("No object at {address}.")))?;
    let object = ObjectRef::new(graph, analysis, id)
        .ok_or_else(|| (404, format!("No object at {address}.")))?;
    let mut references: Vec<(ObjectId, u32)> = graph.references(id).collect();
    references.sort_by_key(|&(_, offset)| offset);
    let fields = references
        .iter()
        .take(1000)
        .filter_map(|&(target, offset)| {
            Some(Field {
                offset: u64::from(offset),
                target: ObjectRef::new(graph, analysis, target)?,
            })
        })
        .collect();
    let referrers: Vec<u32> = served
        .index
        .referrers(id)
        .iter()
        .copied()
        .filter(|&source| source != id.0)
        .collect();
    Ok(ObjectDetails {
        dominated_objects: analysis
            .node(id)
            .and_then(|node| served.index.dominated_objects(node))
            .unwrap_or(0),
        site_frames: SiteFrames::of_object(graph, found),
        field_count: references.len() as u64,
        fields,
        referrer_count: referrers.len() as u64,
        referrers: referrers
            .iter()
            .take(1000)
            .filter_map(|&source| ObjectRef::new(graph, analysis, ObjectId(source)))
            .collect(),
        root_references: served.index.root_references_to(&served.heap, id).len() as u64,
        object,
    })
}
