//! Applying a validated registry file to the store in one transaction.

use super::file::RegistryFile;
use super::validate::{validate, Valid};
use super::ImportError;
use crate::crypto::password::Hasher;
use crate::store::records::{Enterprise, Officer, Person, TaxAuthority};
use crate::store::{codec, keys, Store};
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
pub fn import(
    store: &Store,
    hasher: &Hasher,
    text: &str,
    now: i64,
) -> Result<ImportReport, ImportError> {
    let file: RegistryFile =
        serde_yaml::from_str(text).map_err(|e| ImportError::Syntax(e.to_string()))?;
    let valid = validate(&file).map_err(ImportError::Invalid)?;
    let plan = plan(store, hasher, &valid)?;
    apply(store, &plan)?;
    store.put(&store.trees.meta, "registry_imported_at", &now)?;
    store.flush_blocking()?;
    Ok(plan.report)
}

/// Every write the import makes, per tree, computed before anything is written.
#[derive(Default)]
struct Plan {
    enterprises: sled::Batch,
    accounts: sled::Batch,
    persons: sled::Batch,
    persons_by_id_number: sled::Batch,
    officers: sled::Batch,
    officers_by_person: sled::Batch,
    tax_authorities: sled::Batch,
    report: ImportReport,
}

fn put<T: serde::Serialize>(
    batch: &mut sled::Batch,
    key: impl AsRef<[u8]>,
    value: &T,
) -> Result<(), ImportError> {
    batch.insert(key.as_ref(), codec::encode(value)?);
    Ok(())
}

fn plan(store: &Store, hasher: &Hasher, valid: &Valid) -> Result<Plan, ImportError> {
    let t = &store.trees;
    let mut p = Plan::default();
    for (code, name) in &valid.tax_authorities {
        put(
            &mut p.tax_authorities,
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
        let existing_key = e
            .uscc
            .iter()
            .chain(e.tin.iter())
            .find_map(|a| t.accounts.get(a.as_bytes()).ok().flatten());
        let existing: Option<Enterprise> = match &existing_key {
            Some(k) => store.get(&t.enterprises, k)?,
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
            p.accounts.insert(account.as_bytes(), key.as_bytes());
        }
        put(&mut p.enterprises, &key, &enterprise)?;

        // Registry bindings no longer in the file are released.
        let current: Vec<(_, Officer)> = store.scan_prefix(&t.officers, keys::officers_of(&key))?;
        for (_, mut o) in current {
            let person_id_number = store
                .get::<Person>(&t.persons, &o.person)?
                .map(|p| p.id_number)
                .unwrap_or_default();
            if o.registry_roles.is_empty() || e.officers.contains_key(&person_id_number) {
                continue;
            }
            o.registry_roles.clear();
            o.registry_phone = None;
            p.report.officers_released += 1;
            if o.self_registered || o.added || o.unbound_at.is_some() {
                put(&mut p.officers, keys::officer(&key, &o.person), &o)?;
            } else {
                p.officers.remove(keys::officer(&key, &o.person));
                p.officers_by_person
                    .remove(keys::officer_by_person(&o.person, &key));
            }
        }

        for (id_number, v) in &e.officers {
            let found = t.persons_by_id_number.get(id_number.as_bytes())?;
            let person_id = match (found, new_persons.get(id_number)) {
                (Some(id), _) => {
                    let id = String::from_utf8_lossy(&id).into_owned();
                    // A person who has not registered himself is known only from the
                    // registry: keep his name and phone current.
                    if let Some(mut person) = store.get::<Person>(&t.persons, &id)? {
                        if person.registered_at.is_none() {
                            person.name = v.name.clone();
                            person.phone = v.phone.clone();
                            put(&mut p.persons, &id, &person)?;
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
                    put(&mut p.persons, &id, &person)?;
                    p.persons_by_id_number
                        .insert(id_number.as_bytes(), id.as_bytes());
                    id
                }
            };
            let mut officer: Officer = store
                .get(&t.officers, keys::officer(&key, &person_id))?
                .unwrap_or_else(|| Officer::new(&key, &person_id));
            officer.registry_roles = v.roles.clone();
            officer.registry_phone = Some(v.phone.clone());
            put(&mut p.officers, keys::officer(&key, &person_id), &officer)?;
            p.officers_by_person
                .insert(keys::officer_by_person(&person_id, &key), &[] as &[u8]);
            p.report.officers_bound += 1;
        }
    }
    Ok(p)
}

fn apply(store: &Store, p: &Plan) -> Result<(), ImportError> {
    let t = &store.trees;
    let trees = [
        &t.enterprises,
        &t.accounts,
        &t.persons,
        &t.persons_by_id_number,
        &t.officers,
        &t.officers_by_person,
        &t.tax_authorities,
    ];
    let batches = [
        &p.enterprises,
        &p.accounts,
        &p.persons,
        &p.persons_by_id_number,
        &p.officers,
        &p.officers_by_person,
        &p.tax_authorities,
    ];
    store
        .transaction::<(), ()>(&trees, |tx| {
            for (tree, batch) in tx.iter().zip(batches.iter()) {
                tree.apply_batch(batch)?;
            }
            Ok(())
        })
        .map_err(|e| match e {
            crate::store::TxError::Store(s) => ImportError::Store(s),
            crate::store::TxError::Abort(()) => ImportError::Syntax("aborted".into()),
        })
}
