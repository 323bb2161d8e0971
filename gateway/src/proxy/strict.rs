//! The request-line and `Host` rules of RFC 9112 that pingora leaves to its user.
//!
//! Contract: [`check`] runs before anything else looks at a request and refuses (400)
//! an HTTP/1.1 request without `Host`, any request with more than one `Host` or an
//! invalid one, an absolute-form target that is not `http(s)://authority/…`, and a
//! `Connection` header that pingora would refuse on the way to a module (a header the
//! gateway sets named hop-by-hop, an option that is not a token, too many options),
//! each with a message that says what is wrong.
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
    check_connection(req)?;
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

/// The most `Connection` options pingora forwards (it refuses a tenth).
const MAX_CONNECTION_OPTIONS: usize = 9;

/// The `Connection` options (RFC 9110 §7.6.1) pingora's proxy refuses, before it
/// removes the headers they name: the gateway refuses them first, saying why.
fn check_connection(req: &RequestHeader) -> Result<(), Malformed> {
    let options = req
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|option| !option.is_empty());
    for (n, option) in options.enumerate() {
        if n == MAX_CONNECTION_OPTIONS {
            return Err(Malformed("Connection 头列出的选项过多（至多 9 个）"));
        }
        if !option.iter().all(|b| is_tchar(*b)) {
            return Err(Malformed("Connection 头含无效的选项（须为头名称）"));
        }
        let protected = match option.to_ascii_lowercase().as_slice() {
            b"host" => "Connection 头不得列出 Host 头",
            b"x-forwarded-for" => "Connection 头不得列出 X-Forwarded-For 头（由网关设置）",
            b"x-forwarded-host" => "Connection 头不得列出 X-Forwarded-Host 头",
            b"x-forwarded-proto" => "Connection 头不得列出 X-Forwarded-Proto 头（由网关设置）",
            _ => continue,
        };
        return Err(Malformed(protected));
    }
    Ok(())
}

/// A byte of an HTTP `token` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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
    fn connection_may_not_name_what_the_gateway_sets() {
        let with = |value: &str| {
            let mut r = req("/x", Version::HTTP_11, &["gw"]);
            r.append_header("connection", value).unwrap();
            check(&r)
        };
        assert_eq!(with("keep-alive"), Ok(()));
        assert_eq!(with("close, X-Custom-Hop"), Ok(()));
        assert_eq!(with("a,b,c,d,e,f,g,h,i"), Ok(()));
        let refused = |value: &str, says: &str| {
            let Err(Malformed(message)) = with(value) else {
                panic!("{value} accepted");
            };
            assert!(message.contains(says), "{value}: {message}");
        };
        refused("X-Forwarded-For", "X-Forwarded-For");
        refused("keep-alive, x-forwarded-for", "X-Forwarded-For");
        refused("X-FORWARDED-PROTO", "X-Forwarded-Proto");
        refused("x-forwarded-host", "X-Forwarded-Host");
        refused("Host", "Host");
        refused("\"X-Forwarded-For\"", "无效");
        refused(":authority", "无效");
        refused("a,b,c,d,e,f,g,h,i,j", "过多");
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
