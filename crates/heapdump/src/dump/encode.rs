//! Encoding a frozen process: the sorted snapshot of the live set, and
//! every record streamed through a buffered output to the file
//! descriptor (the record encoding itself is `heapdump_format::encode`).

use heapdump_format::encode::{
    self, Fields, Head, ModuleRange, ObjectHead, RootSegmentHead, RootThreadStackHead,
    ThreadCoverage,
};
use heapdump_format::ContentsMode;

use super::freeze::Frozen;
use super::redact::{redact, PageIndex};
use super::{Entry, WORD};
use crate::stacks::DepotGuard;
use crate::sys::{self, Region};
use crate::threads::ThreadStack;
use crate::tracker::{header_of, STATE};
use crate::{DumpReport, Error, Stats};

/// Size of the output buffer.
const BUFFER_BYTES: usize = 1 << 20;
/// Memory images at least this large are written straight from memory.
const DIRECT_WRITE_BYTES: usize = 64 * 1024;

/// Writes the dump of a frozen process: in it (Snapshot::Stop), or in a
/// forked copy of it (Snapshot::Fork).
pub(super) fn write_frozen(frozen: &Frozen<'_>) -> Result<DumpReport, Error> {
    // A sorted copy of the live table: objects go out in address order, and
    // redaction asks "does this word point into a live object?".
    // Room for an entry per slot ever handed out, so one pass over the
    // slots fills it; pages past the live entries are never touched, and
    // untouched mapped pages cost nothing.
    let mut snapshot_region =
        Region::new(STATE.live.slots_handed_out().max(1) * core::mem::size_of::<Entry>())
            .ok_or(Error::OutOfMemory)?;
    let snapshot = fill_snapshot(&mut snapshot_region);
    let snapshot_bytes = core::mem::size_of_val(snapshot) as u64;

    let mut stats = crate::stats_at(frozen.sample_rate);
    // The dump's own tables count too: the depot and the snapshot.
    stats.tracker_bytes += frozen.depot.footprint() + snapshot_bytes;

    let pages = if frozen.contents == ContentsMode::Redacted {
        Some(PageIndex::new(snapshot).ok_or(Error::OutOfMemory)?)
    } else {
        None
    };
    let mut writer = DumpWriter {
        sink: Output::new(frozen.fd)?,
        snapshot,
        pages: pages.as_ref(),
        records: 0,
    };
    writer.sink.raw(&heapdump_format::header())?;
    writer.params(frozen)?;
    let mut roots = 0;
    for (module_id, module) in frozen.modules.iter().enumerate() {
        writer.module(module_id as u64, module)?;
    }
    // The tracker's own state (locks, counters, table pointers) lives in a
    // static; it holds no heap pointers, and is not the service's data.
    let own_state = (
        &STATE as *const _ as usize,
        &STATE as *const _ as usize + core::mem::size_of_val(&STATE),
    );
    for (module_id, module) in frozen.modules.iter().enumerate() {
        for (start, end) in module.writable_ranges() {
            writer.root_segment(module_id as u64, start, end, own_state)?;
            roots += 1;
        }
    }
    let mut threads_dumped = 0;
    for stack in frozen.own_stack.iter().chain(frozen.other_stacks) {
        writer.root_thread_stack(stack)?;
        roots += 1;
        threads_dumped += 1;
    }
    let stacks = writer.stacks(frozen.depot)?;
    let mut object_bytes = 0u64;
    for index in 0..writer.snapshot.len() {
        let entry = writer.snapshot[index];
        writer.object(entry)?;
        object_bytes += entry.size as u64;
    }
    writer.stats(&stats, frozen.threads_seen, threads_dumped)?;
    let records = writer.records;
    let objects = writer.snapshot.len() as u64;
    writer.end(objects, object_bytes)?;
    writer.sink.flush()?;
    Ok(DumpReport {
        objects,
        object_bytes,
        roots,
        threads: frozen.threads_seen,
        threads_dumped,
        stacks,
        records: records + 1,
        file_bytes: writer.sink.written,
        snapshot: frozen.taken,
        sample_rate_env_refused: frozen.sample_rate_env_refused,
    })
}

/// The live blocks, sorted by address, in `region`.
fn fill_snapshot(region: &mut Region) -> &mut [Entry] {
    let count = region.len / core::mem::size_of::<Entry>();
    // SAFETY: the region is zeroed, holds `count` entries, and an all-zero
    // Entry is valid.
    let snapshot = unsafe { core::slice::from_raw_parts_mut(region.ptr.cast::<Entry>(), count) };
    let mut filled = 0;
    STATE.live.for_each_live(|index, address| {
        // SAFETY: the gate is closed, so the block is live and stays so.
        let header = unsafe { header_of(address) };
        // A header that does not name its slot back: never, unless the
        // process was forked while another thread was reallocating the
        // block (the slot then names the freed old address).
        if header.slot != index {
            return;
        }
        if let Some(slot) = snapshot.get_mut(filled) {
            *slot = Entry {
                address,
                size: header.size as usize,
                stack_id: u64::from(header.stack_id),
            };
            filled += 1;
        }
    });
    let snapshot = &mut snapshot[..filled];
    // sort_unstable does not allocate.
    snapshot.sort_unstable_by_key(|entry| entry.address);
    snapshot
}

