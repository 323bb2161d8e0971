//! The two-stage enterprise login (seed §1, SPEC L1–L6).
//!
//! Stage 1 ([`App::login_enterprise`]): account (USCC or TIN) + enterprise password,
//! after the captcha was checked by the caller. An unknown account costs the same
//! argon2 time and gives the same `BAD_CREDENTIALS` as a wrong password. Success issues a
//! login ticket: short-lived, single-use, bound to the client, holding an opaque
//! per-ticket id for each bound officer.
//!
//! Stage 2 ([`App::login_officer`]): one officer of the ticket verifies by personal
//! password (only persons bound by registration or by an admin, L3) or by SMS code;
//! the binding is re-read at this moment, so an officer unbound after stage 1 gets
//! `NOT_BOUND` (L5); Cedar must permit `enter` on the enterprise. The ticket is consumed
//! and the session created in one transaction.

use super::officers::{facts, OfficerEntry};
use super::throttle::Account;
use crate::app::App;
use crate::audit::Event;
use crate::error::{Code, Error};
use crate::policy::{Decision, EnterpriseAction};
use crate::providers::sms::Purpose;
use crate::store::records::{Enterprise, LoginKind, LoginTicket, Person, Session};
use crate::store::{keys, Tree, TxError};
use scoped_futures::ScopedFutureExt;
use std::collections::BTreeMap;

/// Who is asking: the address and the fingerprint tickets are bound to.
pub struct Client {
    pub ip: String,
    pub fingerprint: String,
}

/// Wrong stage-2 attempts a ticket survives before it is dead.
const TICKET_MAX_FAILURES: u32 = 10;

pub struct Stage1 {
    pub ticket: String,
    /// How stage 1 was passed.
    pub login: LoginKind,
    pub enterprise: Enterprise,
    /// (per-ticket officer id, officer)
    pub officers: Vec<(String, OfficerEntry)>,
}

