//! The HTML pages.

use std::fmt::Write;

use heapdump_inspect::analysis::class::{Classifier, GroupLabel, Grouping, SiteFrames};
use heapdump_inspect::analysis::describe::ObjectRef;
use heapdump_inspect::analysis::diff::GroupGrowth;
use heapdump_inspect::analysis::leaks::UnreachableGroup;
use heapdump_inspect::analysis::paths::{OmittedSteps, RootPath};
use heapdump_inspect::analysis::top::TopOrder;
use heapdump_inspect::analysis::waste::{CollectionState, DuplicateSection, Referrer};
use heapdump_inspect::analysis::{DomNode, Reachability};
use heapdump_inspect::reader::dump::contents_mode_name;
use heapdump_inspect::reader::{ObjectId, RootId};

use crate::api::{dominator_node, object_id, path_report};
use crate::html::{bar, bytes, count, escape, object_link, page, pager, percent};
use crate::{flame, parse_address, App, Failure, Query, Response, Served};

/// Rows per page of the tables.
const ROWS: usize = 100;
/// Children listed when a dominator-tree node is expanded in place.
const FRAGMENT_CHILDREN: usize = 50;
/// Bytes of an object's contents shown in hex.
const HEX_BYTES: usize = 4096;
/// References, referrers and root words listed on an object's page.
const OBJECT_ROWS: usize = 200;
/// Frames of a stack shown.
const FRAMES: usize = 32;

/// Routes a page request.
pub fn route(app: &App, path: &str, query: &Query) -> Result<Response, Failure> {
    let served = &app.current;
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let html = match segments.as_slice() {
        [] => overview(app, served),
        ["classes"] => histogram(app, served, Grouping::Class, query)?,
        ["sites"] => histogram(app, served, Grouping::Site, query)?,
        ["class", group] => group_page(app, served, Grouping::Class, group, query)?,
        ["site", group] => group_page(app, served, Grouping::Site, group, query)?,
        ["dominators"] => dominators(app, served, None, query)?,
        ["dominators", address] => dominators(app, served, Some(address), query)?,
        ["object", address] => object(app, served, address)?,
        ["flame"] => flame::page(app, served, query)?,
        ["roots"] => roots(app, served, query)?,
        ["root", number] => root(app, served, number, query)?,
        ["unreachable"] => unreachable(app, served),
        ["waste"] => waste(app, served),
        ["diff"] => diff(app)?,
        _ => return Err((404, format!("There is no page at {path}."))),
    };
    Ok(Response::html(html))
}

/// The page frame for `served`.
pub fn frame(app: &App, served: &Served, active: &str, title: &str, body: &str) -> String {
    page(&served.name, active, app.diff.is_some(), title, body)
}

/// An object in a table cell: its address as a link, its class.
fn object_cells(object: &ObjectRef) -> String {
    format!(
        "<td>{}</td><td>{}</td>",
        object_link(object.address),
        escape(&object.class)
    )
}

/// One line about an object: link, class, size, what it retains.
fn object_line(object: &ObjectRef) -> String {
    let held = match object.retained {
        Some(retained) => format!("retains {}", bytes(retained)),
        None => escape(object.reachability.description()),
    };
    format!(
        "{} <code>{}</code> ({}, {held})",
        object_link(object.address),
        escape(&object.class),
        bytes(object.size)
    )
}

/// A stack's frames as an ordered list (program frames, then a count of
/// the runtime's).
fn frames(site: &SiteFrames) -> String {
    if site.is_empty() {
        return "<p class=\"muted\">No allocation site recorded (not sampled).</p>".to_owned();
    }
    let mut out = String::from("<ol class=\"frames\">");
    let program = site.program();
    let shown = if program.is_empty() {
        &site.labels[..]
    } else {
        program
    };
    for label in shown.iter().take(FRAMES) {
        let _ = write!(out, "<li><code>{}</code></li>", escape(label));
    }
    out.push_str("</ol>");
    if shown.len() > FRAMES {
        let _ = write!(
            out,
            "<p class=\"muted\">… {} more frames</p>",
            shown.len() - FRAMES
        );
    }
    if site.labels.len() > shown.len() {
        let _ = write!(
            out,
            "<p class=\"muted\">(and {} runtime frames)</p>",
            site.labels.len() - shown.len()
        );
    }
    out
}

/// The middle left out of a long path or chain of dominators, counted by
/// class, as a list item.
fn omitted_line(omitted: &OmittedSteps) -> String {
    format!(
        "<li class=\"muted\">… {}</li>",
        escape(&omitted.description())
    )
}

/// A root path: the root word, then each object with the field leading on.
fn root_path(path: &RootPath) -> String {
    let mut out = format!(
        "<ol class=\"path\"><li>root <b>{}</b> <span class=\"muted\">({}, word at {:#x})</span></li>",
        escape(&path.root.name),
        escape(&path.root.kind),
        path.root.word_address
    );
    for (index, step) in path.steps.iter().enumerate() {
        if let Some(omitted) = path.omitted.as_ref().filter(|omitted| omitted.at == index) {
            out.push_str(&omitted_line(omitted));
        }
        let field = match step.field_offset {
            Some(offset) => format!(" <span class=\"muted\">field +{offset:#x} →</span>"),
            None => String::new(),
        };
        let _ = write!(out, "<li>{}{field}</li>", object_line(&step.object));
    }
    out.push_str("</ol>");
    out
}

