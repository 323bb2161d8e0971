//! Concurrency through the real gateway (issue 18): bursts of 64 parallel calls of every
//! writing kind (harness/crowd.rs: captcha, real-name start, stage 1, SMS, stage 2,
//! logout, grants, 企业用户注册), on sled or PostgreSQL as the run says.
//!
//! The gateway's `limits.ip_requests_per_minute` and `limits.connections_per_ip` are raised
//! (harness `CROWD_LIMITS`): every call comes from 127.0.0.1, and the per-address limits
//! would otherwise refuse the crowd itself. `sms_resend_seconds: 0` lets one officer
//! receive several login codes at once.

use crate::harness::crowd::{self, Burst, Crowd, KindFigures, BURST, KINDS};
use crate::harness::Gateway;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rounds of bursts (one of each kind) are sent until this much time has passed (the
/// first round whole).
const LOAD: Duration = Duration::from_secs(10);

/// Every call is answered within its deadline with an answer its kind lists (never a
/// 5xx, never unanswered), and every acknowledged write is found after the bursts and
/// again after a `kill -9` + restart.
#[tokio::test]
async fn bursts_of_64_calls_of_every_writing_kind_are_answered_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let people = crowd::people(4096);
    let mut gw = Gateway::start_with(crowd::options(dir.path(), &people, "")).await;
    let cx = Arc::new(Crowd::new(&gw, people).await.expect("the crowd's admin"));

    let started = Instant::now();
    let mut figures: Vec<KindFigures> = KINDS.iter().map(|_| KindFigures::default()).collect();
    let (mut effects, mut failed) = (Vec::new(), Vec::new());
    let mut rounds = 0;
    'load: loop {
        cx.round.store(rounds, Ordering::SeqCst);
        for (kind, fig) in KINDS.iter().zip(&mut figures) {
            if rounds > 0 && started.elapsed() >= LOAD {
                break 'load;
            }
            let Burst { done, failed: f } = crowd::burst(&gw, &cx, kind, BURST).await;
            for d in done {
                fig.add(&d);
                effects.extend(d.effect);
            }
            failed.extend(f.into_iter().map(|e| format!("{}: {e}", kind.name)));
        }
        rounds += 1;
    }
    let load = started.elapsed();
    let (p50, p99) = cx.tally.percentiles();
    println!(
        "crowd: {rounds} rounds of {BURST}-call bursts (the last may be partial) in {:.1} s, {} requests in all \
         (p50 {:.1} ms, p99 {:.1} ms), {} failed",
        load.as_secs_f64(),
        cx.tally.requests.load(Ordering::SeqCst),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        failed.len()
    );
    for (kind, fig) in KINDS.iter().zip(&figures) {
        println!("crowd: {}: {}", kind.name, fig.line());
    }
    assert!(
        failed.is_empty(),
        "{} calls failed, by kind {:?}; the first: {:#?}\n{}",
        failed.len(),
        count_by_kind(&failed),
        &failed[..failed.len().min(5)],
        gateway_errors(&gw)
    );

    let checking = Instant::now();
    let before = crowd::check(&gw, &cx, &effects, false).await;
    gw.crash_and_restart();
    let after = crowd::check(&gw, &cx, &effects, true).await;
    println!(
        "crowd: {} writes acknowledged; {} checks after the bursts, {} after kill -9 + \
         restart ({:.1} s); lost {} + {}",
        effects.len(),
        before.checks,
        after.checks,
        checking.elapsed().as_secs_f64(),
        before.lost.len(),
        after.lost.len()
    );
    assert!(
        before.lost.is_empty() && after.lost.is_empty(),
        "lost after the bursts: {:#?}\nlost after kill -9 + restart: {:#?}\n{}",
        &before.lost[..before.lost.len().min(10)],
        &after.lost[..after.lost.len().min(10)],
        gateway_errors(&gw)
    );
}

/// `kind: …` failures counted by kind.
fn count_by_kind(failed: &[String]) -> std::collections::BTreeMap<&str, usize> {
    let mut n = std::collections::BTreeMap::new();
    for f in failed {
        *n.entry(f.split(':').next().unwrap_or("")).or_default() += 1;
    }
    n
}

