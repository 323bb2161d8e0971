//! Providers for what lies outside the gateway: image captchas, the SMS gateway and (with
//! registration) real-name verification. Each has a production implementation and a
//! development one that writes to an outbox file so a person or a test can read it.

pub mod captcha;
pub mod http_client;
pub mod outbox;
pub mod realname;
pub mod sms;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// A stand-in for an external HTTP service, for the providers' tests: answers every
/// request with `answer(method, path, body)` and records what it received.
impl From<ProviderError> for crate::error::Error {
    fn from(e: ProviderError) -> crate::error::Error {
        tracing::warn!(error = %e, "provider failed");
        crate::error::Error::new(crate::error::Code::Unavailable)
    }
}

#[cfg(test)]
pub(crate) mod fake_service {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::sync::{Arc, Mutex};

    pub type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

    pub async fn start(
        answer: impl Fn(&str, &str, &str) -> (u16, String) + Send + Sync + 'static,
    ) -> (String, Seen) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let answer = Arc::new(answer);
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (answer, log) = (answer.clone(), log.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (answer, log) = (answer.clone(), log.clone());
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let body = String::from_utf8_lossy(&body).into_owned();
                            let (status, text) = answer(&method, &path, &body);
                            log.lock().unwrap().push((method, path, body));
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(text)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (url, seen)
    }
}
