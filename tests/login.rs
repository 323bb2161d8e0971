//! The two-stage enterprise login (SPEC L1–L6, S2–S5).

use crate::harness::client::{masked, officer_id};
use crate::harness::fx::*;
use crate::harness::{outbox, Browser, Gateway};
use serde_json::json;

#[tokio::test]
async fn stage1_lists_every_officer_masked_with_methods() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let v = b.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    assert_eq!(v["enterprise"]["name"], "测试企业甲有限公司");
    assert_eq!(v["enterprise"]["uscc"], A_USCC);
    let officers = v["officers"].as_array().unwrap();
    assert_eq!(officers.len(), 4, "{v}");
    let zhao = officers
        .iter()
        .find(|o| o["phone_masked"] == masked(ZHAO_PHONE))
        .unwrap();
    assert_eq!(zhao["name_masked"], "赵*");
    assert_eq!(zhao["roles"], json!(["legal_rep"]));
    assert_eq!(zhao["sources"], json!(["registry"]));
    // Registry-only officers verify by SMS only (L3).
    assert_eq!(zhao["methods"], json!(["sms"]));
    let text = v.to_string();
    assert!(
        !text.contains("530103198302280023"),
        "no ID numbers in the list"
    );
    assert!(!text.contains(ZHAO_PHONE), "phones are masked");
    assert!(!text.contains("赵敏"), "names are masked");

    // The TIN works as the account too, in any case.
    let v = b
        .stage1(&A_TIN.to_lowercase(), A_PASSWORD)
        .await
        .expect(200)
        .json();
    assert_eq!(v["enterprise"]["uscc"], A_USCC);
}

#[tokio::test]
async fn sms_login_opens_a_session_that_sees_its_modules() {
    let gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    let r = b.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    let cookie = r
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let v = r.json();
    assert_eq!(v["officer"]["name"], "李雷");
    assert_eq!(v["officer"]["roles"], json!(["tax_officer"]));
    // A tax officer with default grants sees all of 我要办税 and nothing else (AM3).
    let ids: Vec<&str> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["wybs"], "{v}");

    let s = b.get("/api/v1/session").await.expect(200).json();
    assert_eq!(s["enterprise"]["uscc"], A_USCC);
    assert_eq!(s["can_manage_users"], false);
    assert_eq!(s["csrf_token"], v["csrf_token"]);

    // Logout needs the CSRF token, then ends the session.
    let csrf = b.csrf.take();
    b.post("/api/v1/logout", &json!({}))
        .await
        .expect_error(403, "CSRF_INVALID");
    b.csrf = csrf;
    b.post("/api/v1/logout", &json!({})).await.expect(204);
    b.get("/api/v1/session")
        .await
        .expect_error(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn legal_rep_sees_every_module_and_may_manage_users() {
    let gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    let v = b.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await.json();
    let ids: Vec<&str> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"wybs") && ids.contains(&"wycx") && ids.contains(&"wdxx"),
        "{ids:?}"
    );
    let s = b.get("/api/v1/session").await.expect(200).json();
    assert_eq!(s["can_manage_users"], true);
}

#[tokio::test]
async fn password_method_is_refused_for_a_registry_only_officer() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let s1 = b.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let r = b
        .post(
            "/api/v1/login/officer",
            &json!({"login_ticket": s1["login_ticket"], "officer_id": officer_id(&s1, LI_PHONE),
                    "method": "password", "password": "whatever-1234"}),
        )
        .await;
    r.expect_error(403, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn wrong_unknown_and_reused_captchas_are_refused() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let (id, answer) = b.captcha().await;
    let body = |id: &str, ans: &str| json!({"account": A_USCC, "password": A_PASSWORD, "captcha_id": id, "captcha_answer": ans});
    b.post("/api/v1/login/enterprise", &body(&id, "zzzzz"))
        .await
        .expect_error(400, "CAPTCHA_INVALID");
    // A wrong answer used the captcha up: the right answer no longer works.
    b.post("/api/v1/login/enterprise", &body(&id, &answer))
        .await
        .expect_error(400, "CAPTCHA_INVALID");
    let (id, answer) = b.captcha().await;
    // Case-insensitive.
    b.post(
        "/api/v1/login/enterprise",
        &body(&id, &answer.to_uppercase()),
    )
    .await
    .expect(200);
    // Single use.
    b.post("/api/v1/login/enterprise", &body(&id, &answer))
        .await
        .expect_error(400, "CAPTCHA_INVALID");
    b.post(
        "/api/v1/login/enterprise",
        &body("no-such-captcha", "abcde"),
    )
    .await
    .expect_error(400, "CAPTCHA_INVALID");
}

#[tokio::test]
async fn unknown_account_and_wrong_password_look_the_same() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let wrong = b
        .stage1(A_USCC, "Not-the-password-1")
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    // A valid USCC that is not registered.
    let unknown = b
        .stage1("91110000600037341L", "Not-the-password-1")
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    assert_eq!(wrong.body, unknown.body);
    b.stage1("not-an-account", A_PASSWORD)
        .await
        .expect_error(400, "INVALID_INPUT");
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_enterprise_with_retry_after() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    for i in 0..4 {
        b.stage1(A_USCC, &format!("Wrong-password-{i}"))
            .await
            .expect_error(401, "BAD_CREDENTIALS");
    }
    let r = b
        .stage1(A_USCC, "Wrong-password-5")
        .await
        .expect_error(429, "LOCKED");
    let retry = r.json()["error"]["retry_after"].as_u64().unwrap();
    assert!(retry > 800 && retry <= 900, "{retry}");
    // Even the right password is refused while locked.
    b.stage1(A_USCC, A_PASSWORD)
        .await
        .expect_error(429, "LOCKED");
    // Another enterprise is not affected.
    b.stage1(B_USCC, B_PASSWORD).await.expect(200);
}

