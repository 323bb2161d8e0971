//! Handlers of certificate login, stage 1 (API.md "CA登录"): `POST /login/ca/challenge`
//! and `POST /login/ca`. Stage 2 is the password login's (`/login/officer`).
//!
//! The challenge request pays with a solved captcha, `{captcha_id, captcha_answer}`; a
//! missing or blank one is `400 INVALID_INPUT` naming the field, before anything is looked
//! at or spent (an empty body is read as `{}`, so an old client is told what is missing).
//!
//! Wire formats: a certificate (and each of `chain`) is PEM (`-----BEGIN CERTIFICATE-----`)
//! or the base64 of its DER; the signature is base64 (for SM2 and ECDSA the DER
//! `SEQUENCE { r, s }` or raw r‖s; for RSA PKCS#1 v1.5) over the UTF-8 bytes of the
//! challenge text.

use super::login::{client, count_login, stage1_answer};
use super::wire::{ApiRequest, ApiResponse, Text};
use crate::app::App;
use crate::auth::certificate_login::CertificateProof;
use crate::auth::throttle::RateClass;
use crate::error::Error;
use base64::Engine;
use serde::{Deserialize, Deserializer};

/// Certificates longer than this are no login certificates.
const MAX_CERTIFICATE_CHARS: usize = 8192;
/// Intermediates a client may send.
const MAX_CHAIN: usize = 4;

/// The body of `POST /login/ca/challenge`. Both fields are optional to serde only so that
/// a missing one is refused with its `field`, like a blank one ([`required`]).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    #[serde(default)]
    captcha_id: Option<Text<64>>,
    #[serde(default)]
    captcha_answer: Option<Text<16>>,
}

pub async fn challenge(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Captcha, &req.client_ip, now)
        .await?;
    let body: ChallengeRequest = if req.body.trim_ascii().is_empty() {
        ChallengeRequest::default()
    } else {
        req.json()?
    };
    let captcha_id = required("captcha_id", body.captcha_id.as_ref(), "请先获取图形验证码")?;
    let captcha_answer = required(
        "captcha_answer",
        body.captcha_answer.as_ref(),
        "请输入图形验证码",
    )?;
    let c = app
        .issue_ca_challenge(captcha_id, captcha_answer, &client(app, req), now)
        .await?;
    let mut answer = serde_json::json!({
        "challenge_id": c.id,
        "challenge": c.text,
        "expires_in": c.expires_in,
    });
    if app.config.is_development() {
        // The portal offers `taxgate dev sign` only then; production clients sign with
        // the enterprise's signing plug-in.
        answer["dev_sign"] = serde_json::Value::Bool(true);
    }
    Ok(ApiResponse::ok(&answer))
}