/// Buffered output to a file descriptor.
struct Output {
    fd: i32,
    buffer: Region,
    used: usize,
    written: u64,
}

impl Output {
    fn new(fd: i32) -> Result<Output, Error> {
        Ok(Output {
            fd,
            buffer: Region::new(BUFFER_BYTES).ok_or(Error::OutOfMemory)?,
            used: 0,
            written: 0,
        })
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.used > 0 {
            let used = self.used;
            self.used = 0;
            sys::write_all(self.fd, &self.buffer.bytes_mut()[..used])?;
        }
        Ok(())
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.len() >= DIRECT_WRITE_BYTES {
            self.flush()?;
            sys::write_all(self.fd, bytes)?;
        } else {
            if self.used + bytes.len() > self.buffer.len {
                self.flush()?;
            }
            let used = self.used;
            self.buffer.bytes_mut()[used..used + bytes.len()].copy_from_slice(bytes);
            self.used += bytes.len();
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Room for `len` bytes at the end of the buffer, flushing first if
    /// needed; `len` must not exceed the buffer.
    fn reserve(&mut self, len: usize) -> Result<&mut [u8], Error> {
        if self.used + len > self.buffer.len {
            self.flush()?;
        }
        let used = self.used;
        self.used += len;
        self.written += len as u64;
        Ok(&mut self.buffer.bytes_mut()[used..used + len])
    }
}

/// The record encoder writes into the output buffer.
impl encode::Sink for Output {
    type Error = Error;

    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.raw(bytes)
    }
}

struct DumpWriter<'s> {
    sink: Output,
    snapshot: &'s [Entry],
    /// Present in redacted mode: which words point into live objects.
    pages: Option<&'s PageIndex<'s>>,
    records: u64,
}