#[tokio::test]
async fn sms_codes_are_single_use_and_die_after_five_wrong_tries() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let s1 = b.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let ticket = s1["login_ticket"].as_str().unwrap();
    let officer = officer_id(&s1, LI_PHONE);
    let code = b.login_sms_code(ticket, &officer, LI_PHONE).await;
    assert_eq!(code.len(), 6);
    let attempt = |code: String| {
        let b = &b;
        let officer = officer.clone();
        async move {
            b.post(
                "/api/v1/login/officer",
                &json!({"login_ticket": ticket, "officer_id": officer, "method": "sms", "sms_code": code}),
            )
            .await
        }
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        attempt(wrong.to_string())
            .await
            .expect_error(400, "SMS_CODE_INVALID");
    }
    // The right code is dead after five wrong tries.
    attempt(code.clone())
        .await
        .expect_error(400, "SMS_CODE_INVALID");
    // A resend within 60 s is refused with retry_after, and does not reset the tries.
    let r = b
        .post(
            "/api/v1/login/officer/sms",
            &json!({"login_ticket": ticket, "officer_id": officer}),
        )
        .await
        .expect_error(429, "RATE_LIMITED");
    assert!(r.json()["error"]["retry_after"].as_u64().unwrap() <= 60);
    assert_eq!(outbox::sms_count(&gw.outbox, LI_PHONE), 1);

    // Reuse: a correct code works once; the ticket is gone after it.
    let b2 = Browser::with_agent(&gw, "second-browser");
    let s1 = b2.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let ticket2 = s1["login_ticket"].as_str().unwrap();
    let zhao = officer_id(&s1, ZHAO_PHONE);
    let code = b2.login_sms_code(ticket2, &zhao, ZHAO_PHONE).await;
    let body =
        json!({"login_ticket": ticket2, "officer_id": zhao, "method": "sms", "sms_code": code});
    b2.post("/api/v1/login/officer", &body).await.expect(200);
    b2.post("/api/v1/login/officer", &body)
        .await
        .expect_error(401, "TICKET_INVALID");
}

#[tokio::test]
async fn tickets_are_bound_to_their_client_and_their_officers() {
    let gw = Gateway::start().await;
    let a = Browser::new(&gw);
    let s1 = a.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let ticket = s1["login_ticket"].as_str().unwrap();
    let li = officer_id(&s1, LI_PHONE);
    // Another client (another User-Agent) cannot use the ticket.
    let other = Browser::with_agent(&gw, "someone-else");
    other
        .post(
            "/api/v1/login/officer/sms",
            &json!({"login_ticket": ticket, "officer_id": li}),
        )
        .await
        .expect_error(401, "TICKET_INVALID");
    // An officer id from another ticket (enterprise B's list) is not in this ticket.
    let s1b = a.stage1(B_USCC, B_PASSWORD).await.expect(200).json();
    let zhou = officer_id(&s1b, ZHOU_PHONE);
    a.post(
        "/api/v1/login/officer/sms",
        &json!({"login_ticket": ticket, "officer_id": zhou}),
    )
    .await
    .expect_error(401, "TICKET_INVALID");
    a.post(
        "/api/v1/login/officer/sms",
        &json!({"login_ticket": "forged", "officer_id": li}),
    )
    .await
    .expect_error(401, "TICKET_INVALID");
    assert_eq!(outbox::sms_count(&gw.outbox, ZHOU_PHONE), 0);
}

#[tokio::test]
async fn malformed_bodies_are_invalid_input_and_change_nothing() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let long = "x".repeat(5000);
    let bodies = [
        "{".to_string(),
        "[]".to_string(),
        r#"{"account": 1, "password": "x", "captcha_id": "x", "captcha_answer": "x"}"#.to_string(),
        r#"{"account": "a", "password": "x", "captcha_id": "x"}"#.to_string(),
        format!(
            r#"{{"account": "{A_USCC}", "password": "x", "captcha_id": "x", "captcha_answer": "x", "admin": true}}"#
        ),
        format!(
            r#"{{"account": "{A_USCC}", "password": "{long}", "captcha_id": "x", "captcha_answer": "x"}}"#
        ),
    ];
    for body in &bodies {
        b.post_raw("/api/v1/login/enterprise", body)
            .await
            .expect_error(400, "INVALID_INPUT");
    }
    b.post_raw(
        "/api/v1/login/officer",
        r#"{"login_ticket": "t", "officer_id": "o", "method": "fax"}"#,
    )
    .await
    .expect_error(400, "INVALID_INPUT");
    let huge = format!(r#"{{"account": "{}"}}"#, "x".repeat(100_000));
    b.post_raw("/api/v1/login/enterprise", &huge)
        .await
        .expect_error(413, "PAYLOAD_TOO_LARGE");
    b.get("/api/v1/login/enterprise")
        .await
        .expect_error(405, "HTTP_METHOD_NOT_ALLOWED");
    b.get("/api/v1/nope").await.expect_error(404, "NOT_FOUND");
    // Nothing was locked by any of that.
    b.stage1(A_USCC, A_PASSWORD).await.expect(200);
}
