//! The `ProxyHttp` implementation. Thin: each stage is one function.

use super::api_threads::ApiThreads;
use super::respond::EdgeHeaders;
use super::{forwarded, identity, strict};
use super::{path, respond};
use crate::api::wire::{ApiRequest, ApiResponse};
use crate::app::App;
use crate::audit::Event;
use crate::auth::officers::facts;
use crate::auth::session_cache::LiveSession;
use crate::config::Route;
use crate::crypto::signing::Identity;
use crate::error::{Code, Error as Denial};
use crate::metrics::RequestKind;
use crate::policy::Decision;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Gateway {
    pub app: Arc<App>,
    /// Where API calls run (see its contract).
    pub api: ApiThreads,
    /// Added to every answer (HSTS with TLS).
    pub edge: EdgeHeaders,
    /// Set once this process hands its sockets over or stops (server.rs): every answer
    /// then closes its connection, so no client reuses one the process is about to drop.
    pub draining: Arc<AtomicBool>,
}

/// Per-request state, filled by `request_filter`.
#[derive(Default)]
pub struct Ctx {
    /// The client's address (proxy/forwarded.rs).
    client: Option<IpAddr>,
    /// `http` or `https`, as the client reached the edge.
    proto: &'static str,
    /// When the request body must have been read (`limits.body_read_seconds`).
    body_deadline: Option<Instant>,
    forward: Option<Forward>,
}

impl Ctx {
    fn client_ip(&self) -> String {
        self.client.map(forwarded::ip_text).unwrap_or_default()
    }
}

/// A request Cedar permitted: where it goes and whom it acts for.
pub struct Forward {
    route: Arc<Route>,
    live: Arc<LiveSession>,
    request_id: String,
    now: i64,
}

impl Forward {
    fn identity(&self) -> Identity<'_> {
        Identity {
            enterprise: &self.live.officer.enterprise,
            person: &self.live.officer.person,
            roles: &self.live.roles_header,
            module: &self.route.module,
            request_id: &self.request_id,
            timestamp: self.now,
        }
    }
}

/// What `request_filter` decided.
enum Outcome {
    /// Answered here (API call or refusal).
    Answered,
    /// Cedar permitted.
    Forward(Forward),
}

