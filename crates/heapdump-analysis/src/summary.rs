//! A one-page overview of a dump: what `heapdump summary` prints.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use heapdump_reader::{
    AllocatorStats, Dump, DumpInfo, ExecutionContexts, HeapGraph, Module, Object, ObjectClass,
    RootKind, StackId, TypeIndex,
};
use heapdump_symbols::RootNamer;

use crate::class::{self, SiteFrames, SIZE_CLASSES};

/// Objects per parallel task when aggregating.
const CHUNK: usize = 64 * 1024;

/// The overview of a dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// What the dump says about itself (format, PARAMS).
    pub info: DumpInfo,
    /// Number of loaded modules.
    pub module_count: u64,
    /// The loaded modules.
    pub modules: Vec<Module>,
    /// Roots by kind.
    pub roots: RootCounts,
    /// Number of live objects.
    pub object_count: u64,
    /// Sum of live object sizes.
    pub live_bytes: u64,
    /// Object→object references (distinct source/target pairs).
    pub reference_count: u64,
    /// Root words that point into objects.
    pub root_reference_count: u64,
    /// The allocator's statistics, if the dump has them.
    pub stats: Option<AllocatorStats>,
    /// Whether the dump's objects agree with the allocator's statistics.
    pub stats_agreement: Option<StatsAgreement>,
    /// Number of distinct allocation sites with live objects.
    pub site_count: u64,
    /// Allocation sites by live bytes, largest first.
    pub top_sites: Vec<SiteSummary>,
    /// Objects whose allocation was not sampled.
    pub not_sampled: Totals,
    /// Objects by size class (power-of-two buckets), smallest first; empty
    /// classes are left out.
    pub size_classes: Vec<SizeClass>,
    /// Roots by kind ([`RootKind::label`]), in the order kinds first appear.
    pub roots_by_kind: Vec<RootKindTotals>,
    /// Words of global roots (data, BSS, module segments) that point into
    /// objects.
    pub global_root_count: u64,
    /// Some of them, named (`main.cache`, or `bss+0x8` without the
    /// executable): package `main` first, then other packages, then the
    /// runtime's; by name with the executable, else in address order.
    pub global_roots: Vec<NamedRoot>,
    /// Where global root names come from: the executable's path, or `None`
    /// for address-based names.
    pub symbols_from: Option<String>,
    /// Objects reachable from the roots.
    pub reachable: Totals,
    /// Objects no root reaches (garbage not yet collected, or held by
    /// something the dump does not record).
    pub unreachable: Totals,
    /// Number of distinct object classes (types, or size-and-layout shapes).
    pub class_count: u64,
    /// Object classes by bytes, largest first.
    pub top_classes: Vec<ClassSummary>,
    /// Every class whose objects were all allocated by the standard
    /// library or the runtime for itself ([`ClassSummary::runtime`]), summed:
    /// what a text report folds into one row.
    pub runtime_classes: RuntimeClasses,
    /// Execution contexts (goroutines, threads) and OS threads, when the
    /// dump records them ([`Dump::contexts`]). `goroutines` in JSON, the
    /// name it had when only Go dumps had them.
    #[serde(rename = "goroutines")]
    pub contexts: Option<ContextSummary>,
    /// The runtime's own memory statistics, when the dump has them
    /// ([`Dump::runtime_stats`]). `go_memstats` in JSON, the name it had
    /// when only Go dumps had them.
    #[serde(rename = "go_memstats")]
    pub runtime_stats: Option<RuntimeStatsSummary>,
}

/// Roots of one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RootKindTotals {
    /// The kind's label (`data`, `goroutine frame`, `thread stack`, ...).
    pub kind: String,
    /// Roots of this kind.
    pub roots: u64,
    /// Bytes of their memory images.
    pub bytes: u64,
    /// Their words (and values) that point into objects.
    pub references: u64,
}

/// A named root word and the object it points into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamedRoot {
    /// The word's name (`main.cache`, `bss+0x8`).
    pub name: String,
    /// The root's kind label.
    pub kind: String,
    /// Address of the object it points into.
    pub target: u64,
    /// That object's class name.
    pub target_class: String,
    /// That object's size.
    pub target_size: u64,
}

