//! Single-use secrets spent by many at once (issue 20): the same captcha, login ticket
//! with its SMS code, recovery code and recovery ticket, each sent by 16 clients at the
//! same instant, serve exactly one of them; 16 wrong passwords at once lock the
//! enterprise exactly at the threshold. Every gateway here raises the per-address limit
//! (all clients are 127.0.0.1) so that only the rule under test refuses.

use crate::harness::flows::*;
use crate::harness::fx::*;
use crate::harness::{Browser, Gateway, GatewayOptions, Resp};
use serde_json::json;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

const CROWD: usize = 16;

async fn gateway() -> Gateway {
    Gateway::start_with(GatewayOptions {
        // No 60 s wait between two codes to one phone (王小明 registers, then recovers).
        extra_yaml: "limits: {ip_requests_per_minute: 100000, sms_resend_seconds: 0}".into(),
        ..Default::default()
    })
    .await
}

/// Sends `make(i)` from `CROWD` tasks released together; returns every answer, the
/// `i`th being `make(i)`'s.
async fn at_once<F, Fut>(make: F) -> Vec<Resp>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Resp> + Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(CROWD));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CROWD {
        let (call, start) = (make(i), start.clone());
        tasks.spawn(async move {
            start.wait().await;
            (i, call.await)
        });
    }
    // join_all gives the answers in the order they came.
    let mut answers = tasks.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, r)| r).collect()
}

/// How many answers had each (status, code).
fn tally(answers: &[Resp]) -> BTreeMap<(u16, String), usize> {
    let mut t = BTreeMap::new();
    for r in answers {
        let code = if r.status == 200 || r.status == 204 {
            String::new()
        } else {
            r.code()
        };
        *t.entry((r.status, code)).or_insert(0) += 1;
    }
    t
}

/// Exactly one answer is `ok`; every other one is one of `refusals`.
#[track_caller]
fn exactly_one(answers: &[Resp], ok: u16, refusals: &[(u16, &str)]) {
    let t = tally(answers);
    assert_eq!(t.get(&(ok, String::new())), Some(&1), "{t:?}");
    for ((status, code), _) in t.iter().filter(|((s, _), _)| *s != ok) {
        assert!(
            refusals.contains(&(*status, code.as_str())),
            "unexpected {status} {code}: {t:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_captcha_serves_one_login_however_many_send_it() {
    let gw = gateway().await;
    let b = Browser::new(&gw);
    let (id, answer) = b.captcha().await;
    let body = json!({"account": A_USCC, "password": A_PASSWORD, "captcha_id": id, "captcha_answer": answer});
    let answers = at_once(|_| {
        let (b, body) = (Browser::new(&gw), body.clone());
        async move { b.post("/api/v1/login/enterprise", &body).await }
    })
    .await;
    exactly_one(&answers, 200, &[(400, "CAPTCHA_INVALID")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_login_ticket_and_code_open_one_session() {
    let gw = gateway().await;
    let b = Browser::new(&gw);
    let s1 = b.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let ticket = s1["login_ticket"].as_str().unwrap().to_string();
    let officer = crate::harness::client::officer_id(&s1, LI_PHONE);
    let code = b.login_sms_code(&ticket, &officer, LI_PHONE).await;
    let body =
        json!({"login_ticket": ticket, "officer_id": officer, "method": "sms", "sms_code": code});
    let answers = at_once(|_| {
        // Clients alike (user agent and address): the ticket is bound to its client.
        let (b, body) = (Browser::new(&gw), body.clone());
        async move { b.post("/api/v1/login/officer", &body).await }
    })
    .await;
    exactly_one(
        &answers,
        200,
        &[(401, "TICKET_INVALID"), (400, "SMS_CODE_INVALID")],
    );
    // The one session it opened is Li's.
    let won = answers.iter().find(|r| r.status == 200).unwrap();
    let mut li = Browser::new(&gw);
    li.keep_session(won);
    let v = li.get("/api/v1/session").await.expect(200).json();
    assert_eq!(v["officer"]["name"], LI.name, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_recovery_code_verifies_once_and_one_verified_ticket_resets_once() {
    let gw = gateway().await;
    let b = Browser::new(&gw);
    b.enterprise_user(WANG, PASSWORD, A_USCC, ZHAO.phone).await;
    let (ticket, code) = b.person_recovery_start(WANG.phone).await;
    // Each verifier brings a real-name verification of its own; they share the code.
    let mut verifications = Vec::new();
    for _ in 0..CROWD {
        verifications.push(b.realname(WANG).await);
    }
    let answers = at_once(|i| {
        let b = Browser::new(&gw);
        let body = json!({"recovery_ticket": ticket, "sms_code": code, "realname_verification_id": verifications[i]});
        async move { b.post("/api/v1/recovery/person/verify", &body).await }
    })
    .await;
    exactly_one(
        &answers,
        204,
        &[
            (401, "TICKET_INVALID"),
            (400, "SMS_CODE_INVALID"),
            (400, "REALNAME_FAILED"),
        ],
    );
    // The verified ticket, sent with 16 different new passwords at once: one is set.
    let answers = at_once(|i| {
        let b = Browser::new(&gw);
        let body =
            json!({"recovery_ticket": ticket, "new_password": format!("Parallel#{i:02}-2026")});
        async move { b.post("/api/v1/recovery/person/reset", &body).await }
    })
    .await;
    exactly_one(&answers, 204, &[(401, "TICKET_INVALID")]);
    let winner = answers.iter().position(|r| r.status == 204).unwrap();
    let mut wang = Browser::with_agent(&gw, "wang-after-reset");
    wang.login_by_password(
        A_USCC,
        A_PASSWORD,
        WANG.phone,
        &format!("Parallel#{winner:02}-2026"),
    )
    .await
    .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_at_once_lock_exactly_at_the_threshold() {
    let gw = gateway().await;
    let b = Browser::new(&gw);
    let mut captchas = Vec::new();
    for _ in 0..CROWD {
        captchas.push(b.captcha().await);
    }
    let answers = at_once(|i| {
        let b = Browser::new(&gw);
        let (id, answer) = captchas[i].clone();
        let body = json!({"account": A_USCC, "password": format!("Wrong-{i}"), "captcha_id": id, "captcha_answer": answer});
        async move { b.post("/api/v1/login/enterprise", &body).await }
    })
    .await;
    let t = tally(&answers);
    // Threshold 5: four wrong passwords are answered BAD_CREDENTIALS, the fifth and
    // every later one LOCKED, however they interleave.
    assert_eq!(t.get(&(401, "BAD_CREDENTIALS".into())), Some(&4), "{t:?}");
    assert_eq!(t.get(&(429, "LOCKED".into())), Some(&(CROWD - 4)), "{t:?}");
    b.stage1(A_USCC, A_PASSWORD)
        .await
        .expect_error(429, "LOCKED");
    // Another enterprise is not touched.
    b.stage1(B_USCC, B_PASSWORD).await.expect(200);
}
