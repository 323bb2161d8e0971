//! The policy engine: the policy set in force, decisions, and reload.
//!
//! Contract: a [`PolicyEngine`] always holds a validated schema + policy set
//! (it cannot be constructed otherwise). Decisions are lock-free: they read
//! the current set through an `ArcSwap` and reuse one `Authorizer`. For speed
//! the set is split by action at load time: a request is evaluated against
//! the policies whose action scope can match its action (`action == A` goes to
//! A only, `action` / `action in [...]` to every action). A policy whose scope
//! cannot match never contributes to a decision, so this is exactly the
//! decision over the whole set. A reload
//! validates the new files completely before swapping them in atomically; on
//! any error the previous set stays in force and the error is remembered in
//! [`PolicyStatus::last_reload`]. Every failure to decide (unknown module,
//! entity error, Cedar evaluation error) is a denial, never a panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use cedar_policy::{ActionConstraint, Authorizer, Entities, Entity, EntityUid, PolicySet, Request};
use serde::Serialize;

use super::catalog::Catalog;
use super::entities::{EnterpriseAction, EntityKit, LoginKind, ModuleRef, OfficerFacts};
use super::error::PolicyError;
use super::loader::{self, Fingerprint};
use super::tree::{self, ModuleView};

/// The outcome of one authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// `policies`: the `@id`s of the forbid policies that determined the
    /// denial; empty when simply no permit matched (or the request was
    /// refused before Cedar, e.g. an unknown module).
    Deny {
        policies: Vec<String>,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    fn deny() -> Decision {
        Decision::Deny {
            policies: Vec::new(),
        }
    }
}

/// The result of the most recent load or reload attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LastReload {
    Ok { at_unix: u64 },
    Failed { at_unix: u64, error: String },
}

impl LastReload {
    /// As a `Result`: `Err` carries the error message.
    pub fn as_result(&self) -> Result<(), &str> {
        match self {
            LastReload::Ok { .. } => Ok(()),
            LastReload::Failed { error, .. } => Err(error),
        }
    }
}

/// What is in force, for the admin API and the logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyStatus {
    /// 1 for the set loaded at start-up, +1 for each successful reload.
    pub version: u64,
    /// Hex sha256 of the schema and the policy files in force.
    pub hash: String,
    /// When the set in force was loaded (Unix seconds).
    pub loaded_at_unix: u64,
    /// Number of policies in force.
    pub policies: usize,
    /// The last load/reload attempt; a failure here means the previous set
    /// (described by the fields above) is still in force.
    pub last_reload: LastReload,
}

/// One validated policy set, swapped in as a whole.
struct Loaded {
    /// The whole validated set.
    policies: PolicySet,
    /// The subsets evaluated per action (see the module contract).
    by_action: ByAction,
    version: u64,
    hash: String,
    loaded_at_unix: u64,
    fingerprint: Fingerprint,
    /// Policy `@id` → file it came from.
    origins: HashMap<String, String>,
    /// Decisions of `use` by (module, roles, grants), when they cannot depend on who the
    /// officer is (see [`use_decisions_cacheable`]); `None` otherwise.
    /// Lock-free reads (papaya): this is on every proxied request.
    use_cache: Option<papaya::HashMap<String, Decision>>,
}

/// Entries kept per policy version before the cache starts over (the key space is
/// small: modules × role sets × distinct grant sets).
const USE_CACHE_MAX: usize = 65_536;

