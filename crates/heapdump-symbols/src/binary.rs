//! The dumped program's executable, when the user gives it: its ELF symbol
//! table names global roots (`main.listHead` instead of `bss+0x8`).
//!
//! This is the one place that reads executables, so that every format and
//! report shares it: Go dumps use the symbol table for data/BSS globals
//! here, and DWARF symbolisation of Rust allocation sites is meant to join
//! this module (the file is parsed with the `object` crate, whose sections
//! `gimli` can read).
//!
//! Addresses in a dump are runtime addresses; the symbol table has
//! link-time addresses. The difference, the load bias, is 0 for Go's usual
//! non-PIE executables; [`Binary::load_bias`] finds it from the dump (Go:
//! the data and BSS segments against the `runtime.data` and `runtime.bss`
//! symbols; heapdump-rs: the main module's recorded bias) and checks that
//! the binary is the one that was dumped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

use heapdump_reader::{Dump, Hex, Module, RootKind, SectionSymbols};

use crate::error::Error;

/// A symbol of the executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// Link-time address.
    pub address: u64,
    /// Size in bytes (0 for markers such as `runtime.data`).
    pub size: u64,
    /// The symbol's name as the symbol table has it (`main.listHead`).
    pub name: String,
    /// A code symbol (function) rather than data.
    pub is_code: bool,
}

/// An executable's symbol table, ready for address lookups, and its bytes
/// (for DWARF: [`crate::symbolize`]).
#[derive(Clone, Debug)]
pub struct Binary {
    path: PathBuf,
    /// The file's bytes, mapped or owned; shared by clones.
    data: Arc<BinaryData>,
    /// Every defined, named symbol, by address then name.
    symbols: Vec<Symbol>,
    /// Indexes into `symbols` of those with a size, by address; for
    /// lookups.
    sized: Vec<usize>,
    build_id: Vec<u8>,
    position_independent: bool,
    /// Loaded sections whose bytes are in the file (code, read-only and
    /// initialised data), by address: (link-time address, size, file
    /// offset).
    loaded: Vec<(u64, u64, u64)>,
}

