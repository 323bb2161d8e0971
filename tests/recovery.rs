//! Forgot password (SPEC FP1 person, FP2 enterprise; S3, S5, S8, S11).

use crate::harness::client::masked;
use crate::harness::flows::*;
use crate::harness::fx::*;
use crate::harness::{Browser, Gateway, Resp};

/// A's new enterprise password in these tests.
const NEW_A: &str = "Fixture-A-2027";

#[track_caller]
fn expect_invalid(r: Resp, field_name: &str) {
    let r = r.expect_error(400, "INVALID_INPUT");
    assert_eq!(
        field(&r),
        field_name,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

/// A gateway where 王小明 has bound himself to A (企业用户注册) with `PASSWORD`, so his
/// personal password can be tried at stage 2 of A's login.
async fn wang_in_a() -> (Gateway, Browser) {
    let gw = quick_gateway().await;
    let b = Browser::new(&gw);
    b.enterprise_user(WANG, PASSWORD, A_USCC, ZHAO.phone).await;
    (gw, b)
}

/// Stage 2 of A by personal password for 王小明, in a browser of its own.
async fn wang_login(gw: &Gateway, password: &str) -> Resp {
    let mut b = Browser::with_agent(gw, "wang-login");
    b.login_by_password(A_USCC, A_PASSWORD, WANG.phone, password)
        .await
}

// --- FP1: natural person ----------------------------------------------------------------

#[tokio::test]
async fn person_recovery_then_password_login() {
    let (gw, b) = wang_in_a().await;
    let (ticket, code) = b.person_recovery_start(WANG.phone).await;
    let vid = b.realname(WANG).await;
    b.person_recovery_verify_resp(&ticket, &code, &vid)
        .await
        .expect(204);
    b.person_recovery_reset_resp(&ticket, PASSWORD2)
        .await
        .expect(204);
    wang_login(&gw, PASSWORD)
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    let v = wang_login(&gw, PASSWORD2).await.expect(200).json();
    assert_eq!(v["officer"]["name"], WANG.name);
}

#[tokio::test]
async fn person_reset_ends_his_sessions() {
    let (gw, b) = wang_in_a().await;
    let mut before = Browser::with_agent(&gw, "before-reset");
    before
        .login_by_password(A_USCC, A_PASSWORD, WANG.phone, PASSWORD)
        .await
        .expect(200);
    before.get("/api/v1/session").await.expect(200);
    b.reset_person_password(WANG, PASSWORD2).await;
    before
        .get("/api/v1/session")
        .await
        .expect_error(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn unknown_phone_is_not_found() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    b.person_recovery_start_resp(FREE_PHONE)
        .await
        .expect_error(404, "NOT_FOUND");
    assert!(sms_codes(&gw.outbox, FREE_PHONE, "recovery").is_empty());
}

#[tokio::test]
async fn bad_phone_is_invalid_input() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    expect_invalid(b.person_recovery_start_resp(BAD_PHONE).await, "phone");
    assert!(sms_codes(&gw.outbox, BAD_PHONE, "recovery").is_empty());
}

#[tokio::test]
async fn person_reset_without_verify_is_ticket_invalid() {
    let (gw, b) = wang_in_a().await;
    let (ticket, _code) = b.person_recovery_start(WANG.phone).await;
    b.person_recovery_reset_resp(&ticket, PASSWORD2)
        .await
        .expect_error(401, "TICKET_INVALID");
    wang_login(&gw, PASSWORD2)
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    wang_login(&gw, PASSWORD).await.expect(200);
}

#[tokio::test]
async fn person_verify_with_a_wrong_code_is_refused() {
    let (gw, b) = wang_in_a().await;
    let (ticket, code) = b.person_recovery_start(WANG.phone).await;
    let vid = b.realname(WANG).await;
    b.person_recovery_verify_resp(&ticket, wrong_code(&code), &vid)
        .await
        .expect_error(400, "SMS_CODE_INVALID");
    b.person_recovery_reset_resp(&ticket, PASSWORD2)
        .await
        .expect_error(401, "TICKET_INVALID");
    wang_login(&gw, PASSWORD).await.expect(200);
}

#[tokio::test]
async fn person_recovery_ticket_is_dead_after_the_reset() {
    let (gw, b) = wang_in_a().await;
    let (ticket, code) = b.person_recovery_start(WANG.phone).await;
    let vid = b.realname(WANG).await;
    b.person_recovery_verify_resp(&ticket, &code, &vid)
        .await
        .expect(204);
    b.person_recovery_reset_resp(&ticket, PASSWORD2)
        .await
        .expect(204);
    b.person_recovery_reset_resp(&ticket, "Another-Pass-2026")
        .await
        .expect_error(401, "TICKET_INVALID");
    b.person_recovery_verify_resp(&ticket, &code, &vid)
        .await
        .expect_error(401, "TICKET_INVALID");
    wang_login(&gw, "Another-Pass-2026")
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    wang_login(&gw, PASSWORD2).await.expect(200);
}

#[tokio::test]
async fn person_recovery_needs_his_own_verification() {
    let (gw, b) = wang_in_a().await;
    let (ticket, code) = b.person_recovery_start(WANG.phone).await;
    let han = b.realname(HAN).await;
    b.person_recovery_verify_resp(&ticket, &code, &han)
        .await
        .expect_error(400, "REALNAME_FAILED");
    b.person_recovery_reset_resp(&ticket, PASSWORD2)
        .await
        .expect_error(401, "TICKET_INVALID");
    wang_login(&gw, PASSWORD).await.expect(200);
}

#[tokio::test]
async fn person_recovery_verification_is_single_use() {
    let (_gw, b) = wang_in_a().await;
    let (first, code) = b.person_recovery_start(WANG.phone).await;
    let vid = b.realname(WANG).await;
    b.person_recovery_verify_resp(&first, &code, &vid)
        .await
        .expect(204);
    // A second recovery cannot reuse the verification the first one used.
    let (second, code) = b.person_recovery_start(WANG.phone).await;
    b.person_recovery_verify_resp(&second, &code, &vid)
        .await
        .expect_error(400, "REALNAME_FAILED");
    b.person_recovery_reset_resp(&second, PASSWORD2)
        .await
        .expect_error(401, "TICKET_INVALID");
}

#[tokio::test]
async fn person_recovery_ticket_is_bound_to_its_client() {
    let (gw, b) = wang_in_a().await;
    let (ticket, code) = b.person_recovery_start(WANG.phone).await;
    let vid = b.realname(WANG).await;
    let other = Browser::with_agent(&gw, "someone-else");
    other
        .person_recovery_verify_resp(&ticket, &code, &vid)
        .await
        .expect_error(401, "TICKET_INVALID");
    other
        .person_recovery_reset_resp(&ticket, PASSWORD2)
        .await
        .expect_error(401, "TICKET_INVALID");
    // The other client used up neither the code nor the verification.
    b.person_recovery_verify_resp(&ticket, &code, &vid)
        .await
        .expect(204);
    b.person_recovery_reset_resp(&ticket, PASSWORD2)
        .await
        .expect(204);
    wang_login(&gw, PASSWORD2).await.expect(200);
}

#[tokio::test]
async fn weak_new_password_is_invalid_input() {
    let (gw, b) = wang_in_a().await;
    let ticket = b.person_recovery_verified(WANG).await;
    for weak in WEAK_PASSWORDS {
        expect_invalid(
            b.person_recovery_reset_resp(&ticket, weak).await,
            "new_password",
        );
    }
    wang_login(&gw, PASSWORD).await.expect(200);
    // The verified ticket survives a refused password.
    b.person_recovery_reset_resp(&ticket, PASSWORD2)
        .await
        .expect(204);
    wang_login(&gw, PASSWORD2).await.expect(200);
}

#[tokio::test]
async fn person_recovery_resend_within_60s_is_rate_limited() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    b.register_person(HAN, PASSWORD).await;
    // The registration code went to the same phone a moment ago.
    let r = b
        .person_recovery_start_resp(HAN.phone)
        .await
        .expect_error(429, "RATE_LIMITED");
    assert!((1..=60).contains(&retry_after(&r)));
    assert!(sms_codes(&gw.outbox, HAN.phone, "recovery").is_empty());
}

// --- FP2: enterprise ------------------------------------------------------------------------

#[tokio::test]
async fn enterprise_recovery_then_login_with_the_new_password() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let (ticket, recipients) = b.enterprise_recovery_start(A_USCC).await;
    // The legal rep and the finance officer, masked; nobody else.
    assert_eq!(recipients.as_array().unwrap().len(), 2, "{recipients}");
    let zhao = row_by_phone(&recipients, ZHAO.phone);
    assert_eq!(zhao["role"], "legal_rep");
    assert_eq!(zhao["name_masked"], "赵*");
    let qian = row_by_phone(&recipients, QIAN.phone);
    assert_eq!(qian["role"], "finance_officer");
    assert_eq!(qian["name_masked"], "钱*");
    let text = recipients.to_string();
    for secret in [ZHAO.phone, QIAN.phone, ZHAO.name, QIAN.id_number] {
        assert!(!text.contains(secret), "{secret} shown in {text}");
    }
    let code = b
        .enterprise_recovery_sms(&ticket, &recipients, QIAN.phone)
        .await;
    assert!(sms_codes(&gw.outbox, ZHAO.phone, "recovery").is_empty());
    let vid = b.realname(QIAN).await;
    b.enterprise_recovery_verify_resp(&ticket, &code, &vid)
        .await
        .expect(204);
    b.enterprise_recovery_reset_resp(&ticket, NEW_A)
        .await
        .expect(204);
    b.stage1(A_USCC, A_PASSWORD)
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    // The new password opens the whole login.
    let mut b = Browser::with_agent(&gw, "after-reset");
    b.login_by_sms(A_USCC, NEW_A, LI.phone).await;
    b.get("/api/v1/session").await.expect(200);
    // Other enterprises are untouched.
    b.stage1(B_USCC, B_PASSWORD).await.expect(200);
}

