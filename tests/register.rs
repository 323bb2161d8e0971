//! Registration (SPEC RG1 自然人注册, RG2 企业用户注册; S1, S3, S8, S11).

use crate::harness::client::masked;
use crate::harness::flows::*;
use crate::harness::fx::*;
use crate::harness::{Browser, Gateway, Resp};
use serde_json::{json, Value};

/// Stage 1 of enterprise A: its officer list.
async fn officers_of_a(b: &Browser) -> Vec<Value> {
    b.stage1(A_USCC, A_PASSWORD).await.expect(200).json()["officers"]
        .as_array()
        .unwrap()
        .clone()
}

async fn assert_not_listed_in_a(b: &Browser, phone: &str) {
    let officers = officers_of_a(b).await;
    assert_eq!(officers.len(), 4, "{officers:?}");
    assert!(
        officers.iter().all(|o| o["phone_masked"] != masked(phone)),
        "{phone} must not be an officer of A: {officers:?}"
    );
}

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

fn module_ids(v: &Value) -> Vec<String> {
    v["modules"]
        .as_array()
        .unwrap_or_else(|| panic!("no modules in {v}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// Checks the stage-1 row of a person who bound himself, then logs in by his password.
async fn assert_self_registered_and_login(b: &mut Browser, who: Someone, password: &str) {
    let officers = officers_of_a(b).await;
    assert_eq!(officers.len(), 5, "{officers:?}");
    let row = officers
        .iter()
        .find(|o| o["phone_masked"] == masked(who.phone))
        .unwrap_or_else(|| panic!("{} not listed: {officers:?}", who.name));
    let sources = row["sources"].as_array().unwrap();
    assert!(sources.contains(&json!("self_registered")), "{row}");
    assert_eq!(row["methods"], json!(["password", "sms"]), "{row}");
    let v = b
        .login_by_password(A_USCC, A_PASSWORD, who.phone, password)
        .await
        .expect(200)
        .json();
    assert_eq!(v["officer"]["name"], who.name, "{v}");
    // Default grants: all of 我要办税 and nothing else (AM3).
    assert_eq!(module_ids(&v), vec!["wybs"], "{v}");
    let s = b.get("/api/v1/session").await.expect(200).json();
    assert_eq!(s["enterprise"]["uscc"], A_USCC);
    assert_eq!(s["officer"]["name"], who.name);
}

// --- Happy paths ------------------------------------------------------------------

#[tokio::test]
async fn person_registration_then_enterprise_user_then_password_login() {
    let gw = quick_gateway().await;
    let mut b = Browser::new(&gw);
    let authorities = b.get("/api/v1/tax-authorities").await.expect(200).json();
    assert!(
        authorities
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["code"] == WUHUA),
        "{authorities}"
    );
    b.register_person(HAN, PASSWORD).await;
    // The registered person binds himself to A with the same password (RG2 note a).
    let v = b.enterprise_user(HAN, PASSWORD, A_USCC, ZHAO.phone).await;
    assert!(v["grants"].to_string().contains("wybs"), "{v}");
    assert_self_registered_and_login(&mut b, HAN, PASSWORD).await;
}

#[tokio::test]
async fn enterprise_user_registration_then_password_login() {
    let gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    let ticket = b.enterprise_user_start(WANG, PASSWORD).await;
    let v = b.authorizers(&ticket, A_USCC).await.expect(200).json();
    assert_eq!(v["enterprise"]["name"], "测试企业甲有限公司", "{v}");
    // Only the legal rep and the finance officer may approve, masked.
    let list = v["authorizers"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    let zhao = row_by_phone(&v["authorizers"], ZHAO.phone);
    assert_eq!(zhao["role"], "legal_rep");
    assert_eq!(zhao["name_masked"], "赵*");
    let qian = row_by_phone(&v["authorizers"], QIAN.phone);
    assert_eq!(qian["role"], "finance_officer");
    let text = v.to_string();
    for secret in [
        ZHAO.phone,
        ZHAO.name,
        ZHAO.id_number,
        QIAN.phone,
        QIAN.id_number,
    ] {
        assert!(!text.contains(secret), "{secret} shown in {text}");
    }
    let aid = zhao["authorizer_id"].as_str().unwrap().to_string();
    let code = b.authorizer_sms(&ticket, A_USCC, &aid, ZHAO.phone).await;
    // The approval code goes to the authorizer only.
    assert!(sms_codes(&gw.outbox, WANG.phone, "authorize").is_empty());
    assert!(sms_codes(&gw.outbox, QIAN.phone, "authorize").is_empty());
    let v = b
        .confirm_resp(&ticket, A_USCC, &aid, &code)
        .await
        .expect(201)
        .json();
    assert!(v["grants"].to_string().contains("wybs"), "{v}");
    assert!(
        v["enterprise"].to_string().contains(A_USCC)
            || v["enterprise"].to_string().contains("测试企业甲有限公司"),
        "{v}"
    );
    assert_self_registered_and_login(&mut b, WANG, PASSWORD).await;
}

#[tokio::test]
async fn registry_person_may_register_himself_once() {
    let gw = quick_gateway().await;
    let b = Browser::new(&gw);
    // 李雷 is known from the registry only; he registers himself.
    b.register_person(LI, PASSWORD).await;
    // He stays one officer of A, not a second row.
    let officers = officers_of_a(&b).await;
    assert_eq!(officers.len(), 4, "{officers:?}");
    // A second registration, with another phone, is refused.
    let other = LI.with_phone(FREE_PHONE);
    let code = b.register_sms(FREE_PHONE).await;
    let vid = b.realname(LI).await;
    b.register_person_resp(&person_form(other, &code, PASSWORD2, &vid))
        .await
        .expect_error(409, "ALREADY_REGISTERED");
    // The refused attempt did not take the phone.
    b.register_person(OUYANG.with_phone(FREE_PHONE), PASSWORD)
        .await;
}

// --- Already registered -------------------------------------------------------------

#[tokio::test]
async fn same_phone_is_already_registered() {
    let gw = quick_gateway().await;
    let b = Browser::new(&gw);
    b.register_person(HAN, PASSWORD).await;
    let code = b.register_sms(HAN.phone).await;
    let vid = b.realname(WANG).await;
    let r = b
        .register_person_resp(&person_form(
            WANG.with_phone(HAN.phone),
            &code,
            PASSWORD,
            &vid,
        ))
        .await
        .expect_error(409, "ALREADY_REGISTERED");
    assert!(!r.json()["error"]["message"].as_str().unwrap().is_empty());
    // 王小明's ID number was not taken by the refused attempt.
    b.register_person(WANG, PASSWORD).await;
}

#[tokio::test]
async fn same_id_number_is_already_registered() {
    let gw = quick_gateway().await;
    let b = Browser::new(&gw);
    b.register_person(HAN, PASSWORD).await;
    let code = b.register_sms(WANG.phone).await;
    let vid = b.realname(HAN).await;
    b.register_person_resp(&person_form(
        HAN.with_phone(WANG.phone),
        &code,
        PASSWORD,
        &vid,
    ))
    .await
    .expect_error(409, "ALREADY_REGISTERED");
    // The phone was not taken by the refused attempt.
    b.register_person(WANG, PASSWORD).await;
}

// --- Bad input ------------------------------------------------------------------------

/// A form for `who` that is correct except `field` = `value`; refused with INVALID_INPUT
/// naming the field; then `who` registers correctly.
async fn refused_then_registers(who: Someone, field_name: &str, value: &str) {
    let gw = quick_gateway().await;
    let b = Browser::new(&gw);
    let code = b.register_sms(who.phone).await;
    let vid = b.realname(who).await;
    let mut form = person_form(who, &code, PASSWORD, &vid);
    form[field_name] = json!(value);
    expect_invalid(b.register_person_resp(&form).await, field_name);
    let mut form = enterprise_user_form(who, &code, PASSWORD, &vid);
    form[field_name] = json!(value);
    expect_invalid(b.enterprise_user_start_resp(&form).await, field_name);
    b.register_person(who, PASSWORD).await;
}

#[tokio::test]
async fn bad_id_check_character_is_invalid_input() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    expect_invalid(b.realname_start(WANG.name, BAD_CHECK_ID).await, "id_number");
    drop(gw);
    refused_then_registers(WANG, "id_number", BAD_CHECK_ID).await;
}

#[tokio::test]
async fn impossible_birth_date_is_invalid_input() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    expect_invalid(
        b.realname_start(OUYANG.name, BAD_DATE_ID).await,
        "id_number",
    );
    drop(gw);
    // 欧阳雪 was born on 2000-02-29, a real date: she registers afterwards.
    refused_then_registers(OUYANG, "id_number", BAD_DATE_ID).await;
}

#[tokio::test]
async fn bad_phone_is_invalid_input() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    expect_invalid(b.register_sms_resp(BAD_PHONE).await, "phone");
    assert!(sms_codes(&gw.outbox, BAD_PHONE, "register").is_empty());
    let vid = b.realname(WANG).await;
    let form = person_form(WANG.with_phone(BAD_PHONE), "123456", PASSWORD, &vid);
    expect_invalid(b.register_person_resp(&form).await, "phone");
    let form = enterprise_user_form(WANG.with_phone(BAD_PHONE), "123456", PASSWORD, &vid);
    expect_invalid(b.enterprise_user_start_resp(&form).await, "phone");
    b.register_person(WANG, PASSWORD).await;
}

