//! Registration (seed §2): 自然人注册 (RG1) and 企业用户注册, an officer binding himself
//! to an enterprise with the approval of its legal rep or finance officer (RG2).
//!
//! Each step requires the previous one: the SMS code proves the phone, the real-name
//! verification proves the person; 企业用户注册 then needs the authorizer's SMS code on a
//! ticket bound to the client. Persons and bindings are written in one transaction
//! that re-checks uniqueness, so two identical registrations create one person.

use super::flow::consume_flow;
use super::login::Client;
use super::officers::OfficerEntry;
use crate::app::App;
use crate::audit::Event;
use crate::error::{Code, Error};
use crate::identity::{IdNumber, PersonName, Phone};
use crate::providers::sms::Purpose;
use crate::store::records::{Enterprise, Flow, Officer, Person, Role};
use crate::store::{keys, Tree, TxError};
use scoped_futures::ScopedFutureExt;

/// The checked fields of a registration form.
pub struct PersonForm {
    pub phone: Phone,
    pub name: PersonName,
    pub id_number: IdNumber,
    pub password: String,
}

/// A legal rep or finance officer who may approve a registration, with an id valid
/// for one registration ticket.
pub struct Authorizer {
    pub id: String,
    pub role: Role,
    pub entry: OfficerEntry,
}

fn already() -> Error {
    Error::new(Code::AlreadyRegistered)
}

impl App {
    /// A registered person by phone or ID number, if any.
    async fn registered_conflict(&self, phone: &str, id_number: &str) -> Result<bool, Error> {
        if self.store.contains(Tree::PersonsByPhone, phone).await? {
            return Ok(true);
        }
        let Some(id) = self
            .store
            .get_raw(Tree::PersonsByIdNumber, id_number)
            .await?
        else {
            return Ok(false);
        };
        let person: Option<Person> = self.store.get(Tree::Persons, id).await?;
        Ok(person.is_some_and(|p| p.registered_at.is_some()))
    }

    /// RG1. Returns the person id.
    pub async fn register_person(
        &self,
        form: &PersonForm,
        sms_code: &str,
        tax_authority: &str,
        realname_id: &str,
        client: &Client,
        now: i64,
    ) -> Result<String, Error> {
        let (phone, id_number, name) = (
            form.phone.as_str(),
            form.id_number.as_str(),
            form.name.as_str(),
        );
        if !self
            .store
            .contains(Tree::TaxAuthorities, tax_authority)
            .await?
        {
            return Err(Error::invalid("tax_authority", "请选择所属税务机关"));
        }
        self.verify_sms_code(Purpose::Register, phone, sms_code, now)
            .await?;
        if self.registered_conflict(phone, id_number).await? {
            self.audit
                .record(
                    now,
                    Event::new("register.person", "already_registered").client(&client.ip),
                )
                .await;
            return Err(already());
        }
        self.consume_realname(realname_id, name, id_number, now)
            .await?;
        let password_hash = self.hasher.hash(&form.password).await?;
        let new_id = crate::crypto::secrets::short_id();
        let (new_id, password_hash) = (&new_id, &password_hash);
        let slot = &self.audit.slot(now).await?;
        let person_id = self
            .store
            .transaction(|tx| {
                async move {
                    if tx.get_raw(Tree::PersonsByPhone, phone).await?.is_some() {
                        return Err(TxError::Abort(already()));
                    }
                    let existing = match tx.get_raw(Tree::PersonsByIdNumber, id_number).await? {
                        Some(id) => tx.get::<Person>(Tree::Persons, &id).await?,
                        None => None,
                    };
                    let person = match existing {
                        Some(p) if p.registered_at.is_some() => {
                            return Err(TxError::Abort(already()))
                        }
                        // Known from the registry only: he now registers himself.
                        Some(p) => Person {
                            phone: phone.to_string(),
                            password_hash: Some(password_hash.clone()),
                            realname_verified: true,
                            registered_at: Some(now),
                            tax_authority: Some(tax_authority.to_string()),
                            name: name.to_string(),
                            ..p
                        },
                        None => Person {
                            id: new_id.clone(),
                            name: name.to_string(),
                            id_number: id_number.to_string(),
                            phone: phone.to_string(),
                            password_hash: Some(password_hash.clone()),
                            realname_verified: true,
                            registered_at: Some(now),
                            tax_authority: Some(tax_authority.to_string()),
                        },
                    };
                    tx.put(Tree::Persons, &person.id, &person).await?;
                    tx.put_raw(Tree::PersonsByIdNumber, id_number, person.id.as_bytes())
                        .await?;
                    tx.put_raw(Tree::PersonsByPhone, phone, person.id.as_bytes())
                        .await?;
                    let event = Event::new("register.person", "ok")
                        .person(&person.id)
                        .client(&client.ip);
                    slot.put(tx, &event).await?;
                    Ok(person.id)
                }
                .scope_boxed()
            })
            .await
            .map_err(Error::from)?;
        self.store.flush().await?;
        Ok(person_id)
    }