#[tokio::test]
async fn enterprise_reset_ends_the_sessions_of_the_old_password() {
    let gw = Gateway::start().await;
    let mut before = Browser::with_agent(&gw, "before-reset");
    before.login_by_sms(A_USCC, A_PASSWORD, LI.phone).await;
    before.get("/api/v1/session").await.expect(200);
    let mut other = Browser::with_agent(&gw, "enterprise-b");
    other.login_by_sms(B_USCC, B_PASSWORD, ZHOU.phone).await;
    let b = Browser::new(&gw);
    b.reset_enterprise_password(A_USCC, QIAN, NEW_A).await;
    before
        .get("/api/v1/session")
        .await
        .expect_error(401, "UNAUTHENTICATED");
    // A session of another enterprise lives on.
    other.get("/api/v1/session").await.expect(200);
}

#[tokio::test]
async fn enterprise_recovery_of_an_unknown_account_is_not_found() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    b.enterprise_recovery_start_resp(UNKNOWN_USCC)
        .await
        .expect_error(404, "NOT_FOUND");
    for malformed in ["not-an-account", "91110000600037341M"] {
        b.enterprise_recovery_start_resp(malformed)
            .await
            .expect_error(400, "INVALID_INPUT");
    }
    // The TIN is an account too.
    let (_, recipients) = b.enterprise_recovery_start(A_TIN).await;
    assert_eq!(recipients.as_array().unwrap().len(), 2, "{recipients}");
}

