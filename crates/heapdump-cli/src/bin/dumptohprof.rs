//! `dumptohprof DUMP [BIN] heap.hprof`: converts a heap dump to HPROF for
//! VisualVM or Eclipse MAT, with the argument order of Go's converter. The
//! same code as `heapdump hprof`.

#[allow(dead_code)]
#[path = "../load.rs"]
mod load;

#[allow(dead_code)]
#[path = "../convert.rs"]
mod convert;

use clap::Parser;

/// What the shared modules return.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> std::process::ExitCode {
    let command = convert::HprofCommand::parse();
    convert::exit_code("dumptohprof", convert::run_hprof(&command.args))
}
