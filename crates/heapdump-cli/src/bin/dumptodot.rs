//! `dumptodot DUMP [BIN] > heap.dot`: draws what holds a heap dump's memory
//! as Graphviz dot, with the argument order of Go's converter. The same
//! code as `heapdump dot`.

use clap::Parser;
use heapdump_cli::convert;

fn main() -> std::process::ExitCode {
    let command = convert::DotCommand::parse();
    heapdump_cli::exit_code("dumptodot", convert::run_dot(&command.args))
}
