//! Identifiers of the tax domain, validated on parse.
//!
//! Contract: every type here is a newtype whose only constructor is `parse`
//! (also reachable through `FromStr`, `TryFrom<String>` and serde
//! `Deserialize`), so holding a value proves it is well formed: a
//! [`Uscc`] has a correct GB 32100-2015 check character, an [`IdNumber`] a
//! correct GB 11643-1999 check character and a real birth date, and so on.
//! Values are stored in one canonical form (trimmed, ASCII upper case where
//! letters occur), so two parses of equivalent input compare equal.
//! `Display`, `as_str()` and serde `Serialize` give the canonical string;
//! `Debug` of personal data ([`IdNumber`], [`Phone`], [`PersonName`]) is
//! masked so that the value never lands in a log by accident.
//!
//! Failures are [`IdentityError`]: it names the [`Field`] and the reason, with
//! a stable snake_case [`IdentityError::code`] for API responses and a Chinese
//! [`IdentityError::message_zh`] for users. Nothing in this module panics.

use std::fmt;

/// Implements the string plumbing shared by every identifier newtype:
/// `as_str`, `AsRef<str>`, `Display`, `FromStr`, `TryFrom<String>`,
/// `TryFrom<&str>` and `From<T> for String` (the last two power serde).
macro_rules! string_newtype {
    ($ty:ident) => {
        impl $ty {
            /// The canonical string form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::identity::IdentityError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $crate::identity::IdentityError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = $crate::identity::IdentityError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }
    };
}

pub mod id_number;
pub mod mask;
pub mod password;
pub mod person_name;
pub mod phone;
pub mod tin;
pub mod uscc;

pub use id_number::{BirthDate, IdNumber};
pub use mask::{mask_id_number, mask_name, mask_phone};
pub use password::{check_new_password, is_common_password, PasswordRejected};
pub use person_name::PersonName;
pub use phone::Phone;
pub use tin::Tin;
pub use uscc::Uscc;

/// Which identifier an [`IdentityError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// 统一社会信用代码.
    Uscc,
    /// 纳税人识别号.
    Tin,
    /// 居民身份证号码.
    IdNumber,
    /// 手机号码.
    Phone,
    /// 姓名.
    PersonName,
}

impl Field {
    /// Stable snake_case name, as used in API field names.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Uscc => "uscc",
            Field::Tin => "tin",
            Field::IdNumber => "id_number",
            Field::Phone => "phone",
            Field::PersonName => "name",
        }
    }

    /// Chinese label shown to users.
    pub fn label_zh(self) -> &'static str {
        match self {
            Field::Uscc => "统一社会信用代码",
            Field::Tin => "纳税人识别号",
            Field::IdNumber => "居民身份证号码",
            Field::Phone => "手机号码",
            Field::PersonName => "姓名",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an identifier was refused. The error never contains the input itself
/// (it may be personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum IdentityError {
    /// Nothing left after trimming surrounding whitespace.
    #[error("{field}: empty")]
    Empty { field: Field },
    /// Wrong number of characters.
    #[error("{field}: bad length")]
    BadLength { field: Field },
    /// A character outside the allowed set (or a control/format character).
    #[error("{field}: character outside the allowed set")]
    BadCharset { field: Field },
    /// The check character does not match the others.
    #[error("{field}: check character does not match")]
    BadCheckChar { field: Field },
    /// The birth date of an ID number is not a calendar date in 1900–2099.
    #[error("id_number: birth date is not a valid date between 1900 and 2099")]
    BadBirthDate,
    /// A mobile number that does not start with 13–19.
    #[error("phone: not a mainland mobile number (must start with 13-19)")]
    BadPhonePrefix,
}

impl IdentityError {
    /// The field the error is about.
    pub fn field(&self) -> Field {
        match *self {
            IdentityError::Empty { field }
            | IdentityError::BadLength { field }
            | IdentityError::BadCharset { field }
            | IdentityError::BadCheckChar { field } => field,
            IdentityError::BadBirthDate => Field::IdNumber,
            IdentityError::BadPhonePrefix => Field::Phone,
        }
    }

