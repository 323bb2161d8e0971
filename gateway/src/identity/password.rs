//! Policy for NEW passwords (personal and enterprise), per NIST 800-63B.
//!
//! Contract: [`check_new_password`] accepts a password iff it has 8–64
//! characters (Unicode scalar values, not bytes; nothing is trimmed or
//! truncated), is not one character repeated, and is not in the embedded
//! list of common passwords (`common_passwords.txt`, compared
//! case-insensitively; the list is parsed once, lazily, into a `HashSet`).
//! No composition rules are imposed. The password is never stored, logged
//! or echoed by this module; [`PasswordRejected`] carries only the reason.
//! Existing passwords are verified elsewhere (argon2) and are not re-checked.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Minimum length in characters.
pub const MIN_CHARS: usize = 8;
/// Maximum length in characters.
pub const MAX_CHARS: usize = 64;

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Why a new password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PasswordRejected {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("password: shorter than 8 characters")]
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    #[error("password: longer than 64 characters")]
    TooLong,
    /// In the list of common passwords.
    #[error("password: too common")]
    Common,
    /// One character repeated.
    #[error("password: a single repeated character")]
    Trivial,
}

impl PasswordRejected {
    /// Stable snake_case reason, for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            PasswordRejected::TooShort => "password_too_short",
            PasswordRejected::TooLong => "password_too_long",
            PasswordRejected::Common => "password_common",
            PasswordRejected::Trivial => "password_trivial",
        }
    }

    /// Message for users, in Chinese.
    pub fn message_zh(&self) -> &'static str {
        match self {
            PasswordRejected::TooShort | PasswordRejected::TooLong => "密码长度应为8–64位",
            PasswordRejected::Common => "密码过于常见，容易被猜中，请更换",
            PasswordRejected::Trivial => "密码不能由同一字符重复组成，请更换",
        }
    }
}

fn common_set() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

/// Whether `pw` is in the common-password list (case-insensitive).
pub fn is_common_password(pw: &str) -> bool {
    common_set().contains(&pw.to_lowercase())
}

/// Checks a new password against the policy.
pub fn check_new_password(pw: &str) -> Result<(), PasswordRejected> {
    let n = pw.chars().count();
    if n < MIN_CHARS {
        return Err(PasswordRejected::TooShort);
    }
    if n > MAX_CHARS {
        return Err(PasswordRejected::TooLong);
    }
    let mut chars = pw.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(PasswordRejected::Trivial);
    }
    if is_common_password(pw) {
        return Err(PasswordRejected::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_loaded_and_sizable() {
        let set = common_set();
        assert!(set.len() >= 250, "{}", set.len());
        let long = set
            .iter()
            .filter(|p| p.chars().count() >= MIN_CHARS)
            .count();
        assert!(long >= 250, "{long}");
        for p in [
            "123456789",
            "12345678",
            "a123456789",
            "qq123456",
            "woaini1314",
            "1qaz2wsx",
            "password",
            "iloveyou",
            "abc12345",
            "5201314520",
            "aa123456",
            "zxcvbnm123",
        ] {
            assert!(set.contains(p), "{p} missing");
        }
    }

    #[test]
    fn lengths_count_chars() {
        assert_eq!(check_new_password(""), Err(PasswordRejected::TooShort));
        assert_eq!(
            check_new_password("Xk9#mQ2"),
            Err(PasswordRejected::TooShort)
        );
        assert_eq!(check_new_password("Xk9#mQ2v"), Ok(()));
        // 7 CJK chars are 21 bytes but still too short.
        assert_eq!(
            check_new_password("我的密码很安全"),
            Err(PasswordRejected::TooShort)
        );
        assert_eq!(check_new_password("我的密码真的很安全"), Ok(()));
        let max = "aB3".repeat(21) + "x";
        assert_eq!(max.chars().count(), 64);
        assert_eq!(check_new_password(&max), Ok(()));
        assert_eq!(
            check_new_password(&(max + "y")),
            Err(PasswordRejected::TooLong)
        );
        assert_eq!(
            check_new_password(&"密".repeat(65)),
            Err(PasswordRejected::TooLong)
        );
    }

    #[test]
    fn common_is_case_insensitive() {
        for p in [
            "Aa123456",
            "aa123456",
            "AA123456",
            "PASSWORD",
            "WoAiNi1314",
            "88888888",
        ] {
            assert!(check_new_password(p).is_err(), "{p}");
        }
        assert_eq!(
            check_new_password("QQ123456"),
            Err(PasswordRejected::Common)
        );
        assert_eq!(check_new_password("Dianchi@2026"), Ok(()));
    }

    #[test]
    fn trivial() {
        assert_eq!(
            check_new_password("zzzzzzzzzz"),
            Err(PasswordRejected::Trivial)
        );
        assert_eq!(
            check_new_password("11111111"),
            Err(PasswordRejected::Trivial)
        );
        assert_eq!(
            check_new_password("哈哈哈哈哈哈哈哈"),
            Err(PasswordRejected::Trivial)
        );
    }

    #[test]
    fn messages() {
        assert_eq!(
            PasswordRejected::TooShort.message_zh(),
            "密码长度应为8–64位"
        );
        assert_eq!(PasswordRejected::TooLong.message_zh(), "密码长度应为8–64位");
        assert_eq!(PasswordRejected::Common.code(), "password_common");
    }
}
