//! Applying a validated registry file to the store in one transaction.

use super::file::RegistryFile;
use super::validate::{validate, Valid};
use super::ImportError;
use crate::crypto::password::Hasher;
use crate::store::records::{Enterprise, Officer, Person, TaxAuthority};
use crate::store::{codec, keys, Store, Tree, Write};
use std::collections::HashMap;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportReport {
    pub enterprises_added: usize,
    pub enterprises_updated: usize,
    pub persons_added: usize,
    pub officers_bound: usize,
    pub officers_released: usize,
}

/// Validates `text` and, if it is valid, writes it. See the module contract in `registry`.
pub async fn import(
    store: &Store,
    hasher: &Hasher,
    text: &str,
    now: i64,
) -> Result<ImportReport, ImportError> {
    let file: RegistryFile =
        serde_yaml::from_str(text).map_err(|e| ImportError::Syntax(e.to_string()))?;
    let valid = validate(&file).map_err(ImportError::Invalid)?;
    let mut plan = plan(store, hasher, &valid).await?;
    plan.put(Tree::Meta, "registry_imported_at", &now)?;
    store.apply(plan.writes).await?;
    store.flush().await?;
    Ok(plan.report)
}

/// Every write the import makes, in order, computed before anything is written.
#[derive(Default)]
struct Plan {
    writes: Vec<Write>,
    report: ImportReport,
}

impl Plan {
    fn put<T: serde::Serialize>(
        &mut self,
        tree: Tree,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), ImportError> {
        self.writes
            .push((tree, key.as_ref().to_vec(), Some(codec::encode(value)?)));
        Ok(())
    }

    fn put_raw(&mut self, tree: Tree, key: impl AsRef<[u8]>, value: &[u8]) {
        self.writes
            .push((tree, key.as_ref().to_vec(), Some(value.to_vec())));
    }

    fn remove(&mut self, tree: Tree, key: impl AsRef<[u8]>) {
        self.writes.push((tree, key.as_ref().to_vec(), None));
    }
}

async fn plan(store: &Store, hasher: &Hasher, valid: &Valid) -> Result<Plan, ImportError> {
    let mut p = Plan::default();
    for (code, name) in &valid.tax_authorities {
        p.put(
            Tree::TaxAuthorities,
            code,
            &TaxAuthority {
                code: code.clone(),
                name: name.clone(),
            },
        )?;
    }
    // Persons first seen in this file get one id, whichever enterprise names them first.
    let mut new_persons: HashMap<String, String> = HashMap::new();

    for e in &valid.enterprises {
        let mut existing_key = None;
        for account in e.uscc.iter().chain(e.tin.iter()) {
            existing_key = store.get_raw(Tree::Accounts, account).await?;
            if existing_key.is_some() {
                break;
            }
        }
        let existing: Option<Enterprise> = match &existing_key {
            Some(k) => store.get(Tree::Enterprises, k).await?,
            None => None,
        };
        let enterprise = match existing {
            Some(old) => {
                p.report.enterprises_updated += 1;
                Enterprise {
                    uscc: e.uscc.clone().or(old.uscc.clone()),
                    tin: e.tin.clone().or(old.tin.clone()),
                    name: e.name.clone(),
                    tax_authority: e.tax_authority.clone(),
                    ..old
                }
            }
            None => {
                p.report.enterprises_added += 1;
                let key = e.uscc.clone().or(e.tin.clone()).unwrap_or_default();
                Enterprise {
                    key,
                    uscc: e.uscc.clone(),
                    tin: e.tin.clone(),
                    name: e.name.clone(),
                    tax_authority: e.tax_authority.clone(),
                    password_hash: hasher
                        .hash_sync(&e.password)
                        .map_err(|err| ImportError::Hash(err.to_string()))?,
                    password_epoch: 0,
                }
            }
        };
        let key = enterprise.key.clone();
        for account in enterprise.uscc.iter().chain(enterprise.tin.iter()) {
            p.put_raw(Tree::Accounts, account, key.as_bytes());
        }
        p.put(Tree::Enterprises, &key, &enterprise)?;

        // Registry bindings no longer in the file are released.
        let current: Vec<(_, Officer)> = store
            .scan_prefix(Tree::Officers, keys::officers_of(&key))
            .await?;
        for (_, mut o) in current {
            let person_id_number = store
                .get::<Person>(Tree::Persons, &o.person)
                .await?
                .map(|p| p.id_number)
                .unwrap_or_default();
            if o.registry_roles.is_empty() || e.officers.contains_key(&person_id_number) {
                continue;
            }
            o.registry_roles.clear();
            o.registry_phone = None;
            p.report.officers_released += 1;
            if o.self_registered || o.added || o.unbound_at.is_some() {
                p.put(Tree::Officers, keys::officer(&key, &o.person), &o)?;
            } else {
                p.remove(Tree::Officers, keys::officer(&key, &o.person));
                p.remove(
                    Tree::OfficersByPerson,
                    keys::officer_by_person(&o.person, &key),
                );
            }
        }

        for (id_number, v) in &e.officers {
            let found = store.get_raw(Tree::PersonsByIdNumber, id_number).await?;
            let person_id = match (found, new_persons.get(id_number)) {
                (Some(id), _) => {
                    let id = String::from_utf8_lossy(&id).into_owned();
                    // A person who has not registered himself is known only from the
                    // registry: keep his name and phone current.
                    if let Some(mut person) = store.get::<Person>(Tree::Persons, &id).await? {
                        if person.registered_at.is_none() {
                            person.name = v.name.clone();
                            person.phone = v.phone.clone();
                            p.put(Tree::Persons, &id, &person)?;
                        }
                    }
                    id
                }
                (None, Some(id)) => id.clone(),
                (None, None) => {
                    let id = crate::crypto::secrets::short_id();
                    new_persons.insert(id_number.clone(), id.clone());
                    p.report.persons_added += 1;
                    let person = Person {
                        id: id.clone(),
                        name: v.name.clone(),
                        id_number: id_number.clone(),
                        phone: v.phone.clone(),
                        password_hash: None,
                        realname_verified: false,
                        registered_at: None,
                        tax_authority: None,
                    };
                    p.put(Tree::Persons, &id, &person)?;
                    p.put_raw(Tree::PersonsByIdNumber, id_number, id.as_bytes());
                    id
                }
            };
            let mut officer: Officer = store
                .get(Tree::Officers, keys::officer(&key, &person_id))
                .await?
                .unwrap_or_else(|| Officer::new(&key, &person_id));
            officer.registry_roles = v.roles.clone();
            officer.registry_phone = Some(v.phone.clone());
            p.put(Tree::Officers, keys::officer(&key, &person_id), &officer)?;
            p.put_raw(
                Tree::OfficersByPerson,
                keys::officer_by_person(&person_id, &key),
                &[],
            );
            p.report.officers_bound += 1;
        }
    }
    Ok(p)
}
