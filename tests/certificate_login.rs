//! Certificate login (CA登录 / 税控设备登录, issues 13 and 18) through the real gateway:
//! SM2 and ECDSA certificates made by the test's own CAs, the whole login to a session and
//! a proxied request, every refusal with its code, the CRL reloaded while serving, a
//! solved captcha per challenge, refusals counted against the address and never against
//! the enterprise (a public certificate locks no one out), and the login kind in Cedar's
//! context.

use crate::harness::fx::*;
use crate::harness::gateway::run_cli;
use crate::harness::{Browser, Gateway, GatewayOptions, Resp};
use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use taxgate::crypto::dev_ca::{self, Algorithm, DevKey, Spec};
use x509_cert::Certificate;

/// Valid USCC of no fixture enterprise (the demo's 滇池科技).
const UNKNOWN_USCC: &str = "91530102709712345P";

/// The test's two CAs: an SM2 one for CA登录 (with a CRL) and a P-256 one for
/// 税控设备登录, written under `dir`.
struct Pki {
    _dir: tempfile::TempDir,
    ca_key: DevKey,
    ca: Certificate,
    device_key: DevKey,
    device: Certificate,
    crl_file: PathBuf,
    crl_number: std::cell::Cell<u64>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = DevKey::generate(Algorithm::Sm2).unwrap();
        let ca = dev_ca::issue(&Spec::ca("测试税务CA", 1, 365), &ca_key, None).unwrap();
        let device_key = DevKey::generate(Algorithm::P256).unwrap();
        let device = dev_ca::issue(&Spec::ca("测试税控设备CA", 1, 365), &device_key, None).unwrap();
        write(
            &dir.path().join("ca.pem"),
            &dev_ca::certificate_pem(&ca).unwrap(),
        );
        write(
            &dir.path().join("device.pem"),
            &dev_ca::certificate_pem(&device).unwrap(),
        );
        let pki = Pki {
            crl_file: dir.path().join("ca.crl"),
            _dir: dir,
            ca_key,
            ca,
            device_key,
            device,
            crl_number: std::cell::Cell::new(1),
        };
        pki.revoke(&[]);
        pki
    }

    fn yaml(&self) -> String {
        let dir = self._dir.path();
        format!(
            "ca_roots:\n  \
             - {{name: 测试税务CA, kind: ca, root_file: {}, crl_file: {}}}\n  \
             - {{name: 测试税控设备CA, kind: device, root_file: {}}}\n",
            dir.join("ca.pem").display(),
            self.crl_file.display(),
            dir.join("device.pem").display()
        )
    }

    /// Writes a new CRL of the SM2 CA listing `certs`.
    fn revoke(&self, certs: &[&Certificate]) {
        let n = self.crl_number.get();
        self.crl_number.set(n + 1);
        let next = SystemTime::now() + Duration::from_secs(86400);
        let crl = dev_ca::crl(&self.ca_key, &self.ca, certs, n, next).unwrap();
        write(&self.crl_file, &dev_ca::crl_pem(&crl).unwrap());
    }

    /// A certificate of the SM2 CA (`device`: of the P-256 device CA) for `spec`.
    fn issue(&self, spec: &Spec, device: bool) -> (DevKey, Certificate) {
        let (algorithm, issuer) = if device {
            (Algorithm::P256, (&self.device_key, &self.device))
        } else {
            (Algorithm::Sm2, (&self.ca_key, &self.ca))
        };
        let key = DevKey::generate(algorithm).unwrap();
        let cert = dev_ca::issue(spec, &key, Some(issuer)).unwrap();
        (key, cert)
    }

    fn enterprise(&self, uscc: &str, serial: u64, device: bool) -> (DevKey, Certificate) {
        self.issue(&Spec::enterprise("测试企业", uscc, serial, 30), device)
    }
}

fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn pem(cert: &Certificate) -> String {
    dev_ca::certificate_pem(cert).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn start(pki: &Pki, more_yaml: &str, own_policies: bool) -> Gateway {
    Gateway::start_with(GatewayOptions {
        extra_yaml: format!("{}{more_yaml}", pki.yaml()),
        own_policies,
        ..Default::default()
    })
    .await
}

/// `POST /login/ca/challenge` paid with a fresh captcha, correctly answered.
async fn challenge_resp(b: &Browser) -> Resp {
    let (captcha_id, answer) = b.captcha().await;
    b.post(
        "/api/v1/login/ca/challenge",
        &json!({"captcha_id": captcha_id, "captcha_answer": answer}),
    )
    .await
}

/// A fresh challenge: (challenge_id, text).
async fn challenge(b: &Browser) -> (String, String) {
    let v = challenge_resp(b).await.expect(200).json();
    assert!(v["expires_in"].as_i64().unwrap() > 0);
    (
        v["challenge_id"].as_str().unwrap().to_string(),
        v["challenge"].as_str().unwrap().to_string(),
    )
}

/// Stage 1 by certificate: a new challenge signed by `key`.
async fn ca_login(b: &Browser, cert: &Certificate, key: &DevKey) -> Resp {
    let (id, text) = challenge(b).await;
    b.post(
        "/api/v1/login/ca",
        &json!({"challenge_id": id, "certificate": pem(cert), "signature": b64(&key.sign(text.as_bytes()))}),
    )
    .await
}

fn names(stage1: &Value) -> Vec<String> {
    let mut n: Vec<String> = stage1["officers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {}", o["name_masked"], o["phone_masked"]))
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn sm2_and_ecdsa_certificates_log_in_through_both_stages() {
    let pki = Pki::new();
    let mut gw = start(&pki, "", false).await;
    let mut b = Browser::new(&gw);

    // CA登录 with SM2: the same stage-1 answer as the password login.
    let (key, cert) = pki.enterprise(A_USCC, 10, false);
    let s1 = ca_login(&b, &cert, &key).await.expect(200).json();
    assert_eq!(s1["login"], "ca");
    assert_eq!(s1["enterprise"]["uscc"], A_USCC);
    let by_password = b.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    assert_eq!(by_password["login"], "password");
    assert_eq!(names(&s1), names(&by_password));

    // Stage 2 as today; the session opens tax modules.
    let s2 = b.stage2_by_sms(&s1, ZHAO_PHONE).await.json();
    assert_eq!(s2["enterprise"]["uscc"], A_USCC);
    b.get("/api/v1/session").await.expect(200);
    b.get("/tax/zzs/declare").await.expect(200);
    let seen = gw.module("wybs.sfsb.zzs").received();
    assert_eq!(seen.last().unwrap().target, "/tax/zzs/declare");

    // 税控设备登录 with ECDSA P-256, intermediates in the chain, any order.
    let sub_key = DevKey::generate(Algorithm::P256).unwrap();
    let sub = dev_ca::issue(
        &Spec::ca("测试税控设备二级CA", 2, 30),
        &sub_key,
        Some((&pki.device_key, &pki.device)),
    )
    .unwrap();
    let key = DevKey::generate(Algorithm::P256).unwrap();
    let leaf = dev_ca::issue(
        &Spec::enterprise("测试", B_USCC, 11, 30),
        &key,
        Some((&sub_key, &sub)),
    )
    .unwrap();
    let mut device = Browser::new(&gw);
    let (id, text) = challenge(&device).await;
    let r = device
        .post(
            "/api/v1/login/ca",
            &json!({"challenge_id": id, "certificate": b64(&der::Encode::to_der(&leaf).unwrap()),
                    "chain": [pem(&pki.device), pem(&sub)], "signature": b64(&key.sign(text.as_bytes()))}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(r["login"], "device");
    assert_eq!(r["enterprise"]["uscc"], B_USCC);
    device.stage2_by_sms(&r, ZHOU_PHONE).await;
    device.get("/api/v1/session").await.expect(200);

    // Both sessions survive a restart.
    gw.crash_and_restart();
    b.follow(&gw);
    device.follow(&gw);
    b.get("/tax/zzs/again").await.expect(200);
    device.get("/api/v1/session").await.expect(200);

    // The audit names the CA and the certificate.
    gw.stop();
    let (ok, out, err) = run_cli(&["audit", "export", "--config", gw.config.to_str().unwrap()]);
    assert!(ok, "{err}");
    let logins: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "login.certificate")
        .collect();
    assert_eq!(logins.len(), 2, "{out}");
    let detail = logins[0]["detail"].as_str().unwrap();
    assert_eq!(detail, "ca=测试税务CA serial=0a login=ca");
    assert_eq!(logins[1]["outcome"], "ok");
}

#[tokio::test]
async fn every_refusal_has_its_own_code_and_issues_nothing() {
    let pki = Pki::new();
    let gw = start(&pki, "", false).await;
    let b = Browser::new(&gw);
    let (key, cert) = pki.enterprise(A_USCC, 20, false);
    let send = |id: &str, cert: String, sig: String| json!({"challenge_id": id, "certificate": cert, "signature": sig});
    let attempt = |cert: Certificate, key: DevKey| {
        let b = &b;
        async move { ca_login(b, &cert, &key).await }
    };

    // The challenge: used twice, by another client, unknown, expired.
    let (id, text) = challenge(&b).await;
    let body = send(&id, pem(&cert), b64(&key.sign(text.as_bytes())));
    b.post("/api/v1/login/ca", &body).await.expect(200);
    b.post("/api/v1/login/ca", &body)
        .await
        .expect_error(401, "CHALLENGE_INVALID");
    let (id, text) = challenge(&b).await;
    let other = Browser::with_agent(&gw, "another browser");
    let foreign = send(&id, pem(&cert), b64(&key.sign(text.as_bytes())));
    other
        .post("/api/v1/login/ca", &foreign)
        .await
        .expect_error(401, "CHALLENGE_INVALID");
    b.post("/api/v1/login/ca", &foreign)
        .await
        .expect_error(401, "CHALLENGE_INVALID");
    let unknown = send("no-such-challenge", pem(&cert), b64(&key.sign(b"x")));
    b.post("/api/v1/login/ca", &unknown)
        .await
        .expect_error(401, "CHALLENGE_INVALID");

    // The certificate.
    let foreign_key = DevKey::generate(Algorithm::Sm2).unwrap();
    let foreign_ca = dev_ca::issue(&Spec::ca("测试税务CA", 1, 365), &foreign_key, None).unwrap();
    let k = DevKey::generate(Algorithm::Sm2).unwrap();
    let untrusted = dev_ca::issue(
        &Spec::enterprise("测试", A_USCC, 21, 30),
        &k,
        Some((&foreign_key, &foreign_ca)),
    )
    .unwrap();
    attempt(untrusted, k)
        .await
        .expect_error(401, "CERT_UNTRUSTED");
    let mut old = Spec::enterprise("测试", A_USCC, 22, 30);
    old.not_before = SystemTime::now() - Duration::from_secs(10 * 86400);
    old.not_after = SystemTime::now() - Duration::from_secs(86400);
    let (k, c) = pki.issue(&old, false);
    attempt(c, k).await.expect_error(401, "CERT_EXPIRED");
    let mut signer_only = Spec::enterprise("测试", A_USCC, 23, 30);
    signer_only.usage = Some(x509_cert::ext::pkix::KeyUsage(
        x509_cert::ext::pkix::KeyUsages::KeyEncipherment.into(),
    ));
    let (k, c) = pki.issue(&signer_only, false);
    attempt(c, k).await.expect_error(401, "CERT_NOT_FOR_LOGIN");
    let (k, c) = pki.issue(&Spec::new("CN=张三,C=CN", 24, false, 30), false);
    attempt(c, k).await.expect_error(401, "CERT_NO_ENTERPRISE");
    let (k, c) = pki.enterprise(UNKNOWN_USCC, 25, true);
    let r = attempt(c, k).await.expect_error(404, "ENTERPRISE_UNKNOWN");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains(UNKNOWN_USCC));

    // The signature: another key, another text, garbage.
    let stranger = DevKey::generate(Algorithm::Sm2).unwrap();
    attempt(cert.clone(), stranger)
        .await
        .expect_error(401, "SIGNATURE_INVALID");
    let (id, _) = challenge(&b).await;
    let wrong_text = send(&id, pem(&cert), b64(&key.sign(b"taxgate-ca-login:other")));
    b.post("/api/v1/login/ca", &wrong_text)
        .await
        .expect_error(401, "SIGNATURE_INVALID");
    let (id, _) = challenge(&b).await;
    b.post("/api/v1/login/ca", &send(&id, pem(&cert), b64(b"junk")))
        .await
        .expect_error(401, "SIGNATURE_INVALID");

    // Input that is no certificate or no signature: 400 with the field.
    let (id, text) = challenge(&b).await;
    let good_sig = b64(&key.sign(text.as_bytes()));
    for (body, field) in [
        (
            send(&id, "not a certificate".into(), good_sig.clone()),
            "certificate",
        ),
        (
            send(&id, key.to_pkcs8_pem().unwrap(), good_sig.clone()),
            "certificate",
        ),
        (send(&id, b64(b"not DER"), good_sig.clone()), "certificate"),
        (send(&id, pem(&cert), "%%%".into()), "signature"),
        (
            json!({"challenge_id": id, "certificate": pem(&cert), "signature": good_sig, "chain": ["x", "y", "z", "u", "v"]}),
            "chain",
        ),
    ] {
        let r = b
            .post("/api/v1/login/ca", &body)
            .await
            .expect_error(400, "INVALID_INPUT");
        assert_eq!(r.json()["error"]["field"], field, "{body}");
    }
    for bad in [
        json!({}),
        json!({"challenge_id": id}),
        json!({"challenge_id": id, "certificate": pem(&cert), "signature": good_sig, "extra": 1}),
    ] {
        b.post("/api/v1/login/ca", &bad)
            .await
            .expect_error(400, "INVALID_INPUT");
    }

    // Nothing of this issued a ticket or changed the enterprise: the password login and
    // a good certificate still work.
    let s1 = b.stage1(A_USCC, A_PASSWORD).await.expect(200).json();
    assert_eq!(s1["login"], "password");
    ca_login(&b, &cert, &key).await.expect(200);

    // The audit has each refusal, with whom a refused certificate names.
    let mut gw = gw;
    gw.stop();
    let (ok, out, err) = run_cli(&["audit", "export", "--config", gw.config.to_str().unwrap()]);
    assert!(ok, "{err}");
    let outcomes: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "login.certificate")
        .collect();
    let expired = outcomes.iter().find(|e| e["outcome"] == "expired").unwrap();
    assert_eq!(expired["detail"], format!("certificate names {A_USCC}"));
    for outcome in [
        "challenge_invalid",
        "untrusted",
        "not_for_login",
        "no_enterprise",
        "unknown_enterprise",
        "bad_signature",
        "malformed",
    ] {
        assert!(
            outcomes.iter().any(|e| e["outcome"] == outcome),
            "{outcome}: {out}"
        );
    }
}

