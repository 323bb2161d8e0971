//! The soak drill (issue 18; tests/drills/README.md): `TAXGATE_DRILL_SOAK_SECONDS` (CI 60,
//! `tests/drills/run` 600) of mixed load at 64 connections — SMS logins, captchas, grant
//! changes, logouts, and proxied module requests of the logged-in officers — then every
//! acknowledged write checked (harness/crowd.rs), after the load and after `kill -9` +
//! restart. Fails on any unanswered call, any answer outside those listed, any lost write,
//! and on growth of the gateway's resident set (> ×1.5) or open descriptors (> +64) from
//! the end of the warm-up to the end of the load.
//!
//! The per-address request window and connection cap are raised (harness `CROWD_LIMITS`:
//! every call comes from 127.0.0.1), and captchas and sessions live a day, so what was
//! acknowledged early in a long run is still due at the end.

use super::length;
use crate::harness::crowd::{self, Crowd, Effect, Slot, BURST, OFFICERS_A};
use crate::harness::{Browser, Gateway};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one worker leaves: the effects of its acknowledged writes.
type Effects = Vec<Effect>;

/// Steps of a worker, in turn: mostly proxied requests, a login, a captcha, a grant
/// change and a logout every ten.
#[derive(Clone, Copy)]
enum Step {
    Login,
    Proxied,
    Captcha,
    Grant,
    Logout,
}

const STEPS: [Step; 10] = [
    Step::Login,
    Step::Proxied,
    Step::Proxied,
    Step::Captcha,
    Step::Proxied,
    Step::Grant,
    Step::Proxied,
    Step::Proxied,
    Step::Proxied,
    Step::Logout,
];

/// One of the 64 workers: its own connection (browser), an officer of A, steps in turn
/// until `stop`; answers outside those listed go to `failed`.
async fn worker(
    w: usize,
    cx: Arc<Crowd>,
    mut b: Browser,
    stop: Arc<AtomicBool>,
    failed: Arc<Mutex<Vec<String>>>,
) -> Effects {
    let who = OFFICERS_A[w % OFFICERS_A.len()];
    // 赵敏 and 钱进 manage A and may use every module; the grants change the others'.
    let proxied_ok: &[u16] = if w % OFFICERS_A.len() < 2 {
        &[200]
    } else {
        &[200, 403]
    };
    let mut effects = Vec::new();
    let mut open: Option<Effect> = None;
    let mut n = w;
    while !stop.load(Ordering::SeqCst) {
        let step = STEPS[n % STEPS.len()];
        n += 1;
        let result = match step {
            Step::Login => {
                effects.extend(open.take());
                cx.login(&mut b, &who).await.map(|()| {
                    open = Some(Effect::Session {
                        cookie: b.cookie.clone().unwrap_or_default(),
                        name: who.name.to_string(),
                    });
                })
            }
            Step::Proxied if open.is_some() => proxied(&cx, &b, n, proxied_ok).await,
            Step::Captcha => cx.captcha(&b).await.map(|(id, answer)| {
                effects.push(Effect::Captcha { id, answer });
            }),
            Step::Grant => {
                let mut admin = b.sibling();
                cx.serialized_grant(&mut admin, n)
                    .await
                    .map(|e| effects.push(e))
            }
            Step::Logout if open.is_some() => {
                let r = cx.send(&b, "POST", "/api/v1/logout", None).await;
                r.and_then(|r| crowd::accept("logout", r, &[204])).map(|_| {
                    open = None;
                    effects.push(Effect::LoggedOut {
                        cookie: b.cookie.take().unwrap_or_default(),
                    });
                })
            }
            Step::Proxied | Step::Logout => Ok(()),
        };
        if let Err(e) = result {
            failed.lock().unwrap().push(e);
        }
    }
    effects.extend(open);
    effects
}

