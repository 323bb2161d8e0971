//! Every documented lifetime and window, reached on the gateway's test clock (issue 20):
//! the clock is frozen at an instant and moved through the admin listener
//! (`/admin/clock`, `test_clock: true`, development only), so each test stands just
//! before and just after an end without sleeping across it, and no wall-clock minute
//! boundary can fall inside a per-minute window.

use crate::harness::flows::*;
use crate::harness::fx::*;
use crate::harness::{Browser, Gateway, GatewayOptions, Resp};
use serde_json::{json, Value};

async fn gateway(limits: &str) -> Gateway {
    Gateway::start_with(GatewayOptions {
        extra_yaml: format!("test_clock: true\nlimits: {{{limits}}}"),
        ..Default::default()
    })
    .await
}

/// The test clock of `gw`.
struct Clock<'a> {
    admin: Browser,
    gw: &'a Gateway,
}

impl<'a> Clock<'a> {
    /// Freezes the clock of `gw` one second into the next whole minute (of real time),
    /// and returns it.
    async fn frozen(gw: &'a Gateway) -> (Clock<'a>, i64) {
        let start = gw.freeze_clock().await;
        let admin = Browser::admin(gw);
        (Clock { admin, gw }, start)
    }

    async fn set(&self, body: Value) -> i64 {
        let v = self
            .admin
            .send("PUT", "/admin/clock", &[], Some(&body.to_string()))
            .await
            .expect(200)
            .json();
        assert_eq!(v["frozen"], true, "{v}");
        v["now"].as_i64().unwrap()
    }

    /// Moves the clock to `at`.
    async fn at(&self, at: i64) {
        assert_eq!(self.set(json!({ "now": at })).await, at);
    }

    fn browser(&self) -> Browser {
        Browser::new(self.gw)
    }
}

async fn stage1_with(b: &Browser, captcha: &(String, String)) -> Resp {
    b.post(
        "/api/v1/login/enterprise",
        &json!({"account": A_USCC, "password": A_PASSWORD, "captcha_id": captcha.0, "captcha_answer": captcha.1}),
    )
    .await
}

#[tokio::test]
async fn a_captcha_lives_300_seconds() {
    let gw = gateway("").await;
    let (clock, t) = Clock::frozen(&gw).await;
    let b = clock.browser();
    let (first, second) = (b.captcha().await, b.captcha().await);
    clock.at(t + 299).await;
    stage1_with(&b, &first).await.expect(200);
    clock.at(t + 301).await;
    stage1_with(&b, &second)
        .await
        .expect_error(400, "CAPTCHA_INVALID");
}

#[tokio::test]
async fn a_login_ticket_lives_300_seconds() {
    let gw = gateway("").await;
    let (clock, t) = Clock::frozen(&gw).await;
    let b = clock.browser();
    let early = b.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let late = b.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let sms = |s1: &Value| {
        let body = json!({"login_ticket": s1["login_ticket"], "officer_id": crate::harness::client::officer_id(s1, LI_PHONE)});
        let b = clock.browser();
        async move { b.post("/api/v1/login/officer/sms", &body).await }
    };
    clock.at(t + 299).await;
    sms(&early).await.expect(200);
    clock.at(t + 301).await;
    sms(&late).await.expect_error(401, "TICKET_INVALID");
}

#[tokio::test]
async fn an_sms_code_lives_its_configured_seconds() {
    // 120 s, below the login ticket's 300, so the code's end is what refuses.
    let gw = gateway("sms_code_seconds: 120").await;
    let (clock, t) = Clock::frozen(&gw).await;
    let mut early = clock.browser();
    let late = clock.browser();
    let s1 = early.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let li = crate::harness::client::officer_id(&s1, LI_PHONE);
    let ticket = s1["login_ticket"].as_str().unwrap().to_string();
    let li_code = early.login_sms_code(&ticket, &li, LI_PHONE).await;
    let s1b = late.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let zhao = crate::harness::client::officer_id(&s1b, ZHAO_PHONE);
    let ticket_b = s1b["login_ticket"].as_str().unwrap().to_string();
    let zhao_code = late.login_sms_code(&ticket_b, &zhao, ZHAO_PHONE).await;
    clock.at(t + 119).await;
    early.finish_by_sms(&ticket, &li, &li_code).await;
    clock.at(t + 121).await;
    late.post(
        "/api/v1/login/officer",
        &json!({"login_ticket": ticket_b, "officer_id": zhao, "method": "sms", "sms_code": zhao_code}),
    )
    .await
    .expect_error(400, "SMS_CODE_INVALID");
}

#[tokio::test]
async fn a_real_name_check_lives_600_seconds() {
    let gw = gateway("sms_resend_seconds: 0").await;
    let (clock, t) = Clock::frozen(&gw).await;
    let b = clock.browser();
    let vid = b.realname(HAN).await;
    clock.at(t + 601).await;
    let code = b.register_sms(HAN.phone).await;
    b.register_person_resp(&person_form(HAN, &code, PASSWORD, &vid))
        .await
        .expect_error(400, "REALNAME_FAILED");
    // A fresh check, at the same instant, registers.
    let vid = b.realname(HAN).await;
    let code = b.register_sms(HAN.phone).await;
    b.register_person_resp(&person_form(HAN, &code, PASSWORD, &vid))
        .await
        .expect(201);
}

