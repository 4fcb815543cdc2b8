//! The planning half: the profile's tables (strings, functions, locations,
//! mappings) and its aggregated samples, built from the common model.

// Maps keyed per object: foldhash, not SipHash (see the workspace's note).
use foldhash::{HashMap, HashMapExt};

use heapdump_analysis::paths::ShortestPathTree;
use heapdump_analysis::{Analysis, DomNode, Reachability};
use heapdump_reader::{Dump, HeapGraph, Object, ObjectClass, ObjectId, Stack};
use heapdump_symbols::RootNamer;

use super::{Options, Report};

/// The frame of objects whose allocation site the dump does not record.
pub const SITE_NOT_RECORDED: &str = "(allocation site not recorded)";
/// The frame of a recorded site with no frames left (all were the
/// allocator's own).
const SITE_EMPTY: &str = "(allocation site without frames)";

/// A function of the profile: names are indices into the string table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct FunctionRow {
    pub name: u64,
    pub filename: u64,
}

/// A location: an address in a mapping and its lines (innermost inlined
/// function first, the caller last, as profile.proto orders them).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct LocationRow {
    /// Mapping id, 0 for none.
    pub mapping: u64,
    /// The return address, 0 for none.
    pub address: u64,
    /// (function id, line).
    pub lines: Vec<(u64, i64)>,
}

/// A mapping: one executable range of a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct MappingRow {
    pub start: u64,
    pub limit: u64,
    pub file_offset: u64,
    pub filename: u64,
    pub build_id: u64,
    /// Some location in it has lines (names came from the binary).
    pub symbolized: bool,
}

/// An aggregated sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SampleRow {
    /// Location ids, leaf first.
    pub locations: Vec<u64>,
    /// `[objects, bytes]`.
    pub values: [u64; 2],
    /// (key, value) string indices.
    pub labels: Vec<(u64, u64)>,
}

/// The tables of a profile under construction.
#[derive(Debug)]
pub(super) struct Tables {
    pub strings: Vec<String>,
    string_index: HashMap<String, u64>,
    pub functions: Vec<FunctionRow>,
    function_index: HashMap<FunctionRow, u64>,
    pub locations: Vec<LocationRow>,
    location_index: HashMap<LocationRow, u64>,
    pub mappings: Vec<MappingRow>,
    /// Executable ranges: (start, end, mapping id), by start.
    ranges: Vec<(u64, u64, u64)>,
}

impl Tables {
    fn new(dump: &Dump<'_>) -> Tables {
        let mut tables = Tables {
            strings: vec![String::new()],
            string_index: [(String::new(), 0)].into_iter().collect(),
            functions: Vec::new(),
            function_index: HashMap::new(),
            locations: Vec::new(),
            location_index: HashMap::new(),
            mappings: Vec::new(),
            ranges: Vec::new(),
        };
        for module in &dump.modules {
            let filename = tables.string(&module.path);
            let build_id: String = module
                .build_id
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            let build_id = tables.string(&build_id);
            for range in &module.ranges {
                if range.flags & heapdump_format::range_flags::EXECUTE == 0 || range.size == 0 {
                    continue;
                }
                tables.mappings.push(MappingRow {
                    start: range.start,
                    limit: range.start.saturating_add(range.size),
                    // The segment's link-time address: its offset in the
                    // file for the usual layouts (pprof needs it only to
                    // symbolize addresses itself).
                    file_offset: range.start.wrapping_sub(module.load_bias),
                    filename,
                    build_id,
                    symbolized: false,
                });
                let id = tables.mappings.len() as u64;
                tables
                    .ranges
                    .push((range.start, range.start.saturating_add(range.size), id));
            }
        }
        tables.ranges.sort_unstable();
        tables
    }

    /// The index of `text` in the string table.
    pub fn string(&mut self, text: &str) -> u64 {
        if let Some(&index) = self.string_index.get(text) {
            return index;
        }
        let index = self.strings.len() as u64;
        self.strings.push(text.to_owned());
        self.string_index.insert(text.to_owned(), index);
        index
    }

    /// The id of the function `name` in `filename`.
    fn function(&mut self, name: &str, filename: &str) -> u64 {
        let row = FunctionRow {
            name: self.string(name),
            filename: self.string(filename),
        };
        if let Some(&id) = self.function_index.get(&row) {
            return id;
        }
        self.functions.push(row);
        let id = self.functions.len() as u64;
        self.function_index.insert(row, id);
        id
    }

