//! Building the Cedar entities and requests of one authorization decision.
//!
//! Contract: [`EntityKit`] is built once per catalog and holds, for every
//! module, a ready `Entities` store containing that `Module` entity with *all*
//! its strict ancestors as parents (transitive closure computed once, at load).
//! Per request the only work is building the `Officer` entity and adding it to
//! a cheap clone of that store (one `Arc` in a one-entry map); Cedar then
//! repairs the closure for the officer alone. Entities are constructed
//! by this module from validated data, so they are not re-checked against the
//! schema per request (the schema shape is pinned by the unit tests instead).
//! Entity ids: `Officer::"<enterprise>/<person>"`, `Enterprise::"<enterprise>"`,
//! `Module::"<catalog id>"`. Every request has the context `{ login: LoginKind::"…" }`
//! (how the session's enterprise login was passed); the three contexts are built once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
};

use super::catalog::Catalog;
use super::error::PolicyError;
pub use crate::store::records::LoginKind;

/// What the store knows about the officer making a request.
#[derive(Debug, Clone, Copy)]
pub struct OfficerFacts<'a> {
    /// Enterprise key (USCC or TIN).
    pub enterprise: &'a str,
    /// Opaque person id.
    pub person: &'a str,
    /// "legal_rep", "finance_officer", "tax_officer", "agent".
    pub roles: &'a [&'a str],
    /// `None`: never customized, the policy defaults apply.
    /// `Some(empty)`: every permission revoked (unbound).
    pub grants: Option<&'a BTreeSet<String>>,
    /// How the session (or the login being completed) passed stage 1.
    pub login: LoginKind,
}

/// The actions on an enterprise (resource `Enterprise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnterpriseAction {
    /// 我的信息-用户管理: add users, grant and revoke (`Action::"manage_users"`).
    ManageUsers,
    /// Open an enterprise session (`Action::"enter"`).
    Enter,
}

/// Pre-built type names, action uids and module entities.
#[derive(Debug, Clone)]
pub(crate) struct EntityKit {
    officer_type: EntityTypeName,
    enterprise_type: EntityTypeName,
    module_type: EntityTypeName,
    action_use: EntityUid,
    action_manage_users: EntityUid,
    action_enter: EntityUid,
    modules: HashMap<String, ModuleEntry>,
    empty: Entities,
    /// The request context of each login kind, in [`LoginKind::ALL`] order.
    contexts: [Context; 3],
}

/// The pre-built store of one module.
#[derive(Debug, Clone)]
struct ModuleEntry {
    uid: EntityUid,
    store: Entities,
}

fn type_name(name: &str) -> Result<EntityTypeName, PolicyError> {
    EntityTypeName::from_str(name).map_err(|e| PolicyError::Entity(format!("type {name}: {e}")))
}

fn action(id: &str) -> Result<EntityUid, PolicyError> {
    Ok(EntityUid::from_type_name_and_id(
        type_name("Action")?,
        EntityId::new(id),
    ))
}

impl EntityKit {
    /// Builds every `Module` entity of `catalog`, parents = all strict ancestors.
    pub(crate) fn new(catalog: &Catalog) -> Result<EntityKit, PolicyError> {
        let module_type = type_name("Module")?;
        let uid =
            |id: &str| EntityUid::from_type_name_and_id(module_type.clone(), EntityId::new(id));
        let mut modules = HashMap::with_capacity(catalog.len());
        for id in catalog.ids() {
            let parents: HashSet<EntityUid> = catalog
                .ancestors(id)
                .unwrap_or_default()
                .iter()
                .map(|a| uid(a))
                .collect();
            let entity = Entity::new_no_attrs(uid(id), parents);
            let store = Entities::from_entities([entity], None)
                .map_err(|e| PolicyError::Entity(format!("module {id}: {e}")))?;
            modules.insert(
                id.to_string(),
                ModuleEntry {
                    uid: uid(id),
                    store,
                },
            );
        }
        let login_type = type_name("LoginKind")?;
        let context = |kind: LoginKind| {
            let uid =
                EntityUid::from_type_name_and_id(login_type.clone(), EntityId::new(kind.as_str()));
            Context::from_pairs([(
                "login".to_string(),
                RestrictedExpression::new_entity_uid(uid),
            )])
            .map_err(|e| PolicyError::Entity(format!("context: {e}")))
        };
        let [p, c, d] = LoginKind::ALL;
        Ok(EntityKit {
            contexts: [context(p)?, context(c)?, context(d)?],
            officer_type: type_name("Officer")?,
            enterprise_type: type_name("Enterprise")?,
            module_type,
            action_use: action("use")?,
            action_manage_users: action("manage_users")?,
            action_enter: action("enter")?,
            modules,
            empty: Entities::empty(),
        })
    }

