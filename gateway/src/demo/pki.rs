//! The demo's certificates: `taxgate dev pki`, and `taxgate demo` on every start.
//!
//! Contract: [`ensure`] makes, under `dir`, what is missing of
//! - `ca/root.pem`, `ca/root.key`: an SM2 root standing for the bureau's CA (CA登录),
//!   and `ca/crl.pem`, its CRL, issued again on every call (valid 30 days);
//! - `device/root.pem`, `device/root.key`: a P-256 root for tax control devices
//!   (税控设备登录), without CRL;
//! - for each enterprise of the registry file, `certs/<account>.pem` / `.key` (SM2, by
//!   the CA) and `certs/<account>-device.pem` / `.key` (P-256, by the device CA), where
//!   `<account>` is its USCC (or TIN), also written in the subject's
//!   `organizationIdentifier`.
//!
//! What exists is kept, so certificates survive demo restarts. Keys are PKCS#8 PEM,
//! readable by their owner only. `taxgate dev sign` signs a challenge with such a key.
//! Development only: nothing here is used by `serve`.

use crate::config::{CaRoot, CertificateLogin};
use crate::crypto::dev_ca::{self, Algorithm, DevKey, Spec};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;

/// Years the demo roots and certificates are valid.
const DAYS: u64 = 5 * 365;

/// The files [`ensure`] made or found.
pub struct DemoPki {
    pub dir: PathBuf,
    /// (account, enterprise name) of every enterprise with certificates.
    pub enterprises: Vec<(String, String)>,
}

impl DemoPki {
    /// The anchors to configure: the CA (with its CRL) and the device CA.
    pub fn ca_roots(&self) -> Vec<CaRoot> {
        vec![
            CaRoot {
                name: "演示CA（SM2）".into(),
                kind: CertificateLogin::Ca,
                root_file: self.dir.join("ca/root.pem"),
                crl_file: Some(self.dir.join("ca/crl.pem")),
            },
            CaRoot {
                name: "演示税控设备CA（P-256）".into(),
                kind: CertificateLogin::Device,
                root_file: self.dir.join("device/root.pem"),
                crl_file: None,
            },
        ]
    }
}

pub fn ensure(dir: &Path, registry: &Path) -> Result<DemoPki, String> {
    for sub in ["ca", "device", "certs"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let (ca_key, ca) = root(&dir.join("ca"), Algorithm::Sm2, "taxgate 演示CA")?;
    let (device_key, device) = root(
        &dir.join("device"),
        Algorithm::P256,
        "taxgate 演示税控设备CA",
    )?;
    let next_update = SystemTime::now() + Duration::from_secs(30 * 24 * 3600);
    // The CRL number grows with each issue: the time it was made.
    let number = u64::try_from(crate::clock::now()).unwrap_or(0);
    let crl = dev_ca::crl(&ca_key, &ca, &[], number, next_update)?;
    write(
        &dir.join("ca/crl.pem"),
        dev_ca::crl_pem(&crl)?.as_bytes(),
        false,
    )?;

    let enterprises = registry_enterprises(registry)?;
    for (i, (account, name)) in enterprises.iter().enumerate() {
        let serial = 1000 + i as u64 * 2;
        let certs = dir.join("certs");
        let enterprise = (account.as_str(), name.as_str());
        leaf(
            &certs.join(account),
            enterprise,
            serial,
            (&ca_key, &ca),
            Algorithm::Sm2,
        )?;
        let device = (&device_key, &device);
        let stem = certs.join(format!("{account}-device"));
        leaf(&stem, enterprise, serial + 1, device, Algorithm::P256)?;
    }
    Ok(DemoPki {
        dir: dir.to_path_buf(),
        enterprises,
    })
}

/// The root in `dir` (`root.pem`, `root.key`), made if missing.
fn root(dir: &Path, algorithm: Algorithm, name: &str) -> Result<(DevKey, Certificate), String> {
    let (cert_file, key_file) = (dir.join("root.pem"), dir.join("root.key"));
    if let (Ok(cert), Ok(key)) = (
        std::fs::read_to_string(&cert_file),
        std::fs::read_to_string(&key_file),
    ) {
        return Ok((
            DevKey::from_pkcs8_pem(&key)?,
            dev_ca::certificate_from_pem(&cert)?,
        ));
    }
    let key = DevKey::generate(algorithm)?;
    let cert = dev_ca::issue(&Spec::ca(name, 1, DAYS), &key, None)?;
    write(&key_file, key.to_pkcs8_pem()?.as_bytes(), true)?;
    write(
        &cert_file,
        dev_ca::certificate_pem(&cert)?.as_bytes(),
        false,
    )?;
    Ok((key, cert))
}

/// `<stem>.pem` / `<stem>.key` of the enterprise (account, name), made if missing.
fn leaf(
    stem: &Path,
    (account, name): (&str, &str),
    serial: u64,
    issuer: (&DevKey, &Certificate),
    algorithm: Algorithm,
) -> Result<(), String> {
    let (cert_file, key_file) = (stem.with_extension("pem"), stem.with_extension("key"));
    if cert_file.exists() && key_file.exists() {
        return Ok(());
    }
    let key = DevKey::generate(algorithm)?;
    let spec = Spec::enterprise(name, account, serial, DAYS);
    let cert = dev_ca::issue(&spec, &key, Some(issuer))?;
    write(&key_file, key.to_pkcs8_pem()?.as_bytes(), true)?;
    write(
        &cert_file,
        dev_ca::certificate_pem(&cert)?.as_bytes(),
        false,
    )
}

/// (USCC or TIN, name) of each enterprise of a registry file.
fn registry_enterprises(registry: &Path) -> Result<Vec<(String, String)>, String> {
    let text =
        std::fs::read_to_string(registry).map_err(|e| format!("{}: {e}", registry.display()))?;
    let v: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", registry.display()))?;
    Ok(v["enterprises"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let account = e["uscc"].as_str().or(e["tin"].as_str())?;
            Some((account.to_string(), e["name"].as_str()?.to_string()))
        })
        .collect())
}

/// Writes `bytes` to `path` (replacing it atomically); `secret`: owner-only.
fn write(path: &Path, bytes: &[u8], secret: bool) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// `taxgate dev sign`: the base64 signature of `challenge` by the key in `key_file`
/// (SM2 with SM3 and ID 1234567812345678 or ECDSA P-256 with SHA-256, as DER; RSA
/// PKCS#1 v1.5 with SHA-256).
pub fn sign(key_file: &Path, challenge: &str) -> Result<String, String> {
    use base64::Engine;
    let pem =
        std::fs::read_to_string(key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let key = DevKey::from_pkcs8_pem(&pem).map_err(|e| format!("{}: {e}", key_file.display()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key.sign(challenge.as_bytes())))
}