fn overview(app: &App, served: &Served) -> String {
    let graph = served.heap.graph();
    let dump = graph.dump();
    let info = &dump.info;
    let summary = &served.index.summary;
    let leaks = &served.index.leaks;
    let mut body = String::new();
    body.push_str("<dl class=\"kv\">");
    let mut item = |name: &str, value: String| {
        let _ = write!(body, "<dt>{name}</dt><dd>{value}</dd>");
    };
    item(
        "format",
        escape(&format!("{} {}", info.format, info.format_version)),
    );
    if !info.writer.is_empty() {
        item("writer", escape(&info.writer));
    }
    if !info.executable.is_empty() {
        item(
            "executable",
            format!("<code>{}</code>", escape(&info.executable)),
        );
    }
    if info.pid != 0 {
        item("pid", info.pid.to_string());
    }
    if !info.arch.is_empty() {
        item("platform", escape(&format!("{} {}", info.arch, info.os)));
    }
    item("contents", escape(contents_mode_name(info.contents_mode)));
    item(
        "objects",
        format!("{} ({})", count(leaks.objects), bytes(leaks.bytes)),
    );
    item(
        "reachable",
        format!(
            "{} ({}, {})",
            count(leaks.reachable_objects),
            bytes(leaks.reachable_bytes),
            percent(leaks.reachable_bytes, leaks.bytes)
        ),
    );
    item(
        "unreachable",
        format!(
            "<a href=\"/unreachable\">{} ({})</a>",
            count(leaks.unreachable.objects),
            bytes(leaks.unreachable.bytes)
        ),
    );
    let kinds: Vec<String> = leaks
        .roots
        .kinds
        .iter()
        .map(|kind| {
            format!(
                "{} {} ({})",
                count(kind.roots),
                escape(&kind.kind),
                bytes(kind.bytes)
            )
        })
        .collect();
    item(
        "roots",
        format!(
            "<a href=\"/roots\">{}</a>; {} words point into objects",
            kinds.join(", "),
            count(leaks.roots.references)
        ),
    );
    // What the dump cannot answer, with the fix (`Heap::caveats`).
    for caveat in served.heap.caveats() {
        item(
            "caveat",
            format!(
                "{}; <span class=\"muted\">fix: {}</span>",
                escape(&caveat.message),
                escape(&caveat.fix)
            ),
        );
    }
    if !leaks.roots.caveat.is_empty() {
        item(
            "roots leave out",
            format!(
                "<span class=\"muted\">{}</span>",
                escape(&leaks.roots.caveat)
            ),
        );
    }
    if let Some(stats) = &summary.stats {
        item(
            "allocator",
            format!(
                "{} live in {} blocks; {} allocated in {}, {} freed; peak {}",
                bytes(stats.live_bytes),
                count(stats.live_objects),
                bytes(stats.allocated_bytes),
                count(stats.allocated_objects),
                bytes(stats.freed_bytes),
                bytes(stats.peak_live_bytes)
            ),
        );
    }
    body.push_str("</dl>");
    if let Some(hint) = leaks.every_site_hint {
        let _ = write!(body, "<p class=\"muted\">{}</p>", escape(hint));
    }

    let _ = write!(
        body,
        "<h2>Leak suspects</h2><p class=\"muted\">What retains more than {:.0}% of the reachable heap ({}).</p>",
        leaks.threshold_percent,
        bytes(leaks.threshold_bytes)
    );
    if leaks.suspects.is_empty() {
        body.push_str("<p>No suspect.</p>");
    }
    for (number, suspect) in leaks.suspects.iter().enumerate() {
        let _ = write!(
            body,
            "<div class=\"suspect\" id=\"suspect-{}\"><p><b>Suspect {}</b>: {}</p>",
            number + 1,
            number + 1,
            escape(&suspect.summary)
        );
        let _ = write!(
            body,
            "<p>{} retained by {} ({:.1}%), {}</p>",
            bytes(suspect.retained_bytes),
            count(suspect.objects),
            suspect.percent,
            object_line(&suspect.object)
        );
        let point = &suspect.accumulation_point;
        let _ = write!(
            body,
            "<p>Accumulation point: {} at depth {} with {} direct children \
             (<a href=\"/dominators/{:#x}\">dominator subtree</a>, <a href=\"/flame?root={:#x}\">flame</a>)</p>",
            object_line(&point.object),
            point.depth,
            count(point.direct_children),
            point.object.address,
            point.object.address
        );
        if !point.content_by_class.is_empty() {
            body.push_str("<table><tr><th>content by class</th><th class=\"n\">objects</th><th class=\"n\">retained</th></tr>");
            for share in point.content_by_class.iter().take(5) {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    escape(&share.group.label),
                    count(share.objects),
                    bytes(share.retained_bytes)
                );
            }
            body.push_str("</table>");
        }
        if let Some(path) = &suspect.path {
            body.push_str("<p>Path from a root:</p>");
            body.push_str(&root_path(path));
        }
        if !suspect.site.is_empty() {
            body.push_str("<p>Allocated at:</p>");
            body.push_str(&frames(&suspect.site));
        }
        body.push_str("</div>");
    }

    body.push_str("<h2>Biggest classes by retained size</h2>");
    body.push_str(&histogram_table(
        served,
        Grouping::Class,
        TopOrder::Retained,
        0,
        10,
    ));
    let _ = write!(
        body,
        "<p><a href=\"/classes\">All {} classes</a> · <a href=\"/sites\">by allocation site</a></p>",
        count(served.index.classes.rows.len() as u64)
    );
    frame(app, served, "/", "Overview", &body)
}

