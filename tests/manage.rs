//! User management and the authorization it drives (seed §3, SPEC AM1–AM5, L5, S9).

use crate::harness::flows::{HAN, PASSWORD, WANG};
use crate::harness::fx::*;
use crate::harness::gateway::run_cli;
use crate::harness::{Browser, Gateway, GatewayOptions};
use serde_json::{json, Value};

/// 韩梅梅 registers herself (自然人注册), then 赵敏 (A's legal rep) adds her to A with
/// no password of his choosing (she has her own). Returns (admin browser, her person id).
async fn han_added_to_a(gw: &Gateway) -> (Browser, String) {
    let han = Browser::with_agent(gw, "han");
    let person_id = han.register_person(HAN, PASSWORD).await;
    let mut admin = Browser::with_agent(gw, "admin");
    admin.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    let found = admin
        .get(&format!(
            "/api/v1/enterprise/candidates?q={}",
            HAN.id_number
        ))
        .await
        .expect(200)
        .json();
    assert_eq!(
        found,
        json!([{"person_id": person_id, "name_masked": "韩*梅", "realname_verified": true}])
    );
    let added = admin
        .post("/api/v1/enterprise/users", &json!({"person_id": person_id}))
        .await
        .expect(201)
        .json();
    assert_eq!(
        added["grants"],
        json!(["wybs"]),
        "default grant is all of 我要办税: {added}"
    );
    assert_eq!(added["password_set"], false);
    (admin, person_id)
}

