//! Unit tests of the engine against the real schema, policies and catalog.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::policy::entities::EntityKit;
use crate::policy::{spawn_reload_watcher, test_files};

const E1: &str = "91110000600037341L";
const E2: &str = "91350100M000100Y43";

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::load(&test_files::catalog()).unwrap())
}

fn engine() -> PolicyEngine {
    PolicyEngine::load(&test_files::schema(), &test_files::policies(), catalog()).unwrap()
}

fn facts<'a>(
    enterprise: &'a str,
    roles: &'a [&'a str],
    grants: Option<&'a BTreeSet<String>>,
) -> OfficerFacts<'a> {
    OfficerFacts {
        enterprise,
        person: "p",
        roles,
        grants,
        login: LoginKind::Password,
    }
}

fn deny(ids: &[&str]) -> Decision {
    Decision::Deny {
        policies: ids.iter().map(|s| s.to_string()).collect(),
    }
}

/// A temporary copy of schema/ and policies/ (without tests/).
fn temp_copy() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("taxgate.cedarschema");
    std::fs::copy(test_files::schema(), &schema).unwrap();
    let pol = dir.path().join("policies");
    std::fs::create_dir(&pol).unwrap();
    for entry in std::fs::read_dir(test_files::policies()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "cedar") {
            std::fs::copy(&p, pol.join(p.file_name().unwrap())).unwrap();
        }
    }
    (dir, schema, pol)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn default_tax_officer_gets_wybs_only() {
    let e = engine();
    let o = facts(E1, &["tax_officer"], None);
    assert_eq!(e.authorize_module(&o, "wybs.sfsb.zzs"), Decision::Allow);
    assert_eq!(e.authorize_module(&o, "wybs"), Decision::Allow);
    assert_eq!(e.authorize_module(&o, "wycx"), deny(&[]));
    assert_eq!(e.authorize_module(&o, "wycx.sbxx"), deny(&[]));
    assert_eq!(e.authorize_module(&o, "no.such.module"), deny(&[]));
}

#[test]
fn customized_grants_replace_the_default() {
    let e = engine();
    let g = BTreeSet::from(["wycx".to_string()]);
    let o = facts(E1, &["tax_officer"], Some(&g));
    assert_eq!(e.authorize_module(&o, "wycx.sbxx"), Decision::Allow);
    assert_eq!(e.authorize_module(&o, "wycx"), Decision::Allow);
    assert_eq!(e.authorize_module(&o, "wybs.sfsb.zzs"), deny(&[]));
    assert_eq!(e.authorize_module(&o, "wybs"), deny(&[]));
    // A grant of a leaf covers that leaf only.
    let g = BTreeSet::from(["wybs.sfsb.zzs".to_string()]);
    let o = facts(E1, &["agent"], Some(&g));
    assert_eq!(e.authorize_module(&o, "wybs.sfsb.zzs"), Decision::Allow);
    assert_eq!(e.authorize_module(&o, "wybs.sfsb.qysds"), deny(&[]));
}

#[test]
fn unbound_officer_is_denied_everything() {
    let e = engine();
    let none = BTreeSet::new();
    let o = facts(E1, &["tax_officer"], Some(&none));
    for m in ["wybs", "wybs.sfsb.zzs", "wycx.sbxx", "wdxx.yhgl"] {
        assert_eq!(e.authorize_module(&o, m), deny(&["unbound"]), "{m}");
    }
    for a in [EnterpriseAction::Enter, EnterpriseAction::ManageUsers] {
        assert_eq!(e.authorize_enterprise(&o, a), deny(&["unbound"]));
    }
    assert!(e.authorized_tree(&o, &|_| None).is_empty());
}

