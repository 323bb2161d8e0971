//! P1: the cost of one authorization decision on a province-sized store.
//!
//! One decision is what the proxy does for every request to a module
//! (`proxy/gateway.rs` `authorize`): `App::resolve_session` (keyed hash of the token,
//! session record, officer record, timeouts), the officer's roles, the Cedar entities and
//! `PolicyEngine::authorize_module`. Sessions belong to 20 000 officers sampled uniformly
//! from the whole store, used in turn, so the sled page cache sees a realistic spread.
//!
//! Two configurations: *warm*, the gateway as configured (a live session's records are
//! kept decoded in the session cache after its first request), and *cold*, with the
//! session cache off, so every decision reads and decodes the session and officer
//! records from sled (what the first request of each session costs).
//!
//! The `App` calls are async: each measured call runs to completion with `block_on` on
//! one current-thread tokio runtime, built before anything is timed. On sled a decision
//! never waits (sled reads are synchronous), so the future is ready at its first poll and
//! `block_on` adds only its own fixed cost to each call.
//!
//! Criterion measures the mean/median of each variant; a second pass times 200 000 single
//! decisions to give the median and the tail (p99, p99.9), which criterion does not
//! report. Environment: `TAXGATE_BENCH_DATA` (bench data dir, default
//! `target/bench-data/e100000-o500000-s2026`, generated if missing),
//! `TAXGATE_BENCH_OUT` (if set, the percentiles are also written there as
//! `decision.json`).

#[path = "data.rs"]
mod data;

use criterion::{black_box, Criterion};
use std::path::PathBuf;
use std::time::Instant;
use taxgate::app::App;
use taxgate::auth::officers::facts;
use taxgate::store::records::Officer;
use tokio::runtime::Runtime;

const SESSIONS: usize = 20_000;

struct Fixture {
    app: App,
    now: i64,
    officers: Vec<Officer>,
    deny_officers: Vec<Officer>,
}

/// Session cache capacity of the warm configuration (the gateway's default).
const CACHE_ON: usize = 50_000;

