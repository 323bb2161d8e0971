//! 忘记密码 (seed §4): persons (FP1) and enterprises (FP2).
//!
//! Each step requires the previous one on the same ticket: the SMS code proves the
//! phone, the real-name verification proves the person (for an enterprise: the legal rep
//! or finance officer who received the code), and only then may the password be reset.
//! A reset clears the account's lockout and ends the sessions the old password opened.

use super::flow::consume_flow;
use super::login::Client;
use super::session::end_indexed;
use super::throttle::Account;
use crate::app::App;
use crate::audit::Event;
use crate::error::{Code, Error};
use crate::providers::sms::Purpose;
use crate::store::records::{Enterprise, Flow, Person, Role};
use crate::store::{keys, Tree, TxError};
use scoped_futures::ScopedFutureExt;
use std::collections::BTreeMap;

/// One admin who may receive the enterprise's recovery code.
pub struct Recipient {
    pub id: String,
    pub role: Role,
    pub name: String,
    pub phone: String,
}

fn invalid_ticket() -> Error {
    Error::new(Code::TicketInvalid)
}

impl App {
    /// The two proofs of every recovery: the SMS code sent for `scope`, then a real-name
    /// verification of `person`.
    async fn prove(
        &self,
        scope: &str,
        sms_code: &str,
        realname_id: &str,
        person: &Person,
        now: i64,
    ) -> Result<(), Error> {
        self.verify_sms_code(Purpose::Recovery, scope, sms_code, now)
            .await?;
        self.consume_realname(realname_id, &person.name, &person.id_number, now)
            .await
    }

    /// A new password that passes the policy, hashed.
    async fn new_password_hash(&self, new_password: &str) -> Result<String, Error> {
        crate::identity::check_new_password(new_password)
            .map_err(|r| Error::invalid("new_password", r.message_zh()))?;
        Ok(self.hasher.hash(new_password).await?)
    }

    /// FP1 start: the registered person of `phone` gets a code. Returns (ticket, resend_after).
    pub async fn start_person_recovery(
        &self,
        phone: &str,
        client: &Client,
        now: i64,
    ) -> Result<(String, u64), Error> {
        let person_id = self
            .store
            .get_raw(Tree::PersonsByPhone, phone)
            .await?
            .ok_or_else(|| {
                Error::new(Code::NotFound)
                    .with_message("该手机号未注册")
                    .with_field("phone")
            })?;
        let person_id = String::from_utf8_lossy(&person_id).into_owned();
        let ticket = crate::crypto::secrets::token();
        let hash = self.flow_hash(&ticket);
        let resend = self
            .send_sms_code(Purpose::Recovery, &hash, phone, now)
            .await?;
        let started = Event::new("recovery.person_start", "ok")
            .person(&person_id)
            .client(&client.ip);
        self.save_flow(
            &hash,
            &client.fingerprint,
            Flow::PersonRecovery {
                person: person_id.clone(),
                verified: false,
            },
            Some(&started),
            now,
        )
        .await?;
        self.store.flush().await?;
        Ok((ticket, resend))
    }

    /// FP1 verify: SMS code, then real-name verification of that person.
    pub async fn verify_person_recovery(
        &self,
        ticket: &str,
        sms_code: &str,
        realname_id: &str,
        client: &Client,
        now: i64,
    ) -> Result<(), Error> {
        let (hash, flow) = self.load_flow(ticket, &client.fingerprint, now).await?;
        let Flow::PersonRecovery {
            person,
            verified: false,
        } = flow
        else {
            return Err(invalid_ticket());
        };
        let p: Person = self.person(&person).await?.ok_or_else(invalid_ticket)?;
        self.prove(&hash, sms_code, realname_id, &p, now).await?;
        self.save_flow(
            &hash,
            &client.fingerprint,
            Flow::PersonRecovery {
                person,
                verified: true,
            },
            None,
            now,
        )
        .await?;
        self.store.flush().await?;
        Ok(())
    }

