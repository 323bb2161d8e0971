//! Certificates made in the test: a CA, and leaf certificates for `localhost` and
//! `127.0.0.1` that it signs, as PEM files in a temp dir; and a TLS client that trusts
//! that CA and reports what the handshake agreed, from a chosen loopback address if
//! need be.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pingora::tls;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct TestPki {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

impl TestPki {
    /// A CA in `dir/ca.pem` and a first leaf in `dir/cert.pem`, `dir/key.pem`.
    pub fn new(dir: &Path) -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "taxgate test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let pki = TestPki {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            ca_params,
            ca_key,
        };
        std::fs::write(&pki.ca_file, ca.pem()).unwrap();
        pki.issue("first");
        pki
    }

    /// Issues a new leaf (its common name `name`) and writes it over the old files;
    /// returns its DER.
    pub fn issue(&self, name: &str) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        // Key first: a reload between the two writes sees a mismatched pair and keeps
        // the old one; the certificate write then completes the new pair.
        std::fs::write(&self.key_file, key.serialize_pem()).unwrap();
        std::fs::write(&self.cert_file, cert.pem()).unwrap();
        cert.der().to_vec()
    }

    /// Issues a new leaf whose files have the lengths and mtimes of the ones in force,
    /// so only a signal can tell the gateway they changed; returns its DER.
    pub fn issue_unnoticeably(&self, name: &str) -> Vec<u8> {
        let stamp = |p: &Path| {
            let m = std::fs::metadata(p).unwrap();
            (m.len(), m.modified().unwrap())
        };
        let (cert_before, key_before) = (stamp(&self.cert_file), stamp(&self.key_file));
        let cert_pem = std::fs::read(&self.cert_file).unwrap();
        let key_pem = std::fs::read(&self.key_file).unwrap();
        for _ in 0..100 {
            let der = self.issue(name);
            let same_size = stamp(&self.cert_file).0 == cert_before.0
                && stamp(&self.key_file).0 == key_before.0;
            if same_size {
                for (file, (_, mtime)) in
                    [(&self.cert_file, cert_before), (&self.key_file, key_before)]
                {
                    let f = std::fs::File::options().write(true).open(file).unwrap();
                    f.set_modified(mtime).unwrap();
                }
                return der;
            }
        }
        std::fs::write(&self.cert_file, cert_pem).unwrap();
        std::fs::write(&self.key_file, key_pem).unwrap();
        panic!("no certificate of the same length in 100 tries");
    }
}

/// What one request over TLS saw.
pub struct TlsAnswer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
    pub alpn: Option<Vec<u8>>,
    /// `TLSv1_2` or `TLSv1_3`.
    pub tls_version: Option<String>,
    pub peer_cert: Vec<u8>,
}

/// A client config trusting `ca_file`, offering `alpn`, limited to `versions`.
pub fn client_config(
    ca_file: &Path,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    tls::install_default_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    tls::load_ca_file_into_store(ca_file, &mut roots).unwrap();
    let mut config = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// One GET over a new TLS connection to `addr` (name `localhost`), HTTP/2 when ALPN
/// agreed on it.
pub async fn get(addr: SocketAddr, path: &str, config: Arc<rustls::ClientConfig>) -> TlsAnswer {
    get_with(addr, path, &[], config).await
}

/// [`get`] with extra request headers.
pub async fn get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    config: Arc<rustls::ClientConfig>,
) -> TlsAnswer {
    get_from(Ipv4Addr::LOCALHOST, addr, path, headers, config).await
}

/// A TCP connection to `addr` from the loopback address `from` (any of 127.0.0.0/8).
pub async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A TLS connection to `addr` (name `localhost`) from `from`.
pub async fn connect(
    from: Ipv4Addr,
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> tls::ClientTlsStream<TcpStream> {
    let tcp = connect_from(from, addr).await;
    let name = tls::ServerName::try_from("localhost").unwrap();
    tls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// Sends `request` as is over a new TLS connection; returns what came back until the
/// server closed the connection (at most 5 s).
pub async fn raw(addr: SocketAddr, request: &[u8], config: Arc<rustls::ClientConfig>) -> String {
    let mut stream = connect(Ipv4Addr::LOCALHOST, addr, config).await;
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let read = stream.read_to_end(&mut out);
    // A close without TLS close_notify is an error here; what came before it counts.
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// [`get_with`] from the loopback address `from`.
pub async fn get_from(
    from: Ipv4Addr,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    config: Arc<rustls::ClientConfig>,
) -> TlsAnswer {
    let stream = connect(from, addr, config).await;
    let (_, conn) = stream.get_ref();
    let alpn = conn.alpn_protocol().map(|p| p.to_vec());
    let tls_version = conn.protocol_version().map(|v| format!("{v:?}"));
    let peer_cert = conn.peer_certificates().unwrap()[0].to_vec();
    let h2 = alpn.as_deref() == Some(b"h2");
    let mut req = hyper::Request::get(format!("https://localhost:{}{path}", addr.port()))
        .header("host", format!("localhost:{}", addr.port()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    let io = TokioIo::new(stream);
    let resp = if h2 {
        let mut req = req;
        req.headers_mut().remove("host");
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    } else {
        let mut req = req;
        *req.uri_mut() = path.parse().unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    TlsAnswer {
        status,
        headers,
        body,
        version,
        alpn,
        tls_version,
        peer_cert,
    }
}
