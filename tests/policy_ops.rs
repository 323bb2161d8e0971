//! Policy operations (SPEC S10, AM3): live reload without restart, broken edits refused
//! with Cedar's message while the previous set stays in force, metrics.

use crate::harness::fx::*;
use crate::harness::{Browser, Gateway, GatewayOptions};
use std::time::Duration;

async fn admin_get(gw: &Gateway, path: &str) -> (u16, String) {
    let b = Browser::admin(gw);
    let r = b.get(path).await;
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

async fn admin_post(gw: &Gateway, path: &str) -> (u16, serde_json::Value) {
    let b = Browser::admin(gw);
    let r = b.send("POST", path, &[], None).await;
    (r.status, r.json())
}

async fn policy_version(gw: &Gateway) -> u64 {
    let (_, body) = admin_get(gw, "/admin/policies").await;
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["version"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn editing_the_default_grant_changes_every_default_user_without_restart() {
    let gw = Gateway::start_with(GatewayOptions {
        own_policies: true,
        ..Default::default()
    })
    .await;
    let mut li = Browser::new(&gw);
    li.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    li.get("/tax/zzs/x").await.expect(200);
    li.get("/query/sbxx/x").await.expect_error(403, "FORBIDDEN");
    assert_eq!(policy_version(&gw).await, 1);

    // The security admin changes the default from 我要办税 to 我要查询.
    let file = gw.policies.join("modules.cedar");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(r#"resource in Module::"wybs""#));
    std::fs::write(
        &file,
        text.replace(
            r#"resource in Module::"wybs""#,
            r#"resource in Module::"wycx""#,
        ),
    )
    .unwrap();

    // The watcher picks it up; no restart, same session.
    let mut version = 1;
    for _ in 0..100 {
        version = policy_version(&gw).await;
        if version == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(version, 2, "the edit was not reloaded");
    li.get("/query/sbxx/x").await.expect(200);
    li.get("/tax/zzs/x").await.expect_error(403, "FORBIDDEN");
    let s = li.get("/api/v1/session").await.expect(200).json();
    assert_eq!(s["modules"][0]["id"], "wycx");
}

#[tokio::test]
async fn a_broken_policy_is_refused_and_the_previous_set_stays_in_force() {
    let gw = Gateway::start_with(GatewayOptions {
        own_policies: true,
        ..Default::default()
    })
    .await;
    let mut li = Browser::new(&gw);
    li.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;

    // A policy that does not validate against the schema (no such attribute).
    std::fs::write(
        gw.policies.join("broken.cedar"),
        "@id(\"everyone\")\npermit (principal is Officer, action, resource) when { principal.superuser };\n",
    )
    .unwrap();
    let (status, v) = admin_post(&gw, "/admin/policies/reload").await;
    assert_eq!(status, 422, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("broken.cedar") && message.contains("superuser"),
        "{message}"
    );
    let (_, body) = admin_get(&gw, "/admin/policies").await;
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["version"], 1);
    assert_eq!(status["last_reload"]["result"], "failed", "{status}");
    // The old decisions hold.
    li.get("/tax/zzs/x").await.expect(200);
    li.get("/query/sbxx/x").await.expect_error(403, "FORBIDDEN");

    // A syntax error too.
    std::fs::write(
        gw.policies.join("broken.cedar"),
        "permit (principal, action, resource\n",
    )
    .unwrap();
    let (status, _) = admin_post(&gw, "/admin/policies/reload").await;
    assert_eq!(status, 422);
    li.get("/query/sbxx/x").await.expect_error(403, "FORBIDDEN");

    // Fixed: the reload goes through.
    std::fs::remove_file(gw.policies.join("broken.cedar")).unwrap();
    let (status, v) = admin_post(&gw, "/admin/policies/reload").await;
    assert_eq!(status, 200, "{v}");
    assert!(v["status"]["version"].as_u64().unwrap() >= 2);

    let (status, metrics) = admin_get(&gw, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("taxgate_policy_reloads_total{result=\"failed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("taxgate_decisions_total{outcome=\"deny\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("taxgate_logins_total{result=\"ok\",stage=\"officer\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn check_command_reports_a_broken_policy_and_accepts_the_shipped_ones() {
    let gw = Gateway::start_with(GatewayOptions {
        own_policies: true,
        ..Default::default()
    })
    .await;
    let config = gw.config.to_str().unwrap();
    let (ok, out, err) = crate::harness::gateway::run_cli(&["check", "--config", config]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("ok:"), "{out}");
    std::fs::write(
        gw.policies.join("broken.cedar"),
        "@id(\"x\") permit (principal, action, resource) when { 1 };\n",
    )
    .unwrap();
    let (ok, _, err) = crate::harness::gateway::run_cli(&["check", "--config", config]);
    assert!(!ok);
    assert!(err.contains("broken.cedar"), "{err}");
}