fn order_of(query: &Query) -> Result<TopOrder, Failure> {
    match query.get("sort").unwrap_or("retained") {
        "retained" => Ok(TopOrder::Retained),
        "shallow" => Ok(TopOrder::Shallow),
        "count" => Ok(TopOrder::Count),
        other => Err((
            400,
            format!("sort={other:?}: use retained, shallow or count."),
        )),
    }
}

fn order_name(order: TopOrder) -> &'static str {
    match order {
        TopOrder::Retained => "retained",
        TopOrder::Shallow => "shallow",
        TopOrder::Count => "count",
    }
}

fn grouping_path(grouping: Grouping) -> (&'static str, &'static str) {
    match grouping {
        Grouping::Class => ("classes", "class"),
        Grouping::Site => ("sites", "site"),
    }
}

/// How a group is shown in a table: its label, and for a site the
/// innermost program frame.
fn group_text(label: &GroupLabel) -> String {
    match label.frames.program().first() {
        Some(frame) => format!("{} <code>{}</code>", escape(&label.label), escape(frame)),
        None => escape(&label.label),
    }
}

fn histogram_table(
    served: &Served,
    grouping: Grouping,
    order: TopOrder,
    offset: usize,
    limit: usize,
) -> String {
    let graph = served.heap.graph();
    let classifier = Classifier::new(graph, grouping);
    let table = served.index.table(grouping);
    let total_retained = served.heap.analysis().reachable_bytes();
    let (plural, singular) = grouping_path(grouping);
    let sort_link = |key: TopOrder, text: &str| {
        if key == order {
            format!("{text} ▼")
        } else {
            format!("<a href=\"/{plural}?sort={}\">{text}</a>", order_name(key))
        }
    };
    let mut out = format!(
        "<table><tr><th class=\"n\">#</th><th>{singular}</th><th class=\"n\">{}</th>\
         <th class=\"n\">{}</th><th class=\"n\">{}</th><th></th><th class=\"n\">unreachable</th></tr>",
        sort_link(TopOrder::Count, "objects"),
        sort_link(TopOrder::Shallow, "shallow"),
        sort_link(TopOrder::Retained, "retained"),
    );
    let rows = table.ordered(order);
    for (at, &row) in rows.iter().enumerate().skip(offset).take(limit) {
        let Some((group, totals)) = table.rows.get(row as usize) else {
            continue;
        };
        let label = classifier.label(*group);
        let _ = write!(
            out,
            "<tr><td class=\"n\">{}</td><td><a href=\"/{singular}/{group}\">{}</a></td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            at + 1,
            group_text(&label),
            count(totals.objects),
            bytes(totals.shallow_bytes),
            bytes(totals.retained_bytes),
            bar(totals.retained_bytes, total_retained),
            bytes(totals.unreachable_bytes)
        );
    }
    out.push_str("</table>");
    out
}

fn histogram(
    app: &App,
    served: &Served,
    grouping: Grouping,
    query: &Query,
) -> Result<String, Failure> {
    let order = order_of(query)?;
    let (offset, limit) = query.page(ROWS)?;
    let table = served.index.table(grouping);
    let (plural, _) = grouping_path(grouping);
    let base = format!("/{plural}?sort={}&limit={limit}&", order_name(order));
    let mut body = pager(&base, offset, limit, table.rows.len());
    body.push_str(&histogram_table(served, grouping, order, offset, limit));
    body.push_str(&pager(&base, offset, limit, table.rows.len()));
    let title = match grouping {
        Grouping::Class => "Classes",
        Grouping::Site => "Allocation sites",
    };
    Ok(frame(app, served, &format!("/{plural}"), title, &body))
}

