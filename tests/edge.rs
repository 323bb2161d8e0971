//! The internet-facing edge (issues 11, 18): what reaches a module of the headers a
//! client sends, trusted proxies, strict HTTP/1.1, slow clients, the per-address
//! connection cap (TLS handshakes included), TLS on the public listener and to
//! upstreams. Raw sockets where a well-behaved client library would not send the
//! request.

use crate::harness::fx::*;
use crate::harness::tls::{self, TestPki};
use crate::harness::{Browser, Gateway, GatewayOptions};
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` on a new connection; returns what came back until the server closed
/// the connection or `wait` passed.
async fn raw(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    read_until_closed(&mut s, wait).await.0
}

/// Reads until the peer closes or `wait` passes: (text, whether it closed).
async fn read_until_closed(s: &mut TcpStream, wait: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

/// Reads one response with a `content-length` from a kept-alive connection.
async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed after {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

async fn logged_in(gw: &Gateway) -> Browser {
    let mut b = Browser::new(gw);
    b.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    b
}

#[tokio::test]
async fn client_identity_and_forwarding_headers_never_reach_a_module() {
    let gw = Gateway::start().await;
    let b = logged_in(&gw).await;
    let sent = [
        ("X_Taxgate_Person", "evil"),
        ("x_taxgate_roles", "legal_rep"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("X_Forwarded_For", "6.6.6.7"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Prefix", "/admin"),
        ("Forwarded", "for=6.6.6.6;proto=https"),
        ("X-Real-IP", "6.6.6.6"),
        ("X_Real_IP", "6.6.6.6"),
        ("X-Original-URL", "/wdxx/nsrxx"),
        ("X-Rewrite-URL", "/wdxx/nsrxx"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-HTTP-Method", "DELETE"),
        ("X-Method-Override", "DELETE"),
    ];
    let v = b
        .send("GET", "/tax/zzs/x", &sent, None)
        .await
        .expect(200)
        .json();
    assert_eq!(v["signature_valid"], true);
    assert_eq!(v["method"], "GET");
    let seen = gw.module("wybs.sfsb.zzs").received().pop().unwrap();
    assert_eq!(seen.path, "/tax/zzs/x");
    assert_eq!(seen.header("x-taxgate-roles"), Some("tax_officer"));
    assert_ne!(seen.header("x-taxgate-person"), Some("evil"));
    let forbidden = |name: &str| {
        let n = name.replace('_', "-");
        n.starts_with("x-forwarded-") && n != "x-forwarded-for" && n != "x-forwarded-proto"
            || [
                "forwarded",
                "x-real-ip",
                "x-original-url",
                "x-rewrite-url",
                "x-http-method-override",
                "x-http-method",
                "x-method-override",
            ]
            .contains(&n.as_str())
            || name.contains('_')
    };
    let leaked: Vec<_> = seen
        .all_headers
        .iter()
        .filter(|(n, _)| forbidden(n))
        .collect();
    assert!(leaked.is_empty(), "reached the module: {leaked:?}");
    // Set by the gateway, once each: the TCP peer and the scheme it was reached by.
    let values = |name: &str| {
        seen.all_headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(values("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(values("x-forwarded-proto"), vec!["http"]);
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_for_limits_audit_and_modules() {
    let trusting = Gateway::start_with(GatewayOptions {
        extra_yaml:
            "test_clock: true\ntrusted_proxies: [127.0.0.0/8]\nlimits: {ip_requests_per_minute: 3}"
                .into(),
        ..Default::default()
    })
    .await;
    // One minute window for the whole test (no wall-clock minute can turn over).
    trusting.freeze_clock().await;
    let b = Browser::new(&trusting);
    let captcha = |xff: &'static str| {
        let b = &b;
        async move {
            b.send("GET", "/api/v1/captcha", &[("x-forwarded-for", xff)], None)
                .await
        }
    };
    // The client forged the first hop; the load balancer appended the real one.
    for _ in 0..3 {
        captcha("6.6.6.6, 203.0.113.7").await.expect(200);
    }
    captcha("203.0.113.7")
        .await
        .expect_error(429, "RATE_LIMITED");
    // Another client behind the same balancer has its own budget.
    captcha("203.0.113.8").await.expect(200);

    // Without trust, the header changes nothing: every request is 127.0.0.1's.
    let plain = Gateway::start_with(GatewayOptions {
        extra_yaml: "test_clock: true\nlimits: {ip_requests_per_minute: 3}".into(),
        ..Default::default()
    })
    .await;
    plain.freeze_clock().await;
    let b = Browser::new(&plain);
    for xff in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        b.send("GET", "/api/v1/captcha", &[("x-forwarded-for", xff)], None)
            .await
            .expect(200);
    }
    b.send(
        "GET",
        "/api/v1/captcha",
        &[("x-forwarded-for", "4.4.4.4")],
        None,
    )
    .await
    .expect_error(429, "RATE_LIMITED");

    // A module behind the trusting gateway sees the client, not the balancer.
    let trusting_big = Gateway::start_with(GatewayOptions {
        extra_yaml: "trusted_proxies: [\"127.0.0.1\"]".into(),
        ..Default::default()
    })
    .await;
    let b = logged_in(&trusting_big).await;
    b.send(
        "GET",
        "/tax/zzs/x",
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ],
        None,
    )
    .await
    .expect(200);
    let seen = trusting_big
        .module("wybs.sfsb.zzs")
        .received()
        .pop()
        .unwrap();
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.9"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
}

#[tokio::test]
async fn host_must_be_present_once_and_valid() {
    let gw = Gateway::start().await;
    let wait = Duration::from_secs(5);
    let bad = [
        "GET /api/v1/modules HTTP/1.1\r\nConnection: close\r\n\r\n".to_string(),
        "GET /api/v1/modules HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n".into(),
        "GET /api/v1/modules HTTP/1.1\r\nHost: user@gw\r\nConnection: close\r\n\r\n".into(),
        "GET /api/v1/modules HTTP/1.1\r\nHost: gw:port\r\nConnection: close\r\n\r\n".into(),
        "GET /api/v1/modules HTTP/1.1\r\nHost: gw/x\r\nConnection: close\r\n\r\n".into(),
        "GET /api/v1/modules HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n".into(),
        "GET ftp://gw/api/v1/modules HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".into(),
    ];
    // Two Host lines and user info pingora refuses itself (400, empty body); the rest
    // the gateway does (400 INVALID_INPUT, field `request`).
    for request in &bad {
        let answer = raw(gw.addr, request.as_bytes(), wait).await;
        assert!(
            status_line(&answer).starts_with("HTTP/1.1 400"),
            "{request:?} → {answer}"
        );
        let by_pingora = request.contains("Host: b") || request.contains('@');
        assert!(by_pingora || answer.contains("INVALID_INPUT"), "{answer}");
    }
    // HTTP/1.0 may omit Host; a valid one is served.
    for request in [
        "GET /api/v1/modules HTTP/1.0\r\n\r\n",
        "GET /api/v1/modules HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
    ] {
        let answer = raw(gw.addr, request.as_bytes(), wait).await;
        assert!(
            status_line(&answer).contains(" 200"),
            "{request:?} → {answer}"
        );
    }
}

#[tokio::test]
async fn an_absolute_form_target_reaches_the_module_in_origin_form() {
    let gw = Gateway::start().await;
    let b = logged_in(&gw).await;
    let cookie = b.cookie.clone().unwrap();
    // pingora itself refuses (400) an absolute-form target whose authority is not the
    // Host; one that matches is served.
    let request = format!(
        "GET http://{0}/tax/zzs/x?y=1 HTTP/1.1\r\nHost: {0}\r\n\
         Cookie: taxgate_session={cookie}\r\nConnection: close\r\n\r\n",
        gw.addr
    );
    let answer = raw(gw.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(status_line(&answer).contains(" 200"), "{answer}");
    let seen = gw.module("wybs.sfsb.zzs").received().pop().unwrap();
    assert_eq!(seen.target, "/tax/zzs/x?y=1");
    assert!(
        seen.signature_valid,
        "the signature covers the origin-form target"
    );
    assert_eq!(seen.header("host"), Some(gw.addr.to_string().as_str()));
}

#[tokio::test]
async fn a_malformed_chunked_body_is_answered_400_not_dropped() {
    let gw = Gateway::start().await;
    let b = logged_in(&gw).await;
    let (cookie, csrf) = (b.cookie.clone().unwrap(), b.csrf.clone().unwrap());
    let bodies = ["zz\r\n{}\r\n0\r\n\r\n", "2\r\n{}XX0\r\n\r\n"];
    for body in bodies {
        for path in ["/api/v1/login/enterprise", "/tax/zzs/upload"] {
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\
                 Content-Type: application/json\r\nCookie: taxgate_session={cookie}\r\n\
                 X-CSRF-Token: {csrf}\r\n\r\n{body}"
            );
            let answer = raw(gw.addr, request.as_bytes(), Duration::from_secs(5)).await;
            assert!(
                status_line(&answer).starts_with("HTTP/1.1 400"),
                "{path} {body:?} → {answer}"
            );
            assert!(answer.contains("INVALID_INPUT"), "{answer}");
        }
    }
}

#[tokio::test]
async fn every_405_names_the_allowed_methods() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    for (method, path, allow) in [
        ("DELETE", "/api/v1/captcha", "GET, HEAD"),
        ("TRACE", "/api/v1/captcha", "GET, HEAD"),
        ("PUT", "/api/v1/login/enterprise", "POST"),
        ("PATCH", "/api/v1/enterprise/users", "GET, HEAD, POST"),
        ("POST", "/", "GET, HEAD"),
        ("GET", "/api/v1/enterprise/users/x/grants", "PUT"),
    ] {
        let r = b
            .send(method, path, &[], None)
            .await
            .expect_error(405, "HTTP_METHOD_NOT_ALLOWED");
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
    }
    // HEAD wherever GET: the headers without the body.
    let head = b
        .send("HEAD", "/api/v1/modules", &[], None)
        .await
        .expect(200);
    let get = b.get("/api/v1/modules").await.expect(200);
    assert!(head.body.is_empty());
    assert_eq!(head.headers["content-length"], get.body.len().to_string());
    // No tunnels, and no tracing through to a module.
    let all = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
    for request in [
        "CONNECT gw:443 HTTP/1.1\r\nHost: gw:443\r\n\r\n",
        "TRACE /tax/zzs HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    ] {
        let answer = raw(gw.addr, request.as_bytes(), Duration::from_secs(5)).await;
        assert!(status_line(&answer).starts_with("HTTP/1.1 405"), "{answer}");
        assert!(answer.contains(&format!("allow: {all}")), "{answer}");
    }
    assert_eq!(gw.module("wybs.sfsb.zzs").hits(), 0);
    // The operators' listener too.
    let answer = raw(
        gw.admin,
        b"GET /admin/policies/reload HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(status_line(&answer).starts_with("HTTP/1.1 405"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("allow: post"),
        "{answer}"
    );
}

#[tokio::test]
async fn slow_headers_are_cut_at_the_deadline_and_idle_keepalive_is_not() {
    let gw = Gateway::start_with(GatewayOptions {
        extra_yaml: "limits: {header_read_seconds: 1}".into(),
        ..Default::default()
    })
    .await;
    // Connects and says nothing.
    let started = Instant::now();
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "a silent connection is cut");
    let silent_for = started.elapsed();
    assert!(silent_for < Duration::from_secs(3), "{silent_for:?}");

    // Slowloris: a byte of headers every 200 ms, never the blank line.
    let started = Instant::now();
    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /api/v1/modules HTTP/1.1\r\nHost: gw\r\n")
        .await
        .unwrap();
    let mut cut = false;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if slow.write_all(b"X").await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await
        {
            cut = true;
            break;
        }
    }
    assert!(cut, "a slowloris connection is cut");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A kept-alive connection idle longer than the deadline still serves its next
    // request: the clock starts with a request's first byte.
    let mut kept = TcpStream::connect(gw.addr).await.unwrap();
    let request = b"GET /api/v1/modules HTTP/1.1\r\nHost: gw\r\n\r\n";
    for _ in 0..2 {
        kept.write_all(request).await.unwrap();
        let answer = read_response(&mut kept).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
}

#[tokio::test]
async fn a_trickled_body_is_cut_at_its_deadline() {
    let gw = Gateway::start_with(GatewayOptions {
        extra_yaml: "limits: {body_read_seconds: 1}".into(),
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"POST /api/v1/login/enterprise HTTP/1.1\r\nHost: gw\r\n\
          Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut answer = String::new();
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = s.write_all(b" ").await;
        let (text, closed) = read_until_closed(&mut s, Duration::from_millis(1)).await;
        answer.push_str(&text);
        if closed {
            break;
        }
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "still open after {took:?}");
    assert!(!answer.contains(" 200 "), "{answer}");
}

#[tokio::test]
async fn one_address_holds_at_most_its_connections() {
    let gw = Gateway::start_with(GatewayOptions {
        extra_yaml: "limits: {connections_per_ip: 3, header_read_seconds: 30}".into(),
        ..Default::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    // The kernel accepts the fourth; the gateway closes it unanswered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = raw(
        gw.addr,
        b"GET /api/v1/modules HTTP/1.1\r\nHost: gw\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(answer, "", "over the cap: closed without an answer");
    // A held connection serves request after request (kept alive, it is counted once)...
    for _ in 0..3 {
        held[0]
            .write_all(b"GET /api/v1/modules HTTP/1.1\r\nHost: gw\r\n\r\n")
            .await
            .unwrap();
        let answer = read_response(&mut held[0]).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    // ...and one given back makes room.
    held[0]
        .write_all(b"GET /api/v1/modules HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_until_closed(&mut held[0], Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    held.remove(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = raw(
        gw.addr,
        b"GET /api/v1/modules HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

async fn tls_gateway() -> Gateway {
    Gateway::start_with(GatewayOptions {
        tls: true,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn tls_serves_http1_and_http2_with_hsts() {
    let gw = tls_gateway().await;
    let pki = gw.pki.clone().unwrap();
    let both = [&rustls::version::TLS13, &rustls::version::TLS12];
    let h1 = tls::get(
        gw.addr,
        "/api/v1/modules",
        tls::client_config(&pki.ca_file, &[b"http/1.1"], &both),
    )
    .await;
    assert_eq!(h1.status, 200);
    assert_eq!(h1.version, http::Version::HTTP_11);
    assert_eq!(h1.tls_version.as_deref(), Some("TLSv1_3"));
    assert_eq!(h1.headers["strict-transport-security"], "max-age=31536000");

    let h2 = tls::get(
        gw.addr,
        "/api/v1/modules",
        tls::client_config(&pki.ca_file, &[b"h2", b"http/1.1"], &both),
    )
    .await;
    assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(h2.version, http::Version::HTTP_2);
    assert_eq!(h2.status, 200);
    assert_eq!(h2.body, h1.body);
    assert_eq!(h2.headers["strict-transport-security"], "max-age=31536000");

    let only12 = tls::client_config(&pki.ca_file, &[], &[&rustls::version::TLS12]);
    let r = tls::get(gw.addr, "/api/v1/modules", only12).await;
    assert_eq!((r.status, r.tls_version.as_deref()), (200, Some("TLSv1_2")));

    // Plain HTTP on the TLS port is not served.
    let answer = raw(
        gw.addr,
        b"GET /api/v1/modules HTTP/1.1\r\nHost: gw\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(!answer.contains("200"), "{answer}");
}

#[tokio::test]
async fn over_tls_the_session_cookie_is_secure_and_modules_see_https() {
    let gw = tls_gateway().await;
    let mut b = Browser::new(&gw);
    let r = b.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let r = b.get("/tax/zzs/x").await.expect(200);
    assert_eq!(r.headers["strict-transport-security"], "max-age=31536000");
    let seen = gw.module("wybs.sfsb.zzs").received().pop().unwrap();
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert!(seen.signature_valid);

    // The same session over HTTP/2: the module gets an HTTP/1.1 request with a Host.
    let pki = gw.pki.clone().unwrap();
    let cookie = format!("taxgate_session={}", b.cookie.clone().unwrap());
    let h2 = tls::client_config(&pki.ca_file, &[b"h2"], &[&rustls::version::TLS13]);
    let r = tls::get_with(gw.addr, "/tax/zzs/h2?q=1", &[("cookie", &cookie)], h2).await;
    assert_eq!((r.version, r.status), (http::Version::HTTP_2, 200));
    let seen = gw.module("wybs.sfsb.zzs").received().pop().unwrap();
    assert_eq!(seen.target, "/tax/zzs/h2?q=1");
    assert!(seen.signature_valid);
    assert_eq!(
        seen.header("host"),
        Some(format!("localhost:{}", gw.addr.port()).as_str())
    );
}

#[tokio::test]
async fn a_new_certificate_is_served_without_a_restart() {
    let gw = tls_gateway().await;
    let pki = gw.pki.clone().unwrap();
    let config = || tls::client_config(&pki.ca_file, &[], &[&rustls::version::TLS13]);
    let before = tls::get(gw.addr, "/api/v1/modules", config())
        .await
        .peer_cert;
    let renewed = pki.issue("renewed");
    assert_ne!(before, renewed);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = tls::get(gw.addr, "/api/v1/modules", config()).await;
        assert_eq!(now.status, 200);
        if now.peer_cert == renewed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Files replaced without a change the poll sees (same lengths and mtimes): SIGHUP
    // puts them in force.
    let signalled = pki.issue_unnoticeably("signals");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let unnoticed = tls::get(gw.addr, "/api/v1/modules", config())
        .await
        .peer_cert;
    assert_eq!(unnoticed, renewed, "the poll cannot have seen the change");
    gw.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tls::get(gw.addr, "/api/v1/modules", config())
        .await
        .peer_cert
        != signalled
    {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let renewed = signalled;

    // A key that is not the certificate's is refused; the pair in force stays.
    std::fs::write(
        &pki.key_file,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = tls::get(gw.addr, "/api/v1/modules", config()).await;
    assert_eq!((still.status, still.peer_cert), (200, renewed));
    assert!(
        gw.stderr().contains("TLS certificate not reloaded"),
        "{}",
        gw.stderr()
    );
}

#[tokio::test]
async fn the_plain_listener_only_redirects_to_https() {
    let gw = tls_gateway().await;
    let redirect = gw.redirect.unwrap();
    let request = format!(
        "POST /tax/zzs/x?a=1 HTTP/1.1\r\nHost: localhost:{}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n",
        redirect.port()
    );
    let answer = raw(redirect, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(status_line(&answer).starts_with("HTTP/1.1 308"), "{answer}");
    let location = format!("https://localhost:{}/tax/zzs/x?a=1", gw.addr.port());
    assert!(
        answer
            .to_ascii_lowercase()
            .contains(&format!("location: {location}")),
        "{answer}"
    );
    // Refused by the gateway's own check, or already by pingora's parser (user info,
    // two Host lines): answered 400 either way, not closed unanswered.
    for request in [
        "GET / HTTP/1.1\r\nHost: gw:port\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: user@evil.example\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    ] {
        let answer = raw(redirect, request.as_bytes(), Duration::from_secs(5)).await;
        assert!(
            status_line(&answer).starts_with("HTTP/1.1 400"),
            "{request:?} → {answer:?}"
        );
        assert!(
            !answer.to_ascii_lowercase().contains("location"),
            "{answer}"
        );
    }
    assert_eq!(gw.module("wybs.sfsb.zzs").hits(), 0);
}

/// A TLS front for a plain module: terminates with `pki`'s certificate, forwards bytes.
async fn tls_front(pki: &TestPki, target: SocketAddr) -> SocketAddr {
    pingora::tls::install_default_crypto_provider();
    let (chain, key) = pingora::tls::load_certs_and_key_files(
        pki.cert_file.to_str().unwrap(),
        pki.key_file.to_str().unwrap(),
    )
    .unwrap()
    .unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = pingora::tls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut plain) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_https_upstream_is_verified_against_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let key = hex::decode(crate::harness::gateway::KEY_HEX).unwrap();
    let module = taxgate::demo::upstream::spawn("wybs.sfsb.zzs", &key)
        .await
        .unwrap();
    let front = tls_front(&pki, module.addr).await;
    let upstream = format!("https://localhost:{}", front.port());

    let trusting = Gateway::start_with(GatewayOptions {
        upstreams: vec![("wybs.sfsb.zzs", upstream.clone())],
        extra_yaml: format!("upstream_ca_file: {}", pki.ca_file.display()),
        ..Default::default()
    })
    .await;
    let b = logged_in(&trusting).await;
    let v = b.get("/tax/zzs/x").await.expect(200).json();
    assert_eq!(v["signature_valid"], true);
    assert_eq!(module.hits(), 1);

    // Without the CA, the module's certificate is not trusted: 502, nothing forwarded.
    let doubting = Gateway::start_with(GatewayOptions {
        upstreams: vec![("wybs.sfsb.zzs", upstream)],
        ..Default::default()
    })
    .await;
    let b = logged_in(&doubting).await;
    b.get("/tax/zzs/x").await.expect_error(502, "UNAVAILABLE");
    assert_eq!(module.hits(), 1);
}

#[tokio::test]
async fn connection_naming_a_header_the_gateway_sets_is_refused_saying_so() {
    let gw = Gateway::start().await;
    let b = logged_in(&gw).await;
    let cookie = b.cookie.clone().unwrap();
    let cases = [
        ("X-Forwarded-For", "X-Forwarded-For"),
        ("keep-alive, x-forwarded-proto", "X-Forwarded-Proto"),
        ("X-Forwarded-Host", "X-Forwarded-Host"),
        ("Host", "Host"),
        ("\"X-Forwarded-For\"", "无效"),
        ("a, b, c, d, e, f, g, h, i, j", "过多"),
    ];
    for (value, says) in cases {
        for path in ["/tax/zzs/x", "/api/v1/modules"] {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: {value}\r\n\
                 X-Forwarded-For: 6.6.6.6\r\nCookie: taxgate_session={cookie}\r\n\r\n"
            );
            let answer = raw(gw.addr, request.as_bytes(), Duration::from_secs(5)).await;
            assert!(
                status_line(&answer).starts_with("HTTP/1.1 400"),
                "{value} {path} → {answer}"
            );
            assert!(answer.contains("INVALID_INPUT"), "{answer}");
            assert!(
                answer.contains("Connection 头"),
                "{value} {path} → {answer}"
            );
            assert!(answer.contains(says), "{value} {path} → {answer}");
        }
    }
    assert_eq!(gw.module("wybs.sfsb.zzs").hits(), 0, "nothing forwarded");

    // An ordinary hop-by-hop option: served, and the header it names is not forwarded.
    let request = format!(
        "GET /tax/zzs/x HTTP/1.1\r\nHost: gw\r\nConnection: close, X-Private-Hop\r\n\
         X-Private-Hop: secret\r\nCookie: taxgate_session={cookie}\r\n\r\n"
    );
    let answer = raw(gw.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(status_line(&answer).contains(" 200"), "{answer}");
    let seen = gw.module("wybs.sfsb.zzs").received().pop().unwrap();
    assert_eq!(seen.header("x-private-hop"), None);
    assert!(seen.signature_valid);
}

#[tokio::test]
async fn over_tls_every_answer_carries_hsts_once_also_pingoras_own_400() {
    let gw = tls_gateway().await;
    let pki = gw.pki.clone().unwrap();
    let h1 = || tls::client_config(&pki.ca_file, &[b"http/1.1"], &[&rustls::version::TLS13]);
    let hsts = |answer: &str| {
        answer
            .to_ascii_lowercase()
            .matches("strict-transport-security: max-age=31536000\r\n")
            .count()
    };
    // Requests pingora's parser refuses itself (its 400, not the gateway's JSON).
    for request in [
        "GET /api/v1/modules HTTP/1.1\r\nHost: user@evil.example\r\n\r\n",
        "GET /api/v1/modules HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        let answer = tls::raw(gw.addr, request.as_bytes(), h1()).await;
        assert!(
            status_line(&answer).starts_with("HTTP/1.1 400"),
            "{request:?} → {answer:?}"
        );
        assert!(!answer.contains("INVALID_INPUT"), "{answer}");
        assert_eq!(hsts(&answer), 1, "{answer}");
    }
    // The gateway's own answers and a module's: once, not twice.
    let b = logged_in(&gw).await;
    let cookie = b.cookie.clone().unwrap();
    for request in [
        "GET /api/v1/modules HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".to_string(),
        "GET /api/v1/modules HTTP/1.1\r\nHost: gw:port\r\nConnection: close\r\n\r\n".into(),
        format!(
            "GET /tax/zzs/x HTTP/1.1\r\nHost: gw\r\nCookie: taxgate_session={cookie}\r\n\
             Connection: close\r\n\r\n"
        ),
    ] {
        let answer = tls::raw(gw.addr, request.as_bytes(), h1()).await;
        assert!(status_line(&answer).starts_with("HTTP/1.1 "), "{answer:?}");
        assert_eq!(hsts(&answer), 1, "{request:?} → {answer}");
    }
}

type H2Send = hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>;

/// An h2 request for `path` on `send`.
async fn h2_get(send: &mut H2Send, port: u16, path: &str) -> u16 {
    let req = hyper::Request::get(format!("https://localhost:{port}{path}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send.send_request(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn an_http2_connection_that_opens_no_stream_is_cut_at_the_header_deadline() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let gw = Gateway::start_with(GatewayOptions {
        tls: true,
        extra_yaml: "limits: {header_read_seconds: 1}".into(),
        ..Default::default()
    })
    .await;
    let pki = gw.pki.clone().unwrap();
    let h2 = || tls::client_config(&pki.ca_file, &[b"h2"], &[&rustls::version::TLS13]);

    // TLS, the h2 preface and settings, then nothing: cut about 1 s from accept.
    let started = Instant::now();
    let stream = tls::connect(Ipv4Addr::LOCALHOST, gw.addr, h2()).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (_send, conn): (H2Send, _) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
    let took = started.elapsed();
    assert!(
        ended.is_ok(),
        "an h2 connection without a stream still open after 5 s"
    );
    assert!(took >= Duration::from_millis(900), "cut early: {took:?}");
    assert!(took < Duration::from_secs(3), "cut late: {took:?}");

    // One that opens a stream at once keeps serving past the deadline.
    let stream = tls::connect(Ipv4Addr::LOCALHOST, gw.addr, h2()).await;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let port = gw.addr.port();
    assert_eq!(h2_get(&mut send, port, "/api/v1/modules").await, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(h2_get(&mut send, port, "/api/v1/modules").await, 200);
    assert!(!conn.is_finished());
}

/// Raises this process's open-file limit to `want` (at most the hard limit).
fn raise_open_files(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

/// The connections from `peer` the process listening on `port` holds open (their socket
/// inodes), from the kernel's socket table: a socket the gateway accepted has an inode
/// until it closes it; one still in the accept queue, or closed by the gateway, has none.
fn held_from(peer: Ipv4Addr, port: u16) -> HashSet<String> {
    let local = format!("{:08X}:{port:04X}", u32::from_ne_bytes([127, 0, 0, 1]));
    let remote = format!("{:08X}:", u32::from_ne_bytes(peer.octets()));
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[1] == local && f[2].starts_with(&remote))
        // Not the listening socket; an inode: open in a process.
        .filter(|f| f[3] != "0A" && f[9] != "0")
        .map(|f| f[9].to_string())
        .collect()
}

/// Polls `done` every 20 ms until it holds or `within` passes.
async fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tls_connections_are_capped_per_address_and_cut_at_the_deadline() {
    const CAP: usize = 5;
    const SILENT: usize = 600;
    let header_read = Duration::from_secs(2);
    raise_open_files(4096);
    let gw = Gateway::start_with(GatewayOptions {
        tls: true,
        extra_yaml: format!(
            "limits: {{connections_per_ip: {CAP}, header_read_seconds: {}}}",
            header_read.as_secs()
        ),
        ..Default::default()
    })
    .await;
    let pki = gw.pki.clone().unwrap();
    let (one, other) = (Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2));
    let port = gw.addr.port();

    // The count sees a connection the gateway holds, and sees it go.
    let probe = tls::connect_from(one, gw.addr).await;
    wait_until(Duration::from_secs(5), "the probe is held", || {
        held_from(one, port).len() == 1
    })
    .await;
    drop(probe);
    wait_until(Duration::from_secs(5), "the probe is let go", || {
        held_from(one, port).is_empty()
    })
    .await;

    // Watch what the gateway holds from `one` while the silent connections come, and
    // have `other` served throughout. Held: open in two samples 10 ms apart (to see the
    // peer's address the gateway accepts each connection; one over the cap it closes
    // again within microseconds).
    let flooding = Arc::new(AtomicBool::new(true));
    let most_held = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (flooding, most_held) = (flooding.clone(), most_held.clone());
        tokio::spawn(async move {
            let mut before = HashSet::new();
            while flooding.load(Ordering::Relaxed) {
                let now = held_from(one, port);
                let held = now.intersection(&before).count();
                most_held.fetch_max(held, Ordering::Relaxed);
                before = now;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let served = {
        let flooding = flooding.clone();
        let config = tls::client_config(&pki.ca_file, &[b"http/1.1"], &[&rustls::version::TLS13]);
        let addr = gw.addr;
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while flooding.load(Ordering::Relaxed) {
                let answer = tls::get_from(other, addr, "/api/v1/modules", &[], config.clone());
                let answer = tokio::time::timeout(Duration::from_secs(5), answer).await;
                statuses.push(answer.map_or(0, |a| a.status));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            statuses
        })
    };

    let mut silent = Vec::new();
    for _ in 0..SILENT {
        let mut s = tls::connect_from(one, gw.addr).await;
        let opened = Instant::now();
        silent.push(tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
            let closed = matches!(read, Ok(Ok(0) | Err(_)));
            (closed, opened.elapsed())
        }));
    }
    let mut slowest = Duration::ZERO;
    for (i, conn) in silent.into_iter().enumerate() {
        let (closed, after) = conn.await.unwrap();
        assert!(closed, "silent connection {i} still open after {after:?}");
        slowest = slowest.max(after);
    }
    flooding.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    let statuses = served.await.unwrap();

    let most = most_held.load(Ordering::Relaxed);
    eprintln!(
        "{SILENT} silent: at most {most} held, the slowest cut after {slowest:?}; \
         {} requests from {other} meanwhile",
        statuses.len()
    );
    assert_eq!(
        most, CAP,
        "the gateway held at most (and up to) the cap from one address"
    );
    assert!(
        slowest < header_read + Duration::from_millis(1500),
        "every silent connection cut within the deadline: the slowest after {slowest:?}"
    );
    assert!(
        statuses.len() >= 3 && statuses.iter().all(|s| *s == 200),
        "another address served throughout: {statuses:?}"
    );
    wait_until(Duration::from_secs(5), "all let go", || {
        held_from(one, port).is_empty()
    })
    .await;
}
