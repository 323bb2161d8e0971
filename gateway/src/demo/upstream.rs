//! A demo tax module: a small hyper server that answers every request with what it
//! received from the gateway (API.md): `{"module","method","path","headers",
//! "signature_valid"}`, `headers` holding each `x-taxgate-*` header (lower-case names).
//! It checks the identity signature as a real module would, so a person sees it verify.

use crate::crypto::secrets::Keyed;
use crate::crypto::signing::{self, Identity, IdentitySigner, SignedIdentity};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What a module saw, for tests and for the demo's answers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Received {
    pub module: String,
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    /// The request target as received (absolute-form if the gateway sent that).
    #[serde(skip)]
    pub target: String,
    /// Every header received: lower-case name, value (to check what was stripped).
    #[serde(skip)]
    pub all_headers: Vec<(String, String)>,
    #[serde(skip)]
    pub cookie: Option<String>,
    pub signature_valid: bool,
}

/// A running echo module.
#[derive(Clone)]
pub struct EchoModule {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Received {
    /// The value of header `name` (lower case), if received.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl EchoModule {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Starts an echo module for `module` on `127.0.0.1:0` on the current tokio runtime.
pub async fn spawn(module: &str, key: &[u8]) -> std::io::Result<EchoModule> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let signer = IdentitySigner::new(Keyed::new(key));
    let echo = EchoModule {
        addr,
        hits: Arc::new(AtomicUsize::new(0)),
        log: Arc::new(Mutex::new(Vec::new())),
    };
    let state = (module.to_string(), Arc::new(signer), echo.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move {
                        // A module reads what it is sent before it answers: a body left
                        // unread makes hyper close the connection after the answer, and
                        // the gateway may already have chosen it for the next request.
                        let (parts, body) = req.into_parts();
                        let _ = body.collect().await;
                        let req = Request::from_parts(parts, ());
                        Ok::<_, std::convert::Infallible>(answer(&state.0, &state.1, &state.2, req))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(echo)
}

fn answer(
    module: &str,
    signer: &IdentitySigner,
    echo: &EchoModule,
    req: Request<()>,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .filter(|(n, _)| n.as_str().starts_with(signing::RESERVED_PREFIX))
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().as_str().to_string();
    let timestamp = header(signing::HEADER_TIMESTAMP).parse().unwrap_or(0);
    let (e, p, r, m, id) = (
        header(signing::HEADER_ENTERPRISE),
        header(signing::HEADER_PERSON),
        header(signing::HEADER_ROLES),
        header(signing::HEADER_MODULE),
        header(signing::HEADER_REQUEST_ID),
    );
    let signature_valid = signer.verify(
        &SignedIdentity {
            identity: Identity {
                enterprise: &e,
                person: &p,
                roles: &r,
                module: &m,
                request_id: &id,
                timestamp,
            },
            method: &method,
            path: &path,
        },
        &header(signing::HEADER_SIGNATURE),
    );
    let received = Received {
        module: module.to_string(),
        method,
        path,
        headers,
        target: req.uri().to_string(),
        all_headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        cookie: req
            .headers()
            .get("cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        signature_valid,
    };
    echo.hits.fetch_add(1, Ordering::SeqCst);
    let body = serde_json::to_vec(&received).unwrap_or_default();
    if let Ok(mut log) = echo.log.lock() {
        log.push(received);
    }
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}
