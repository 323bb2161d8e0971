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
    let tls = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}