/// The gateway's logged warnings and errors (the last 40 lines).
fn gateway_errors(gw: &Gateway) -> String {
    let log = gw.stderr();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `clients` (each a browser and the body it sends) sending `method path` back to back
/// for 2.5 s, so across second boundaries: (acknowledged, refused).
/// Fails with every refusal's count, the first of them and the gateway's warnings when
/// any of a stream's calls was refused.
#[track_caller]
fn none_refused<T: std::fmt::Debug>(gw: &Gateway, sent: usize, refused: &[T]) {
    assert!(
        refused.is_empty(),
        "{} of {} refused, the first: {:?}\nthe gateway's warnings and errors:\n{}",
        refused.len(),
        sent + refused.len(),
        refused.first(),
        gateway_errors(gw)
    );
}

async fn streams(
    cx: &Arc<Crowd>,
    clients: Vec<(crate::harness::Browser, Option<serde_json::Value>)>,
    method: &'static str,
    path: &'static str,
) -> (usize, Vec<String>) {
    let until = Instant::now() + Duration::from_millis(2500);
    let mut senders = tokio::task::JoinSet::new();
    for (b, body) in clients {
        let cx = cx.clone();
        senders.spawn(async move {
            let (mut sent, mut refused) = (0usize, Vec::new());
            while Instant::now() < until {
                let r = cx.send(&b, method, path, body.as_ref()).await;
                match r.and_then(|r| crowd::accept(path, r, &[200])) {
                    Ok(_) => sent += 1,
                    Err(e) => refused.push(e),
                }
            }
            (sent, refused)
        });
    }
    let (mut sent, mut refused) = (0, Vec::new());
    while let Some(joined) = senders.join_next().await {
        let (s, r) = joined.unwrap();
        sent += s;
        refused.extend(r);
    }
    (sent, refused)
}

/// A crowd gateway without fixture people, its temp dir (kept alive by the caller) and
/// the crowd's shared state.
async fn small_crowd() -> (tempfile::TempDir, Gateway, Arc<Crowd>) {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(crowd::options(dir.path(), &[], "")).await;
    let cx = Arc::new(
        Crowd::new(&gw, Vec::new())
            .await
            .expect("the crowd's admin"),
    );
    (dir, gw, cx)
}

/// Captchas asked by 64 clients of one address at once, back to back for 2.5 s: every
/// one is issued (the address's request window is one record all of them update).
#[tokio::test]
async fn captchas_asked_by_64_clients_of_one_address_at_once_are_all_issued() {
    let (_dir, gw, cx) = small_crowd().await;
    let clients = (0..BURST)
        .map(|_| (crate::harness::Browser::new(&gw), None))
        .collect();
    let (sent, refused) = streams(&cx, clients, "GET", "/api/v1/captcha").await;
    println!(
        "crowd: captchas from {BURST} clients for 2.5 s: {sent} issued, {} refused",
        refused.len()
    );
    none_refused(&gw, sent, &refused);
}

/// Login codes sent to one phone from 64 tickets at once, again and again for 2.5 s (so
/// across second boundaries), with no resend interval configured: every send is
/// answered 200 and lands in the outbox.
#[tokio::test]
async fn parallel_login_codes_to_one_phone_are_all_sent_without_a_resend_interval() {
    let (_dir, gw, cx) = small_crowd().await;
    let li = crowd::OFFICERS_A[3];
    let mut clients = Vec::new();
    for _ in 0..BURST {
        let b = crate::harness::Browser::new(&gw);
        let s1 = cx
            .stage1(&b, li.account, li.password)
            .await
            .expect("stage 1");
        let body = serde_json::json!({
            "login_ticket": crowd::str_of(&s1, "login_ticket").unwrap(),
            "officer_id": crowd::officer_with_phone(&s1, li.phone).unwrap(),
        });
        clients.push((b, Some(body)));
    }
    let (sent, refused) = streams(&cx, clients, "POST", "/api/v1/login/officer/sms").await;
    let in_outbox = cx.outbox.sms(li.phone, "login").len();
    println!(
        "crowd: login codes to one phone from {BURST} tickets for 2.5 s: {sent} sent, {} refused, \
         {in_outbox} in the outbox",
        refused.len()
    );
    none_refused(&gw, sent, &refused);
    assert_eq!(in_outbox, sent, "every acknowledged code in the outbox");
}