/// A GET and a POST to modules: 200, or 403 for an officer whose grants changed.
async fn proxied(cx: &Crowd, b: &Browser, n: usize, ok: &[u16]) -> Result<(), String> {
    let r = cx
        .send(b, "GET", &format!("/tax/zzs/declare?n={n}"), None)
        .await?;
    crowd::accept("proxied GET", r, ok)?;
    let body = serde_json::json!({"period": "2026-11", "n": n});
    let r = cx
        .send(b, "POST", "/query/sbxx/search", Some(&body))
        .await?;
    crowd::accept("proxied POST", r, ok)?;
    Ok(())
}

#[tokio::test]
async fn soak_mixed_load_at_64_connections_loses_nothing_and_stays_flat() {
    let seconds = length("TAXGATE_DRILL_SOAK_SECONDS", 60) as u64;
    let dir = tempfile::tempdir().unwrap();
    let people = crowd::people(8);
    let options = crowd::options(
        dir.path(),
        &people,
        "captcha_seconds: 86400, session_idle_seconds: 86400",
    );
    let mut gw = Gateway::start_with(options).await;
    let cx = Arc::new(Crowd::new(&gw, people).await.expect("the soak's admin"));
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..BURST)
        .map(|w| {
            let b = Slot::alone(Browser::new(&gw), w).b;
            tokio::spawn(worker(w, cx.clone(), b, stop.clone(), failed.clone()))
        })
        .collect();

    // Warm-up: a tenth of the run, at least 5 s (caches, pools, connections filled).
    let total = Duration::from_secs(seconds.max(10));
    let warm_up = (total / 10).max(Duration::from_secs(5));
    tokio::time::sleep(warm_up).await;
    let (rss0, fds0) = crowd::process_stats(gw.pid());
    tokio::time::sleep(total.saturating_sub(started.elapsed())).await;
    let (rss1, fds1) = crowd::process_stats(gw.pid());
    stop.store(true, Ordering::SeqCst);
    let mut effects = Vec::new();
    for w in workers {
        effects.extend(w.await.expect("a soak worker panicked"));
    }
    let load = started.elapsed();
    let requests = cx.tally.requests.load(Ordering::SeqCst);
    let (p50, p99) = cx.tally.percentiles();
    let unanswered = cx.tally.unanswered.lock().unwrap().clone();
    let failed = failed.lock().unwrap().clone();

    let before = crowd::check(&gw, &cx, &effects, false).await;
    gw.crash_and_restart();
    let after = crowd::check(&gw, &cx, &effects, true).await;
    let lost = before.lost.len() + after.lost.len();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "soak drill: {:.0} s at {BURST} connections: {requests} requests ({:.0}/s), \
         p50 {:.1} ms, p99 {:.1} ms; unanswered {}; refused {}; lost writes {lost} \
         ({} writes, {} checks after the load, {} after kill -9 + restart); \
         RSS {:.1} → {:.1} MiB, fds {fds0} → {fds1} (after a {:.0} s warm-up)",
        load.as_secs_f64(),
        requests as f64 / load.as_secs_f64(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        unanswered.len(),
        failed.len(),
        effects.len(),
        before.checks,
        after.checks,
        mib(rss0),
        mib(rss1),
        warm_up.as_secs_f64()
    );
    let log = gw.stderr();
    let logged: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    let logged = logged[logged.len().saturating_sub(20)..].join("\n");
    assert!(
        unanswered.is_empty(),
        "{} calls unanswered, the first: {:#?}\nthe gateway's warnings and errors (last \
         20):\n{logged}",
        unanswered.len(),
        &unanswered[..unanswered.len().min(5)]
    );
    assert!(
        failed.is_empty(),
        "{} answers not listed, the first: {:#?}\nthe gateway's warnings and errors \
         (last 20):\n{logged}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        lost == 0,
        "lost after the load: {:#?}\nlost after kill -9 + restart: {:#?}",
        &before.lost[..before.lost.len().min(10)],
        &after.lost[..after.lost.len().min(10)]
    );
    assert!(rss0 > 0 && fds0 > 0, "no /proc figures of the gateway");
    assert!(
        rss1 as f64 <= rss0 as f64 * 1.5,
        "RSS grew {:.1} → {:.1} MiB",
        mib(rss0),
        mib(rss1)
    );
    assert!(fds1 <= fds0 + 64, "open fds grew {fds0} → {fds1}");
}