fn group_page(
    app: &App,
    served: &Served,
    grouping: Grouping,
    group: &str,
    query: &Query,
) -> Result<String, Failure> {
    let (plural, singular) = grouping_path(grouping);
    let group: usize = group
        .parse()
        .map_err(|_| (400, format!("{group:?} is not a {singular} number.")))?;
    let table = served.index.table(grouping);
    let totals = table
        .totals(group)
        .ok_or_else(|| (404, format!("There is no {singular} {group} with objects.")))?;
    let graph = served.heap.graph();
    let analysis = served.heap.analysis();
    let label = Classifier::new(graph, grouping).label(group);
    let (offset, limit) = query.page(ROWS)?;
    let mut body = format!(
        "<p><code>{}</code></p><dl class=\"kv\"><dt>objects</dt><dd>{}</dd><dt>shallow</dt><dd>{}</dd>\
         <dt>retained together</dt><dd>{}</dd><dt>unreachable</dt><dd>{} ({})</dd></dl>",
        escape(&label.label),
        count(totals.objects),
        bytes(totals.shallow_bytes),
        bytes(totals.retained_bytes),
        count(totals.unreachable_objects),
        bytes(totals.unreachable_bytes)
    );
    if grouping == Grouping::Site {
        body.push_str(&frames(&label.frames));
    }
    let members = table.members(group);
    let _ = write!(body, "<h2>Objects, biggest retained first</h2>");
    let base = format!("/{singular}/{group}?limit={limit}&");
    body.push_str(&pager(&base, offset, limit, members.len()));
    body.push_str("<table><tr><th>object</th><th>class</th><th class=\"n\">size</th><th class=\"n\">retained</th><th>reachability</th></tr>");
    for &id in members.iter().skip(offset).take(limit) {
        if let Some(object) = ObjectRef::new(graph, analysis, ObjectId(id)) {
            let _ = write!(
                body,
                "<tr>{}<td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                object_cells(&object),
                bytes(object.size),
                object.retained.map(bytes).unwrap_or_default(),
                escape(object.reachability.description())
            );
        }
    }
    body.push_str("</table>");
    body.push_str(&pager(&base, offset, limit, members.len()));
    let title = format!("{} {}", singular, label.label);
    Ok(frame(app, served, &format!("/{plural}"), &title, &body))
}

/// The list items of `node`'s children `offset..offset + limit`, each
/// with a button that loads its own children in place.
fn tree_items(served: &Served, node: DomNode, offset: usize, limit: usize) -> String {
    let graph = served.heap.graph();
    let analysis = served.heap.analysis();
    let total = analysis.reachable_bytes();
    let children = analysis.children(node);
    let mut out = String::new();
    for &child in children.iter().skip(offset).take(limit) {
        let Some(object) = ObjectRef::of_node(graph, analysis, child) else {
            continue;
        };
        let retained = analysis.retained_size(child);
        let dominated = served.index.dominated_objects(child).unwrap_or(1);
        let button = if analysis.children(child).is_empty() {
            "<button class=\"x\" disabled>·</button>".to_owned()
        } else {
            format!(
                "<button class=\"x\" data-node=\"{:#x}\" title=\"expand\">+</button>",
                object.address
            )
        };
        let _ = write!(
            out,
            "<li>{button} {} {} {} {} <code>{}</code> <span class=\"muted\">dominates {}</span> \
             <a href=\"/dominators/{:#x}\" title=\"subtree page\">⤷</a></li>",
            bar(retained, total),
            percent(retained, total),
            bytes(retained),
            object_link(object.address),
            escape(&object.class),
            count(dominated),
            object.address
        );
    }
    if children.len() > offset.saturating_add(limit) {
        let base = match analysis.object(node) {
            Some(id) => graph
                .object(id)
                .map_or_else(String::new, |o| format!("/{:#x}", o.address)),
            None => String::new(),
        };
        let _ = write!(
            out,
            "<li class=\"muted\"><a href=\"/dominators{base}?offset={}\">… {} more</a></li>",
            offset + limit,
            count((children.len() - offset - limit) as u64)
        );
    }
    out
}

/// Inline script: the tree's + buttons fetch a node's children.
const TREE_SCRIPT: &str = r#"<script>
document.addEventListener('click', function (event) {
  var button = event.target.closest('button[data-node]');
  if (!button) return;
  var item = button.parentElement;
  var open = item.querySelector(':scope > ul');
  if (open) { open.remove(); button.textContent = '+'; return; }
  button.textContent = '…';
  fetch('/dominators/' + button.dataset.node + '?fragment=1')
    .then(function (response) { return response.text(); })
    .then(function (html) {
      var list = document.createElement('ul');
      list.className = 'tree';
      list.innerHTML = html;
      item.appendChild(list);
      button.textContent = '−';
    });
});
</script>"#;