impl DumpWriter<'_> {
    /// Writes a whole record with no memory image.
    fn fields<F: Fields>(&mut self, fields: &F) -> Result<(), Error> {
        self.records += 1;
        encode::record(&mut self.sink, fields)
    }

    /// Writes a record's header and head; its memory image follows.
    fn head<H: Head>(&mut self, head: &H) -> Result<(), Error> {
        self.records += 1;
        encode::record_head(&mut self.sink, head)
    }

    fn params(&mut self, frozen: &Frozen<'_>) -> Result<(), Error> {
        let main = frozen.modules.iter().next();
        self.fields(&encode::Params {
            pointer_size: WORD as u64,
            big_endian: cfg!(target_endian = "big"),
            arch: std::env::consts::ARCH.as_bytes(),
            os: std::env::consts::OS.as_bytes(),
            pid: u64::from(frozen.pid),
            time_unix_ns: frozen.time_unix_ns,
            executable: main.map_or(&[][..], |module| module.path()),
            build_id: main.map_or(&[][..], |module| module.build_id()),
            writer: concat!("heapdump ", env!("CARGO_PKG_VERSION")).as_bytes(),
            contents_mode: frozen.contents,
            sample_rate: frozen.sample_rate,
            short_site_frames: crate::stacks::SHORT_FRAMES as u64,
        })
    }

    fn module(&mut self, module_id: u64, module: &crate::modules::ModuleInfo) -> Result<(), Error> {
        self.fields(&encode::Module {
            module_id,
            path: module.path(),
            build_id: module.build_id(),
            load_bias: module.load_bias as u64,
            ranges: module.ranges().iter().map(|range| ModuleRange {
                start: range.start as u64,
                size: range.size as u64,
                flags: range.flags,
            }),
        })
    }

    fn root_segment(
        &mut self,
        module_id: u64,
        start: usize,
        end: usize,
        own_state: (usize, usize),
    ) -> Result<(), Error> {
        let size = end - start;
        self.head(&RootSegmentHead {
            module_id,
            address: start as u64,
            contents_len: size,
        })?;
        // A library unloaded since the modules were listed would leave
        // nothing there: read without faulting, and write zeros instead.
        self.memory(start, size, own_state, Source::MayBeUnmapped)
    }

    fn root_thread_stack(&mut self, thread: &ThreadStack) -> Result<(), Error> {
        let size = thread.high - thread.low;
        // A thread's name is the program's text (it may carry a user, a
        // tenant, a token): a redacted dump writes it empty.
        let name = if self.pages.is_some() {
            &[][..]
        } else {
            thread.name()
        };
        self.head(&RootThreadStackHead {
            thread_id: thread.tid,
            name,
            address: thread.low as u64,
            contents_len: size,
        })?;
        self.memory(thread.low, size, (0, 0), Source::Mapped)
    }

    fn stacks(&mut self, depot: &DepotGuard<'_>) -> Result<u64, Error> {
        let mut count = 0;
        depot.for_each(|stack_id, pcs, short| {
            count += 1;
            self.fields(&encode::Stack {
                stack_id,
                pcs: pcs.iter().map(|&pc| pc as u64),
                short,
            })
        })?;
        Ok(count)
    }

    fn object(&mut self, entry: Entry) -> Result<(), Error> {
        self.head(&ObjectHead {
            address: entry.address as u64,
            size: entry.size as u64,
            stack_id: entry.stack_id,
            contents_len: entry.size,
        })?;
        self.memory(entry.address, entry.size, (0, 0), Source::Mapped)
    }

    fn stats(&mut self, stats: &Stats, threads: u64, threads_dumped: u64) -> Result<(), Error> {
        self.fields(&encode::Stats {
            live_bytes: stats.live_bytes,
            live_objects: stats.live_objects,
            allocated_bytes: stats.allocated_bytes,
            allocated_objects: stats.allocated_objects,
            freed_bytes: stats.freed_bytes,
            freed_objects: stats.freed_objects,
            peak_live_bytes: stats.peak_live_bytes,
            tracker_bytes: stats.tracker_bytes,
            threads: Some(ThreadCoverage {
                threads,
                threads_dumped,
            }),
        })
    }

    fn end(&mut self, objects: u64, object_bytes: u64) -> Result<(), Error> {
        self.fields(&encode::EndCounts {
            record_count: self.records,
            object_count: objects,
            object_bytes,
        })
    }

    /// Writes `size` bytes of live memory at `address`, the memory image
    /// after a record's head (which wrote its length), with `exclude` zeroed
    /// and, in redacted mode, every word that does not point into a live
    /// object zeroed.
    fn memory(
        &mut self,
        address: usize,
        size: usize,
        exclude: (usize, usize),
        source: Source,
    ) -> Result<(), Error> {
        let overlaps_exclude = exclude.0 < address + size && address < exclude.1;
        if self.pages.is_none()
            && !overlaps_exclude
            && source == Source::Mapped
            && size >= DIRECT_WRITE_BYTES
        {
            self.sink.flush()?;
            // SAFETY: the block is live (the gate is closed, so it cannot be
            // freed) or a mapped segment/stack range; the kernel only reads it.
            let bytes = unsafe { core::slice::from_raw_parts(address as *const u8, size) };
            sys::write_all(self.sink.fd, bytes)?;
            self.sink.written += size as u64;
            return Ok(());
        }
        let mut offset = 0;
        while offset < size {
            // Chunks end on word boundaries so redaction sees whole words.
            let mut chunk = (size - offset).min(BUFFER_BYTES / 2);
            let chunk_end = address + offset + chunk;
            if offset + chunk < size {
                chunk -= chunk_end % WORD;
            }
            let start = address + offset;
            let out = self.sink.reserve(chunk)?;
            match source {
                // SAFETY: as above; the source is readable for `chunk` bytes
                // and does not overlap our buffer.
                Source::Mapped => unsafe {
                    core::ptr::copy_nonoverlapping(start as *const u8, out.as_mut_ptr(), chunk)
                },
                Source::MayBeUnmapped => {
                    // SAFETY: a segment the loader listed as mapped.
                    if !unsafe { sys::read_own_memory(start, out) } {
                        out.fill(0);
                    }
                }
            }
            if overlaps_exclude {
                zero_overlap(out, start, exclude);
            }
            if let Some(pages) = self.pages {
                redact(out, start, pages);
            }
            offset += chunk;
        }
        Ok(())
    }
}

/// Where [`DumpWriter::memory`] reads from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Memory that stays mapped while the process is frozen: live blocks,
    /// stacks of stopped threads.
    Mapped,
    /// A module's segment, listed before the process was frozen: its
    /// library may have been unloaded since.
    MayBeUnmapped,
}

fn zero_overlap(out: &mut [u8], start: usize, (exclude_start, exclude_end): (usize, usize)) {
    let from = exclude_start.max(start) - start;
    let to = exclude_end.min(start + out.len()).saturating_sub(start);
    if from < to {
        out[from..to].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment unmapped since it was listed reads as missing, not as a
    /// crash; a mapped one reads whole.
    #[test]
    fn unmapped_memory_is_read_without_faulting() {
        let mut region = Region::new(8192).unwrap();
        region.bytes_mut().fill(0x5A);
        let mut out = [0u8; 8192];
        // SAFETY: mapped, 8192 bytes.
        assert!(unsafe { sys::read_own_memory(region.ptr as usize, &mut out) });
        assert!(out.iter().all(|&byte| byte == 0x5A));
        // Unreadable now, as an unmapped segment would be (unmapping it
        // would let another test's mapping take its place meanwhile).
        // SAFETY: our own mapping.
        assert_eq!(
            unsafe { libc::mprotect(region.ptr.cast(), region.len, libc::PROT_NONE) },
            0
        );
        // SAFETY: process_vm_readv (allowed here) reports the fault.
        let read = unsafe { sys::read_own_memory(region.ptr as usize, &mut out) };
        assert!(!read, "reading an unreadable page must fail, not succeed");
    }
}
