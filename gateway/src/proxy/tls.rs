//! TLS on the public listener: rustls through pingora's acceptor, the certificate
//! replaced without a restart.
//!
//! Contract: [`Certificates::load`] reads a PEM chain and its key and refuses a pair
//! that does not match. The listener asks [`Certificates`] for the certificate on every
//! handshake, so a swap takes effect for the next connection; connections already open
//! keep theirs. [`spawn_reloader`] swaps when either file's length or mtime changes
//! (polled each interval) or on SIGHUP; a pair that fails to load is logged and the
//! one in force stays. [`acceptor`] gives the listener TLS 1.2 and 1.3 only (rustls has
//! nothing older) and ALPN `h2`, `http/1.1`; proxy/connection.rs runs its handshake.

use arc_swap::ArcSwap;
use pingora::listeners::tls::{Acceptor, TlsSettings};
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

/// The certificate in force and where it comes from.
pub struct Certificates {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: ArcSwap<CertifiedKey>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<Certificates>, String> {
        Ok(Arc::new(Certificates {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: ArcSwap::from_pointee(read_pair(cert_file, key_file)?),
        }))
    }

    /// Reads the files again and puts the pair in force.
    pub fn reload(&self) -> Result<(), String> {
        let pair = read_pair(&self.cert_file, &self.key_file)?;
        self.current.store(Arc::new(pair));
        Ok(())
    }

    fn stamp(&self) -> Option<[(u64, SystemTime); 2]> {
        let of = |p: &Path| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.len(), m.modified().ok()?))
        };
        Some([of(&self.cert_file)?, of(&self.key_file)?])
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    pingora::tls::install_default_crypto_provider();
    let (cert, key) = (cert_file.display(), key_file.display());
    let (chain, der) = pingora::tls::load_certs_and_key_files(
        &cert_file.to_string_lossy(),
        &key_file.to_string_lossy(),
    )
    .map_err(|e| format!("{cert} / {key}: {e}"))?
    .ok_or_else(|| format!("{cert} / {key}: no certificate or no private key found"))?;
    let provider = CryptoProvider::get_default()
        .ok_or_else(|| "no TLS crypto provider installed".to_string())?;
    CertifiedKey::from_der(chain, der, provider)
        .map_err(|e| format!("{cert} / {key}: {e} (does the key belong to the certificate?)"))
}

/// The listener's TLS acceptor around `certificates` (its handshake is run by
/// proxy/connection.rs).
pub fn acceptor(certificates: Arc<Certificates>) -> Result<Acceptor, String> {
    Ok(settings(certificates)?.build())
}

/// The listener's TLS settings around `certificates`.
fn settings(certificates: Arc<Certificates>) -> Result<TlsSettings, String> {
    let mut settings = TlsSettings::intermediate(
        &certificates.cert_file.to_string_lossy(),
        &certificates.key_file.to_string_lossy(),
    )
    .map_err(|e| e.to_string())?;
    settings.set_cert_resolver(certificates);
    settings.enable_h2();
    Ok(settings)
}

/// Starts the thread that reloads on a file change or SIGHUP (see the module
/// contract). It holds a weak reference and ends with the listener.
pub fn spawn_reloader(certificates: &Arc<Certificates>, interval: Duration) {
    let weak = Arc::downgrade(certificates);
    let seen = certificates.stamp();
    let started = std::thread::Builder::new()
        .name("tls-reloader".into())
        .spawn(move || watch(weak, seen, interval));
    if let Err(e) = started {
        tracing::warn!(error = %e, "TLS certificate reloader not started");
    }
}

fn watch(weak: Weak<Certificates>, mut seen: Option<[(u64, SystemTime); 2]>, interval: Duration) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return tracing::warn!(error = %e, "TLS certificate reloader not started"),
    };
    runtime.block_on(async move {
        let mut hangup =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "SIGHUP not handled; certificate files are polled");
                    None
                }
            };
        loop {
            let signalled = tokio::select! {
                _ = tokio::time::sleep(interval) => false,
                Some(()) = async { hangup.as_mut()?.recv().await } => true,
            };
            let Some(certificates) = weak.upgrade() else {
                return;
            };
            let now = certificates.stamp();
            if !signalled && now == seen {
                continue;
            }
            seen = now;
            match certificates.reload() {
                Ok(()) => tracing::info!(
                    cert = %certificates.cert_file.display(),
                    signalled,
                    "TLS certificate reloaded"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "TLS certificate not reloaded; the one in force stays"
                ),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn loads_reloads_and_refuses_a_mismatched_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = write_pair(dir.path(), "one.example");
        let certs = Certificates::load(&c, &k).unwrap();
        let first = certs.current.load_full().cert[0].clone();

        let other = tempfile::tempdir().unwrap();
        let (c2, k2) = write_pair(other.path(), "two.example");
        std::fs::copy(&c2, &c).unwrap();
        std::fs::copy(&k2, &k).unwrap();
        certs.reload().unwrap();
        assert_ne!(certs.current.load_full().cert[0], first);

        // A key that is not the certificate's: refused, the pair in force stays.
        let third = tempfile::tempdir().unwrap();
        let (_, k3) = write_pair(third.path(), "three.example");
        std::fs::copy(&k3, &k).unwrap();
        assert!(certs.reload().is_err());
        assert!(Certificates::load(&c, &k).is_err());
        assert!(Certificates::load(&c, Path::new("/nonexistent")).is_err());
    }
}
