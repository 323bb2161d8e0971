//! A small certificate authority for development and tests: `taxgate dev pki` (the demo's
//! certificates), `taxgate dev sign` (the development stand-in for the signing plug-in),
//! the black-box tests and the unit tests of [`super::certificate`].
//!
//! Contract: keys are SM2 (GB/T 32918, ID `1234567812345678`), ECDSA P-256 or RSA
//! (PKCS#1 v1.5 with SHA-256; read from a file only, generating one is slow), read and
//! written as PKCS#8 PEM. [`issue`] makes a root (self-signed), an intermediate or a
//! leaf with the extensions real Chinese CAs carry (authority and subject key
//! identifiers, basic constraints, key usage); [`crl`] a CRL. Signatures are DER
//! (SM2 signed by hand: GM/T 0015 wants the DER SEQUENCE where the builder would write
//! raw r‖s). Nothing here runs in `serve`; production certificates come from the
//! bureau's CA. Errors are messages for a developer.

use super::certificate::SM2_ID;
use der::asn1::{BitString, Uint};
use der::{Encode, EncodePem};
use signature::Signer;
use spki::{SubjectPublicKeyInfo, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use std::str::FromStr;
use std::time::SystemTime;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder, CrlBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::crl::{CertificateList, RevokedCert};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlNumber, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

/// The key algorithms of the development CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// SM2 with SM3: what tax certificates (CA登录) use.
    Sm2,
    /// ECDSA P-256 with SHA-256.
    P256,
}

