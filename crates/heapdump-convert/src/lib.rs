//! Converts a heap dump's object graph to formats other tools read: HPROF
//! for Java heap viewers ([`hprof`]: VisualVM, Eclipse MAT), Graphviz
//! dot ([`dot`]: a picture of what holds the memory), and pprof profiles
//! and folded stacks ([`pprof`]: live objects by allocation site, and what
//! holds them as a flame graph, for `go tool pprof`).
//!
//! The converters read only the format-independent
//! [`HeapGraph`](heapdump_reader::HeapGraph) of `heapdump-reader`, so they
//! work the same on every kind of dump the reader knows (heapdump-rs, Go).
//! Both stream their output; [`output::AtomicFile`] writes a file with mode
//! 0600 through a temporary file and a rename, so the path holds a whole
//! file or nothing new.
//!
//! ```no_run
//! use std::io::BufWriter;
//! use heapdump_convert::{hprof, output::AtomicFile};
//! use heapdump_reader::{parse, DumpFile, HeapGraph};
//! use heapdump_symbols::RootNamer;
//!
//! let file = DumpFile::open("service.hdump")?;
//! let dump = parse(file.bytes(), &mut |_, _| {})?;
//! let graph = HeapGraph::build(dump, &mut |_, _| {});
//! let mut out = AtomicFile::create("service.hprof")?;
//! let report = hprof::write_hprof(
//!     &graph,
//!     &RootNamer::without_binary(),
//!     &hprof::Options::default(),
//!     BufWriter::new(out.file()),
//!     &mut |_, _| {},
//! )?;
//! out.commit()?;
//! println!("{} objects, {} bytes", report.objects, report.bytes);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod dot;
pub mod hprof;
pub mod output;
pub mod pprof;