fn fixture(rt: &Runtime, session_cache_entries: usize) -> Fixture {
    let base = std::env::var_os("TAXGATE_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| data::repo_dir().join("target/bench-data/e100000-o500000-s2026"));
    let params = data::Params {
        enterprises: 100_000,
        officers: 500_000,
        seed: 2026,
        generator: data::GENERATOR,
    };
    let m = match data::read_manifest(&base) {
        Some(m) => m,
        None => {
            eprintln!("generating {} …", base.display());
            data::ensure(&base, params).expect("generate store")
        }
    };
    eprintln!(
        "store: {} enterprises, {} officers, {} persons ({})",
        m.params.enterprises,
        m.officers,
        m.persons,
        base.display()
    );
    let mut config = data::config(&data::store_dir(&base), Vec::new());
    config.session_cache_entries = session_cache_entries;
    let app = App::open(config).expect("open app");
    let now = taxgate::clock::now();
    rt.block_on(data::prepare(&app, &m, SESSIONS, 0, now))
        .expect("sessions");
    let load = |token: &dyn Fn(usize) -> String| -> Vec<Officer> {
        (0..SESSIONS)
            .map(|i| {
                rt.block_on(app.resolve_session(&token(i), now))
                    .expect("resolve")
                    .expect("live session")
                    .officer()
                    .clone()
            })
            .collect()
    };
    let officers = load(&data::allow_token);
    let deny_officers = load(&data::deny_token);
    Fixture {
        app,
        now,
        officers,
        deny_officers,
    }
}

/// The full decision for the session behind `token`: true when Cedar permits.
async fn decide(app: &App, token: &str, now: i64) -> bool {
    let Ok(Some(ctx)) = app.resolve_session(token, now).await else {
        return false;
    };
    let roles = ctx.officer().role_names();
    app.policy
        .authorize_module(
            &facts(ctx.officer(), &roles, ctx.session().login),
            data::MODULE,
        )
        .is_allowed()
}

fn cedar_only(app: &App, officer: &Officer) -> bool {
    let roles = officer.role_names();
    app.policy
        .authorize_module(&facts(officer, &roles, Default::default()), data::MODULE)
        .is_allowed()
}

type Variant<'a> = (&'a str, &'a dyn Fn(usize) -> bool);

fn main() {
    data::run_chunk_if_asked();
    let allow: Vec<String> = (0..SESSIONS).map(data::allow_token).collect();
    let deny: Vec<String> = (0..SESSIONS).map(data::deny_token).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut c = Criterion::default().configure_from_args();
    let mut report = serde_json::Map::new();
    {
        let f = fixture(&rt, CACHE_ON);
        // Sanity: the samples decide as the manifest says.
        assert!(allow
            .iter()
            .take(500)
            .all(|t| rt.block_on(decide(&f.app, t, f.now))));
        assert!(deny
            .iter()
            .take(500)
            .all(|t| !rt.block_on(decide(&f.app, t, f.now))));
        let mut g = c.benchmark_group("decision");
        let mut i = 0usize;
        g.bench_function("full_permit", |b| {
            b.iter(|| {
                i = (i + 1) % SESSIONS;
                black_box(rt.block_on(decide(&f.app, &allow[i], f.now)))
            })
        });
        g.bench_function("full_deny", |b| {
            b.iter(|| {
                i = (i + 1) % SESSIONS;
                black_box(rt.block_on(decide(&f.app, &deny[i], f.now)))
            })
        });
        g.bench_function("session_lookup_only", |b| {
            b.iter(|| {
                i = (i + 1) % SESSIONS;
                black_box(rt.block_on(f.app.resolve_session(&allow[i], f.now)).ok())
            })
        });
        g.bench_function("cedar_only", |b| {
            b.iter(|| {
                i = (i + 1) % SESSIONS;
                black_box(cedar_only(&f.app, &f.officers[i]))
            })
        });
        g.bench_function("cedar_only_deny", |b| {
            b.iter(|| {
                i = (i + 1) % SESSIONS;
                black_box(cedar_only(&f.app, &f.deny_officers[i]))
            })
        });
        g.finish();
        let variants: [Variant; 4] = [
            ("full_permit", &|i| {
                rt.block_on(decide(&f.app, &allow[i % SESSIONS], f.now))
            }),
            ("full_deny", &|i| {
                rt.block_on(decide(&f.app, &deny[i % SESSIONS], f.now))
            }),
            ("session_lookup_only", &|i| {
                rt.block_on(f.app.resolve_session(&allow[i % SESSIONS], f.now))
                    .is_ok()
            }),
            ("cedar_only", &|i| {
                cedar_only(&f.app, &f.officers[i % SESSIONS])
            }),
        ];
        percentiles(&variants, &mut report);
    }
    {
        // The App above is dropped: sled lets one process open a store once at a time.
        let f = fixture(&rt, 0);
        let mut g = c.benchmark_group("decision_cold");
        let mut i = 0usize;
        g.bench_function("full_permit", |b| {
            b.iter(|| {
                i = (i + 1) % SESSIONS;
                black_box(rt.block_on(decide(&f.app, &allow[i], f.now)))
            })
        });
        g.finish();
        let variants: [Variant; 2] = [
            ("full_permit_cold", &|i| {
                rt.block_on(decide(&f.app, &allow[i % SESSIONS], f.now))
            }),
            ("full_deny_cold", &|i| {
                rt.block_on(decide(&f.app, &deny[i % SESSIONS], f.now))
            }),
        ];
        percentiles(&variants, &mut report);
    }
    c.final_summary();
    if let Some(out) = std::env::var_os("TAXGATE_BENCH_OUT") {
        let path = PathBuf::from(out).join("decision.json");
        let _ = std::fs::write(&path, serde_json::Value::Object(report).to_string());
    }
}

/// Times single calls of each variant: median and tail, printed and added to `report`.
fn percentiles(variants: &[Variant], report: &mut serde_json::Map<String, serde_json::Value>) {
    let n: usize = std::env::var("TAXGATE_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    println!("\nsingle-decision latency, {n} samples each (µs)");
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "variant", "median", "p90", "p99", "p99.9", "max"
    );
    for (name, run) in variants {
        for i in 0..n / 10 {
            black_box(run(i));
        }
        let mut t = Vec::with_capacity(n);
        for i in 0..n {
            let s = Instant::now();
            black_box(run(i));
            t.push(s.elapsed().as_nanos() as f64 / 1000.0);
        }
        t.sort_by(f64::total_cmp);
        let q = |p: f64| t[((t.len() as f64 * p) as usize).min(t.len() - 1)];
        let (p50, p90, p99, p999, max) = (q(0.5), q(0.9), q(0.99), q(0.999), t[t.len() - 1]);
        println!("{name:<22} {p50:>8.2} {p90:>8.2} {p99:>8.2} {p999:>8.2} {max:>8.1}");
        report.insert(
            name.to_string(),
            serde_json::json!({"median_us": p50, "p90_us": p90, "p99_us": p99,
                               "p999_us": p999, "max_us": max, "samples": n}),
        );
    }
}