    /// FP1 reset.
    pub async fn reset_person_password(
        &self,
        ticket: &str,
        new_password: &str,
        client: &Client,
        now: i64,
    ) -> Result<(), Error> {
        let (hash, flow) = self.load_flow(ticket, &client.fingerprint, now).await?;
        let Flow::PersonRecovery {
            person,
            verified: true,
        } = flow
        else {
            return Err(invalid_ticket());
        };
        let password_hash = &self.new_password_hash(new_password).await?;
        // His sessions in every enterprise, read before the transaction that ends them.
        let mut sessions = Vec::new();
        for (k, _) in self
            .store
            .scan_prefix_raw(Tree::OfficersByPerson, keys::officers_of(&person))
            .await?
        {
            if let Some(enterprise) = keys::parts(&k).get(1) {
                sessions.extend(self.session_index(enterprise, Some(&person)).await?);
            }
        }
        let slot = &self.audit.slot(now).await?;
        let (hash, person, sessions) = (&hash, &person, &sessions);
        self.store
            .transaction(|tx| {
                async move {
                    // The ticket goes with the reset, so a replay cannot reset twice.
                    consume_flow(tx, hash).await?;
                    let mut p: Person = tx
                        .get(Tree::Persons, person)
                        .await?
                        .ok_or_else(|| TxError::Abort(invalid_ticket()))?;
                    p.password_hash = Some(password_hash.clone());
                    tx.put(Tree::Persons, person, &p).await?;
                    let ended = end_indexed(tx, sessions).await?;
                    let event = Event::new("recovery.person_reset", "ok")
                        .person(person)
                        .client(&client.ip)
                        .detail(format!("{ended} session(s) ended"));
                    slot.put(tx, &event).await?;
                    Ok(())
                }
                .scope_boxed()
            })
            .await
            .map_err(Error::from)?;
        self.forget_sessions(sessions);
        self.clear_failures(Account::Person(person)).await?;
        self.store.flush().await?;
        Ok(())
    }

    /// FP2 start: the enterprise's legal rep and finance officer, as recipients.
    pub async fn start_enterprise_recovery(
        &self,
        account: &str,
        client: &Client,
        now: i64,
    ) -> Result<(String, Enterprise, Vec<Recipient>), Error> {
        let enterprise = self.enterprise_by_account(account).await?.ok_or_else(|| {
            Error::new(Code::NotFound)
                .with_message("该企业未在核心征管系统登记")
                .with_field("account")
        })?;
        let mut recipients = Vec::new();
        let mut ids = BTreeMap::new();
        for entry in self.bound_officers(&enterprise.key).await? {
            let Some(role) = entry
                .officer
                .registry_roles
                .iter()
                .copied()
                .find(|r| r.is_admin())
            else {
                continue;
            };
            let id = crate::crypto::secrets::short_id();
            ids.insert(id.clone(), entry.person.id.clone());
            recipients.push(Recipient {
                id,
                role,
                name: entry.person.name.clone(),
                phone: entry
                    .officer
                    .registry_phone
                    .clone()
                    .unwrap_or(entry.person.phone.clone()),
            });
        }
        let (ticket, _) = self
            .new_flow(
                Flow::EnterpriseRecovery {
                    enterprise: enterprise.key.clone(),
                    recipients: ids,
                    chosen: None,
                    verified: false,
                },
                &client.fingerprint,
                &Event::new("recovery.enterprise_start", "ok")
                    .enterprise(&enterprise.key)
                    .client(&client.ip),
                now,
            )
            .await?;
        self.store.flush().await?;
        Ok((ticket, enterprise, recipients))
    }

