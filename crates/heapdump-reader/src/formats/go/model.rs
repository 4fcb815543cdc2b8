//! What only Go heap dumps carry, as the runtime wrote it: [`GoDump`],
//! kept in [`Dump::extras`](crate::Dump::extras) by the Go decoder and
//! reached with [`extras`](super::extras).
//!
//! Everything a format-neutral analysis needs is in the common model
//! already: goroutine frames, data/BSS, finalizers and contexts are
//! [`Root`](crate::Root)s, goroutines are
//! [`ExecutionContexts`](crate::ExecutionContexts), memory-profile buckets
//! are [`Stack`](crate::Stack)s with symbolised frames and
//! [`AllocationProfile`](crate::AllocationProfile)s, alloc samples set
//! [`Object::site`](crate::Object::site), memstats fill
//! [`AllocatorStats`](crate::AllocatorStats) and
//! [`RuntimeStats`](crate::RuntimeStats). `GoDump` keeps the rest.

use std::ops::Range;

use serde::Serialize;

use crate::dump::StackId;

/// The Go-only part of a dump.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoDump {
    /// The params record.
    pub params: GoParams,
    /// Goroutines, in the order of the file.
    pub goroutines: Vec<Goroutine>,
    /// OS threads (the runtime's Ms).
    pub threads: Vec<GoThread>,
    /// The memstats record, if the dump has one.
    pub memstats: Option<GoMemStats>,
    /// Type records, one per descriptor address (the runtime may write a
    /// type twice; the first is kept), in address order.
    pub types: Vec<GoType>,
    /// Itab records, in the order of the file.
    pub itabs: Vec<GoItab>,
    /// Registered and queued finalizers.
    pub finalizers: Vec<GoFinalizer>,
    /// Pending defers.
    pub defers: Vec<GoDefer>,
    /// Active panics.
    pub panics: Vec<GoPanic>,
    /// Memory-profile buckets; each is also a [`Stack`](crate::Stack) with
    /// the same id.
    pub buckets: Vec<GoBucket>,
    /// Alloc-sample records (live sampled objects).
    pub alloc_samples: u64,
    /// Alloc samples whose address is not the start of any object in the
    /// dump (their object's site stays unset).
    pub unmatched_alloc_samples: u64,
    /// Objects that start with a malloc header whose type word names a type
    /// record, so their type is known.
    pub typed_by_header: u64,
    /// Slots the runtime dumped as objects that are span metadata (the
    /// pointer bitmap and inline mark bits at the end of small-object spans
    /// since Go 1.22); left out of the dump's objects.
    pub phantom_slots: u64,
    /// Bytes of those slots.
    pub phantom_bytes: u64,
    /// Small-object spans were read as having Green Tea inline mark bits in
    /// their tails (the default from Go 1.26; chosen by the memstats record
    /// when the program was built with another `GOEXPERIMENT`).
    pub inline_mark_bits: bool,
}

/// The params record: what the dumped process was.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoParams {
    /// Lowest heap arena address.
    pub arena_start: u64,
    /// One past the highest heap arena address.
    pub arena_end: u64,
    /// `GOARCH` (`amd64`, `arm64`, ...).
    pub goarch: String,
    /// The runtime's version (`go1.26.6`); older runtimes wrote
    /// `GOEXPERIMENT` here.
    pub version: String,
    /// Number of CPUs the runtime saw at start-up.
    pub ncpu: u64,
    /// The runtime puts malloc headers in objects (Go 1.22 and later, read
    /// from `version`).
    pub malloc_headers: bool,
}

/// A goroutine record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Goroutine {
    /// Address of the runtime's `g`.
    pub address: u64,
    /// The goroutine id.
    pub id: u64,
    /// Stack pointer of the innermost frame.
    pub sp: u64,
    /// The pc of the `go` statement that created it.
    pub go_pc: u64,
    /// The runtime's raw status (`_G*`); see [`Goroutine::status_name`].
    pub status: u64,
    /// A runtime (system) goroutine.
    pub system: bool,
    /// The background flag (always false in current runtimes).
    pub background: bool,
    /// When it started waiting (nanotime), 0 if not waiting.
    pub wait_since: u64,
    /// Why it waits (`chan receive`, `GC worker (idle)`, ...), empty if
    /// running.
    pub wait_reason: String,
    /// The closure context register.
    pub context: u64,
    /// Address of the M (OS thread) running it, 0 if none.
    pub thread: u64,
    /// Address of its innermost defer record, 0 if none.
    pub defer: u64,
    /// Address of its innermost panic record, 0 if none.
    pub panic: u64,
    /// Indexes in [`Dump::roots`](crate::Dump::roots) of its frames,
    /// innermost first.
    pub frame_roots: Range<usize>,
    /// Its frames, as the file gives them.
    pub frames: Vec<GoFrame>,
}

impl Goroutine {
    /// The name of [`status`](Goroutine::status) as `runtime` prints it:
    /// `idle`, `runnable`, `running`, `syscall`, `waiting`, `dead`, ...
    pub fn status_name(&self) -> &'static str {
        status_name(self.status)
    }
}

/// The name of a raw goroutine status (the scan bit 0x1000 is ignored).
pub fn status_name(status: u64) -> &'static str {
    match status & !0x1000 {
        0 => "idle",
        1 => "runnable",
        2 => "running",
        3 => "syscall",
        4 => "waiting",
        5 => "moribund",
        6 => "dead",
        7 => "enqueue",
        8 => "copystack",
        9 => "preempted",
        10 => "leaked",
        11 => "deadextra",
        _ => "unknown",
    }
}

