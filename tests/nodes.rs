//! Several gateway nodes on one PostgreSQL store (README "Several nodes"): what one node
//! writes, the others honour within a second; counters are shared; a node may die; the
//! store may go away and come back. Every gateway here is on the tests' own cluster.

use crate::harness::flows::{HAN, PASSWORD};
use crate::harness::fx::*;
use crate::harness::gateway::run_cli;
use crate::harness::postgres::{self, Cluster};
use crate::harness::{Browser, Gateway, GatewayOptions, TestStore};
use serde_json::json;
use std::time::{Duration, Instant};

/// The staleness bound the README promises.
const BOUND: Duration = Duration::from_secs(1);

async fn two_nodes() -> (Gateway, Gateway) {
    let a = Gateway::start_with(GatewayOptions {
        store: TestStore::Postgres(postgres::new_database()),
        ..Default::default()
    })
    .await;
    let b = a.start_peer("node-b");
    (a, b)
}

/// `PUT …/grants` by an admin's browser; the answer must be 200.
async fn set_grants(admin: &Browser, person_id: &str, modules: serde_json::Value) {
    admin
        .send(
            "PUT",
            &format!("/api/v1/enterprise/users/{person_id}/grants"),
            &[],
            Some(&json!({ "modules": modules }).to_string()),
        )
        .await
        .expect(200);
}

