//! The trust anchors of certificate login (config `ca_roots`): each CA's root and CRL,
//! and the login kind its certificates give (CA登录 or 税控设备登录).
//!
//! Contract: [`TrustAnchors::load`] reads every root and CRL and fails on any that does
//! not load (the gateway does not start with a broken anchor). Afterwards
//! [`TrustAnchors::refresh`] re-reads the files of an anchor whose root or CRL changed
//! (length, modification time or inode, so an atomic rename counts) and swaps the new
//! set in atomically; an anchor whose new files do not load keeps its previous root
//! and CRL and the failure is logged, so a half-written CRL never turns revocation
//! checking off. [`spawn_refresher`] calls it every interval. Verification reads the
//! set in force without locking. [`TrustAnchors::status`] is what an operator watches
//! (`GET /admin/ca`, the metric `taxgate_ca_crl_next_update_seconds`): when each CRL
//! goes stale, and the last refresh that failed.

use crate::config::{CaRoot, CertificateLogin};
use crate::crypto::certificate::{self, Anchor, CertError, Verified};
use crate::store::records::LoginKind;
use arc_swap::ArcSwap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

/// What identifies a version of a file: (length, mtime, inode).
type Stamp = Option<(u64, SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?, m.ino()))
}

/// The anchors in force, in config order, with the stamps of the files they came from
/// and the error of the last refresh that did not load them.
struct Loaded {
    anchors: Vec<Anchor>,
    stamps: Vec<[Stamp; 2]>,
    errors: Vec<Option<String>>,
}

/// One CA as an operator sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaStatus {
    pub name: String,
    /// `ca` or `device`: the login its certificates give.
    pub kind: &'static str,
    /// With a CRL: when it goes stale (Unix seconds; logins by this CA's certificates
    /// are refused after it) and how many serials it revokes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl_next_update: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl_revoked: Option<usize>,
    /// Why the files on disk are not the ones in force, if they are not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

pub struct TrustAnchors {
    roots: Vec<CaRoot>,
    current: ArcSwap<Loaded>,
}

/// A certificate that verified, and the login it gives.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub verified: Verified,
    pub login: LoginKind,
    /// The configured name of the CA (`ca_roots[].name`).
    pub ca: String,
}

impl TrustAnchors {
    pub fn load(roots: &[CaRoot]) -> Result<TrustAnchors, String> {
        let mut anchors = Vec::with_capacity(roots.len());
        let mut stamps = Vec::with_capacity(roots.len());
        for root in roots {
            let s = stamps_of(root);
            anchors.push(read(root).map_err(|e| format!("ca_roots `{}`: {e}", root.name))?);
            stamps.push(s);
        }
        Ok(TrustAnchors {
            roots: roots.to_vec(),
            current: ArcSwap::from_pointee(Loaded {
                errors: vec![None; anchors.len()],
                anchors,
                stamps,
            }),
        })
    }

    /// Whether certificate login is configured at all.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Re-reads the anchors whose files changed (see the module contract); returns how
    /// many were replaced.
    pub fn refresh(&self) -> usize {
        let old = self.current.load();
        let mut anchors = Vec::with_capacity(self.roots.len());
        let mut stamps = Vec::with_capacity(self.roots.len());
        let mut errors = old.errors.clone();
        let mut replaced = 0;
        for (i, (root, previous)) in self.roots.iter().zip(&old.anchors).enumerate() {
            let now = stamps_of(root);
            if old.stamps.get(i) == Some(&now) {
                anchors.push(previous.clone());
                stamps.push(now);
                continue;
            }
            let error = match read(root) {
                Ok(anchor) => {
                    tracing::info!(ca = %root.name, "certificate login: CA root and CRL reloaded");
                    anchors.push(anchor);
                    replaced += 1;
                    None
                }
                Err(e) => {
                    tracing::warn!(ca = %root.name, error = %e, "certificate login: CA files not reloaded; the previous ones stay in force");
                    anchors.push(previous.clone());
                    Some(e)
                }
            };
            if let Some(slot) = errors.get_mut(i) {
                *slot = error;
            }
            // Remembered either way: a broken file is reported once, not every interval.
            stamps.push(now);
        }
        if replaced > 0 || stamps != old.stamps {
            self.current.store(Arc::new(Loaded {
                anchors,
                stamps,
                errors,
            }));
        }
        replaced
    }

    /// Every CA in config order, as in force now.
    pub fn status(&self) -> Vec<CaStatus> {
        let current = self.current.load();
        let unix = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        };
        self.roots
            .iter()
            .zip(&current.anchors)
            .zip(&current.errors)
            .map(|((root, anchor), error)| {
                let crl = anchor.crl_state();
                CaStatus {
                    name: root.name.clone(),
                    kind: match root.kind {
                        CertificateLogin::Ca => "ca",
                        CertificateLogin::Device => "device",
                    },
                    crl_next_update: crl.and_then(|(next, _)| next).map(unix),
                    crl_revoked: crl.map(|(_, n)| n),
                    last_error: error.clone(),
                }
            })
            .collect()
    }

    /// Verifies a login certificate (DER), the intermediates the client sent (DER), and
    /// its signature over `challenge` at `now` (Unix seconds).
    pub fn verify(
        &self,
        leaf: &[u8],
        chain: &[Vec<u8>],
        challenge: &[u8],
        signature: &[u8],
        now: i64,
    ) -> Result<Accepted, CertError> {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
        let current = self.current.load();
        let verified =
            certificate::verify(&current.anchors, leaf, chain, challenge, signature, at)?;
        let root = self
            .roots
            .get(verified.anchor)
            .ok_or(CertError::Untrusted)?;
        Ok(Accepted {
            login: match root.kind {
                CertificateLogin::Ca => LoginKind::Ca,
                CertificateLogin::Device => LoginKind::Device,
            },
            ca: root.name.clone(),
            verified,
        })
    }
}

