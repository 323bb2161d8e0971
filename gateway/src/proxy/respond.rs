//! Writing the gateway's own answers to the downstream client, and the headers every
//! answer of the public listener carries ([`EdgeHeaders`]).

use crate::api::wire::ApiResponse;
use crate::config::Config;
use crate::error::Error;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

/// Headers added to every answer, the gateway's own and the modules':
/// `Strict-Transport-Security` when the listener speaks TLS.
#[derive(Debug, Clone, Default)]
pub struct EdgeHeaders {
    hsts: Option<String>,
}

impl EdgeHeaders {
    pub fn new(config: &Config) -> EdgeHeaders {
        let hsts = config
            .tls
            .as_ref()
            .filter(|t| t.hsts_seconds > 0)
            .map(|t| format!("max-age={}", t.hsts_seconds));
        EdgeHeaders { hsts }
    }

    /// The `Strict-Transport-Security` value, when answers carry one.
    pub fn hsts(&self) -> Option<&str> {
        self.hsts.as_deref()
    }

    pub fn apply(&self, header: &mut ResponseHeader) -> Result<()> {
        if let Some(hsts) = &self.hsts {
            header.insert_header("strict-transport-security", hsts.as_str())?;
        }
        Ok(())
    }
}

/// Writes a complete response: status, JSON body, optional cookie and error headers,
/// `no-store`.
pub async fn write(session: &mut Session, edge: &EdgeHeaders, resp: ApiResponse) -> Result<()> {
    let mut header = ResponseHeader::build(resp.status, Some(8))?;
    edge.apply(&mut header)?;
    header.insert_header("cache-control", "no-store")?;
    header.insert_header("x-content-type-options", "nosniff")?;
    if let Some(cookie) = resp.set_cookie {
        header.append_header("set-cookie", cookie)?;
    }
    for (name, value) in resp.headers {
        header.insert_header(name, value)?;
    }
    header.insert_header("content-length", resp.body.len().to_string())?;
    if resp.body.is_empty() {
        return session.write_response_header(Box::new(header), true).await;
    }
    header.insert_header("content-type", "application/json; charset=utf-8")?;
    if session.req_header().method == http::Method::HEAD {
        return session.write_response_header(Box::new(header), true).await;
    }
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session
        .write_response_body(Some(Bytes::from(resp.body)), true)
        .await
}

pub async fn error(session: &mut Session, edge: &EdgeHeaders, e: &Error) -> Result<()> {
    write(session, edge, ApiResponse::error(e)).await
}

/// Writes an embedded portal file (its headers alone for HEAD).
pub async fn asset(
    session: &mut Session,
    edge: &EdgeHeaders,
    asset: crate::portal::Asset,
) -> Result<()> {
    let mut header = ResponseHeader::build(200, Some(8))?;
    edge.apply(&mut header)?;
    header.insert_header("content-type", asset.content_type)?;
    header.insert_header("content-length", asset.body.len().to_string())?;
    header.insert_header("cache-control", "no-cache")?;
    header.insert_header("x-content-type-options", "nosniff")?;
    header.insert_header("x-frame-options", "DENY")?;
    header.insert_header(
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    )?;
    if session.req_header().method == http::Method::HEAD {
        return session.write_response_header(Box::new(header), true).await;
    }
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session
        .write_response_body(Some(Bytes::from_static(asset.body)), true)
        .await
}
