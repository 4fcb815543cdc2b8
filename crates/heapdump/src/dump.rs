//! Writing a dump: close the live set's gate, stop the other threads, then
//! stream every record of `docs/FORMAT.md` to the file descriptor; or, with
//! `Snapshot::Fork`, fork once everything is stopped, let the threads go,
//! and have the child stream the records from its copy of the process.
//!
//! Nothing here allocates through the global allocator once the gate is
//! closed: buffers are mapped with `mmap`, and the calling thread is marked
//! busy so that anything std might allocate on its behalf goes untracked to
//! the inner allocator instead of waiting at the gate.

use core::sync::atomic::Ordering;

use heapdump_format::encode::{
    self, Fields, Head, ModuleRange, ObjectHead, RootSegmentHead, RootThreadStackHead,
    ThreadCoverage,
};
use heapdump_format::ContentsMode;

use crate::live::GateError;
use crate::lock::SpinLock;
use crate::modules::Modules;
use crate::stacks::DepotGuard;
use crate::sys::{self, Region, SharedPage};
use crate::threads::{self, Mappings, ThreadStack};
use crate::tracker::{enter_busy, header_of, sample_rate, STATE};
use crate::{DumpReport, Error, Options, Snapshot, Stats};

/// One dump at a time.
pub(crate) static DUMP_LOCK: SpinLock = SpinLock::new();

/// Size of the output buffer.
const BUFFER_BYTES: usize = 1 << 20;
/// Memory images at least this large are written straight from memory.
const DIRECT_WRITE_BYTES: usize = 64 * 1024;
const WORD: usize = core::mem::size_of::<usize>();
/// How long a dump waits for other threads to leave the tracker (a realloc
/// copying gigabytes can take a while) before it gives up.
const GATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One live block of the snapshot.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    address: usize,
    /// Requested size in bytes.
    size: usize,
    /// Allocation-site stack id, 0 if not sampled.
    stack_id: u64,
}

/// Writes a complete dump to `fd`. `caller_stack` is an address in the
/// frame of the public function the user called: the dumping thread's stack
/// root starts there, so the writer's own (deeper) frames, full of stale
/// values from earlier calls, are not scanned as roots.
pub(crate) fn write_dump(
    fd: i32,
    options: &Options,
    caller_stack: usize,
) -> Result<DumpReport, Error> {
    if !STATE.installed.load(Ordering::Relaxed) {
        return Err(Error::NotInstalled);
    }
    // A spin lock (waiters yield), not a Mutex: a child forked during a dump
    // must be able to release it (`after_fork_in_child`).
    let one_at_a_time = DUMP_LOCK.guard();
    let Some(busy) = enter_busy() else {
        return Err(Error::Reentrant);
    };
    let _sigpipe = sys::SigpipeBlock::new();

    let modules = Modules::collect().ok_or(Error::OutOfMemory)?;
    let can_stop_threads = threads::install_handler();
    let maps = Mappings::read().ok_or(Error::OutOfMemory)?;
    let own_stack = own_stack(&maps, caller_stack);
    let time_unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let sample_rate = sample_rate();
    // With Snapshot::Fork, the forked child's own result page.
    let child_result = match options.snapshot {
        Snapshot::Stop => None,
        Snapshot::Fork => Some(SharedPage::new(ChildResult::Unfinished).ok_or(Error::OutOfMemory)?),
    };

    let gate = STATE
        .live
        .close_gate(busy.record(), GATE_TIMEOUT)
        .map_err(|error| match error {
            GateError::Busy => Error::ThreadsBusy,
            GateError::Barrier(error) => Error::Io(error),
        })?;
    let depot = STATE.depot.lock_all();
    // With the gate closed and the depot locked, no stopped thread can be
    // inside the tracker.
    let stopped = if can_stop_threads {
        threads::stop_others()
    } else {
        None
    };
    let frozen = Frozen {
        fd,
        contents: options.contents,
        pid: std::process::id(),
        time_unix_ns,
        sample_rate,
        modules: &modules,
        own_stack,
        other_stacks: stopped.as_ref().map_or(&[][..], |stopped| stopped.stacks()),
        threads_seen: stopped.as_ref().map_or(1, |stopped| stopped.seen),
        depot: &depot,
    };
    let Some(child_result) = child_result else {
        // Snapshot::Stop: everyone waits until the dump is written.
        return write_frozen(&frozen);
    };
    let child = sys::fork_quietly();
    if let Ok(0) = child {
        // The child: a frozen copy of the process, this thread alone in it.
        // It writes the dump and leaves, even if the writer panicked.
        struct ExitOnUnwind;
        impl Drop for ExitOnUnwind {
            fn drop(&mut self) {
                sys::exit_now(EXIT_PANICKED);
            }
        }
        let _exit_on_unwind = ExitOnUnwind;
        if !sys::die_with_parent(frozen.pid) {
            sys::exit_now(EXIT_ORPHANED);
        }
        sys::become_dump_child(fd);
        child_result.set(ChildResult::from(write_frozen(&frozen)));
        sys::exit_now(0);
    }
    // The parent: the service goes on while the child writes, and holds
    // nothing meanwhile: another dump may start (its own fork), and a fork
    // by the service need not wait (`tracker::before_fork`).
    drop(stopped);
    drop(depot);
    drop(gate);
    drop(busy);
    drop(one_at_a_time);
    let waited = sys::wait_for_child(child.map_err(Error::Io)?);
    match (child_result.get(), waited) {
        // Reaped by someone else (a `waitpid(-1, __WALL)` of the service)
        // after it stored its result: the result stands.
        (ChildResult::Unfinished, Err(error)) => Err(Error::Io(error)),
        (result, waited) => result.into_result(waited.unwrap_or(0)),
    }
}