fn dominators(
    app: &App,
    served: &Served,
    address: Option<&&str>,
    query: &Query,
) -> Result<String, Failure> {
    let graph = served.heap.graph();
    let analysis = served.heap.analysis();
    let (offset, limit) = query.page(ROWS)?;
    let (node, object) = match address {
        None => (DomNode::ROOT, None),
        Some(address) => dominator_node(served, address)?,
    };
    if query.get("fragment").is_some() {
        return Ok(tree_items(
            served,
            node,
            offset,
            limit.min(FRAGMENT_CHILDREN),
        ));
    }
    let mut body = String::new();
    match &object {
        None => {
            let _ = write!(
                body,
                "<p>{} reachable objects ({}); {} held directly by roots or by more than one path. \
                 Biggest first; + loads children.</p>",
                count(analysis.reachable_objects()),
                bytes(analysis.reachable_bytes()),
                count(analysis.children(DomNode::ROOT).len() as u64)
            );
        }
        Some(object) => {
            // The chain of dominators above, nearest 20.
            let mut chain = Vec::new();
            let mut up = analysis.idom(node);
            while let Some(parent) = up {
                if parent == DomNode::ROOT || chain.len() >= 20 {
                    break;
                }
                chain.push(parent);
                up = analysis.idom(parent);
            }
            body.push_str("<p><a href=\"/dominators\">top</a>");
            if up.is_some_and(|parent| parent != DomNode::ROOT) {
                body.push_str(" › …");
            }
            for parent in chain.iter().rev() {
                if let Some(above) = ObjectRef::of_node(graph, analysis, *parent) {
                    let _ = write!(
                        body,
                        " › <a href=\"/dominators/{:#x}\">{}</a>",
                        above.address,
                        escape(&above.class)
                    );
                }
            }
            let _ = write!(body, " › <b>{}</b></p>", escape(&object.class));
            let _ = write!(
                body,
                "<p>{}; its children in the dominator tree, biggest first \
                 (<a href=\"/flame?root={:#x}\">flame graph</a>):</p>",
                object_line(object),
                object.address
            );
        }
    }
    let total = analysis.children(node).len();
    let base = match &object {
        Some(object) => format!("/dominators/{:#x}?limit={limit}&", object.address),
        None => format!("/dominators?limit={limit}&"),
    };
    body.push_str(&pager(&base, offset, limit, total));
    let _ = write!(
        body,
        "<ul class=\"tree\" id=\"tree\">{}</ul>",
        tree_items(served, node, offset, limit)
    );
    body.push_str(&pager(&base, offset, limit, total));
    body.push_str(TREE_SCRIPT);
    let title = match &object {
        Some(object) => format!("Dominator tree under {:#x}", object.address),
        None => "Dominator tree".to_owned(),
    };
    Ok(frame(app, served, "/dominators", &title, &body))
}

fn hex_dump(contents: &[u8]) -> String {
    let mut out = String::new();
    for (line, chunk) in contents.chunks(16).take(HEX_BYTES / 16).enumerate() {
        let _ = write!(out, "+{:04x}  ", line * 16);
        for (at, byte) in chunk.iter().enumerate() {
            let _ = write!(out, "{byte:02x}{}", if at == 7 { "  " } else { " " });
        }
        for _ in chunk.len()..16 {
            out.push_str("   ");
        }
        out.push(' ');
        for &byte in chunk {
            out.push(if byte.is_ascii_graphic() || byte == b' ' {
                byte as char
            } else {
                '.'
            });
        }
        out.push('\n');
    }
    escape(&out)
}