#[test]
fn admins_use_everything_and_manage_own_enterprise_only() {
    let e = engine();
    let none = BTreeSet::new();
    for (roles, grants) in [
        (&["legal_rep"][..], None),
        (&["finance_officer", "tax_officer"][..], Some(&none)),
    ] {
        let o = facts(E1, roles, grants);
        for m in catalog().ids() {
            assert_eq!(e.authorize_module(&o, m), Decision::Allow, "{roles:?} {m}");
        }
        assert_eq!(
            e.authorize_enterprise(&o, EnterpriseAction::ManageUsers),
            Decision::Allow
        );
        assert_eq!(
            e.authorize_enterprise_of(&o, E2, EnterpriseAction::ManageUsers),
            deny(&[])
        );
    }
}

#[test]
fn tax_officer_may_not_manage_users() {
    let e = engine();
    let g = BTreeSet::from(["wdxx".to_string()]);
    for grants in [None, Some(&g)] {
        let o = facts(E1, &["tax_officer", "agent"], grants);
        assert_eq!(
            e.authorize_enterprise(&o, EnterpriseAction::ManageUsers),
            deny(&[])
        );
    }
}

#[test]
fn enter_own_enterprise_only() {
    let e = engine();
    for roles in [&["tax_officer"][..], &["legal_rep"][..]] {
        let o = facts(E1, roles, None);
        assert_eq!(
            e.authorize_enterprise(&o, EnterpriseAction::Enter),
            Decision::Allow
        );
        assert_eq!(
            e.authorize_enterprise_of(&o, E2, EnterpriseAction::Enter),
            deny(&[])
        );
    }
}

#[test]
fn authorized_tree_keeps_ancestors_of_allowed_nodes() {
    let e = engine();
    let g = BTreeSet::from(["wybs.sfsb.zzs".to_string(), "gzfw".to_string()]);
    let o = facts(E1, &["tax_officer"], Some(&g));
    let tree = e.authorized_tree(&o, &|id| Some(format!("/m/{id}")));
    let json = serde_json::to_value(&tree).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"id": "wybs", "name": "我要办税", "allowed": false, "children": [
                {"id": "wybs.sfsb", "name": "税费申报及缴纳", "allowed": false, "children": [
                    {"id": "wybs.sfsb.zzs", "name": "增值税申报", "allowed": true,
                     "path": "/m/wybs.sfsb.zzs", "children": []}
                ]}
            ]},
            {"id": "gzfw", "name": "公众服务", "allowed": true, "path": "/m/gzfw", "children": []}
        ])
    );
    // Default officer: the whole 我要办税 subtree and nothing else.
    let o = facts(E1, &["tax_officer"], None);
    let tree = e.authorized_tree(&o, &|_| None);
    assert_eq!(tree.len(), 1);
    assert_eq!(tree[0].id, "wybs");
    assert_eq!(tree[0].children.len(), catalog().roots()[0].children.len());
    // The unfiltered tree has every module.
    fn count(v: &[ModuleView]) -> usize {
        v.iter().map(|n| 1 + count(&n.children)).sum()
    }
    let full = e.full_tree(&|id| Some(id.to_string()));
    assert_eq!(count(&full), catalog().len());
    assert_eq!(full[1].path.as_deref(), Some("wycx"));
}

#[test]
fn status_reports_version_hash_and_reload_outcome() {
    let e = engine();
    let s = e.status();
    assert_eq!(s.version, 1);
    assert_eq!(s.hash.len(), 64);
    assert_eq!(s.policies, 6);
    assert_eq!(s.last_reload.as_result(), Ok(()));
    let file = e.policy_file("unbound").unwrap();
    assert!(file.ends_with("unbound.cedar"), "{file}");
    let s2 = e.reload().unwrap();
    assert_eq!(s2.version, 2);
    assert_eq!(s2.hash, s.hash);
    let json = serde_json::to_value(&s2).unwrap();
    assert_eq!(json["last_reload"]["result"], "ok");
}