fn stamps_of(root: &CaRoot) -> [Stamp; 2] {
    [
        stamp(&root.root_file),
        root.crl_file.as_deref().and_then(stamp),
    ]
}

fn read(root: &CaRoot) -> Result<Anchor, String> {
    Anchor::load(&root.root_file, root.crl_file.as_deref())
}

/// Starts the thread that calls [`TrustAnchors::refresh`] every `interval`; it ends with
/// the anchors.
pub fn spawn_refresher(anchors: &Arc<TrustAnchors>, interval: Duration) {
    if anchors.is_empty() {
        return;
    }
    let weak: Weak<TrustAnchors> = Arc::downgrade(anchors);
    let started = std::thread::Builder::new()
        .name("ca-refresher".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            match weak.upgrade() {
                Some(anchors) => {
                    anchors.refresh();
                }
                None => return,
            }
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "certificate login: CRL refresher not started");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::dev_ca::{self, Algorithm, DevKey, Spec};

    struct Ca {
        key: DevKey,
        root: x509_cert::Certificate,
        dir: tempfile::TempDir,
    }

    impl Ca {
        fn new() -> Ca {
            let key = DevKey::generate(Algorithm::Sm2).unwrap();
            let root = dev_ca::issue(&Spec::ca("CA", 1, 10), &key, None).unwrap();
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("root.pem"),
                dev_ca::certificate_pem(&root).unwrap(),
            )
            .unwrap();
            Ca { key, root, dir }
        }
        fn crl(&self, revoked: &[&x509_cert::Certificate], number: u64) {
            let next = SystemTime::now() + Duration::from_secs(3600);
            let crl = dev_ca::crl(&self.key, &self.root, revoked, number, next).unwrap();
            let path = self.dir.path().join("crl.pem");
            std::fs::write(path.with_extension("tmp"), dev_ca::crl_pem(&crl).unwrap()).unwrap();
            std::fs::rename(path.with_extension("tmp"), path).unwrap();
        }
        fn config(&self, kind: CertificateLogin) -> CaRoot {
            CaRoot {
                name: "测试CA".into(),
                kind,
                root_file: self.dir.path().join("root.pem"),
                crl_file: Some(self.dir.path().join("crl.pem")),
            }
        }
    }

    #[test]
    fn a_changed_crl_is_taken_and_a_broken_one_is_not() {
        let ca = Ca::new();
        ca.crl(&[], 1);
        let anchors = TrustAnchors::load(&[ca.config(CertificateLogin::Device)]).unwrap();
        let key = DevKey::generate(Algorithm::Sm2).unwrap();
        let spec = Spec::enterprise("甲", "91530102MA6K0A0018", 5, 1);
        let cert = dev_ca::issue(&spec, &key, Some((&ca.key, &ca.root))).unwrap();
        let der = der::Encode::to_der(&cert).unwrap();
        let now = crate::clock::now();
        let check = || anchors.verify(&der, &[], b"c", &key.sign(b"c"), now);
        let accepted = check().unwrap();
        assert_eq!(
            (accepted.login, accepted.ca.as_str()),
            (LoginKind::Device, "测试CA")
        );
        assert_eq!(anchors.refresh(), 0, "nothing changed");

        ca.crl(&[&cert], 2);
        assert_eq!(anchors.refresh(), 1);
        assert_eq!(check().unwrap_err(), CertError::Revoked);

        std::fs::write(ca.dir.path().join("crl.pem"), "not a CRL").unwrap();
        assert_eq!(anchors.refresh(), 0, "a broken CRL is not taken");
        assert_eq!(
            check().unwrap_err(),
            CertError::Revoked,
            "the previous CRL stays"
        );
        ca.crl(&[], 3);
        assert_eq!(anchors.refresh(), 1);
        assert!(check().is_ok());
    }

    #[test]
    fn loading_refuses_a_missing_or_broken_anchor() {
        let ca = Ca::new();
        let e = TrustAnchors::load(&[ca.config(CertificateLogin::Ca)])
            .err()
            .unwrap();
        assert!(e.contains("测试CA") && e.contains("crl.pem"), "{e}");
        ca.crl(&[], 1);
        std::fs::write(ca.dir.path().join("root.pem"), "junk").unwrap();
        let e = TrustAnchors::load(&[ca.config(CertificateLogin::Ca)])
            .err()
            .unwrap();
        assert!(e.contains("not a PEM certificate"), "{e}");
        assert!(TrustAnchors::load(&[]).unwrap().is_empty());
    }
}
