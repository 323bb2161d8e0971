//! The identity headers sent upstream (SPEC S6): the gateway's session cookie and CSRF
//! header are removed (client-sent `X-Taxgate-*` headers go with the forwarding headers,
//! proxy/forwarded.rs), then the signed set is added.

use crate::auth::session::COOKIE;
use crate::crypto::signing::{self, Identity, IdentitySigner, SignedIdentity};
use pingora::http::RequestHeader;
use pingora::Result;

/// Parsed once (a `&str` name is parsed on every call).
const CSRF_HEADER: http::HeaderName = http::HeaderName::from_static("x-csrf-token");

/// Removes the gateway's session cookie (a module never sees the token) and the CSRF
/// header, keeping every other cookie.
pub fn strip_session(req: &mut RequestHeader) {
    req.remove_header(&CSRF_HEADER);
    let mut kept = String::new();
    let others = req
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.split('=').next() != Some(COOKIE));
    for cookie in others {
        if !kept.is_empty() {
            kept.push_str("; ");
        }
        kept.push_str(cookie);
    }
    req.remove_header(&http::header::COOKIE);
    if !kept.is_empty() {
        let _ = req.insert_header(http::header::COOKIE, kept);
    }
}

/// Adds the identity headers and their signature over this request's method and path.
pub fn add_signed(req: &mut RequestHeader, signer: &IdentitySigner, id: Identity) -> Result<()> {
    let signature = signer.sign(&SignedIdentity {
        identity: id,
        method: req.method.as_str(),
        path: req
            .uri
            .path_and_query()
            .map_or_else(|| req.uri.path(), |p| p.as_str()),
    });
    req.insert_header(signing::HEADER_ENTERPRISE, id.enterprise)?;
    req.insert_header(signing::HEADER_PERSON, id.person)?;
    req.insert_header(signing::HEADER_ROLES, id.roles)?;
    req.insert_header(signing::HEADER_MODULE, id.module)?;
    req.insert_header(signing::HEADER_REQUEST_ID, id.request_id)?;
    req.insert_header(signing::HEADER_TIMESTAMP, id.timestamp.to_string())?;
    req.insert_header(signing::HEADER_SIGNATURE, signature)?;
    Ok(())
}

/// The `taxgate_session` cookie value among the request's cookies.
pub fn session_cookie(req: &RequestHeader) -> Option<&str> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_reserved_headers_and_session_cookie() {
        let mut req = RequestHeader::build("GET", b"/tax/vat", None).unwrap();
        req.insert_header("X-Taxgate-Person", "evil").unwrap();
        req.insert_header("x-TAXGATE-roles", "legal_rep").unwrap();
        req.insert_header("X_Taxgate_Module", "wybs").unwrap();
        req.insert_header("x-other", "kept").unwrap();
        req.insert_header("cookie", "a=1; taxgate_session=secret; b=2")
            .unwrap();
        assert_eq!(session_cookie(&req), Some("secret"));
        super::super::forwarded::strip_client_headers(&mut req);
        strip_session(&mut req);
        assert!(req.headers.get("x-taxgate-person").is_none());
        assert!(req.headers.get("x-taxgate-roles").is_none());
        assert!(req.headers.get("x_taxgate_module").is_none());
        assert_eq!(req.headers.get("x-other").unwrap(), "kept");
        assert_eq!(req.headers.get("cookie").unwrap(), "a=1; b=2");
    }
}
