//! 纳税人识别号 (taxpayer identification number).
//!
//! Contract: a [`Tin`] holds 15, 17, 18 or 20 ASCII letters and digits in
//! canonical upper case (input is trimmed and upper-cased). Only an 18-char
//! TIN carries a checksum: it must then be a valid [`Uscc`] (GB 32100-2015),
//! and [`Tin::as_uscc`] returns it. 15-, 17- and 20-char TINs (old 税务登记证号,
//! individual-business numbers) are checked for shape only.

use super::{trimmed, Field, IdentityError, Uscc};
use serde::{Deserialize, Serialize};

/// Allowed lengths, in characters.
pub const LENGTHS: [usize; 4] = [15, 17, 18, 20];

/// A validated 纳税人识别号 in canonical upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tin(String);

string_newtype!(Tin);

impl Tin {
    /// Validates and canonicalises a TIN.
    pub fn parse(input: &str) -> Result<Self, IdentityError> {
        const F: Field = Field::Tin;
        let s = trimmed(input, F)?;
        if !LENGTHS.contains(&s.chars().count()) {
            return Err(IdentityError::BadLength { field: F });
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(IdentityError::BadCharset { field: F });
        }
        if s.len() == 18 {
            let uscc = Uscc::parse(s).map_err(|e| e.with_field(F))?;
            return Ok(Tin(String::from(uscc)));
        }
        Ok(Tin(s.to_ascii_uppercase()))
    }

    /// The TIN as a USCC, if it is one (18 chars).
    pub fn as_uscc(&self) -> Option<Uscc> {
        if self.0.len() == 18 {
            Uscc::parse(&self.0).ok()
        } else {
            None
        }
    }
}

impl From<Uscc> for Tin {
    /// Every USCC is also a valid TIN.
    fn from(u: Uscc) -> Self {
        Tin(String::from(u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::Tin;

    #[test]
    fn accepts_the_four_lengths() {
        let t15 = Tin::parse("530102123456789").unwrap();
        assert_eq!(t15.as_str(), "530102123456789");
        assert!(t15.as_uscc().is_none());
        assert_eq!(
            Tin::parse("53010219800101001x").unwrap_err(),
            IdentityError::BadCheckChar { field: F }
        );
        assert_eq!(
            Tin::parse("5301021980010100io").unwrap_err(),
            IdentityError::BadCharset { field: F },
            "18 chars must use the USCC alphabet"
        );
        assert_eq!(
            Tin::parse("530102198001010ab").unwrap().as_str(),
            "530102198001010AB"
        );
        assert_eq!(
            Tin::parse("53010219800101000001").unwrap().as_str(),
            "53010219800101000001"
        );
    }

    #[test]
    fn eighteen_chars_must_be_uscc() {
        let t = Tin::parse(" 91110000600037341l ").unwrap();
        assert_eq!(t.as_str(), "91110000600037341L");
        assert_eq!(
            t.as_uscc().unwrap(),
            Uscc::parse("91110000600037341L").unwrap()
        );
        assert_eq!(
            Tin::parse("91110000600037341M"),
            Err(IdentityError::BadCheckChar { field: F })
        );
        let from: Tin = Uscc::parse("91110000600037341L").unwrap().into();
        assert_eq!(from, t);
    }

    #[test]
    fn rejects_other_lengths_and_chars() {
        for len in [1, 14, 16, 19, 21, 40] {
            let s = "1".repeat(len);
            assert_eq!(
                Tin::parse(&s),
                Err(IdentityError::BadLength { field: F }),
                "{len}"
            );
        }
        assert_eq!(Tin::parse("  "), Err(IdentityError::Empty { field: F }));
        assert_eq!(
            Tin::parse("53010212345678-"),
            Err(IdentityError::BadCharset { field: F })
        );
        assert_eq!(
            Tin::parse("53010212345678０"),
            Err(IdentityError::BadCharset { field: F }),
            "full-width digit"
        );
    }

    #[test]
    fn serde_validates() {
        let t: Tin = serde_json::from_str("\"530102123456789\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"530102123456789\"");
        assert!(serde_json::from_str::<Tin>("\"5301021234\"").is_err());
    }
}