pub enum Verification<'a> {
    Password(&'a str),
    Sms(&'a str),
}

pub struct NewSession {
    pub token: String,
    pub login: LoginKind,
    pub csrf_token: String,
    pub enterprise: Enterprise,
    pub entry: OfficerEntry,
}

impl App {
    /// Finds an enterprise by USCC or TIN (case-insensitive).
    pub async fn enterprise_by_account(&self, account: &str) -> Result<Option<Enterprise>, Error> {
        let account = account.trim().to_ascii_uppercase();
        let Some(key) = self
            .store
            .get_raw(Tree::Accounts, account.as_bytes())
            .await?
        else {
            return Ok(None);
        };
        Ok(self.store.get(Tree::Enterprises, key).await?)
    }

    pub async fn login_enterprise(
        &self,
        account: &str,
        password: &str,
        client: &Client,
        now: i64,
    ) -> Result<Stage1, Error> {
        let audit = |outcome: &str, enterprise: Option<&str>| {
            let mut e = Event::new("login.enterprise", outcome).client(&client.ip);
            if let Some(ent) = enterprise {
                e = e.enterprise(ent);
            }
            self.audit.record(now, e)
        };
        let Some(enterprise) = self.enterprise_by_account(account).await? else {
            self.hasher.verify_dummy(password).await?;
            self.count_failure_for_client(&client.ip, now).await?;
            audit("unknown_account", None).await;
            return Err(Error::new(Code::BadCredentials));
        };
        let who = Account::Enterprise(&enterprise.key);
        if let Err(locked) = self.check_lock(who, now).await {
            audit("locked", Some(&enterprise.key)).await;
            return Err(locked);
        }
        if !self
            .hasher
            .verify(password, &enterprise.password_hash)
            .await?
        {
            let answer = self.record_password_failure(who, &client.ip, now).await?;
            let outcome = if answer.code == Code::Locked {
                "locked_now"
            } else {
                "bad_password"
            };
            audit(outcome, Some(&enterprise.key)).await;
            self.store.flush().await?;
            return Err(answer);
        }
        self.clear_failures(who).await?;
        if self.hasher.needs_rehash(&enterprise.password_hash) {
            // Hashed with older parameters: upgrade now that the password is at hand.
            let upgraded = Enterprise {
                password_hash: self.hasher.hash(password).await?,
                ..enterprise.clone()
            };
            self.store
                .put(Tree::Enterprises, &enterprise.key, &upgraded)
                .await?;
        }

        let event = Event::new("login.enterprise", "ok")
            .client(&client.ip)
            .enterprise(&enterprise.key);
        self.issue_login_ticket(enterprise, LoginKind::Password, client, &event, now)
            .await
    }

    /// Stage 1 passed (by password or certificate): a login ticket for `enterprise` with
    /// its bound officers, written with the audit `event` in one transaction.
    pub(super) async fn issue_login_ticket(
        &self,
        enterprise: Enterprise,
        login: LoginKind,
        client: &Client,
        event: &Event,
        now: i64,
    ) -> Result<Stage1, Error> {
        let entries = self.bound_officers(&enterprise.key).await?;
        let mut officers = Vec::with_capacity(entries.len());
        let mut ids = BTreeMap::new();
        for entry in entries {
            let id = crate::crypto::secrets::short_id();
            ids.insert(id.clone(), entry.person.id.clone());
            officers.push((id, entry));
        }
        let ticket = crate::crypto::secrets::token();
        let record = LoginTicket {
            enterprise: enterprise.key.clone(),
            password_epoch: enterprise.password_epoch,
            client: client.fingerprint.clone(),
            expires_at: now + self.config.limits.login_ticket.as_secs() as i64,
            officers: ids,
            failures: 0,
            login,
        };
        let slot = self.audit.slot(now).await?;
        let (ticket_hash, record, slot) = (&self.ticket_hash(&ticket), &record, &slot);
        self.store
            .transaction(|tx| {
                async move {
                    tx.put(Tree::LoginTickets, ticket_hash, record).await?;
                    slot.put(tx, event).await?;
                    Ok::<_, TxError<Error>>(())
                }
                .scope_boxed()
            })
            .await
            .map_err(Error::from)?;
        self.store.flush().await?;
        Ok(Stage1 {
            ticket,
            login,
            enterprise,
            officers,
        })
    }

    fn ticket_hash(&self, ticket: &str) -> String {
        self.keyed.hash("login-ticket", ticket)
    }

    /// The live ticket and the officer it names, or the reason to refuse.
    async fn ticket_officer(
        &self,
        ticket: &str,
        officer_id: &str,
        client: &Client,
        now: i64,
    ) -> Result<(String, LoginTicket, Enterprise, OfficerEntry), Error> {
        let invalid = || Error::new(Code::TicketInvalid);
        let hash = self.ticket_hash(ticket);
        let t: LoginTicket = self
            .store
            .get(Tree::LoginTickets, &hash)
            .await?
            .ok_or_else(invalid)?;
        if t.expires_at <= now
            || t.failures >= TICKET_MAX_FAILURES
            || !crate::crypto::secrets::ct_eq(t.client.as_bytes(), client.fingerprint.as_bytes())
        {
            return Err(invalid());
        }
        let enterprise: Enterprise = self
            .store
            .get(Tree::Enterprises, &t.enterprise)
            .await?
            .filter(|e: &Enterprise| e.password_epoch == t.password_epoch)
            .ok_or_else(invalid)?;
        let person_id = t
            .officers
            .get(officer_id)
            .ok_or_else(|| {
                invalid()
                    .with_message("办税人员不在本次登录的列表中")
                    .with_field("officer_id")
            })?
            .clone();
        let not_bound = || Error::new(Code::NotBound);
        let officer = self
            .officer(&enterprise.key, &person_id)
            .await?
            .filter(|o| o.is_bound())
            .ok_or_else(not_bound)?;
        let person = self.person(&person_id).await?.ok_or_else(not_bound)?;
        Ok((hash, t, enterprise, OfficerEntry { officer, person }))
    }

    pub async fn send_login_sms(
        &self,
        ticket: &str,
        officer_id: &str,
        client: &Client,
        now: i64,
    ) -> Result<u64, Error> {
        let (hash, _, enterprise, entry) =
            self.ticket_officer(ticket, officer_id, client, now).await?;
        let scope = format!("{hash}/{}", entry.person.id);
        let r = self
            .send_sms_code(Purpose::Login, &scope, entry.sms_phone(), now)
            .await;
        self.audit
            .record(
                now,
                Event::new("login.sms_sent", if r.is_ok() { "ok" } else { "refused" })
                    .enterprise(&enterprise.key)
                    .person(&entry.person.id)
                    .client(&client.ip),
            )
            .await;
        r
    }

    pub async fn login_officer(
        &self,
        ticket: &str,
        officer_id: &str,
        verification: Verification<'_>,
        client: &Client,
        now: i64,
    ) -> Result<NewSession, Error> {
        let checked = self.ticket_officer(ticket, officer_id, client, now).await;
        let (hash, ticket_record, enterprise, entry) = match checked {
            Ok(c) => c,
            Err(e) => {
                self.audit
                    .record(
                        now,
                        Event::new("login.officer", outcome_of(&e)).client(&client.ip),
                    )
                    .await;
                return Err(e);
            }
        };
        let audit = |outcome: &str| {
            self.audit.record(
                now,
                Event::new("login.officer", outcome)
                    .enterprise(&enterprise.key)
                    .person(&entry.person.id)
                    .client(&client.ip),
            )
        };
        let verified = match verification {
            Verification::Password(pw) => {
                self.verify_personal_password(&entry, pw, client, now).await
            }
            Verification::Sms(code) => {
                let scope = format!("{hash}/{}", entry.person.id);
                self.verify_sms_code(Purpose::Login, &scope, code, now)
                    .await
            }
        };
        if let Err(e) = verified {
            self.count_ticket_failure(&hash).await?;
            audit(outcome_of(&e)).await;
            self.store.flush().await?;
            return Err(e);
        }
        let roles = entry.officer.role_names();
        if let Decision::Deny { .. } = self.policy.authorize_enterprise(
            &facts(&entry.officer, &roles, ticket_record.login),
            EnterpriseAction::Enter,
        ) {
            audit("denied_by_policy").await;
            self.store.flush().await?;
            return Err(Error::new(Code::NotBound));
        }

        let token = crate::crypto::secrets::token();
        let token_hash = self.session_token_hash(&token);
        let session = Session {
            enterprise: enterprise.key.clone(),
            person: entry.person.id.clone(),
            created_at: now,
            last_seen: now,
            csrf_token: crate::crypto::secrets::token(),
            client_ip: client.ip.clone(),
            login: ticket_record.login,
        };
        let index = keys::session_of_officer(&session.enterprise, &session.person, &token_hash);
        let slot = &self.audit.slot(now).await?;
        let event = &Event::new("login.officer", "ok")
            .enterprise(&enterprise.key)
            .person(&entry.person.id)
            .client(&client.ip);
        let (hash, session_ref, token_ref, index) = (&hash, &session, &token_hash, &index);
        self.store
            .transaction(|tx| {
                async move {
                    // Single use: the ticket must still be there, and goes with this login.
                    if tx.get_raw(Tree::LoginTickets, hash).await?.is_none() {
                        return Err(TxError::Abort(Error::new(Code::TicketInvalid)));
                    }
                    tx.remove(Tree::LoginTickets, hash).await?;
                    tx.put(Tree::Sessions, token_ref, session_ref).await?;
                    tx.put_raw(Tree::SessionsByOfficer, index, &[]).await?;
                    slot.put(tx, event).await?;
                    Ok(())
                }
                .scope_boxed()
            })
            .await
            .map_err(Error::from)?;
        self.store.flush().await?;
        Ok(NewSession {
            token,
            login: session.login,
            csrf_token: session.csrf_token,
            enterprise,
            entry,
        })
    }

    async fn verify_personal_password(
        &self,
        entry: &OfficerEntry,
        password: &str,
        client: &Client,
        now: i64,
    ) -> Result<(), Error> {
        let stored = match &entry.person.password_hash {
            Some(h) if entry.officer.may_use_password() => h,
            _ => return Err(Error::new(Code::MethodNotAllowed).with_field("method")),
        };
        let who = Account::Person(&entry.person.id);
        self.check_lock(who, now).await?;
        if !self.hasher.verify(password, stored).await? {
            return Err(self.record_password_failure(who, &client.ip, now).await?);
        }
        self.clear_failures(who).await?;
        if self.hasher.needs_rehash(stored) {
            let upgraded = Person {
                password_hash: Some(self.hasher.hash(password).await?),
                ..entry.person.clone()
            };
            self.store
                .put(Tree::Persons, &upgraded.id, &upgraded)
                .await?;
        }
        Ok(())
    }

    async fn count_ticket_failure(&self, hash: &str) -> Result<(), Error> {
        self.store
            .update::<LoginTicket>(Tree::LoginTickets, hash, |old| {
                let mut t = old?;
                t.failures += 1;
                Some(t)
            })
            .await?;
        Ok(())
    }
}

/// The audit outcome of a refusal: its code in lower case.
fn outcome_of(e: &Error) -> &'static str {
    match e.code {
        Code::BadCredentials => "bad_credentials",
        Code::Locked => "locked",
        Code::SmsCodeInvalid => "sms_code_invalid",
        Code::TicketInvalid => "ticket_invalid",
        Code::NotBound => "not_bound",
        Code::MethodNotAllowed => "method_not_allowed",
        Code::RateLimited => "rate_limited",
        _ => "refused",
    }
}