    /// The id of `row`.
    fn location(&mut self, row: LocationRow) -> u64 {
        if let Some(&id) = self.location_index.get(&row) {
            return id;
        }
        if let Some(mapping) = row
            .mapping
            .checked_sub(1)
            .and_then(|index| self.mappings.get_mut(index as usize))
        {
            mapping.symbolized |= !row.lines.is_empty();
        }
        self.locations.push(row.clone());
        let id = self.locations.len() as u64;
        self.location_index.insert(row, id);
        id
    }

    /// A location that is only a name: a class.
    fn named(&mut self, name: &str) -> u64 {
        self.named_in(name, "")
    }

    /// A location of heapdump's own, not of the program (a root, a root
    /// word, a marker such as `(allocation site not recorded)`): its
    /// function's file is `<heapdump>`, so that a class of the same name
    /// stays a frame of its own.
    fn marker(&mut self, name: &str) -> u64 {
        self.named_in(name, MARKER_FILE)
    }

    fn named_in(&mut self, name: &str, file: &str) -> u64 {
        let function = self.function(name, file);
        self.location(LocationRow {
            mapping: 0,
            address: 0,
            lines: vec![(function, 0)],
        })
    }

    /// The mapping holding `address`, 0 for none.
    fn mapping_of(&self, address: u64) -> u64 {
        let index = self
            .ranges
            .partition_point(|&(start, _, _)| start <= address);
        match index
            .checked_sub(1)
            .and_then(|index| self.ranges.get(index))
        {
            Some(&(_, end, id)) if address < end => id,
            _ => 0,
        }
    }

    /// The locations of an allocation-site stack, leaf first: one per
    /// return address with its inlined chain when symbolised, one per frame
    /// when the stack has frames and no addresses (Go), one per address
    /// when it is not symbolised. The allocator's own frames are left out.
    fn stack_locations(&mut self, stack: &Stack) -> Vec<u64> {
        let mut out = Vec::new();
        if stack.frames.is_empty() {
            for &pc in &stack.pcs {
                let mapping = self.mapping_of(pc);
                out.push(self.location(LocationRow {
                    mapping,
                    address: pc,
                    lines: Vec::new(),
                }));
            }
        } else {
            let start = stack.allocator_frames.min(stack.frames.len());
            // Frames that share a return address are one location.
            let mut group: Vec<(u64, i64)> = Vec::new();
            let mut group_pc: Option<u64> = None;
            let mut group_key: Option<usize> = None;
            for (index, frame) in stack.frames.iter().enumerate().skip(start) {
                let key = if stack.frame_pcs.is_empty() {
                    index
                } else {
                    stack
                        .frame_pcs
                        .get(index)
                        .map_or(usize::MAX, |&i| i as usize)
                };
                if group_key != Some(key) && !group.is_empty() {
                    let lines = std::mem::take(&mut group);
                    out.push(self.frame_location(group_pc, lines));
                }
                group_key = Some(key);
                let pc = stack.pc_of_frame(index);
                group_pc = pc;
                let name = match (&frame.function, pc) {
                    (Some(name), _) => name.to_string(),
                    (None, Some(pc)) => format!("{pc:#x}"),
                    (None, None) => "?".to_owned(),
                };
                let file = frame.file.as_deref().unwrap_or("");
                let function = self.function(&name, file);
                let line = frame
                    .line
                    .map_or(0, |line| i64::try_from(line).unwrap_or(i64::MAX));
                group.push((function, line));
            }
            if !group.is_empty() {
                out.push(self.frame_location(group_pc, group));
            }
        }
        if out.is_empty() {
            out.push(self.marker(SITE_EMPTY));
        }
        out
    }

    fn frame_location(&mut self, pc: Option<u64>, lines: Vec<(u64, i64)>) -> u64 {
        let address = pc.unwrap_or(0);
        let mapping = pc.map_or(0, |pc| self.mapping_of(pc));
        self.location(LocationRow {
            mapping,
            address,
            lines,
        })
    }
}

/// Class names by class, each named once (`'data`: the borrow of the
/// `Dump` the classes come from).
struct Classes<'data> {
    ids: HashMap<ObjectClass<'data>, u32>,
    /// Per class id: its name's string index and its location (retention).
    rows: Vec<(u64, Option<u64>)>,
}