#[tokio::test]
async fn weak_or_common_passwords_are_invalid_input() {
    let gw = quick_gateway().await;
    let b = Browser::new(&gw);
    for weak in WEAK_PASSWORDS {
        let code = b.register_sms(WANG.phone).await;
        let vid = b.realname(WANG).await;
        let r = b
            .register_person_resp(&person_form(WANG, &code, weak, &vid))
            .await;
        expect_invalid(r, "password");
        // 企业用户注册 of a new person sets the password too: same policy.
        let r = b
            .enterprise_user_start_resp(&enterprise_user_form(WANG, &code, weak, &vid))
            .await;
        expect_invalid(r, "password");
    }
    // A good one registers.
    b.register_person(WANG, PASSWORD).await;
}

#[tokio::test]
async fn unknown_tax_authority_is_invalid_input() {
    let gw = quick_gateway().await;
    let b = Browser::new(&gw);
    let code = b.register_sms(HAN.phone).await;
    let vid = b.realname(HAN).await;
    let mut form = person_form(HAN, &code, PASSWORD, &vid);
    form["tax_authority"] = json!("99999999999");
    expect_invalid(b.register_person_resp(&form).await, "tax_authority");
    b.register_person(HAN, PASSWORD).await;
}

// --- Real-name verification -----------------------------------------------------------