/// Objects of one class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClassSummary {
    /// The type name or shape name (`obj48[p,p,_,_,_,_]`).
    pub name: String,
    /// Objects and bytes.
    #[serde(flatten)]
    pub totals: Totals,
    /// Every object of the class was allocated at a site of the runtime's
    /// own ([`crate::internals::is_runtime_site`]: std's thread-info map,
    /// the tracker's).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub runtime: bool,
}

/// The classes of the runtime's own objects ([`ClassSummary::runtime`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeClasses {
    /// Number of such classes.
    pub classes: u64,
    /// Their objects and bytes.
    #[serde(flatten)]
    pub totals: Totals,
}

/// The execution contexts of a dump (Go: goroutines).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContextSummary {
    /// What the dump calls a context (`goroutine`, `thread`); not in JSON.
    #[serde(skip)]
    pub noun: &'static str,
    /// Contexts in the dump.
    pub count: u64,
    /// Of which the runtime's own (system) contexts.
    pub system: u64,
    /// Stack frames in all contexts.
    pub frames: u64,
    /// Bytes of those frames.
    pub frame_bytes: u64,
    /// OS threads that ran them (Go's Ms).
    pub os_threads: u64,
    /// Contexts by state name, most first.
    pub by_status: Vec<NameCount>,
    /// Waiting contexts by wait reason, most first.
    pub by_wait_reason: Vec<NameCount>,
}

/// A name and how often it occurs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NameCount {
    /// The name.
    pub name: String,
    /// How many.
    pub count: u64,
}

/// The runtime's own memory statistics ([`heapdump_reader::RuntimeStats`];
/// Go: the memstats record). Field names are Go's, as the JSON has them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuntimeStatsSummary {
    /// The runtime's name (`Go`), for headings; not in JSON.
    #[serde(skip)]
    pub runtime: &'static str,
    /// What the runtime calls these statistics (`memstats`); not in JSON.
    #[serde(skip)]
    pub source: &'static str,
    /// Runtime version that wrote the dump.
    pub version: String,
    /// `HeapObjects`: allocated heap objects (tiny blocks count once).
    pub heap_objects: u64,
    /// `HeapAlloc`: bytes of allocated heap objects (slot sizes).
    pub heap_alloc: u64,
    /// `HeapInuse`: bytes in in-use spans.
    pub heap_inuse: u64,
    /// `HeapSys`: heap bytes from the OS.
    pub heap_sys: u64,
    /// `StackInuse`: bytes of stacks.
    pub stack_inuse: u64,
    /// `Sys`: all bytes from the OS.
    pub sys: u64,
    /// `TotalAlloc`: cumulative bytes allocated.
    pub total_alloc: u64,
    /// `Mallocs`: cumulative objects allocated.
    pub mallocs: u64,
    /// `Frees`: cumulative objects freed.
    pub frees: u64,
    /// `NextGC`: heap goal of the next cycle.
    pub next_gc: u64,
    /// `NumGC`: completed cycles.
    pub num_gc: u64,
    /// Memory-profile buckets ([`Dump::profiles`]).
    pub buckets: u64,
    /// Alloc samples (sampled live objects).
    pub alloc_samples: u64,
    /// Objects whose type the dump names (through a malloc header).
    pub typed_objects: u64,
}

/// Roots by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RootCounts {
    /// Module segments (statics).
    pub segments: u64,
    /// Bytes in module segments.
    pub segment_bytes: u64,
    /// Thread stacks.
    pub thread_stacks: u64,
    /// Bytes in thread stacks.
    pub thread_stack_bytes: u64,
}

/// Whether a dump's objects agree with the allocator's statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StatsAgreement {
    /// The number of objects equals `live_objects`.
    pub objects: bool,
    /// The sum of object sizes equals `live_bytes`.
    pub bytes: bool,
}

