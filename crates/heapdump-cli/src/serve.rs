//! `heapdump serve`: the heap in a browser (the pages and the API are
//! `heapdump-server`'s; this opens the dumps with progress on the terminal,
//! prints the URL and serves until interrupted).

use std::net::SocketAddr;
use std::path::PathBuf;

use heapdump_inspect::reader::looks_like_dump;
use heapdump_server::{start, App};

use crate::{load, Result};

/// The default address: loopback, jhat's port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";

/// Arguments of `heapdump serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The heap dump to show (heapdump-rs, Go or HPROF); with a second dump
    /// after it, the older of two (the diff view).
    pub dump: PathBuf,
    /// The dumped program's executable (the same as `--bin BIN`), or, if it
    /// is a heap dump, the newer dump: `heapdump serve OLD NEW` also shows
    /// what grew (`/diff`).
    #[arg(value_name = "BIN|NEW")]
    pub second: Option<PathBuf>,
    /// Address to listen on. The default, 127.0.0.1:7000, is reachable only
    /// from this machine; the pages show the heap's contents (secrets), so
    /// think twice before listening on another interface.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Worker threads answering requests.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub threads: usize,
    /// Naming frames and types from binaries.
    #[command(flatten)]
    pub symbols: load::SymbolArgs,
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Runs `heapdump serve`.
pub fn run(args: &Args) -> Result<()> {
    let diff_with = args.second.as_ref().filter(|path| looks_like_dump(path));
    let mut app = match diff_with {
        Some(new) => {
            let old_heap = load::open(&args.dump, &args.symbols, true)?;
            let new_heap = load::open(new, &args.symbols, true)?;
            load::report("indexing both dumps for the pages", || {
                App::with_diff(old_heap, file_name(&args.dump), new_heap, file_name(new))
            })
        }
        None => {
            let symbols = load::symbols_with(args.second.as_deref(), &args.symbols)?;
            let heap = load::open(&args.dump, &symbols, true)?;
            load::report("indexing the dump for the pages", || {
                App::new(heap, file_name(&args.dump))
            })
        }
    };
    let loopback = args.addr.ip().is_loopback();
    app.any_host = !loopback;
    if !loopback {
        eprintln!(
            "heapdump: warning: listening on {}, not a loopback address: anyone who can reach it \
             sees the heap's contents, which may hold secrets (keys, tokens, personal data)",
            args.addr
        );
    }
    let running = start(app, args.addr, args.threads)?;
    let shown = running.address;
    println!("heapdump: serving on http://{shown}/ (Ctrl-C to stop)");
    running.wait();
    Ok(())
}