#[tokio::test]
async fn enterprise_reset_without_verify_is_ticket_invalid() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let (ticket, recipients) = b.enterprise_recovery_start(A_USCC).await;
    b.enterprise_recovery_reset_resp(&ticket, NEW_A)
        .await
        .expect_error(401, "TICKET_INVALID");
    b.enterprise_recovery_sms(&ticket, &recipients, QIAN.phone)
        .await;
    b.enterprise_recovery_reset_resp(&ticket, NEW_A)
        .await
        .expect_error(401, "TICKET_INVALID");
    b.stage1(A_USCC, NEW_A)
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    b.stage1(A_USCC, A_PASSWORD).await.expect(200);
}

#[tokio::test]
async fn enterprise_verification_must_be_of_the_chosen_recipient() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let (ticket, recipients) = b.enterprise_recovery_start(A_USCC).await;
    let code = b
        .enterprise_recovery_sms(&ticket, &recipients, QIAN.phone)
        .await;
    // The code went to 钱进; 赵敏's verification does not fit.
    let zhao = b.realname(ZHAO).await;
    b.enterprise_recovery_verify_resp(&ticket, &code, &zhao)
        .await
        .expect_error(400, "REALNAME_FAILED");
    b.enterprise_recovery_reset_resp(&ticket, NEW_A)
        .await
        .expect_error(401, "TICKET_INVALID");
    b.stage1(A_USCC, A_PASSWORD).await.expect(200);
}

