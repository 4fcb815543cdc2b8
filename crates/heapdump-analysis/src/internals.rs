//! The runtime's own allocations: objects that the standard library or the
//! runtime allocated for itself (std's `BTreeMap node of (usize,
//! …ThreadInfo)` at start-up, the tracker's own), which reports fold into
//! one row so the program's own classes and sites come first.
//!
//! A site is the runtime's when its stack is symbolised and no frame of it
//! is the program's: whoever named the frames found no caller outside the
//! standard library and the allocator ([`Stack::caller_frame`] is `None`),
//! or the only such frame is the process's entry symbol (`main`: a bare
//! symbol with no path, neither `a::b` nor `pkg.f`). A class is the
//! runtime's when every object of it was allocated at such a site; objects
//! whose site was not recorded never are (nothing says whose they are).

use heapdump_reader::{HeapGraph, Stack};
use rayon::prelude::*;

use crate::class::Classifier;

/// Whether `stack` is a site of the runtime's own (see the module docs).
pub fn is_runtime_site(stack: &Stack) -> bool {
    if stack.frames.is_empty() {
        return false;
    }
    match stack.caller_frame {
        None => true,
        Some(index) => stack
            .frames
            .get(index)
            .and_then(|frame| frame.function.as_deref())
            .is_some_and(|function| !function.contains("::") && !function.contains('.')),
    }
}

/// For each group of `classifier`, whether it is the runtime's own: a
/// site or a class all of whose objects were allocated at stacks that
/// [`is_runtime_site`].
pub fn runtime_groups(graph: &HeapGraph<'_>, classifier: &Classifier<'_>) -> Vec<bool> {
    let dump = graph.dump();
    let runtime_stacks: Vec<bool> = dump.stacks.iter().map(is_runtime_site).collect();
    let is_runtime_object = |object: &heapdump_reader::Object| {
        object
            .site
            .and_then(|id| dump.stacks.binary_search_by_key(&id, |stack| stack.id).ok())
            .and_then(|index| runtime_stacks.get(index).copied())
            .unwrap_or(false)
    };
    // (objects, of which the runtime's) per group: a site groups stacks
    // that differ only in the allocator's or the runtime's frames, so a
    // site is the runtime's when all its objects come from such stacks.
    let groups = classifier.group_count();
    let counts = dump
        .objects
        .par_chunks(64 * 1024)
        .fold(
            || vec![(0u64, 0u64); groups],
            |mut counts, objects| {
                for object in objects {
                    if let Some(slot) = counts.get_mut(classifier.group_of(object)) {
                        slot.0 += 1;
                        slot.1 += u64::from(is_runtime_object(object));
                    }
                }
                counts
            },
        )
        .reduce(
            || vec![(0u64, 0u64); groups],
            |mut a, b| {
                for (mine, theirs) in a.iter_mut().zip(b) {
                    mine.0 += theirs.0;
                    mine.1 += theirs.1;
                }
                a
            },
        );
    counts
        .into_iter()
        .map(|(objects, runtime)| objects > 0 && runtime == objects)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapdump_reader::{Frame, StackId};

    fn stack(functions: &[&str], caller: Option<usize>) -> Stack {
        let mut stack = Stack::from_pcs(StackId::new(1).unwrap(), vec![0x10; functions.len()]);
        stack.frames = functions
            .iter()
            .map(|name| Frame {
                function: Some((*name).into()),
                file: None,
                line: None,
            })
            .collect();
        stack.caller_frame = caller;
        stack
    }

    #[test]
    fn runtime_sites_have_no_frame_of_the_program() {
        // std's start-up: the only non-library frame is the entry symbol.
        assert!(is_runtime_site(&stack(
            &["std::rt::lang_start_internal", "main", "libc.so.6+0x2724a"],
            Some(1)
        )));
        assert!(is_runtime_site(&stack(&["std::thread::spawn"], None)));
        // The program's code called the allocating API.
        assert!(!is_runtime_site(&stack(
            &["alloc::fmt::format", "leaky_service::Service::handle"],
            Some(1)
        )));
        assert!(!is_runtime_site(&stack(
            &["main.main", "runtime.main"],
            Some(0)
        )));
        // Not symbolised: nothing is known.
        assert!(!is_runtime_site(&Stack::from_pcs(
            StackId::new(2).unwrap(),
            vec![0x10]
        )));
    }
}
