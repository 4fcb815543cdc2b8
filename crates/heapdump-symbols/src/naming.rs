//! Human names for the words of roots: `main.listHead` for a Go global and
//! `myleak::AUDIT_LOG+0x10` for a Rust static (demangled) when the
//! executable is known, `bss+0x8` without it; `main.holder (goroutine 18,
//! frame 0) +0x20` for a Go frame slot, and for a word of a Rust thread's
//! stack the function whose frame holds it (`myleak::worker
//! (src/main.rs:42) (thread 7 "worker", frame 3) +0x18`, from the
//! frame-pointer chain: [`StackRootFrames`]).

use heapdump_reader::{Dump, HeapGraph, Root, RootKind, RootReference};

use crate::binary::Binary;
use crate::error::Error;
use crate::stack_frames::StackRootFrames;
use crate::symbolize::demangle;

/// Names root words, with the dumped executable's symbols when there is
/// one.
#[derive(Clone, Copy, Debug, Default)]
pub struct RootNamer<'a> {
    binary: Option<&'a Binary>,
    bias: u64,
    /// The module whose segments the executable's symbols name (the main
    /// executable, module 0 in heapdump-rs dumps).
    main_module: u64,
    /// The frames of thread stack roots, when known.
    frames: Option<&'a StackRootFrames>,
}

impl<'a> RootNamer<'a> {
    /// A namer that uses `binary`'s symbols for global roots, after finding
    /// its load bias in `dump` and checking that it is the dumped program
    /// ([`Binary::load_bias`]). With `None`, names are address-based.
    pub fn new(dump: &Dump<'_>, binary: Option<&'a Binary>) -> Result<RootNamer<'a>, Error> {
        let bias = match binary {
            Some(binary) => binary.load_bias(dump)?,
            None => 0,
        };
        let main_module = dump.modules.first().map_or(0, |module| module.id);
        Ok(RootNamer {
            binary,
            bias,
            main_module,
            frames: None,
        })
    }

    /// A namer that uses `binary`'s symbols at `load_bias`, a bias already
    /// found and checked by [`Binary::load_bias`] on `dump` (as
    /// [`RootNamer::new`] does).
    pub fn with_load_bias(dump: &Dump<'_>, binary: &'a Binary, load_bias: u64) -> RootNamer<'a> {
        RootNamer {
            binary: Some(binary),
            bias: load_bias,
            main_module: dump.modules.first().map_or(0, |module| module.id),
            frames: None,
        }
    }

    /// This namer, naming the words of thread stack roots by the frame
    /// that holds them ([`StackRootFrames::slot_name`]).
    pub fn with_stack_frames(self, frames: &'a StackRootFrames) -> RootNamer<'a> {
        RootNamer {
            frames: Some(frames),
            ..self
        }
    }

    /// A namer without an executable: address-based names only.
    pub fn without_binary() -> RootNamer<'static> {
        RootNamer {
            binary: None,
            bias: 0,
            main_module: 0,
            frames: None,
        }
    }

    /// The load bias in use (0 without an executable).
    pub fn load_bias(&self) -> u64 {
        self.bias
    }

    /// Whether names come from an executable's symbols.
    pub fn has_binary(&self) -> bool {
        self.binary.is_some()
    }

    /// Whether the namer names some words better than
    /// [`Root::slot_name`] does: globals by symbol, or stack words by
    /// frame.
    pub fn names_words(&self) -> bool {
        self.binary.is_some() || self.frames.is_some_and(|frames| !frames.is_empty())
    }

    /// Whether words of `root` get a better name than [`Root::slot_name`].
    pub fn names_words_of(&self, root: &Root<'_>) -> bool {
        match root.kind {
            RootKind::ThreadStack { .. } => self
                .frames
                .is_some_and(|frames| frames.thread(root.address).is_some()),
            _ => root.kind.is_global() && self.binary.is_some(),
        }
    }

    /// The symbol holding runtime address `address`, demangled, as `name`
    /// or `name+0x10`, if the executable has one.
    pub fn symbol_name(&self, address: u64) -> Option<String> {
        let (symbol, offset) = self.binary?.symbol_at(address.wrapping_sub(self.bias))?;
        let name = demangle(&symbol.name);
        Some(if offset == 0 {
            name
        } else {
            format!("{name}+{offset:#x}")
        })
    }

    /// The name of the word at `offset` of `root`: for a global segment,
    /// the symbol there (`main.cache`; only the main executable's segments
    /// are named from its symbols) or `data+0x1a8`; for any other root,
    /// the root's name and, inside its contents, the offset
    /// (`main.holder (goroutine 18, frame 0) +0x20`), for a thread stack
    /// with a frame chain the frame that holds the word; for a value
    /// ([`Root::values`]), the root's name.
    pub fn slot_name(&self, root: &Root<'_>, offset: u64) -> String {
        if let Some(name) = self
            .frames
            .and_then(|frames| frames.slot_name(root, offset))
        {
            return name;
        }
        let main = match root.kind {
            RootKind::Segment { module_id } => module_id == self.main_module,
            _ => true,
        };
        if root.kind.is_global() && main && offset < root.contents.len() as u64 {
            if let Some(name) = self.symbol_name(root.address.wrapping_add(offset)) {
                return name;
            }
        }
        root.slot_name(offset)
    }

    /// The name of the root word of `reference` in `graph`.
    pub fn reference_name(&self, graph: &HeapGraph<'_>, reference: &RootReference) -> String {
        match graph.root(reference.root) {
            Some(root) => self.slot_name(root, reference.offset),
            None => format!("{}", reference.root),
        }
    }
}
