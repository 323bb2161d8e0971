//! Certificate login (CA登录, 税控设备登录; issue 13): an enterprise's certificate and its
//! signature over a challenge, checked against the configured trust anchors.
//!
//! Contract: [`Anchor::load`] reads a root certificate (PEM) and, optionally, its CRL
//! (PEM or DER), whose issuer and signature are checked there, once: a CRL that is not
//! the root's own is refused, and what a login reads is its set of revoked serials and
//! its next update. [`verify`] accepts a leaf certificate only when every certificate
//! from the leaf up to an anchor is signed by the next (the chain the client sent, in any
//! order), each is within its validity at `now`, the intermediates are CAs, the leaf may
//! sign (`digitalSignature` or `nonRepudiation`, when it states a key usage), the
//! anchor's CRL is not past its next update and does not list the certificate the
//! anchor issued, and the leaf's key signed the challenge. Algorithms: SM2 with SM3
//! (GB/T 32918, distinguishing ID `1234567812345678`), ECDSA P-256 with SHA-256, RSA
//! PKCS#1 v1.5 with SHA-256. Signatures are checked over the bytes as received, never a
//! re-encoding. The enterprise is the USCC found by [`enterprise_id`]. Each refusal is
//! its own [`CertError`]. Nothing here reads files after loading or knows about HTTP.

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::referenced::OwnedToRef;
use der::{Decode, DecodePem, Reader, SliceReader};
use signature::Verifier;
use spki::SubjectPublicKeyInfoOwned;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::Certificate;

/// The distinguishing ID every SM2 signature of Chinese certificates uses (GM/T 0009).
pub const SM2_ID: &str = "1234567812345678";
const SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
const SM2_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
/// Subject attribute `organizationIdentifier` (X.520).
const ORGANIZATION_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.97");
const SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// Extensions Chinese CAs carry the enterprise's codes in (GM/T 0015 and the older
/// 1.2.86 arc): 统一社会信用代码 / 组织机构代码, then 企业税号.
const ID_EXTENSIONS: [ObjectIdentifier; 4] = [
    ObjectIdentifier::new_unwrap("1.2.156.10260.4.1.4"),
    ObjectIdentifier::new_unwrap("1.2.156.10260.4.1.3"),
    ObjectIdentifier::new_unwrap("1.2.86.11.7.3"),
    ObjectIdentifier::new_unwrap("1.2.86.11.7.5"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("the certificate or its signature cannot be read: {0}")]
    Malformed(String),
    #[error("no configured CA issued this certificate")]
    Untrusted,
    #[error("a certificate of the chain is not valid now")]
    Expired,
    #[error("a certificate of the chain is revoked")]
    Revoked,
    #[error("the certificate may not sign logins (key usage)")]
    KeyUsage,
    #[error("the CA's revocation list cannot be trusted: {0}")]
    CrlInvalid(String),
    #[error("the signature over the challenge does not verify")]
    BadSignature,
    #[error("the certificate names no enterprise (USCC)")]
    NoEnterprise,
}

/// A trust anchor: a root certificate and what its CRL revokes. Cheap to clone.
#[derive(Clone)]
pub struct Anchor {
    root: Certificate,
    revocations: Option<Revocations>,
}

/// A CRL already checked (issuer, signature): what a login reads of it.
#[derive(Clone)]
struct Revocations {
    next_update: Option<SystemTime>,
    /// Serial numbers as encoded (DER INTEGER contents).
    serials: Arc<HashSet<Vec<u8>>>,
}