impl<'data> Classes<'data> {
    fn new() -> Classes<'data> {
        Classes {
            ids: HashMap::new(),
            rows: Vec::new(),
        }
    }

    fn id(&mut self, dump: &'data Dump<'_>, tables: &mut Tables, object: &Object) -> u32 {
        let class = dump.object_class(object);
        if let Some(&id) = self.ids.get(&class) {
            return id;
        }
        let name = tables.string(&dump.class_name(&class));
        let id = self.rows.len() as u32;
        self.rows.push((name, None));
        self.ids.insert(class, id);
        id
    }

    fn name(&self, id: u32) -> u64 {
        self.rows.get(id as usize).map_or(0, |row| row.0)
    }

    fn location(&mut self, tables: &mut Tables, id: u32) -> u64 {
        match self.rows.get(id as usize) {
            Some(&(_, Some(location))) => location,
            Some(&(name, None)) => {
                let text = tables
                    .strings
                    .get(name as usize)
                    .cloned()
                    .unwrap_or_default();
                let location = tables.named(&text);
                if let Some(row) = self.rows.get_mut(id as usize) {
                    row.1 = Some(location);
                }
                location
            }
            None => tables.marker("?"),
        }
    }
}

/// A planned profile: tables and aggregated samples.
#[derive(Debug)]
pub(super) struct Planned {
    pub tables: Tables,
    pub samples: Vec<SampleRow>,
    pub comments: Vec<u64>,
    pub time_nanos: u64,
    pub report: Report,
    /// String indices of `inuse_objects`, `count`, `inuse_space`, `bytes`,
    /// `space`: the sample and period types.
    pub type_names: [u64; 5],
}

/// The string indices of [`Planned::type_names`].
fn type_names(tables: &mut Tables) -> [u64; 5] {
    ["inuse_objects", "count", "inuse_space", "bytes", "space"].map(|name| tables.string(name))
}

/// Index in the dump's stacks of `object`'s site, plus one; 0 for none.
fn site_index(dump: &Dump<'_>, object: &Object) -> u32 {
    object
        .site
        .and_then(|id| dump.stacks.binary_search_by_key(&id, |stack| stack.id).ok())
        .map_or(0, |index| index as u32 + 1)
}

/// Sorts samples biggest first (then by stack), for a stable file.
/// Counts `object` in a sample's `values` (objects, bytes), and in the
/// report's unrecorded sites when `site` is 0.
fn tally(values: &mut [u64; 2], report: &mut Report, site: u32, object: &Object) {
    values[0] += 1;
    values[1] = values[1].saturating_add(object.size);
    if site == 0 {
        report.site_not_recorded_objects += 1;
        report.site_not_recorded_bytes = report.site_not_recorded_bytes.saturating_add(object.size);
    }
}

/// A profile of `samples` (put in their order by [`finish`]) with the
/// report's totals filled in from `dump`.
fn planned(
    dump: &Dump<'_>,
    mut report: Report,
    mut samples: Vec<SampleRow>,
    comments: Vec<u64>,
    mut tables: Tables,
) -> Planned {
    finish(&mut samples);
    report.objects = dump.objects.len() as u64;
    report.bytes = dump.live_bytes();
    report.samples = samples.len() as u64;
    Planned {
        report,
        samples,
        comments,
        time_nanos: dump.info.time_unix_ns,
        type_names: type_names(&mut tables),
        tables,
    }
}

fn finish(samples: &mut [SampleRow]) {
    samples.sort_unstable_by(|a, b| {
        b.values[1]
            .cmp(&a.values[1])
            .then(b.values[0].cmp(&a.values[0]))
            .then_with(|| a.locations.cmp(&b.locations))
            .then_with(|| a.labels.cmp(&b.labels))
    });
}