impl StatsAgreement {
    /// Both agree.
    pub fn all(&self) -> bool {
        self.objects && self.bytes
    }
}

/// A count of objects and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Number of objects.
    pub objects: u64,
    /// Sum of their sizes.
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, size: u64) {
        self.objects += 1;
        self.bytes = self.bytes.saturating_add(size);
    }

    fn merge(&mut self, other: Totals) {
        self.objects = self.objects.saturating_add(other.objects);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Live objects allocated at one site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SiteSummary {
    /// The site's stack.
    pub stack_id: StackId,
    /// Its return addresses, innermost first, as `0x…` hex.
    pub pcs: Vec<String>,
    /// Its frames, innermost first, when the stack is symbolised:
    /// `function (file:line)` (a frame without a symbol shows its pc in
    /// hex); empty when it is not (see `pcs`).
    pub frames: SiteFrames,
    /// The runtime's memory-profile counts for the site, if the dump has
    /// them ([`Dump::profile`]).
    pub profile: Option<SiteProfile>,
    /// Live objects and bytes allocated there.
    #[serde(flatten)]
    pub totals: Totals,
}

/// A memory-profile bucket's counts (sampled: with Go's default
/// `MemProfileRate` about one allocation per 512 KiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SiteProfile {
    /// Size of each allocation.
    pub object_size: u64,
    /// Sampled allocations.
    pub allocs: u64,
    /// Sampled frees.
    pub frees: u64,
}

/// Objects whose size is in `min..=max`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SizeClass {
    /// `min..=max`, e.g. `17..=32`.
    pub label: String,
    /// Smallest size in the class.
    pub min: u64,
    /// Largest size in the class.
    pub max: u64,
    /// Objects and bytes in the class.
    #[serde(flatten)]
    pub totals: Totals,
}

/// Per-task aggregates.
struct Tally {
    /// Indexed like the dump's (sorted) stacks.
    sites: Vec<Totals>,
    not_sampled: Totals,
    classes: [Totals; SIZE_CLASSES],
}

impl Tally {
    fn new(site_count: usize) -> Tally {
        Tally {
            sites: vec![Totals::default(); site_count],
            not_sampled: Totals::default(),
            classes: [Totals::default(); SIZE_CLASSES],
        }
    }

    fn merge(mut self, other: Tally) -> Tally {
        for (mine, theirs) in self.sites.iter_mut().zip(other.sites) {
            mine.merge(theirs);
        }
        self.not_sampled.merge(other.not_sampled);
        for (mine, theirs) in self.classes.iter_mut().zip(other.classes) {
            mine.merge(theirs);
        }
        self
    }
}

impl Summary {
    /// Computes the summary of `graph`, with the `top_sites` allocation sites
    /// that hold the most live bytes (and as many classes and named global
    /// roots), naming roots by address.
    pub fn compute(graph: &HeapGraph<'_>, top_sites: usize) -> Summary {
        Summary::compute_with(graph, top_sites, &RootNamer::without_binary(), None)
    }