/// A challenge past `limits.ca_challenge_seconds` is refused. (On its own gateway: with a
/// 1 s lifetime, a challenge lives from 0 to 1 s, too short for the other cases on a busy
/// machine.)
#[tokio::test]
async fn an_expired_challenge_is_refused() {
    let pki = Pki::new();
    let gw = start(&pki, "limits: {ca_challenge_seconds: 1}\n", false).await;
    let b = Browser::new(&gw);
    let (key, cert) = pki.enterprise(A_USCC, 29, false);
    let (id, text) = challenge(&b).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = json!({"challenge_id": id, "certificate": pem(&cert), "signature": b64(&key.sign(text.as_bytes()))});
    b.post("/api/v1/login/ca", &late)
        .await
        .expect_error(401, "CHALLENGE_INVALID");
}

#[tokio::test]
async fn a_crl_written_while_serving_revokes_within_seconds() {
    let pki = Pki::new();
    let gw = start(&pki, "", false).await;
    let b = Browser::new(&gw);
    let (key, cert) = pki.enterprise(A_USCC, 30, false);
    let (key2, cert2) = pki.enterprise(A_USCC, 31, false);
    ca_login(&b, &cert, &key).await.expect(200);

    pki.revoke(&[&cert]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = ca_login(&b, &cert, &key).await;
        if r.status == 401 {
            r.expect_error(401, "CERT_REVOKED");
            break;
        }
        r.expect(200);
        assert!(std::time::Instant::now() < deadline, "CRL not reloaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ca_login(&b, &cert2, &key2).await.expect(200);

    // A broken CRL file is not taken: the one in force stays (the revoked stays revoked).
    write(
        &pki.crl_file,
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ca_login(&b, &cert, &key)
        .await
        .expect_error(401, "CERT_REVOKED");
    ca_login(&b, &cert2, &key2).await.expect(200);
    assert!(
        gw.stderr().contains("previous ones stay in force"),
        "{}",
        gw.stderr()
    );

    // What the operator sees: the CRL in force, and why the file on disk is not.
    let admin = Browser::admin(&gw);
    let cas = admin.get("/admin/ca").await.expect(200).json();
    assert_eq!(cas[0]["name"], "测试税务CA", "{cas}");
    assert_eq!(cas[0]["kind"], "ca");
    assert_eq!(cas[0]["crl_revoked"], 1);
    let next = cas[0]["crl_next_update"].as_i64().unwrap();
    assert!(next > taxgate::clock::now(), "{cas}");
    assert!(
        cas[0]["last_error"].as_str().unwrap().contains("ca.crl"),
        "{cas}"
    );
    assert_eq!(cas[1]["kind"], "device");
    assert!(cas[1].get("crl_next_update").is_none());
    let metrics = String::from_utf8(admin.get("/metrics").await.expect(200).body.to_vec()).unwrap();
    let line = format!("taxgate_ca_crl_next_update_seconds{{ca=\"测试税务CA\"}} {next}");
    assert!(metrics.contains(&line), "{metrics}");
}

/// One request to the gateway from the loopback address `ip` (127.0.0.x): another
/// client address than the [`Browser`]'s 127.0.0.1. Answers (status, JSON body).
async fn from_address(
    gw: &Gateway,
    ip: [u8; 4],
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    use http_body_util::BodyExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((ip, 0))).unwrap();
    let stream = socket.connect(gw.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", gw.addr.to_string())
        .header("user-agent", "taxgate-test/other-address")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.map(Value::to_string).unwrap_or_default(),
        )))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Stage 1 by password of `account` from the address `ip`, with a captcha fetched there.
async fn password_login_from(
    gw: &Gateway,
    ip: [u8; 4],
    account: &str,
    password: &str,
) -> (u16, Value) {
    let (status, c) = from_address(gw, ip, "GET", "/api/v1/captcha", None).await;
    assert_eq!(status, 200, "{c}");
    let id = c["captcha_id"].as_str().unwrap();
    let answer = crate::harness::outbox::captcha_answer(&gw.outbox, id);
    let body = json!({"account": account, "password": password, "captcha_id": id, "captcha_answer": answer});
    from_address(gw, ip, "POST", "/api/v1/login/enterprise", Some(&body)).await
}

/// Issue 18: the certificate is public, so bad signatures with it must not lock the
/// enterprise (its password login least of all); they count against the sender's address
/// only. The per-address limit is raised so that the 20 attempts are not rate-limited.
#[tokio::test]
async fn bad_signatures_with_a_public_certificate_lock_no_one_out() {
    let pki = Pki::new();
    let mut gw = start(&pki, "limits: {ip_requests_per_minute: 1000}\n", false).await;
    let b = Browser::new(&gw);
    let (key, cert) = pki.enterprise(A_USCC, 40, false);
    let stranger = DevKey::generate(Algorithm::Sm2).unwrap();
    for i in 0..20 {
        let r = ca_login(&b, &cert, &stranger).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "SIGNATURE_INVALID".to_string()),
            "attempt {}",
            i + 1
        );
    }

    // The enterprise's password login, from another address, and its certificate login,
    // from the attacker's address: both still succeed.
    let (status, s1) = password_login_from(&gw, [127, 0, 0, 2], A_USCC, A_PASSWORD).await;
    assert_eq!(status, 200, "{s1}");
    assert_eq!(s1["login"], "password");
    assert!(s1["login_ticket"].as_str().is_some(), "{s1}");
    let s1 = ca_login(&b, &cert, &key).await.expect(200).json();
    assert_eq!(s1["enterprise"]["uscc"], A_USCC);

    // The audit still has each refusal, naming the enterprise; none says locked.
    gw.stop();
    let (ok, out, err) = run_cli(&["audit", "export", "--config", gw.config.to_str().unwrap()]);
    assert!(ok, "{err}");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "login.certificate")
        .collect();
    let bad: Vec<&Value> = events
        .iter()
        .filter(|e| e["outcome"] == "bad_signature")
        .collect();
    assert_eq!(bad.len(), 20, "{out}");
    assert!(bad.iter().all(|e| e["enterprise"] == A_USCC), "{out}");
    assert!(!events.iter().any(|e| e["outcome"] == "locked"), "{out}");
}

