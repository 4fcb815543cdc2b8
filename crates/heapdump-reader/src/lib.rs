//! Reads heap dumps and builds their object/reference graph.
//!
//! The reader memory-maps the file ([`DumpFile`]), decodes it in whichever
//! known format it is ([`parse`]; heapdump-rs now, Go's heap dumps later)
//! into a format-independent [`Dump`] whose memory images borrow the file's
//! bytes, and finds the references between objects by scanning their words
//! conservatively ([`HeapGraph`]). [`Summary`] is the one-page overview
//! `heapdump summary` prints.
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

mod cursor;
pub mod dump;
pub mod error;
pub mod file;
pub mod formats;
pub mod graph;
pub mod summary;

pub use dump::{
    AllocatorStats, Dump, DumpInfo, Hex, Module, ModuleRange, Object, Root, RootKind, Stack,
    StackId,
};
pub use error::{Error, ErrorKind};
pub use file::DumpFile;
pub use formats::{parse, Format};
pub use graph::{HeapGraph, ObjectId, References, RootId, RootReference, MAX_OBJECTS, MAX_ROOTS};
pub use heapdump_format::ContentsMode;
pub use summary::Summary;
