//! HTTP mapping of the domain error ([`crate::error`]): a status per code and the body
//! `{"error":{"code","message"[,"retry_after"][,"field"]}}` (API.md). Only the edge
//! (`api/`, `proxy/`) uses this.

use crate::error::{Code, Error};

/// The HTTP status that answers `code`.
pub fn status(code: Code) -> u16 {
    match code {
        Code::InvalidInput
        | Code::CaptchaInvalid
        | Code::SmsCodeInvalid
        | Code::PasswordMismatch
        | Code::RealnameFailed => 400,
        Code::BadCredentials
        | Code::Unauthenticated
        | Code::TicketInvalid
        | Code::ChallengeInvalid
        | Code::CertUntrusted
        | Code::CertExpired
        | Code::CertRevoked
        | Code::CertNotForLogin
        | Code::CertNoEnterprise
        | Code::SignatureInvalid => 401,
        Code::NotBound | Code::Forbidden | Code::CsrfInvalid | Code::MethodNotAllowed => 403,
        Code::NotFound | Code::EnterpriseUnknown => 404,
        Code::HttpMethodNotAllowed => 405,
        Code::AlreadyRegistered => 409,
        Code::PayloadTooLarge => 413,
        Code::Locked | Code::RateLimited => 429,
        Code::Internal => 500,
        Code::Unavailable => 503,
    }
}

/// The JSON body of an error answer.
pub fn body(e: &Error) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": e })).unwrap_or_default()
}

/// The headers an error answer carries besides its body: `Allow` on a 405 (RFC 9110
/// §15.5.6), `Retry-After` on a 429 or a lockout.
pub fn headers(e: &Error) -> Vec<(&'static str, String)> {
    let mut h = Vec::new();
    if let Some(allow) = &e.allow {
        h.push(("allow", allow.clone()));
    }
    if let Some(seconds) = e.retry_after {
        h.push(("retry-after", seconds.to_string()));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_api_md_says() {
        let e = Error::new(Code::Locked).retry_after(900);
        let v: serde_json::Value = serde_json::from_slice(&body(&e)).unwrap();
        assert_eq!(v["error"]["code"], "LOCKED");
        assert_eq!(v["error"]["retry_after"], 900);
        assert_eq!(status(e.code), 429);
        let v: serde_json::Value =
            serde_json::from_slice(&body(&Error::new(Code::NotBound))).unwrap();
        assert_eq!(v["error"]["message"], "未绑定企业");
        let e = Error::method_not_allowed("GET, POST");
        assert_eq!(status(e.code), 405);
        assert_eq!(headers(&e), vec![("allow", "GET, POST".to_string())]);
        assert_eq!(status(Code::MethodNotAllowed), 403);
        let locked = Error::new(Code::Locked).retry_after(900);
        assert_eq!(headers(&locked), vec![("retry-after", "900".to_string())]);
    }
}
