//! Authorization with Cedar: every permission rule of taxgate is a Cedar
//! policy under `policies/`, checked against `schema/taxgate.cedarschema`.
//!
//! Contract of the layer: callers hand in plain facts about an officer
//! ([`OfficerFacts`], read from the store) and a module id or an enterprise
//! action, and get an explicit [`Decision`]. No business rule lives in Rust:
//! defaults, admin rights and unbinding are all in the policies. The policy
//! set in force is always a strictly validated one; it can be replaced at run
//! time ([`PolicyEngine::reload`], [`spawn_reload_watcher`]) without a
//! restart, and a broken edit leaves the previous set in force (SPEC S10).
//!
//! Files: `catalog` (module tree from `config/modules.yaml`), `entities`
//! (Cedar entities and requests), `loader` (schema + policy files → validated
//! set), `engine` (set in force, decisions, reload), `tree` (the menu of
//! allowed modules), `watcher` (polling hot reload), `error`.

mod catalog;
mod engine;
mod entities;
mod error;
mod loader;
#[cfg(test)]
mod shared_cases;
mod tree;
mod watcher;

pub use catalog::{Catalog, ModuleNode};
pub use engine::{Decision, LastReload, PolicyEngine, PolicyStatus};
pub use entities::{officer_id, EnterpriseAction, LoginKind, OfficerFacts};
pub use error::PolicyError;
pub use loader::Fingerprint;
pub use tree::ModuleView;
pub use watcher::spawn_reload_watcher;

/// Paths of the real files of the repository, for the unit tests.
#[cfg(test)]
pub(crate) mod test_files {
    use std::path::PathBuf;

    /// The repository root (`gateway/..`).
    const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

    pub(crate) fn repo() -> PathBuf {
        PathBuf::from(REPO)
    }
    pub(crate) fn catalog() -> PathBuf {
        repo().join("config/modules.yaml")
    }
    pub(crate) fn schema() -> PathBuf {
        repo().join("schema/taxgate.cedarschema")
    }
    pub(crate) fn policies() -> PathBuf {
        repo().join("policies")
    }
}
