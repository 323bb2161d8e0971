//! The optional plain-HTTP listener beside a TLS one (`tls.redirect_listen`): it serves
//! nothing, and sends every request to the same host and target over https.
//!
//! Contract: a request with a valid `Host` gets `308 Permanent Redirect` (the method and
//! body are kept by clients) to `https://{host}{:port}{target}`, the port being the TLS
//! listener's unless it is 443; anything else is 400, also a request pingora's parser
//! refuses (user info in `Host`, two `Host` lines), which pingora's own HTTP app would
//! close unanswered. No cookie or identity is read.

use super::strict;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use pingora::ErrorType;
use std::sync::Arc;

/// How long a redirected client may keep its connection for another request.
const KEEPALIVE_SECONDS: u64 = 60;

pub struct Redirect {
    /// The TLS listener's port.
    pub https_port: u16,
}

impl Redirect {
    /// Where a request for `host` and `target` goes; `None` for an invalid `Host`.
    fn location(&self, host: &str, target: &str) -> Option<String> {
        if !strict::valid_host(host) {
            return None;
        }
        let authority: http::uri::Authority = host.parse().ok()?;
        let port = match self.https_port {
            443 => String::new(),
            p => format!(":{p}"),
        };
        let target = if target.starts_with('/') { target } else { "/" };
        Some(format!("https://{}{port}{target}", authority.host()))
    }
}

#[async_trait]
impl HttpServerApp for Redirect {
    async fn process_new_http(
        self: &Arc<Self>,
        mut http: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match http.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) if *e.etype() == ErrorType::InvalidHTTPHeader => {
                let _ = http.write_error_response(answer(400)?, Bytes::new()).await;
                return None;
            }
            Err(e) => {
                tracing::debug!(error = %e, "redirect listener: request not read");
                return None;
            }
        }
        let keepalive = (!*shutdown.borrow()).then_some(KEEPALIVE_SECONDS);
        http.set_keepalive(keepalive);
        let req = http.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()));
        let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let location = host.and_then(|h| self.location(h, target));
        let header = match location {
            Some(location) => {
                let mut header = answer(308)?;
                header.insert_header("location", location).ok()?;
                header
            }
            None => answer(400)?,
        };
        http.write_response_header(Box::new(header)).await.ok()?;
        let settings = HttpPersistentSettings::for_session(&http);
        let reusable = http.finish().await.ok()??;
        Some(ReusedHttpStream::from_reusable_stream(reusable, settings))
    }
}

/// An empty answer with `status`.
fn answer(status: u16) -> Option<ResponseHeader> {
    let mut header = ResponseHeader::build(status, Some(2)).ok()?;
    header.insert_header("content-length", "0").ok()?;
    Some(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_to_the_tls_port_keeping_host_and_target() {
        let r = Redirect { https_port: 8443 };
        assert_eq!(
            r.location("gw.example:8080", "/tax/zzs?a=1").as_deref(),
            Some("https://gw.example:8443/tax/zzs?a=1")
        );
        assert_eq!(
            r.location("[::1]:80", "/").as_deref(),
            Some("https://[::1]:8443/")
        );
        let standard = Redirect { https_port: 443 };
        assert_eq!(
            standard.location("gw.example", "/x").as_deref(),
            Some("https://gw.example/x")
        );
        assert_eq!(r.location("evil@gw.example", "/"), None);
        assert_eq!(r.location("gw.example/x", "/"), None);
    }
}
