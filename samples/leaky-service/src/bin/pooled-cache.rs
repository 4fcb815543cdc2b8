//! A cache of sessions that come from a pool: each `Session` and its
//! `Profile` is allocated with `std::alloc::alloc` (as arenas and object
//! pools do), so no allocation site names their types. `heapdump` types
//! the sessions from the cache's table (`hash table of (u64,
//! Box<Session>)`), and, when the binary has full debug info (`debug = 2`),
//! the profiles from the sessions' `profile` field, with field names in
//! paths. `tests/tests/type_layouts.rs` builds it so.
//!
//! ```text
//! pooled-cache [--sessions N] --out PATH
//! ```

use std::collections::HashMap;
use std::hint::black_box;
use std::process::ExitCode;

use leaky_service::pooled;

#[global_allocator]
static ALLOC: heapdump::Tracker = heapdump::Tracker::system();

/// A cached session, from the pool.
pub struct Session {
    /// The session's id.
    pub id: u64,
    /// Its user's name.
    pub user: String,
    /// What it keeps for the user.
    pub payload: Vec<u8>,
    /// The user's profile, from the pool too.
    pub profile: Box<Profile>,
}

/// A user's profile.
pub struct Profile {
    /// A score.
    pub score: u64,
    /// Tags.
    pub tags: Vec<u32>,
}

fn main() -> ExitCode {
    let mut sessions = 1_000u64;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sessions" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => sessions = n,
                None => {
                    eprintln!("pooled-cache: --sessions needs a number");
                    return ExitCode::from(2);
                }
            },
            "--out" => out = args.next(),
            _ => {
                eprintln!("usage: pooled-cache [--sessions N] --out PATH");
                return ExitCode::from(2);
            }
        }
    }
    let Some(out) = out else {
        eprintln!("usage: pooled-cache [--sessions N] --out PATH");
        return ExitCode::from(2);
    };
    let mut cache: HashMap<u64, Box<Session>> = HashMap::new();
    for id in 0..sessions {
        let profile = pooled(Profile {
            score: id * 7,
            tags: vec![1, 2, 3],
        });
        let session = pooled(Session {
            id,
            user: format!("user-{id}"),
            payload: vec![7; 100],
            profile,
        });
        cache.insert(id, session);
    }
    match heapdump::write_file(&out) {
        Ok(written) => {
            println!(
                "pooled-cache: {sessions} sessions, wrote {out} ({} objects)",
                written.objects
            );
            black_box(&cache);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("pooled-cache: {error}");
            ExitCode::FAILURE
        }
    }
}
