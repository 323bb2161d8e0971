//! Wire helpers shared by the JSON handlers: the request as the API sees it, the
//! response it gives, bounded text fields and JSON parsing that turns every malformed
//! body into `INVALID_INPUT` (SPEC S11).

use crate::error::{Code, Error};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// A request to `/api/v1`, independent of the HTTP server that carried it.
pub struct ApiRequest {
    pub method: http::Method,
    /// The path below `/api/v1`, e.g. `/login/enterprise`.
    pub path: String,
    pub query: Option<String>,
    /// The `taxgate_session` cookie, if sent.
    pub session_token: Option<String>,
    /// The `X-CSRF-Token` header, if sent.
    pub csrf_token: Option<String>,
    pub client_ip: String,
    pub user_agent: String,
    pub body: Bytes,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("client_ip", &self.client_ip)
            .finish_non_exhaustive()
    }
}

impl ApiRequest {
    /// Parses the body as `T`; any syntax, type, unknown-field or length error is
    /// `INVALID_INPUT` with serde's description of where it is.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::new(Code::InvalidInput).with_message(format!("请求参数有误：{e}")))
    }

    /// One query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer of a handler.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub set_cookie: Option<String>,
    /// `Allow` and `Retry-After` of an error answer.
    pub headers: Vec<(&'static str, String)>,
}

impl ApiResponse {
    pub fn json<T: Serialize>(status: u16, value: &T) -> ApiResponse {
        ApiResponse {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
            set_cookie: None,
            headers: Vec::new(),
        }
    }

    pub fn ok<T: Serialize>(value: &T) -> ApiResponse {
        ApiResponse::json(200, value)
    }

    pub fn no_content() -> ApiResponse {
        ApiResponse {
            status: 204,
            body: Vec::new(),
            set_cookie: None,
            headers: Vec::new(),
        }
    }

    pub fn error(e: &Error) -> ApiResponse {
        ApiResponse::error_with_status(super::error::status(e.code), e)
    }

    /// An error answered with a status of the edge's choosing (502 for a module down).
    pub fn error_with_status(status: u16, e: &Error) -> ApiResponse {
        ApiResponse {
            status,
            body: super::error::body(e),
            set_cookie: None,
            headers: super::error::headers(e),
        }
    }

    pub fn with_cookie(mut self, cookie: String) -> ApiResponse {
        self.set_cookie = Some(cookie);
        self
    }
}

/// A string field of at most `MAX` characters; longer input is refused while parsing.
#[derive(Clone, PartialEq, Eq)]
pub struct Text<const MAX: usize>(pub String);

impl<const MAX: usize> Text<MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Never printed: text fields carry passwords and codes.
impl<const MAX: usize> std::fmt::Debug for Text<MAX> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Text<{MAX}>(..)")
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.chars().count() > MAX {
            return Err(serde::de::Error::custom(format!(
                "text longer than {MAX} characters"
            )));
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(serde::de::Error::custom(
                "control characters are not allowed",
            ));
        }
        Ok(Text(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: Text<4>,
    }

    fn req(body: &str) -> ApiRequest {
        ApiRequest {
            method: http::Method::POST,
            path: "/x".into(),
            query: Some("uscc=91%2041&ticket=abc".into()),
            session_token: None,
            csrf_token: None,
            client_ip: "127.0.0.1".into(),
            user_agent: String::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn bad_bodies_are_invalid_input() {
        for body in [
            "",
            "{",
            "[]",
            r#"{"a":1}"#,
            r#"{"a":"12345"}"#,
            r#"{"a":"1","b":2}"#,
        ] {
            let e = req(body).json::<T>().unwrap_err();
            assert_eq!(e.code, Code::InvalidInput, "{body}");
        }
        assert!(req(r#"{"a":"张三"}"#).json::<T>().is_ok());
    }

    #[test]
    fn query_params_are_decoded() {
        let r = req("");
        assert_eq!(r.query_param("uscc").as_deref(), Some("91 41"));
        assert_eq!(r.query_param("ticket").as_deref(), Some("abc"));
        assert_eq!(r.query_param("nope"), None);
    }
}