/// Whether no `use` policy names a particular officer or enterprise (no `Officer::"…"`
/// or `Enterprise::"…"` literal, in the scope or in a condition). Then a `use` decision
/// depends only on the officer's attributes (roles, grants, customized) and the module:
/// the officer entity's uid and its parent (the enterprise) cannot change the outcome,
/// because a `Module` resource is never `in` an officer or an enterprise.
fn use_decisions_cacheable(set: &PolicySet) -> bool {
    fn names_identity(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => {
                let literal = m.contains_key("id")
                    && matches!(m.get("type").and_then(|t| t.as_str()),
                        Some(t) if t.ends_with("Officer") || t.ends_with("Enterprise"));
                literal || m.values().any(names_identity)
            }
            serde_json::Value::Array(a) => a.iter().any(names_identity),
            _ => false,
        }
    }
    set.policies().all(|p| match p.to_json() {
        Ok(json) => !names_identity(&json),
        Err(_) => false,
    })
}

/// The cache key of a `use` decision: the request context and everything the officer
/// entity carries except who he is. Roles come sorted (a `BTreeSet`), grants too.
fn use_cache_key(k: &mut String, officer: &OfficerFacts<'_>, module_id: &str) {
    k.clear();
    k.push_str(module_id);
    k.push('\0');
    k.push_str(officer.login.as_str());
    k.push('\0');
    for r in officer.roles {
        k.push_str(r);
        k.push(',');
    }
    k.push('\0');
    match officer.grants {
        None => k.push('-'),
        Some(g) => {
            k.push('+');
            for m in g {
                k.push_str(m);
                k.push(',');
            }
        }
    }
}

thread_local! {
    /// Where [`use_cache_key`] builds a lookup key, so a cache hit allocates nothing.
    static KEY: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(128));
}

/// The policy set split by action.
struct ByAction {
    use_module: PolicySet,
    manage_users: PolicySet,
    enter: PolicySet,
}

impl ByAction {
    fn split(all: &PolicySet, kit: &EntityKit) -> Result<ByAction, PolicyError> {
        let pick = |action: &EntityUid| -> Result<PolicySet, PolicyError> {
            let mut set = PolicySet::new();
            for p in all.policies() {
                let applies = match p.action_constraint() {
                    ActionConstraint::Eq(a) => &a == action,
                    ActionConstraint::Any | ActionConstraint::In(_) => true,
                };
                if applies {
                    set.add(p.clone())
                        .map_err(|e| PolicyError::Entity(format!("policy {}: {e}", p.id())))?;
                }
            }
            Ok(set)
        };
        Ok(ByAction {
            use_module: pick(kit.action_uid(None))?,
            manage_users: pick(kit.action_uid(Some(EnterpriseAction::ManageUsers)))?,
            enter: pick(kit.action_uid(Some(EnterpriseAction::Enter)))?,
        })
    }

    fn enterprise(&self, action: EnterpriseAction) -> &PolicySet {
        match action {
            EnterpriseAction::ManageUsers => &self.manage_users,
            EnterpriseAction::Enter => &self.enter,
        }
    }
}

