//! Stage 1 of the enterprise login by certificate (seed §1.1: CA登录, 税控设备登录).
//!
//! [`App::issue_ca_challenge`]: costs a solved image captcha, checked and spent exactly
//! as at the password login ([`App::check_captcha`]: `CAPTCHA_INVALID`, spent whatever
//! the outcome, a wrong answer counted against the address), so every certificate attempt
//! costs an attacker what a password attempt costs. Then a random text to sign,
//! single-use, bound to the client, alive `limits.ca_challenge_seconds` (120); only its
//! id's keyed hash is stored (a flow ticket, so the janitor sweeps the expired ones).
//!
//! [`App::login_certificate`]: the challenge is taken out of the store first (atomically:
//! a second use, however concurrent, finds nothing), then the certificate is verified
//! against the trust anchors off the async runtime (chain, validity, key usage, CRL, the
//! signature over the challenge; `auth/trust.rs`), then the enterprise named in it must
//! exist. The answer is a login ticket exactly like the password login's, remembering the
//! login kind of the CA (`ca` or `device`) for the session and for Cedar. Every refusal
//! has its own code and is counted against the client's address like a wrong password.
//!
//! The enterprise's password lockout is neither read nor written here: it exists against
//! password guessing. A certificate is public and a signature cannot be guessed, so
//! counting bad signatures against the enterprise would only let anyone lock anyone out;
//! and a valid signature proves the enterprise's key, which guessing its password does
//! not touch, so a locked password entry does not refuse it (nor does it unlock it).

use super::login::{Client, Stage1};
use crate::app::App;
use crate::audit::Event;
use crate::crypto::certificate::CertError;
use crate::error::{Code, Error};
use crate::store::records::{Flow, FlowTicket};
use crate::store::{codec, Tree};

/// Every challenge starts with this, so a signature made for a taxgate login cannot be
/// one a signer was asked to make for anything else, and the reverse.
pub const CHALLENGE_PREFIX: &str = "taxgate-ca-login:";

pub struct Challenge {
    /// What the client sends back (`challenge_id`).
    pub id: String,
    /// What the certificate's key signs (its UTF-8 bytes).
    pub text: String,
    pub expires_in: i64,
}

/// What the client sent: the certificate and intermediates as DER, the signature.
pub struct CertificateProof<'a> {
    pub challenge_id: &'a str,
    pub certificate: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
    pub signature: Vec<u8>,
}

impl App {
    fn challenge_hash(&self, id: &str) -> String {
        self.keyed.hash("ca-challenge", id)
    }

    fn certificate_login_enabled(&self) -> Result<(), Error> {
        if self.trust.is_empty() {
            return Err(Error::new(Code::NotFound).with_message("本系统未开通证书登录"));
        }
        Ok(())
    }

    /// A challenge for `client`, paid with the captcha `captcha_id` answered `captcha_answer`
    /// (spent whatever the outcome; nothing is issued unless it was right).
    pub async fn issue_ca_challenge(
        &self,
        captcha_id: &str,
        captcha_answer: &str,
        client: &Client,
        now: i64,
    ) -> Result<Challenge, Error> {
        self.certificate_login_enabled()?;
        self.check_captcha(captcha_id, captcha_answer, &client.ip, now)
            .await?;
        let lifetime = self.config.limits.ca_challenge.as_secs() as i64;
        let id = crate::crypto::secrets::token();
        let text = format!("{CHALLENGE_PREFIX}{}", crate::crypto::secrets::token());
        let record = FlowTicket {
            client: client.fingerprint.clone(),
            expires_at: now + lifetime,
            flow: Flow::CaChallenge {
                challenge: text.clone(),
            },
        };
        self.store
            .put(Tree::FlowTickets, self.challenge_hash(&id), &record)
            .await?;
        self.store.flush().await?;
        Ok(Challenge {
            id,
            text,
            expires_in: lifetime,
        })
    }

