//! The records kept in the store, one struct per kind.
//!
//! Contract: plain data with serde derives and no business rules beyond small derived
//! views (an officer's roles and sources). Timestamps are Unix seconds (UTC). Secrets
//! are kept only as hashes (passwords: argon2 PHC strings; tokens and codes: keyed
//! hashes), and `Debug` of a record never prints them.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub type UnixTime = i64;

/// An enterprise (企业/纳税人) from the core tax system.
#[derive(Clone, Serialize, Deserialize)]
pub struct Enterprise {
    /// Store key and the identity sent upstream: the USCC, or the TIN when it has none.
    pub key: String,
    pub uscc: Option<String>,
    pub tin: Option<String>,
    pub name: String,
    pub tax_authority: String,
    /// argon2id PHC string of the enterprise password.
    pub password_hash: String,
    /// Bumped by every password reset; a session opened before carries the old value.
    #[serde(default)]
    pub password_epoch: u64,
}

impl std::fmt::Debug for Enterprise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enterprise")
            .field("key", &self.key)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A natural person (自然人).
#[derive(Clone, Serialize, Deserialize)]
pub struct Person {
    /// Opaque random id; never the ID number.
    pub id: String,
    pub name: String,
    pub id_number: String,
    pub phone: String,
    /// argon2id PHC string of the personal password, if he has set one.
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub realname_verified: bool,
    /// Set when he registered himself (自然人注册 or 企业用户注册).
    #[serde(default)]
    pub registered_at: Option<UnixTime>,
    #[serde(default)]
    pub tax_authority: Option<String>,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    LegalRep,
    FinanceOfficer,
    TaxOfficer,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::LegalRep => "legal_rep",
            Role::FinanceOfficer => "finance_officer",
            Role::TaxOfficer => "tax_officer",
            Role::Agent => "agent",
        }
    }

    /// Legal rep and finance officer manage users and are never unbound by revocation.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::LegalRep | Role::FinanceOfficer)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Registry,
    SelfRegistered,
    Added,
}

/// A person's binding to one enterprise (办税人员).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Officer {
    pub enterprise: String,
    pub person: String,
    /// Roles from the core tax system; empty when he is not registered there.
    #[serde(default)]
    pub registry_roles: BTreeSet<Role>,
    /// The phone registered in the core tax system for this enterprise.
    #[serde(default)]
    pub registry_phone: Option<String>,
    #[serde(default)]
    pub self_registered: bool,
    #[serde(default)]
    pub added: bool,
    /// `None`: never customized, the policy defaults apply (AM3).
    /// `Some(set)`: the explicit grants an admin gave.
    #[serde(default)]
    pub grants: Option<BTreeSet<String>>,
    /// Set when every permission was revoked (AM4): the binding stays as a tombstone so
    /// a registry re-import cannot silently re-bind him, and logins answer 未绑定企业.
    #[serde(default)]
    pub unbound_at: Option<UnixTime>,
}

impl Officer {
    pub fn new(enterprise: &str, person: &str) -> Officer {
        Officer {
            enterprise: enterprise.to_string(),
            person: person.to_string(),
            registry_roles: BTreeSet::new(),
            registry_phone: None,
            self_registered: false,
            added: false,
            grants: None,
            unbound_at: None,
        }
    }

    pub fn is_bound(&self) -> bool {
        self.unbound_at.is_none() && !self.sources().is_empty()
    }

    /// All roles: the registry's, and 办税人 for a person bound by registration or by an admin.
    pub fn roles(&self) -> BTreeSet<Role> {
        let mut roles = self.registry_roles.clone();
        if self.self_registered || self.added {
            roles.insert(Role::TaxOfficer);
        }
        roles
    }

    pub fn role_names(&self) -> Vec<&'static str> {
        self.roles().into_iter().map(Role::as_str).collect()
    }

    pub fn sources(&self) -> Vec<Source> {
        let mut s = Vec::with_capacity(3);
        if !self.registry_roles.is_empty() {
            s.push(Source::Registry);
        }
        if self.self_registered {
            s.push(Source::SelfRegistered);
        }
        if self.added {
            s.push(Source::Added);
        }
        s
    }

    pub fn is_admin(&self) -> bool {
        self.registry_roles.iter().any(|r| r.is_admin())
    }

    /// SPEC L3: the personal password is a method only for persons bound by
    /// registration or by an admin; a registry-only officer verifies by SMS.
    pub fn may_use_password(&self) -> bool {
        self.self_registered || self.added
    }
}