fn object(app: &App, served: &Served, address: &str) -> Result<String, Failure> {
    let id = object_id(served, address)?;
    let heap = &served.heap;
    let graph = heap.graph();
    let analysis = heap.analysis();
    let dump = graph.dump();
    let found = graph
        .object(id)
        .ok_or_else(|| (404, format!("No object at {address}.")))?;
    let object = ObjectRef::new(graph, analysis, id)
        .ok_or_else(|| (404, format!("No object at {address}.")))?;
    let mut body = String::new();
    let requested = parse_address(address)?;
    if requested != found.address {
        let _ = write!(
            body,
            "<p class=\"muted\">{requested:#x} is {} bytes into this object.</p>",
            requested - found.address
        );
    }
    body.push_str("<dl class=\"kv\">");
    let _ = write!(
        body,
        "<dt>class</dt><dd><code>{}</code></dd><dt>address</dt><dd><code>{:#x}</code></dd><dt>size</dt><dd>{}</dd>",
        escape(&object.class),
        object.address,
        bytes(object.size)
    );
    match object.retained {
        Some(retained) => {
            let dominated = analysis
                .node(id)
                .and_then(|node| served.index.dominated_objects(node))
                .unwrap_or(1);
            let _ = write!(
                body,
                "<dt>retained</dt><dd>{} ({} of the reachable heap), dominates {} objects \
                 (<a href=\"/dominators/{:#x}\">subtree</a>, <a href=\"/flame?root={:#x}\">flame</a>)</dd>",
                bytes(retained),
                percent(retained, analysis.reachable_bytes()),
                count(dominated),
                object.address,
                object.address
            );
        }
        None => {
            let _ = write!(
                body,
                "<dt>reachability</dt><dd>{}</dd>",
                escape(object.reachability.description())
            );
        }
    }
    if let Some(site) = found.site {
        let _ = write!(body, "<dt>site</dt><dd>site {site}</dd>");
    }
    body.push_str("</dl>");
    let site = SiteFrames::of_object(graph, found);
    if found.site.is_some() {
        body.push_str("<h2>Allocated at</h2>");
        body.push_str(&frames(&site));
    }

    // Why it is alive.
    let report = path_report(served, id, found.address);
    if !report.dominators.is_empty() {
        let omitted = report.dominators_omitted.as_ref();
        let _ = write!(
            body,
            "<h2>Dominators ({}), nearest first: freeing any frees it</h2><ol>",
            count(report.dominators.len() as u64 + omitted.map_or(0, |omitted| omitted.objects))
        );
        // Nearest first: the chain's bottom end, the middle counted, the top.
        for (index, dominator) in report.dominators.iter().enumerate().rev() {
            let _ = write!(body, "<li>{}</li>", object_line(dominator));
            if let Some(omitted) = omitted.filter(|omitted| omitted.at == index) {
                body.push_str(&omitted_line(omitted));
            }
        }
        body.push_str("</ol>");
    }
    let _ = write!(
        body,
        "<h2>Shortest paths from roots ({})</h2>",
        report.paths.len()
    );
    if report.paths.is_empty() {
        body.push_str("<p class=\"muted\">No path from a root.</p>");
    }
    for path in &report.paths {
        body.push_str(&root_path(path));
    }

    // References out of it, by offset (the graph keeps each object's in
    // field order), with their names where the format knows them.
    let references: Vec<(ObjectId, u32)> = graph.references(id).collect();
    let mut references = references;
    references.sort_by_key(|&(_, offset)| offset);
    let this = graph.object(id);
    let _ = write!(
        body,
        "<h2>Pointer fields ({})</h2><table><tr><th class=\"n\">offset</th><th>field</th><th>points to</th><th>class</th><th class=\"n\">size</th><th class=\"n\">retained</th></tr>",
        count(references.len() as u64)
    );
    for &(target, offset) in references.iter().take(OBJECT_ROWS) {
        if let Some(target) = ObjectRef::new(graph, analysis, target) {
            let field = this
                .and_then(|object| graph.dump().field_name(object, u64::from(offset)))
                .unwrap_or_default();
            let _ = write!(
                body,
                "<tr><td class=\"n\"><code>+{offset:#x}</code></td><td><code>{}</code></td>{}<td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&field),
                object_cells(&target),
                bytes(target.size),
                target.retained.map(bytes).unwrap_or_default()
            );
        }
    }
    body.push_str("</table>");
    if references.len() > OBJECT_ROWS {
        let _ = write!(
            body,
            "<p class=\"muted\">… {} more</p>",
            count((references.len() - OBJECT_ROWS) as u64)
        );
    }

    // Who points at it.
    let referrers = served.index.referrers(id);
    let others: Vec<u32> = referrers
        .iter()
        .copied()
        .filter(|&source| source != id.0)
        .take(OBJECT_ROWS)
        .collect();
    let _ = write!(
        body,
        "<h2>Referrers ({} objects, {} root words)</h2><table><tr><th>object</th><th>class</th><th class=\"n\">field</th><th class=\"n\">retained</th></tr>",
        count(report.referrers),
        count(report.root_references)
    );
    for source in others {
        let Some(referrer) = ObjectRef::new(graph, analysis, ObjectId(source)) else {
            continue;
        };
        // The referrer's field: its name where the format knows it.
        let field = graph
            .references(ObjectId(source))
            .find(|&(target, _)| target == id)
            .map_or(String::new(), |(_, offset)| {
                graph
                    .object(ObjectId(source))
                    .and_then(|object| graph.dump().field_name(object, u64::from(offset)))
                    .map_or_else(
                        || format!("+{offset:#x}"),
                        |name| format!("{name} +{offset:#x}"),
                    )
            });
        let _ = write!(
            body,
            "<tr>{}<td class=\"n\"><code>{}</code></td><td class=\"n\">{}</td></tr>",
            object_cells(&referrer),
            escape(&field),
            referrer.retained.map(bytes).unwrap_or_default()
        );
    }
    body.push_str("</table>");
    if report.referrers as usize > OBJECT_ROWS {
        let _ = write!(
            body,
            "<p class=\"muted\">… {} more</p>",
            count(report.referrers - OBJECT_ROWS as u64)
        );
    }
    let root_words = served.index.root_references_to(heap, id);
    if !root_words.is_empty() {
        let namer = heap.root_namer();
        body.push_str("<table><tr><th>root word</th><th>kind</th></tr>");
        for &index in root_words.iter().take(OBJECT_ROWS) {
            if let Some(reference) = graph.root_references().get(index as usize) {
                let kind = graph
                    .root(reference.root)
                    .map(|root| root.kind.label().into_owned())
                    .unwrap_or_default();
                let _ = write!(
                    body,
                    "<tr><td><a href=\"/root/{}\">{}</a></td><td>{}</td></tr>",
                    reference.root.0,
                    escape(&namer.reference_name(graph, reference)),
                    escape(&kind)
                );
            }
        }
        body.push_str("</table>");
    }

    // Contents.
    body.push_str("<h2>Contents</h2>");
    if contents_mode_name(dump.info.contents_mode) == "redacted" {
        body.push_str("<p class=\"muted\">Not shown: the dump is redacted.</p>");
    } else {
        let contents = graph.contents(id);
        if contents.is_empty() {
            body.push_str("<p class=\"muted\">The dump holds no contents for this object.</p>");
        } else {
            let _ = write!(body, "<pre>{}</pre>", hex_dump(contents));
            if contents.len() > HEX_BYTES {
                let _ = write!(
                    body,
                    "<p class=\"muted\">First {} of {}.</p>",
                    bytes(HEX_BYTES as u64),
                    bytes(contents.len() as u64)
                );
            }
        }
    }
    let title = format!("{} at {:#x}", object.class, object.address);
    Ok(frame(app, served, "", &title, &body))
}

