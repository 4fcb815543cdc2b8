//! `dumptohprof DUMP [BIN] heap.hprof`: converts a heap dump to HPROF for
//! VisualVM or Eclipse MAT, with the argument order of Go's converter. The
//! same code as `heapdump hprof`.

use clap::Parser;
use heapdump_cli::convert;

fn main() -> std::process::ExitCode {
    let command = convert::HprofCommand::parse();
    heapdump_cli::exit_code("dumptohprof", convert::run_hprof(&command.args))
}
