//! Human names for the words of roots: `main.listHead` for a Go global when
//! the executable is given, `bss+0x8` without it; `main.holder (goroutine
//! 18, frame 0) +0x20` for a frame slot.

use heapdump_reader::{Dump, HeapGraph, Root, RootKind, RootReference};

use crate::binary::Binary;
use crate::error::Error;

/// Names root words, with the dumped executable's symbols when there is
/// one.
#[derive(Clone, Copy, Debug, Default)]
pub struct RootNamer<'a> {
    binary: Option<&'a Binary>,
    bias: u64,
    /// The module whose segments the executable's symbols name (the main
    /// executable, module 0 in heapdump-rs dumps).
    main_module: u64,
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
        }
    }

    /// A namer without an executable: address-based names only.
    pub fn without_binary() -> RootNamer<'static> {
        RootNamer {
            binary: None,
            bias: 0,
            main_module: 0,
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

    /// The symbol holding runtime address `address`, as `name` or
    /// `name+0x10`, if the executable has one.
    pub fn symbol_name(&self, address: u64) -> Option<String> {
        let (symbol, offset) = self.binary?.symbol_at(address.wrapping_sub(self.bias))?;
        Some(if offset == 0 {
            symbol.name.clone()
        } else {
            format!("{}+{offset:#x}", symbol.name)
        })
    }

    /// The name of the word at `offset` of `root`: for a global segment,
    /// the symbol there (`main.cache`; only the main executable's segments
    /// are named from its symbols) or `data+0x1a8`; for any other root,
    /// the root's name and, inside its contents, the offset
    /// (`main.holder (goroutine 18, frame 0) +0x20`); for a value
    /// ([`Root::values`]), the root's name.
    pub fn slot_name(&self, root: &Root<'_>, offset: u64) -> String {
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