fn roots(app: &App, served: &Served, query: &Query) -> Result<String, Failure> {
    let graph = served.heap.graph();
    let dump = graph.dump();
    let (offset, limit) = query.page(ROWS)?;
    let references = graph.root_references();
    let mut body = pager("/roots?", offset, limit, dump.roots.len());
    body.push_str("<table><tr><th class=\"n\">#</th><th>kind</th><th>name</th><th>address</th><th class=\"n\">bytes</th><th class=\"n\">words into objects</th></tr>");
    for (index, root) in dump.roots.iter().enumerate().skip(offset).take(limit) {
        let start = references.partition_point(|reference| reference.root.index() < index);
        let end = references.partition_point(|reference| reference.root.index() <= index);
        let _ = write!(
            body,
            "<tr><td class=\"n\">{index}</td><td>{}</td><td><a href=\"/root/{index}\">{}</a></td>\
             <td><code>{:#x}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&root.kind.label()),
            escape(&root.name),
            root.address,
            bytes(root.contents.len() as u64),
            count((end - start) as u64)
        );
    }
    body.push_str("</table>");
    body.push_str(&pager("/roots?", offset, limit, dump.roots.len()));
    Ok(frame(app, served, "/roots", "Roots", &body))
}

fn root(app: &App, served: &Served, root: &str, query: &Query) -> Result<String, Failure> {
    let graph = served.heap.graph();
    let analysis = served.heap.analysis();
    let index: u32 = root
        .parse()
        .map_err(|_| (400, format!("{root:?} is not a root number.")))?;
    let found = graph
        .root(RootId(index))
        .ok_or_else(|| (404, format!("There is no root {index}.")))?;
    let (offset, limit) = query.page(ROWS)?;
    let references = graph.root_references();
    let start = references.partition_point(|reference| reference.root.0 < index);
    let end = references.partition_point(|reference| reference.root.0 <= index);
    let words = references.get(start..end).unwrap_or(&[]);
    let namer = served.heap.root_namer();
    let mut body = format!(
        "<dl class=\"kv\"><dt>kind</dt><dd>{}</dd><dt>address</dt><dd><code>{:#x}</code></dd><dt>bytes</dt><dd>{}</dd></dl>",
        escape(&found.kind.label()),
        found.address,
        bytes(found.contents.len() as u64)
    );
    let base = format!("/root/{index}?limit={limit}&");
    body.push_str(&pager(&base, offset, limit, words.len()));
    body.push_str(
        "<table><tr><th>word</th><th>object</th><th>class</th><th class=\"n\">retained</th></tr>",
    );
    for reference in words.iter().skip(offset).take(limit) {
        if let Some(object) = ObjectRef::new(graph, analysis, reference.target) {
            let _ = write!(
                body,
                "<tr><td><code>{}</code></td>{}<td class=\"n\">{}</td></tr>",
                escape(&namer.reference_name(graph, reference)),
                object_cells(&object),
                object.retained.map(bytes).unwrap_or_default()
            );
        }
    }
    body.push_str("</table>");
    body.push_str(&pager(&base, offset, limit, words.len()));
    let title = format!("Root {index}: {}", found.name);
    Ok(frame(app, served, "/roots", &title, &body))
}

fn unreachable_table(title: &str, groups: &[UnreachableGroup]) -> String {
    let mut out = format!(
        "<h2>{title}</h2><table><tr><th>group</th><th>how</th><th class=\"n\">objects</th><th class=\"n\">bytes</th><th>example</th></tr>"
    );
    for group in groups {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            group_text(&group.group),
            escape(group.reachability.description()),
            count(group.objects),
            bytes(group.bytes),
            group
                .example
                .as_ref()
                .map(|example| object_link(example.address))
                .unwrap_or_default()
        );
    }
    out.push_str("</table>");
    out
}

fn unreachable(app: &App, served: &Served) -> String {
    let report = &served.index.leaks.unreachable;
    let mut body = format!(
        "<p>{} objects ({}) are not reachable from any root (LSan's terms: directly unreachable objects lost their last pointer; indirectly unreachable ones hang off them).</p>",
        count(report.objects),
        bytes(report.bytes)
    );
    body.push_str("<table><tr><th>reachability</th><th class=\"n\">objects</th><th class=\"n\">bytes</th></tr>");
    for totals in &report.by_reachability {
        if totals.reachability == Reachability::Reachable {
            continue;
        }
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(totals.reachability.description()),
            count(totals.objects),
            bytes(totals.bytes)
        );
    }
    body.push_str("</table>");
    body.push_str(&unreachable_table("By allocation site", &report.by_site));
    body.push_str(&unreachable_table("By class", &report.by_class));
    frame(app, served, "/unreachable", "Unreachable objects", &body)
}

