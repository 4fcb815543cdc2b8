//! Which function's frame holds each word of a thread's stack root.
//!
//! A heapdump-rs thread root is the thread's stack from its stack pointer
//! up (docs/FORMAT.md, ROOT_THREAD_STACK): the writer's stop-signal handler
//! frame, the registers the kernel saved, then the interrupted code's
//! frames, the thread's start and its static TLS. When the program was
//! built with frame pointers, the frames are a chain of frame records
//! inside those bytes: a record is two words, the caller's frame pointer
//! (the address of the caller's record, higher up the stack) and the
//! return address into the caller. The stop handler pushes the interrupted
//! code's frame pointer, so the chain runs from the handler to the
//! thread's start.
//!
//! [`ThreadFrames::walk`] finds that chain in a root's bytes (the longest
//! chain of records whose return addresses fall in executable code, taken
//! from its lowest record) and cuts the stack at its records: on x86-64 a
//! function's locals lie below its record, so the words from just above
//! record *k* up to and including record *k + 1* belong to the function
//! that record *k*'s return address returns into; the words below the
//! chain belong to the handler and the saved registers, those above it to
//! the thread's start and its TLS. Without frame pointers there is no
//! chain, and words keep the root's name and offset.

use std::collections::HashMap;

use heapdump_reader::{Dump, Frame, Root, RootKind};

/// A run of a thread root's words held by one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpan {
    /// Offset in the root's contents of the span's first byte.
    pub start: u64,
    /// Offset just past its last byte.
    pub end: u64,
    /// The return address into the function that owns the span (it names
    /// the function and the line of the call it is in).
    pub pc: u64,
    /// The frame's depth: 0 for the innermost frame of the chain.
    pub depth: u32,
}

/// The frames of one thread's stack root, found from its frame-pointer
/// chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadFrames {
    /// The frames, innermost (lowest offsets) first, not overlapping.
    pub spans: Vec<FrameSpan>,
}

/// Records a chain needs before it is believed: one record could be any
/// two words that happen to look like one.
const MIN_CHAIN: usize = 3;

impl ThreadFrames {
    /// The frame chain in `root`'s bytes, if it has one: `code` says
    /// whether an address is in executable code of the process. `None`
    /// when the root is not a thread stack, the architecture keeps its
    /// frame records elsewhere than x86-64 does, or no chain of at least
    /// three records is found (a program built without frame pointers).
    pub fn walk(
        dump: &Dump<'_>,
        root: &Root<'_>,
        code: &dyn Fn(u64) -> bool,
    ) -> Option<ThreadFrames> {
        if !matches!(root.kind, RootKind::ThreadStack { .. }) {
            return None;
        }
        // Frame records above the locals (x86-64's `push rbp; mov rbp, rsp`)
        // is what the attribution below assumes; other architectures (on
        // aarch64 the record is at the bottom of the frame) are not cut.
        if !matches!(dump.info.arch.as_str(), "x86_64" | "x86-64" | "amd64") {
            return None;
        }
        let word = usize::from(dump.info.pointer_size);
        if word != 8 {
            return None;
        }
        let contents = root.contents;
        let words = contents.len() / word;
        let read = |index: usize| dump.info.word_at(contents, (index * word) as u64);
        let base = root.address;
        let end = base.saturating_add(contents.len() as u64);
        // next[i]: the word index of the record that the record at word i
        // links to, when word i looks like a record (its first word points
        // to a higher aligned word of the stack, its second into code).
        let link = |index: usize| -> Option<usize> {
            let saved = read(index)?;
            let here = base.checked_add((index * word) as u64)?;
            if saved <= here || saved >= end || !(saved - base).is_multiple_of(word as u64) {
                return None;
            }
            let ret = read(index + 1)?;
            code(ret).then_some(((saved - base) / word as u64) as usize)
        };
        let next: Vec<Option<usize>> = (0..words).map(link).collect();
        // Chain lengths from the top down (links only go up).
        let mut length = vec![0usize; words];
        for index in (0..words).rev() {
            if let Some(Some(up)) = next.get(index) {
                let above = length.get(*up).copied().unwrap_or(0);
                // A record whose link is not itself a record ends the
                // chain (the thread's start: a null saved frame pointer),
                // when its own return address is code.
                let tail = if above == 0 {
                    usize::from(read(*up + 1).is_some_and(code))
                } else {
                    above
                };
                if let Some(slot) = length.get_mut(index) {
                    *slot = 1 + tail;
                }
            }
        }
        let longest = length.iter().copied().max().unwrap_or(0);
        if longest < MIN_CHAIN {
            return None;
        }
        let first = length.iter().position(|&len| len == longest)?;
        // The records of the chain, lowest first.
        let mut records = vec![first];
        let mut at = first;
        while let Some(Some(up)) = next.get(at) {
            records.push(*up);
            at = *up;
        }
        let mut spans = Vec::with_capacity(records.len());
        for (depth, pair) in records.windows(2).enumerate() {
            let &[low, high] = pair else { continue };
            let Some(pc) = read(low + 1) else { continue };
            spans.push(FrameSpan {
                start: ((low + 2) * word) as u64,
                end: ((high + 2) * word) as u64,
                pc,
                depth: depth as u32,
            });
        }
        Some(ThreadFrames { spans })
    }