/// The password lockout guards the password: a locked password entry does not refuse a
/// valid certificate signature, and a certificate login does not unlock the password.
#[tokio::test]
async fn a_locked_password_does_not_refuse_a_valid_certificate() {
    let pki = Pki::new();
    let gw = start(
        &pki,
        "limits: {ip_requests_per_minute: 1000, lockout_threshold: 3}\n",
        false,
    )
    .await;
    let b = Browser::new(&gw);
    for _ in 0..2 {
        b.stage1(A_USCC, "Wrong-Password-1")
            .await
            .expect_error(401, "BAD_CREDENTIALS");
    }
    b.stage1(A_USCC, "Wrong-Password-1")
        .await
        .expect_error(429, "LOCKED");
    b.stage1(A_USCC, A_PASSWORD)
        .await
        .expect_error(429, "LOCKED");

    let (key, cert) = pki.enterprise(A_USCC, 42, false);
    let s1 = ca_login(&b, &cert, &key).await.expect(200).json();
    assert_eq!(s1["login"], "ca");
    let mut b = b;
    b.stage2_by_sms(&s1, ZHAO_PHONE).await;
    b.get("/api/v1/session").await.expect(200);

    b.stage1(A_USCC, A_PASSWORD)
        .await
        .expect_error(429, "LOCKED");
}