    /// Stable snake_case reason, for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::Empty { .. } => "empty",
            IdentityError::BadLength { .. } => "bad_length",
            IdentityError::BadCharset { .. } => "bad_charset",
            IdentityError::BadCheckChar { .. } => "bad_check_char",
            IdentityError::BadBirthDate => "bad_birth_date",
            IdentityError::BadPhonePrefix => "bad_prefix",
        }
    }

    /// Message for users, in Chinese.
    pub fn message_zh(&self) -> String {
        let field = self.field();
        let label = field.label_zh();
        match self {
            IdentityError::Empty { .. } => format!("请输入{label}"),
            IdentityError::BadLength { .. } => {
                let rule = match field {
                    Field::Uscc => "应为18位",
                    Field::Tin => "应为15、17、18或20位",
                    Field::IdNumber => "应为18位",
                    Field::Phone => "应为11位",
                    Field::PersonName => "应为1–32个字",
                };
                format!("{label}长度不正确，{rule}")
            }
            IdentityError::BadCharset { .. } => format!("{label}包含无效字符"),
            IdentityError::BadCheckChar { .. } => format!("{label}校验位错误，请核对"),
            IdentityError::BadBirthDate => format!("{label}中的出生日期无效"),
            IdentityError::BadPhonePrefix => format!("{label}格式不正确"),
        }
    }

    /// The same reason, reported for another field (e.g. a TIN that is a bad USCC).
    pub(crate) fn with_field(self, field: Field) -> Self {
        match self {
            IdentityError::Empty { .. } => IdentityError::Empty { field },
            IdentityError::BadLength { .. } => IdentityError::BadLength { field },
            IdentityError::BadCharset { .. } => IdentityError::BadCharset { field },
            IdentityError::BadCheckChar { .. } => IdentityError::BadCheckChar { field },
            other => other,
        }
    }
}

/// Trims surrounding whitespace; `Empty` if nothing is left.
pub(crate) fn trimmed(input: &str, field: Field) -> Result<&str, IdentityError> {
    let s = input.trim();
    if s.is_empty() {
        Err(IdentityError::Empty { field })
    } else {
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let f = Field::Uscc;
        assert_eq!(IdentityError::Empty { field: f }.code(), "empty");
        assert_eq!(IdentityError::BadLength { field: f }.code(), "bad_length");
        assert_eq!(IdentityError::BadCharset { field: f }.code(), "bad_charset");
        assert_eq!(
            IdentityError::BadCheckChar { field: f }.code(),
            "bad_check_char"
        );
        assert_eq!(IdentityError::BadBirthDate.code(), "bad_birth_date");
        assert_eq!(IdentityError::BadPhonePrefix.code(), "bad_prefix");
    }

    #[test]
    fn field_and_messages() {
        let e = IdentityError::BadCheckChar {
            field: Field::IdNumber,
        };
        assert_eq!(e.field(), Field::IdNumber);
        assert_eq!(e.message_zh(), "居民身份证号码校验位错误，请核对");
        assert_eq!(e.to_string(), "id_number: check character does not match");
        assert_eq!(IdentityError::BadPhonePrefix.field(), Field::Phone);
        assert_eq!(IdentityError::BadBirthDate.field(), Field::IdNumber);
        let e = IdentityError::BadLength { field: Field::Tin };
        assert_eq!(
            e.message_zh(),
            "纳税人识别号长度不正确，应为15、17、18或20位"
        );
    }

    #[test]
    fn with_field_moves_reason() {
        let e = IdentityError::BadCheckChar { field: Field::Uscc }.with_field(Field::Tin);
        assert_eq!(e, IdentityError::BadCheckChar { field: Field::Tin });
        assert_eq!(
            IdentityError::BadBirthDate.with_field(Field::Tin),
            IdentityError::BadBirthDate
        );
    }

    #[test]
    fn trimmed_rejects_blank() {
        assert_eq!(
            trimmed(" \t\u{3000}", Field::Phone),
            Err(IdentityError::Empty {
                field: Field::Phone
            })
        );
        assert_eq!(trimmed(" a ", Field::Phone), Ok("a"));
    }
}