#[tokio::test]
async fn realname_mismatch_is_realname_failed() {
    let gw = quick_gateway().await;
    let b = Browser::new(&gw);
    // Someone the provider does not know fails.
    let (_, status) = b.realname_decided("张三", "11010519491231002X").await;
    assert_eq!(status, "failed");
    // 王小明's name with 韩梅梅's ID number: not a real person.
    let impostor = Someone {
        id_number: HAN.id_number,
        ..WANG
    };
    let (vid, status) = b.realname_decided(impostor.name, impostor.id_number).await;
    assert_eq!(status, "failed");
    let code = b.register_sms(WANG.phone).await;
    b.register_person_resp(&person_form(impostor, &code, PASSWORD, &vid))
        .await
        .expect_error(400, "REALNAME_FAILED");
    // Nothing was taken: neither the phone nor the ID number.
    b.register_person(HAN, PASSWORD).await;
    b.register_person(WANG, PASSWORD).await;
}

#[tokio::test]
async fn verification_of_another_person_is_realname_failed() {
    let gw = quick_gateway().await;
    let b = Browser::new(&gw);
    let han_vid = b.realname(HAN).await;
    let code = b.register_sms(WANG.phone).await;
    b.register_person_resp(&person_form(WANG, &code, PASSWORD, &han_vid))
        .await
        .expect_error(400, "REALNAME_FAILED");
    let code = b.register_sms(WANG.phone).await;
    b.enterprise_user_start_resp(&enterprise_user_form(WANG, &code, PASSWORD, &han_vid))
        .await
        .expect_error(400, "REALNAME_FAILED");
    b.register_person(WANG, PASSWORD).await;
}

