//! 姓名 (a natural person's name as on the identity card).
//!
//! Contract: a [`PersonName`] is 1–32 characters (Unicode scalar values, not
//! bytes) after trimming surrounding whitespace (including the ideographic
//! space U+3000), with no control characters and no invisible formatting
//! characters (zero-width spaces, bidi overrides, BOM, line separators).
//! Chinese names (张三, 欧阳娜娜) and names of ethnic minorities written with
//! a separating dot (买买提·艾力) are accepted; the look-alike dots people type
//! (•, ‧, ・, ･, ∙, ⋅, ．) are normalised to U+00B7 `·` so that the same name
//! always compares equal. `Debug` is masked (张*三); `Display`, `as_str()` and
//! serde give the full name.

use super::{mask::mask_name, trimmed, Field, IdentityError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Maximum length in characters.
pub const MAX_CHARS: usize = 32;

/// The canonical separating dot of ethnic-minority names.
pub const NAME_DOT: char = '\u{00B7}';

/// Characters normalised to [`NAME_DOT`].
const DOT_LOOKALIKES: [char; 7] = [
    '\u{2022}', // • bullet
    '\u{2027}', // ‧ hyphenation point
    '\u{30FB}', // ・ katakana middle dot
    '\u{FF65}', // ･ halfwidth katakana middle dot
    '\u{2219}', // ∙ bullet operator
    '\u{22C5}', // ⋅ dot operator
    '\u{FF0E}', // ． fullwidth full stop
];

/// A validated person's name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

string_newtype!(PersonName);

/// Control characters and invisible format characters that have no place in a name.
fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'              // soft hyphen
            | '\u{061C}'            // Arabic letter mark
            | '\u{180E}'            // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}' // line/paragraph separator, bidi embeddings
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
            | '\u{FEFF}'            // BOM / zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        )
}

impl PersonName {
    /// Validates and canonicalises a name.
    pub fn parse(input: &str) -> Result<Self, IdentityError> {
        const F: Field = Field::PersonName;
        let s = trimmed(input, F)?;
        if s.chars().count() > MAX_CHARS {
            return Err(IdentityError::BadLength { field: F });
        }
        if s.chars().any(is_forbidden) {
            return Err(IdentityError::BadCharset { field: F });
        }
        let canonical: String = s
            .chars()
            .map(|c| {
                if DOT_LOOKALIKES.contains(&c) {
                    NAME_DOT
                } else {
                    c
                }
            })
            .collect();
        Ok(PersonName(canonical))
    }

    /// Masked form for display and logs: 张*, 张*三, 欧**娜.
    pub fn masked(&self) -> String {
        mask_name(&self.0)
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PersonName").field(&self.masked()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::PersonName;

    #[test]
    fn accepts_names() {
        for n in [
            "张三",
            "欧阳娜娜",
            "买买提·艾力",
            "王",
            "John Smith",
            "阿依古丽·买买提",
        ] {
            assert_eq!(PersonName::parse(n).unwrap().as_str(), n);
        }
        assert_eq!(
            PersonName::parse("\u{3000} 张三 \n").unwrap().as_str(),
            "张三"
        );
    }

    #[test]
    fn normalises_dots() {
        for n in ["买买提•艾力", "买买提・艾力", "买买提．艾力", "买买提‧艾力"]
        {
            assert_eq!(PersonName::parse(n).unwrap().as_str(), "买买提·艾力", "{n}");
        }
    }

    #[test]
    fn length_counts_chars() {
        let n32 = "张".repeat(32); // 96 bytes
        assert!(PersonName::parse(&n32).is_ok());
        assert_eq!(
            PersonName::parse(&"张".repeat(33)),
            Err(IdentityError::BadLength { field: F })
        );
        assert_eq!(
            PersonName::parse("   "),
            Err(IdentityError::Empty { field: F })
        );
    }

    #[test]
    fn rejects_control_and_invisible_chars() {
        for n in [
            "张\u{0}三",
            "张\n三",
            "张\u{7f}三",
            "张\u{200B}三",
            "张\u{202E}三",
            "\u{FEFF}张三",
        ] {
            assert_eq!(
                PersonName::parse(n),
                Err(IdentityError::BadCharset { field: F }),
                "{n:?}"
            );
        }
    }

    #[test]
    fn debug_is_masked() {
        let n = PersonName::parse("张小三").unwrap();
        assert_eq!(format!("{n:?}"), "PersonName(\"张*三\")");
        assert_eq!(n.to_string(), "张小三");
    }

    #[test]
    fn serde_validates() {
        let n: PersonName = serde_json::from_str("\"欧阳娜娜\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"欧阳娜娜\"");
        assert!(serde_json::from_str::<PersonName>("\"\"").is_err());
    }
}
