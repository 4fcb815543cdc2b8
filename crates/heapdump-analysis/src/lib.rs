//! Analyses over a heap dump's object graph: what holds the memory, and why
//! it is still alive.
//!
//! Everything here reads the format-independent
//! [`HeapGraph`](heapdump_reader::HeapGraph) of `heapdump-reader`, never a
//! file format, so it works the same on every kind of dump the reader knows.
//!
//! - [`analyze`] computes reachability from the roots (through a virtual
//!   root), the dominator tree ([`dominators`], semi-NCA over compact `u32`
//!   arrays) and retained sizes: an [`Analysis`] of flat arrays.
//! - Reports, each a plain function returning serde-serializable data:
//!   [`top`](top::top) (histogram by class and by allocation site),
//!   [`retained`](retained::retained) (the dominator tree from the top),
//!   [`leaks`](leaks::leaks) (leak suspects and unreachable objects),
//!   [`path`](paths::path) (why an object is alive) and
//!   [`diff`](diff::diff) (what grew between two dumps), and the one-page
//!   [`Summary`] (`heapdump summary`).
//!
//! ```no_run
//! use heapdump_reader::{parse, DumpFile, HeapGraph};
//!
//! let file = DumpFile::open("service.hdump")?;
//! let dump = parse(file.bytes(), &mut |_, _| {})?;
//! let graph = HeapGraph::build(dump, &mut |_, _| {});
//! let analysis = heapdump_analysis::analyze(&graph);
//! let report = heapdump_analysis::leaks::leaks(&graph, &analysis, &Default::default());
//! for suspect in &report.suspects {
//!     println!("{}", suspect.summary);
//! }
//! # Ok::<(), heapdump_reader::Error>(())
//! ```

#![warn(missing_docs)]

pub mod analysis;
pub mod class;
pub mod describe;
pub mod diff;
pub mod dominators;
pub mod internals;
pub mod leaks;
pub mod paths;
pub mod reach;
pub mod retained;
pub mod roots;
pub mod summary;
pub mod top;
pub mod waste;

pub use analysis::{analyze, analyze_with_progress, Analysis, Dominator, Reachability, Step};
pub use class::{Classifier, GroupKey, GroupLabel, Grouping, ObjectClass, SiteFrames, SizeClass};
pub use dominators::{DomNode, Dominators, FlowGraph};
pub use summary::Summary;