impl Anchor {
    pub fn load(root_pem: &Path, crl: Option<&Path>) -> Result<Anchor, String> {
        let text = std::fs::read(root_pem).map_err(|e| format!("{}: {e}", root_pem.display()))?;
        let root = Certificate::from_pem(&text)
            .map_err(|e| format!("{}: not a PEM certificate: {e}", root_pem.display()))?;
        let Some(path) = crl else {
            return Ok(Anchor {
                root,
                revocations: None,
            });
        };
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let der = match der::pem::decode_vec(&bytes) {
            Ok((_, der)) => der,
            Err(_) => bytes,
        };
        Anchor::new(root, Some(&der)).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// When its CRL must be replaced (its next update) and how many serials it revokes;
    /// `None` without a CRL.
    pub fn crl_state(&self) -> Option<(Option<SystemTime>, usize)> {
        self.revocations
            .as_ref()
            .map(|r| (r.next_update, r.serials.len()))
    }

    /// The anchor of `root`, with its CRL (DER) if it publishes one: refused unless the
    /// root issued and signed it.
    pub fn new(root: Certificate, crl: Option<&[u8]>) -> Result<Anchor, CertError> {
        let revocations = crl.map(|der| revocations(&root, der)).transpose()?;
        Ok(Anchor { root, revocations })
    }
}

/// Reads a CRL of `root`, checking its issuer and its signature over the bytes as
/// received.
fn revocations(root: &Certificate, der: &[u8]) -> Result<Revocations, CertError> {
    let invalid = |m: String| CertError::CrlInvalid(m);
    let crl: CertificateList =
        CertificateList::from_der(der).map_err(|e| invalid(format!("not a CRL: {e}")))?;
    if crl.tbs_cert_list.issuer != *root.tbs_certificate().subject() {
        return Err(invalid("issued by another CA".into()));
    }
    if crl.signature_algorithm != crl.tbs_cert_list.signature {
        return Err(invalid("signature algorithms differ".into()));
    }
    let tbs = first_element(der).map_err(|e| invalid(format!("not a CRL: {e}")))?;
    let signature = crl
        .signature
        .as_bytes()
        .ok_or_else(|| invalid("signature bits".into()))?;
    check_signature(
        crl.signature_algorithm.oid,
        root.tbs_certificate().subject_public_key_info(),
        tbs,
        signature,
    )
    .map_err(|_| invalid("its signature does not verify with the root's key".into()))?;
    let serials = crl
        .tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .map(|r| r.serial_number.as_bytes().to_vec())
        .collect();
    Ok(Revocations {
        next_update: crl.tbs_cert_list.next_update.map(|t| t.to_system_time()),
        serials: Arc::new(serials),
    })
}

/// The bytes of the first element of a DER SEQUENCE (a certificate's or a CRL's TBS).
fn first_element(der: &[u8]) -> Result<&[u8], der::Error> {
    let mut outer = SliceReader::new(der)?;
    der::Header::decode(&mut outer)?;
    outer.tlv_bytes()
}

/// A verified login certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Index of the anchor that issued it.
    pub anchor: usize,
    /// The enterprise's USCC (or TIN) as written in the certificate.
    pub enterprise_id: String,
    /// The leaf's serial number, hex.
    pub serial: String,
}

/// A certificate as received, with the exact bytes its issuer signed.
struct Received {
    cert: Certificate,
    tbs: Vec<u8>,
}

impl Received {
    fn parse(der: &[u8]) -> Result<Received, CertError> {
        let malformed = |e: der::Error| CertError::Malformed(e.to_string());
        let cert = Certificate::from_der(der).map_err(malformed)?;
        // Certificate ::= SEQUENCE { tbsCertificate, ... }: the first element's bytes.
        let tbs = first_element(der).map_err(malformed)?.to_vec();
        Ok(Received { cert, tbs })
    }
}