/// Loads, holds and evaluates the Cedar policies (see the module contract).
pub struct PolicyEngine {
    schema_path: PathBuf,
    policies_dir: PathBuf,
    catalog: Arc<Catalog>,
    kit: EntityKit,
    authorizer: Authorizer,
    current: ArcSwap<Loaded>,
    last_reload: ArcSwap<LastReload>,
    /// Serializes reloads (watcher and admin API may race).
    reload_lock: Mutex<()>,
    /// Reload attempts since start: (succeeded, failed), for the metrics.
    reloads: (AtomicU64, AtomicU64),
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl PolicyEngine {
    /// Loads and strictly validates `schema_path` and `policies_dir/*.cedar`.
    pub fn load(
        schema_path: &Path,
        policies_dir: &Path,
        catalog: Arc<Catalog>,
    ) -> Result<PolicyEngine, PolicyError> {
        let kit = EntityKit::new(&catalog)?;
        let loaded = Self::read(schema_path, policies_dir, &catalog, &kit, 1)?;
        let at = loaded.loaded_at_unix;
        Ok(PolicyEngine {
            schema_path: schema_path.to_path_buf(),
            policies_dir: policies_dir.to_path_buf(),
            catalog,
            kit,
            authorizer: Authorizer::new(),
            current: ArcSwap::from_pointee(loaded),
            last_reload: ArcSwap::from_pointee(LastReload::Ok { at_unix: at }),
            reload_lock: Mutex::new(()),
            reloads: (AtomicU64::new(0), AtomicU64::new(0)),
        })
    }

    fn read(
        schema_path: &Path,
        policies_dir: &Path,
        catalog: &Catalog,
        kit: &EntityKit,
        version: u64,
    ) -> Result<Loaded, PolicyError> {
        let (_schema, files) = loader::load_files(schema_path, policies_dir, catalog, kit)?;
        let by_action = ByAction::split(&files.policies, kit)?;
        let use_cache = use_decisions_cacheable(&by_action.use_module).then(papaya::HashMap::new);
        Ok(Loaded {
            use_cache,
            by_action,
            policies: files.policies,
            version,
            hash: files.hash,
            loaded_at_unix: now_unix(),
            fingerprint: files.fingerprint,
            origins: files.origins,
        })
    }

    /// Re-reads the files. On success the new set is in force (version + 1);
    /// on error the previous set stays in force and the error is remembered.
    pub fn reload(&self) -> Result<PolicyStatus, PolicyError> {
        let _serial = self
            .reload_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let version = self.current.load().version.saturating_add(1);
        match Self::read(
            &self.schema_path,
            &self.policies_dir,
            &self.catalog,
            &self.kit,
            version,
        ) {
            Ok(loaded) => {
                let at = loaded.loaded_at_unix;
                self.current.store(Arc::new(loaded));
                self.reloads.0.fetch_add(1, Ordering::Relaxed);
                self.last_reload
                    .store(Arc::new(LastReload::Ok { at_unix: at }));
                Ok(self.status())
            }
            Err(e) => {
                self.reloads.1.fetch_add(1, Ordering::Relaxed);
                self.last_reload.store(Arc::new(LastReload::Failed {
                    at_unix: now_unix(),
                    error: e.to_string(),
                }));
                Err(e)
            }
        }
    }

    /// Reload attempts since start: (succeeded, failed).
    pub fn reload_counts(&self) -> (u64, u64) {
        (
            self.reloads.0.load(Ordering::Relaxed),
            self.reloads.1.load(Ordering::Relaxed),
        )
    }

    /// The set in force and the last reload outcome.
    pub fn status(&self) -> PolicyStatus {
        let cur = self.current.load();
        PolicyStatus {
            version: cur.version,
            hash: cur.hash.clone(),
            loaded_at_unix: cur.loaded_at_unix,
            policies: cur.policies.num_of_policies(),
            last_reload: LastReload::clone(&self.last_reload.load()),
        }
    }

    /// The files' current fingerprint on disk (cheap: `stat` only).
    pub fn files_fingerprint(&self) -> Fingerprint {
        loader::fingerprint(&self.schema_path, &self.policies_dir)
    }

    /// The fingerprint of the files as they were when the set in force was read.
    pub fn loaded_fingerprint(&self) -> Fingerprint {
        self.current.load().fingerprint.clone()
    }

    /// The file (as given to [`Self::load`]) that the policy `@id` in force
    /// comes from, e.g. to explain a denial in the audit log.
    pub fn policy_file(&self, id: &str) -> Option<String> {
        self.current.load().origins.get(id).cloned()
    }

    /// The module catalog the engine was built with.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// May `officer` use module `module_id`? Unknown modules are denied.
    pub fn authorize_module(&self, officer: &OfficerFacts<'_>, module_id: &str) -> Decision {
        let Some(module) = self.kit.module(module_id) else {
            return Decision::deny();
        };
        let current = self.current.load();
        // Err: the officer could not be turned into an entity (a denial never cached).
        let decide = || match self.kit.officer(officer) {
            Ok(entity) => Ok(self.decide_module(
                &current.by_action.use_module,
                entity,
                module,
                officer.login,
            )),
            Err(e) => Err(Self::entity_failure(&e)),
        };
        let Some(cache) = &current.use_cache else {
            return decide().unwrap_or_else(|failure| failure);
        };
        let lookup = KEY.with_borrow_mut(|key| {
            use_cache_key(key, officer, module_id);
            cache
                .pin()
                .get(key.as_str())
                .cloned()
                .ok_or_else(|| key.clone())
        });
        let key = match lookup {
            Ok(hit) => return hit,
            Err(miss) => miss,
        };
        let decision = match decide() {
            Ok(decision) => decision,
            Err(failure) => return failure,
        };
        let cache = cache.pin();
        if cache.len() >= USE_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, decision.clone());
        decision
    }

