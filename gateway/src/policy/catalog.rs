//! The module catalog (功能模块): the tree of tax function modules that grants
//! name, loaded from `config/modules.yaml`.
//!
//! Contract: a loaded [`Catalog`] is consistent — every id is non-empty, made
//! of ASCII letters, digits, `.`, `_`, `-`, and unique across the whole tree;
//! every name is non-empty. Errors name the offending id and the line of the
//! file where it appears. The catalog is immutable after loading; lookups are
//! O(1) and never allocate.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::PolicyError;

/// One node of the module tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleNode {
    /// ASCII id, used as `Module::"<id>"` in Cedar, in routes and in grants.
    pub id: String,
    /// Display name (Chinese), shown on the 授权 page and in the menu.
    pub name: String,
    /// Child modules, in catalog order.
    pub children: Vec<ModuleNode>,
}

/// The module tree plus an index of every node's strict ancestors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    roots: Vec<ModuleNode>,
    /// id → strict ancestors, root first.
    ancestors: HashMap<String, Vec<String>>,
    /// id → display name.
    names: HashMap<String, String>,
    /// Every id, in pre-order (catalog order).
    order: Vec<String>,
}

/// File format of `config/modules.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    modules: Vec<NodeFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    id: String,
    name: String,
    #[serde(default)]
    children: Vec<NodeFile>,
}

impl Catalog {
    /// Parses and checks a catalog in the `modules.yaml` format.
    pub fn from_yaml(text: &str) -> Result<Catalog, PolicyError> {
        let file: CatalogFile = serde_yaml::from_str(text)
            .map_err(|e| PolicyError::Catalog(format!("malformed YAML: {e}")))?;
        if file.modules.is_empty() {
            return Err(PolicyError::Catalog("`modules` is empty".to_string()));
        }
        let mut catalog = Catalog {
            roots: Vec::with_capacity(file.modules.len()),
            ancestors: HashMap::new(),
            names: HashMap::new(),
            order: Vec::new(),
        };
        let mut path = Vec::new();
        for node in file.modules {
            let root = catalog.add(node, &mut path, text)?;
            catalog.roots.push(root);
        }
        Ok(catalog)
    }

    /// Reads and parses `path`; errors name the file.
    pub fn load(path: &Path) -> Result<Catalog, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::io(path, &e))?;
        Catalog::from_yaml(&text).map_err(|e| match e {
            PolicyError::Catalog(msg) => PolicyError::Catalog(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Whether `id` names a node of the tree.
    pub fn contains(&self, id: &str) -> bool {
        self.ancestors.contains_key(id)
    }

    /// Strict ancestors of `id`, root first (empty for a root); `None` if unknown.
    pub fn ancestors(&self, id: &str) -> Option<&[String]> {
        self.ancestors.get(id).map(Vec::as_slice)
    }

    /// Display name of `id`.
    pub fn name(&self, id: &str) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }

    /// The top-level modules, in catalog order.
    pub fn roots(&self) -> &[ModuleNode] {
        &self.roots
    }

    /// Every module id in pre-order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// Number of modules in the tree.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the tree is empty (never true for a loaded catalog).
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn add(
        &mut self,
        node: NodeFile,
        path: &mut Vec<String>,
        text: &str,
    ) -> Result<ModuleNode, PolicyError> {
        let NodeFile { id, name, children } = node;
        check_id(&id, text)?;
        if name.trim().is_empty() {
            return Err(PolicyError::Catalog(format!(
                "module `{id}`{}: empty name",
                line_hint(text, &id, 0)
            )));
        }
        if self.ancestors.contains_key(&id) {
            return Err(PolicyError::Catalog(format!(
                "duplicate module id `{id}`{}",
                line_hint(text, &id, 1)
            )));
        }
        self.ancestors.insert(id.clone(), path.clone());
        self.names.insert(id.clone(), name.clone());
        self.order.push(id.clone());
        path.push(id.clone());
        let mut kids = Vec::with_capacity(children.len());
        for child in children {
            kids.push(self.add(child, path, text)?);
        }
        path.pop();
        Ok(ModuleNode {
            id,
            name,
            children: kids,
        })
    }
}

fn check_id(id: &str, text: &str) -> Result<(), PolicyError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(PolicyError::Catalog(format!(
            "invalid module id `{id}`{}: use 1-128 ASCII letters, digits, '.', '_' or '-'",
            line_hint(text, id, 0)
        )))
    }
}

/// " (line N)" for the `nth` (0-based) line whose `id:` value is exactly `id`,
/// or "" if it cannot be found (the YAML parser does not keep positions of
/// values, so this scans the text).
fn line_hint(text: &str, id: &str, nth: usize) -> String {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line_declares_id(line, id))
        .nth(nth)
        .map(|(n, _)| format!(" (line {})", n + 1))
        .unwrap_or_default()
}

fn line_declares_id(line: &str, id: &str) -> bool {
    let mut rest = line;
    while let Some(pos) = rest.find("id:") {
        let before_ok = rest[..pos]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let value = rest[pos + 3..].trim_start();
        let value = value.trim_start_matches(['"', '\'']);
        if before_ok && value.starts_with(id) {
            let after = value[id.len()..].chars().next();
            if after.is_none_or(|c| matches!(c, ',' | '}' | '"' | '\'' | ' ' | '#')) {
                return true;
            }
        }
        rest = &rest[pos + 3..];
    }
    false
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
    use crate::policy::test_files;

    #[test]
    fn real_catalog_loads() {
        let c = Catalog::load(&test_files::catalog()).unwrap();
        assert!(c.contains("wybs.sfsb.zzs"));
        assert_eq!(c.ancestors("wybs.sfsb.zzs").unwrap(), ["wybs", "wybs.sfsb"]);
        assert_eq!(c.ancestors("wybs").unwrap(), [] as [String; 0]);
        assert_eq!(c.ancestors("nope"), None);
        assert_eq!(c.name("wycx.sbxx"), Some("申报信息查询"));
        let roots: Vec<_> = c.roots().iter().map(|n| n.id.as_str()).collect();
        assert_eq!(roots, ["wybs", "wycx", "hdzx", "gzfw", "wdxx"]);
        assert_eq!(c.ids().next(), Some("wybs"));
        assert_eq!(c.ids().count(), c.len());
    }

    #[test]
    fn duplicate_id_names_id_and_line() {
        let text = "modules:\n  - id: a\n    name: A\n    children:\n      - {id: b, name: B}\n  - {id: b, name: B2}\n";
        let err = Catalog::from_yaml(text).unwrap_err().to_string();
        assert!(err.contains("duplicate module id `b` (line 6)"), "{err}");
    }

    #[test]
    fn empty_name_and_bad_id_and_unknown_field() {
        let err = Catalog::from_yaml("modules:\n  - {id: a, name: ' '}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("module `a` (line 2): empty name"), "{err}");
        let err = Catalog::from_yaml("modules:\n  - {id: 'a b', name: A}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid module id `a b`"), "{err}");
        let err = Catalog::from_yaml("modules:\n  - {id: a, name: A, kids: []}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field `kids`") && err.contains("line 2"),
            "{err}"
        );
        assert!(Catalog::from_yaml("modules: []\n").is_err());
    }
}
