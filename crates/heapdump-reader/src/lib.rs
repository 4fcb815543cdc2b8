//! Reads heap dumps and builds their object/reference graph.
//!
//! The reader memory-maps the file ([`DumpFile`]), decodes it in whichever
//! known format it is ([`parse`]: heapdump-rs dumps, and Go heap dumps from
//! `runtime/debug.WriteHeapDump`) into a format-independent [`Dump`] whose
//! memory images borrow the file's bytes, and finds the references between
//! objects ([`HeapGraph`]): exactly where the dump says which words are
//! pointers (Go), by scanning every word conservatively otherwise.
//! [`HeapGraph`] implements petgraph's visit traits ([`graph_petgraph`]), so
//! petgraph's algorithms run on it as it is.
//! [`Summary`] is the one-page overview `heapdump summary` prints; a
//! [`Binary`] (the dumped executable) lets [`RootNamer`] name global roots
//! by symbol.
//!
//! Nothing from the file is trusted: every length is checked against the
//! bytes that remain, nothing is allocated from an unchecked count, and every
//! failure is an [`Error`] that carries the byte offset where it was found.
//!
//! ```no_run
//! use heapdump_reader::{parse, DumpFile, HeapGraph, ObjectId};
//!
//! let file = DumpFile::open("service.hdump")?;
//! let dump = parse(file.bytes(), &mut |_done, _total| {})?;
//! let graph = HeapGraph::build(dump, &mut |_done, _total| {});
//! println!("{} objects, {} references", graph.object_count(), graph.reference_count());
//! if let Some(object) = graph.object(ObjectId(0)) {
//!     for (target, offset) in graph.references(ObjectId(0)) {
//!         println!("{:#x}+{offset} -> {target}", object.address);
//!     }
//! }
//! # Ok::<(), heapdump_reader::Error>(())
//! ```

#![warn(missing_docs)]

pub mod binary;
mod cursor;
pub mod dump;
pub mod error;
pub mod file;
pub mod formats;
pub mod go;
pub mod graph;
pub mod graph_petgraph;
mod naming;
pub mod summary;
pub mod symbolize;

pub use binary::{Binary, Symbol};
pub use dump::{
    AllocatorStats, Dump, DumpInfo, Frame, Hex, Module, ModuleRange, Object, ObjectClass,
    PointerList, PointerOffsets, Pointers, Root, RootKind, Stack, StackId, ThreadCoverage,
    TypeIndex, TypeInfo,
};
pub use error::{Error, ErrorKind};
pub use file::DumpFile;
pub use formats::{parse, Format};
pub use go::GoDump;
pub use graph::{HeapGraph, ObjectId, References, RootId, RootReference, MAX_OBJECTS, MAX_ROOTS};
pub use graph_petgraph::HeapNode;
pub use heapdump_format::ContentsMode;
pub use naming::RootNamer;
pub use summary::Summary;
pub use symbolize::{infer_types, Symbolizer};