/// The person id of the user called `name` in a `GET /enterprise/users` answer.
fn person_id_of(users: &Value, name: &str) -> String {
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no user {name} in {users}"))["person_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn ids(modules: &Value) -> Vec<String> {
    modules
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_added_user_logs_in_by_password_and_gets_the_default_modules() {
    let gw = Gateway::start().await;
    let (_, _) = han_added_to_a(&gw).await;
    let mut han = Browser::with_agent(&gw, "han-login");
    let s1 = han.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let row = s1["officers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name_masked"] == "韩*梅")
        .unwrap()
        .clone();
    assert_eq!(row["sources"], json!(["added"]));
    assert_eq!(row["methods"], json!(["password", "sms"]));
    // Wrong personal password, then the right one.
    han.login_by_password(A_USCC, A_PASSWORD, HAN.phone, "Wrong-Pass-2026")
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    let v = han
        .login_by_password(A_USCC, A_PASSWORD, HAN.phone, PASSWORD)
        .await
        .expect(200)
        .json();
    assert_eq!(v["officer"]["name"], "韩梅梅");
    assert_eq!(ids(&v["modules"]), vec!["wybs"]);
    han.get("/tax/zzs/x").await.expect(200);
    han.get("/query/sbxx/x")
        .await
        .expect_error(403, "FORBIDDEN");
}

#[tokio::test]
async fn a_tax_officer_may_not_manage_users() {
    let gw = Gateway::start().await;
    let mut li = Browser::new(&gw);
    li.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    li.get("/api/v1/enterprise/users")
        .await
        .expect_error(403, "FORBIDDEN");
    li.get("/api/v1/enterprise/candidates?q=13900000101")
        .await
        .expect_error(403, "FORBIDDEN");
    li.post("/api/v1/enterprise/users", &json!({"person_id": "x"}))
        .await
        .expect_error(403, "FORBIDDEN");
    li.send(
        "PUT",
        "/api/v1/enterprise/users/x/grants",
        &[],
        Some(r#"{"modules":[]}"#),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    Browser::new(&gw)
        .get("/api/v1/enterprise/users")
        .await
        .expect_error(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_legal_rep_of_one_enterprise_cannot_touch_another() {
    let gw = Gateway::start().await;
    // 周杰 is B's legal rep; 孙悦 is an officer of A and of B; 李雷 only of A.
    let mut zhou = Browser::new(&gw);
    zhou.login_by_sms(B_USCC, B_PASSWORD, ZHOU_PHONE).await;
    let b_users = zhou
        .get("/api/v1/enterprise/users")
        .await
        .expect(200)
        .json();
    assert_eq!(b_users.as_array().unwrap().len(), 2, "{b_users}");
    let mut zhao = Browser::with_agent(&gw, "zhao");
    zhao.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    let a_users = zhao
        .get("/api/v1/enterprise/users")
        .await
        .expect(200)
        .json();
    let li = person_id_of(&a_users, "李雷");
    // 李雷 is not bound to B: B's legal rep cannot see or change him.
    zhou.send(
        "PUT",
        &format!("/api/v1/enterprise/users/{li}/grants"),
        &[],
        Some(r#"{"modules":["wycx"]}"#),
    )
    .await
    .expect_error(404, "NOT_FOUND");
    // And A's grants of 李雷 are unchanged.
    let after = zhao
        .get("/api/v1/enterprise/users")
        .await
        .expect(200)
        .json();
    assert_eq!(a_users, after);
    // CSRF is required for management writes.
    zhao.csrf = None;
    zhao.send(
        "PUT",
        &format!("/api/v1/enterprise/users/{li}/grants"),
        &[],
        Some(r#"{"modules":["wycx"]}"#),
    )
    .await
    .expect_error(403, "CSRF_INVALID");
}

#[tokio::test]
async fn grant_then_revoke_applies_to_the_very_next_request() {
    let gw = Gateway::start().await;
    let mut li = Browser::with_agent(&gw, "li");
    li.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    li.get("/query/sbxx/x").await.expect_error(403, "FORBIDDEN");

    let mut zhao = Browser::with_agent(&gw, "zhao");
    zhao.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    let users = zhao
        .get("/api/v1/enterprise/users")
        .await
        .expect(200)
        .json();
    let li_id = person_id_of(&users, "李雷");
    let path = format!("/api/v1/enterprise/users/{li_id}/grants");
    let r = zhao
        .send(
            "PUT",
            &path,
            &[],
            Some(r#"{"modules":["wycx", "wybs.sfsb.zzs"]}"#),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(r["bound"], true);
    assert_eq!(r["grants"], json!(["wybs.sfsb.zzs", "wycx"]));
    // Same session, no new login: 我要查询 now allowed, other 我要办税 modules no longer.
    li.get("/query/sbxx/x").await.expect(200);
    li.get("/tax/zzs/x").await.expect(200);
    li.get("/wdxx/nsrxx/x").await.expect_error(403, "FORBIDDEN");
    let s = li.get("/api/v1/session").await.expect(200).json();
    assert_eq!(
        ids(&s["modules"]),
        vec!["wybs", "wycx"],
        "the menu follows the grants"
    );

    zhao.send("PUT", &path, &[], Some(r#"{"modules":["wybs.sfsb.zzs"]}"#))
        .await
        .expect(200);
    li.get("/query/sbxx/x").await.expect_error(403, "FORBIDDEN");
    assert_eq!(gw.module("wycx.sbxx").hits(), 1);

    // Unknown modules are refused and change nothing.
    zhao.send("PUT", &path, &[], Some(r#"{"modules":["no.such.module"]}"#))
        .await
        .expect_error(400, "INVALID_INPUT");
    li.get("/tax/zzs/x").await.expect(200);
}

#[tokio::test]
async fn revoking_everything_unbinds_ends_the_session_and_login_says_not_bound() {
    let gw = Gateway::start().await;
    let mut li = Browser::with_agent(&gw, "li");
    li.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    // His session is in use (and so in the gateway's session cache) before the unbinding.
    li.get("/tax/zzs/x").await.expect(200);
    // A second browser already holds a stage-1 list that shows him (L5).
    let late = Browser::with_agent(&gw, "late");
    let s1 = late.stage1(A_USCC, A_PASSWORD).await.expect(200).json();

    let mut zhao = Browser::with_agent(&gw, "zhao");
    zhao.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    let users = zhao
        .get("/api/v1/enterprise/users")
        .await
        .expect(200)
        .json();
    let li_id = person_id_of(&users, "李雷");
    let r = zhao
        .send(
            "PUT",
            &format!("/api/v1/enterprise/users/{li_id}/grants"),
            &[],
            Some(r#"{"modules":[]}"#),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(r, json!({"grants": [], "bound": false}));

    // His live session is over.
    li.get("/api/v1/session")
        .await
        .expect_error(401, "UNAUTHENTICATED");
    li.get("/tax/zzs/x")
        .await
        .expect_error(401, "UNAUTHENTICATED");
    // The list shown before the unbinding: stage 2 says 未绑定企业.
    let r = late
        .post(
            "/api/v1/login/officer/sms",
            &json!({"login_ticket": s1["login_ticket"], "officer_id": crate::harness::client::officer_id(&s1, LI_PHONE)}),
        )
        .await
        .expect_error(403, "NOT_BOUND");
    assert_eq!(r.json()["error"]["message"], "未绑定企业");
    // A new login no longer lists him.
    let s1 = late.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    assert!(!s1
        .to_string()
        .contains(&crate::harness::client::masked(LI_PHONE)));
    let users = zhao
        .get("/api/v1/enterprise/users")
        .await
        .expect(200)
        .json();
    assert!(!users.to_string().contains("李雷"));

    // Legal rep and finance officer cannot be unbound here.
    let qian = person_id_of(&users, "钱进");
    zhao.send(
        "PUT",
        &format!("/api/v1/enterprise/users/{qian}/grants"),
        &[],
        Some(r#"{"modules":[]}"#),
    )
    .await
    .expect_error(403, "FORBIDDEN");

    // Every step is in the audit trail.
    drop(li);
    let mut gw = gw;
    gw.stop();
    let (ok, out, err) = run_cli(&["audit", "export", "--config", gw.config.to_str().unwrap()]);
    assert!(ok, "{err}");
    for action in [
        "\"manage.unbind\"",
        "\"login.officer\"",
        "\"login.enterprise\"",
        "\"login.sms_sent\"",
    ] {
        assert!(out.contains(action), "{action} missing from audit:\n{out}");
    }
    assert!(out
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
}

#[tokio::test]
async fn adding_users_checks_realname_and_never_overwrites_a_password() {
    let gw = Gateway::start().await;
    let (mut admin, han_id) = han_added_to_a(&gw).await;
    // Twice: refused, nothing changes.
    admin
        .post("/api/v1/enterprise/users", &json!({"person_id": han_id}))
        .await
        .expect_error(409, "ALREADY_REGISTERED");
    // A person id that does not exist.
    admin
        .post(
            "/api/v1/enterprise/users",
            &json!({"person_id": "0000000000000000"}),
        )
        .await
        .expect_error(404, "NOT_FOUND");
    // A registry-only person of B who never did real-name verification is no candidate.
    let none = admin
        .get("/api/v1/enterprise/candidates?q=13900000005")
        .await
        .expect(200)
        .json();
    assert_eq!(none, json!([]));
    // The query is bounded in characters, not bytes: 24 Chinese characters pass, 25 do not.
    let q = |n: usize| format!("/api/v1/enterprise/candidates?q={}", "%E5%BC%A0".repeat(n));
    admin.get(&q(24)).await.expect(200);
    admin.get(&q(25)).await.expect_error(400, "INVALID_INPUT");
    // Adding with a password for someone who has one leaves hers in force.
    let wang = Browser::with_agent(&gw, "wang");
    let wang_id = wang.register_person(WANG, PASSWORD).await;
    let r = admin
        .post(
            "/api/v1/enterprise/users",
            &json!({"person_id": wang_id, "password": "Admin-Chosen-2026"}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(r["password_set"], false);
    let mut w = Browser::with_agent(&gw, "wang-login");
    w.login_by_password(A_USCC, A_PASSWORD, WANG.phone, "Admin-Chosen-2026")
        .await
        .expect_error(401, "BAD_CREDENTIALS");
    w.login_by_password(A_USCC, A_PASSWORD, WANG.phone, PASSWORD)
        .await
        .expect(200);
    admin.csrf = None;
    admin
        .post("/api/v1/enterprise/users", &json!({"person_id": wang_id}))
        .await
        .expect_error(403, "CSRF_INVALID");
}

#[tokio::test]
async fn five_wrong_personal_passwords_lock_the_password_but_not_sms() {
    // Her registration SMS went to the same phone a moment ago (one code per phone per
    // resend interval), so the interval is short here.
    let gw = Gateway::start_with(GatewayOptions {
        extra_yaml: "limits: {sms_resend_seconds: 1}".into(),
        ..Default::default()
    })
    .await;
    han_added_to_a(&gw).await;
    let mut han = Browser::with_agent(&gw, "han-login");
    for i in 0..4 {
        han.login_by_password(A_USCC, A_PASSWORD, HAN.phone, &format!("Wrong-Pass-{i}"))
            .await
            .expect_error(401, "BAD_CREDENTIALS");
    }
    let r = han
        .login_by_password(A_USCC, A_PASSWORD, HAN.phone, "Wrong-Pass-5")
        .await
        .expect_error(429, "LOCKED");
    assert!(r.json()["error"]["retry_after"].as_u64().unwrap() > 800);
    han.login_by_password(A_USCC, A_PASSWORD, HAN.phone, PASSWORD)
        .await
        .expect_error(429, "LOCKED");
    // The lock covers the password only: she still gets in by SMS (README, lockout).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    han.login_by_sms(A_USCC, A_PASSWORD, HAN.phone).await;
    han.get("/tax/zzs/x").await.expect(200);
}