/// Checks `leaf` (DER) and `chain` (DER, any order) against `anchors` at `now`, and the
/// leaf's `signature` over `challenge` (see the module contract).
pub fn verify(
    anchors: &[Anchor],
    leaf: &[u8],
    chain: &[Vec<u8>],
    challenge: &[u8],
    signature: &[u8],
    now: SystemTime,
) -> Result<Verified, CertError> {
    let leaf = Received::parse(leaf)?;
    let chain: Vec<Received> = chain
        .iter()
        .map(|c| Received::parse(c))
        .collect::<Result<_, _>>()?;
    let (anchor, path) = path_to_anchor(anchors, &leaf, &chain)?;
    let anchor_ref = &anchors[anchor];
    for (i, cert) in path.iter().enumerate() {
        if !within_validity(&cert.cert, now) {
            return Err(CertError::Expired);
        }
        let is_leaf = i == 0;
        if !is_leaf && !is_ca(&cert.cert) {
            return Err(CertError::Untrusted);
        }
    }
    if !within_validity(&anchor_ref.root, now) {
        return Err(CertError::Expired);
    }
    if !may_sign(&leaf.cert) {
        return Err(CertError::KeyUsage);
    }
    if let Some(crl) = &anchor_ref.revocations {
        if crl.next_update.is_some_and(|t| t < now) {
            return Err(CertError::CrlInvalid("past its next update".into()));
        }
        // The anchor's CRL lists what the anchor issued: the top of the path.
        let top = path
            .last()
            .map(|c| c.cert.tbs_certificate().serial_number().as_bytes());
        if top.is_some_and(|serial| crl.serials.contains(serial)) {
            return Err(CertError::Revoked);
        }
    }
    let spki = leaf.cert.tbs_certificate().subject_public_key_info();
    check_signature(key_algorithm(spki)?, spki, challenge, signature)
        .map_err(|_| CertError::BadSignature)?;
    Ok(Verified {
        anchor,
        enterprise_id: enterprise_id(&leaf.cert).ok_or(CertError::NoEnterprise)?,
        serial: hex::encode(leaf.cert.tbs_certificate().serial_number().as_bytes()),
    })
}

/// The certificates from the leaf up to (not including) an anchor's root, each signed
/// by the next, and the anchor's index.
fn path_to_anchor<'a>(
    anchors: &[Anchor],
    leaf: &'a Received,
    chain: &'a [Received],
) -> Result<(usize, Vec<&'a Received>), CertError> {
    let mut path = vec![leaf];
    // A chain longer than what was sent would repeat a certificate.
    for _ in 0..=chain.len() {
        let current = path.last().copied().ok_or(CertError::Untrusted)?;
        let issuer = current.cert.tbs_certificate().issuer();
        let by_anchor = anchors.iter().position(|a| {
            a.root.tbs_certificate().subject() == issuer && signed_by(current, &a.root).is_ok()
        });
        if let Some(anchor) = by_anchor {
            return Ok((anchor, path));
        }
        let next = chain.iter().find(|c| {
            c.cert.tbs_certificate().subject() == issuer
                && !path.iter().any(|p| std::ptr::eq(*p, *c))
                && signed_by(current, &c.cert).is_ok()
        });
        match next {
            Some(c) => path.push(c),
            None => return Err(CertError::Untrusted),
        }
    }
    Err(CertError::Untrusted)
}

/// Whether `cert`'s signature verifies with `issuer`'s key.
fn signed_by(cert: &Received, issuer: &Certificate) -> Result<(), CertError> {
    let outer = cert.cert.signature_algorithm();
    if outer != cert.cert.tbs_certificate().signature() {
        return Err(CertError::Malformed("signature algorithms differ".into()));
    }
    let signature = cert
        .cert
        .signature()
        .as_bytes()
        .ok_or_else(|| CertError::Malformed("signature bits".into()))?;
    check_signature(
        outer.oid,
        issuer.tbs_certificate().subject_public_key_info(),
        &cert.tbs,
        signature,
    )
}

/// The signature algorithm a leaf key signs challenges with.
fn key_algorithm(spki: &SubjectPublicKeyInfoOwned) -> Result<ObjectIdentifier, CertError> {
    let curve: Option<ObjectIdentifier> = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as().ok());
    if spki.algorithm.oid == SM2_CURVE || curve == Some(SM2_CURVE) {
        Ok(SM2_WITH_SM3)
    } else if curve == Some(ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7")) {
        Ok(rfc5912::ECDSA_WITH_SHA_256)
    } else if spki.algorithm.oid == rfc5912::RSA_ENCRYPTION {
        Ok(rfc5912::SHA_256_WITH_RSA_ENCRYPTION)
    } else {
        Err(CertError::Malformed(format!(
            "unsupported key {}",
            spki.algorithm.oid
        )))
    }
}