    /// The frame holding the word at `offset`, if the chain covers it.
    pub fn frame_at(&self, offset: u64) -> Option<&FrameSpan> {
        let after = self.spans.partition_point(|span| span.start <= offset);
        let span = self.spans.get(after.checked_sub(1)?)?;
        (offset < span.end).then_some(span)
    }

    /// Offset in the root just past the chain's last frame: the words
    /// above are the thread's start (whose code keeps no frame pointer),
    /// its thread-locals and, on the main thread, its arguments and
    /// environment.
    pub fn chain_end(&self) -> Option<u64> {
        self.spans.last().map(|span| span.end)
    }

    /// Offset in the root of the chain's first frame: the words below it
    /// are the stop handler's and the registers saved for it.
    pub fn chain_start(&self) -> Option<u64> {
        self.spans.first().map(|span| span.start)
    }
}

/// The frames of every thread root of a dump, and the names of their
/// return addresses: what [`RootNamer`](crate::RootNamer) names stack
/// words with.
#[derive(Clone, Debug, Default)]
pub struct StackRootFrames {
    /// By the root's address (a thread root's stack pointer).
    threads: HashMap<u64, ThreadFrames>,
    /// `function (file:line)` of each return address: the function that
    /// owns the frame (the outermost of an inlined chain).
    names: HashMap<u64, String>,
}

impl StackRootFrames {
    /// Walks every thread root of `dump` ([`ThreadFrames::walk`]); the
    /// frames are named by their return addresses until
    /// [`StackRootFrames::name`] is called.
    pub fn walk(dump: &Dump<'_>) -> StackRootFrames {
        let mut ranges: Vec<(u64, u64)> = dump
            .modules
            .iter()
            .flat_map(|module| module.ranges.iter())
            .filter(|range| range.flags & 4 != 0)
            .map(|range| (range.start, range.start.saturating_add(range.size)))
            .collect();
        ranges.sort_unstable();
        let code = |address: u64| {
            let after = ranges.partition_point(|&(start, _)| start <= address);
            after
                .checked_sub(1)
                .and_then(|index| ranges.get(index))
                .is_some_and(|&(_, end)| address < end)
        };
        let threads: HashMap<u64, ThreadFrames> = dump
            .roots
            .iter()
            .filter_map(|root| Some((root.address, ThreadFrames::walk(dump, root, &code)?)))
            .collect();
        StackRootFrames {
            threads,
            names: HashMap::new(),
        }
    }

    /// The distinct return addresses of every frame, sorted.
    pub fn pcs(&self) -> Vec<u64> {
        let mut pcs: Vec<u64> = self
            .threads
            .values()
            .flat_map(|frames| frames.spans.iter().map(|span| span.pc))
            .collect();
        pcs.sort_unstable();
        pcs.dedup();
        pcs
    }

    /// Names the frames: `resolve` takes [`StackRootFrames::pcs`] and
    /// gives the frames of each, innermost inlined call first, in the same
    /// order ([`Symbolizer::resolve_all`](crate::Symbolizer::resolve_all));
    /// a frame is named by the last of them, the function that owns it.
    pub fn name(&mut self, resolve: impl FnOnce(&[u64]) -> Vec<Vec<Frame>>) {
        let pcs = self.pcs();
        if pcs.is_empty() {
            return;
        }
        let resolved = resolve(&pcs);
        self.names = pcs
            .iter()
            .zip(resolved)
            .filter_map(|(&pc, frames)| {
                // The function that owns the frame: the outermost of the
                // inlined chain, at the line of the call it is in.
                let frame = frames.last()?;
                frame.function.as_ref()?;
                Some((pc, frame.label(Some(pc))))
            })
            .collect();
    }

    /// Whether any thread root has a frame chain.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Number of thread roots with a frame chain.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// The frames of the thread root at `address`, if it has a chain.
    pub fn thread(&self, address: u64) -> Option<&ThreadFrames> {
        self.threads.get(&address)
    }

