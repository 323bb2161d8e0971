//! The authorized module tree (the menu an officer sees, seed §3.4.2 (4)).
//!
//! Contract: [`authorized_tree`] keeps a node when the officer may use it or
//! may use any of its descendants, in catalog order. A node kept only as the
//! parent of allowed modules has `allowed == false` and no `path`, so the UI
//! can show it as a heading without a link that would be refused.

use serde::Serialize;

use super::catalog::{Catalog, ModuleNode};

/// One node of the officer's menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleView {
    pub id: String,
    pub name: String,
    /// Whether the officer may use this module itself (always true in the
    /// unfiltered tree of `PolicyEngine::full_tree`).
    pub allowed: bool,
    /// Route path of the module (from the routing table); absent when the
    /// module has no route or is not itself allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub children: Vec<ModuleView>,
}

/// Filters `catalog` down to what `allowed` admits (see the module contract).
pub(crate) fn authorized_tree(
    catalog: &Catalog,
    allowed: &mut dyn FnMut(&str) -> bool,
    paths: &dyn Fn(&str) -> Option<String>,
) -> Vec<ModuleView> {
    catalog
        .roots()
        .iter()
        .filter_map(|n| view(n, allowed, paths))
        .collect()
}

fn view(
    node: &ModuleNode,
    allowed: &mut dyn FnMut(&str) -> bool,
    paths: &dyn Fn(&str) -> Option<String>,
) -> Option<ModuleView> {
    let me = allowed(&node.id);
    let children: Vec<ModuleView> = node
        .children
        .iter()
        .filter_map(|c| view(c, allowed, paths))
        .collect();
    if !me && children.is_empty() {
        return None;
    }
    Some(ModuleView {
        id: node.id.clone(),
        name: node.name.clone(),
        allowed: me,
        path: if me { paths(&node.id) } else { None },
        children,
    })
}