    /// May `officer` manage the users of / enter his own enterprise
    /// (`officer.enterprise`)?
    pub fn authorize_enterprise(
        &self,
        officer: &OfficerFacts<'_>,
        action: EnterpriseAction,
    ) -> Decision {
        self.authorize_enterprise_of(officer, officer.enterprise, action)
    }

    /// Like [`Self::authorize_enterprise`] for an arbitrary target enterprise.
    pub fn authorize_enterprise_of(
        &self,
        officer: &OfficerFacts<'_>,
        enterprise: &str,
        action: EnterpriseAction,
    ) -> Decision {
        let built = self.kit.officer(officer).and_then(|o| {
            self.kit
                .enterprise_request(o, enterprise, action, officer.login)
        });
        match built {
            Ok((request, entities)) => {
                let current = self.current.load();
                self.decide(current.by_action.enterprise(action), &request, &entities)
            }
            Err(e) => Self::entity_failure(&e),
        }
    }

    /// The catalog filtered to what `officer` may use (see `tree.rs`);
    /// `paths` maps a module id to its route path.
    pub fn authorized_tree(
        &self,
        officer: &OfficerFacts<'_>,
        paths: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<ModuleView> {
        let Ok(entity) = self.kit.officer(officer) else {
            return Vec::new();
        };
        let current = self.current.load();
        let mut allowed = |id: &str| {
            self.kit.module(id).is_some_and(|m| {
                self.decide_module(
                    &current.by_action.use_module,
                    entity.clone(),
                    m,
                    officer.login,
                )
                .is_allowed()
            })
        };
        tree::authorized_tree(&self.catalog, &mut allowed, paths)
    }

    /// The whole catalog, unfiltered (every node `allowed`), with route paths:
    /// what an admin can grant on the 授权 page.
    pub fn full_tree(&self, paths: &dyn Fn(&str) -> Option<String>) -> Vec<ModuleView> {
        tree::authorized_tree(&self.catalog, &mut |_| true, paths)
    }

    fn decide_module(
        &self,
        policies: &PolicySet,
        officer: Entity,
        module: ModuleRef<'_>,
        login: LoginKind,
    ) -> Decision {
        match self.kit.module_request(officer, module, login) {
            Ok((request, entities)) => self.decide(policies, &request, &entities),
            Err(e) => Self::entity_failure(&e),
        }
    }

    fn decide(&self, policies: &PolicySet, request: &Request, entities: &Entities) -> Decision {
        let response = self.authorizer.is_authorized(request, policies, entities);
        let diagnostics = response.diagnostics();
        for e in diagnostics.errors() {
            tracing::warn!(error = %e, "cedar evaluation error (treated as deny)");
        }
        match response.decision() {
            cedar_policy::Decision::Allow => Decision::Allow,
            cedar_policy::Decision::Deny => Decision::Deny {
                policies: diagnostics.reason().map(ToString::to_string).collect(),
            },
        }
    }

    fn entity_failure(e: &PolicyError) -> Decision {
        tracing::warn!(error = %e, "could not build authorization request (treated as deny)");
        Decision::deny()
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
