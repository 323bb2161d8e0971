//! 手机号码 (mainland China mobile number).
//!
//! Contract: a [`Phone`] matches `^1[3-9]\d{9}$` exactly: 11 ASCII digits,
//! the first `1`, the second 3–9. Surrounding whitespace is trimmed; nothing
//! else is accepted (no `+86`, spaces or dashes inside). `Debug` is masked
//! (`138****1234`); `Display`, `as_str()` and serde give the full number.

use super::{mask::mask_phone, trimmed, Field, IdentityError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated mobile number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

string_newtype!(Phone);

impl Phone {
    /// Validates a mobile number.
    pub fn parse(input: &str) -> Result<Self, IdentityError> {
        const F: Field = Field::Phone;
        let s = trimmed(input, F)?;
        if s.chars().count() != 11 {
            return Err(IdentityError::BadLength { field: F });
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdentityError::BadCharset { field: F });
        }
        let mut bytes = s.bytes();
        match (bytes.next(), bytes.next()) {
            (Some(b'1'), Some(b'3'..=b'9')) => Ok(Phone(s.to_owned())),
            _ => Err(IdentityError::BadPhonePrefix),
        }
    }

    /// Masked form for display and logs: `138****1234`.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Phone").field(&self.masked()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::Phone;

    #[test]
    fn accepts_mobile_numbers() {
        for p in [
            "13800001234",
            "19912345678",
            "15000000000",
            " 13800001234\t",
        ] {
            let phone = Phone::parse(p).unwrap();
            assert_eq!(phone.as_str(), p.trim());
        }
    }

    #[test]
    fn rejects_bad_numbers() {
        assert_eq!(Phone::parse(""), Err(IdentityError::Empty { field: F }));
        assert_eq!(
            Phone::parse("1380000123"),
            Err(IdentityError::BadLength { field: F })
        );
        assert_eq!(
            Phone::parse("138000012345"),
            Err(IdentityError::BadLength { field: F })
        );
        assert_eq!(
            Phone::parse("+8613800001234"),
            Err(IdentityError::BadLength { field: F })
        );
        assert_eq!(
            Phone::parse("138 0000123"),
            Err(IdentityError::BadCharset { field: F })
        );
        assert_eq!(
            Phone::parse("1380000123４"),
            Err(IdentityError::BadCharset { field: F })
        );
        for p in ["12800001234", "10800001234", "23800001234", "03800001234"] {
            assert_eq!(Phone::parse(p), Err(IdentityError::BadPhonePrefix), "{p}");
        }
    }

    #[test]
    fn debug_is_masked() {
        let p = Phone::parse("13800001234").unwrap();
        assert_eq!(format!("{p:?}"), "Phone(\"138****1234\")");
        assert_eq!(p.to_string(), "13800001234");
    }

    #[test]
    fn serde_validates() {
        let p: Phone = serde_json::from_str("\"13800001234\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"13800001234\"");
        assert!(serde_json::from_str::<Phone>("\"12800001234\"").is_err());
        assert!(serde_json::from_str::<Phone>("13800001234").is_err());
    }
}
