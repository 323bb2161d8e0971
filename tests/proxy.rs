//! Proxied module requests: session, Cedar, signed identity, path rules (SPEC AM5, S6, S7).

use crate::harness::fx::*;
use crate::harness::{Browser, Gateway};
use hmac::{Hmac, Mac};

#[tokio::test]
async fn allowed_module_gets_the_signed_identity_and_nothing_spoofed() {
    let gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    b.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    let r = b
        .send(
            "GET",
            "/tax/zzs/declare?period=2026-10",
            &[
                ("X-Taxgate-Person", "someone-else"),
                ("x-taxgate-roles", "legal_rep"),
                ("X-TAXGATE-SIGNATURE", "00"),
                ("x-taxgate-extra", "spoof"),
                ("cookie", "theme=dark"),
            ],
            None,
        )
        .await
        .expect(200);
    let v = r.json();
    assert_eq!(v["module"], "wybs.sfsb.zzs");
    assert_eq!(v["path"], "/tax/zzs/declare?period=2026-10");
    assert_eq!(v["signature_valid"], true, "{v}");
    let h = &v["headers"];
    assert_eq!(h["x-taxgate-enterprise"], A_USCC);
    assert_eq!(h["x-taxgate-roles"], "tax_officer");
    assert_eq!(h["x-taxgate-module"], "wybs.sfsb.zzs");
    assert!(
        h.get("x-taxgate-extra").is_none(),
        "client header leaked: {h}"
    );
    assert_ne!(h["x-taxgate-person"], "someone-else");

    // Recompute the signature as a module would, from the README's contract.
    let canonical = format!(
        "taxgate-v1\n{}\n{}\n{}\n{}\n{}\n{}\nGET\n/tax/zzs/declare?period=2026-10",
        h["x-taxgate-enterprise"].as_str().unwrap(),
        h["x-taxgate-person"].as_str().unwrap(),
        h["x-taxgate-roles"].as_str().unwrap(),
        h["x-taxgate-module"].as_str().unwrap(),
        h["x-taxgate-request-id"].as_str().unwrap(),
        h["x-taxgate-timestamp"].as_str().unwrap(),
    );
    let key = hex::decode(crate::harness::gateway::KEY_HEX).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(canonical.as_bytes());
    assert_eq!(
        h["x-taxgate-signature"],
        hex::encode(mac.finalize().into_bytes())
    );

    // The module saw exactly one request, without the gateway's session cookie.
    let seen = gw.module("wybs.sfsb.zzs").received();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].cookie.as_deref(), Some("theme=dark"));
    assert_eq!(
        seen[0]
            .all_headers
            .iter()
            .filter(|(n, _)| n.starts_with("x-taxgate-"))
            .count(),
        7
    );
}

#[tokio::test]
async fn forbidden_module_is_403_and_never_reaches_the_upstream() {
    let gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    b.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    // 我要查询 is outside the default 我要办税 grant of a tax officer.
    b.get("/query/sbxx/list")
        .await
        .expect_error(403, "FORBIDDEN");
    b.send("POST", "/query/sbxx/list", &[], Some("{}"))
        .await
        .expect_error(403, "FORBIDDEN");
    assert_eq!(gw.module("wycx.sbxx").hits(), 0);

    // The legal rep of the same enterprise may.
    let mut rep = Browser::with_agent(&gw, "rep");
    rep.login_by_sms(A_USCC, A_PASSWORD, ZHAO_PHONE).await;
    rep.get("/query/sbxx/list").await.expect(200);
    assert_eq!(gw.module("wycx.sbxx").hits(), 1);
}

/// A crowd of forbidden requests (SPEC S9): every one is answered 403 without waiting
/// for the store, and every one is in the audit trail, with who and what, after a
/// graceful stop — the queue of denial events is written in batches and drained at
/// shutdown.
#[tokio::test]
async fn every_denied_request_of_a_crowd_is_audited() {
    const CROWD: usize = 48;
    let mut gw = Gateway::start().await;
    let mut li = Browser::new(&gw);
    li.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(CROWD));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CROWD {
        let mut tab = Browser::new(&gw);
        tab.adopt_session(&li);
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            tab.get("/query/sbxx/list").await
        });
    }
    for answer in tasks.join_all().await {
        answer.expect_error(403, "FORBIDDEN");
    }
    assert_eq!(gw.module("wycx.sbxx").hits(), 0);
    gw.stop();
    let config = gw.config.to_str().unwrap().to_string();
    let (ok, out, err) =
        crate::harness::gateway::run_cli(&["audit", "export", "--config", &config]);
    assert!(ok, "audit export failed: {err}");
    let denied: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "proxy.denied")
        .collect();
    assert_eq!(denied.len(), CROWD, "{out}");
    for e in &denied {
        assert_eq!(e["outcome"], "forbidden");
        assert_eq!(e["enterprise"], A_USCC);
        assert_eq!(e["client_ip"], "127.0.0.1");
        let detail = e["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("GET /query/sbxx/list module=wycx.sbxx"),
            "{detail}"
        );
    }
    let persons: std::collections::BTreeSet<&str> =
        denied.iter().filter_map(|e| e["person"].as_str()).collect();
    assert_eq!(persons.len(), 1, "all of 李雷's: {persons:?}");
}

#[tokio::test]
async fn no_session_is_401_and_unsafe_methods_need_csrf() {
    let gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    b.get("/tax/zzs/declare")
        .await
        .expect_error(401, "UNAUTHENTICATED");
    b.cookie = Some("forged-token".into());
    b.get("/tax/zzs/declare")
        .await
        .expect_error(401, "UNAUTHENTICATED");
    b.cookie = None;
    b.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    let csrf = b.csrf.take();
    b.send("POST", "/tax/zzs/declare", &[], Some("{}"))
        .await
        .expect_error(403, "CSRF_INVALID");
    b.csrf = csrf;
    b.send("POST", "/tax/zzs/declare", &[], Some("{}"))
        .await
        .expect(200);
    assert_eq!(gw.module("wybs.sfsb.zzs").hits(), 1);
    b.get("/not/routed").await.expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn ambiguous_paths_are_refused_before_routing() {
    let gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    b.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    for path in [
        "/tax/a/../b",
        "/tax/zzs/../../query/sbxx",
        "/tax/zzs/%2e%2e/x",
        "/tax/zzs/%2E%2E/x",
        "/tax/zzs%2fx",
        "/tax//zzs",
        "/tax/zzs/./x",
        "/tax/zzs/%5cx",
        "/tax/zzs/%00",
        "/tax/zzs/%252e%252e/x",
    ] {
        let r = b.get(path).await;
        assert_eq!(
            r.status,
            400,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.code(), "INVALID_INPUT", "{path}");
    }
    // A raw backslash is sent as-is by this client.
    let r = b.get("/tax/zzs\\x").await;
    assert_eq!(r.status, 400);
    for (_, m) in &gw.modules {
        assert_eq!(m.hits(), 0);
    }
}