impl Gateway {
    async fn serve_api(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        api_path: String,
    ) -> Result<()> {
        let limit = self.app.config.limits.max_body_bytes;
        let body = match read_body(session, ctx, limit).await? {
            Some(b) => b,
            None => {
                return self
                    .refuse(session, &Denial::new(Code::PayloadTooLarge))
                    .await
            }
        };
        let req = session.req_header();
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let api_req = ApiRequest {
            method: req.method.clone(),
            path: api_path,
            query: req.uri.query().map(str::to_string),
            session_token: identity::session_cookie(req).map(str::to_string),
            csrf_token: header("x-csrf-token"),
            client_ip: ctx.client_ip(),
            user_agent: header("user-agent").unwrap_or_default(),
            body,
        };
        let app = self.app.clone();
        let call = async move { crate::api::handle(&app, &api_req).await };
        let resp = match self.api.run(call).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(error = %e, "API call failed");
                ApiResponse::error(&Denial::new(Code::Internal))
            }
        };
        respond::write(session, &self.edge, resp).await
    }

    /// Who the client is and how it came (proxy/forwarded.rs), the body deadline, and
    /// `Connection: close` while this process drains.
    fn note_client(&self, session: &mut Session, ctx: &mut Ctx) {
        if self.draining.load(Ordering::Relaxed) {
            session.set_keepalive(None);
        }
        let config = &self.app.config;
        ctx.body_deadline = Some(Instant::now() + config.limits.body_read);
        let req = session.req_header();
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let trusted = &config.trusted_proxies;
        ctx.client = forwarded::client_addr(peer, &req.headers, trusted);
        let peer_trusted = peer.is_some_and(|ip| trusted.contains(ip));
        ctx.proto = forwarded::client_proto(config.tls.is_some(), peer_trusted, &req.headers);
    }

    async fn refuse(&self, session: &mut Session, e: &Denial) -> Result<()> {
        respond::error(session, &self.edge, e).await
    }

    /// Session, CSRF and Cedar for a request to a routed module.
    async fn authorize(
        &self,
        session: &mut Session,
        ctx: &Ctx,
        route: &Arc<Route>,
    ) -> Result<Outcome> {
        let now = crate::clock::now();
        let req = session.req_header();
        let live = match identity::session_cookie(req) {
            Some(token) => self.app.resolve_session(token, now).await,
            None => Ok(None),
        };
        let live = match live {
            Ok(Some(live)) => live,
            Ok(None) => {
                self.refuse(session, &Denial::new(Code::Unauthenticated))
                    .await?;
                return Ok(Outcome::Answered);
            }
            Err(e) => {
                self.refuse(session, &e).await?;
                return Ok(Outcome::Answered);
            }
        };
        let unsafe_method = !matches!(
            req.method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        );
        if unsafe_method {
            let sent = req.headers.get("x-csrf-token").map(|v| v.as_bytes());
            let ok = sent.is_some_and(|t| {
                crate::crypto::secrets::ct_eq(t, live.session().csrf_token.as_bytes())
            });
            if !ok {
                self.refuse(session, &Denial::new(Code::CsrfInvalid))
                    .await?;
                return Ok(Outcome::Answered);
            }
        }
        let decision = self.app.policy.authorize_module(
            &facts(live.officer(), live.roles(), live.session().login),
            &route.module,
        );
        self.app.metrics.decision(decision.is_allowed());
        if let Decision::Deny { policies } = decision {
            let path = req.uri.path().to_string();
            self.app.audit.record_later(
                now,
                Event::new("proxy.denied", "forbidden")
                    .enterprise(&live.officer().enterprise)
                    .person(&live.officer().person)
                    .client(&ctx.client_ip())
                    .detail(format!(
                        "{} {path} module={} policies={policies:?}",
                        req.method, route.module
                    )),
            );
            self.refuse(session, &Denial::new(Code::Forbidden)).await?;
            return Ok(Outcome::Answered);
        }
        Ok(Outcome::Forward(Forward {
            route: route.clone(),
            live: live.live().clone(),
            request_id: crate::crypto::secrets::request_id(),
            now,
        }))
    }
}

/// What the request line and headers get wrong, before anything reads them further:
/// `CONNECT` (no tunnels; an authority-form target names no resource, so `Allow` lists
/// what the gateway serves at all), RFC 9112's `Host` and target rules, and the path
/// rules (SPEC S7).
fn malformed(req: &RequestHeader) -> Option<Denial> {
    if req.method == http::Method::CONNECT {
        return Some(Denial::method_not_allowed(strict::SERVED_METHODS));
    }
    if let Err(strict::Malformed(message)) = strict::check(req) {
        return Some(Denial::invalid("request", message));
    }
    path::check(req.uri.path())
        .err()
        .map(|e| Denial::invalid("path", e.message_zh()))
}

