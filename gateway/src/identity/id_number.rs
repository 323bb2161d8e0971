//! 居民身份证号码 (resident identity card number, GB 11643-1999).
//!
//! Contract: an [`IdNumber`] holds exactly 18 characters: 17 ASCII digits and
//! a check character (a digit or `X`; input `x` is upper-cased, surrounding
//! whitespace is trimmed). The check character is `10X98765432`[Σ mod 11]
//! with weights 2^(18-i) mod 11, and positions 7–14 are a real calendar
//! birth date (Gregorian leap years) with a year in 1900..=2099. The module
//! does not know today's date: callers that must refuse future births compare
//! [`IdNumber::birth_date`] with their clock. The region code (positions 1–6)
//! is not checked against a code table. `Debug` is masked; `Display`,
//! `as_str()` and serde give the full number.

use super::{mask::mask_id_number, trimmed, Field, IdentityError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Weights 2^(18-i) mod 11 for positions 1..=17.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check characters indexed by Σ mod 11.
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Earliest and latest accepted birth year.
pub const MIN_BIRTH_YEAR: u16 = 1900;
/// See [`MIN_BIRTH_YEAR`].
pub const MAX_BIRTH_YEAR: u16 = 2099;

/// A validated 居民身份证号码 (canonical: trailing `X` upper case).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);

string_newtype!(IdNumber);

/// A calendar date (birth date of an [`IdNumber`]); orders chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BirthDate {
    year: u16,
    month: u8,
    day: u8,
}

impl BirthDate {
    /// A date, if it exists in the Gregorian calendar and its year is in
    /// [`MIN_BIRTH_YEAR`]..=[`MAX_BIRTH_YEAR`].
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        if !(MIN_BIRTH_YEAR..=MAX_BIRTH_YEAR).contains(&year) {
            return None;
        }
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        if (1..=days).contains(&day) {
            Some(BirthDate { year, month, day })
        } else {
            None
        }
    }

    /// Year (1900..=2099).
    pub fn year(&self) -> u16 {
        self.year
    }
    /// Month (1..=12).
    pub fn month(&self) -> u8 {
        self.month
    }
    /// Day of month (1..=31).
    pub fn day(&self) -> u8 {
        self.day
    }
}

impl fmt::Display for BirthDate {
    /// ISO 8601, `YYYY-MM-DD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Value of a run of ASCII digits; `None` on anything else.
fn digits_value(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The check character for the first 17 characters of an ID number, or
/// `None` if `first17` is not 17 ASCII digits.
pub fn check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != WEIGHTS.len() {
        return None;
    }
    let mut sum = 0u32;
    for (&b, w) in bytes.iter().zip(WEIGHTS) {
        if !b.is_ascii_digit() {
            return None;
        }
        sum += u32::from(b - b'0') * w;
    }
    CHECK.get(usize::try_from(sum % 11).ok()?).copied()
}

/// Birth date at positions 7–14 of an 18-byte ASCII ID number.
fn birth_date_of(s: &str) -> Option<BirthDate> {
    let bytes = s.as_bytes();
    let year = u16::try_from(digits_value(bytes.get(6..10)?)?).ok()?;
    let month = u8::try_from(digits_value(bytes.get(10..12)?)?).ok()?;
    let day = u8::try_from(digits_value(bytes.get(12..14)?)?).ok()?;
    BirthDate::new(year, month, day)
}

impl IdNumber {
    /// Validates and canonicalises an 18-digit ID number.
    pub fn parse(input: &str) -> Result<Self, IdentityError> {
        const F: Field = Field::IdNumber;
        let s = trimmed(input, F)?;
        if s.chars().count() != 18 {
            return Err(IdentityError::BadLength { field: F });
        }
        let upper = s.to_ascii_uppercase();
        let (first17, last) = upper
            .split_at_checked(17)
            .ok_or(IdentityError::BadCharset { field: F })?;
        if !first17.bytes().all(|b| b.is_ascii_digit())
            || !(last == "X" || last.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(IdentityError::BadCharset { field: F });
        }
        let expected = check_char(first17).ok_or(IdentityError::BadCharset { field: F })?;
        if !last.chars().eq(std::iter::once(expected)) {
            return Err(IdentityError::BadCheckChar { field: F });
        }
        if birth_date_of(&upper).is_none() {
            return Err(IdentityError::BadBirthDate);
        }
        Ok(IdNumber(upper))
    }

