//! `dumptodot DUMP [BIN] > heap.dot`: draws what holds a heap dump's memory
//! as Graphviz dot, with the argument order of Go's converter. The same
//! code as `heapdump dot`.

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
    let command = convert::DotCommand::parse();
    convert::exit_code("dumptodot", convert::run_dot(&command.args))
}