/// `signature` over `message` by the key in `spki`, for `algorithm`.
fn check_signature(
    algorithm: ObjectIdentifier,
    spki: &SubjectPublicKeyInfoOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CertError> {
    let bad = |_| CertError::BadSignature;
    let key_bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CertError::Malformed("public key bits".into()))?;
    if algorithm == SM2_WITH_SM3 {
        let key = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_ID, key_bits).map_err(bad)?;
        // DER SEQUENCE { r, s }, or the raw 64-byte r‖s some signing plug-ins send.
        let sig = sm2::dsa::Signature::from_der(signature)
            .or_else(|_| sm2::dsa::Signature::from_slice(signature))
            .map_err(bad)?;
        key.verify(message, &sig).map_err(bad)
    } else if algorithm == rfc5912::ECDSA_WITH_SHA_256 {
        let key = p256::ecdsa::VerifyingKey::try_from(spki.owned_to_ref())
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        let sig = p256::ecdsa::DerSignature::from_bytes(signature).map_err(bad)?;
        key.verify(message, &sig).map_err(bad)
    } else if algorithm == rfc5912::SHA_256_WITH_RSA_ENCRYPTION {
        let key = rsa::pkcs1v15::VerifyingKey::<sha2_011::Sha256>::try_from(spki.owned_to_ref())
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        let sig = rsa::pkcs1v15::Signature::try_from(signature).map_err(bad)?;
        key.verify(message, &sig).map_err(bad)
    } else {
        Err(CertError::Malformed(format!(
            "unsupported algorithm {algorithm}"
        )))
    }
}

fn within_validity(cert: &Certificate, now: SystemTime) -> bool {
    let v = cert.tbs_certificate().validity();
    v.not_before.to_system_time() <= now && now <= v.not_after.to_system_time()
}

fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, bc))) if bc.ca
    )
}