    /// The birth date encoded at positions 7–14.
    pub fn birth_date(&self) -> BirthDate {
        // Validated by `parse`; the fallback is unreachable.
        birth_date_of(&self.0).unwrap_or(BirthDate {
            year: MIN_BIRTH_YEAR,
            month: 1,
            day: 1,
        })
    }

    /// Masked form for display and logs: first 3 + stars + last 2.
    pub fn masked(&self) -> String {
        mask_id_number(&self.0)
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::IdNumber;

    fn with_check(first17: &str) -> String {
        format!("{first17}{}", check_char(first17).unwrap())
    }

    #[test]
    fn weights_are_powers_of_two_mod_11() {
        for (i, w) in WEIGHTS.iter().enumerate() {
            assert_eq!(*w, (1u32 << (17 - i)) % 11);
        }
    }

    #[test]
    fn public_vectors() {
        let a = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(a.birth_date().to_string(), "1949-12-31");
        let b = IdNumber::parse("360426199101010071").unwrap();
        assert_eq!(b.birth_date(), BirthDate::new(1991, 1, 1).unwrap());
        assert_eq!(
            IdNumber::parse("340524198001010013"),
            Err(IdentityError::BadCheckChar { field: F })
        );
        assert_eq!(check_char("11010519491231002"), Some('X'));
        assert_eq!(check_char("36042619910101007"), Some('1'));
    }

    #[test]
    fn lower_x_is_canonicalised() {
        let a = IdNumber::parse(" 11010519491231002x ").unwrap();
        assert_eq!(a.as_str(), "11010519491231002X");
    }

    #[test]
    fn changing_any_digit_invalidates() {
        let original = "360426199101010071";
        for pos in 0..18 {
            for d in "0123456789X".chars() {
                let mut chars: Vec<char> = original.chars().collect();
                if chars[pos] == d || (pos < 17 && d == 'X') {
                    continue;
                }
                chars[pos] = d;
                let s: String = chars.into_iter().collect();
                assert!(IdNumber::parse(&s).is_err(), "{s}");
            }
        }
    }

    #[test]
    fn impossible_dates_are_refused_even_with_correct_check_char() {
        for date in [
            "19990230", "19000229", "21000101", "18991231", "19991301", "19990000", "19990431",
            "19990100",
        ] {
            let id = with_check(&format!("110105{date}001"));
            assert_eq!(
                IdNumber::parse(&id),
                Err(IdentityError::BadBirthDate),
                "{id}"
            );
        }
    }

    #[test]
    fn leap_days() {
        for date in ["20000229", "19960229", "20240229", "19000101", "20991231"] {
            let id = with_check(&format!("110105{date}001"));
            assert!(IdNumber::parse(&id).is_ok(), "{id}");
        }
        assert!(BirthDate::new(2023, 2, 29).is_none());
        assert!(BirthDate::new(2100, 1, 1).is_none());
    }

    #[test]
    fn rejects_shape_errors() {
        assert_eq!(IdNumber::parse(""), Err(IdentityError::Empty { field: F }));
        assert_eq!(
            IdNumber::parse("11010519491231002"),
            Err(IdentityError::BadLength { field: F })
        );
        assert_eq!(
            IdNumber::parse("110105194912310"),
            Err(IdentityError::BadLength { field: F }),
            "15-digit first-generation numbers are not accepted"
        );
        assert_eq!(
            IdNumber::parse("1101051949123100X2"),
            Err(IdentityError::BadCharset { field: F })
        );
        assert_eq!(
            IdNumber::parse("11010519491231002Y"),
            Err(IdentityError::BadCharset { field: F })
        );
        assert_eq!(
            IdNumber::parse("11010519491231002中"),
            Err(IdentityError::BadCharset { field: F })
        );
        assert_eq!(check_char("1101051949123100"), None);
        assert_eq!(check_char("1101051949123100A"), None);
    }

    #[test]
    fn debug_is_masked() {
        let a = IdNumber::parse("11010519491231002X").unwrap();
        let dbg = format!("{a:?}");
        assert_eq!(dbg, "IdNumber(\"110*************2X\")");
        assert!(!dbg.contains("19491231"));
        assert_eq!(a.to_string(), "11010519491231002X");
    }

    #[test]
    fn serde_validates() {
        let a: IdNumber = serde_json::from_str("\"11010519491231002x\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"11010519491231002X\"");
        assert!(serde_json::from_str::<IdNumber>("\"340524198001010013\"").is_err());
    }
}