/// Every challenge costs a solved captcha, checked as at the password login: missing or
/// blank fields are refused naming the field (nothing spent), a wrong answer is
/// CAPTCHA_INVALID and spends the captcha; no refusal issues a challenge.
#[tokio::test]
async fn a_challenge_costs_a_solved_captcha() {
    let pki = Pki::new();
    let gw = start(&pki, "limits: {ip_requests_per_minute: 1000}\n", false).await;
    let b = Browser::new(&gw);
    let url = "/api/v1/login/ca/challenge";
    let refused = |r: Resp, status: u16, code: &str| {
        let r = r.expect_error(status, code);
        let v = r.json();
        assert!(
            v.get("challenge_id").is_none() && v.get("challenge").is_none(),
            "{v}"
        );
        v["error"]["field"].as_str().map(str::to_string)
    };

    // Missing or blank: 400 INVALID_INPUT with the field; the captcha is not spent.
    let (id, answer) = b.captcha().await;
    for (body, field) in [
        (json!({}), "captcha_id"),
        (json!({"captcha_answer": answer}), "captcha_id"),
        (
            json!({"captcha_id": "", "captcha_answer": answer}),
            "captcha_id",
        ),
        (json!({"captcha_id": id}), "captcha_answer"),
        (
            json!({"captcha_id": id, "captcha_answer": ""}),
            "captcha_answer",
        ),
        (
            json!({"captcha_id": id, "captcha_answer": " \u{3000}"}),
            "captcha_answer",
        ),
    ] {
        let field_seen = refused(b.post(url, &body).await, 400, "INVALID_INPUT");
        assert_eq!(field_seen.as_deref(), Some(field), "{body}");
    }
    // No body at all (as before issue 18): told what is missing.
    let r = b.send("POST", url, &[], None).await;
    assert_eq!(
        refused(r, 400, "INVALID_INPUT").as_deref(),
        Some("captcha_id")
    );
    for bad in [
        json!({"captcha_id": id, "captcha_answer": answer, "extra": 1}),
        json!({"captcha_id": 7, "captcha_answer": answer}),
        json!({"captcha_id": id, "captcha_answer": "a\u{1}"}),
    ] {
        refused(b.post(url, &bad).await, 400, "INVALID_INPUT");
    }
    // The captcha survived all that: it pays for a challenge, once.
    let good = json!({"captcha_id": id, "captcha_answer": answer});
    let c = b.post(url, &good).await.expect(200).json();
    assert!(c["challenge"]
        .as_str()
        .unwrap()
        .starts_with("taxgate-ca-login:"));
    let field = refused(b.post(url, &good).await, 400, "CAPTCHA_INVALID");
    assert_eq!(field.as_deref(), Some("captcha_answer"));
    // Nor does a captcha spent on a challenge serve a password login.
    let r = b
        .post(
            "/api/v1/login/enterprise",
            &json!({"account": A_USCC, "password": A_PASSWORD, "captcha_id": id, "captcha_answer": answer}),
        )
        .await;
    r.expect_error(400, "CAPTCHA_INVALID");

    // A wrong answer: CAPTCHA_INVALID, and the captcha is spent (the right answer after it
    // is refused too); an unknown captcha likewise.
    let (id, answer) = b.captcha().await;
    let wrong = format!("{answer}x");
    refused(
        b.post(url, &json!({"captcha_id": id, "captcha_answer": wrong}))
            .await,
        400,
        "CAPTCHA_INVALID",
    );
    refused(
        b.post(url, &json!({"captcha_id": id, "captcha_answer": answer}))
            .await,
        400,
        "CAPTCHA_INVALID",
    );
    refused(
        b.post(
            url,
            &json!({"captcha_id": "no-such-captcha", "captcha_answer": "abcd"}),
        )
        .await,
        400,
        "CAPTCHA_INVALID",
    );

    // The one challenge issued above still works; the refusals issued none besides it.
    let (key, cert) = pki.enterprise(A_USCC, 45, false);
    let text = c["challenge"].as_str().unwrap();
    b.post(
        "/api/v1/login/ca",
        &json!({"challenge_id": c["challenge_id"], "certificate": pem(&cert), "signature": b64(&key.sign(text.as_bytes()))}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn refusals_count_against_the_address() {
    let pki = Pki::new();
    let gw = start(&pki, "limits: {ip_requests_per_minute: 12}\n", false).await;
    let b = Browser::new(&gw);
    let stranger = DevKey::generate(Algorithm::Sm2).unwrap();
    let (_, cert) = pki.enterprise(UNKNOWN_USCC, 50, false);
    // Each attempt: a captcha and a challenge (two requests of the captcha class) and a
    // refused login (a failure, which counts double against the per-minute limit):
    // refused after about 6 attempts (more if a minute boundary passes meanwhile, hence up
    // to 30 steps).
    let mut codes = Vec::new();
    while codes.len() < 30 && codes.last().map(String::as_str) != Some("RATE_LIMITED") {
        let r = b.get("/api/v1/captcha").await;
        if r.status != 200 {
            codes.push(r.code());
            continue;
        }
        let captcha_id = r.json()["captcha_id"].as_str().unwrap().to_string();
        let answer = crate::harness::outbox::captcha_answer(&b.outbox, &captcha_id);
        let r = b
            .post(
                "/api/v1/login/ca/challenge",
                &json!({"captcha_id": captcha_id, "captcha_answer": answer}),
            )
            .await;
        if r.status != 200 {
            codes.push(r.code());
            continue;
        }
        let id = r.json()["challenge_id"].as_str().unwrap().to_string();
        let r = b
            .post(
                "/api/v1/login/ca",
                &json!({"challenge_id": id, "certificate": pem(&cert), "signature": b64(&stranger.sign(b"x"))}),
            )
            .await;
        codes.push(r.code());
    }
    assert_eq!(codes.first().map(String::as_str), Some("SIGNATURE_INVALID"));
    assert_eq!(
        codes.last().map(String::as_str),
        Some("RATE_LIMITED"),
        "{codes:?}"
    );
    assert!(codes.len() <= 15, "{codes:?}");
}

#[tokio::test]
async fn the_login_kind_reaches_cedar() {
    let pki = Pki::new();
    let gw = start(&pki, "", true).await;
    // The example policy of policies/login.cedar, enabled as its comment says, and the
    // same rule for a routed module.
    let shipped = std::fs::read_to_string(gw.policies.join("login.cedar")).unwrap();
    let enabled: String = {
        let mut inside = false;
        let mut out = String::new();
        for line in shipped.lines() {
            if line.starts_with("// -- example: ") {
                inside = true;
            } else if line.starts_with("// -- end example --") {
                inside = false;
            } else {
                out.push_str(if inside {
                    line.strip_prefix("// ").unwrap_or("")
                } else {
                    line
                });
                out.push('\n');
            }
        }
        out
    };
    let zzs = enabled
        .replace(
            "invoices-certificate-login-only",
            "zzs-certificate-login-only",
        )
        .replace("Module::\"wybs.fpsy\"", "Module::\"wybs.sfsb.zzs\"");
    std::fs::write(gw.policies.join("login.cedar"), &enabled).unwrap();
    std::fs::write(gw.policies.join("login_zzs.cedar"), zzs).unwrap();
    let admin = Browser::admin(&gw);
    let r = admin
        .send("POST", "/admin/policies/reload", &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["status"]["policies"], 8, "{}", r.json());

    let allowed = |session: &Value, id: &str| -> bool {
        fn find(nodes: &Value, id: &str) -> Option<bool> {
            nodes.as_array()?.iter().find_map(|n| {
                if n["id"] == id {
                    n["allowed"].as_bool()
                } else {
                    find(&n["children"], id)
                }
            })
        }
        find(&session["modules"], id).unwrap_or(false)
    };

    let mut by_password = Browser::new(&gw);
    by_password.login_by_sms(A_USCC, A_PASSWORD, LI_PHONE).await;
    let session = by_password.get("/api/v1/session").await.expect(200).json();
    assert!(!allowed(&session, "wybs.fpsy"), "{session}");
    assert!(allowed(&session, "wybs.sfsb.qysds"));
    by_password
        .get("/tax/zzs/x")
        .await
        .expect_error(403, "FORBIDDEN");

    let (key, cert) = pki.enterprise(A_USCC, 60, false);
    let mut by_certificate = Browser::new(&gw);
    let s1 = ca_login(&by_certificate, &cert, &key)
        .await
        .expect(200)
        .json();
    by_certificate.stage2_by_sms(&s1, SUN_PHONE).await;
    let session = by_certificate
        .get("/api/v1/session")
        .await
        .expect(200)
        .json();
    assert!(allowed(&session, "wybs.fpsy"), "{session}");
    by_certificate.get("/tax/zzs/x").await.expect(200);
}

#[tokio::test]
async fn certificate_login_is_off_without_ca_roots_and_broken_roots_do_not_start() {
    let gw = Gateway::start().await;
    let b = Browser::new(&gw);
    let (id, answer) = b.captcha().await;
    b.post(
        "/api/v1/login/ca/challenge",
        &json!({"captcha_id": id, "captcha_answer": answer}),
    )
    .await
    .expect_error(404, "NOT_FOUND");
    // Not spent on a login that is off: it still serves the password login.
    b.post(
        "/api/v1/login/enterprise",
        &json!({"account": A_USCC, "password": A_PASSWORD, "captcha_id": id, "captcha_answer": answer}),
    )
    .await
    .expect(200);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(
        &root,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(&gw.config).unwrap();
    let broken = dir.path().join("taxgate.yaml");
    std::fs::write(
        &broken,
        format!(
            "{config}ca_roots:\n  - {{name: x, kind: ca, root_file: {}}}\n",
            root.display()
        ),
    )
    .unwrap();
    let (ok, _, err) = run_cli(&["check", "--config", broken.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("ca_roots `x`") && err.contains("not a PEM certificate"),
        "{err}"
    );
    std::fs::write(
        &broken,
        format!(
            "{config}ca_roots:\n  - {{name: x, kind: bank, root_file: {}}}\n",
            root.display()
        ),
    )
    .unwrap();
    let (ok, _, err) = run_cli(&["check", "--config", broken.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("kind"), "{err}");
}

#[test]
fn dev_pki_and_dev_sign_make_a_working_pair() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let registry = crate::harness::repo().join("tests/fixtures/registry.yaml");
    let (ok, stdout, err) = run_cli(&[
        "dev",
        "pki",
        "--out",
        out.to_str().unwrap(),
        "--registry",
        registry.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains(A_USCC), "{stdout}");
    let key = out.join(format!("certs/{A_USCC}.key"));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "key readable by others");
    let (ok, sig, err) = run_cli(&[
        "dev",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--challenge",
        "hello",
    ]);
    assert!(ok, "{err}");
    let anchor = taxgate::crypto::certificate::Anchor::load(
        &out.join("ca/root.pem"),
        Some(&out.join("ca/crl.pem")),
    )
    .unwrap();
    let cert_pem = std::fs::read_to_string(out.join(format!("certs/{A_USCC}.pem"))).unwrap();
    let cert = der::Encode::to_der(&dev_ca::certificate_from_pem(&cert_pem).unwrap()).unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig.trim())
        .unwrap();
    let v = taxgate::crypto::certificate::verify(
        &[anchor],
        &cert,
        &[],
        b"hello",
        &sig,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(v.enterprise_id, A_USCC);
    // Kept on a second run: the same root.
    let before = std::fs::read(out.join("ca/root.pem")).unwrap();
    assert!(
        run_cli(&[
            "dev",
            "pki",
            "--out",
            out.to_str().unwrap(),
            "--registry",
            registry.to_str().unwrap()
        ])
        .0
    );
    assert_eq!(std::fs::read(out.join("ca/root.pem")).unwrap(), before);
    let (ok, _, err) = run_cli(&[
        "dev",
        "sign",
        "--key",
        out.join("ca/crl.pem").to_str().unwrap(),
        "--challenge",
        "x",
    ]);
    assert!(!ok && err.contains("private key"), "{err}");
}

/// Two nodes on one PostgreSQL: a challenge issued by one is good at the other, once,
/// even when both nodes receive it at the same moment.
#[tokio::test]
async fn a_challenge_serves_one_login_across_nodes() {
    let pki = Pki::new();
    let a = Gateway::start_with(GatewayOptions {
        extra_yaml: pki.yaml(),
        store: crate::harness::TestStore::Postgres(crate::harness::postgres::new_database()),
        ..Default::default()
    })
    .await;
    let b = a.start_peer("node-b");
    let (key, cert) = pki.enterprise(A_USCC, 70, false);
    let (on_a, on_b) = (Browser::new(&a), Browser::new(&b));
    for _ in 0..5 {
        let (id, text) = challenge(&on_a).await;
        let body = json!({"challenge_id": id, "certificate": pem(&cert), "signature": b64(&key.sign(text.as_bytes()))});
        let (r1, r2) = tokio::join!(
            on_a.post("/api/v1/login/ca", &body),
            on_b.post("/api/v1/login/ca", &body)
        );
        let mut statuses = [r1.status, r2.status];
        statuses.sort();
        assert_eq!(statuses, [200, 401], "{} / {}", r1.code(), r2.code());
        assert!([r1.code(), r2.code()].contains(&"CHALLENGE_INVALID".to_string()));
    }
    // Issued on A, used on B.
    let (id, text) = challenge(&on_a).await;
    let body = json!({"challenge_id": id, "certificate": pem(&cert), "signature": b64(&key.sign(text.as_bytes()))});
    on_b.post("/api/v1/login/ca", &body).await.expect(200);
}