    /// Every module handle.
    pub(crate) fn modules(&self) -> impl Iterator<Item = ModuleRef<'_>> {
        self.modules.values().map(ModuleRef)
    }

    /// The module handle of a catalog id.
    pub(crate) fn module(&self, id: &str) -> Option<ModuleRef<'_>> {
        self.modules.get(id).map(ModuleRef)
    }

    /// The uid of `use` (`None`) or of an enterprise action.
    pub(crate) fn action_uid(&self, action: Option<EnterpriseAction>) -> &EntityUid {
        match action {
            None => &self.action_use,
            Some(EnterpriseAction::ManageUsers) => &self.action_manage_users,
            Some(EnterpriseAction::Enter) => &self.action_enter,
        }
    }

    fn context(&self, login: LoginKind) -> Context {
        let i = match login {
            LoginKind::Password => 0,
            LoginKind::Ca => 1,
            LoginKind::Device => 2,
        };
        self.contexts.get(i).cloned().unwrap_or_else(Context::empty)
    }

    pub(crate) fn enterprise_uid(&self, enterprise: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.enterprise_type.clone(), EntityId::new(enterprise))
    }

    /// `Officer::"<enterprise>/<person>"`, member of its enterprise, with the
    /// attributes `roles`, `grants`, `customized` of the schema.
    pub(crate) fn officer(&self, facts: &OfficerFacts<'_>) -> Result<Entity, PolicyError> {
        let uid = EntityUid::from_type_name_and_id(
            self.officer_type.clone(),
            EntityId::new(officer_id(facts)),
        );
        let roles = RestrictedExpression::new_set(
            facts
                .roles
                .iter()
                .map(|r| RestrictedExpression::new_string((*r).to_string())),
        );
        let grants = RestrictedExpression::new_set(facts.grants.into_iter().flatten().map(|g| {
            RestrictedExpression::new_entity_uid(EntityUid::from_type_name_and_id(
                self.module_type.clone(),
                EntityId::new(g),
            ))
        }));
        let attrs = [
            ("roles".to_string(), roles),
            ("grants".to_string(), grants),
            (
                "customized".to_string(),
                RestrictedExpression::new_bool(facts.grants.is_some()),
            ),
        ];
        let parents = [self.enterprise_uid(facts.enterprise)];
        Entity::new_with_tags(uid, attrs, parents, [])
            .map_err(|e| PolicyError::Entity(e.to_string()))
    }

    /// Request `officer` → `use` → `module`, with its entities.
    pub(crate) fn module_request(
        &self,
        officer: Entity,
        module: ModuleRef<'_>,
        login: LoginKind,
    ) -> Result<(Request, Entities), PolicyError> {
        let request = Request::new(
            officer.uid(),
            self.action_use.clone(),
            module.0.uid.clone(),
            self.context(login),
            None,
        )
        .map_err(|e| PolicyError::Entity(e.to_string()))?;
        let entities = module
            .0
            .store
            .clone()
            .add_entities([officer], None)
            .map_err(|e| PolicyError::Entity(e.to_string()))?;
        Ok((request, entities))
    }

    /// Request `officer` → `manage_users`/`enter` → `Enterprise::"<enterprise>"`.
    pub(crate) fn enterprise_request(
        &self,
        officer: Entity,
        enterprise: &str,
        action: EnterpriseAction,
        login: LoginKind,
    ) -> Result<(Request, Entities), PolicyError> {
        let request = Request::new(
            officer.uid(),
            self.action_uid(Some(action)).clone(),
            self.enterprise_uid(enterprise),
            self.context(login),
            None,
        )
        .map_err(|e| PolicyError::Entity(e.to_string()))?;
        let entities = self
            .empty
            .clone()
            .add_entities([officer], None)
            .map_err(|e| PolicyError::Entity(e.to_string()))?;
        Ok((request, entities))
    }
}

/// A module known to the kit (its uid and pre-built entity store).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModuleRef<'a>(&'a ModuleEntry);

impl ModuleRef<'_> {
    /// The `Module` entity itself.
    pub(crate) fn entity(&self) -> Option<&Entity> {
        self.0.store.get(&self.0.uid)
    }
}

/// The Cedar entity id of an officer: `<enterprise>/<person>`.
pub fn officer_id(facts: &OfficerFacts<'_>) -> String {
    let mut id = String::with_capacity(facts.enterprise.len() + facts.person.len() + 1);
    id.push_str(facts.enterprise);
    id.push('/');
    id.push_str(facts.person);
    id
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
    use cedar_policy::Schema;

    /// The entities we build without schema checks do conform to the schema.
    #[test]
    fn built_entities_conform_to_schema() {
        let catalog = Catalog::load(&test_files::catalog()).unwrap();
        let kit = EntityKit::new(&catalog).unwrap();
        let text = std::fs::read_to_string(test_files::schema()).unwrap();
        let (schema, _) = Schema::from_cedarschema_str(&text).unwrap();
        let grants = BTreeSet::from(["wycx".to_string()]);
        for grants in [None, Some(&grants)] {
            let facts = OfficerFacts {
                enterprise: "91110000600037341L",
                person: "p1",
                roles: &["tax_officer", "agent"],
                grants,
                login: LoginKind::Ca,
            };
            let officer = kit.officer(&facts).unwrap();
            let module = kit
                .module("wybs.sfsb.zzs")
                .unwrap()
                .entity()
                .unwrap()
                .clone();
            let all = [officer.clone(), module];
            Entities::from_entities(all, Some(&schema)).unwrap();
            let (req, ents) = kit
                .module_request(
                    officer.clone(),
                    kit.module("wycx.sbxx").unwrap(),
                    LoginKind::Ca,
                )
                .unwrap();
            assert_eq!(ents.len(), 2);
            assert!(ents.is_ancestor_of(
                &kit.module("wycx").unwrap().0.uid,
                &req.resource().unwrap().clone()
            ));
            Request::new(
                req.principal().unwrap().clone(),
                req.action().unwrap().clone(),
                req.resource().unwrap().clone(),
                req.context().unwrap().clone(),
                Some(&schema),
            )
            .unwrap();
        }
        let module = kit
            .module("wybs.sfsb.zzs")
            .unwrap()
            .entity()
            .unwrap()
            .clone();
        let parents: Vec<String> = Entities::from_entities([module.clone()], None)
            .unwrap()
            .ancestors(&module.uid())
            .unwrap()
            .map(|u| u.id().unescaped().to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(parents, ["wybs", "wybs.sfsb"]);
    }
}