#[tokio::test]
async fn enterprise_recovery_ticket_is_dead_after_the_reset() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let ticket = b.enterprise_recovery_verified(A_USCC, QIAN).await;
    b.enterprise_recovery_reset_resp(&ticket, NEW_A)
        .await
        .expect(204);
    b.enterprise_recovery_reset_resp(&ticket, "Fixture-A-2028")
        .await
        .expect_error(401, "TICKET_INVALID");
    b.stage1(A_USCC, "Fixture-A-2028")
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    b.stage1(A_USCC, NEW_A).await.expect(200);
}

#[tokio::test]
async fn enterprise_recovery_ticket_is_bound_to_its_client() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let (ticket, recipients) = b.enterprise_recovery_start(A_USCC).await;
    let rid = row_by_phone(&recipients, QIAN.phone)["recipient_id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = Browser::with_agent(&gw, "someone-else");
    other
        .enterprise_recovery_sms_resp(&ticket, &rid)
        .await
        .expect_error(401, "TICKET_INVALID");
    assert!(sms_codes(&gw.outbox, QIAN.phone, "recovery").is_empty());
}

#[tokio::test]
async fn recipient_of_another_enterprise_is_refused() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let (ticket, _) = b.enterprise_recovery_start(A_USCC).await;
    let (_, b_recipients) = b.enterprise_recovery_start(B_USCC).await;
    let zhou = row_by_phone(&b_recipients, ZHOU.phone)["recipient_id"]
        .as_str()
        .unwrap()
        .to_string();
    expect_invalid(
        b.enterprise_recovery_sms_resp(&ticket, &zhou).await,
        "recipient_id",
    );
    assert!(sms_codes(&gw.outbox, ZHOU.phone, "recovery").is_empty());
    // Nobody with a tax officer's phone is a recipient.
    assert!(b_recipients
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["phone_masked"] != masked(SUN_PHONE)));
}

#[tokio::test]
async fn enterprise_recovery_resend_within_60s_is_rate_limited() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let (ticket, recipients) = b.enterprise_recovery_start(A_USCC).await;
    let code = b
        .enterprise_recovery_sms(&ticket, &recipients, QIAN.phone)
        .await;
    let rid = row_by_phone(&recipients, QIAN.phone)["recipient_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = b
        .enterprise_recovery_sms_resp(&ticket, &rid)
        .await
        .expect_error(429, "RATE_LIMITED");
    assert!((1..=60).contains(&retry_after(&r)));
    assert_eq!(sms_codes(&gw.outbox, QIAN.phone, "recovery").len(), 1);
    // The first code still works.
    let vid = b.realname(QIAN).await;
    b.enterprise_recovery_verify_resp(&ticket, &code, &vid)
        .await
        .expect(204);
}

// --- Restart ----------------------------------------------------------------------------------

#[tokio::test]
async fn enterprise_reset_survives_a_restart() {
    let mut gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    b.reset_enterprise_password(A_USCC, QIAN, NEW_A).await;
    gw.crash_and_restart();
    b.follow(&gw);
    b.stage1(A_USCC, A_PASSWORD)
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    b.stage1(A_USCC, NEW_A).await.expect(200);
}

#[tokio::test]
async fn person_reset_survives_a_restart() {
    let (mut gw, mut b) = wang_in_a().await;
    // A verified ticket is an acknowledged write: it survives too.
    let ticket = b.person_recovery_verified(WANG).await;
    gw.crash_and_restart();
    b.follow(&gw);
    b.person_recovery_reset_resp(&ticket, PASSWORD2)
        .await
        .expect(204);
    gw.crash_and_restart();
    b.follow(&gw);
    wang_login(&gw, PASSWORD)
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    wang_login(&gw, PASSWORD2).await.expect(200);
}