/// Polls `path` on `browser` until it answers `status`; returns how long that took.
async fn until_status(browser: &Browser, path: &str, status: u16, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = browser.get(path).await;
        if r.status == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{path} still answers {} after {limit:?}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_session_opened_on_one_node_is_served_by_the_other() {
    let (a, b) = two_nodes().await;
    let mut li = Browser::new(&a);
    li.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    li.get("/tax/zzs/declare").await.expect(200);
    li.follow(&b);
    let echo = li.get("/tax/zzs/declare").await.expect(200).json();
    assert_eq!(echo["headers"]["x-taxgate-enterprise"], A_USCC);
    assert_eq!(echo["signature_valid"], true);
    // Stage 1 on B, stage 2 on A: the login ticket is in the shared store too.
    let mut sun = Browser::with_agent(&b, "sun");
    let s1 = sun.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    let ticket = s1["login_ticket"].as_str().unwrap().to_string();
    let officer = crate::harness::client::officer_id(&s1, SUN_PHONE);
    let code = sun.login_sms_code(&ticket, &officer, SUN_PHONE).await;
    sun.follow(&a);
    sun.finish_by_sms(&ticket, &officer, &code).await;
    sun.get("/tax/zzs/x").await.expect(200);
}

#[tokio::test]
async fn a_revocation_on_one_node_is_refused_by_the_other_within_a_second() {
    let (a, b) = two_nodes().await;
    // 韩梅梅 registers and is added to A by its legal rep (on node A).
    let han = Browser::with_agent(&a, "han");
    let person_id = han.register_person(HAN, PASSWORD).await;
    let mut admin = Browser::with_agent(&a, "admin");
    admin.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    admin
        .post("/api/v1/enterprise/users", &json!({"person_id": person_id}))
        .await
        .expect(201);
    // She works on node B, whose cache now holds her session.
    let mut han = Browser::with_agent(&b, "han-login");
    han.login_by_password(A_USCC, A_PASSWORD, HAN.phone, PASSWORD)
        .await
        .expect(200);
    han.get("/tax/zzs/x").await.expect(200);
    han.get("/query/sbxx/x")
        .await
        .expect_error(403, "FORBIDDEN");

    // A grant on A reaches B: a module she could not use, then could.
    set_grants(&admin, &person_id, json!(["wybs", "wycx"])).await;
    let took = until_status(&han, "/query/sbxx/x", 200, BOUND).await;
    eprintln!("grant seen by the other node after {took:?}");

    // Revoking everything on A unbinds her: B refuses within the bound.
    set_grants(&admin, &person_id, json!([])).await;
    let took = until_status(&han, "/tax/zzs/x", 401, BOUND).await;
    eprintln!("unbinding seen by the other node after {took:?}");
    // And a new login on B no longer lists her.
    let s1 = han.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    assert!(
        s1["officers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["name_masked"] != "韩*梅"),
        "{s1}"
    );
}

#[tokio::test]
async fn a_logout_on_one_node_ends_the_session_on_the_other() {
    let (a, b) = two_nodes().await;
    let mut li = Browser::new(&a);
    li.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    let mut on_b = Browser::new(&b);
    on_b.adopt_session(&li);
    on_b.get("/tax/zzs/x").await.expect(200);
    li.post("/api/v1/logout", &json!({})).await.expect(204);
    let took = until_status(&on_b, "/tax/zzs/x", 401, BOUND).await;
    eprintln!("logout seen by the other node after {took:?}");
}

#[tokio::test]
async fn wrong_passwords_spread_over_two_nodes_lock_the_account() {
    let (a, b) = two_nodes().await;
    for i in 0..4 {
        let node = if i % 2 == 0 { &a } else { &b };
        Browser::with_agent(node, &format!("guess-{i}"))
            .stage1(A_USCC, "Wrong-Pass-2026")
            .await
            .expect_error(401, "BAD_CREDENTIALS");
    }
    Browser::with_agent(&b, "guess-4")
        .stage1(A_USCC, "Wrong-Pass-2026")
        .await
        .expect_error(429, "LOCKED");
    // Locked on both nodes, even with the right password.
    for node in [&a, &b] {
        Browser::with_agent(node, "owner")
            .stage1(A_USCC, A_PASSWORD)
            .await
            .expect_error(429, "LOCKED");
    }
}

#[tokio::test]
async fn a_node_killed_mid_work_loses_nothing_it_acknowledged() {
    let (mut a, b) = two_nodes().await;
    let mut admin = Browser::with_agent(&a, "admin");
    admin.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    let users = admin
        .get("/api/v1/enterprise/users")
        .await
        .expect(200)
        .json();
    let li = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "李雷")
        .unwrap()["person_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Acknowledged writes on A, each answered 200 …
    let mut acknowledged = Vec::new();
    for modules in [
        json!(["wybs", "wycx"]),
        json!(["wycx"]),
        json!(["wybs.sfsb", "wdxx"]),
    ] {
        set_grants(&admin, &li, modules.clone()).await;
        acknowledged.push(modules);
    }
    // … then A dies without a word; B goes on serving A's sessions.
    a.kill();
    admin.follow(&b);
    let users = admin
        .get("/api/v1/enterprise/users")
        .await
        .expect(200)
        .json();
    let row = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["person_id"] == li.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["grants"], *acknowledged.last().unwrap(), "{row}");
    let mut li_browser = Browser::with_agent(&b, "li");
    li_browser.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    li_browser.get("/wdxx/nsrxx/x").await.expect(200);
    li_browser
        .get("/query/sbxx/x")
        .await
        .expect_error(403, "FORBIDDEN");
}

#[tokio::test]
async fn the_store_going_away_is_503_and_its_return_needs_no_restart() {
    // A cluster of this test's own: stopping it must not disturb the other tests.
    let cluster = Cluster::start_private();
    cluster.psql("postgres", "CREATE DATABASE outage");
    let gw = Gateway::start_with(GatewayOptions {
        store: TestStore::Postgres(cluster.url("outage")),
        ..Default::default()
    })
    .await;
    let mut li = Browser::new(&gw);
    li.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    li.get("/tax/zzs/x").await.expect(200);

    cluster.stop();
    // Calls that need the store are 503; cached sessions fail closed once the change
    // feed is stale (README: a revocation could not reach this node meanwhile).
    Browser::new(&gw)
        .get("/api/v1/captcha")
        .await
        .expect_error(503, "UNAVAILABLE");
    let took = until_status(&li, "/tax/zzs/x", 503, Duration::from_secs(3)).await;
    eprintln!("proxied requests failed closed {took:?} after the store went away");

    cluster.restart();
    let took = until_status(&li, "/tax/zzs/x", 200, Duration::from_secs(15)).await;
    eprintln!("served again {took:?} after the store came back");
    Browser::new(&gw).get("/api/v1/captcha").await.expect(200);
    assert!(
        gw.stderr().lines().all(|l| !l.contains("panicked")),
        "{}",
        gw.stderr()
    );
}

/// A site outgrows sled: `taxgate store copy` moves everything to PostgreSQL, and the
/// same sessions, grants and passwords work there.
#[tokio::test]
async fn a_sled_site_is_copied_to_postgres_and_goes_on_there() {
    let mut gw = Gateway::start_with(GatewayOptions {
        store: TestStore::Sled,
        ..Default::default()
    })
    .await;
    let mut li = Browser::new(&gw);
    li.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    li.get("/tax/zzs/x").await.expect(200);
    let sled_config = gw.dir.path().join("sled.yaml");
    std::fs::copy(&gw.config, &sled_config).unwrap();
    gw.stop();

    let url = postgres::new_database();
    gw.switch_to_postgres(&url);
    let (ok, out, err) = run_cli(&[
        "store",
        "copy",
        "--from",
        sled_config.to_str().unwrap(),
        "--to",
        gw.config.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("from the sled store to the postgres store"),
        "{out}"
    );
    assert!(out.contains("sessions 1"), "{out}");

    gw.crash_and_restart();
    li.follow(&gw);
    li.get("/tax/zzs/x").await.expect(200);
    Browser::with_agent(&gw, "again")
        .stage1(A_USCC, A_PASSWORD)
        .await
        .expect(200);

    // A second copy into the now-used store is refused, and changes nothing.
    let (ok, _, err) = run_cli(&[
        "store",
        "copy",
        "--from",
        sled_config.to_str().unwrap(),
        "--to",
        gw.config.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("not empty"), "{err}");
    li.get("/tax/zzs/x").await.expect(200);
}

/// `/admin/policies` of `gw` once `done` holds of it (within 10 s).
async fn admin_until(gw: &Gateway, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let admin = Browser::admin(gw);
    let start = Instant::now();
    loop {
        let status = admin.get("/admin/policies").await.expect(200).json();
        if done(&status) || start.elapsed() > Duration::from_secs(10) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Policy files are per node; `/admin/policies` on any node shows every node's hash, so
/// a node left on other files is seen.
#[tokio::test]
async fn every_node_shows_every_nodes_policy_hash_and_a_skew() {
    let (a, mut b) = two_nodes().await;
    // Each node beats when it starts (on its janitor thread, beside serving).
    let status = admin_until(&a, |s| s["nodes"].as_array().is_some_and(|n| n.len() == 2)).await;
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{status}");
    assert_eq!(status["skew"], false, "{status}");
    assert!(nodes.iter().any(|n| n["node"] == status["node"]));

    // B restarts on a copy of the policies with one more comment: another hash.
    let own = b.dir.path().join("b-policies");
    std::fs::create_dir_all(&own).unwrap();
    for entry in std::fs::read_dir(&a.policies).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), own.join(entry.file_name())).unwrap();
        }
    }
    let first = std::fs::read_dir(&own)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cedar"))
        .unwrap();
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, format!("// node b\n{text}")).unwrap();
    let config = std::fs::read_to_string(&b.config).unwrap();
    let line = format!("policies: {}", a.policies.display());
    assert!(config.contains(&line));
    std::fs::write(
        &b.config,
        config.replace(&line, &format!("policies: {}", own.display())),
    )
    .unwrap();
    b.crash_and_restart();

    // B beats when it starts: A shows the skew within moments.
    let status = admin_until(&a, |s| s["skew"] == true).await;
    assert_eq!(status["skew"], true, "{status}");
    let hashes: std::collections::BTreeSet<String> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["policy_hash"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hashes.len(), 2, "{status}");
}
