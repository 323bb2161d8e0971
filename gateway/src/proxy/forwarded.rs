//! Who the client is, and the forwarding headers a module receives.
//!
//! Contract: the client address is the TCP peer, unless the peer is a trusted proxy
//! (`trusted_proxies`): then it is the right-most `X-Forwarded-For` entry that is not
//! itself a trusted proxy (nginx's `real_ip_recursive`), the left-most when all are;
//! a header that does not parse leaves the peer. Per-address limits and the audit use
//! this address. A module never sees forwarding, rewrite or method-override headers as
//! the client sent them ([`strip_client_headers`]; a name is compared with `_` read as
//! `-`, in any case, as some servers and frameworks read it); the gateway then sets
//! `X-Forwarded-For` to the client address and `X-Forwarded-Proto` itself.

use crate::config::TrustedProxies;
use http::HeaderMap;
use pingora::http::RequestHeader;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

/// Prefixes of header names a client may not send upstream (after [`canonical`]).
const STRIPPED_PREFIXES: &[&str] = &[crate::crypto::signing::RESERVED_PREFIX, "x-forwarded-"];

/// Header names a client may not send upstream (after [`canonical`]).
const STRIPPED_NAMES: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// A header name as servers that fold `_` into `-` read it (names are lower case).
pub fn canonical(name: &str) -> Cow<'_, str> {
    if name.contains('_') {
        Cow::Owned(name.replace('_', "-"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Whether a client-sent header of this name is removed before forwarding.
pub fn is_stripped(name: &str) -> bool {
    let name = canonical(name);
    STRIPPED_NAMES.contains(&name.as_ref()) || STRIPPED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Removes every identity, forwarding, rewrite and method-override header.
pub fn strip_client_headers(req: &mut RequestHeader) {
    let names: Vec<http::HeaderName> = req
        .headers
        .keys()
        .filter(|name| is_stripped(name.as_str()))
        .cloned()
        .collect();
    for name in names {
        req.remove_header(&name);
    }
}

/// Sets the forwarding headers the module receives (after [`strip_client_headers`]).
pub fn set_forwarding(req: &mut RequestHeader, client: Option<IpAddr>, proto: &'static str) {
    if let Some(ip) = client {
        let _ = req.insert_header("x-forwarded-for", ip_text(ip));
    }
    let _ = req.insert_header("x-forwarded-proto", proto);
}

/// An address as `Display` writes it; IPv4, the usual client, without the formatting
/// machinery (a quarter of this module's cost per proxied request in the profile).
pub fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// The client's address: see the module contract.
pub fn client_addr(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return Some(peer);
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return Some(peer);
        };
        for entry in text.split(',') {
            match parse_hop(entry.trim()) {
                Some(ip) => hops.push(ip),
                None => return Some(peer),
            }
        }
    }
    let first_untrusted = hops.iter().rev().find(|ip| !trusted.contains(**ip));
    Some(*first_untrusted.or(hops.first()).unwrap_or(&peer))
}

/// The scheme the client used: `https` on a TLS listener; behind a trusted proxy, what
/// its `X-Forwarded-Proto` says when that is `http` or `https`.
pub fn client_proto(tls: bool, peer_trusted: bool, headers: &HeaderMap) -> &'static str {
    if tls {
        return "https";
    }
    let sent = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok());
    match sent {
        Some(p) if peer_trusted && p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`,
/// `[::1]:5`), as some load balancers write it.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn ip_text_is_what_display_writes() {
        for a in [0u8, 1, 9, 10, 99, 100, 199, 255] {
            for b in [0u8, 7, 42, 255] {
                let v4 = IpAddr::from([a, b, 255 - a, b / 2]);
                assert_eq!(ip_text(v4), v4.to_string());
            }
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_text(v6), "2001:db8::1");
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_sends() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let h = headers(&["1.2.3.4"]);
        assert_eq!(client_addr(ip("9.9.9.9"), &h, &trusted), ip("9.9.9.9"));
        let none = TrustedProxies::default();
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &none), ip("10.0.0.1"));
        assert_eq!(client_addr(None, &h, &trusted), None);
    }

    #[test]
    fn trusted_peer_names_the_rightmost_untrusted_hop() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let peer = ip("10.0.0.1");
        // The client forged the first entry; the load balancers appended the rest.
        let h = headers(&["6.6.6.6, 1.2.3.4", "10.0.0.2"]);
        assert_eq!(client_addr(peer, &h, &trusted), ip("1.2.3.4"));
        assert_eq!(
            client_addr(peer, &headers(&["[2001:db8::1]:443"]), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_addr(peer, &headers(&["1.2.3.4:1234"]), &trusted),
            ip("1.2.3.4")
        );
        // Every hop internal: the left-most is the client.
        let h = headers(&["10.1.1.1, 10.2.2.2"]);
        assert_eq!(client_addr(peer, &h, &trusted), ip("10.1.1.1"));
        // No header, or one that does not parse: the peer.
        assert_eq!(client_addr(peer, &headers(&[]), &trusted), peer);
        let h = headers(&["1.2.3.4, evil"]);
        assert_eq!(client_addr(peer, &h, &trusted), peer);
    }

    #[test]
    fn stripped_names_any_case_and_underscore() {
        for name in [
            "x-taxgate-person",
            "x_taxgate_person",
            "x-taxgate_roles",
            "x-forwarded-for",
            "x_forwarded_host",
            "forwarded",
            "x-real-ip",
            "x_real_ip",
            "x-original-url",
            "x-rewrite-url",
            "x-http-method-override",
            "x-http-method",
            "x_method_override",
        ] {
            assert!(is_stripped(name), "{name}");
        }
        for name in [
            "x-taxgatex",
            "x-csrf",
            "user-agent",
            "x-request-id",
            "cookie",
        ] {
            assert!(!is_stripped(name), "{name}");
        }
    }

    #[test]
    fn proto_is_https_on_tls_or_from_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(client_proto(true, false, &HeaderMap::new()), "https");
        assert_eq!(client_proto(false, true, &h), "https");
        assert_eq!(client_proto(false, false, &h), "http");
    }
}
