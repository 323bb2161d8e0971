//! User management (seed §3, AM1–AM4): 添加用户, 授予权限, 回收权限 and unbinding.
//!
//! Contract: the caller has already obtained Cedar's `manage_users` permit for the
//! enterprise; these operations only act inside that enterprise (a person id that is not
//! bound to it is `NOT_FOUND`, never another enterprise's record). A grant change is a
//! store write and applies to the officer's next request; revoking every permission
//! unbinds him and ends his sessions for that enterprise in one transaction. Each change
//! and its audit event (`manage.add_user`, `manage.grant`, `manage.unbind`) are written
//! in one transaction.

use super::session::end_indexed;
use crate::app::App;
use crate::audit::Event;
use crate::error::{Code, Error};
use crate::store::records::{Officer, Person};
use crate::store::{keys, Tree, TxError};
use scoped_futures::ScopedFutureExt;
use std::collections::BTreeSet;

/// The result of a grant change.
/// Who makes a change: the manager's person id and address, for the audit.
#[derive(Debug, Clone, Copy)]
pub struct Manager<'a> {
    pub person: &'a str,
    pub client_ip: &'a str,
}

pub struct GrantChange {
    pub officer: Officer,
    pub bound: bool,
    pub sessions_ended: usize,
}

impl App {
    /// Persons who completed real-name verification, found by ID number or phone.
    pub async fn candidates(&self, q: &str) -> Result<Vec<Person>, Error> {
        let q = q.trim().to_ascii_uppercase();
        let by_id = self
            .store
            .get_raw(Tree::PersonsByIdNumber, q.as_bytes())
            .await?;
        let by_phone = self
            .store
            .get_raw(Tree::PersonsByPhone, q.as_bytes())
            .await?;
        let mut out = Vec::new();
        for id in by_id.into_iter().chain(by_phone) {
            if let Some(p) = self.store.get::<Person>(Tree::Persons, &id).await? {
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
        by: Manager<'_>,
        now: i64,
    ) -> Result<(Officer, bool), Error> {
        let person: Person = self
            .person(person_id)
            .await?
            .filter(|p| p.realname_verified)
            .ok_or_else(|| {
                Error::new(Code::NotFound)
                    .with_message("未找到已完成实名采集的自然人")
                    .with_field("person_id")
            })?;
        if let Some(o) = self.officer(enterprise, person_id).await? {
            if o.is_bound() && (o.added || o.self_registered || o.is_admin()) {
                return Err(
                    Error::new(Code::AlreadyRegistered).with_message("该用户已是本企业办税人员")
                );
            }
        }
        let new_hash = match (&person.password_hash, password) {
            (Some(_), _) => None,
            (None, Some(pw)) => {
                crate::identity::check_new_password(pw)
                    .map_err(|r| Error::invalid("password", r.message_zh()))?;
                Some(self.hasher.hash(pw).await?)
            }
            (None, None) => {
                return Err(Error::invalid(
                    "password",
                    "该用户尚未设置密码，请为其设置密码",
                ))
            }
        };
        let key = &keys::officer(enterprise, person_id);
        let by_person = &keys::officer_by_person(person_id, enterprise);
        let new_hash = &new_hash;
        let slot = &self.audit.slot(now).await?;
        let event = &Event::new("manage.add_user", "ok")
            .enterprise(enterprise)
            .person(person_id)
            .client(by.client_ip)
            .detail(format!("by {}", by.person));
        let officer = self
            .store
            .transaction(|tx| {
                async move {
                    if let Some(hash) = new_hash {
                        let mut p: Person = tx
                            .get(Tree::Persons, person_id)
                            .await?
                            .ok_or(TxError::Abort(Error::new(Code::NotFound)))?;
                        // Never overwrite a password he set meanwhile.
                        if p.password_hash.is_none() {
                            p.password_hash = Some(hash.clone());
                            tx.put(Tree::Persons, person_id, &p).await?;
                        }
                    }
                    let mut o = tx
                        .get::<Officer>(Tree::Officers, key)
                        .await?
                        .unwrap_or_else(|| Officer::new(enterprise, person_id));
                    if o.unbound_at.take().is_some() {
                        o.grants = None;
                    }
                    o.added = true;
                    tx.put(Tree::Officers, key, &o).await?;
                    tx.put_raw(Tree::OfficersByPerson, by_person, &[]).await?;
                    slot.put(tx, event).await?;
                    Ok(o)
                }
                .scope_boxed()
            })
            .await
            .map_err(Error::from)?;
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
        by: Manager<'_>,
        now: i64,
    ) -> Result<GrantChange, Error> {
        if let Some(unknown) = modules.iter().find(|m| !self.catalog.contains(m)) {
            return Err(Error::invalid(
                "modules",
                format!("功能模块 `{unknown}` 不存在"),
            ));
        }
        let not_found = || {
            Error::new(Code::NotFound)
                .with_message("该用户不是本企业的办税人员")
                .with_field("person_id")
        };
        let current = self
            .officer(enterprise, person_id)
            .await?
            .filter(|o| o.is_bound())
            .ok_or_else(not_found)?;
        if current.is_admin() {
            return Err(Error::new(Code::Forbidden).with_message(
                "法定代表人和财务负责人拥有全部权限，由核心征管系统登记决定，不能在此修改",
            ));
        }
        let unbind = modules.is_empty();
        let key = &keys::officer(enterprise, person_id);
        // Read before the transaction, which ends each one still there.
        let sessions = &self.session_index(enterprise, Some(person_id)).await?;
        let slot = &self.audit.slot(now).await?;
        let modules = &modules;
        let (officer, ended) = self
            .store
            .transaction(|tx| {
                async move {
                    let mut o: Officer = tx
                        .get(Tree::Officers, key)
                        .await?
                        .filter(|o: &Officer| o.is_bound())
                        .ok_or_else(|| TxError::Abort(not_found()))?;
                    o.grants = Some(modules.clone());
                    let mut ended = 0;
                    let event = if unbind {
                        o.unbound_at = Some(now);
                        ended = end_indexed(tx, sessions).await?;
                        Event::new("manage.unbind", "ok").detail(format!(
                            "every permission revoked by {}; {ended} session(s) ended",
                            by.person
                        ))
                    } else {
                        Event::new("manage.grant", "ok")
                            .detail(format!("modules={modules:?} by {}", by.person))
                    };
                    tx.put(Tree::Officers, key, &o).await?;
                    let event = event
                        .enterprise(enterprise)
                        .person(person_id)
                        .client(by.client_ip);
                    slot.put(tx, &event).await?;
                    Ok((o, ended))
                }
                .scope_boxed()
            })
            .await
            .map_err(Error::from)?;
        self.sessions.officer_changed(enterprise, person_id);
        self.forget_sessions(sessions);
        self.store.flush().await?;
        Ok(GrantChange {
            officer,
            bound: !unbind,
            sessions_ended: ended,
        })
    }
}
