//! Loaded modules and their writable segments, from `dl_iterate_phdr`.
//!
//! Collected into a fixed-size table in mapped memory before a dump takes
//! the allocator's locks, so the loader's lock is never held together with
//! ours.

use core::ffi::{c_int, c_void, CStr};

use crate::sys::Region;

/// Most modules recorded; further ones are counted but not dumped.
pub(crate) const MAX_MODULES: usize = 512;
const MAX_PATH: usize = 4096;
const MAX_BUILD_ID: usize = 64;
const MAX_RANGES: usize = 16;

/// One `PT_LOAD` segment at its runtime address.
#[derive(Clone, Copy, Default)]
pub(crate) struct LoadRange {
    pub(crate) start: usize,
    pub(crate) size: usize,
    /// `heapdump_format::range_flags` bits.
    pub(crate) flags: u64,
}

/// What a dump needs to know of one module.
pub(crate) struct ModuleInfo {
    path: [u8; MAX_PATH],
    path_len: usize,
    build_id: [u8; MAX_BUILD_ID],
    build_id_len: usize,
    pub(crate) load_bias: usize,
    ranges: [LoadRange; MAX_RANGES],
    range_count: usize,
    /// The `PT_GNU_RELRO` range, read-only after relocation: `(start, end)`.
    relro: (usize, usize),
}

impl ModuleInfo {
    pub(crate) fn path(&self) -> &[u8] {
        &self.path[..self.path_len]
    }

    pub(crate) fn build_id(&self) -> &[u8] {
        &self.build_id[..self.build_id_len]
    }

    pub(crate) fn ranges(&self) -> &[LoadRange] {
        &self.ranges[..self.range_count]
    }

    /// The writable, non-RELRO address ranges `(start, end)`: where statics
    /// that may point into the heap live.
    pub(crate) fn writable_ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let (relro_start, relro_end) = self.relro;
        self.ranges()
            .iter()
            .filter(|range| range.flags & heapdump_format::range_flags::WRITE != 0)
            .flat_map(move |range| {
                let (start, end) = (range.start, range.start + range.size);
                // Cut the RELRO range out: what is left is at most two pieces.
                let below = (start, end.min(relro_start));
                let above = (start.max(relro_end), end);
                let pieces = if relro_start >= relro_end {
                    [(start, end), (0, 0)]
                } else {
                    [below, above]
                };
                pieces.into_iter().filter(|(s, e)| s < e)
            })
    }
}

/// The modules of the process.
pub(crate) struct Modules {
    region: Region,
    count: usize,
}

impl Modules {
    /// Lists the loaded modules; `None` if scratch memory cannot be mapped.
    pub(crate) fn collect() -> Option<Modules> {
        let mut modules = Modules {
            region: Region::new(MAX_MODULES * core::mem::size_of::<ModuleInfo>())?,
            count: 0,
        };
        // SAFETY: the callback only reads the loader's structures for the
        // duration of the call and writes into `modules`.
        unsafe {
            libc::dl_iterate_phdr(Some(visit), (&mut modules as *mut Modules).cast());
        }
        if modules.count > 0 {
            // The first module is the main executable, which the loader names
            // "": use the real path instead.
            let main = modules.slot(0);
            let mut buffer = [0u8; MAX_PATH];
            // SAFETY: a NUL-terminated path and a buffer of MAX_PATH bytes.
            let len = unsafe {
                libc::readlink(
                    c"/proc/self/exe".as_ptr(),
                    buffer.as_mut_ptr().cast(),
                    MAX_PATH,
                )
            };
            if len > 0 && (len as usize) < MAX_PATH {
                main.path[..len as usize].copy_from_slice(&buffer[..len as usize]);
                main.path_len = len as usize;
            }
        }
        Some(modules)
    }

    fn slot(&mut self, index: usize) -> &mut ModuleInfo {
        // SAFETY: the region holds MAX_MODULES zeroed ModuleInfo slots (all
        // fields are plain integers, for which zero is valid), index is
        // checked by the callers.
        unsafe { &mut *self.region.ptr.cast::<ModuleInfo>().add(index) }
    }

    /// The collected modules, main executable first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ModuleInfo> + '_ {
        // SAFETY: the first `count` slots are initialised.
        let slots = unsafe {
            core::slice::from_raw_parts(self.region.ptr.cast::<ModuleInfo>(), self.count)
        };
        slots.iter()
    }
}

unsafe extern "C" fn visit(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `data` is the `Modules` passed to dl_iterate_phdr; `info` is
    // valid for this call.
    let (modules, info) = unsafe { (&mut *data.cast::<Modules>(), &*info) };
    if modules.count >= MAX_MODULES {
        return 0;
    }
    let index = modules.count;
    modules.count += 1;
    let module = modules.slot(index);
    module.load_bias = info.dlpi_addr as usize;
    if !info.dlpi_name.is_null() {
        // SAFETY: the loader's name is a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes();
        let len = name.len().min(MAX_PATH);
        module.path[..len].copy_from_slice(&name[..len]);
        module.path_len = len;
    }
    let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: the loader gives `dlpi_phnum` program headers.
        unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
    };
    for header in headers {
        let start = module.load_bias.wrapping_add(header.p_vaddr as usize);
        let size = header.p_memsz as usize;
        match header.p_type {
            libc::PT_LOAD if module.range_count < MAX_RANGES => {
                let mut flags = 0;
                if header.p_flags & libc::PF_R != 0 {
                    flags |= heapdump_format::range_flags::READ;
                }
                if header.p_flags & libc::PF_W != 0 {
                    flags |= heapdump_format::range_flags::WRITE;
                }
                if header.p_flags & libc::PF_X != 0 {
                    flags |= heapdump_format::range_flags::EXECUTE;
                }
                module.ranges[module.range_count] = LoadRange { start, size, flags };
                module.range_count += 1;
            }
            libc::PT_GNU_RELRO => module.relro = (start, start + size),
            libc::PT_NOTE if module.build_id_len == 0 => {
                // SAFETY: a PT_NOTE segment is mapped and readable.
                let notes = unsafe { core::slice::from_raw_parts(start as *const u8, size) };
                if let Some(id) = find_build_id(notes) {
                    let len = id.len().min(MAX_BUILD_ID);
                    module.build_id[..len].copy_from_slice(&id[..len]);
                    module.build_id_len = len;
                }
            }
            _ => {}
        }
    }
    0
}

/// Finds the `NT_GNU_BUILD_ID` note in a note segment.
fn find_build_id(mut notes: &[u8]) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let align4 = |n: usize| n.div_ceil(4) * 4;
    while notes.len() >= 12 {
        let word = |at: usize| {
            u32::from_ne_bytes([notes[at], notes[at + 1], notes[at + 2], notes[at + 3]])
        };
        let (name_size, desc_size, kind) = (word(0) as usize, word(4) as usize, word(8));
        let desc_start = 12 + align4(name_size);
        let next = desc_start + align4(desc_size);
        if next > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && notes[12..12 + name_size].starts_with(b"GNU") {
            return Some(&notes[desc_start..desc_start + desc_size]);
        }
        notes = &notes[next..];
    }
    None
}