    /// The name of the word at `offset` of thread root `root`: the
    /// function and line of the frame that holds it, the frame's depth and
    /// the offset in the frame (`app::worker (src/main.rs:42) (thread 7
    /// "worker", frame 3) +0x18`); the stop handler's words below the
    /// chain and the thread's start above it as such. `None` when the root
    /// has no chain.
    pub fn slot_name(&self, root: &Root<'_>, offset: u64) -> Option<String> {
        let frames = self.threads.get(&root.address)?;
        let thread = match &root.kind {
            RootKind::ThreadStack { thread_id, name } if name.is_empty() => {
                format!("thread {thread_id}")
            }
            RootKind::ThreadStack { thread_id, name } => format!("thread {thread_id} \"{name}\""),
            _ => return None,
        };
        if frames.chain_start().is_some_and(|start| offset < start) {
            return Some(format!(
                "signal handler and saved registers ({thread}) +{offset:#x}"
            ));
        }
        if frames.chain_end().is_some_and(|end| offset >= end) {
            return Some(format!(
                "above the frames: thread start and thread-locals ({thread}) +{offset:#x}"
            ));
        }
        let span = frames.frame_at(offset)?;
        let function = match self.names.get(&span.pc) {
            Some(name) => name.clone(),
            None => format!("{:#x}", span.pc),
        };
        Some(format!(
            "{function} ({thread}, frame {}) +{:#x}",
            span.depth,
            offset - span.start
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapdump_reader::{DumpInfo, Pointers};

    const CODE: u64 = 0x40_0000;

    fn dump() -> Dump<'static> {
        Dump::new(DumpInfo {
            pointer_size: 8,
            arch: "x86_64".to_owned(),
            ..DumpInfo::default()
        })
    }

    fn root(contents: &'static [u8], address: u64) -> Root<'static> {
        Root {
            kind: RootKind::ThreadStack {
                thread_id: 7,
                name: "worker".to_owned(),
            },
            name: "thread 7 \"worker\" stack".to_owned(),
            address,
            contents,
            pointers: Pointers::Unknown,
            values: Vec::new(),
        }
    }

    /// A stack at 0x1000 of `words` words with frame records at the given
    /// word indices (each linking to the next), return addresses
    /// `CODE + index`, the last record's saved frame pointer 0.
    fn stack(words: usize, records: &[usize]) -> Vec<u8> {
        let mut image = vec![0u64; words];
        image[0] = 0xdead; // not a record
        for (i, &record) in records.iter().enumerate() {
            image[record] = records.get(i + 1).map_or(0, |&up| 0x1000 + up as u64 * 8);
            image[record + 1] = CODE + record as u64;
        }
        image.iter().flat_map(|word| word.to_le_bytes()).collect()
    }

    #[test]
    fn words_belong_to_the_function_their_records_return_into() {
        let bytes: &'static [u8] = Box::leak(stack(40, &[2, 6, 12, 20]).into_boxed_slice());
        let dump = dump();
        let root = root(bytes, 0x1000);
        let code = |address: u64| (CODE..CODE + 0x1000).contains(&address);
        let frames = ThreadFrames::walk(&dump, &root, &code).expect("a chain");
        let spans: Vec<(u64, u64, u64, u32)> = frames
            .spans
            .iter()
            .map(|span| (span.start / 8, span.end / 8, span.pc - CODE, span.depth))
            .collect();
        // Words 4..8 belong to the function record 2 returns into, and so on.
        assert_eq!(spans, vec![(4, 8, 2, 0), (8, 14, 6, 1), (14, 22, 12, 2)]);
        assert_eq!(frames.frame_at(4 * 8).map(|span| span.depth), Some(0));
        assert_eq!(frames.frame_at(13 * 8).map(|span| span.depth), Some(1));
        assert_eq!(frames.frame_at(30 * 8), None);
        assert_eq!(frames.chain_start(), Some(32));

        let names = StackRootFrames::walk(&dump);
        assert!(names.is_empty(), "no modules: no code, no chain");
    }

    #[test]
    fn no_chain_without_frame_pointers() {
        let bytes: &'static [u8] = Box::leak(stack(40, &[2, 6]).into_boxed_slice());
        let dump = dump();
        let code = |address: u64| (CODE..CODE + 0x1000).contains(&address);
        assert_eq!(ThreadFrames::walk(&dump, &root(bytes, 0x1000), &code), None);
        // Records whose return addresses are not code are no chain.
        let bytes: &'static [u8] = Box::leak(stack(40, &[2, 6, 12, 20]).into_boxed_slice());
        assert_eq!(
            ThreadFrames::walk(&dump, &root(bytes, 0x1000), &|_| false),
            None
        );
        // Nor does another architecture's stack get cut.
        let mut arm = dump;
        arm.info.arch = "aarch64".to_owned();
        assert_eq!(ThreadFrames::walk(&arm, &root(bytes, 0x1000), &code), None);
    }
}
