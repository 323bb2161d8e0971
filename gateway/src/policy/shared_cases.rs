//! The policy test cases of `policies/tests/` (the `cedar run-tests` format), run
//! through this engine: the same file CI gives to Cedar's CLI, so the CLI and the
//! gateway are held to the same expectations, including how the gateway builds its
//! entities from an officer's facts.

use super::test_files;
use super::{Catalog, Decision, EnterpriseAction, LoginKind, OfficerFacts, PolicyEngine};
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
    let engine =
        PolicyEngine::load(&test_files::schema(), &test_files::policies(), catalog()).unwrap();
    let cases = run_cases(&engine, "tests.json");
    assert!(cases >= 20);
}

/// The example of `policies/login.cedar`, enabled the way its comment says (and CI's
/// Cedar CLI step does), holds its cases; as shipped (commented out) it does not.
#[test]
fn the_login_example_policy_holds_once_enabled() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(test_files::policies()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "cedar") {
            let text = std::fs::read_to_string(&p).unwrap();
            let text = if p.ends_with("login.cedar") {
                enable_example(&text)
            } else {
                text
            };
            std::fs::write(dir.path().join(p.file_name().unwrap()), text).unwrap();
        }
    }
    let enabled = PolicyEngine::load(&test_files::schema(), dir.path(), catalog()).unwrap();
    assert_eq!(run_cases(&enabled, "login-example.json"), 8);
    let shipped =
        PolicyEngine::load(&test_files::schema(), &test_files::policies(), catalog()).unwrap();
    assert_eq!(shipped.status().policies + 1, enabled.status().policies);
}

/// Uncomments the lines between `// -- example: …` and `// -- end example --` and drops
/// the markers.
fn enable_example(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("// -- example: ") {
            inside = true;
        } else if line.starts_with("// -- end example --") {
            inside = false;
        } else if inside {
            out.push_str(
                line.strip_prefix("// ")
                    .unwrap_or(line.trim_start_matches("//")),
            );
            out.push('\n');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(!inside, "unterminated example");
    out
}

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::load(&test_files::catalog()).unwrap())
}

/// Runs every case of `policies/tests/<file>` through `engine`; returns how many.
fn run_cases(engine: &PolicyEngine, file: &str) -> usize {
    let dir = test_files::policies().join("tests");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
    let entities: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("entities.json")).unwrap()).unwrap();

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
        let login: LoginKind =
            serde_json::from_value(req["context"]["login"]["__entity"]["id"].clone())
                .unwrap_or_else(|e| panic!("{name}: context.login: {e}"));
        let facts = OfficerFacts {
            enterprise,
            person,
            roles: &roles,
            grants: customized.then_some(&grants),
            login,
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
    cases.len()
}