/// Referrers as text: `Class.field (n)`, array elements as `Class[]`.
fn referrers_text(referrers: &[Referrer]) -> String {
    referrers
        .iter()
        .map(|referrer| {
            let place = match referrer.field.as_deref() {
                None => referrer.class.clone(),
                Some("[]") => format!("{} element", referrer.class),
                Some(field) if field.contains('.') => field.to_owned(),
                Some(field) => format!("{}.{field}", referrer.class),
            };
            format!("{} ({})", escape(&place), count(referrer.count))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn duplicates_table(title: &str, section: &DuplicateSection) -> String {
    let mut out = format!(
        "<h2>{title}</h2><p>{} groups, {} extra copies, {} wasted ({} examined).</p>",
        count(section.groups),
        count(section.extra_copies),
        bytes(section.wasted_bytes),
        count(section.examined)
    );
    if section.rows.is_empty() {
        return out;
    }
    out.push_str(
        "<table><tr><th>class</th><th>value</th><th class=\"n\">copies</th><th class=\"n\">each</th>\
         <th class=\"n\">wasted</th><th>example</th><th>held by</th></tr>",
    );
    for row in &section.rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&row.class),
            escape(&row.preview),
            count(row.count),
            bytes(row.size),
            bytes(row.wasted_bytes),
            object_link(row.example),
            referrers_text(&row.referrers)
        );
    }
    out.push_str("</table>");
    out
}

/// `heapdump waste`: duplicate strings and values, empty and sparse
/// collections (from the index).
fn waste(app: &App, served: &Served) -> String {
    let report = &served.index.waste;
    let mut body = duplicates_table(
        "Duplicate strings (a copy's size is what it retains)",
        &report.strings,
    );
    body.push_str(&duplicates_table(
        "Duplicate values (objects without references, equal contents)",
        &report.values,
    ));
    let collections = &report.collections;
    body.push_str("<h2>Empty and sparse collections</h2>");
    if collections.examined == 0 {
        body.push_str("<p>None the dump names (found by class and field name, in Java dumps).</p>");
    } else {
        let _ = write!(
            body,
            "<p>{} examined, {} empty, {} sparse, {} wasted.</p>\
             <table><tr><th>class</th><th>state</th><th class=\"n\">count</th><th class=\"n\">used/slots</th>\
             <th class=\"n\">wasted</th><th>example</th><th>held by</th></tr>",
            count(collections.examined),
            count(collections.empty),
            count(collections.sparse),
            bytes(collections.wasted_bytes)
        );
        for row in &collections.rows {
            let state = match row.state {
                CollectionState::Empty => "empty",
                CollectionState::Sparse => "sparse",
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{state}</td><td class=\"n\">{}</td><td class=\"n\">{}/{}</td>\
                 <td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                escape(&row.class),
                count(row.count),
                count(row.used),
                count(row.slots),
                bytes(row.wasted_bytes),
                object_link(row.example),
                referrers_text(&row.referrers)
            );
        }
        body.push_str("</table>");
    }
    frame(
        app,
        served,
        "/waste",
        "Waste: copies and empty collections",
        &body,
    )
}

fn growth_table(title: &str, rows: &[GroupGrowth]) -> String {
    let mut out = format!(
        "<h2>{title}</h2><table><tr><th>group</th><th class=\"n\">objects +</th><th class=\"n\">bytes +</th>\
         <th class=\"n\">objects now</th><th class=\"n\">bytes now</th><th class=\"n\">retained now</th></tr>"
    );
    for row in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{:+}</td><td class=\"n\">{:+}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            group_text(&row.group),
            row.object_growth,
            row.byte_growth,
            count(row.new_objects),
            bytes(row.new_bytes),
            bytes(row.new_retained_bytes)
        );
    }
    out.push_str("</table>");
    out
}

fn diff(app: &App) -> Result<String, Failure> {
    let (Some(report), Some(old)) = (&app.diff, &app.old) else {
        return Err((
            404,
            "No diff: the server shows one dump (heapdump serve OLD NEW shows what grew)."
                .to_owned(),
        ));
    };
    let served = &app.current;
    let mut body = format!(
        "<p>From <b>{}</b> ({} objects, {}) to <b>{}</b> ({} objects, {}){}.</p>",
        escape(&old.name),
        count(report.old.objects),
        bytes(report.old.bytes),
        escape(&served.name),
        count(report.new.objects),
        bytes(report.new.bytes),
        if report.same_process {
            ""
        } else {
            " <b>(not the same process)</b>"
        }
    );
    body.push_str(&growth_table("Growth by class", &report.by_class));
    body.push_str(&growth_table("Growth by allocation site", &report.by_site));
    body.push_str("<h2>What holds the top growers (in the newer dump)</h2>");
    for grower in &report.growers {
        let _ = write!(
            body,
            "<div class=\"suspect\"><p><b>{}</b>: {:+} objects, {:+} bytes</p>",
            group_text(&grower.growth.group),
            grower.growth.object_growth,
            grower.growth.byte_growth
        );
        for retainer in &grower.retainers {
            let _ = write!(
                body,
                "<p>{} of them ({}) held by {}</p>",
                count(retainer.objects),
                bytes(retainer.bytes),
                retainer
                    .object
                    .as_ref()
                    .map_or("roots directly".to_owned(), object_line)
            );
            if let Some(path) = &retainer.path {
                body.push_str(&root_path(path));
            }
        }
        body.push_str("</div>");
    }
    Ok(frame(app, served, "/diff", "What grew", &body))
}
