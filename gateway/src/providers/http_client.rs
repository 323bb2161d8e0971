//! The HTTP client the providers reach outside services with: `http://`, or `https://`
//! verified against `upstream_ca_file` when the config names one, else the system's
//! roots (TLS 1.2 and 1.3, rustls).

use super::ProviderError;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pingora::tls::{ClientConfig, RootCertStore};
use std::path::Path;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub fn client(ca_file: Option<&Path>) -> Result<HttpClient, ProviderError> {
    pingora::tls::install_default_crypto_provider();
    let mut roots = RootCertStore::empty();
    let loaded = match ca_file {
        Some(file) => pingora::tls::load_ca_file_into_store(file, &mut roots),
        None => pingora::tls::load_platform_certs_incl_env_into_store(&mut roots),
    };
    loaded.map_err(|e| ProviderError::Unavailable(format!("TLS roots: {e}")))?;
    Ok(with_roots(roots))
}

/// A client whose `https://` trusts exactly `roots` (none: plain HTTP only).
pub fn with_roots(roots: RootCertStore) -> HttpClient {
    pingora::tls::install_default_crypto_provider();
    let tls = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::Arc;

    /// An https server with a certificate for `localhost` from a CA written to
    /// `dir/ca.pem`; answers every request `200 ok`.
    async fn https_server(dir: &Path) -> u16 {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
            .unwrap();
        pingora::tls::install_default_crypto_provider();
        let der = pingora::tls::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let config = pingora::tls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], der)
            .unwrap();
        let acceptor = pingora::tls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                let io = hyper_util::rt::TokioIo::new(tls);
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, svc));
            }
        });
        port
    }

    #[tokio::test]
    async fn https_is_verified_against_the_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let port = https_server(dir.path()).await;
        let url = format!("https://localhost:{port}/send");
        let get = |client: HttpClient| {
            let req = hyper::Request::get(url.as_str())
                .body(Full::new(Bytes::new()))
                .unwrap();
            async move { client.request(req).await }
        };
        let trusting = client(Some(&dir.path().join("ca.pem"))).unwrap();
        let resp = get(trusting).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        // The system's roots do not know the test CA.
        assert!(get(client(None).unwrap()).await.is_err());
        assert!(client(Some(Path::new("/nonexistent/ca.pem"))).is_err());
    }
}
