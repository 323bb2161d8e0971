//! The trees of the store: one per kind of record, named once.
//!
//! Contract: a [`Tree`] is a value of a closed enum, never a position in a list; its
//! [`Tree::name`] is the sled tree name and its [`Tree::id`] the PostgreSQL `tree`
//! column, and neither may change once data was written with it.

/// Every tree of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tree {
    Enterprises,
    /// USCC or TIN → enterprise key.
    Accounts,
    Persons,
    /// ID number → person id.
    PersonsByIdNumber,
    /// phone → person id (registered persons only).
    PersonsByPhone,
    /// enterprise \0 person → Officer.
    Officers,
    /// person \0 enterprise → ().
    OfficersByPerson,
    /// token hash → Session.
    Sessions,
    /// enterprise \0 person \0 token hash → ().
    SessionsByOfficer,
    /// ticket hash → LoginTicket.
    LoginTickets,
    Captchas,
    /// purpose \0 scope → SmsCode.
    SmsCodes,
    /// phone → SmsQuota.
    SmsQuota,
    /// account kind \0 id → Lockout.
    Lockouts,
    /// class \0 client → RateWindow.
    Rate,
    TaxAuthorities,
    /// verification id → RealnameCheck.
    Realname,
    /// ticket hash → FlowTicket (registration, recovery).
    FlowTickets,
    /// big-endian time + sequence → AuditEvent.
    Audit,
    Meta,
}

impl Tree {
    pub const ALL: [Tree; 20] = [
        Tree::Enterprises,
        Tree::Accounts,
        Tree::Persons,
        Tree::PersonsByIdNumber,
        Tree::PersonsByPhone,
        Tree::Officers,
        Tree::OfficersByPerson,
        Tree::Sessions,
        Tree::SessionsByOfficer,
        Tree::LoginTickets,
        Tree::Captchas,
        Tree::SmsCodes,
        Tree::SmsQuota,
        Tree::Lockouts,
        Tree::Rate,
        Tree::TaxAuthorities,
        Tree::Realname,
        Tree::FlowTickets,
        Tree::Audit,
        Tree::Meta,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Enterprises => "enterprises",
            Tree::Accounts => "accounts",
            Tree::Persons => "persons",
            Tree::PersonsByIdNumber => "persons_by_id_number",
            Tree::PersonsByPhone => "persons_by_phone",
            Tree::Officers => "officers",
            Tree::OfficersByPerson => "officers_by_person",
            Tree::Sessions => "sessions",
            Tree::SessionsByOfficer => "sessions_by_officer",
            Tree::LoginTickets => "login_tickets",
            Tree::Captchas => "captchas",
            Tree::SmsCodes => "sms_codes",
            Tree::SmsQuota => "sms_quota",
            Tree::Lockouts => "lockouts",
            Tree::Rate => "rate",
            Tree::TaxAuthorities => "tax_authorities",
            Tree::Realname => "realname",
            Tree::FlowTickets => "flow_tickets",
            Tree::Audit => "audit",
            Tree::Meta => "meta",
        }
    }

    /// A small stable number: the position in [`Tree::ALL`].
    pub fn id(self) -> i16 {
        self as i16
    }

    pub fn from_id(id: i16) -> Option<Tree> {
        usize::try_from(id)
            .ok()
            .and_then(|i| Tree::ALL.get(i).copied())
    }

    /// Trees whose records nodes keep copies of (the session cache): a write to one of
    /// them on one node must reach the other nodes' caches.
    pub fn is_cached(self) -> bool {
        matches!(self, Tree::Sessions | Tree::Officers)
    }
}

#[cfg(test)]
mod tests {
    use super::Tree;

    #[test]
    fn ids_are_positions_and_round_trip() {
        for (i, t) in Tree::ALL.iter().enumerate() {
            assert_eq!(t.id() as usize, i);
            assert_eq!(Tree::from_id(t.id()), Some(*t));
        }
        assert_eq!(Tree::from_id(20), None);
        assert_eq!(Tree::from_id(-1), None);
        let names: std::collections::BTreeSet<_> = Tree::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Tree::ALL.len());
    }
}
