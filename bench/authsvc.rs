//! `bench-authsvc`: what people build instead of taxgate (SPEC P2): the session checker
//! behind nginx `auth_request`. It answers 204 when the request's `taxgate_session`
//! cookie is in an in-memory set of live tokens, 401 otherwise. No store, no policy.
//!
//! ```text
//! bench-authsvc --listen 127.0.0.1:PORT [--tokens 2000] [--threads 1]
//! ```
//! The live tokens are the bench's permitted sessions `bench-allow-000000` ….

use bytes::Bytes;
use http_body_util::Empty;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashSet;
use std::sync::Arc;

// The allocator taxgate ships with, so the comparison measures the work, not malloc.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn check(tokens: &HashSet<String>, req: &Request<hyper::body::Incoming>) -> StatusCode {
    let live = req
        .headers()
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == "taxgate_session" && tokens.contains(v));
    if live {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen", "127.0.0.1:6192");
    let n: usize = arg(&args, "--tokens", "2000").parse().expect("--tokens");
    let threads: usize = arg(&args, "--threads", "1").parse().expect("--threads");
    let tokens: Arc<HashSet<String>> =
        Arc::new((0..n).map(|i| format!("bench-allow-{i:06}")).collect());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
        println!(
            "listening on http://{}",
            listener.local_addr().expect("addr")
        );
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let tokens = tokens.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let status = check(&tokens, &req);
                    async move {
                        let mut resp = Response::new(Empty::<Bytes>::new());
                        *resp.status_mut() = status;
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}