    /// RG2, first step: the person proves phone and identity (and, if he exists, his
    /// password). Returns the registration ticket.
    pub async fn start_enterprise_user(
        &self,
        form: &PersonForm,
        sms_code: &str,
        realname_id: &str,
        client: &Client,
        now: i64,
    ) -> Result<String, Error> {
        let (phone, id_number, name) = (
            form.phone.as_str(),
            form.id_number.as_str(),
            form.name.as_str(),
        );
        self.verify_sms_code(Purpose::Register, phone, sms_code, now)
            .await?;
        let existing: Option<Person> = match self
            .store
            .get_raw(Tree::PersonsByIdNumber, id_number)
            .await?
        {
            Some(id) => self.store.get(Tree::Persons, id).await?,
            None => None,
        };
        if let Some(owner) = self
            .store
            .get_raw(Tree::PersonsByPhone, phone.as_bytes())
            .await?
        {
            if existing.as_ref().map(|p| p.id.as_bytes()) != Some(owner.as_ref()) {
                return Err(already().with_message("该手机号已被其他用户注册"));
            }
        }
        let password_hash = match existing.as_ref().and_then(|p| p.password_hash.clone()) {
            // SPEC RG2: his password is his across enterprises; it must match.
            Some(hash) => {
                if !self.hasher.verify(&form.password, &hash).await? {
                    return Err(Error::new(Code::PasswordMismatch).with_field("password"));
                }
                hash
            }
            None => {
                crate::identity::check_new_password(&form.password)
                    .map_err(|r| Error::invalid("password", r.message_zh()))?;
                self.hasher.hash(&form.password).await?
            }
        };
        self.consume_realname(realname_id, name, id_number, now)
            .await?;
        let (ticket, _) = self
            .new_flow(
                Flow::EnterpriseUser {
                    name: name.to_string(),
                    id_number: id_number.to_string(),
                    phone: phone.to_string(),
                    password_hash,
                },
                &client.fingerprint,
                &Event::new("register.enterprise_user_start", "ok").client(&client.ip),
                now,
            )
            .await?;
        self.store.flush().await?;
        Ok(ticket)
    }

    async fn enterprise_user_flow(
        &self,
        ticket: &str,
        client: &Client,
        now: i64,
    ) -> Result<(String, Flow), Error> {
        let (hash, flow) = self.load_flow(ticket, &client.fingerprint, now).await?;
        match flow {
            Flow::EnterpriseUser { .. } => Ok((hash, flow)),
            _ => Err(Error::new(Code::TicketInvalid)),
        }
    }

    fn authorizer_id(&self, flow_hash: &str, enterprise: &str, person: &str) -> String {
        self.keyed
            .hash("authorizer", &format!("{flow_hash}/{enterprise}/{person}"))[..16]
            .to_string()
    }

    /// RG2: the enterprise (must be in the registry) and who may approve: its legal rep
    /// and finance officer, with ids valid for this ticket only.
    pub async fn authorizers(
        &self,
        ticket: &str,
        uscc: &str,
        client: &Client,
        now: i64,
    ) -> Result<(Enterprise, Vec<Authorizer>), Error> {
        let (hash, _) = self.enterprise_user_flow(ticket, client, now).await?;
        let enterprise = self.enterprise_by_account(uscc).await?.ok_or_else(|| {
            Error::new(Code::NotFound)
                .with_message("该企业未在核心征管系统登记")
                .with_field("uscc")
        })?;
        let mut out = Vec::new();
        for entry in self.bound_officers(&enterprise.key).await? {
            let admin_roles: Vec<Role> = entry
                .officer
                .registry_roles
                .iter()
                .copied()
                .filter(|r| r.is_admin())
                .collect();
            if let Some(role) = admin_roles.first() {
                let id = self.authorizer_id(&hash, &enterprise.key, &entry.person.id);
                out.push(Authorizer {
                    id,
                    role: *role,
                    entry,
                });
            }
        }
        Ok((enterprise, out))
    }

    async fn authorizer(
        &self,
        ticket: &str,
        uscc: &str,
        authorizer_id: &str,
        client: &Client,
        now: i64,
    ) -> Result<(String, Flow, Enterprise, OfficerEntry), Error> {
        let (enterprise, list) = self.authorizers(ticket, uscc, client, now).await?;
        let (hash, flow) = self.enterprise_user_flow(ticket, client, now).await?;
        let entry = list
            .into_iter()
            .find(|a| crate::crypto::secrets::ct_eq(a.id.as_bytes(), authorizer_id.as_bytes()))
            .map(|a| a.entry)
            .ok_or_else(|| {
                Error::invalid("authorizer_id", "请选择该企业的法定代表人或财务负责人")
            })?;
        Ok((hash, flow, enterprise, entry))
    }