    /// [`Summary::compute`], naming global roots with `namer` (which may
    /// hold the executable's symbols, read from `symbols_from`).
    pub fn compute_with(
        graph: &HeapGraph<'_>,
        top_sites: usize,
        namer: &RootNamer<'_>,
        symbols_from: Option<String>,
    ) -> Summary {
        let dump = graph.dump();

        let mut roots = RootCounts::default();
        let mut roots_by_kind: Vec<RootKindTotals> = Vec::new();
        for root in &dump.roots {
            let bytes = root.contents.len() as u64;
            match root.kind {
                RootKind::Segment { .. } => {
                    roots.segments += 1;
                    roots.segment_bytes = roots.segment_bytes.saturating_add(bytes);
                }
                RootKind::ThreadStack { .. } => {
                    roots.thread_stacks += 1;
                    roots.thread_stack_bytes = roots.thread_stack_bytes.saturating_add(bytes);
                }
                _ => {}
            }
            let label = root.kind.label();
            let index = match roots_by_kind.iter().position(|t| t.kind == label) {
                Some(index) => index,
                None => {
                    roots_by_kind.push(RootKindTotals {
                        kind: label.into_owned(),
                        roots: 0,
                        bytes: 0,
                        references: 0,
                    });
                    roots_by_kind.len() - 1
                }
            };
            if let Some(totals) = roots_by_kind.get_mut(index) {
                totals.roots += 1;
                totals.bytes = totals.bytes.saturating_add(bytes);
            }
        }
        // One label per root (a frame's is made), not per reference.
        let labels: Vec<String> = dump
            .roots
            .iter()
            .map(|root| root.kind.label().into_owned())
            .collect();
        let mut global_roots = Vec::new();
        for reference in graph.root_references() {
            let Some(root) = graph.root(reference.root) else {
                continue;
            };
            let Some(label) = labels.get(reference.root.index()) else {
                continue;
            };
            if let Some(totals) = roots_by_kind.iter_mut().find(|t| t.kind == *label) {
                totals.references += 1;
            }
            if root.kind.is_global() {
                global_roots.push(reference);
            }
        }
        let global_root_count = global_roots.len() as u64;
        let mut global_roots: Vec<NamedRoot> = global_roots
            .into_iter()
            .filter_map(|reference| {
                let root = graph.root(reference.root)?;
                let object = graph.object(reference.target)?;
                Some(NamedRoot {
                    name: namer.slot_name(root, reference.offset),
                    kind: root.kind.label().into_owned(),
                    target: object.address,
                    target_class: dump.class_name(&dump.object_class(object)),
                    target_size: object.size,
                })
            })
            .collect();
        // The program's own globals (package main first) before the
        // runtime's and std's.
        let runtime = |name: &str| {
            if name.starts_with("main.") {
                0
            } else if [
                "runtime.",
                "internal/",
                "sync.",
                "os.",
                "syscall.",
                "unicode.",
                "reflect.",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            {
                2
            } else {
                1
            }
        };
        // Address-based names stay in address order (a stable sort).
        let by_name = namer.has_binary();
        global_roots.sort_by(|a, b| {
            let order = runtime(&a.name).cmp(&runtime(&b.name));
            if by_name {
                order.then_with(|| a.name.cmp(&b.name))
            } else {
                order
            }
        });
        global_roots.truncate(top_sites);

        let (reachable, unreachable) = reachability(graph);
        let (class_count, top_classes, runtime_classes) = classes(dump, top_sites);
        let contexts = dump.contexts.as_ref().map(context_summary);
        let runtime_stats = dump
            .runtime_stats
            .as_ref()
            .map(|stats| RuntimeStatsSummary {
                runtime: stats.runtime,
                source: stats.source,
                version: stats.version.clone(),
                heap_objects: stats.heap_objects,
                heap_alloc: stats.heap_bytes,
                heap_inuse: stats.heap_in_use_bytes,
                heap_sys: stats.heap_reserved_bytes,
                stack_inuse: stats.stack_bytes,
                sys: stats.os_bytes,
                total_alloc: stats.allocated_bytes,
                mallocs: stats.allocated_objects,
                frees: stats.freed_objects,
                next_gc: stats.next_gc_bytes,
                num_gc: stats.gc_cycles,
                buckets: dump.profiles.len() as u64,
                alloc_samples: stats.sampled_objects,
                typed_objects: stats.typed_objects,
            });

        let stacks = &dump.stacks;
        let tally_chunk = |chunk: &[Object]| {
            let mut tally = Tally::new(stacks.len());
            for object in chunk {
                if let Some(class) = tally
                    .classes
                    .get_mut(class::SizeClass::of(object.size).index())
                {
                    class.add(object.size);
                }
                let site = object.site.and_then(|id| {
                    stacks
                        .binary_search_by_key(&id, |stack| stack.id)
                        .ok()
                        .and_then(|index| tally.sites.get_mut(index))
                });
                match site {
                    Some(site) => site.add(object.size),
                    None => tally.not_sampled.add(object.size),
                }
            }
            tally
        };
        let tally = dump
            .objects
            .par_chunks(CHUNK)
            .map(tally_chunk)
            .reduce(|| Tally::new(stacks.len()), Tally::merge);

        let mut live = Totals::default();
        for class in &tally.classes {
            live.merge(*class);
        }

        let mut sites: Vec<(usize, Totals)> = tally
            .sites
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, totals)| totals.objects > 0)
            .collect();
        let site_count = sites.len() as u64;
        // Largest first; ties by more objects, then by stack order.
        sites.sort_unstable_by(|(a_index, a), (b_index, b)| {
            b.bytes
                .cmp(&a.bytes)
                .then(b.objects.cmp(&a.objects))
                .then(a_index.cmp(b_index))
        });
        let top_sites = sites
            .into_iter()
            .take(top_sites)
            .filter_map(|(index, totals)| {
                let stack = stacks.get(index)?;
                let profile = dump.profile(stack.id).map(|profile| SiteProfile {
                    object_size: profile.object_size,
                    allocs: profile.allocs,
                    frees: profile.frees,
                });
                Some(SiteSummary {
                    stack_id: stack.id,
                    pcs: stack.pcs.iter().map(|pc| format!("{pc:#x}")).collect(),
                    frames: if stack.frames.is_empty() {
                        SiteFrames::default()
                    } else {
                        SiteFrames::of(stack)
                    },
                    profile,
                    totals,
                })
            })
            .collect();

