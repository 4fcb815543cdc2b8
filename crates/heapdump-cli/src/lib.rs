//! The `heapdump` command line as a library: each subcommand's module holds
//! its clap `Args` and its `run` (parse the arguments, call the library,
//! print); `load` opens a dump with the library's pipeline
//! (`heapdump_inspect::Heap`), with progress bars on stderr. The binaries `heapdump`, `dumptohprof` and
//! `dumptodot` are thin `main`s over this.

// Doc comments here are clap's help texts: `DUMP [BIN]` is usage, not a link.
#![allow(rustdoc::broken_intra_doc_links)]
#![warn(missing_docs)]

pub mod convert;
pub mod describe;
pub mod diff;
pub mod human;
pub mod leaks;
pub mod load;
pub mod path;
pub mod pprof;
pub mod retained;
pub mod serve;
pub mod summary;
pub mod top;

use std::io::Write;
use std::process::ExitCode;

/// What a subcommand returns: any error is printed as `program: error: …`.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The exit code for a subcommand's `result`, after printing any error as
/// `program: error: …`. A reader that went away (`heapdump summary x |
/// head`) is not an error.
pub fn exit_code(program: &str, result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(err.as_ref()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "{program}: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &(dyn std::error::Error + 'static)) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|err| err.kind() == std::io::ErrorKind::BrokenPipe)
}
