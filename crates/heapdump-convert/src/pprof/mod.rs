//! pprof profiles (`go tool pprof`, its flame graphs, `-diff_base`) and
//! folded stacks (inferno, speedscope, flamegraph.pl) of a heap dump.
//!
//! Two profiles, both counting every object of the dump exactly once
//! (values `inuse_objects/count` and `inuse_space/bytes`, as the Go
//! runtime's heap profiles name them, so `-sample_index` and `-diff_base`
//! work as users know them; no sampling scale), so their totals are the
//! dump's live objects and bytes:
//!
//! - [`Kind::Sites`]: live objects by allocation site. A sample's stack is
//!   the site's stack (locations with function, file and line; a return
//!   address's inlined frames are the lines of one location; mappings for
//!   the modules), labelled with the objects' `class`. Objects whose site
//!   the dump does not record are under one frame,
//!   `(allocation site not recorded)`.
//! - [`Kind::Retention`]: what holds the memory. Each object's stack is
//!   its chain in the dominator tree: at the bottom the root (the root's
//!   name, e.g. `bss` or a thread's stack, then the root word's name, e.g.
//!   `main.cache`), then each dominator's class, the object's own class on
//!   top. A frame's cumulative value is therefore what that path of the
//!   dominator tree retains, and its flat value what objects of that class
//!   there hold themselves. A top-level dominator reached only through
//!   several paths is under `(shared) WORD`, WORD being the root word of
//!   one shortest path to it. Unreachable objects are under
//!   `(unreachable: KIND)`. Labels: `class`, `site` (the innermost frame
//!   of the allocation site) and `reachability`.
//!
//!   Chains stay bounded: **a run of consecutive dominators of one class is
//!   one frame** (a linked list of a million `Node`s is one `Node` frame,
//!   whose cumulative value is what the list's head retains, and whose flat
//!   value is the nodes themselves); and a chain that is still longer than
//!   [`Options::max_depth`] frames ends in one frame
//!   `(deeper dominators: chain cut at N frames)` holding everything
//!   deeper. Both rules keep a stack's prefix the stack of its dominator,
//!   so cumulative values stay retained sizes. The [`Report`] counts the
//!   objects each rule touched.
//!
//! Samples with the same stack and labels are one sample, so a large heap
//! whose stacks repeat gives a small profile.
//!
//! The file is gzip-compressed profile.proto, written by a small encoder
//! of its own (see `encode.rs`) rather than a protobuf library: the profile
//! needs only varints and nested messages, and the encoder streams the
//! samples into the gzip stream without building a second copy of the
//! profile. [`Plan`] is the planning half (tables and aggregated samples,
//! over the common model only); [`Plan::write_pprof`] and
//! [`Plan::write_collapsed`] the encoding half.
//!
//! ```no_run
//! use std::io::BufWriter;
//! use heapdump_convert::{output::AtomicFile, pprof};
//! use heapdump_reader::{parse, DumpFile, HeapGraph};
//! use heapdump_symbols::RootNamer;
//!
//! let file = DumpFile::open("service.hdump")?;
//! let dump = parse(file.bytes(), &mut |_, _| {})?;
//! let graph = HeapGraph::build(dump, &mut |_, _| {});
//! let analysis = heapdump_analysis::analyze(&graph);
//! let options = pprof::Options::default();
//! let plan = pprof::Plan::retention(&graph, &analysis, &RootNamer::without_binary(), &options);
//! let mut out = AtomicFile::create("retention.pb.gz")?;
//! plan.write_pprof(BufWriter::new(out.file()))?;
//! out.commit()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod encode;
mod plan;

use std::io::{self, Write};

use heapdump_analysis::Analysis;
use heapdump_reader::HeapGraph;
use heapdump_symbols::RootNamer;

pub use plan::SITE_NOT_RECORDED;

/// Which profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// Live objects by allocation site.
    #[default]
    Sites,
    /// Every object under its chain in the dominator tree.
    Retention,
}

/// Which value a line of folded stacks carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CollapsedValue {
    /// Bytes (`inuse_space`).
    #[default]
    Bytes,
    /// Objects (`inuse_objects`).
    Objects,
}

/// How to build a profile.
#[derive(Clone, Debug)]
pub struct Options {
    /// Most frames in a retention stack, root frames included (64 by
    /// default); deeper dominators go into one cut frame.
    pub max_depth: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { max_depth: 64 }
    }
}

/// What a profile holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Objects counted: every object of the dump.
    pub objects: u64,
    /// Their bytes: the dump's live bytes.
    pub bytes: u64,
    /// Samples after aggregation.
    pub samples: u64,
    /// Objects whose allocation site is not recorded.
    pub site_not_recorded_objects: u64,
    /// Their bytes.
    pub site_not_recorded_bytes: u64,
    /// Retention: objects of the same class as their dominator, merged
    /// into its frame.
    pub collapsed_objects: u64,
    /// Retention: objects under the cut frame of a long chain.
    pub cut_objects: u64,
    /// Retention: unreachable objects (under `(unreachable: ...)`).
    pub unreachable_objects: u64,
    /// Their bytes.
    pub unreachable_bytes: u64,
    /// Locations in the profile.
    pub locations: u64,
    /// Functions in the profile.
    pub functions: u64,
}

/// A planned profile: its tables and aggregated samples, ready to be
/// written as pprof or folded stacks.
#[derive(Debug)]
pub struct Plan {
    planned: plan::Planned,
}

impl Plan {
    /// The sites profile of `graph` (needs no analysis).
    pub fn sites(graph: &HeapGraph<'_>, _options: &Options) -> Plan {
        Plan::of(plan::sites(graph))
    }

    /// The retention profile of `graph`, with its `analysis`; `namer`
    /// names the root words.
    pub fn retention(
        graph: &HeapGraph<'_>,
        analysis: &Analysis,
        namer: &RootNamer<'_>,
        options: &Options,
    ) -> Plan {
        Plan::of(plan::retention(graph, analysis, namer, options))
    }

    /// The profile `kind` of `graph`.
    pub fn new(
        kind: Kind,
        graph: &HeapGraph<'_>,
        analysis: &Analysis,
        namer: &RootNamer<'_>,
        options: &Options,
    ) -> Plan {
        match kind {
            Kind::Sites => Plan::sites(graph, options),
            Kind::Retention => Plan::retention(graph, analysis, namer, options),
        }
    }

    fn of(mut planned: plan::Planned) -> Plan {
        planned.report.locations = planned.tables.locations.len() as u64;
        planned.report.functions = planned.tables.functions.len() as u64;
        Plan { planned }
    }

    /// What the profile holds.
    pub fn report(&self) -> &Report {
        &self.planned.report
    }

    /// Writes the profile as gzip-compressed profile.proto on `out`;
    /// returns the bytes written.
    pub fn write_pprof<W: Write>(&self, out: W) -> io::Result<u64> {
        encode::write_pprof(&self.planned, out)
    }

    /// Writes the profile as folded stacks on `out` (`root;...;leaf N`,
    /// frames' `;` written as `,`), `value` on each line; returns the bytes
    /// written.
    pub fn write_collapsed<W: Write>(&self, value: CollapsedValue, out: W) -> io::Result<u64> {
        encode::write_collapsed(&self.planned, value, out)
    }
}

#[cfg(test)]
mod tests;