/// A stack-frame record (its memory is a [`Root`](crate::Root)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoFrame {
    /// The frame's lowest address.
    pub sp: u64,
    /// 0 for the innermost frame.
    pub depth: u64,
    /// The child frame's sp, 0 for the innermost.
    pub child_sp: u64,
    /// Bytes in the frame.
    pub size: u64,
    /// The function's entry pc.
    pub entry_pc: u64,
    /// The frame's current pc.
    pub pc: u64,
    /// Where execution continues (differs from `pc` during a panic).
    pub continue_pc: u64,
    /// The function's name (`unknown function` if the runtime had none).
    pub function: String,
}

/// An OS-thread record (an M).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoThread {
    /// Address of the runtime's `m`.
    pub address: u64,
    /// The M's id.
    pub id: u64,
    /// The OS thread id.
    pub os_id: u64,
}

/// A type record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoType {
    /// Address of the type descriptor.
    pub address: u64,
    /// Size of a value.
    pub size: u64,
    /// `pkgpath.Name`, or the type's string; unnamed types may read as just
    /// the package (`net/http.`).
    pub name: String,
    /// The runtime's "indirect or has pointers" flag (always true in
    /// practice).
    pub indirect_or_pointers: bool,
}

/// An itab record: an interface table and its concrete type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoItab {
    /// Address of the itab.
    pub address: u64,
    /// Address of the concrete type's descriptor (a [`GoType`]).
    pub type_address: u64,
}

/// A registered or queued finalizer record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoFinalizer {
    /// The object the finalizer is set on.
    pub object: u64,
    /// The finalizer's closure (`*funcval`).
    pub closure: u64,
    /// The closure's code pc.
    pub code: u64,
    /// Type of the finalizer's argument.
    pub arg_type: u64,
    /// Type of the object (a pointer type).
    pub object_type: u64,
    /// Queued to run (tag 11) rather than registered (tag 7).
    pub queued: bool,
}

/// A defer record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoDefer {
    /// Address of the defer record.
    pub address: u64,
    /// Address of its goroutine's `g`.
    pub goroutine: u64,
    /// The deferring frame's sp.
    pub sp: u64,
    /// The deferring pc.
    pub pc: u64,
    /// The deferred closure (`*funcval`), 0 for open-coded defers.
    pub closure: u64,
    /// The closure's code pc, 0 if none.
    pub code: u64,
    /// The next defer record, 0 if none.
    pub link: u64,
}

/// A panic record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoPanic {
    /// Address of the panic record.
    pub address: u64,
    /// Address of its goroutine's `g`.
    pub goroutine: u64,
    /// Type word of the panic value.
    pub value_type: u64,
    /// Data word of the panic value.
    pub value_data: u64,
    /// The next panic record, 0 if none.
    pub link: u64,
}

/// A memory-profile bucket record: sampled allocations and frees at one
/// site. Its frames are the [`Stack`](crate::Stack) with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GoBucket {
    /// The bucket's id (its address), also the stack's id.
    pub id: StackId,
    /// Size of each sampled allocation.
    pub object_size: u64,
    /// Sampled allocations (as of the last completed GC cycle).
    pub allocs: u64,
    /// Sampled frees.
    pub frees: u64,
}

/// The memstats record: `runtime.MemStats` at the moment of the dump.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoMemStats {
    /// Bytes of allocated heap objects.
    pub alloc: u64,
    /// Cumulative bytes allocated.
    pub total_alloc: u64,
    /// Bytes obtained from the OS.
    pub sys: u64,
    /// Pointer lookups (always 0 now).
    pub lookups: u64,
    /// Cumulative heap objects allocated.
    pub mallocs: u64,
    /// Cumulative heap objects freed.
    pub frees: u64,
    /// Bytes of allocated heap objects (as `alloc`).
    pub heap_alloc: u64,
    /// Heap bytes obtained from the OS.
    pub heap_sys: u64,
    /// Bytes in idle spans.
    pub heap_idle: u64,
    /// Bytes in in-use spans.
    pub heap_inuse: u64,
    /// Bytes returned to the OS.
    pub heap_released: u64,
    /// Allocated heap objects.
    pub heap_objects: u64,
    /// Bytes in stack spans.
    pub stack_inuse: u64,
    /// Stack bytes obtained from the OS.
    pub stack_sys: u64,
    /// Bytes of allocated mspan structures.
    pub mspan_inuse: u64,
    /// Bytes obtained for mspan structures.
    pub mspan_sys: u64,
    /// Bytes of allocated mcache structures.
    pub mcache_inuse: u64,
    /// Bytes obtained for mcache structures.
    pub mcache_sys: u64,
    /// Bytes of profiling bucket hash tables.
    pub buck_hash_sys: u64,
    /// Bytes of garbage-collection metadata.
    pub gc_sys: u64,
    /// Other runtime bytes.
    pub other_sys: u64,
    /// Heap size goal of the next GC.
    pub next_gc: u64,
    /// End of the last GC, nanoseconds since the Unix epoch.
    pub last_gc: u64,
    /// Cumulative GC pause nanoseconds.
    pub pause_total_ns: u64,
    /// The 256 most recent pauses, a circular buffer
    /// (`pause_ns[(num_gc + 255) % 256]` is the latest).
    pub pause_ns: Vec<u64>,
    /// Completed GC cycles.
    pub num_gc: u64,
}
