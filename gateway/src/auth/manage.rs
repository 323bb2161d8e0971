//! User management (seed §3, AM1–AM4): 添加用户, 授予权限, 回收权限 and unbinding.
//!
//! Contract: the caller has already obtained Cedar's `manage_users` permit for the
//! enterprise; these operations only act inside that enterprise (a person id that is not
//! bound to it is `NOT_FOUND`, never another enterprise's record). A grant change is a
//! store write and applies to the officer's next request; revoking every permission
//! unbinds him and ends his sessions for that enterprise in one transaction.

use crate::api::error::{ApiError, Code};
use crate::app::App;
use crate::store::records::{Officer, Person};
use crate::store::{keys, tx_get, tx_put};
use sled::transaction::ConflictableTransactionError as Tx;
use std::collections::BTreeSet;

/// The result of a grant change.
pub struct GrantChange {
    pub officer: Officer,
    pub bound: bool,
    pub sessions_ended: usize,
}

impl App {
    /// Persons who completed real-name verification, found by ID number or phone.
    pub fn candidates(&self, q: &str) -> Result<Vec<Person>, ApiError> {
        let q = q.trim().to_ascii_uppercase();
        let by_id = self.store.trees.persons_by_id_number.get(q.as_bytes())?;
        let by_phone = self.store.trees.persons_by_phone.get(q.as_bytes())?;
        let mut out = Vec::new();
        for id in by_id.into_iter().chain(by_phone) {
            if let Some(p) = self.store.get::<Person>(&self.store.trees.persons, &id)? {
                if p.realname_verified && !out.iter().any(|o: &Person| o.id == p.id) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    /// AM1 添加用户: binds a real-name-verified person as `added` with the default grants;
    /// sets his personal password only if he has none. Returns the officer and whether a
    /// password was set.
    pub async fn add_user(
        &self,
        enterprise: &str,
        person_id: &str,
        password: Option<&str>,
    ) -> Result<(Officer, bool), ApiError> {
        let person: Person = self
            .person(person_id)?
            .filter(|p| p.realname_verified)
            .ok_or_else(|| {
                ApiError::new(Code::NotFound)
                    .with_message("未找到已完成实名采集的自然人")
                    .with_field("person_id")
            })?;
        if let Some(o) = self.officer(enterprise, person_id)? {
            if o.is_bound() && (o.added || o.self_registered || o.is_admin()) {
                return Err(
                    ApiError::new(Code::AlreadyRegistered).with_message("该用户已是本企业办税人员")
                );
            }
        }
        let new_hash = match (&person.password_hash, password) {
            (Some(_), _) => None,
            (None, Some(pw)) => {
                crate::identity::check_new_password(pw)
                    .map_err(|r| ApiError::invalid("password", r.message_zh()))?;
                Some(self.hasher.hash(pw).await?)
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "password",
                    "该用户尚未设置密码，请为其设置密码",
                ))
            }
        };
        let t = &self.store.trees;
        let key = keys::officer(enterprise, person_id);
        let officer = self
            .store
            .transaction(&[&t.persons, &t.officers, &t.officers_by_person], |tx| {
                if let Some(hash) = &new_hash {
                    let mut p: Person = tx_get(&tx[0], person_id)?
                        .ok_or(Tx::Abort(ApiError::new(Code::NotFound)))?;
                    // Never overwrite a password he set meanwhile.
                    if p.password_hash.is_none() {
                        p.password_hash = Some(hash.clone());
                        tx_put(&tx[0], person_id, &p)?;
                    }
                }
                let mut o = tx_get::<Officer, ApiError>(&tx[1], &key)?
                    .unwrap_or_else(|| Officer::new(enterprise, person_id));
                if o.unbound_at.take().is_some() {
                    o.grants = None;
                }
                o.added = true;
                tx_put(&tx[1], &key, &o)?;
                tx[2].insert(keys::officer_by_person(person_id, enterprise), &[] as &[u8])?;
                Ok(o)
            })
            .map_err(ApiError::from)?;
        self.sessions.officer_changed(enterprise, person_id);
        self.store.flush().await?;
        Ok((officer, new_hash.is_some()))
    }

    /// AM2/AM4: replaces the officer's grants; an empty set unbinds him.
    pub async fn set_grants(
        &self,
        enterprise: &str,
        person_id: &str,
        modules: BTreeSet<String>,
        now: i64,
    ) -> Result<GrantChange, ApiError> {
        if let Some(unknown) = modules.iter().find(|m| !self.catalog.contains(m)) {
            return Err(ApiError::invalid(
                "modules",
                format!("功能模块 `{unknown}` 不存在"),
            ));
        }
        let not_found = || {
            ApiError::new(Code::NotFound)
                .with_message("该用户不是本企业的办税人员")
                .with_field("person_id")
        };
        let current = self
            .officer(enterprise, person_id)?
            .filter(|o| o.is_bound())
            .ok_or_else(not_found)?;
        if current.is_admin() {
            return Err(ApiError::new(Code::Forbidden).with_message(
                "法定代表人和财务负责人拥有全部权限，由核心征管系统登记决定，不能在此修改",
            ));
        }
        let unbind = modules.is_empty();
        let t = &self.store.trees;
        let key = keys::officer(enterprise, person_id);
        let sessions_prefix = {
            let mut k = key.clone();
            k.push(0);
            k
        };
        // The officer's sessions, read before the transaction (sled transactions cannot
        // scan); the transaction removes each one that still exists.
        let sessions: Vec<sled::IVec> = t
            .sessions_by_officer
            .scan_prefix(&sessions_prefix)
            .keys()
            .collect::<Result<_, sled::Error>>()?;
        let (officer, ended) = self
            .store
            .transaction(&[&t.officers, &t.sessions, &t.sessions_by_officer], |tx| {
                let mut o: Officer = tx_get(&tx[0], &key)?
                    .filter(|o: &Officer| o.is_bound())
                    .ok_or_else(|| Tx::Abort(not_found()))?;
                o.grants = Some(modules.clone());
                let mut ended = 0;
                if unbind {
                    o.unbound_at = Some(now);
                    for k in &sessions {
                        if let Some(hash) = keys::parts(k).get(2) {
                            if tx[1].remove(hash.as_bytes())?.is_some() {
                                ended += 1;
                            }
                        }
                        tx[2].remove(k)?;
                    }
                }
                tx_put(&tx[0], &key, &o)?;
                Ok((o, ended))
            })
            .map_err(ApiError::from)?;
        self.sessions.officer_changed(enterprise, person_id);
        self.store.flush().await?;
        Ok(GrantChange {
            officer,
            bound: !unbind,
            sessions_ended: ended,
        })
    }
}
