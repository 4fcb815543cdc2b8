//! Time to symbolise a dump with 100k distinct allocation-site stacks
//! (docs/PERFORMANCE.md, "Symbolisation"): the stacks' return addresses
//! are drawn from this benchmark's own code, so it symbolises against its
//! own executable (the release profile's line tables).
//!
//! `cargo bench -p heapdump-symbols --bench symbolize`

use std::time::Instant;

use heapdump_format::builder::{DumpBuilder, Module, ModuleRange, Params};
use heapdump_reader::parse;
use heapdump_symbols::symbolize::{infer_types, Symbolizer};
use heapdump_symbols::Binary;

const STACKS: u64 = 100_000;
const DEPTH: usize = 16;
const POOL: usize = 40_000;

fn main() {
    let exe = std::env::current_exe().expect("own executable");
    let binary = Binary::open(&exe).expect("own executable readable");
    // Return addresses: points inside this binary's functions, at link-time
    // addresses (load bias 0 in the synthetic dump).
    let code: Vec<(u64, u64)> = binary
        .symbols()
        .iter()
        .filter(|symbol| symbol.is_code && symbol.size > 8)
        .map(|symbol| (symbol.address, symbol.size))
        .collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pool: Vec<u64> = (0..POOL)
        .map(|_| {
            let (address, size) = code[(next() % code.len() as u64) as usize];
            address + 1 + next() % (size - 1)
        })
        .collect();
    let low = code.iter().map(|c| c.0).min().unwrap_or(0);
    let high = code.iter().map(|c| c.0 + c.1).max().unwrap_or(0);

    let path = exe.to_string_lossy().into_owned();
    let mut dump = DumpBuilder::new(Vec::new()).unwrap();
    dump.params(&Params {
        executable: &path,
        build_id: binary.build_id(),
        sample_rate: 1,
        ..Params::default()
    })
    .unwrap();
    dump.module(&Module {
        module_id: 0,
        path: &path,
        build_id: binary.build_id(),
        load_bias: 0,
        ranges: &[ModuleRange {
            start: low,
            size: high - low,
            flags: 5,
        }],
    })
    .unwrap();
    for id in 1..=STACKS {
        let pcs: Vec<u64> = (0..DEPTH)
            .map(|_| pool[(next() % POOL as u64) as usize])
            .collect();
        dump.stack(id, &pcs).unwrap();
    }
    for id in 1..=STACKS {
        dump.object(0x1000_0000 + id * 64, id, &[0u8; 48]).unwrap();
    }
    let bytes = dump.finish().unwrap();

    let mut dump = parse(&bytes, &mut |_, _| {}).unwrap();
    let start = Instant::now();
    let symbolizer = Symbolizer::new(&dump, Some(binary)).unwrap();
    let stats = symbolizer.symbolize(&mut dump, &mut |_, _| {});
    let symbolised = start.elapsed();
    let types = infer_types(&mut dump);
    let total = start.elapsed();
    let frames: usize = dump.stacks.iter().map(|stack| stack.frames.len()).sum();
    println!(
        "symbolize: {} stacks x {DEPTH} pcs, {} distinct pcs ({} named), {frames} frames: \
         {:.2} s symbolising, {:.2} s with type inference ({} objects typed), {} threads",
        stats.stacks,
        stats.pcs,
        stats.named_pcs,
        symbolised.as_secs_f64(),
        total.as_secs_f64(),
        types.typed_objects,
        rayon::current_num_threads(),
    );
}