#[tokio::test]
async fn verification_is_single_use() {
    let gw = quick_gateway().await;
    let b = Browser::new(&gw);
    let code = b.register_sms(HAN.phone).await;
    let vid = b.realname(HAN).await;
    b.register_person_resp(&person_form(HAN, &code, PASSWORD, &vid))
        .await
        .expect(201);
    // The registration used the verification up: it is gone.
    b.get(&format!("/api/v1/realname/{vid}"))
        .await
        .expect_error(404, "NOT_FOUND");
    let code = b.register_sms(HAN.phone).await;
    b.enterprise_user_start_resp(&enterprise_user_form(HAN, &code, PASSWORD, &vid))
        .await
        .expect_error(400, "REALNAME_FAILED");
    // A fresh verification works.
    b.enterprise_user_start(HAN, PASSWORD).await;
}

#[tokio::test]
async fn unknown_verification_id_is_realname_failed() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let code = b.register_sms(HAN.phone).await;
    b.register_person_resp(&person_form(HAN, &code, PASSWORD, "no-such-verification"))
        .await
        .expect_error(400, "REALNAME_FAILED");
}

// --- 企业用户注册: password, steps, authorizers ------------------------------------------

#[tokio::test]
async fn existing_person_must_give_his_password() {
    let gw = quick_gateway().await;
    let mut b = Browser::new(&gw);
    b.register_person(HAN, PASSWORD).await;
    let code = b.register_sms(HAN.phone).await;
    let vid = b.realname(HAN).await;
    b.enterprise_user_start_resp(&enterprise_user_form(HAN, &code, PASSWORD2, &vid))
        .await
        .expect_error(400, "PASSWORD_MISMATCH");
    // His password is unchanged: the right one binds him, the other one does not log in.
    b.enterprise_user(HAN, PASSWORD, A_USCC, ZHAO.phone).await;
    b.login_by_password(A_USCC, A_PASSWORD, HAN.phone, PASSWORD2)
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    b.login_by_password(A_USCC, A_PASSWORD, HAN.phone, PASSWORD)
        .await
        .expect(200);
}

#[tokio::test]
async fn confirm_without_authorizer_sms_is_refused() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let ticket = b.enterprise_user_start(WANG, PASSWORD).await;
    let aid = b.authorizer_id(&ticket, A_USCC, ZHAO.phone).await;
    b.confirm_resp(&ticket, A_USCC, &aid, "000000")
        .await
        .expect_error(400, "SMS_CODE_INVALID");
    // His own registration code is no approval either.
    let own = last_code(&gw.outbox, WANG.phone, "register");
    b.confirm_resp(&ticket, A_USCC, &aid, &own)
        .await
        .expect_error(400, "SMS_CODE_INVALID");
    assert_not_listed_in_a(&b, WANG.phone).await;
    // The real approval still completes the flow.
    let code = b.authorizer_sms(&ticket, A_USCC, &aid, ZHAO.phone).await;
    b.confirm_resp(&ticket, A_USCC, &aid, &code)
        .await
        .expect(201);
}

#[tokio::test]
async fn wrong_authorizer_code_is_refused() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let ticket = b.enterprise_user_start(WANG, PASSWORD).await;
    let aid = b.authorizer_id(&ticket, A_USCC, ZHAO.phone).await;
    let code = b.authorizer_sms(&ticket, A_USCC, &aid, ZHAO.phone).await;
    b.confirm_resp(&ticket, A_USCC, &aid, wrong_code(&code))
        .await
        .expect_error(400, "SMS_CODE_INVALID");
    assert_not_listed_in_a(&b, WANG.phone).await;
    b.confirm_resp(&ticket, A_USCC, &aid, &code)
        .await
        .expect(201);
}