/// The sites profile.
pub(super) fn sites(graph: &HeapGraph<'_>) -> Planned {
    let dump = graph.dump();
    let mut tables = Tables::new(dump);
    let mut classes = Classes::new();
    let mut totals: HashMap<(u32, u32), [u64; 2]> = HashMap::new();
    let mut report = Report::default();
    for object in &dump.objects {
        let site = site_index(dump, object);
        let class = classes.id(dump, &mut tables, object);
        tally(
            totals.entry((site, class)).or_insert([0, 0]),
            &mut report,
            site,
            object,
        );
    }
    let class_key = tables.string("class");
    let mut keys: Vec<((u32, u32), [u64; 2])> = totals.into_iter().collect();
    keys.sort_unstable_by_key(|(key, _)| *key);
    // Sites that differ only in frames left out (the allocator's) have the
    // same locations: one sample per locations and labels.
    let mut stacks: HashMap<u32, Vec<u64>> = HashMap::new();
    let mut merged: HashMap<(Vec<u64>, u32), [u64; 2]> = HashMap::new();
    for ((site, class), values) in keys {
        let locations = match stacks.get(&site) {
            Some(locations) => locations.clone(),
            None => {
                let locations = match (site as usize)
                    .checked_sub(1)
                    .and_then(|index| dump.stacks.get(index))
                {
                    Some(stack) => tables.stack_locations(stack),
                    None => vec![tables.marker(SITE_NOT_RECORDED)],
                };
                stacks.insert(site, locations.clone());
                locations
            }
        };
        let entry = merged.entry((locations, class)).or_insert([0, 0]);
        entry[0] += values[0];
        entry[1] = entry[1].saturating_add(values[1]);
    }
    let samples: Vec<SampleRow> = merged
        .into_iter()
        .map(|((locations, class), values)| SampleRow {
            locations,
            values,
            labels: vec![(class_key, classes.name(class))],
        })
        .collect();
    let comments = vec![tables.string(
        "heapdump pprof --profile sites: live objects by allocation site, every object counted \
         once (no sampling scale); objects whose site was not recorded are under \
         (allocation site not recorded)",
    )];
    planned(dump, report, samples, comments, tables)
}

/// The file of heapdump's own frames ([`Tables::marker`]).
const MARKER_FILE: &str = "<heapdump>";

/// A node of the trie of retention stacks: a frame on top of its parent's
/// stack. Node 0 is the empty stack.
#[derive(Clone, Copy, Debug)]
struct TrieNode {
    parent: u32,
    /// Location id of the frame.
    frame: u64,
    depth: u32,
}

/// Retention stacks, shared as a trie: a stack is its top node.
struct Trie {
    nodes: Vec<TrieNode>,
    index: HashMap<(u32, u64), u32>,
    max_depth: u32,
    /// Location of the frame that stands for the cut part of long chains.
    cut: u64,
}

/// What [`Trie::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pushed {
    /// A new frame on top.
    Frame,
    /// The frame repeats the one below it: merged into it.
    Collapsed,
    /// The stack was cut at the depth limit.
    Cut,
}

impl Trie {
    fn new(max_depth: u32, cut: u64) -> Trie {
        Trie {
            nodes: vec![TrieNode {
                parent: 0,
                frame: 0,
                depth: 0,
            }],
            index: HashMap::new(),
            max_depth: max_depth.max(2),
            cut,
        }
    }

    /// The stack `parent` with `frame` on top: a run of one frame is one
    /// frame; a stack at the depth limit ends in the cut frame, which
    /// takes everything deeper.
    fn push(&mut self, parent: u32, frame: u64) -> (u32, Pushed) {
        let below = self
            .nodes
            .get(parent as usize)
            .copied()
            .unwrap_or(TrieNode {
                parent: 0,
                frame: 0,
                depth: 0,
            });
        if parent != 0 && below.frame == self.cut {
            return (parent, Pushed::Cut);
        }
        if parent != 0 && below.frame == frame {
            return (parent, Pushed::Collapsed);
        }
        let (frame, pushed) = if below.depth + 1 >= self.max_depth {
            (self.cut, Pushed::Cut)
        } else {
            (frame, Pushed::Frame)
        };
        if let Some(&node) = self.index.get(&(parent, frame)) {
            return (node, pushed);
        }
        self.nodes.push(TrieNode {
            parent,
            frame,
            depth: below.depth + 1,
        });
        let node = (self.nodes.len() - 1) as u32;
        self.index.insert((parent, frame), node);
        (node, pushed)
    }

    /// The frames of stack `node`, leaf first.
    fn locations(&self, mut node: u32) -> Vec<u64> {
        let mut out = Vec::new();
        while node != 0 {
            let Some(entry) = self.nodes.get(node as usize) else {
                break;
            };
            out.push(entry.frame);
            node = entry.parent;
        }
        out
    }
}

/// The reachability labels' values, in `Reachability` order.
const REACHABILITIES: [Reachability; 4] = [
    Reachability::Reachable,
    Reachability::DirectlyUnreachable,
    Reachability::IndirectlyUnreachable,
    Reachability::InUnreachableCycle,
];

