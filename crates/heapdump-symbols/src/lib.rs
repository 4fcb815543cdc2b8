//! Names for a heap dump from the dumped program's binaries.
//!
//! The reader decodes a dump into the common model
//! ([`heapdump_reader::Dump`]); this crate fills in what only the program's
//! executables know, before the graph is built, so every analysis and
//! converter sees names without knowing where they came from:
//!
//! - [`Binary`]: an executable (ELF, memory-mapped, read with the `object`
//!   crate): symbols, build-id, and the dump's load bias (checked: the wrong
//!   binary is an [`Error`]). The one place that opens executables.
//! - [`Symbolizer`]: the frames of raw allocation-site stacks from DWARF
//!   line tables and inlined chains (addr2line over gimli), demangled.
//! - [`infer_types`]: object types from their allocation sites
//!   (`Box::<T>::new` → `T`); [`propagate_types`]: the objects sites do
//!   not type, from the element types of the containers pointing at them
//!   (`[Box<T>]` → `T`), and field by field with the type layouts of a
//!   `debug = 2` build ([`RustLayouts`]), which also name fields.
//! - [`go::type_objects`]: Go heap objects typed from the executable's
//!   DWARF, by propagation from typed roots.
//! - [`RootNamer`]: names of root words (`main.cache`, `myleak::AUDIT_LOG`,
//!   `data+0x1a8`, a frame slot by its function; a word of a Rust thread's
//!   stack by the frame that holds it, from the frame-pointer chain found
//!   in the stack's bytes: [`StackRootFrames`]).
//!
//! Most programs want all of this done in one call: `heapdump-inspect`'s
//! pipeline runs it.

#![warn(missing_docs)]

pub mod binary;
mod dwarf_sections;
pub mod error;
pub mod go;
mod naming;
pub mod propagate;
pub mod rust_dwarf;
pub mod stack_frames;
pub mod symbolize;

pub use binary::{Binary, Symbol};
pub use error::Error;
pub use naming::RootNamer;
pub use propagate::{propagate_types, PropagationStats};
pub use rust_dwarf::RustLayouts;
pub use stack_frames::{StackRootFrames, ThreadFrames};
pub use symbolize::{infer_types, Source, Symbolizer, TypeStats};