impl Binary {
    /// Reads the executable at `path` (memory-mapped).
    pub fn open(path: impl AsRef<Path>) -> Result<Binary, Error> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = heapdump_reader::file::open_regular_file(&path).map_err(io)?;
        // SAFETY: the mapping is read-only and private; a binary changed
        // under us gives wrong names or a parse error, never unsafety in
        // our code beyond what every mmap-based reader accepts.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Binary::from_data(path, Arc::new(BinaryData::Mapped(map)))
    }

    /// Reads an executable from `data` (copied); `path` is for messages.
    pub fn parse(path: impl Into<PathBuf>, data: &[u8]) -> Result<Binary, Error> {
        Binary::from_data(path.into(), Arc::new(BinaryData::Owned(data.to_vec())))
    }

    fn from_data(path: PathBuf, data_arc: Arc<BinaryData>) -> Result<Binary, Error> {
        let data: &[u8] = data_arc.bytes();
        let bad = |reason: String| Error::BadBinary {
            path: path.clone(),
            reason,
        };
        let file = object::read::File::parse(data)
            .map_err(|err| bad(format!("not an executable this reader knows: {err}")))?;
        let mut symbols: Vec<Symbol> = file
            .symbols()
            .filter(|symbol| symbol.is_definition() || symbol.kind() == SymbolKind::Data)
            .filter_map(|symbol| {
                let name = symbol.name().ok()?;
                if name.is_empty() || symbol.is_undefined() {
                    return None;
                }
                Some(Symbol {
                    address: symbol.address(),
                    size: symbol.size(),
                    name: name.to_owned(),
                    is_code: symbol.kind() == SymbolKind::Text,
                })
            })
            .collect();
        // No symbols at all (a stripped binary) is not an error here: Rust
        // sites then fall back to `module+0xoffset`, and Go's load bias
        // says what is missing.
        symbols.sort_by(|a, b| a.address.cmp(&b.address).then(a.name.cmp(&b.name)));
        symbols.dedup();
        let sized = symbols
            .iter()
            .enumerate()
            .filter(|(_, symbol)| symbol.size > 0)
            .map(|(index, _)| index)
            .collect();
        let build_id = file.build_id().ok().flatten().unwrap_or(&[]).to_vec();
        let position_independent = file.kind() == object::ObjectKind::Dynamic;
        let mut loaded: Vec<(u64, u64, u64)> = file
            .sections()
            .filter(|section| {
                section.address() != 0
                    && !matches!(
                        section.kind(),
                        SectionKind::UninitializedData
                            | SectionKind::UninitializedTls
                            | SectionKind::Metadata
                            | SectionKind::Debug
                            | SectionKind::Other
                    )
            })
            .filter_map(|section| {
                let (offset, size) = section.file_range()?;
                let size = size.min(section.size());
                Some((section.address(), size, offset))
            })
            .collect();
        loaded.sort_unstable();
        Ok(Binary {
            path,
            data: data_arc,
            symbols,
            sized,
            build_id,
            position_independent,
            loaded,
        })
    }

    /// The `len` bytes at link-time `address` in a loaded section whose
    /// bytes the file holds (code, read-only data such as Go's itabs,
    /// initialised data as linked); `None` outside them.
    pub fn read(&self, address: u64, len: u64) -> Option<&[u8]> {
        let index = self
            .loaded
            .partition_point(|&(start, _, _)| start <= address)
            .checked_sub(1)?;
        let &(start, size, offset) = self.loaded.get(index)?;
        let inside = address - start;
        if inside.checked_add(len)? > size {
            return None;
        }
        let from = usize::try_from(offset.checked_add(inside)?).ok()?;
        let to = from.checked_add(usize::try_from(len).ok()?)?;
        self.data().get(from..to)
    }

    /// The path the binary was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes.
    pub fn data(&self) -> &[u8] {
        self.data.bytes()
    }

    /// Checks that this binary is the one `module` was loaded from: their
    /// build-ids must be equal when both have one.
    pub fn check_module(&self, module: &Module) -> Result<(), Error> {
        if !module.build_id.is_empty()
            && !self.build_id.is_empty()
            && module.build_id != self.build_id
        {
            return Err(Error::BinaryMismatch {
                path: self.path.clone(),
                reason: format!(
                    "its build-id {} is not the build-id {} of the dumped module {}: \
                         not the binary that was dumped (rebuilt since?)",
                    Hex(&self.build_id),
                    Hex(&module.build_id),
                    module.path
                ),
            });
        }
        Ok(())
    }

    /// Every defined symbol, by address.
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    /// The GNU build-id, empty if none.
    pub fn build_id(&self) -> &[u8] {
        &self.build_id
    }

    /// Whether the executable is position-independent (loaded at a bias).
    pub fn is_position_independent(&self) -> bool {
        self.position_independent
    }

    /// The first symbol called `name`.
    pub fn symbol(&self, name: &str) -> Option<&Symbol> {
        self.symbols.iter().find(|symbol| symbol.name == name)
    }

    /// The sized symbol that holds link-time `address`, and the offset of
    /// `address` in it.
    pub fn symbol_at(&self, address: u64) -> Option<(&Symbol, u64)> {
        let after = self.sized.partition_point(|&index| {
            self.symbols
                .get(index)
                .is_some_and(|symbol| symbol.address <= address)
        });
        // Symbols may nest (a Go closure's data inside a larger symbol):
        // look back a little for one that holds the address.
        self.sized
            .get(after.saturating_sub(8)..after)?
            .iter()
            .rev()
            .filter_map(|&index| self.symbols.get(index))
            .find(|symbol| address - symbol.address < symbol.size)
            .map(|symbol| (symbol, address - symbol.address))
    }

    /// The load bias of the dumped program (runtime address minus link-time
    /// address), after checking that this binary is the dumped one.
    ///
    /// Dumps whose global sections are anchored by link-time symbols
    /// ([`RootKind::Section`] with [`SectionSymbols`]; Go: `runtime.data`
    /// ..`runtime.edata` and `runtime.bss`..`runtime.ebss`): every such
    /// section's address and size must match its symbols at one bias.
    /// Otherwise (heapdump-rs dumps): the main module's recorded bias, and
    /// its build-id must match the binary's when both have one. A dump with
    /// neither gives 0.
    pub fn load_bias(&self, dump: &Dump<'_>) -> Result<u64, Error> {
        let mismatch = |reason: String| Error::BinaryMismatch {
            path: self.path.clone(),
            reason,
        };
        let anchored: Vec<(&heapdump_reader::Root<'_>, &SectionSymbols)> = dump
            .roots
            .iter()
            .filter_map(|root| match &root.kind {
                RootKind::Section {
                    symbols: Some(symbols),
                    ..
                } => Some((root, symbols)),
                _ => None,
            })
            .collect();
        if let Some((_, first)) = anchored.first() {
            if self.symbols.is_empty() {
                return Err(mismatch(format!(
                    "it has no symbol table (stripped? build {} programs without -s)",
                    first.toolchain
                )));
            }
            let mut bias = None;
            for (root, symbols) in anchored {
                let (start, end) = (symbols.start, symbols.end);
                let (Some(start_symbol), Some(end_symbol)) = (self.symbol(start), self.symbol(end))
                else {
                    return Err(mismatch(format!(
                        "it has no {start}/{end} symbols: is it a {} program?",
                        symbols.toolchain
                    )));
                };
                let size = end_symbol.address.wrapping_sub(start_symbol.address);
                if size != root.contents.len() as u64 {
                    return Err(mismatch(format!(
                        "its {} segment is {size} bytes but the dump's is {} bytes: \
                         not the binary that was dumped",
                        root.name,
                        root.contents.len()
                    )));
                }
                let this = root.address.wrapping_sub(start_symbol.address);
                if bias.is_some_and(|bias| bias != this) {
                    return Err(mismatch(
                        "its data and BSS segments are at different offsets from the dump's"
                            .to_owned(),
                    ));
                }
                bias = Some(this);
            }
            return Ok(bias.unwrap_or(0));
        }
        let Some(module) = dump.modules.first() else {
            return Ok(0);
        };
        self.check_module(module)?;
        Ok(module.load_bias)
    }
}

/// The bytes of a [`Binary`]'s file.
enum BinaryData {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl BinaryData {
    fn bytes(&self) -> &[u8] {
        match self {
            BinaryData::Mapped(map) => map,
            BinaryData::Owned(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for BinaryData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.bytes().len())
    }
}
