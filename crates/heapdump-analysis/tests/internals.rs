//! `top` folds the runtime's own sites and classes into one row: a dump
//! with a program site (3 objects) and std's start-up site (2 objects), its
//! stacks named as the symboliser names them.

use heapdump_analysis::top::{top_with, Internals, TopOptions, INTERNALS_LABEL};
use heapdump_analysis::{analyze, Summary};
use heapdump_format::builder::{DumpBuilder, Module, Params};
use heapdump_reader::{parse, Frame, HeapGraph};

const BASE: u64 = 0x10_0000;

fn frame(name: &str) -> Frame {
    Frame {
        function: Some(name.into()),
        file: None,
        line: None,
    }
}

#[test]
fn top_folds_the_runtimes_own_sites_and_classes() {
    let mut builder = DumpBuilder::new(Vec::new()).unwrap();
    builder.params(&Params::default()).unwrap();
    builder.module(&Module::default()).unwrap();
    builder.stack(1, &[0x4000, 0x4100]).unwrap();
    builder.stack(2, &[0x5000, 0x5100, 0x5200]).unwrap();
    let objects: Vec<(u64, u64, usize)> = (0..5)
        .map(|i| {
            (
                BASE + 0x100 * i,
                if i < 3 { 1 } else { 2 },
                32 + 16 * i as usize,
            )
        })
        .collect();
    let roots: Vec<u8> = objects
        .iter()
        .flat_map(|&(address, _, _)| address.to_le_bytes())
        .collect();
    builder.root_segment(0, 0x7000_0000, &roots).unwrap();
    for &(address, site, size) in &objects {
        builder.object(address, site, &vec![0; size]).unwrap();
    }
    let bytes = builder.finish().unwrap();
    let mut dump = parse(&bytes, &mut |_, _| {}).unwrap();
    for stack in &mut dump.stacks {
        if stack.id.get() == 1 {
            stack.frames = vec![frame("alloc::fmt::format"), frame("app::handle")];
            stack.caller_frame = Some(1);
        } else {
            stack.frames = vec![
                frame("std::rt::lang_start_internal"),
                frame("main"),
                frame("libc.so.6+0x2724a"),
            ];
            stack.caller_frame = Some(1);
        }
    }
    let graph = HeapGraph::build(dump, &mut |_, _| {});
    let analysis = analyze(&graph);
    let options = TopOptions::default();

    let shown = top_with(&graph, &analysis, &options, Internals::Show);
    assert_eq!(shown.by_site.len(), 2);
    assert!(shown
        .by_site
        .iter()
        .all(|row| !row.group.label.starts_with(INTERNALS_LABEL)));

    let folded = top_with(&graph, &analysis, &options, Internals::Fold);
    assert_eq!(folded.site_count, 2);
    let internal: Vec<_> = folded
        .by_site
        .iter()
        .filter(|row| row.group.label.starts_with(INTERNALS_LABEL))
        .collect();
    assert_eq!(internal.len(), 1);
    assert_eq!(
        internal[0].group.label,
        format!("{INTERNALS_LABEL} (1 site)")
    );
    assert_eq!(internal[0].totals.objects, 2);
    assert_eq!(internal[0].totals.shallow_bytes, 80 + 96);
    let program = folded
        .by_site
        .iter()
        .find(|row| row.group.stack_id.map(|id| id.get()) == Some(1))
        .expect("the program's site stays");
    assert_eq!(program.totals.objects, 3);
    // No types: classes are size classes, mixed from both sites, so none
    // is the runtime's alone but the one only std's objects fill.
    let folded_classes: u64 = folded
        .by_class
        .iter()
        .filter(|row| row.group.label.starts_with(INTERNALS_LABEL))
        .map(|row| row.totals.objects)
        .sum();
    let std_only: u64 = shown
        .by_class
        .iter()
        .filter(|row| row.group.label == "65..128 B")
        .map(|row| row.totals.objects)
        .sum();
    assert_eq!(folded_classes, std_only);
    assert!(std_only > 0);

    // The summary marks the same class as the runtime's and sums it.
    let summary = Summary::compute(&graph, 10);
    let marked: Vec<&str> = summary
        .top_classes
        .iter()
        .filter(|class| class.runtime)
        .map(|class| class.name.as_str())
        .collect();
    assert_eq!(marked, ["obj96[?]", "obj80[?]"]);
    assert_eq!(summary.runtime_classes.classes, 2);
    assert_eq!(summary.runtime_classes.totals.objects, 2);
    assert_eq!(summary.runtime_classes.totals.bytes, 80 + 96);
}