        let size_classes = tally
            .classes
            .iter()
            .enumerate()
            .filter(|(_, totals)| totals.objects > 0)
            .map(|(class, &totals)| {
                let (min, max) = class::SizeClass::from_index(class)
                    .map_or((0, 0), |class| (class.smallest(), class.largest()));
                SizeClass {
                    label: format!("{min}..={max}"),
                    min,
                    max,
                    totals,
                }
            })
            .collect();

        let stats_agreement = dump.stats.map(|stats| StatsAgreement {
            objects: stats.live_objects == live.objects,
            bytes: stats.live_bytes == live.bytes,
        });

        Summary {
            info: dump.info.clone(),
            module_count: dump.modules.len() as u64,
            modules: dump.modules.clone(),
            roots,
            object_count: live.objects,
            live_bytes: live.bytes,
            reference_count: graph.reference_count() as u64,
            root_reference_count: graph.root_references().len() as u64,
            stats: dump.stats,
            stats_agreement,
            site_count,
            top_sites,
            not_sampled: tally.not_sampled,
            size_classes,
            roots_by_kind,
            global_root_count,
            global_roots,
            symbols_from,
            reachable,
            unreachable,
            class_count,
            top_classes,
            runtime_classes,
            contexts,
            runtime_stats,
        }
    }
}

/// Objects reachable from the roots, and the others.
fn reachability(graph: &HeapGraph<'_>) -> (Totals, Totals) {
    let seen = crate::reach::reachable(graph);
    let mut reachable = Totals::default();
    let mut unreachable = Totals::default();
    for ((_, object), seen) in graph.objects().zip(&seen) {
        if *seen {
            reachable.add(object.size);
        } else {
            unreachable.add(object.size);
        }
    }
    (reachable, unreachable)
}

