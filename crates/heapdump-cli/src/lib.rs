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
pub mod waste;

use std::io::Write;
use std::process::ExitCode;

/// What a subcommand returns: any error is printed as `program: error: …`.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Exit code of a command that ran but found what the user asked it to
/// fail on (`heapdump leaks --fail-above`).
pub const EXIT_FOUND: u8 = 3;

/// A command ran and its report is printed, but it found what the user
/// asked it to fail on: exit with [`EXIT_FOUND`] after saying why.
#[derive(Debug)]
pub struct Found(pub String);

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Found {}

/// The exit code for a subcommand's `result`: 0 on success, 1 after
/// printing an error as `program: error: …`, 2 for bad arguments (clap's),
/// [`EXIT_FOUND`] (3) when the command found what it was asked to fail on
/// ([`Found`], printed as `program: …`). A reader that went away
/// (`heapdump summary x | head`) is not an error.
pub fn exit_code(program: &str, result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(err.as_ref()) => ExitCode::SUCCESS,
        Err(err) => match err.downcast::<Found>() {
            Ok(found) => {
                let _ = writeln!(std::io::stderr(), "{program}: {found}");
                ExitCode::from(EXIT_FOUND)
            }
            Err(err) => {
                let _ = writeln!(std::io::stderr(), "{program}: error: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

fn is_broken_pipe(err: &(dyn std::error::Error + 'static)) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|err| err.kind() == std::io::ErrorKind::BrokenPipe)
}