    /// FP2: the code goes to the chosen admin's registered phone.
    pub async fn send_enterprise_recovery_sms(
        &self,
        ticket: &str,
        recipient_id: &str,
        client: &Client,
        now: i64,
    ) -> Result<u64, Error> {
        let (hash, flow) = self.load_flow(ticket, &client.fingerprint, now).await?;
        let Flow::EnterpriseRecovery {
            enterprise,
            recipients,
            verified: false,
            ..
        } = flow
        else {
            return Err(invalid_ticket());
        };
        let person = recipients
            .get(recipient_id)
            .ok_or_else(|| Error::invalid("recipient_id", "请选择法定代表人或财务负责人"))?
            .clone();
        let officer = self
            .officer(&enterprise, &person)
            .await?
            .filter(|o| o.is_bound())
            .ok_or_else(invalid_ticket)?;
        let p = self.person(&person).await?.ok_or_else(invalid_ticket)?;
        let phone = officer.registry_phone.unwrap_or(p.phone);
        let resend = self
            .send_sms_code(Purpose::Recovery, &format!("{hash}/{person}"), &phone, now)
            .await?;
        self.save_flow(
            &hash,
            &client.fingerprint,
            Flow::EnterpriseRecovery {
                enterprise,
                recipients,
                chosen: Some(person),
                verified: false,
            },
            None,
            now,
        )
        .await?;
        self.store.flush().await?;
        Ok(resend)
    }

    /// FP2 verify: the chosen admin's code and his real-name verification.
    pub async fn verify_enterprise_recovery(
        &self,
        ticket: &str,
        sms_code: &str,
        realname_id: &str,
        client: &Client,
        now: i64,
    ) -> Result<(), Error> {
        let (hash, flow) = self.load_flow(ticket, &client.fingerprint, now).await?;
        let Flow::EnterpriseRecovery {
            enterprise,
            recipients,
            chosen: Some(person),
            verified: false,
        } = flow
        else {
            return Err(invalid_ticket());
        };
        let p = self.person(&person).await?.ok_or_else(invalid_ticket)?;
        self.prove(&format!("{hash}/{person}"), sms_code, realname_id, &p, now)
            .await?;
        self.save_flow(
            &hash,
            &client.fingerprint,
            Flow::EnterpriseRecovery {
                enterprise,
                recipients,
                chosen: Some(person),
                verified: true,
            },
            None,
            now,
        )
        .await?;
        self.store.flush().await?;
        Ok(())
    }

    /// FP2 reset: new enterprise password; every session and login ticket of the old
    /// one ends (the password epoch moves on), the lockout is cleared.
    pub async fn reset_enterprise_password(
        &self,
        ticket: &str,
        new_password: &str,
        client: &Client,
        now: i64,
    ) -> Result<(), Error> {
        let (hash, flow) = self.load_flow(ticket, &client.fingerprint, now).await?;
        let Flow::EnterpriseRecovery {
            enterprise,
            chosen: Some(person),
            verified: true,
            ..
        } = flow
        else {
            return Err(invalid_ticket());
        };
        let password_hash = &self.new_password_hash(new_password).await?;
        // Every session of the enterprise, read before the transaction that ends them.
        let sessions = &self.session_index(&enterprise, None).await?;
        let slot = &self.audit.slot(now).await?;
        let (hash, enterprise, person) = (&hash, &enterprise, &person);
        self.store
            .transaction(|tx| {
                async move {
                    // The ticket goes with the reset, so a replay cannot reset twice.
                    consume_flow(tx, hash).await?;
                    let mut e: Enterprise = tx
                        .get(Tree::Enterprises, enterprise)
                        .await?
                        .ok_or_else(|| TxError::Abort(invalid_ticket()))?;
                    e.password_hash = password_hash.clone();
                    e.password_epoch += 1;
                    tx.put(Tree::Enterprises, enterprise, &e).await?;
                    let ended = end_indexed(tx, sessions).await?;
                    let event = Event::new("recovery.enterprise_reset", "ok")
                        .enterprise(enterprise)
                        .person(person)
                        .client(&client.ip)
                        .detail(format!("{ended} session(s) ended"));
                    slot.put(tx, &event).await?;
                    Ok(())
                }
                .scope_boxed()
            })
            .await
            .map_err(Error::from)?;
        self.forget_sessions(sessions);
        self.clear_failures(Account::Enterprise(enterprise)).await?;
        self.store.flush().await?;
        Ok(())
    }
}
