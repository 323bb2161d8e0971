//! Reading officers: who is bound to an enterprise, with the person behind each binding,
//! and the facts Cedar needs about one officer.

use crate::app::App;
use crate::error::Error;
use crate::policy::OfficerFacts;
use crate::store::records::{LoginKind, Officer, Person};
use crate::store::{keys, Tree};

pub struct OfficerEntry {
    pub officer: Officer,
    pub person: Person,
}

impl OfficerEntry {
    /// The phone an SMS code goes to (SPEC L3): his own phone once he registered or was
    /// added; otherwise the phone the core tax system registered for this enterprise.
    pub fn sms_phone(&self) -> &str {
        if self.officer.may_use_password() {
            &self.person.phone
        } else {
            self.officer
                .registry_phone
                .as_deref()
                .unwrap_or(&self.person.phone)
        }
    }
}

/// The facts about `officer`, acting in a session opened by a `login`, that the
/// policies read; `roles` must outlive the facts.
pub fn facts<'a>(
    officer: &'a Officer,
    roles: &'a [&'static str],
    login: LoginKind,
) -> OfficerFacts<'a> {
    OfficerFacts {
        enterprise: &officer.enterprise,
        person: &officer.person,
        roles,
        grants: officer.grants.as_ref(),
        login,
    }
}

impl App {
    pub async fn officer(&self, enterprise: &str, person: &str) -> Result<Option<Officer>, Error> {
        Ok(self
            .store
            .get(Tree::Officers, keys::officer(enterprise, person))
            .await?)
    }

    pub async fn person(&self, person: &str) -> Result<Option<Person>, Error> {
        Ok(self.store.get(Tree::Persons, person).await?)
    }

    /// Every bound officer of `enterprise` with his person record, one entry per person
    /// (a binding already merges all his roles and sources), in a stable order.
    pub async fn bound_officers(&self, enterprise: &str) -> Result<Vec<OfficerEntry>, Error> {
        let officers: Vec<(_, Officer)> = self
            .store
            .scan_prefix(Tree::Officers, keys::officers_of(enterprise))
            .await?;
        let mut out = Vec::with_capacity(officers.len());
        for (_, officer) in officers.into_iter().filter(|(_, o)| o.is_bound()) {
            match self.person(&officer.person).await? {
                Some(person) => out.push(OfficerEntry { officer, person }),
                None => tracing::error!(person = %officer.person, "officer without person record"),
            }
        }
        // Admins first, then by role, then by name: the order the guide's screens show.
        out.sort_by(|a, b| {
            (a.officer.roles().into_iter().min(), &a.person.name)
                .cmp(&(b.officer.roles().into_iter().min(), &b.person.name))
        });
        Ok(out)
    }
}
