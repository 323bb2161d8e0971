//! Key layout of the store trees. Composite keys join their parts with a NUL byte,
//! which no identifier, id or hash can contain, so prefixes never collide.

pub fn officer(enterprise: &str, person: &str) -> Vec<u8> {
    join(&[enterprise, person])
}

/// Prefix of every officer of one enterprise.
pub fn officers_of(enterprise: &str) -> Vec<u8> {
    let mut k = enterprise.as_bytes().to_vec();
    k.push(0);
    k
}

pub fn officer_by_person(person: &str, enterprise: &str) -> Vec<u8> {
    join(&[person, enterprise])
}

pub fn session_of_officer(enterprise: &str, person: &str, token_hash: &str) -> Vec<u8> {
    join(&[enterprise, person, token_hash])
}

pub fn sms_code(purpose: &str, scope: &str) -> Vec<u8> {
    join(&[purpose, scope])
}

pub fn lockout(kind: &str, id: &str) -> Vec<u8> {
    join(&[kind, id])
}

pub fn rate(class: &str, client: &str) -> Vec<u8> {
    join(&[class, client])
}

/// Splits a composite key into its parts.
pub fn parts(key: &[u8]) -> Vec<&str> {
    key.split(|b| *b == 0)
        .map(|p| std::str::from_utf8(p).unwrap_or(""))
        .collect()
}

fn join(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matches_only_its_enterprise() {
        let k = officer("91A", "p1");
        assert!(k.starts_with(&officers_of("91A")));
        assert!(!k.starts_with(&officers_of("91")));
        assert_eq!(parts(&k), vec!["91A", "p1"]);
    }
}
