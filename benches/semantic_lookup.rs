//! The semantic cache's lookup cost: one exact cosine scan over 1,000 and 10,000 stored questions,
//! every entry under the same digest (the worst case: all are candidates), at the dimensions of
//! common embedding models. Prints a markdown table (or JSON with `--json`); asserts nothing.
//!
//!   cargo bench --bench semantic_lookup [-- --json] [-- --quick]
//!
//! Built with the release profile, the one the wasm ships with (`opt-level = "z"`).

use std::hint::black_box;
use std::time::Instant;
use sturdy_llm::core::semantic::SemanticIndex;

/// A deterministic pseudo-random vector (xorshift), components in -1..1.
fn vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dims)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

struct Row {
    entries: usize,
    dims: usize,
    median_us: f64,
    min_us: f64,
    hit: bool,
    /// An insert into the full index (a new question: the oldest entry is evicted).
    insert_us: f64,
}

fn measure(entries: usize, dims: usize, rounds: usize) -> Row {
    let digest = [7u8; 32];
    let mut index = SemanticIndex::new(entries, usize::MAX);
    for i in 0..entries {
        index.insert(digest, &vector(i as u64 + 1, dims), i, 1000);
    }
    // A paraphrase of the entry in the middle: its vector plus some noise.
    let noise = vector(u64::MAX, dims);
    let query: Vec<f32> = vector(entries as u64 / 2 + 1, dims)
        .iter()
        .zip(&noise)
        .map(|(x, n)| x + 0.2 * n)
        .collect();
    let mut hit = false;
    for _ in 0..3 {
        hit = index.lookup(&digest, black_box(&query), 0.9).is_some();
    }
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            black_box(index.lookup(&digest, black_box(&query), 0.9));
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let mut inserts: Vec<f64> = (0..rounds)
        .map(|i| {
            let fresh = vector((entries + i) as u64 + 1, dims);
            let started = Instant::now();
            index.insert(digest, black_box(&fresh), i, 1000);
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    inserts.sort_by(f64::total_cmp);
    Row {
        entries,
        dims,
        median_us: times[times.len() / 2],
        min_us: times[0],
        hit,
        insert_us: inserts[inserts.len() / 2],
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let quick =
        args.iter().any(|a| a == "--quick") || std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let mut rows = Vec::new();
    for dims in [384, 1536, 3072] {
        for entries in [1_000, 10_000] {
            let rounds = match (quick, entries) {
                (true, 1_000) => 50,
                (true, _) => 10,
                (false, 1_000) => 400,
                (false, _) => 60,
            };
            rows.push(measure(entries, dims, rounds));
        }
    }
    if json {
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"entries\":{},\"dims\":{},\"medianUs\":{:.1},\"minUs\":{:.1},\"hit\":{},\"insertUs\":{:.1}}}",
                    r.entries, r.dims, r.median_us, r.min_us, r.hit, r.insert_us
                )
            })
            .collect();
        println!("[{}]", items.join(","));
        return;
    }
    println!(
        "| entries | dimensions | lookup, median | fastest | per entry | hit | insert, median |"
    );
    println!("|--:|--:|--:|--:|--:|:-:|--:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} µs | {:.0} µs | {:.0} ns | {} | {:.1} µs |",
            r.entries,
            r.dims,
            r.median_us,
            r.min_us,
            r.median_us * 1000.0 / r.entries as f64,
            if r.hit { "yes" } else { "no" },
            r.insert_us
        );
    }
}