/// Reads the whole request body by its deadline; `None` when it exceeds `limit` bytes.
async fn read_body(session: &mut Session, ctx: &Ctx, limit: usize) -> Result<Option<Bytes>> {
    let mut buf = BytesMut::new();
    loop {
        arm_body_deadline(session, ctx)?;
        let Some(chunk) = session.read_request_body().await? else {
            return Ok(Some(buf.freeze()));
        };
        if buf.len() + chunk.len() > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
}

/// Gives the next body read what is left of the request's body deadline, so a client
/// that trickles its body is cut when the deadline passes, however it paces the bytes.
fn arm_body_deadline(session: &mut Session, ctx: &Ctx) -> Result<()> {
    let Some(deadline) = ctx.body_deadline else {
        return Ok(());
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Error::e_explain(ErrorType::ReadTimedout, "request body deadline passed");
    }
    session.set_read_timeout(Some(left.max(Duration::from_millis(1))));
    Ok(())
}

/// A request whose framing or body encoding is broken: answered 400, then closed.
fn is_malformed_request(e: &Error) -> bool {
    match e.etype() {
        ErrorType::InvalidHTTPHeader => true,
        ErrorType::Custom(kind) => matches!(*kind, "InvalidChunk" | "InvalidTrailerEnd"),
        _ => false,
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        self.note_client(session, ctx);
        let kind = |k: RequestKind| self.app.metrics.request(k);
        if let Some(refusal) = malformed(session.req_header()) {
            kind(RequestKind::Refused);
            session.set_keepalive(None);
            self.refuse(session, &refusal).await?;
            return Ok(true);
        }
        let raw_path = session.req_header().uri.path().to_string();
        if let Some(rest) = api_path(&raw_path) {
            kind(RequestKind::Api);
            self.serve_api(session, ctx, rest.to_string()).await?;
            return Ok(true);
        }
        if let Some(asset) = crate::portal::asset(&raw_path) {
            kind(RequestKind::Portal);
            let method = &session.req_header().method;
            if !matches!(*method, http::Method::GET | http::Method::HEAD) {
                self.refuse(session, &Denial::method_not_allowed("GET, HEAD"))
                    .await?;
                return Ok(true);
            }
            respond::asset(session, &self.edge, asset).await?;
            return Ok(true);
        }
        if session.req_header().method == http::Method::TRACE {
            // A module never echoes a request's headers (cross-site tracing).
            kind(RequestKind::Refused);
            self.refuse(session, &Denial::method_not_allowed(strict::SERVED_METHODS))
                .await?;
            return Ok(true);
        }
        let Some(route) = self.app.routes.find(&raw_path) else {
            kind(RequestKind::Refused);
            self.refuse(session, &Denial::new(Code::NotFound)).await?;
            return Ok(true);
        };
        kind(RequestKind::Proxy);
        match self.authorize(session, ctx, route).await? {
            Outcome::Answered => Ok(true),
            Outcome::Forward(forward) => {
                ctx.forward = Some(forward);
                Ok(false)
            }
        }
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        arm_body_deadline(session, ctx)
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        arm_body_deadline(session, ctx)?;
        let forward = ctx
            .forward
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no upstream chosen"))?;
        let upstream = &forward.route.upstream;
        Ok(Box::new(HttpPeer::new(
            upstream.addr,
            upstream.tls_name.is_some(),
            upstream.tls_name.clone().unwrap_or_default(),
        )))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        strict::origin_form(upstream_request);
        forwarded::strip_client_headers(upstream_request);
        identity::strip_session(upstream_request);
        forwarded::set_forwarding(upstream_request, ctx.client, ctx.proto);
        let forward = ctx
            .forward
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no identity"))?;
        identity::add_signed(upstream_request, &self.app.signer, forward.identity())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        _ctx: &mut Ctx,
    ) -> Result<()> {
        self.edge.apply(upstream_response)
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        if let Some(forward) = &ctx.forward {
            let status = session.response_written().map_or(0, |r| r.status.as_u16());
            tracing::debug!(
                request_id = %forward.request_id,
                module = %forward.route.module,
                method = %session.req_header().method,
                path = %session.req_header().uri.path(),
                status,
                error = e.map(|e| e.to_string()),
                "proxied"
            );
        }
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, _ctx: &mut Ctx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ if is_malformed_request(e) => 400,
            _ => match e.esource() {
                pingora::ErrorSource::Upstream => 502,
                pingora::ErrorSource::Downstream => 0,
                _ => 500,
            },
        };
        // Nothing more can be said once the answer has begun.
        if code > 0 && session.response_written().is_none() {
            let err = match code {
                400 => Denial::invalid("body", "请求体格式错误"),
                502 => {
                    Denial::new(Code::Unavailable).with_message("办税模块暂时不可用，请稍后再试")
                }
                _ => Denial::new(Code::Internal),
            };
            let resp = ApiResponse::error_with_status(code, &err);
            let _ = respond::write(session, &self.edge, resp).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }
}

/// `/api/v1/x` → `/x`; `None` outside the API.
fn api_path(path: &str) -> Option<&str> {
    path.strip_prefix(crate::api::PREFIX)
        .filter(|rest| rest.starts_with('/'))
}
