//! What survives `kill -9` and a restart (SPEC S8), and a clean SIGTERM.

use crate::harness::fx::*;
use crate::harness::{Browser, Gateway, GatewayOptions};

#[tokio::test]
async fn a_session_and_a_lockout_survive_kill_9() {
    let mut gw = Gateway::start().await;
    let mut b = Browser::new(&gw);
    b.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    b.get("/tax/zzs/x").await.expect(200);
    for i in 0..5 {
        let _ = b.stage1(B_USCC, &format!("Wrong-password-{i}")).await;
    }
    b.stage1(B_USCC, B_PASSWORD)
        .await
        .expect_error(429, "LOCKED");

    gw.crash_and_restart();
    b.follow(&gw);
    b.get("/tax/zzs/x").await.expect(200);
    b.get("/api/v1/session").await.expect(200);
    b.stage1(B_USCC, B_PASSWORD)
        .await
        .expect_error(429, "LOCKED");
}

#[tokio::test]
async fn sigterm_drains_within_the_configured_grace_period() {
    let mut gw = Gateway::start_with(GatewayOptions::default()).await;
    let mut b = Browser::new(&gw);
    b.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    b.get("/tax/zzs/x").await.expect(200);
    // Configured grace: 1 s (pingora's default would be 300 s).
    let (took, status) = gw.terminate();
    assert!(status.success(), "not a graceful exit: {status:?}");
    assert!(took.as_secs_f64() < 5.0, "took {took:?}");
    // Nothing panicked on the way out (the exit watchdog once did, unseen).
    assert!(!gw.stderr().contains("panicked"), "{}", gw.stderr());
}

#[tokio::test]
async fn passwords_hashed_with_old_parameters_are_upgraded_at_login() {
    let mut gw = Gateway::start().await;
    let config = std::fs::read_to_string(&gw.config).unwrap();
    std::fs::write(
        &gw.config,
        config.replace("memory_kib: 256", "memory_kib: 512"),
    )
    .unwrap();
    gw.crash_and_restart();
    let b = Browser::new(&gw);
    b.stage1(A_USCC, A_PASSWORD).await.expect(200);
    gw.stop();
    let store = gw.open_store();
    let e: taxgate::store::records::Enterprise = store
        .get(taxgate::store::Tree::Enterprises, A_USCC)
        .await
        .unwrap()
        .unwrap();
    assert!(e.password_hash.contains("m=512"), "{}", e.password_hash);
    // Same password, new hash: it still opens.
    drop(store);
    gw.crash_and_restart();
    Browser::new(&gw)
        .stage1(A_USCC, A_PASSWORD)
        .await
        .expect(200);
}