#[test]
fn broken_reload_keeps_previous_set() {
    let (_dir, schema, pol) = temp_copy();
    let e = PolicyEngine::load(&schema, &pol, catalog()).unwrap();
    let before = e.status();
    let o = facts(E1, &["tax_officer"], None);

    // Syntax error.
    edit(
        &pol.join("modules.cedar"),
        "when { !principal.customized };",
        "when { !principal.customized ",
    );
    assert_ne!(e.files_fingerprint(), e.loaded_fingerprint());
    let err = e.reload().unwrap_err().to_string();
    assert!(err.contains("modules.cedar"), "{err}");
    let status = e.status();
    assert_eq!(
        (status.version, &status.hash),
        (before.version, &before.hash)
    );
    assert!(status
        .last_reload
        .as_result()
        .unwrap_err()
        .contains("modules.cedar"));
    assert_eq!(e.authorize_module(&o, "wybs.sfsb.zzs"), Decision::Allow);

    // Parses, but fails strict validation (attribute not in the schema).
    edit(
        &pol.join("modules.cedar"),
        "when { !principal.customized ",
        "when { !principal.customised };",
    );
    let err = e.reload().unwrap_err().to_string();
    assert!(
        err.contains("default-wybs") && err.contains("customised"),
        "{err}"
    );
    assert_eq!(e.authorize_module(&o, "wybs.sfsb.zzs"), Decision::Allow);

    // Missing @id, and a module that is not in the catalog.
    edit(
        &pol.join("modules.cedar"),
        "!principal.customised",
        "!principal.customized",
    );
    std::fs::write(
        pol.join("extra.cedar"),
        "permit(principal, action, resource);\n",
    )
    .unwrap();
    let err = e.reload().unwrap_err().to_string();
    assert!(
        err.contains("extra.cedar") && err.contains("no @id"),
        "{err}"
    );
    std::fs::write(
        pol.join("extra.cedar"),
        "@id(\"x\") permit(principal, action, resource in Module::\"wycxx\");\n",
    )
    .unwrap();
    let err = e.reload().unwrap_err().to_string();
    assert!(
        err.contains("Module::\"wycxx\"") && err.contains("not in the module catalog"),
        "{err}"
    );
    assert_eq!(e.status().version, 1);

    // Fixed: the reload goes through.
    std::fs::remove_file(pol.join("extra.cedar")).unwrap();
    assert_eq!(e.reload().unwrap().version, 2);
    assert_eq!(e.status().last_reload.as_result(), Ok(()));
}

#[test]
fn editing_the_default_changes_decisions_after_reload() {
    let (_dir, schema, pol) = temp_copy();
    let e = PolicyEngine::load(&schema, &pol, catalog()).unwrap();
    let o = facts(E1, &["tax_officer"], None);
    assert_eq!(e.authorize_module(&o, "wybs.sfsb.zzs"), Decision::Allow);
    assert_eq!(e.authorize_module(&o, "wycx.sbxx"), deny(&[]));
    edit(
        &pol.join("modules.cedar"),
        "resource in Module::\"wybs\"",
        "resource in Module::\"wycx\"",
    );
    let status = e.reload().unwrap();
    assert_eq!(status.version, 2);
    assert_eq!(e.authorize_module(&o, "wybs.sfsb.zzs"), deny(&[]));
    assert_eq!(e.authorize_module(&o, "wycx.sbxx"), Decision::Allow);
}

