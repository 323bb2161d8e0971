//! `taxgate registry import` (API.md): validation, atomicity, idempotence.

use crate::harness::fx::*;
use crate::harness::gateway::run_cli;
use crate::harness::{repo, Browser, Gateway};
use taxgate::store::Tree;

#[tokio::test]
async fn a_bad_uscc_is_reported_with_its_path_and_nothing_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = repo().join("tests/fixtures/registry-bad-uscc.yaml");
    let (ok, _, err) = run_cli(&[
        "registry",
        "import",
        "--data-dir",
        data.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("enterprises[2].uscc"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");

    // Not even the valid enterprises before the bad row exist.
    let (ok, out, err) = run_cli(&["audit", "export", "--data-dir", data.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.is_empty());
    let store = taxgate::store::sled_store::open(&data, 1 << 20).unwrap();
    for tree in [
        Tree::Enterprises,
        Tree::Persons,
        Tree::Accounts,
        Tree::Officers,
    ] {
        let all = store.scan_prefix_raw(tree, b"").await.unwrap();
        assert!(all.is_empty(), "{tree:?} holds {} records", all.len());
    }
    assert!(!store.contains(Tree::Accounts, C_USCC).await.unwrap());
}

#[tokio::test]
async fn reimport_is_idempotent_and_keeps_the_password() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let before = b.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    drop(b);
    let mut gw = gw;
    // Importing the same file again while stopped changes nothing visible.
    gw.stop();
    let fixture = repo().join("tests/fixtures/registry.yaml");
    let (ok, out, err) = run_cli(&[
        "registry",
        "import",
        "--config",
        gw.config.to_str().unwrap(),
        fixture.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("0 enterprise(s) added, 2 updated, 0 person(s) added"),
        "{out}"
    );
    gw.crash_and_restart();
    let b = Browser::new(&gw);
    let after = b.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    assert_eq!(
        before["officers"].as_array().unwrap().len(),
        after["officers"].as_array().unwrap().len()
    );
}

/// sled allows one process per data dir, so an import while the gateway serves is
/// refused; PostgreSQL is shared by design, and the import is one more writer.
#[tokio::test]
async fn import_while_serving_is_refused_on_sled_and_shared_on_postgres() {
    let gw = Gateway::start().await;
    let fixture = repo().join("tests/fixtures/registry.yaml");
    let (ok, out, err) = run_cli(&[
        "registry",
        "import",
        "--config",
        gw.config.to_str().unwrap(),
        fixture.to_str().unwrap(),
    ]);
    if gw.postgres.is_some() {
        assert!(ok, "{err}");
        assert!(out.contains("0 enterprise(s) added, 2 updated"), "{out}");
        Browser::new(&gw)
            .stage1(A_USCC, A_PASSWORD)
            .await
            .expect(200);
    } else {
        assert!(!ok);
        assert!(err.contains("in use") || err.contains("lock"), "{err}");
    }
}
