//! Reading the schema and the policy files from disk into a validated set.
//!
//! Contract: [`load_files`] either returns a policy set that parsed, in which
//! every policy has a unique `@id` (its Cedar policy id is that `@id`, as with
//! `cedar` CLI), no templates are present, every `Module::"…"` literal names a
//! catalog node, and strict validation against the schema passed with neither
//! errors nor warnings — or an error carrying Cedar's message and the file
//! name. It also checks that the entities built by `entities.rs` conform to the
//! schema, so per-request schema checks can be skipped. Policy files are the
//! `*.cedar` files directly in the policies directory (not `tests/`), read in
//! file-name order. Nothing here touches the engine state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::SystemTime;

use cedar_policy::{
    Context, Entities, PolicyId, PolicySet, Request, Schema, ValidationMode, Validator,
};
use sha2::{Digest, Sha256};

use super::catalog::Catalog;
use super::entities::{EnterpriseAction, EntityKit, LoginKind, OfficerFacts};
use super::error::PolicyError;

/// A validated schema + policy set, as read from disk.
pub(crate) struct LoadedFiles {
    pub(crate) policies: PolicySet,
    /// Hex sha256 over the schema and every policy file (names and contents).
    pub(crate) hash: String,
    /// Fingerprint of the files taken *before* they were read.
    pub(crate) fingerprint: Fingerprint,
    /// Policy `@id` → file name.
    pub(crate) origins: HashMap<String, String>,
}

/// Length and modification time of the schema and of every policy file, used
/// by the reload watcher to notice a change without reading the files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, Option<(u64, SystemTime)>)>);

/// Takes the fingerprint of the files [`load_files`] would read. A missing or
/// unreadable file is recorded as such (and so is a change back).
pub fn fingerprint(schema_path: &Path, policies_dir: &Path) -> Fingerprint {
    let stat = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
    };
    let mut entries = vec![(schema_path.to_path_buf(), stat(schema_path))];
    match policy_files(policies_dir) {
        Ok(files) => entries.extend(files.into_iter().map(|p| {
            let s = stat(&p);
            (p, s)
        })),
        Err(_) => entries.push((policies_dir.to_path_buf(), None)),
    }
    Fingerprint(entries)
}

/// The `*.cedar` files directly in `dir`, sorted by name.
fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let read = std::fs::read_dir(dir).map_err(|e| PolicyError::io(dir, &e))?;
    let mut files = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| PolicyError::io(dir, &e))?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "cedar") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_label(path: &Path) -> String {
    path.display().to_string()
}