/// The child's exit code when the writer panicked.
const EXIT_PANICKED: i32 = 101;
/// The child's exit code when the service was gone before it began.
const EXIT_ORPHANED: i32 = 102;

/// What a dump is written from, gathered while the process is held still:
/// the gate closed, the depot locked, the other threads stopped.
struct Frozen<'a> {
    fd: i32,
    contents: ContentsMode,
    /// The dumped process (not the forked child writing it).
    pid: u32,
    time_unix_ns: u64,
    sample_rate: u64,
    modules: &'a Modules,
    own_stack: Option<ThreadStack>,
    other_stacks: &'a [ThreadStack],
    threads_seen: u64,
    depot: &'a DepotGuard<'a>,
}

/// How the child of [`Snapshot::Fork`] hands its result back, through a
/// page shared with the parent: plain data (an `io::Error` may hold a box).
#[derive(Clone, Copy)]
enum ChildResult {
    /// The child has not stored a result: it died before the end.
    Unfinished,
    Written(DumpReport),
    OutOfMemory,
    /// An I/O error with this `errno`.
    Os(i32),
    /// An I/O error of another kind (a write of zero bytes).
    Io(std::io::ErrorKind),
}

impl From<Result<DumpReport, Error>> for ChildResult {
    fn from(result: Result<DumpReport, Error>) -> ChildResult {
        match result {
            Ok(report) => ChildResult::Written(report),
            Err(Error::Io(error)) => match error.raw_os_error() {
                Some(errno) => ChildResult::Os(errno),
                None => ChildResult::Io(error.kind()),
            },
            // `write_frozen` fails with nothing else.
            Err(_) => ChildResult::OutOfMemory,
        }
    }
}

impl ChildResult {
    /// The dump's result, given the child's wait status.
    fn into_result(self, status: i32) -> Result<DumpReport, Error> {
        match self {
            ChildResult::Written(report) => Ok(report),
            ChildResult::Unfinished => Err(Error::ChildFailed(status)),
            ChildResult::OutOfMemory => Err(Error::OutOfMemory),
            ChildResult::Os(errno) => Err(Error::Io(std::io::Error::from_raw_os_error(errno))),
            ChildResult::Io(kind) => Err(Error::Io(kind.into())),
        }
    }
}

