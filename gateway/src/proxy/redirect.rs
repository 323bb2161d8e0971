//! The optional plain-HTTP listener beside a TLS one (`tls.redirect_listen`): it serves
//! nothing, and sends every request to the same host and target over https.
//!
//! Contract: a request with a valid `Host` gets `308 Permanent Redirect` (the method and
//! body are kept by clients) to `https://{host}{:port}{target}`, the port being the TLS
//! listener's unless it is 443; anything else is 400. No cookie or identity is read.

use super::strict;
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

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
impl ServeHttp for Redirect {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()));
        let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let location = host.and_then(|h| self.location(h, target));
        let builder = Response::builder().header("content-length", 0);
        let answer = match location {
            Some(location) => builder.status(308).header("location", location),
            None => builder.status(400),
        };
        answer.body(Vec::new()).unwrap_or_default()
    }
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