/// Reads, parses and strictly validates the schema and the policies.
pub(crate) fn load_files(
    schema_path: &Path,
    policies_dir: &Path,
    catalog: &Catalog,
    kit: &EntityKit,
) -> Result<(Schema, LoadedFiles), PolicyError> {
    let fingerprint = fingerprint(schema_path, policies_dir);
    let mut hasher = Sha256::new();

    let schema_text =
        std::fs::read_to_string(schema_path).map_err(|e| PolicyError::io(schema_path, &e))?;
    hash_file(&mut hasher, "schema", &schema_text);
    let (schema, _warnings) =
        Schema::from_cedarschema_str(&schema_text).map_err(|e| PolicyError::Schema {
            file: file_label(schema_path),
            message: e.to_string(),
        })?;
    check_entities_conform(&schema, kit)?;

    let files = policy_files(policies_dir)?;
    if files.is_empty() {
        return Err(PolicyError::Policy {
            file: file_label(policies_dir),
            message: "no *.cedar policy files".to_string(),
        });
    }
    let mut policies = PolicySet::new();
    let mut origins: HashMap<String, String> = HashMap::new();
    for path in &files {
        let label = file_label(path);
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::io(path, &e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        hash_file(&mut hasher, &name, &text);
        add_file(&mut policies, &mut origins, &label, &text, catalog)?;
    }

    let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
    let mut problems = Vec::new();
    for e in result.validation_errors() {
        problems.push(located(&origins, e.policy_id(), "error", &e.to_string()));
    }
    for w in result.validation_warnings() {
        problems.push(located(&origins, w.policy_id(), "warning", &w.to_string()));
    }
    if !problems.is_empty() {
        return Err(PolicyError::Validation(problems.join("\n")));
    }

    Ok((
        schema,
        LoadedFiles {
            policies,
            hash: hex::encode(hasher.finalize()),
            fingerprint,
            origins,
        },
    ))
}

fn hash_file(hasher: &mut Sha256, name: &str, text: &str) {
    hasher.update(name.as_bytes());
    hasher.update([0u8]);
    hasher.update((text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

fn located(origins: &HashMap<String, String>, id: &PolicyId, kind: &str, msg: &str) -> String {
    let file = origins
        .get(AsRef::<str>::as_ref(id))
        .map(String::as_str)
        .unwrap_or("?");
    format!("  {file}: @id(\"{id}\"): {kind}: {msg}")
}

/// Parses one file and adds its policies, renamed to their `@id`, to `set`.
fn add_file(
    set: &mut PolicySet,
    origins: &mut HashMap<String, String>,
    label: &str,
    text: &str,
    catalog: &Catalog,
) -> Result<(), PolicyError> {
    let err = |message: String| PolicyError::Policy {
        file: label.to_string(),
        message,
    };
    let parsed = PolicySet::from_str(text).map_err(|e| {
        let all: Vec<String> = e.iter().map(|x| x.to_string()).collect();
        let at = first_bad_statement_line(text)
            .map(|n| format!(" (in the policy starting at line {n})"))
            .unwrap_or_default();
        err(format!("{}{at}", all.join("; ")))
    })?;
    if let Some(t) = parsed.templates().next() {
        return Err(err(format!(
            "templates are not supported (template `{}`); write static policies",
            t.annotation("id").unwrap_or("without @id")
        )));
    }
    // Cedar numbers the policies of one parse "policy0", "policy1", … in file
    // order; sort by that number so errors name the first offending policy.
    let ordered: BTreeMap<usize, _> = parsed
        .policies()
        .map(|p| {
            let n = AsRef::<str>::as_ref(p.id())
                .strip_prefix("policy")
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            (n, p)
        })
        .collect();
    for (n, policy) in ordered {
        let Some(id) = policy
            .annotation("id")
            .map(str::trim)
            .filter(|s| !s.is_empty())
        else {
            let head: String = policy
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(80)
                .collect();
            return Err(err(format!(
                "policy #{} has no @id(\"…\") annotation: {head}…",
                n.saturating_add(1)
            )));
        };
        if let Some(other) = origins.get(id) {
            return Err(err(format!(
                "duplicate @id(\"{id}\"), already used in {other}"
            )));
        }
        for uid in policy.entity_literals() {
            if uid.type_name().to_string() == "Module" && !catalog.contains(uid.id().unescaped()) {
                return Err(err(format!(
                    "@id(\"{id}\") names {uid}, which is not in the module catalog"
                )));
            }
        }
        set.add(policy.new_id(PolicyId::new(id)))
            .map_err(|e| err(format!("@id(\"{id}\"): {e}")))?;
        origins.insert(id.to_string(), label.to_string());
    }
    Ok(())
}

/// Cedar's parse errors carry their position only as a `miette` label, which
/// this crate cannot read; so split the text into `;`-terminated statements
/// (aware of strings and `//` comments), parse them one by one and return the
/// 1-based line where the first statement that does not parse starts.
fn first_bad_statement_line(text: &str) -> Option<usize> {
    let mut start = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut in_comment = false;
    let mut prev = '\0';
    let mut chunks = Vec::new();
    for (i, c) in text.char_indices() {
        if in_comment {
            in_comment = c != '\n';
        } else if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '/' && prev == '/' {
            in_comment = true;
        } else if c == ';' {
            chunks.push(start..i + 1);
            start = i + 1;
        }
        prev = if in_comment { '\0' } else { c };
    }
    chunks.push(start..text.len());
    for range in chunks {
        let chunk = text.get(range.clone())?;
        if PolicySet::from_str(chunk).is_ok() {
            continue;
        }
        let offset = chunk
            .lines()
            .scan(0usize, |pos, line| {
                let at = *pos;
                *pos += line.len() + 1;
                Some((at, line))
            })
            .find(|(_, line)| {
                let t = line.trim();
                !t.is_empty() && !t.starts_with("//")
            })
            .map_or(0, |(at, _)| at);
        let before = text.get(..range.start + offset)?;
        return Some(before.matches('\n').count() + 1);
    }
    None
}

/// Builds sample entities and requests the way `entities.rs` does and checks
/// them against `schema`, so an edited schema cannot silently disagree with
/// the shape of the entities built per request.
fn check_entities_conform(schema: &Schema, kit: &EntityKit) -> Result<(), PolicyError> {
    let mismatch = |what: &str, e: String| PolicyError::Schema {
        file: "schema".to_string(),
        message: format!("the gateway's {what} does not conform to the schema: {e}"),
    };
    let grants = BTreeSet::from(["sample".to_string()]);
    let facts = OfficerFacts {
        enterprise: "E",
        person: "P",
        roles: &["tax_officer"],
        grants: Some(&grants),
        login: LoginKind::Password,
    };
    let officer = kit.officer(&facts)?;
    let mut sample = vec![officer.clone()];
    if let Some(module) = kit.modules().next() {
        if let Some(entity) = module.entity() {
            sample.push(entity.clone());
        }
        for login in LoginKind::ALL {
            let (req, _) = kit.module_request(officer.clone(), module, login)?;
            recheck(&req, schema).map_err(|e| mismatch("`use` request", e))?;
        }
    }
    Entities::from_entities(sample, Some(schema))
        .map_err(|e| mismatch("Officer/Module entities", e.to_string()))?;
    for action in [EnterpriseAction::ManageUsers, EnterpriseAction::Enter] {
        for login in LoginKind::ALL {
            let (req, _) = kit.enterprise_request(officer.clone(), "E", action, login)?;
            recheck(&req, schema).map_err(|e| mismatch("enterprise request", e))?;
        }
    }
    Ok(())
}

fn recheck(req: &Request, schema: &Schema) -> Result<(), String> {
    let (Some(p), Some(a), Some(r)) = (req.principal(), req.action(), req.resource()) else {
        return Err("request without principal, action or resource".to_string());
    };
    Request::new(
        p.clone(),
        a.clone(),
        r.clone(),
        req.context().cloned().unwrap_or_else(Context::empty),
        Some(schema),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_are_located_at_the_policy_start() {
        let text = "// a; \"b\n@id(\"a\")\npermit(principal, action, resource)\nwhen { \"x;\" == \"y\" };\n\n// next\n@id(\"b\")\npermit(principal, action, resource)\nwhen { principal. };\n";
        assert!(PolicySet::from_str(text).is_err());
        assert_eq!(first_bad_statement_line(text), Some(7));
        let missing_semicolon = "@id(\"a\") permit(principal, action, resource);\n@id(\"b\")\npermit(principal, action, resource)\n";
        assert_eq!(first_bad_statement_line(missing_semicolon), Some(2));
        assert_eq!(
            first_bad_statement_line("permit(principal, action, resource);"),
            None
        );
    }

    #[test]
    fn fingerprint_sees_added_and_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        let schema = dir.path().join("s.cedarschema");
        std::fs::write(&schema, "entity A;").unwrap();
        let f0 = fingerprint(&schema, dir.path());
        std::fs::write(dir.path().join("a.cedar"), "").unwrap();
        let f1 = fingerprint(&schema, dir.path());
        assert_ne!(f0, f1);
        std::fs::write(dir.path().join("a.cedar"), "x").unwrap();
        assert_ne!(f1, fingerprint(&schema, dir.path()));
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        assert_eq!(fingerprint(&schema, dir.path()).0.len(), 2);
    }
}
