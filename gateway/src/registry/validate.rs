//! Validation of a registry file into checked rows, collecting every error with its path.

use super::file::RegistryFile;
use crate::identity::{check_new_password, IdNumber, PersonName, Phone, Tin, Uscc};
use crate::store::records::Role;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub struct ValidEnterprise {
    pub uscc: Option<String>,
    pub tin: Option<String>,
    pub name: String,
    pub tax_authority: String,
    pub password: String,
    /// ID number → the person's registry binding.
    pub officers: BTreeMap<String, ValidOfficer>,
}

pub struct ValidOfficer {
    pub name: String,
    pub phone: String,
    pub roles: BTreeSet<Role>,
}

pub struct Valid {
    pub tax_authorities: Vec<(String, String)>,
    pub enterprises: Vec<ValidEnterprise>,
}

fn role(s: &str) -> Option<Role> {
    match s {
        "legal_rep" => Some(Role::LegalRep),
        "finance_officer" => Some(Role::FinanceOfficer),
        "tax_officer" => Some(Role::TaxOfficer),
        "agent" => Some(Role::Agent),
        _ => None,
    }
}

pub fn validate(file: &RegistryFile) -> Result<Valid, Vec<String>> {
    let mut errors = Vec::new();
    let mut authorities = HashSet::new();
    for (i, t) in file.tax_authorities.iter().enumerate() {
        if t.code.len() != 11 || !t.code.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(format!(
                "tax_authorities[{i}].code: `{}` is not an 11-digit code",
                t.code
            ));
        }
        if t.name.trim().is_empty() {
            errors.push(format!("tax_authorities[{i}].name: empty"));
        }
        if !authorities.insert(t.code.as_str()) {
            errors.push(format!(
                "tax_authorities[{i}].code: `{}` listed twice",
                t.code
            ));
        }
    }

    let mut accounts: HashMap<String, usize> = HashMap::new();
    // A person's name must agree across every row that names his ID number.
    let mut names: HashMap<String, (String, String)> = HashMap::new();
    let mut enterprises = Vec::with_capacity(file.enterprises.len());
    for (i, e) in file.enterprises.iter().enumerate() {
        let at = format!("enterprises[{i}]");
        let uscc = match &e.uscc {
            Some(u) => match Uscc::parse(u) {
                Ok(u) => Some(u.as_str().to_string()),
                Err(err) => {
                    errors.push(format!("{at}.uscc: `{u}`: {}", err.message_zh()));
                    None
                }
            },
            None => None,
        };
        let tin = match &e.tin {
            Some(t) => match Tin::parse(t) {
                Ok(t) => Some(t.as_str().to_string()),
                Err(err) => {
                    errors.push(format!("{at}.tin: `{t}`: {}", err.message_zh()));
                    None
                }
            },
            None => None,
        };
        if e.uscc.is_none() && e.tin.is_none() {
            errors.push(format!("{at}: needs a uscc or a tin"));
        }
        for account in uscc.iter().chain(tin.iter()) {
            if let Some(j) = accounts.insert(account.clone(), i) {
                if j != i {
                    errors.push(format!(
                        "{at}: `{account}` is also enterprises[{j}]'s identifier"
                    ));
                }
            }
        }
        if e.name.trim().is_empty() || e.name.chars().count() > 100 {
            errors.push(format!("{at}.name: must be 1–100 characters"));
        }
        if !authorities.contains(e.tax_authority.as_str()) {
            errors.push(format!(
                "{at}.tax_authority: `{}` is not listed in tax_authorities",
                e.tax_authority
            ));
        }
        if let Err(r) = check_new_password(&e.password) {
            errors.push(format!("{at}.password: {}", r.message_zh()));
        }

        let mut officers: BTreeMap<String, ValidOfficer> = BTreeMap::new();
        for (k, o) in e.officers.iter().enumerate() {
            let at = format!("{at}.officers[{k}]");
            let Some(r) = role(&o.role) else {
                errors.push(format!(
                    "{at}.role: `{}` is not one of legal_rep, finance_officer, tax_officer, agent",
                    o.role
                ));
                continue;
            };
            let id = IdNumber::parse(&o.id_number)
                .map_err(|err| errors.push(format!("{at}.id_number: {}", err.message_zh())))
                .ok();
            let name = PersonName::parse(&o.name)
                .map_err(|err| errors.push(format!("{at}.name: {}", err.message_zh())))
                .ok();
            let phone = Phone::parse(&o.phone)
                .map_err(|err| errors.push(format!("{at}.phone: {}", err.message_zh())))
                .ok();
            let (Some(id), Some(name), Some(phone)) = (id, name, phone) else {
                continue;
            };
            let id = id.as_str().to_string();
            match names.get(&id) {
                Some((other, where_)) if other != name.as_str() => errors.push(format!(
                    "{at}.name: `{}` differs from `{other}` given for the same ID number at {where_}",
                    name.as_str()
                )),
                Some(_) => {}
                None => {
                    names.insert(id.clone(), (name.as_str().to_string(), at.clone()));
                }
            }
            let entry = officers.entry(id).or_insert_with(|| ValidOfficer {
                name: name.as_str().to_string(),
                phone: phone.as_str().to_string(),
                roles: BTreeSet::new(),
            });
            entry.roles.insert(r);
            entry.phone = phone.as_str().to_string();
        }
        enterprises.push(ValidEnterprise {
            uscc,
            tin,
            name: e.name.trim().to_string(),
            tax_authority: e.tax_authority.clone(),
            password: e.password.clone(),
            officers,
        });
    }
    if errors.is_empty() {
        Ok(Valid {
            tax_authorities: file
                .tax_authorities
                .iter()
                .map(|t| (t.code.clone(), t.name.trim().to_string()))
                .collect(),
            enterprises,
        })
    } else {
        Err(errors)
    }
}