/// Number of object classes, the `top` largest by bytes, and the runtime's
/// own classes summed.
fn classes(dump: &Dump<'_>, top: usize) -> (u64, Vec<ClassSummary>, RuntimeClasses) {
    let runtime_stacks: Vec<bool> = dump
        .stacks
        .iter()
        .map(crate::internals::is_runtime_site)
        .collect();
    let is_runtime = |object: &heapdump_reader::Object| {
        object
            .site
            .and_then(|id| dump.stacks.binary_search_by_key(&id, |stack| stack.id).ok())
            .and_then(|index| runtime_stacks.get(index).copied())
            .unwrap_or(false)
    };
    // (totals, objects of the runtime's own) per class: in a table by type
    // index for typed objects (no hashing per object: a JDK dump has
    // millions), in a map for shapes.
    type Tally = (Totals, u64);
    let merge = |into: &mut Tally, (totals, runtime): Tally| {
        into.0.merge(totals);
        into.1 += runtime;
    };
    let empty = || (vec![Tally::default(); dump.types.len()], HashMap::new());
    let (typed, shapes) = dump
        .objects
        .par_chunks(CHUNK)
        .fold(empty, |(mut typed, mut shapes), chunk| {
            for object in chunk {
                let entry = match dump.object_class(object) {
                    ObjectClass::Type(index) => typed.get_mut(index.index()),
                    shape => Some(shapes.entry(shape).or_default()),
                };
                if let Some(entry) = entry {
                    entry.0.add(object.size);
                    entry.1 += u64::from(is_runtime(object));
                }
            }
            (typed, shapes)
        })
        .reduce(
            empty,
            |(mut typed, mut shapes), (more_typed, more_shapes)| {
                for (into, tally) in typed.iter_mut().zip(more_typed) {
                    merge(into, tally);
                }
                for (shape, tally) in more_shapes {
                    merge(shapes.entry(shape).or_default(), tally);
                }
                (typed, shapes)
            },
        );
    let tallies = typed
        .into_iter()
        .enumerate()
        .filter(|(_, (totals, _))| totals.objects > 0)
        .map(|(index, tally)| (ObjectClass::Type(TypeIndex(index as u32)), tally))
        .chain(shapes);
    // Different classes can share a name (a type and a shape never do, but
    // two unnamed types can): merge by name.
    let mut by_name: HashMap<String, (Totals, u64)> = HashMap::new();
    for (class, (totals, runtime)) in tallies {
        let entry = by_name.entry(dump.class_name(&class)).or_default();
        entry.0.merge(totals);
        entry.1 += runtime;
    }
    let count = by_name.len() as u64;
    let mut runtime_classes = RuntimeClasses::default();
    let mut classes: Vec<ClassSummary> = by_name
        .into_iter()
        .map(|(name, (totals, runtime))| {
            let runtime = totals.objects > 0 && runtime == totals.objects;
            if runtime {
                runtime_classes.classes += 1;
                runtime_classes.totals.merge(totals);
            }
            ClassSummary {
                name,
                totals,
                runtime,
            }
        })
        .collect();
    classes.sort_by(|a, b| {
        b.totals
            .bytes
            .cmp(&a.totals.bytes)
            .then(b.totals.objects.cmp(&a.totals.objects))
            .then_with(|| a.name.cmp(&b.name))
    });
    classes.truncate(top);
    (count, classes, runtime_classes)
}

/// Execution contexts by state and wait reason.
fn context_summary(contexts: &ExecutionContexts) -> ContextSummary {
    let mut by_status: HashMap<&str, u64> = HashMap::new();
    let mut by_reason: HashMap<&str, u64> = HashMap::new();
    let mut frames = 0u64;
    let mut frame_bytes = 0u64;
    for context in &contexts.contexts {
        *by_status.entry(&context.state).or_default() += 1;
        if !context.wait_reason.is_empty() {
            *by_reason.entry(&context.wait_reason).or_default() += 1;
        }
        frames += context.frames.len() as u64;
        frame_bytes = context
            .frames
            .iter()
            .fold(frame_bytes, |sum, frame| sum.saturating_add(frame.bytes));
    }
    let sorted = |map: HashMap<String, u64>| {
        let mut list: Vec<NameCount> = map
            .into_iter()
            .map(|(name, count)| NameCount { name, count })
            .collect();
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        list
    };
    ContextSummary {
        noun: contexts.noun,
        count: contexts.contexts.len() as u64,
        system: contexts
            .contexts
            .iter()
            .filter(|context| context.system)
            .count() as u64,
        frames,
        frame_bytes,
        os_threads: contexts.os_threads,
        by_status: sorted(
            by_status
                .into_iter()
                .map(|(name, count)| (name.to_owned(), count))
                .collect(),
        ),
        by_wait_reason: sorted(
            by_reason
                .into_iter()
                .map(|(name, count)| (name.to_owned(), count))
                .collect(),
        ),
    }
}
