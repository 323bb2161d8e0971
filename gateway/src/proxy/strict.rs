//! The request-line and `Host` rules of RFC 9112 that pingora leaves to its user.
//!
//! Contract: [`check`] runs before anything else looks at a request and refuses (400)
//! an HTTP/1.1 request without `Host`, any request with more than one `Host` or an
//! invalid one, and an absolute-form target that is not `http(s)://authority/…`.
//! [`origin_form`] turns the target a module receives into origin-form (`/path?query`):
//! the form the identity signature covers, whatever form the client used.

use http::uri::{Authority, PathAndQuery};
use http::{Uri, Version};
use pingora::http::RequestHeader;

/// The methods the gateway forwards to modules; `CONNECT` and `TRACE` are refused (405).
pub const SERVED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Why a request is refused; the message is for the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

pub fn check(req: &RequestHeader) -> Result<(), Malformed> {
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Malformed("请求含多个 Host 头"));
    }
    if !valid_target(req) {
        return Err(Malformed("请求目标无效"));
    }
    match host {
        Some(value) => {
            let ok = value.to_str().is_ok_and(valid_host);
            if !ok {
                return Err(Malformed("Host 头无效"));
            }
        }
        // HTTP/2 carries the authority in the request target; HTTP/1.0 may omit it.
        None if req.version == Version::HTTP_11 => return Err(Malformed("请求缺少 Host 头")),
        None => {}
    }
    Ok(())
}

/// Origin-form, or absolute-form `http(s)://host[:port]/…`. pingora keeps an
/// absolute-form target verbatim beside a URI of only its path; an HTTP/2 request's URI
/// has its scheme and authority.
fn valid_target(req: &RequestHeader) -> bool {
    let raw = req.raw_path();
    if raw.starts_with(b"/") && req.uri.scheme().is_none() {
        return true;
    }
    let absolute = if req.uri.scheme().is_some() {
        Some(req.uri.clone())
    } else {
        std::str::from_utf8(raw)
            .ok()
            .and_then(|t| t.parse::<Uri>().ok())
    };
    absolute.is_some_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.authority().is_some_and(|a| valid_host(a.as_str()))
    })
}

/// `uri-host [":" port]` (RFC 9110 §7.2): no user info, a non-empty host, a numeric port.
pub fn valid_host(text: &str) -> bool {
    let Ok(authority) = text.parse::<Authority>() else {
        return false;
    };
    let port_ok = match authority.as_str().rsplit_once(':') {
        // An IPv6 literal's own colons end in `]`.
        Some((_, port)) if !port.ends_with(']') => authority.port_u16().is_some(),
        _ => true,
    };
    !text.contains('@') && !authority.host().is_empty() && port_ok
}

/// The target as origin-form: `/path?query`, never `scheme://authority/path`.
pub fn origin_form(req: &mut RequestHeader) {
    let origin = req.raw_path().starts_with(b"/") && req.uri.scheme().is_none();
    if origin {
        return;
    }
    let path = req
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    req.set_uri(Uri::from(path));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str, version: Version, hosts: &[&str]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        r.set_version(version);
        for h in hosts {
            r.append_header("host", *h).unwrap();
        }
        r
    }

    #[test]
    fn host_rules() {
        let ok = |t: &str, v, h: &[&str]| assert_eq!(check(&req(t, v, h)), Ok(()), "{t} {h:?}");
        let bad = |t: &str, v, h: &[&str]| assert!(check(&req(t, v, h)).is_err(), "{t} {h:?}");
        let v11 = Version::HTTP_11;
        ok("/x", v11, &["gw.example"]);
        ok("/x", v11, &["gw.example:8443"]);
        ok("/x", v11, &["127.0.0.1:8080"]);
        ok("/x", v11, &["[::1]:8080"]);
        ok("/x", v11, &["[::1]"]);
        ok("/x", Version::HTTP_10, &[]);
        ok("http://gw.example/x", v11, &["other"]);
        bad("/x", v11, &[]);
        bad("/x", v11, &["a", "b"]);
        bad("/x", Version::HTTP_10, &["a", "b"]);
        bad("/x", v11, &[""]);
        bad("/x", v11, &["user@gw.example"]);
        bad("/x", v11, &["gw.example:port"]);
        bad("/x", v11, &["gw.example:99999"]);
        bad("/x", v11, &["gw example"]);
        bad("/x", v11, &["gw.example/x"]);
        bad("ftp://gw.example/x", v11, &["gw.example"]);
    }

    #[test]
    fn absolute_form_becomes_origin_form() {
        let mut r = req(
            "http://gw.example:8080/tax/zzs?a=1",
            Version::HTTP_11,
            &["x"],
        );
        assert_eq!(r.uri.path(), "/tax/zzs");
        origin_form(&mut r);
        assert_eq!(r.uri.to_string(), "/tax/zzs?a=1");
        assert_eq!(r.raw_path(), b"/tax/zzs?a=1");
        let mut r = req("/tax/zzs", Version::HTTP_11, &["x"]);
        origin_form(&mut r);
        assert_eq!(r.uri.to_string(), "/tax/zzs");
    }
}