/// How the enterprise proved itself at login stage 1 (seed §1.1, the entries of 企业用户):
/// 用户名登录 (account and password), CA登录 (a certificate of the tax bureau's CA) or
/// 税控设备登录 (the certificate of a tax control device). Kept in the login ticket and the
/// session; Cedar reads it as `context.login` (`LoginKind::"password"`, `"ca"`, `"device"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginKind {
    /// Records written before certificate login existed were all password logins.
    #[default]
    Password,
    Ca,
    Device,
}

impl LoginKind {
    pub const ALL: [LoginKind; 3] = [LoginKind::Password, LoginKind::Ca, LoginKind::Device];

    /// The name on the wire, in the audit and in Cedar (`LoginKind::"<name>"`).
    pub fn as_str(self) -> &'static str {
        match self {
            LoginKind::Password => "password",
            LoginKind::Ca => "ca",
            LoginKind::Device => "device",
        }
    }
}

/// A server-side session (SPEC S5). Keyed by the hash of its cookie token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    pub enterprise: String,
    pub person: String,
    pub created_at: UnixTime,
    pub last_seen: UnixTime,
    pub csrf_token: String,
    pub client_ip: String,
    /// How stage 1 of this session's login was passed.
    #[serde(default)]
    pub login: LoginKind,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("enterprise", &self.enterprise)
            .field("person", &self.person)
            .field("created_at", &self.created_at)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// Stage 1 of the enterprise login, waiting for stage 2 (SPEC L6).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginTicket {
    pub enterprise: String,
    pub password_epoch: u64,
    pub client: String,
    pub expires_at: UnixTime,
    /// Opaque per-ticket officer id → person id.
    pub officers: BTreeMap<String, String>,
    #[serde(default)]
    pub failures: u32,
    /// How stage 1 was passed; the session opened by stage 2 keeps it.
    #[serde(default)]
    pub login: LoginKind,
}

/// An issued image captcha: the answer's keyed hash, single use (SPEC S2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Captcha {
    pub answer_hash: String,
    pub expires_at: UnixTime,
}

/// An issued SMS code, bound to its purpose and scope (SPEC S3).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmsCode {
    pub phone: String,
    pub code_hash: String,
    pub expires_at: UnixTime,
    pub failures: u32,
}

/// Sending history of one phone number, for the resend interval and daily cap.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SmsQuota {
    pub last_sent: UnixTime,
    pub day: i64,
    pub sent_today: u32,
}

/// Consecutive password failures of one account and its lock (SPEC S4).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Lockout {
    pub failures: u32,
    pub locked_until: UnixTime,
}

/// A fixed-window request counter of one client address.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RateWindow {
    pub window: i64,
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaxAuthority {
    pub code: String,
    pub name: String,
}

/// One audit event (SPEC S9): who, what, when, from where, outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 UTC.
    pub at: String,
    pub action: String,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A real-name verification (实名认证), bound to the name and ID number it checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RealnameCheck {
    pub name: String,
    pub id_number: String,
    /// The provider's reference.
    pub reference: String,
    pub passed: bool,
    pub expires_at: UnixTime,
}

/// A registration or recovery in progress: each step requires the previous one on the
/// same ticket, and the ticket is bound to the client that started it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowTicket {
    pub client: String,
    pub expires_at: UnixTime,
    pub flow: Flow,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flow {
    /// 企业用户注册: the person's verified details, waiting for an authorizer.
    EnterpriseUser {
        name: String,
        id_number: String,
        phone: String,
        /// argon2 hash of his (new or existing) personal password.
        password_hash: String,
    },
    /// 忘记密码 of a person.
    PersonRecovery { person: String, verified: bool },
    /// 忘记密码 of an enterprise: the admins who may receive the code.
    EnterpriseRecovery {
        enterprise: String,
        /// Opaque recipient id → person id.
        recipients: BTreeMap<String, String>,
        chosen: Option<String>,
        verified: bool,
    },
    /// CA登录 / 税控设备登录: the text the certificate's key must sign (single use).
    CaChallenge { challenge: String },
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flow::EnterpriseUser { .. } => f.write_str("EnterpriseUser(..)"),
            Flow::PersonRecovery { verified, .. } => {
                write!(f, "PersonRecovery(verified={verified})")
            }
            Flow::EnterpriseRecovery { verified, .. } => {
                write!(f, "EnterpriseRecovery(verified={verified})")
            }
            Flow::CaChallenge { .. } => f.write_str("CaChallenge(..)"),
        }
    }
}
