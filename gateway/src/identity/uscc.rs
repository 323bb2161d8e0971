//! 统一社会信用代码 (Unified Social Credit Code, GB 32100-2015).
//!
//! Contract: a [`Uscc`] always holds exactly 18 characters from the 31-symbol
//! alphabet `0123456789ABCDEFGHJKLMNPQRTUWXY` (no I, O, S, V, Z), and its
//! 18th character is the check character of the first 17: with weights
//! 3^(i-1) mod 31 and Σ = Σ value(c_i)·w_i, C18 = (31 − Σ mod 31) mod 31.
//! Parsing trims surrounding whitespace and upper-cases ASCII letters; the
//! stored form is that canonical upper-case string. Only the check character
//! is verified: the registration-authority, category and region parts are not
//! checked against any code table.

use super::{trimmed, Field, IdentityError};
use serde::{Deserialize, Serialize};

/// The 31 symbols, in value order (value of a symbol = its index).
pub const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights 3^(i-1) mod 31 for positions 1..=17.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A validated 统一社会信用代码 in canonical upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uscc(String);

string_newtype!(Uscc);

fn value_of(c: char) -> Option<u32> {
    ALPHABET
        .chars()
        .position(|a| a == c)
        .and_then(|p| u32::try_from(p).ok())
}

fn symbol_of(v: u32) -> Option<char> {
    ALPHABET.chars().nth(usize::try_from(v).ok()?)
}

/// The check character for the first 17 characters of a USCC (lower case
/// accepted), or `None` if `first17` is not 17 symbols of the alphabet.
pub fn check_char(first17: &str) -> Option<char> {
    if first17.chars().count() != WEIGHTS.len() {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += value_of(c.to_ascii_uppercase())? * w;
    }
    symbol_of((31 - sum % 31) % 31)
}

impl Uscc {
    /// Validates and canonicalises a USCC.
    pub fn parse(input: &str) -> Result<Self, IdentityError> {
        const F: Field = Field::Uscc;
        let s = trimmed(input, F)?;
        if s.chars().count() != 18 {
            return Err(IdentityError::BadLength { field: F });
        }
        let upper = s.to_ascii_uppercase();
        if !upper.chars().all(|c| ALPHABET.contains(c)) {
            return Err(IdentityError::BadCharset { field: F });
        }
        // All ASCII now, so byte 17 is a char boundary.
        let (first17, last) = upper
            .split_at_checked(17)
            .ok_or(IdentityError::BadLength { field: F })?;
        let expected = check_char(first17).ok_or(IdentityError::BadCharset { field: F })?;
        if last.chars().eq(std::iter::once(expected)) {
            Ok(Uscc(upper))
        } else {
            Err(IdentityError::BadCheckChar { field: F })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "91110000600037341L";

    #[test]
    fn weights_are_powers_of_three_mod_31() {
        let mut w = 1u32;
        for expected in WEIGHTS {
            assert_eq!(w, expected);
            w = w * 3 % 31;
        }
        assert_eq!(ALPHABET.len(), 31);
    }

    #[test]
    fn public_vector_is_valid() {
        let u = Uscc::parse(VALID).unwrap();
        assert_eq!(u.as_str(), VALID);
        assert_eq!(u.to_string(), VALID);
        assert_eq!(check_char("91110000600037341"), Some('L'));
    }

    #[test]
    fn lower_case_and_whitespace_are_canonicalised() {
        let u = Uscc::parse("  91110000600037341l\n").unwrap();
        assert_eq!(u.as_str(), VALID);
        assert_eq!(
            check_char("9111000060003734a"),
            check_char("9111000060003734A")
        );
    }

    #[test]
    fn changing_any_character_invalidates() {
        let original: Vec<char> = VALID.chars().collect();
        for pos in 0..18 {
            for sym in ALPHABET.chars() {
                if sym == original[pos] {
                    continue;
                }
                let mut changed = original.clone();
                changed[pos] = sym;
                let s: String = changed.into_iter().collect();
                assert_eq!(
                    Uscc::parse(&s),
                    Err(IdentityError::BadCheckChar { field: Field::Uscc }),
                    "{s} should be invalid"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_length_and_charset() {
        let f = Field::Uscc;
        assert_eq!(Uscc::parse(""), Err(IdentityError::Empty { field: f }));
        assert_eq!(
            Uscc::parse("91110000600037341"),
            Err(IdentityError::BadLength { field: f })
        );
        assert_eq!(
            Uscc::parse("91110000600037341LL"),
            Err(IdentityError::BadLength { field: f })
        );
        // I, O, S, V, Z are not in the alphabet.
        for bad in ["I", "O", "S", "V", "Z", "-", "中"] {
            let s = format!("9111000060003734{bad}L");
            assert_eq!(
                Uscc::parse(&s),
                Err(IdentityError::BadCharset { field: f }),
                "{s}"
            );
        }
        assert_eq!(check_char("9111000060003734"), None);
        assert_eq!(check_char("911100006000373411"), None);
        assert_eq!(check_char("9111000060003734I"), None);
    }

    #[test]
    fn every_generated_code_round_trips() {
        for first in [
            "91530102MA6K00001",
            "91530103MA6K0000X",
            "12100000400000001",
        ] {
            let c = check_char(first).unwrap();
            let full = format!("{first}{c}");
            assert_eq!(Uscc::parse(&full).unwrap().as_str(), full);
        }
    }

    #[test]
    fn serde_validates() {
        let u: Uscc = serde_json::from_str(&format!("\"{VALID}\"")).unwrap();
        assert_eq!(serde_json::to_string(&u).unwrap(), format!("\"{VALID}\""));
        assert!(serde_json::from_str::<Uscc>("\"91110000600037341M\"").is_err());
        assert!(serde_json::from_str::<Uscc>("42").is_err());
    }
}
