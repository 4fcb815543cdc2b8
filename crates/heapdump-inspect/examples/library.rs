//! The five biggest classes of a heap dump by retained size, through the
//! library's public API alone:
//!
//! ```sh
//! cargo run --release --example library -- DUMP [BIN]
//! ```
//!
//! DUMP is any dump heapdump reads (a heapdump-rs `.hdump`, a Go heap
//! dump); BIN is the dumped program's executable, for names the dump's
//! recorded paths cannot give (a Go binary, a moved Rust one).

use std::process::ExitCode;

use heapdump_inspect::analysis::top::{top, TopOptions, TopOrder};
use heapdump_inspect::{Heap, NoProgress, Options};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dump), binary, None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: library DUMP [BIN]");
        return ExitCode::FAILURE;
    };
    let options = Options {
        binary: binary.map(Into::into),
        ..Options::default()
    };
    let heap = match Heap::open(&dump, &options, &mut NoProgress) {
        Ok(heap) => heap,
        Err(err) => {
            eprintln!("library: {err}");
            return ExitCode::FAILURE;
        }
    };
    let report = top(
        heap.graph(),
        heap.analysis(),
        &TopOptions {
            limit: 5,
            order: TopOrder::Retained,
        },
    );
    println!(
        "{:<50} {:>10} {:>14} {:>14}",
        "class", "objects", "shallow", "retained"
    );
    for row in &report.by_class {
        println!(
            "{:<50} {:>10} {:>14} {:>14}",
            row.group.label,
            row.totals.objects,
            row.totals.shallow_bytes,
            row.totals.retained_bytes
        );
    }
    ExitCode::SUCCESS
}