fn reachability_index(reachability: Reachability) -> u8 {
    REACHABILITIES
        .iter()
        .position(|&r| r == reachability)
        .unwrap_or(0) as u8
}

/// The retention profile.
pub(super) fn retention(
    graph: &HeapGraph<'_>,
    analysis: &Analysis,
    namer: &RootNamer<'_>,
    options: &Options,
) -> Planned {
    let dump = graph.dump();
    let mut tables = Tables::new(dump);
    let mut classes = Classes::new();
    let max_depth = u32::try_from(options.max_depth).unwrap_or(u32::MAX);
    let cut_name = format!(
        "(deeper dominators: chain cut at {} frames)",
        max_depth.max(2)
    );
    let cut = tables.marker(&cut_name);
    let mut trie = Trie::new(max_depth, cut);
    let mut report = Report::default();

    // The roots of the top-level dominators: the first root word pointing
    // at each, else the root of a shortest path to it ("(shared)").
    let mut first_reference: HashMap<u32, usize> = HashMap::new();
    for (index, reference) in graph.root_references().iter().enumerate() {
        first_reference.entry(reference.target.0).or_insert(index);
    }
    let mut root_frames: HashMap<(u32, u64, bool), u32> = HashMap::new();
    let mut root_stack = |tables: &mut Tables, trie: &mut Trie, reference: usize, shared: bool| {
        let Some(reference) = graph.root_references().get(reference) else {
            return trie.push(0, tables.marker("(root)")).0;
        };
        let key = (reference.root.0, reference.offset, shared);
        if let Some(&node) = root_frames.get(&key) {
            return node;
        }
        let node = match graph.root(reference.root) {
            Some(root) => {
                let region = tables.marker(&root.name);
                let (mut node, _) = trie.push(0, region);
                let word = namer.slot_name(root, reference.offset);
                if shared {
                    let frame = tables.marker(&format!("(shared) {word}"));
                    node = trie.push(node, frame).0;
                } else if word != root.name {
                    let frame = tables.marker(&word);
                    node = trie.push(node, frame).0;
                }
                node
            }
            None => trie.push(0, tables.marker("(root)")).0,
        };
        root_frames.insert(key, node);
        node
    };
    let tops = analysis.children(DomNode::ROOT);
    let mut top_stacks: HashMap<u32, u32> = HashMap::with_capacity(tops.len());
    let mut shared: Vec<ObjectId> = Vec::new();
    for &top in tops {
        let Some(object) = analysis.object(top) else {
            continue;
        };
        match first_reference.get(&object.0) {
            Some(&reference) => {
                let node = root_stack(&mut tables, &mut trie, reference, false);
                top_stacks.insert(top.0, node);
            }
            None => shared.push(object),
        }
    }
    if !shared.is_empty() {
        let tree = ShortestPathTree::build_for(graph, &shared);
        for object in shared {
            let reference = tree
                .objects_to(object)
                .and_then(|path| path.first().copied())
                .and_then(|first| first_reference.get(&first.0).copied());
            let node = match reference {
                Some(reference) => root_stack(&mut tables, &mut trie, reference, true),
                None => trie.push(0, tables.marker("(shared) (no root path)")).0,
            };
            if let Some(top) = analysis.node(object) {
                top_stacks.insert(top.0, node);
            }
        }
    }

    // Site labels, one per site, made on first use.
    let mut site_labels: Vec<Option<u64>> = vec![None; dump.stacks.len() + 1];
    let mut site_label = |tables: &mut Tables, site: u32| -> u64 {
        if let Some(Some(label)) = site_labels.get(site as usize) {
            return *label;
        }
        let text = match (site as usize)
            .checked_sub(1)
            .and_then(|index| dump.stacks.get(index))
        {
            Some(stack) => stack
                .frame_labels()
                .into_iter()
                .next()
                .unwrap_or_else(|| SITE_EMPTY.to_owned()),
            None => SITE_NOT_RECORDED.to_owned(),
        };
        let label = tables.string(&text);
        if let Some(slot) = site_labels.get_mut(site as usize) {
            *slot = Some(label);
        }
        label
    };

    // Every reachable object, top-down (preorder: a dominator comes before
    // what it dominates).
    let mut totals: HashMap<(u32, u32, u64, u8), [u64; 2]> = HashMap::new();
    let mut stack_of: Vec<u32> = vec![0; analysis.node_count()];
    let objects_of_nodes = analysis.object_of_node();
    for node_index in 1..analysis.node_count() {
        let node = DomNode(node_index as u32);
        let Some(id) = objects_of_nodes
            .get(node_index)
            .map(|&object| ObjectId(object))
        else {
            continue;
        };
        let Some(object) = graph.object(id) else {
            continue;
        };
        let base = match analysis.idom(node) {
            Some(DomNode::ROOT) | None => top_stacks.get(&node.0).copied().unwrap_or(0),
            Some(parent) => stack_of.get(parent.index()).copied().unwrap_or(0),
        };
        let class = classes.id(dump, &mut tables, object);
        let frame = classes.location(&mut tables, class);
        let (stack, pushed) = trie.push(base, frame);
        match pushed {
            Pushed::Collapsed => report.collapsed_objects += 1,
            Pushed::Cut => report.cut_objects += 1,
            Pushed::Frame => {}
        }
        if let Some(slot) = stack_of.get_mut(node_index) {
            *slot = stack;
        }
        let site = site_index(dump, object);
        let label = site_label(&mut tables, site);
        let entry = totals.entry((stack, class, label, 0)).or_insert([0, 0]);
        tally(entry, &mut report, site, object);
    }
    drop(stack_of);

    // Unreachable objects, under their kind.
    let mut unreachable_bases: [Option<u32>; 4] = [None; 4];
    for (id, object) in graph.objects() {
        let reachability = analysis.reachability(id);
        if reachability == Reachability::Reachable && analysis.node(id).is_some() {
            continue;
        }
        let kind = reachability_index(reachability);
        let base = match unreachable_bases.get(kind as usize).copied().flatten() {
            Some(base) => base,
            None => {
                let name = format!("(unreachable: {})", reachability.description());
                let base = trie.push(0, tables.marker(&name)).0;
                if let Some(slot) = unreachable_bases.get_mut(kind as usize) {
                    *slot = Some(base);
                }
                base
            }
        };
        let class = classes.id(dump, &mut tables, object);
        let frame = classes.location(&mut tables, class);
        let stack = trie.push(base, frame).0;
        let site = site_index(dump, object);
        let label = site_label(&mut tables, site);
        let entry = totals.entry((stack, class, label, kind)).or_insert([0, 0]);
        entry[0] += 1;
        entry[1] = entry[1].saturating_add(object.size);
        report.unreachable_objects += 1;
        report.unreachable_bytes = report.unreachable_bytes.saturating_add(object.size);
        if site == 0 {
            report.site_not_recorded_objects += 1;
            report.site_not_recorded_bytes =
                report.site_not_recorded_bytes.saturating_add(object.size);
        }
    }

    let class_key = tables.string("class");
    let site_key = tables.string("site");
    let reachability_key = tables.string("reachability");
    let reachability_values: Vec<u64> = REACHABILITIES
        .iter()
        .map(|r| tables.string(r.description()))
        .collect();
    let samples: Vec<SampleRow> = totals
        .into_iter()
        .map(|((stack, class, site, kind), values)| SampleRow {
            locations: trie.locations(stack),
            values,
            labels: vec![
                (class_key, classes.name(class)),
                (site_key, site),
                (
                    reachability_key,
                    reachability_values.get(kind as usize).copied().unwrap_or(0),
                ),
            ],
        })
        .collect();
    let comments = vec![
        tables.string(
            "heapdump pprof --profile retention: every object under its chain in the dominator \
             tree (the root word at the bottom, then each dominator's class, the object's class \
             on top), so a frame's cumulative value is what that path retains; unreachable \
             objects under (unreachable: ...)",
        ),
        tables.string(&format!(
            "a run of dominators of one class is one frame; chains longer than {} frames end \
             in {cut_name}",
            max_depth.max(2)
        )),
    ];
    planned(dump, report, samples, comments, tables)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapdump_reader::DumpInfo;

    #[test]
    fn a_class_named_like_a_marker_is_a_frame_of_its_own() {
        let dump = Dump::new(DumpInfo::default());
        let mut tables = Tables::new(&dump);
        let class = tables.named("(root)");
        let marker = tables.marker("(root)");
        assert_ne!(class, marker);
        assert_eq!(tables.marker("(root)"), marker, "markers are shared");
        assert_eq!(tables.named("(root)"), class, "class frames are shared");
    }
}