#[tokio::test]
async fn registration_ticket_is_single_use() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let ticket = b.enterprise_user_start(WANG, PASSWORD).await;
    let aid = b.authorizer_id(&ticket, A_USCC, ZHAO.phone).await;
    let code = b.authorizer_sms(&ticket, A_USCC, &aid, ZHAO.phone).await;
    b.confirm_resp(&ticket, A_USCC, &aid, &code)
        .await
        .expect(201);
    b.confirm_resp(&ticket, A_USCC, &aid, &code)
        .await
        .expect_error(401, "TICKET_INVALID");
    b.authorizers(&ticket, A_USCC)
        .await
        .expect_error(401, "TICKET_INVALID");
    b.authorizer_sms_resp(&ticket, A_USCC, &aid)
        .await
        .expect_error(401, "TICKET_INVALID");
    assert_eq!(sms_codes(&gw.outbox, ZHAO.phone, "authorize").len(), 1);
    // One binding, not two.
    let officers = officers_of_a(&b).await;
    assert_eq!(officers.len(), 5, "{officers:?}");
}

#[tokio::test]
async fn registration_ticket_is_bound_to_its_client() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let ticket = b.enterprise_user_start(WANG, PASSWORD).await;
    let aid = b.authorizer_id(&ticket, A_USCC, ZHAO.phone).await;
    let other = Browser::with_agent(&gw, "someone-else");
    other
        .authorizers(&ticket, A_USCC)
        .await
        .expect_error(401, "TICKET_INVALID");
    other
        .authorizer_sms_resp(&ticket, A_USCC, &aid)
        .await
        .expect_error(401, "TICKET_INVALID");
    assert!(sms_codes(&gw.outbox, ZHAO.phone, "authorize").is_empty());
    b.authorizers("forged-ticket", A_USCC)
        .await
        .expect_error(401, "TICKET_INVALID");
    // Its own client still can.
    b.authorizers(&ticket, A_USCC).await.expect(200);
}

#[tokio::test]
async fn authorizer_of_another_enterprise_is_refused() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let ticket = b.enterprise_user_start(WANG, PASSWORD).await;
    // A tax officer is no authorizer.
    let v = b.authorizers(&ticket, A_USCC).await.expect(200).json();
    assert!(
        v["authorizers"].as_array().unwrap().iter().all(
            |a| a["phone_masked"] != masked(SUN_PHONE) && a["phone_masked"] != masked(LI.phone)
        ),
        "{v}"
    );
    // 周杰 approves for B, not for A.
    let zhou = b.authorizer_id(&ticket, B_USCC, ZHOU.phone).await;
    expect_invalid(
        b.authorizer_sms_resp(&ticket, A_USCC, &zhou).await,
        "authorizer_id",
    );
    expect_invalid(
        b.confirm_resp(&ticket, A_USCC, &zhou, "000000").await,
        "authorizer_id",
    );
    expect_invalid(
        b.authorizer_sms_resp(&ticket, A_USCC, "not-an-authorizer")
            .await,
        "authorizer_id",
    );
    assert!(sms_codes(&gw.outbox, ZHOU.phone, "authorize").is_empty());
    assert_not_listed_in_a(&b, WANG.phone).await;
}

#[tokio::test]
async fn enterprise_not_in_the_registry_is_not_found() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let ticket = b.enterprise_user_start(WANG, PASSWORD).await;
    b.authorizers(&ticket, UNKNOWN_USCC)
        .await
        .expect_error(404, "NOT_FOUND");
    // A malformed USCC is bad input, not a search.
    b.authorizers(&ticket, "91110000600037341M")
        .await
        .expect_error(400, "INVALID_INPUT");
    // The ticket is still good for a registered enterprise.
    b.authorizers(&ticket, A_USCC).await.expect(200);
}

// --- SMS resend, concurrency, restart ------------------------------------------------------

