//! `diff` by site: sites that look the same in the report (their frames
//! differ only in the allocator's own, hidden, frames) are one row whose
//! counts add up. Before, the last of them replaced the others: a growth
//! of 10,000 objects showed as +322.

use heapdump_analysis::diff::{diff, DiffOptions};
use heapdump_analysis::{analyze, Grouping};
use heapdump_reader::{Dump, DumpInfo, Frame, HeapGraph, Object, Stack, StackId};

fn frame(name: &str) -> Frame {
    Frame {
        function: Some(name.into()),
        file: None,
        line: None,
    }
}

/// A dump with `a` objects allocated through allocator path A and `b`
/// through path B, both called from `app::cache::insert`.
fn dump(a: u64, b: u64) -> Dump<'static> {
    let mut dump = Dump::new(DumpInfo {
        format: "heapdump-rs",
        pointer_size: 8,
        ..DumpInfo::default()
    });
    for (id, allocator) in [(1, "__rust_alloc"), (2, "__rust_realloc")] {
        let mut stack = Stack::from_pcs(StackId::new(id).unwrap(), Vec::new());
        stack.frames = vec![frame(allocator), frame("app::cache::insert"), frame("main")];
        stack.allocator_frames = 1;
        dump.stacks.push(stack);
    }
    let mut address = 0x1000;
    for (site, count) in [(1, a), (2, b)] {
        for _ in 0..count {
            dump.objects
                .push(Object::new(address, 32, StackId::new(site), 0));
            address += 32;
        }
    }
    dump
}

#[test]
fn sites_that_look_the_same_add_up() {
    let old = HeapGraph::build(dump(2, 1), &mut |_, _| {});
    let new = HeapGraph::build(dump(5, 4), &mut |_, _| {});
    let (old_analysis, new_analysis) = (analyze(&old), analyze(&new));
    let report = diff(
        (&old, &old_analysis),
        (&new, &new_analysis),
        &DiffOptions::default(),
    );
    let sites: Vec<_> = report
        .by_site
        .iter()
        .filter(|row| row.group.grouping == Grouping::Site)
        .collect();
    assert_eq!(sites.len(), 1, "{sites:#?}");
    assert_eq!(sites[0].old_objects, 3);
    assert_eq!(sites[0].new_objects, 9);
    assert_eq!(sites[0].object_growth, 6);
    assert_eq!(sites[0].byte_growth, 6 * 32);
}