/// A private key of the development CA. `Debug` names the algorithm only.
pub enum DevKey {
    Sm2(sm2::dsa::SigningKey),
    P256(p256::ecdsa::SigningKey),
    Rsa(rsa::pkcs1v15::SigningKey<sha2_011::Sha256>),
}

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DevKey::Sm2(_) => "DevKey::Sm2(..)",
            DevKey::P256(_) => "DevKey::P256(..)",
            DevKey::Rsa(_) => "DevKey::Rsa(..)",
        })
    }
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl DevKey {
    pub fn generate(algorithm: Algorithm) -> Result<DevKey, String> {
        use sm2::elliptic_curve::Generate;
        Ok(match algorithm {
            Algorithm::Sm2 => DevKey::Sm2(
                sm2::dsa::SigningKey::new(SM2_ID, &sm2::SecretKey::generate()).map_err(text)?,
            ),
            Algorithm::P256 => DevKey::P256(p256::ecdsa::SigningKey::generate()),
        })
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`): SM2, P-256 or RSA.
    pub fn from_pkcs8_pem(pem: &str) -> Result<DevKey, String> {
        use sm2::pkcs8::DecodePrivateKey;
        if let Ok(k) = sm2::SecretKey::from_pkcs8_pem(pem) {
            return Ok(DevKey::Sm2(
                sm2::dsa::SigningKey::new(SM2_ID, &k).map_err(text)?,
            ));
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_pem(pem) {
            return Ok(DevKey::P256(k.into()));
        }
        rsa::pkcs1v15::SigningKey::<sha2_011::Sha256>::from_pkcs8_pem(pem)
            .map(DevKey::Rsa)
            .map_err(|e| format!("not a PKCS#8 PEM SM2, P-256 or RSA private key: {e}"))
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> Result<String, String> {
        use sm2::pkcs8::{EncodePrivateKey, LineEnding};
        let pem = match self {
            DevKey::Sm2(k) => sm2::SecretKey::from(k.as_nonzero_scalar())
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(text)?,
            DevKey::P256(k) => p256::SecretKey::from(k.as_nonzero_scalar())
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(text)?,
            DevKey::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF).map_err(text)?,
        };
        Ok(pem.to_string())
    }

    pub fn public_key_info(&self) -> Result<SubjectPublicKeyInfoOwned, String> {
        match self {
            DevKey::Sm2(k) => SubjectPublicKeyInfo::from_key(k.verifying_key()).map_err(text),
            DevKey::P256(k) => SubjectPublicKeyInfo::from_key(k.verifying_key()).map_err(text),
            DevKey::Rsa(k) => {
                SubjectPublicKeyInfo::from_key(&signature::Keypair::verifying_key(k)).map_err(text)
            }
        }
    }

    /// The signature over `message`: DER for SM2 with SM3 and ECDSA with SHA-256, PKCS#1
    /// v1.5 with SHA-256 for RSA.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            DevKey::Sm2(k) => {
                let sig: sm2::dsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            DevKey::P256(k) => {
                let sig: p256::ecdsa::DerSignature = k.sign(message);
                sig.as_bytes().to_vec()
            }
            DevKey::Rsa(k) => {
                let sig: rsa::pkcs1v15::Signature = k.sign(message);
                signature::SignatureEncoding::to_vec(&sig)
            }
        }
    }

    /// Signs what a certificate or CRL builder built.
    fn build<B: Builder>(&self, mut builder: B) -> Result<B::Output, String> {
        match self {
            DevKey::Sm2(k) => {
                let tbs = builder.finalize(k).map_err(text)?;
                let sig: sm2::dsa::Signature = k.sign(&tbs);
                let bits = BitString::from_bytes(sig.to_der().as_bytes()).map_err(text)?;
                builder.assemble(bits, k).map_err(text)
            }
            DevKey::P256(k) => builder
                .build::<_, p256::ecdsa::DerSignature>(k)
                .map_err(text),
            DevKey::Rsa(k) => builder
                .build::<_, rsa::pkcs1v15::Signature>(k)
                .map_err(text),
        }
    }
}

/// What to put in a certificate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// An RFC 4514 name, e.g. `CN=云南滇池科技有限公司,2.5.4.97=91530102709712345P,C=CN`.
    pub subject: String,
    pub serial: u64,
    /// A CA (may sign certificates and CRLs) or a leaf (may sign logins).
    pub ca: bool,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// Overrides the usage that follows from `ca`.
    pub usage: Option<KeyUsage>,
}

impl Spec {
    /// A CA named `CN=<name>,C=CN`, valid from now for `days`.
    pub fn ca(name: &str, serial: u64, days: u64) -> Spec {
        Spec::new(&format!("CN={name},C=CN"), serial, true, days)
    }

    /// The certificate of an enterprise: its name and USCC (`organizationIdentifier`,
    /// 2.5.4.97, where the gateway looks first), valid from now for `days`.
    pub fn enterprise(name: &str, uscc: &str, serial: u64, days: u64) -> Spec {
        Spec::new(
            &format!("CN={name},2.5.4.97={uscc},O={name},C=CN"),
            serial,
            false,
            days,
        )
    }

    pub fn new(subject: &str, serial: u64, ca: bool, days: u64) -> Spec {
        let now = SystemTime::now();
        Spec {
            subject: subject.to_string(),
            serial,
            ca,
            not_before: now - std::time::Duration::from_secs(60),
            not_after: now + std::time::Duration::from_secs(days * 24 * 3600),
            usage: None,
        }
    }
}

/// The extensions of a CA or a leaf.
struct Profile {
    subject: Name,
    issuer: Option<Name>,
    usage: KeyUsage,
    ca: bool,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut e = Vec::with_capacity(4);
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(SubjectKeyIdentifier::try_from(issuer_spk)?.0),
            ..Default::default()
        };
        e.push(aki.to_extension(tbs.subject(), &e)?);
        let bc = BasicConstraints {
            ca: self.ca,
            path_len_constraint: None,
        };
        e.push(bc.to_extension(tbs.subject(), &e)?);
        e.push(self.usage.to_extension(tbs.subject(), &e)?);
        e.push(SubjectKeyIdentifier::try_from(spk)?.to_extension(tbs.subject(), &e)?);
        Ok(e)
    }
}

/// Issues the certificate of `spec` for `subject_key`, signed by `issuer` (its key and
/// certificate), or self-signed when `issuer` is `None`.
pub fn issue(
    spec: &Spec,
    subject_key: &DevKey,
    issuer: Option<(&DevKey, &Certificate)>,
) -> Result<Certificate, String> {
    let usage = spec.usage.unwrap_or(if spec.ca {
        KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
    } else {
        KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation)
    });
    let profile = Profile {
        subject: Name::from_str(&spec.subject).map_err(|e| format!("{}: {e}", spec.subject))?,
        issuer: issuer.map(|(_, c)| c.tbs_certificate().subject().clone()),
        usage,
        ca: spec.ca,
    };
    let validity = Validity::new(
        Time::try_from(spec.not_before).map_err(text)?,
        Time::try_from(spec.not_after).map_err(text)?,
    );
    let builder = CertificateBuilder::new(
        profile,
        SerialNumber::from(spec.serial),
        validity,
        subject_key.public_key_info()?,
    )
    .map_err(text)?;
    issuer.map_or(subject_key, |(k, _)| k).build(builder)
}

/// A CRL of `issuer` listing `revoked`, valid until `next_update`.
pub fn crl(
    key: &DevKey,
    issuer: &Certificate,
    revoked: &[&Certificate],
    number: u64,
    next_update: SystemTime,
) -> Result<CertificateList, String> {
    let serials = revoked
        .iter()
        .map(|c| c.tbs_certificate().serial_number().clone());
    crl_of_serials(key, issuer, serials, number, next_update)
}

/// A CRL of `issuer` listing these serial numbers (e.g. a large one for a benchmark).
pub fn crl_of_serials(
    key: &DevKey,
    issuer: &Certificate,
    serials: impl IntoIterator<Item = SerialNumber>,
    number: u64,
    next_update: SystemTime,
) -> Result<CertificateList, String> {
    let now = Time::try_from(SystemTime::now()).map_err(text)?;
    let entries = serials.into_iter().map(move |serial_number| RevokedCert {
        serial_number,
        revocation_date: now,
        crl_entry_extensions: None,
    });
    let number = Uint::new(&number.to_be_bytes()).map_err(text)?;
    let builder = CrlBuilder::new(issuer, CrlNumber(number))
        .map_err(text)?
        .with_next_update(Some(Time::try_from(next_update).map_err(text)?))
        .with_certificates(entries);
    key.build(builder)
}

/// A certificate as PEM (`-----BEGIN CERTIFICATE-----`).
pub fn certificate_pem(cert: &Certificate) -> Result<String, String> {
    cert.to_pem(der::pem::LineEnding::LF).map_err(text)
}

/// A CRL as PEM (`-----BEGIN X509 CRL-----`).
pub fn crl_pem(list: &CertificateList) -> Result<String, String> {
    let der = list.to_der().map_err(text)?;
    der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, &der).map_err(text)
}

/// Reads a PEM certificate.
pub fn certificate_from_pem(pem: &str) -> Result<Certificate, String> {
    use der::DecodePem;
    Certificate::from_pem(pem.as_bytes()).map_err(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::certificate::{verify, Anchor};

    /// Every kind of key survives PKCS#8 PEM and signs what the verifier accepts.
    #[test]
    fn keys_round_trip_through_pem_and_sign_verifiably() {
        let rsa_pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/rsa-2048-test.key"
        ))
        .unwrap();
        let keys = [
            DevKey::generate(Algorithm::Sm2).unwrap(),
            DevKey::generate(Algorithm::P256).unwrap(),
            DevKey::from_pkcs8_pem(&rsa_pem).unwrap(),
        ];
        let root_key = DevKey::generate(Algorithm::Sm2).unwrap();
        let root = issue(&Spec::ca("Root", 1, 1), &root_key, None).unwrap();
        let crl = crl(
            &root_key,
            &root,
            &[],
            7,
            SystemTime::now() + std::time::Duration::from_secs(60),
        )
        .unwrap();
        let (_, crl_back) = der::pem::decode_vec(crl_pem(&crl).unwrap().as_bytes()).unwrap();
        let anchors = [Anchor::new(root.clone(), Some(&crl_back)).unwrap()];
        for (i, key) in keys.iter().enumerate() {
            let again = DevKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
            assert_eq!(
                again.public_key_info().unwrap(),
                key.public_key_info().unwrap()
            );
            let spec = Spec::enterprise("甲", "91530102MA6K0A0018", 10 + i as u64, 1);
            let cert = issue(&spec, &again, Some((&root_key, &root))).unwrap();
            let pem = certificate_pem(&cert).unwrap();
            let der = der::Encode::to_der(&certificate_from_pem(&pem).unwrap()).unwrap();
            let sig = key.sign(b"challenge");
            let v = verify(&anchors, &der, &[], b"challenge", &sig, SystemTime::now());
            assert_eq!(
                v.map(|v| v.serial),
                Ok(format!("{:02x}", 10 + i)),
                "{key:?}"
            );
        }
        assert!(DevKey::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
        assert_eq!(format!("{:?}", keys[0]), "DevKey::Sm2(..)");
    }
}