/// Writes the dump of a frozen process: in it (Snapshot::Stop), or in a
/// forked copy of it (Snapshot::Fork).
fn write_frozen(frozen: &Frozen<'_>) -> Result<DumpReport, Error> {
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

    let totals = STATE.live.totals();
    let stats = Stats {
        live_bytes: totals.live_bytes(),
        live_objects: totals.live_objects(),
        allocated_bytes: totals.allocated_bytes,
        allocated_objects: totals.allocated_objects,
        freed_bytes: totals.freed_bytes,
        freed_objects: totals.freed_objects,
        peak_live_bytes: STATE.live.peak_live_bytes(totals.live_bytes()),
        sample_rate: frozen.sample_rate,
        tracker_bytes: STATE.live.footprint() + frozen.depot.footprint() + snapshot_bytes,
        untracked_blocks: STATE.untracked_blocks.load(Ordering::Relaxed),
    };

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

/// The dumping thread's stack, from `caller_stack` to the top of its mapping.
fn own_stack(maps: &Mappings, caller_stack: usize) -> Option<ThreadStack> {
    let low = caller_stack & !(WORD - 1);
    let high = maps.end_of_mapping_containing(low)?;
    Some(ThreadStack::new(sys::gettid(), low, high))
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
        self.head(&RootThreadStackHead {
            thread_id: thread.tid,
            name: thread.name(),
            address: thread.low as u64,
            contents_len: size,
        })?;
        self.memory(thread.low, size, (0, 0), Source::Mapped)
    }

    fn stacks(&mut self, depot: &DepotGuard<'_>) -> Result<u64, Error> {
        let mut count = 0;
        depot.for_each(|stack_id, pcs| {
            count += 1;
            self.fields(&encode::Stack {
                stack_id,
                pcs: pcs.iter().map(|&pc| pc as u64),
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

/// Keeps only the aligned words of `out` (memory copied from `start`) whose
/// value points into a live object.
fn redact(out: &mut [u8], start: usize, pages: &PageIndex<'_>) {
    let first_word = start.next_multiple_of(WORD) - start;
    let head = first_word.min(out.len());
    out[..head].fill(0);
    let mut offset = head;
    while offset + WORD <= out.len() {
        let mut word = [0u8; WORD];
        word.copy_from_slice(&out[offset..offset + WORD]);
        if !pages.points_into_live_object(usize::from_ne_bytes(word)) {
            out[offset..offset + WORD].fill(0);
        }
        offset += WORD;
    }
    out[offset..].fill(0);
}

const PAGE_SHIFT: u32 = 12;
const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

/// Objects of one page whose extents a [`PageSlot`] holds itself.
const INLINE_EXTENTS: usize = 12;

/// One page of the [`PageIndex`]: one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct PageSlot {
    /// The page number plus one; 0 marks an empty slot.
    key: u64,
    /// Index in the snapshot of the first object overlapping the page.
    first: u32,
    /// Objects overlapping the page (saturating).
    count: u16,
    _pad: u16,
    /// With at most [`INLINE_EXTENTS`] objects: each one's part of the page,
    /// `[start, end)` as offsets in the page (`end` up to 4096).
    extents: [(u16, u16); INLINE_EXTENTS],
}

/// Answers "does this word point into a live object?" for redaction: a hash
/// table from each 4 KiB page that some live object overlaps to a 64-byte
/// slot holding the page's object extents (or, past 12 objects, where they
/// start in the sorted snapshot). Most words (small integers, text, random
/// bytes) miss the table at once; a pointer costs one cache line, two on
/// crowded pages. (A binary search over the snapshot per word was 80-100x
/// slower; scanning the snapshot from the page's first object, a second
/// cache miss per pointer, half as fast as this.)
struct PageIndex<'s> {
    snapshot: &'s [Entry],
    /// `PageSlot`s.
    slots: Region,
    mask: usize,
    /// `[lowest, highest)` covers every live object.
    lowest: usize,
    highest: usize,
}

impl<'s> PageIndex<'s> {
    fn new(snapshot: &'s [Entry]) -> Option<PageIndex<'s>> {
        let pages: usize = snapshot.iter().map(|entry| page_span(entry).count()).sum();
        let capacity = (pages.max(1) * 2).next_power_of_two();
        let mut index = PageIndex {
            snapshot,
            slots: Region::new(capacity * core::mem::size_of::<PageSlot>())?,
            mask: capacity - 1,
            lowest: snapshot.first().map_or(0, |entry| entry.address),
            highest: snapshot
                .iter()
                .map(|entry| entry.address + entry.size)
                .max()
                .unwrap_or(0),
        };
        for (object, entry) in snapshot.iter().enumerate() {
            for page in page_span(entry) {
                let page_start = page << PAGE_SHIFT;
                let start = entry.address.max(page_start) - page_start;
                let end = (entry.address + entry.size).min(page_start + PAGE_SIZE) - page_start;
                let slot = index.find(page);
                if slot.key == 0 {
                    // Objects come in address order, so the first to claim
                    // a page is the lowest one overlapping it, and the
                    // others follow it in the snapshot.
                    slot.key = page as u64 + 1;
                    slot.first = object as u32;
                }
                if let Some(extent) = slot.extents.get_mut(usize::from(slot.count)) {
                    *extent = (start as u16, end as u16);
                }
                slot.count = slot.count.saturating_add(1);
            }
        }
        Some(index)
    }

    /// The slot holding `page`, or the empty slot where it would go.
    fn find(&mut self, page: usize) -> &mut PageSlot {
        let slots = self.slots.ptr.cast::<PageSlot>();
        let mut position = page_hash(page) & self.mask;
        loop {
            // SAFETY: position is masked into the `mask + 1` slots; the
            // region is zeroed, and an all-zero PageSlot is valid (empty).
            let slot = unsafe { &mut *slots.add(position) };
            if slot.key == 0 || slot.key == page as u64 + 1 {
                return slot;
            }
            position = (position + 1) & self.mask;
        }
    }

    fn points_into_live_object(&self, value: usize) -> bool {
        // Small integers, text and most random bits fall outside the heap.
        if value < self.lowest || value >= self.highest {
            return false;
        }
        let page = value >> PAGE_SHIFT;
        let slots = self.slots.ptr.cast::<PageSlot>();
        let mut position = page_hash(page) & self.mask;
        let slot = loop {
            // SAFETY: position is masked into the slots.
            let slot = unsafe { &*slots.add(position) };
            if slot.key == 0 {
                return false;
            }
            if slot.key == page as u64 + 1 {
                break slot;
            }
            position = (position + 1) & self.mask;
        };
        let count = usize::from(slot.count);
        if count <= INLINE_EXTENTS {
            let offset = (value - (page << PAGE_SHIFT)) as u16;
            return slot.extents[..count]
                .iter()
                .any(|&(start, end)| start <= offset && offset < end);
        }
        self.snapshot[slot.first as usize..]
            .iter()
            .take_while(|entry| entry.address <= value)
            .any(|entry| value < entry.address + entry.size)
    }
}

/// The pages an object overlaps.
fn page_span(entry: &Entry) -> core::ops::RangeInclusive<usize> {
    let last = entry.address + entry.size.max(1) - 1;
    (entry.address >> PAGE_SHIFT)..=(last >> PAGE_SHIFT)
}

fn page_hash(page: usize) -> usize {
    ((page as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::Io(error)
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

    /// What a forked child hands back becomes the error the caller sees;
    /// a child that died before it stored anything, its wait status.
    #[test]
    fn child_results_become_errors() {
        let killed_by_segv = libc::SIGSEGV; // a wait status: signal, no core
        let error = ChildResult::Unfinished
            .into_result(killed_by_segv)
            .unwrap_err();
        assert!(matches!(error, Error::ChildFailed(status) if status == killed_by_segv));
        assert_eq!(
            error.to_string(),
            "the process writing the heap dump was killed by signal 11"
        );
        let exited_101 = 101 << 8;
        let error = ChildResult::Unfinished.into_result(exited_101).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the process writing the heap dump exited with status 101"
        );
        let error = ChildResult::from(Err(Error::Io(std::io::Error::from_raw_os_error(
            libc::ENOSPC,
        ))))
        .into_result(0)
        .unwrap_err();
        assert!(matches!(error, Error::Io(io) if io.raw_os_error() == Some(libc::ENOSPC)));
        let error = ChildResult::from(Err(Error::Io(std::io::ErrorKind::WriteZero.into())))
            .into_result(0)
            .unwrap_err();
        assert!(matches!(error, Error::Io(io) if io.kind() == std::io::ErrorKind::WriteZero));
        assert!(matches!(
            ChildResult::from(Err(Error::OutOfMemory)).into_result(0),
            Err(Error::OutOfMemory)
        ));
    }

    fn entry(address: usize, size: usize) -> Entry {
        Entry {
            address,
            size,
            stack_id: 0,
        }
    }

    #[test]
    fn page_index_agrees_with_a_linear_search_on_crowded_pages() {
        // Pages with 1 to 40 objects (inline extents up to 12, then the
        // snapshot), objects of odd sizes with gaps, some across pages.
        let mut snapshot = Vec::new();
        let mut address = 0x5000_0008usize;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for object in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // ~10 objects per page first (inline), then ~35 (the snapshot).
            let size = if object < 1000 {
                200 + (state % 400) as usize
            } else {
                1 + (state % 200) as usize
            };
            snapshot.push(entry(address, size));
            address += size + 8 * ((state >> 20) % 3) as usize;
            address = address.next_multiple_of(8);
        }
        let index = PageIndex::new(&snapshot).unwrap();
        let linear = |value: usize| {
            snapshot
                .iter()
                .any(|e| e.address <= value && value < e.address + e.size)
        };
        for value in 0x5000_0000..address + 64 {
            assert_eq!(
                index.points_into_live_object(value),
                linear(value),
                "{value:#x}"
            );
        }
    }

    #[test]
    fn page_index_agrees_with_a_linear_search() {
        let snapshot = [
            entry(0x1000_0010, 16),
            entry(0x1000_0ff8, 0x2010), // spans three pages
            entry(0x1000_3010, 8),
            entry(0x2000_0000, 1 << 20),
            entry(0x7f00_0000_0000, 64),
        ];
        let index = PageIndex::new(&snapshot).unwrap();
        let linear = |value: usize| {
            snapshot
                .iter()
                .any(|e| e.address <= value && value < e.address + e.size)
        };
        let mut probes = vec![0, 1, usize::MAX, 0x7f00_0000_0040];
        for e in &snapshot {
            for delta in [0usize, 1, 7, 8, 0x1000] {
                probes.push(e.address.wrapping_sub(delta));
                probes.push(e.address + delta);
                probes.push(e.address + e.size - 1);
                probes.push(e.address + e.size);
            }
        }
        for value in probes {
            assert_eq!(
                index.points_into_live_object(value),
                linear(value),
                "{value:#x}"
            );
        }
    }
}
