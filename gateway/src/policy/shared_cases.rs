//! The policy test cases of `policies/tests/` (the `cedar run-tests` format), run
//! through this engine: the same file CI gives to Cedar's CLI, so the CLI and the
//! gateway are held to the same expectations, including how the gateway builds its
//! entities from an officer's facts.

use super::test_files;
use super::{Catalog, Decision, EnterpriseAction, OfficerFacts, PolicyEngine};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

fn id(v: &str) -> (&str, &str) {
    // `Type::"id"` → (Type, id)
    let (ty, rest) = v.split_once("::").unwrap();
    (ty, rest.trim_matches('"'))
}

#[test]
fn every_shared_case_holds_in_the_engine() {
    let dir = test_files::policies().join("tests");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tests.json")).unwrap()).unwrap();
    let entities: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("entities.json")).unwrap()).unwrap();
    let catalog = Arc::new(Catalog::load(&test_files::catalog()).unwrap());
    let engine =
        PolicyEngine::load(&test_files::schema(), &test_files::policies(), catalog).unwrap();
    assert!(cases.len() >= 20);

    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let req = &case["request"];
        let (_, principal) = id(req["principal"].as_str().unwrap());
        let officer = entities
            .iter()
            .find(|e| e["uid"]["type"] == "Officer" && e["uid"]["id"] == principal)
            .unwrap_or_else(|| panic!("{name}: no officer {principal}"));
        let (enterprise, person) = principal.split_once('/').unwrap();
        let attrs = &officer["attrs"];
        let roles: Vec<&str> = attrs["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let grants: BTreeSet<String> = attrs["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["__entity"]["id"].as_str().unwrap().to_string())
            .collect();
        let customized = attrs["customized"].as_bool().unwrap();
        let facts = OfficerFacts {
            enterprise,
            person,
            roles: &roles,
            grants: customized.then_some(&grants),
        };
        let (_, action) = id(req["action"].as_str().unwrap());
        let (resource_type, resource) = id(req["resource"].as_str().unwrap());
        let decision = match (action, resource_type) {
            ("use", "Module") => engine.authorize_module(&facts, resource),
            ("enter", "Enterprise") => {
                engine.authorize_enterprise_of(&facts, resource, EnterpriseAction::Enter)
            }
            ("manage_users", "Enterprise") => {
                engine.authorize_enterprise_of(&facts, resource, EnterpriseAction::ManageUsers)
            }
            other => panic!("{name}: unexpected request {other:?}"),
        };
        let expected = case["decision"].as_str().unwrap();
        match (&decision, expected) {
            (Decision::Allow, "allow") => {}
            (Decision::Deny { policies }, "deny") => {
                let reasons: Vec<&str> = case["reason"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect();
                assert_eq!(policies, &reasons, "{name}: deny reasons");
            }
            _ => panic!("{name}: expected {expected}, got {decision:?}"),
        }
    }
}