/// A leaf without a key-usage extension may sign; one with it must allow signing.
fn may_sign(cert: &Certificate) -> bool {
    match cert.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(Some((_, ku))) => ku.digital_signature() || ku.non_repudiation(),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// The enterprise's USCC (or TIN) in the certificate, looked up in this order: the
/// subject's `organizationIdentifier` (2.5.4.97), the Chinese CAs' identifier
/// extensions (1.2.156.10260.4.1.4, .3, 1.2.86.11.7.3, .5), the subject's
/// `serialNumber`, then an 18-character token of the common name. A value counts only
/// if it is a valid USCC (check digit) or TIN.
pub fn enterprise_id(cert: &Certificate) -> Option<String> {
    let tbs = cert.tbs_certificate();
    let attribute = |oid: ObjectIdentifier| -> Vec<String> {
        tbs.subject()
            .iter()
            .filter(|a| a.oid == oid)
            .filter_map(|a| directory_string(&a.value))
            .collect()
    };
    let extensions: Vec<String> = ID_EXTENSIONS
        .iter()
        .flat_map(|oid| {
            tbs.extensions()
                .into_iter()
                .flatten()
                .filter(move |e| e.extn_id == *oid)
                .filter_map(|e| {
                    der::Any::from_der(e.extn_value.as_bytes())
                        .ok()
                        .and_then(|v| directory_string(&v))
                })
        })
        .collect();
    let common_name_tokens: Vec<String> = attribute(COMMON_NAME)
        .iter()
        .flat_map(|cn| {
            cn.split(|c: char| !c.is_ascii_alphanumeric())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|t| t.len() == 18)
        .collect();
    attribute(ORGANIZATION_IDENTIFIER)
        .into_iter()
        .chain(extensions)
        .chain(attribute(SERIAL_NUMBER))
        .chain(common_name_tokens)
        .map(|v| v.trim().to_ascii_uppercase())
        .find(|v| {
            crate::identity::uscc::Uscc::parse(v).is_ok()
                || crate::identity::tin::Tin::parse(v).is_ok()
        })
}

/// [`enterprise_id`] of a DER certificate; `None` if it does not parse.
pub fn enterprise_id_of(der: &[u8]) -> Option<String> {
    enterprise_id(&Certificate::from_der(der).ok()?)
}

/// A DirectoryString (UTF8, Printable, IA5…) as text.
fn directory_string(value: &der::Any) -> Option<String> {
    value
        .decode_as::<String>()
        .ok()
        .or_else(|| {
            value
                .decode_as::<der::asn1::PrintableString>()
                .ok()
                .map(|s| s.to_string())
        })
        .or_else(|| {
            value
                .decode_as::<der::asn1::Ia5String>()
                .ok()
                .map(|s| s.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::super::dev_ca::{self, Algorithm, DevKey, Spec};
    use super::*;
    use der::Encode;
    use std::time::Duration;
    use x509_cert::ext::pkix::KeyUsages;

    const USCC: &str = "91530102MA6K0A0018";

    struct Key(DevKey);

    impl Key {
        fn sm2() -> Key {
            Key(DevKey::generate(Algorithm::Sm2).unwrap())
        }
        fn p256() -> Key {
            Key(DevKey::generate(Algorithm::P256).unwrap())
        }
        fn sign(&self, message: &[u8]) -> Vec<u8> {
            self.0.sign(message)
        }
    }

    fn certificate(
        key: &Key,
        subject: &str,
        issuer: Option<(&Key, &Certificate)>,
        usage: KeyUsage,
        ca: bool,
        serial: u64,
    ) -> Certificate {
        let spec = Spec {
            usage: Some(usage),
            ..Spec::new(subject, serial, ca, 365)
        };
        dev_ca::issue(&spec, &key.0, issuer.map(|(k, c)| (&k.0, c))).unwrap()
    }

    fn ca(key: &Key, name: &str) -> Certificate {
        dev_ca::issue(&Spec::ca(name, 1, 365), &key.0, None).unwrap()
    }

    fn leaf(key: &Key, subject: &str, issuer: (&Key, &Certificate), serial: u64) -> Certificate {
        let spec = Spec::new(subject, serial, false, 365);
        dev_ca::issue(&spec, &key.0, Some((&issuer.0 .0, issuer.1))).unwrap()
    }

    /// A CRL (DER) of `root`, signed by `key`.
    fn crl(key: &Key, root: &Certificate, revoked: &[&Certificate]) -> Vec<u8> {
        let next = SystemTime::now() + Duration::from_secs(86400);
        dev_ca::crl(&key.0, root, revoked, 1, next)
            .unwrap()
            .to_der()
            .unwrap()
    }

    fn plain(root: &Certificate) -> Anchor {
        Anchor::new(root.clone(), None).unwrap()
    }

    fn der_of(c: &Certificate) -> Vec<u8> {
        c.to_der().unwrap()
    }

    const SUBJECT: &str = "CN=滇池科技有限公司,2.5.4.97=91530102MA6K0A0018,O=滇池科技有限公司,C=CN";

    #[test]
    fn sm2_and_p256_leaves_verify_through_their_anchor_and_chain() {
        let (sm2_root_key, p256_root_key) = (Key::sm2(), Key::p256());
        let sm2_root = ca(&sm2_root_key, "Tax CA");
        let p256_root = ca(&p256_root_key, "Device CA");
        let anchors = [plain(&sm2_root), plain(&p256_root)];
        let challenge = [7u8; 32];
        let now = SystemTime::now();

        let key = Key::sm2();
        let cert = leaf(&key, SUBJECT, (&sm2_root_key, &sm2_root), 0x1234);
        let ok = verify(
            &anchors,
            &der_of(&cert),
            &[],
            &challenge,
            &key.sign(&challenge),
            now,
        );
        assert_eq!(
            ok,
            Ok(Verified {
                anchor: 0,
                enterprise_id: USCC.into(),
                serial: "1234".into()
            })
        );

        // Through an intermediate, sent as the chain.
        let mid_key = Key::sm2();
        let mid = certificate(
            &mid_key,
            "CN=Tax Sub CA,C=CN",
            Some((&sm2_root_key, &sm2_root)),
            KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
            true,
            9,
        );
        let cert = leaf(&key, SUBJECT, (&mid_key, &mid), 10);
        let sig = key.sign(&challenge);
        assert!(verify(
            &anchors,
            &der_of(&cert),
            &[der_of(&mid)],
            &challenge,
            &sig,
            now
        )
        .is_ok());
        assert_eq!(
            verify(&anchors, &der_of(&cert), &[], &challenge, &sig, now),
            Err(CertError::Untrusted),
            "without its intermediate"
        );
        // The issuing CA configured as the anchor, with its own CRL: the leaves it issued
        // are checked against it (a root's CRL lists only its sub-CAs).
        let issuing = [Anchor::new(mid.clone(), Some(&crl(&mid_key, &mid, &[&cert]))).unwrap()];
        assert_eq!(
            verify(&issuing, &der_of(&cert), &[], &challenge, &sig, now),
            Err(CertError::Revoked)
        );
        let issuing = [Anchor::new(mid.clone(), Some(&crl(&mid_key, &mid, &[]))).unwrap()];
        assert!(verify(&issuing, &der_of(&cert), &[], &challenge, &sig, now).is_ok());
        // The root's CRL revoking the sub-CA revokes everything below it.
        let root_crl = crl(&sm2_root_key, &sm2_root, &[&mid]);
        let revoked_mid = [Anchor::new(sm2_root.clone(), Some(&root_crl)).unwrap()];
        assert_eq!(
            verify(
                &revoked_mid,
                &der_of(&cert),
                &[der_of(&mid)],
                &challenge,
                &sig,
                now
            ),
            Err(CertError::Revoked)
        );

        let key = Key::p256();
        let cert = leaf(&key, SUBJECT, (&p256_root_key, &p256_root), 5);
        let ok = verify(
            &anchors,
            &der_of(&cert),
            &[],
            &challenge,
            &key.sign(&challenge),
            now,
        );
        assert_eq!(ok.map(|v| v.anchor), Ok(1));
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let root_key = Key::sm2();
        let root = ca(&root_key, "Tax CA");
        let challenge = [1u8; 32];
        let now = SystemTime::now();
        let key = Key::sm2();
        let cert = leaf(&key, SUBJECT, (&root_key, &root), 77);
        let sig = key.sign(&challenge);
        let plain = [plain(&root)];
        let check = |anchors: &[Anchor], cert: &Certificate, sig: &[u8], now| {
            verify(anchors, &der_of(cert), &[], &challenge, sig, now)
        };

        // Another challenge, another key, garbage.
        assert_eq!(
            verify(&plain, &der_of(&cert), &[], &[2u8; 32], &sig, now),
            Err(CertError::BadSignature)
        );
        assert_eq!(
            check(&plain, &cert, &Key::sm2().sign(&challenge), now),
            Err(CertError::BadSignature)
        );
        assert_eq!(
            check(&plain, &cert, b"junk", now),
            Err(CertError::BadSignature)
        );
        // Issued by a CA that is not configured.
        let other_key = Key::sm2();
        let other = ca(&other_key, "Tax CA");
        let foreign = leaf(&key, SUBJECT, (&other_key, &other), 78);
        assert_eq!(
            check(&plain, &foreign, &sig, now),
            Err(CertError::Untrusted)
        );
        // Outside its validity.
        let later = now + Duration::from_secs(2 * 365 * 24 * 3600);
        assert_eq!(check(&plain, &cert, &sig, later), Err(CertError::Expired));
        // Revoked, by a CRL the anchor signed; a CRL signed by another key is refused.
        let revoked = [Anchor::new(root.clone(), Some(&crl(&root_key, &root, &[&cert]))).unwrap()];
        assert_eq!(check(&revoked, &cert, &sig, now), Err(CertError::Revoked));
        let clean = [Anchor::new(root.clone(), Some(&crl(&root_key, &root, &[]))).unwrap()];
        assert!(check(&clean, &cert, &sig, now).is_ok());
        assert!(matches!(
            Anchor::new(root.clone(), Some(&crl(&other_key, &root, &[]))),
            Err(CertError::CrlInvalid(_))
        ));
        assert!(matches!(
            Anchor::new(
                root.clone(),
                Some(&crl(&other_key, &ca(&other_key, "Other CA"), &[]))
            ),
            Err(CertError::CrlInvalid(_))
        ));
        assert!(matches!(
            Anchor::new(root.clone(), Some(b"junk")),
            Err(CertError::CrlInvalid(_))
        ));
        let stale = now + Duration::from_secs(2 * 86400);
        assert!(matches!(
            check(&clean, &cert, &sig, stale),
            Err(CertError::CrlInvalid(_))
        ));
        // A certificate that may only sign certificates.
        let signer_only = certificate(
            &key,
            SUBJECT,
            Some((&root_key, &root)),
            KeyUsage(KeyUsages::KeyCertSign.into()),
            false,
            79,
        );
        assert_eq!(
            check(&plain, &signer_only, &sig, now),
            Err(CertError::KeyUsage)
        );
        // No enterprise in it.
        let nameless = leaf(&key, "CN=张三,C=CN", (&root_key, &root), 80);
        assert_eq!(
            check(&plain, &nameless, &sig, now),
            Err(CertError::NoEnterprise)
        );
        // A path through a certificate that is no CA.
        let not_ca_key = Key::sm2();
        let not_ca = leaf(&not_ca_key, "CN=Not a CA,C=CN", (&root_key, &root), 81);
        let below = leaf(&key, SUBJECT, (&not_ca_key, &not_ca), 82);
        assert_eq!(
            verify(
                &plain,
                &der_of(&below),
                &[der_of(&not_ca)],
                &challenge,
                &sig,
                now
            ),
            Err(CertError::Untrusted)
        );
        // Not a certificate.
        assert!(matches!(
            verify(&plain, b"nope", &[], &challenge, &sig, now),
            Err(CertError::Malformed(_))
        ));
    }

    fn rsa() -> Key {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/rsa-2048-test.key"
        );
        Key(DevKey::from_pkcs8_pem(&std::fs::read_to_string(path).unwrap()).unwrap())
    }

    #[test]
    fn rsa_roots_and_rsa_leaves_verify() {
        let now = SystemTime::now();
        let challenge = b"taxgate-ca-login:rsa";
        // An RSA root issuing an SM2 leaf.
        let rsa_key = rsa();
        let rsa_root = ca(&rsa_key, "RSA CA");
        let key = Key::sm2();
        let cert = leaf(&key, SUBJECT, (&rsa_key, &rsa_root), 90);
        let anchors = [plain(&rsa_root)];
        let sig = key.sign(challenge);
        assert!(verify(&anchors, &der_of(&cert), &[], challenge, &sig, now).is_ok());
        // An SM2 root issuing an RSA leaf, which signs the challenge.
        let sm2_key = Key::sm2();
        let sm2_root = ca(&sm2_key, "Tax CA");
        let cert = leaf(&rsa_key, SUBJECT, (&sm2_key, &sm2_root), 91);
        let anchors = [plain(&sm2_root)];
        let sig = rsa_key.sign(challenge);
        let ok = verify(&anchors, &der_of(&cert), &[], challenge, &sig, now);
        assert_eq!(ok.map(|v| v.enterprise_id), Ok(USCC.to_string()));
        assert_eq!(
            verify(&anchors, &der_of(&cert), &[], b"other", &sig, now),
            Err(CertError::BadSignature)
        );
    }

    #[test]
    fn the_enterprise_is_found_where_chinese_cas_put_it() {
        let root_key = Key::p256();
        let root = ca(&root_key, "CA");
        let key = Key::p256();
        let of = |subject: &str| enterprise_id(&leaf(&key, subject, (&root_key, &root), 3));
        assert_eq!(of(SUBJECT).as_deref(), Some(USCC));
        assert_eq!(
            of(&format!("CN=滇池科技,2.5.4.5={USCC},C=CN")).as_deref(),
            Some(USCC)
        );
        assert_eq!(
            of(&format!("CN=滇池科技@{USCC}@1,C=CN")).as_deref(),
            Some(USCC)
        );
        // A USCC-shaped value with a wrong check digit is no enterprise.
        assert_eq!(of("CN=x,2.5.4.97=91530102MA6K0A0019,C=CN"), None);
    }
}