#[tokio::test]
async fn a_lockout_ends_after_900_seconds() {
    let gw = gateway("").await;
    let (clock, t) = Clock::frozen(&gw).await;
    let b = clock.browser();
    for i in 0..4 {
        b.stage1(A_USCC, &format!("Wrong-password-{i}"))
            .await
            .expect_error(401, "BAD_CREDENTIALS");
    }
    let r = b
        .stage1(A_USCC, "Wrong-password-5")
        .await
        .expect_error(429, "LOCKED");
    assert_eq!(r.json()["error"]["retry_after"], 900, "{}", r.json());
    clock.at(t + 899).await;
    let r = b
        .stage1(A_USCC, A_PASSWORD)
        .await
        .expect_error(429, "LOCKED");
    assert_eq!(r.json()["error"]["retry_after"], 1, "{}", r.json());
    clock.at(t + 900).await;
    b.stage1(A_USCC, A_PASSWORD).await.expect(200);
    // And the count starts afresh: four more wrong passwords do not lock.
    for i in 0..4 {
        b.stage1(A_USCC, &format!("Wrong-again-{i}"))
            .await
            .expect_error(401, "BAD_CREDENTIALS");
    }
}

#[tokio::test]
async fn a_session_ends_after_30_idle_minutes_and_after_12_hours_in_use() {
    let gw = gateway("").await;
    let (clock, t) = Clock::frozen(&gw).await;
    let mut busy = clock.browser();
    busy.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    let mut idle = clock.browser();
    idle.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    // Idle for exactly 30 minutes: alive; for 30 minutes and a second: gone.
    clock.at(t + 30 * 60).await;
    idle.get("/api/v1/session").await.expect(200);
    busy.get("/tax/zzs/x").await.expect(200);
    clock.at(t + 50 * 60).await;
    busy.get("/tax/zzs/x").await.expect(200);
    clock.at(t + 60 * 60 + 1).await;
    idle.get("/api/v1/session")
        .await
        .expect_error(401, "UNAUTHENTICATED");
    busy.get("/tax/zzs/x").await.expect(200);
    // In use every 25 minutes, the session lives until its 12 hours are up.
    let mut at = t + 60 * 60 + 1;
    while at + 25 * 60 < t + 12 * 3600 {
        at += 25 * 60;
        clock.at(at).await;
        busy.get("/tax/zzs/x").await.expect(200);
    }
    clock.at(t + 12 * 3600).await;
    busy.get("/tax/zzs/x").await.expect(200);
    clock.at(t + 12 * 3600 + 1).await;
    busy.get("/tax/zzs/x")
        .await
        .expect_error(401, "UNAUTHENTICATED");
    busy.get("/api/v1/session")
        .await
        .expect_error(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn one_phone_gets_ten_codes_a_day() {
    let gw = gateway("ip_requests_per_minute: 100000").await;
    let (clock, t) = Clock::frozen(&gw).await;
    let b = clock.browser();
    // China Standard Time: the day starts at 16:00 UTC. Start early in a CST day, so
    // the ten codes (61 s apart) fall in one day.
    let day_start = (t + 8 * 3600).div_euclid(86_400) * 86_400 - 8 * 3600;
    let mut at = day_start + 86_400 + 60;
    for i in 0..10 {
        clock.at(at).await;
        b.register_sms_resp(FREE_PHONE)
            .await
            .expect(200)
            .json()
            .get("resend_after")
            .unwrap_or_else(|| panic!("code {i}"));
        at += 61;
    }
    clock.at(at).await;
    let r = b
        .register_sms_resp(FREE_PHONE)
        .await
        .expect_error(429, "RATE_LIMITED");
    assert!(r.json()["error"]["retry_after"].as_u64().unwrap() > 60);
    // Another phone is not touched; the next day the phone gets codes again.
    b.register_sms_resp(WUHUA).await.expect(200);
    clock.at(day_start + 2 * 86_400 + 1).await;
    b.register_sms_resp(FREE_PHONE).await.expect(200);
}

#[tokio::test]
async fn the_per_address_window_is_a_minute() {
    let gw = gateway("ip_requests_per_minute: 3").await;
    let (clock, t) = Clock::frozen(&gw).await;
    let b = clock.browser();
    for _ in 0..3 {
        b.get("/api/v1/captcha").await.expect(200);
    }
    let r = b
        .get("/api/v1/captcha")
        .await
        .expect_error(429, "RATE_LIMITED");
    // Frozen one second into the minute: 59 s to wait.
    assert_eq!(r.json()["error"]["retry_after"], 59, "{}", r.json());
    clock.at(t + 58).await;
    b.get("/api/v1/captcha")
        .await
        .expect_error(429, "RATE_LIMITED");
    clock.at(t + 59).await;
    b.get("/api/v1/captcha").await.expect(200);
}

#[tokio::test]
async fn the_test_clock_is_off_unless_configured_and_refuses_bad_input() {
    let gw = Gateway::start().await;
    let admin = Browser::admin(&gw);
    admin
        .send("PUT", "/admin/clock", &[], Some(r#"{"now": 1}"#))
        .await
        .expect_error(404, "NOT_FOUND");
    let gw = gateway("").await;
    let admin = Browser::admin(&gw);
    for bad in [
        r#"{}"#,
        r#"{"now": "soon"}"#,
        r#"{"now": 1, "advance_seconds": 1}"#,
        "x",
    ] {
        admin
            .send("PUT", "/admin/clock", &[], Some(bad))
            .await
            .expect_error(400, "INVALID_INPUT");
    }
    let v = admin.get("/admin/clock").await.expect(200).json();
    assert_eq!(v["frozen"], false, "{v}");
    // Refused in production mode by `taxgate check`.
    let config = std::fs::read_to_string(&gw.config)
        .unwrap()
        .replace("mode: development", "mode: production");
    let file = gw.dir.path().join("production.yaml");
    std::fs::write(&file, config).unwrap();
    let (ok, out, err) =
        crate::harness::gateway::run_cli(&["check", "--config", file.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(err.contains("test_clock"), "{err}");
}