    pub async fn send_authorizer_sms(
        &self,
        ticket: &str,
        uscc: &str,
        authorizer_id: &str,
        client: &Client,
        now: i64,
    ) -> Result<u64, Error> {
        let (hash, _, enterprise, entry) = self
            .authorizer(ticket, uscc, authorizer_id, client, now)
            .await?;
        let scope = format!("{hash}/{}/{}", enterprise.key, entry.person.id);
        // The authorizer's phone registered in the core tax system.
        let phone = entry
            .officer
            .registry_phone
            .clone()
            .unwrap_or(entry.person.phone.clone());
        self.send_sms_code(Purpose::Authorize, &scope, &phone, now)
            .await
    }

    /// RG2, last step: the authorizer's code approves; the binding `self_registered` is
    /// created with the default grants (or restored, if he had been unbound).
    pub async fn confirm_enterprise_user(
        &self,
        ticket: &str,
        uscc: &str,
        authorizer_id: &str,
        sms_code: &str,
        client: &Client,
        now: i64,
    ) -> Result<(Enterprise, Officer), Error> {
        let (hash, flow, enterprise, authorizer) = self
            .authorizer(ticket, uscc, authorizer_id, client, now)
            .await?;
        let Flow::EnterpriseUser {
            name,
            id_number,
            phone,
            password_hash,
        } = flow
        else {
            return Err(Error::new(Code::TicketInvalid));
        };
        let scope = format!("{hash}/{}/{}", enterprise.key, authorizer.person.id);
        self.verify_sms_code(Purpose::Authorize, &scope, sms_code, now)
            .await?;
        let new_id = crate::crypto::secrets::short_id();
        let ek = enterprise.key.clone();
        let (hash, new_id, ek) = (&hash, &new_id, &ek);
        let (name, id_number, phone, password_hash) = (&name, &id_number, &phone, &password_hash);
        let slot = &self.audit.slot(now).await?;
        let approved = &Event::new("register.enterprise_user", "ok")
            .enterprise(&enterprise.key)
            .client(&client.ip)
            .detail(format!("approved by {}", authorizer.person.id));
        let officer = self
            .store
            .transaction(|tx| {
                async move {
                    consume_flow(tx, hash).await?;
                    let existing = match tx.get_raw(Tree::PersonsByIdNumber, id_number).await? {
                        Some(id) => tx.get::<Person>(Tree::Persons, &id).await?,
                        None => None,
                    };
                    let person = match existing {
                        Some(p) => {
                            let registered = p.registered_at.is_some();
                            Person {
                                phone: if registered {
                                    p.phone.clone()
                                } else {
                                    phone.clone()
                                },
                                password_hash: p
                                    .password_hash
                                    .clone()
                                    .or(Some(password_hash.clone())),
                                realname_verified: true,
                                registered_at: p.registered_at.or(Some(now)),
                                ..p
                            }
                        }
                        None => Person {
                            id: new_id.clone(),
                            name: name.clone(),
                            id_number: id_number.clone(),
                            phone: phone.clone(),
                            password_hash: Some(password_hash.clone()),
                            realname_verified: true,
                            registered_at: Some(now),
                            tax_authority: None,
                        },
                    };
                    tx.put(Tree::Persons, &person.id, &person).await?;
                    tx.put_raw(Tree::PersonsByIdNumber, id_number, person.id.as_bytes())
                        .await?;
                    if tx
                        .get_raw(Tree::PersonsByPhone, &person.phone)
                        .await?
                        .is_none()
                    {
                        tx.put_raw(Tree::PersonsByPhone, &person.phone, person.id.as_bytes())
                            .await?;
                    }
                    let key = keys::officer(ek, &person.id);
                    let mut officer = tx
                        .get::<Officer>(Tree::Officers, &key)
                        .await?
                        .unwrap_or_else(|| Officer::new(ek, &person.id));
                    if officer.unbound_at.take().is_some() {
                        officer.grants = None;
                    }
                    officer.self_registered = true;
                    tx.put(Tree::Officers, &key, &officer).await?;
                    tx.put_raw(
                        Tree::OfficersByPerson,
                        keys::officer_by_person(&person.id, ek),
                        &[],
                    )
                    .await?;
                    slot.put(tx, &approved.clone().person(&person.id)).await?;
                    Ok(officer)
                }
                .scope_boxed()
            })
            .await
            .map_err(Error::from)?;
        self.sessions
            .officer_changed(&officer.enterprise, &officer.person);
        self.store.flush().await?;
        Ok((enterprise, officer))
    }
}