    pub async fn login_certificate(
        &self,
        proof: CertificateProof<'_>,
        client: &Client,
        now: i64,
    ) -> Result<Stage1, Error> {
        self.certificate_login_enabled()?;
        let refuse = async |e: Error, enterprise: Option<&str>, detail: Option<String>| {
            let mut event = Event::new("login.certificate", outcome_of(e.code)).client(&client.ip);
            if let Some(ent) = enterprise {
                event = event.enterprise(ent);
            }
            if let Some(d) = detail {
                event = event.detail(d);
            }
            self.count_failure_for_client(&client.ip, now).await?;
            self.audit.record(now, event).await;
            self.store.flush().await?;
            Err::<Stage1, Error>(e)
        };

        let challenge = match self.take_challenge(proof.challenge_id, client, now).await? {
            Some(text) => text,
            None => return refuse(Error::new(Code::ChallengeInvalid), None, None).await,
        };

        let trust = self.trust.clone();
        let CertificateProof {
            certificate,
            chain,
            signature,
            ..
        } = proof;
        let checked = tokio::task::spawn_blocking(move || {
            let result = trust.verify(&certificate, &chain, challenge.as_bytes(), &signature, now);
            (result, certificate)
        })
        .await
        .map_err(Error::internal)?;
        let accepted = match checked {
            (Ok(accepted), _) => accepted,
            (Err(CertError::BadSignature), leaf) => {
                let enterprise = self.enterprise_named_by(&leaf).await?;
                let answer = Error::new(Code::SignatureInvalid);
                return refuse(answer, enterprise.as_deref(), None).await;
            }
            (Err(e), leaf) => {
                // For the audit: the reason in words, and whom the certificate names (not
                // verified, so not the event's enterprise) — e.g. a revoked certificate of
                // an enterprise still in use somewhere.
                let named = crate::crypto::certificate::enterprise_id_of(&leaf)
                    .map(|id| format!("certificate names {id}"));
                let reason = match &e {
                    CertError::Malformed(m) | CertError::CrlInvalid(m) => Some(m.clone()),
                    _ => None,
                };
                let detail = match (reason, named) {
                    (Some(r), Some(n)) => Some(format!("{r}; {n}")),
                    (r, n) => r.or(n),
                };
                return refuse(refusal(&e), None, detail).await;
            }
        };
        let detail = format!(
            "ca={} serial={} login={}",
            accepted.ca,
            accepted.verified.serial,
            accepted.login.as_str()
        );
        let Some(enterprise) = self
            .enterprise_by_account(&accepted.verified.enterprise_id)
            .await?
        else {
            let unknown = Error::new(Code::EnterpriseUnknown).with_message(format!(
                "证书对应的企业（{}）未在电子税务局登记",
                accepted.verified.enterprise_id
            ));
            return refuse(unknown, None, Some(detail)).await;
        };
        let event = Event::new("login.certificate", "ok")
            .client(&client.ip)
            .enterprise(&enterprise.key)
            .detail(detail);
        self.issue_login_ticket(enterprise, accepted.login, client, &event, now)
            .await
    }

    /// The key of the registered enterprise a certificate names, if any: for the audit of
    /// a bad signature by a trusted certificate. Such a refusal counts against the address
    /// only, never against the enterprise (see the module doc).
    async fn enterprise_named_by(&self, leaf: &[u8]) -> Result<Option<String>, Error> {
        Ok(match crate::crypto::certificate::enterprise_id_of(leaf) {
            Some(id) => self.enterprise_by_account(&id).await?.map(|e| e.key),
            None => None,
        })
    }

    /// Removes the challenge `id` and returns its text if it was alive and this client's.
    /// Taken either way: a challenge is good for one attempt.
    async fn take_challenge(
        &self,
        id: &str,
        client: &Client,
        now: i64,
    ) -> Result<Option<String>, Error> {
        let Some(bytes) = self
            .store
            .remove(Tree::FlowTickets, self.challenge_hash(id))
            .await?
        else {
            return Ok(None);
        };
        let ticket: FlowTicket = codec::decode(&bytes)?;
        let own =
            crate::crypto::secrets::ct_eq(ticket.client.as_bytes(), client.fingerprint.as_bytes());
        Ok(match ticket.flow {
            Flow::CaChallenge { challenge } if own && ticket.expires_at > now => Some(challenge),
            _ => None,
        })
    }
}

/// The answer to a certificate that did not verify.
fn refusal(e: &CertError) -> Error {
    match e {
        CertError::Malformed(_) => Error::invalid(
            "certificate",
            "证书或签名格式不正确（证书应为 PEM 或 Base64 编码的 DER，签名为 Base64）",
        ),
        CertError::Untrusted => Error::new(Code::CertUntrusted),
        CertError::Expired => Error::new(Code::CertExpired),
        CertError::Revoked => Error::new(Code::CertRevoked),
        CertError::KeyUsage => Error::new(Code::CertNotForLogin),
        CertError::NoEnterprise => Error::new(Code::CertNoEnterprise),
        CertError::BadSignature => Error::new(Code::SignatureInvalid),
        // The CA's CRL is not usable (stale, or not signed by it): revocation cannot be
        // checked, so nobody of that CA logs in until the operator installs a fresh one.
        CertError::CrlInvalid(m) => {
            Error::unavailable(format!("certificate login: CRL not usable: {m}"))
                .with_message("暂时无法核验证书状态，请稍后再试或使用用户名登录")
        }
    }
}

/// The audit outcome of a refusal.
fn outcome_of(code: Code) -> &'static str {
    match code {
        Code::ChallengeInvalid => "challenge_invalid",
        Code::CertUntrusted => "untrusted",
        Code::CertExpired => "expired",
        Code::CertRevoked => "revoked",
        Code::CertNotForLogin => "not_for_login",
        Code::CertNoEnterprise => "no_enterprise",
        Code::EnterpriseUnknown => "unknown_enterprise",
        Code::SignatureInvalid => "bad_signature",
        Code::InvalidInput => "malformed",
        Code::Unavailable => "crl_unusable",
        _ => "refused",
    }
}