/// The text of a required field: `INVALID_INPUT` naming it when it is missing (in serde's
/// words, as for every other body) or blank (`blank` says what to do).
fn required<'a, const MAX: usize>(
    field: &str,
    value: Option<&'a Text<MAX>>,
    blank: &str,
) -> Result<&'a str, Error> {
    match value {
        None => Err(Error::invalid(
            field,
            format!("请求参数有误：missing field `{field}`"),
        )),
        Some(t) if t.as_str().trim().is_empty() => Err(Error::invalid(field, blank)),
        Some(t) => Ok(t.as_str()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateLogin {
    challenge_id: super::wire::Text<64>,
    certificate: Encoded<MAX_CERTIFICATE_CHARS>,
    #[serde(default)]
    chain: Vec<Encoded<MAX_CERTIFICATE_CHARS>>,
    signature: Encoded<1024>,
}

pub async fn login(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let body: CertificateLogin = req.json()?;
    if body.chain.len() > MAX_CHAIN {
        return Err(Error::invalid(
            "chain",
            format!("证书链最多 {MAX_CHAIN} 个中间证书"),
        ));
    }
    let proof = CertificateProof {
        challenge_id: body.challenge_id.as_str(),
        certificate: certificate_der("certificate", &body.certificate.0)?,
        chain: body
            .chain
            .iter()
            .map(|c| certificate_der("chain", &c.0))
            .collect::<Result<_, _>>()?,
        signature: base64_bytes(&body.signature.0)
            .ok_or_else(|| Error::invalid("signature", "签名应为 Base64 编码"))?,
    };
    let stage1 = app.login_certificate(proof, &client(app, req), now).await;
    count_login(app, "certificate", &stage1);
    Ok(stage1_answer(&stage1?))
}

/// PEM or base64 DER of a certificate, as DER.
fn certificate_der(field: &str, text: &str) -> Result<Vec<u8>, Error> {
    let bad = || Error::invalid(field, "证书应为 PEM 或 Base64 编码的 DER");
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        match der::pem::decode_vec(text.as_bytes()) {
            Ok(("CERTIFICATE", der)) => Ok(der),
            _ => Err(bad()),
        }
    } else {
        base64_bytes(text).ok_or_else(bad)
    }
}

/// Standard base64, whitespace (line breaks) ignored.
fn base64_bytes(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
        .filter(|b| !b.is_empty())
}

/// A PEM or base64 field of at most `MAX` characters: printable ASCII and line breaks
/// only (the one exception to "no control characters" of the API).
struct Encoded<const MAX: usize>(String);

impl<'de, const MAX: usize> Deserialize<'de> for Encoded<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() > MAX {
            return Err(serde::de::Error::custom(format!(
                "text longer than {MAX} characters"
            )));
        }
        if s.chars()
            .any(|c| c.is_control() && !matches!(c, '\r' | '\n'))
        {
            return Err(serde::de::Error::custom(
                "control characters are not allowed (line breaks are)",
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_graphic() || matches!(c, ' ' | '\r' | '\n'))
        {
            return Err(serde::de::Error::custom(
                "only PEM or base64 text is allowed",
            ));
        }
        Ok(Encoded(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_come_as_pem_or_base64() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert_eq!(certificate_der("c", &b64).unwrap(), der);
        let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        assert_eq!(certificate_der("c", &pem).unwrap(), der);
        let key = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
        let e = certificate_der("c", &key).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("c"));
        assert!(certificate_der("c", "not base64!").is_err());
        assert!(certificate_der("c", "").is_err());
        assert_eq!(base64_bytes("AQID\r\nBA==").unwrap(), vec![1, 2, 3, 4]);
    }

    /// `dev_sign` (the portal's cue to show `taxgate dev sign`) only in development mode.
    #[tokio::test]
    async fn the_development_signer_is_offered_in_development_only() {
        use crate::config::{CaRoot, CertificateLogin, Mode};
        use crate::crypto::dev_ca::{self, Algorithm, DevKey, Spec};
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::generate(Algorithm::Sm2).unwrap();
        let root = dev_ca::issue(&Spec::ca("CA", 1, 1), &key, None).unwrap();
        let root_file = dir.path().join("root.pem");
        std::fs::write(&root_file, dev_ca::certificate_pem(&root).unwrap()).unwrap();
        let mut config = (*crate::app::test_app(dir.path()).config).clone();
        config.ca_roots = vec![CaRoot {
            name: "CA".into(),
            kind: CertificateLogin::Ca,
            root_file,
            crl_file: None,
        }];
        let body = serde_json::json!({"captcha_id": "c1", "captcha_answer": "AbCd"});
        let req = ApiRequest {
            method: http::Method::POST,
            path: "/login/ca/challenge".into(),
            query: None,
            session_token: None,
            csrf_token: None,
            client_ip: "127.0.0.1".into(),
            user_agent: String::new(),
            body: bytes::Bytes::from(body.to_string()),
        };
        for (mode, offered) in [(Mode::Development, true), (Mode::Production, false)] {
            config.mode = mode;
            let app = App::open(config.clone()).unwrap();
            let now = crate::clock::now();
            let solved = crate::store::records::Captcha {
                answer_hash: app.keyed.hash("captcha", "abcd"),
                expires_at: now + 60,
            };
            app.store
                .put(crate::store::Tree::Captchas, "c1", &solved)
                .await
                .unwrap();
            let r = challenge(&app, &req, now).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert!(v["challenge"]
                .as_str()
                .unwrap()
                .starts_with("taxgate-ca-login:"));
            assert_eq!(v.get("dev_sign").is_some(), offered, "{mode:?}: {v}");
        }
    }

    #[test]
    fn encoded_fields_refuse_other_text() {
        let ok: Result<Encoded<8>, _> = serde_json::from_str(r#""AQ==\n""#);
        assert!(ok.is_ok());
        for bad in [r#""AQ==\u0000""#, r#""证书""#, r#""AAAAAAAAAAAA""#] {
            let r: Result<Encoded<8>, _> = serde_json::from_str(bad);
            assert!(r.is_err(), "{bad}");
        }
    }
}
