//! `bench-gen`: the data side of the benchmarks (see bench/README.md).
//!
//! ```text
//! bench-gen store   --out BASE [--enterprises 100000] [--officers 500000] [--seed 2026]
//! bench-gen prepare --out BASE [--sessions 2000] [--tickets 20000]
//! bench-gen argon2  [--runs 12]
//! bench-gen requests --addr HOST:PORT --kind allow|deny|none --count N [--sessions 2000] [--expect 200]
//! ```
//!
//! `store` generates the province-sized store (or keeps one made with the same
//! parameters) and prints its manifest summary as one JSON line. `prepare` writes fresh
//! sessions and login tickets into it (see `data::prepare`). `argon2` prints the time of
//! one password verification with the production parameters. `requests` sends exactly N
//! requests, one at a time (bench/requests.rs).

#[path = "data.rs"]
mod data;
#[path = "requests.rs"]
mod requests;

use std::path::PathBuf;
use std::time::Instant;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    data::run_chunk_if_asked();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(arg(&args, "--out", "target/bench-data/default".to_string()));
    let result = match args.first().map(String::as_str) {
        Some("store") => store(&args, &out),
        Some("prepare") => prepare(&args, &out),
        Some("argon2") => argon2(&args),
        Some("requests") => requests::run(&requests::Load {
            addr: &arg(&args, "--addr", "127.0.0.1:6188".to_string()),
            kind: &arg(&args, "--kind", "allow".to_string()),
            count: arg(&args, "--count", 1000),
            sessions: arg(&args, "--sessions", 2000),
            expect: arg(&args, "--expect", 200),
        }),
        _ => Err(
            "usage: bench-gen store|prepare|argon2|requests [options] (see bench/gen.rs)".into(),
        ),
    };
    if let Err(e) = result {
        eprintln!("bench-gen: {e}");
        std::process::exit(1);
    }
}

fn store(args: &[String], out: &std::path::Path) -> Result<(), String> {
    let p = data::Params {
        enterprises: arg(args, "--enterprises", 100_000),
        officers: arg(args, "--officers", 500_000),
        seed: arg(args, "--seed", 2026),
        generator: data::GENERATOR,
    };
    let started = Instant::now();
    let m = if args.iter().any(|a| a == "--force") {
        data::generate(out, p)?
    } else {
        data::ensure(out, p)?
    };
    let bytes = dir_size(&data::store_dir(out));
    println!(
        "{}",
        serde_json::json!({
            "enterprises": m.params.enterprises,
            "officers": m.officers,
            "persons": m.persons,
            "seed": m.params.seed,
            "kinds": m.counts,
            "generate_seconds": m.generate_seconds,
            "this_call_seconds": started.elapsed().as_secs_f64(),
            "store_mib": bytes as f64 / (1024.0 * 1024.0),
        })
    );
    Ok(())
}

fn prepare(args: &[String], out: &std::path::Path) -> Result<(), String> {
    let m = data::read_manifest(out).ok_or("no manifest: run `bench-gen store` first")?;
    let config = data::config(&data::store_dir(out), Vec::new());
    let app = taxgate::app::App::open(config).map_err(|e| e.to_string())?;
    let now = taxgate::clock::now();
    data::block_on(data::prepare(
        &app,
        &m,
        arg(args, "--sessions", 2_000),
        arg(args, "--tickets", 20_000),
        now,
    ))
}

fn argon2(args: &[String]) -> Result<(), String> {
    let hasher = taxgate::crypto::password::Hasher::new(&data::production_argon2())
        .map_err(|e| e.to_string())?;
    let phc = hasher
        .hash_sync(data::PERSON_PASSWORD)
        .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut times: Vec<f64> = Vec::new();
    for _ in 0..arg(args, "--runs", 12usize).max(1) {
        let t = Instant::now();
        let ok = rt
            .block_on(hasher.verify(data::PERSON_PASSWORD, &phc))
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if !ok {
            return Err("verification failed".into());
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            // Only the first run maps the hashing thread's 19 MiB of argon2 memory; the
            // others reuse it, as the gateway's hashing threads do.
            "verify_ms_min": times[0],
            "verify_ms_median": times[times.len() / 2],
            "runs": times,
        })
    );
    Ok(())
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
