//! Reads heap dumps and builds their object/reference graph.
//!
//! The reader memory-maps the file ([`DumpFile`]), decodes it in whichever
//! known format it is ([`parse`]: heapdump-rs dumps, and Go heap dumps from
//! `runtime/debug.WriteHeapDump`) into a format-independent [`Dump`] whose
//! memory images borrow the file's bytes, and finds the references between
//! objects ([`HeapGraph`]): exactly where the dump says which words are
//! pointers (Go), by scanning every word conservatively otherwise.
//! With the feature `petgraph`, [`HeapGraph`] implements petgraph's visit
//! traits (`graph_petgraph`), so petgraph's algorithms run on it as it is
//! (the tests use them as an oracle).
//! Names from the dumped program's binaries (frames, types, globals) are
//! `heapdump-symbols`' job; the analyses are `heapdump-analysis`'; the whole
//! pipeline in one call is `heapdump-inspect`.
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

mod address_index;
mod cursor;
pub mod dump;
pub mod error;
pub mod file;
pub mod formats;
pub mod graph;
#[cfg(feature = "petgraph")]
pub mod graph_petgraph;
pub mod sites;
#[cfg(test)]
mod test_support;

pub use dump::{
    AllocationProfile, AllocatorStats, Capabilities, ContextFrame, ContextRef, Dump, DumpInfo,
    ExecutionContext, ExecutionContexts, FieldInfo, FormatExtras, Frame, Hex, Module, ModuleRange,
    Object, ObjectClass, PointerList, PointerOffsets, Pointers, Root, RootKind, RuntimeStats,
    SectionSymbols, Stack, StackId, ThreadCoverage, TypeIndex, TypeInfo,
};
pub use error::{Error, ErrorKind};
pub use file::DumpFile;
pub use formats::{dump_format_at, looks_like_dump, parse, Format};
pub use graph::{
    AddressIndex, HeapGraph, ObjectId, References, RootId, RootReference, MAX_OBJECTS, MAX_ROOTS,
};
#[cfg(feature = "petgraph")]
pub use graph_petgraph::HeapNode;
pub use heapdump_format::ContentsMode;
pub use sites::{Site, SiteId, SiteTable};