#[tokio::test]
async fn register_sms_resend_within_60s_is_rate_limited() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let code = b.register_sms(HAN.phone).await;
    let r = b
        .register_sms_resp(HAN.phone)
        .await
        .expect_error(429, "RATE_LIMITED");
    let retry = retry_after(&r);
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(sms_codes(&gw.outbox, HAN.phone, "register").len(), 1);
    // The first code still works.
    let vid = b.realname(HAN).await;
    b.register_person_resp(&person_form(HAN, &code, PASSWORD, &vid))
        .await
        .expect(201);
}

#[tokio::test]
async fn simultaneous_identical_registrations_create_one_person() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let code = b.register_sms(HAN.phone).await;
    let vid = b.realname(HAN).await;
    let form = person_form(HAN, &code, PASSWORD, &vid);
    let (r1, r2) = tokio::join!(b.register_person_resp(&form), b.register_person_resp(&form));
    let (ok, refused) = match (r1.status, r2.status) {
        (201, _) => (r1, r2),
        (_, 201) => (r2, r1),
        _ => panic!(
            "no registration succeeded: {} {} / {} {}",
            r1.status,
            String::from_utf8_lossy(&r1.body),
            r2.status,
            String::from_utf8_lossy(&r2.body)
        ),
    };
    assert!(ok.json()["person_id"].is_string());
    // The loser lost the shared SMS code, the shared verification or the uniqueness race.
    let code = refused.code();
    let status = refused.status;
    assert!(
        matches!(
            (status, code.as_str()),
            (400, "SMS_CODE_INVALID") | (409, "ALREADY_REGISTERED") | (400, "REALNAME_FAILED")
        ),
        "second registration: {status} {}",
        String::from_utf8_lossy(&refused.body)
    );
    // Exactly one person holds that ID number.
    let code = b.register_sms(WANG.phone).await;
    let vid = b.realname(HAN).await;
    b.register_person_resp(&person_form(
        HAN.with_phone(WANG.phone),
        &code,
        PASSWORD,
        &vid,
    ))
    .await
    .expect_error(409, "ALREADY_REGISTERED");
}

#[tokio::test]
async fn simultaneous_registrations_of_one_id_number_create_one_person() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    // Two phones, each with its own code and verification, claim one ID number at once.
    let first = HAN;
    let second = HAN.with_phone(WANG.phone);
    let code1 = b.register_sms(first.phone).await;
    let code2 = b.register_sms(second.phone).await;
    let vid1 = b.realname(HAN).await;
    let vid2 = b.realname(HAN).await;
    let form1 = person_form(first, &code1, PASSWORD, &vid1);
    let form2 = person_form(second, &code2, PASSWORD, &vid2);
    let (r1, r2) = tokio::join!(
        b.register_person_resp(&form1),
        b.register_person_resp(&form2)
    );
    let mut statuses = [r1.status, r2.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [201, 409],
        "{} / {}",
        String::from_utf8_lossy(&r1.body),
        String::from_utf8_lossy(&r2.body)
    );
    let refused = if r1.status == 409 { r1 } else { r2 };
    assert_eq!(refused.code(), "ALREADY_REGISTERED");
}

#[tokio::test]
async fn registrations_survive_a_restart() {
    let mut gw = quick_gateway().await;
    let mut b = Browser::new(&gw);
    b.register_person(HAN, PASSWORD).await;
    b.enterprise_user(WANG, PASSWORD, A_USCC, ZHAO.phone).await;
    gw.crash_and_restart();
    b.follow(&gw);
    // RG1: the ID number and the phone are still taken.
    let code = b.register_sms(FREE_PHONE).await;
    let vid = b.realname(HAN).await;
    b.register_person_resp(&person_form(
        HAN.with_phone(FREE_PHONE),
        &code,
        PASSWORD,
        &vid,
    ))
    .await
    .expect_error(409, "ALREADY_REGISTERED");
    let code = b.register_sms(HAN.phone).await;
    let vid = b.realname(OUYANG).await;
    b.register_person_resp(&person_form(
        OUYANG.with_phone(HAN.phone),
        &code,
        PASSWORD,
        &vid,
    ))
    .await
    .expect_error(409, "ALREADY_REGISTERED");
    // RG2: the binding and the password are still there.
    assert_self_registered_and_login(&mut b, WANG, PASSWORD).await;
}