#[test]
fn watcher_reloads_on_change_and_stops_with_engine() {
    let (_dir, schema, pol) = temp_copy();
    let e = Arc::new(PolicyEngine::load(&schema, &pol, catalog()).unwrap());
    let handle = spawn_reload_watcher(Arc::clone(&e), std::time::Duration::from_millis(10));
    edit(
        &pol.join("modules.cedar"),
        "resource in Module::\"wybs\"",
        "resource in Module::\"wycx\"",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while e.status().version < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(e.status().version, 2);
    drop(e);
    handle.join().unwrap();
}

/// Splitting the set by action gives exactly the decisions (and reasons) of
/// the whole set, for every module and every kind of officer.
#[test]
fn split_by_action_matches_whole_set() {
    let e = engine();
    let cat = catalog();
    let kit = EntityKit::new(&cat).unwrap();
    let whole = e.current.load().policies.clone();
    let az = cedar_policy::Authorizer::new();
    let none = BTreeSet::new();
    let some = BTreeSet::from(["wycx".to_string(), "wybs.sfsb.zzs".to_string()]);
    let roles: [&[&str]; 4] = [
        &["tax_officer"],
        &["agent"],
        &["legal_rep"],
        &["finance_officer"],
    ];
    for r in roles {
        for g in [None, Some(&none), Some(&some)] {
            let o = facts(E1, r, g);
            let expect = |req: &cedar_policy::Request, ents: &cedar_policy::Entities| {
                let resp = az.is_authorized(req, &whole, ents);
                match resp.decision() {
                    cedar_policy::Decision::Allow => Decision::Allow,
                    cedar_policy::Decision::Deny => Decision::Deny {
                        policies: resp.diagnostics().reason().map(|p| p.to_string()).collect(),
                    },
                }
            };
            for login in LoginKind::ALL {
                let o = OfficerFacts { login, ..o };
                for m in cat.ids() {
                    let (req, ents) = kit
                        .module_request(kit.officer(&o).unwrap(), kit.module(m).unwrap(), login)
                        .unwrap();
                    assert_eq!(
                        e.authorize_module(&o, m),
                        expect(&req, &ents),
                        "{r:?} {g:?} {m} {login:?}"
                    );
                }
                for a in [EnterpriseAction::Enter, EnterpriseAction::ManageUsers] {
                    for target in [E1, E2] {
                        let (req, ents) = kit
                            .enterprise_request(kit.officer(&o).unwrap(), target, a, login)
                            .unwrap();
                        assert_eq!(
                            e.authorize_enterprise_of(&o, target, a),
                            expect(&req, &ents)
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn cached_use_decisions_equal_fresh_ones() {
    let e = engine();
    let grants: BTreeSet<String> = ["wycx".to_string()].into();
    let none = BTreeSet::new();
    let officers = [
        facts(E1, &["tax_officer"], None),
        facts(E1, &["tax_officer"], Some(&grants)),
        facts(E1, &["tax_officer"], Some(&none)),
        facts(E2, &["legal_rep"], None),
    ];
    for o in &officers {
        for m in ["wybs", "wybs.sfsb.zzs", "wycx.sbxx", "wdxx"] {
            let first = e.authorize_module(o, m);
            assert_eq!(e.authorize_module(o, m), first, "{m}");
        }
    }
}

#[test]
fn a_policy_naming_one_officer_turns_the_use_cache_off() {
    let (_dir, schema, pol) = temp_copy();
    std::fs::write(
        pol.join("one.cedar"),
        format!(
            "@id(\"one-officer\")\npermit (principal == Officer::\"{E1}/p1\", action == Action::\"use\", resource == Module::\"wycx.sbxx\");\n"
        ),
    )
    .unwrap();
    let e = PolicyEngine::load(&schema, &pol, catalog()).unwrap();
    let roles = ["tax_officer"];
    let p1 = OfficerFacts {
        enterprise: E1,
        person: "p1",
        roles: &roles,
        grants: None,
        login: LoginKind::Password,
    };
    let p2 = OfficerFacts { person: "p2", ..p1 };
    // Same roles and grants: a cache keyed by them would hand p2 the answer of p1.
    assert_eq!(e.authorize_module(&p1, "wycx.sbxx"), Decision::Allow);
    assert_eq!(e.authorize_module(&p2, "wycx.sbxx"), deny(&[]));
    assert_eq!(e.authorize_module(&p1, "wycx.sbxx"), Decision::Allow);
}
