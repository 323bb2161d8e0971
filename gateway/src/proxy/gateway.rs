//! The `ProxyHttp` implementation. Thin: each stage is one function.

use super::api_threads::ApiThreads;
use super::identity;
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
use pingora::http::RequestHeader;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use std::sync::Arc;

pub struct Gateway {
    pub app: Arc<App>,
    /// Where API calls run (see its contract).
    pub api: ApiThreads,
}

/// Per-request state, filled by `request_filter`.
#[derive(Default)]
pub struct Ctx {
    forward: Option<Forward>,
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

fn client_ip(session: &Session) -> String {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

impl Gateway {
    async fn serve_api(&self, session: &mut Session, api_path: String) -> Result<()> {
        let limit = self.app.config.limits.max_body_bytes;
        let body = match read_body(session, limit).await? {
            Some(b) => b,
            None => return respond::error(session, &Denial::new(Code::PayloadTooLarge)).await,
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
            client_ip: client_ip(session),
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
        respond::write(session, resp).await
    }

    /// Session, CSRF and Cedar for a request to a routed module.
    async fn authorize(&self, session: &mut Session, route: &Arc<Route>) -> Result<Outcome> {
        let now = crate::clock::now();
        let req = session.req_header();
        let ctx = match identity::session_cookie(req) {
            Some(token) => self.app.resolve_session(token, now).await,
            None => Ok(None),
        };
        let ctx = match ctx {
            Ok(Some(ctx)) => ctx,
            Ok(None) => {
                respond::error(session, &Denial::new(Code::Unauthenticated)).await?;
                return Ok(Outcome::Answered);
            }
            Err(e) => {
                respond::error(session, &e).await?;
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
                crate::crypto::secrets::ct_eq(t, ctx.session().csrf_token.as_bytes())
            });
            if !ok {
                respond::error(session, &Denial::new(Code::CsrfInvalid)).await?;
                return Ok(Outcome::Answered);
            }
        }
        let decision = self
            .app
            .policy
            .authorize_module(&facts(ctx.officer(), ctx.roles()), &route.module);
        self.app.metrics.decision(decision.is_allowed());
        if let Decision::Deny { policies } = decision {
            let path = req.uri.path().to_string();
            self.app
                .audit
                .record(
                    now,
                    Event::new("proxy.denied", "forbidden")
                        .enterprise(&ctx.officer().enterprise)
                        .person(&ctx.officer().person)
                        .client(&client_ip(session))
                        .detail(format!(
                            "{} {path} module={} policies={policies:?}",
                            req.method, route.module
                        )),
                )
                .await;
            respond::error(session, &Denial::new(Code::Forbidden)).await?;
            return Ok(Outcome::Answered);
        }
        Ok(Outcome::Forward(Forward {
            route: route.clone(),
            live: ctx.live().clone(),
            request_id: crate::crypto::secrets::request_id(),
            now,
        }))
    }
}

/// Reads the whole request body; `None` when it exceeds `limit` bytes.
async fn read_body(session: &mut Session, limit: usize) -> Result<Option<Bytes>> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if buf.len() + chunk.len() > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let raw_path = session.req_header().uri.path().to_string();
        let kind = |k: RequestKind| self.app.metrics.request(k);
        if let Err(e) = path::check(&raw_path) {
            kind(RequestKind::Refused);
            let err = Denial::invalid("path", e.message_zh());
            respond::error(session, &err).await?;
            return Ok(true);
        }
        if let Some(rest) = api_path(&raw_path) {
            kind(RequestKind::Api);
            self.serve_api(session, rest.to_string()).await?;
            return Ok(true);
        }
        if let Some(asset) = crate::portal::asset(&raw_path) {
            kind(RequestKind::Portal);
            respond::asset(session, asset).await?;
            return Ok(true);
        }
        let Some(route) = self.app.routes.find(&raw_path) else {
            kind(RequestKind::Refused);
            respond::error(session, &Denial::new(Code::NotFound)).await?;
            return Ok(true);
        };
        kind(RequestKind::Proxy);
        match self.authorize(session, route).await? {
            Outcome::Answered => Ok(true),
            Outcome::Forward(forward) => {
                ctx.forward = Some(forward);
                Ok(false)
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let forward = ctx
            .forward
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no upstream chosen"))?;
        Ok(Box::new(HttpPeer::new(
            forward.route.upstream,
            false,
            String::new(),
        )))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        identity::strip_reserved(upstream_request);
        identity::strip_session(upstream_request);
        let forward = ctx
            .forward
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no identity"))?;
        identity::add_signed(upstream_request, &self.app.signer, forward.identity())
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
            _ => match e.esource() {
                pingora::ErrorSource::Upstream => 502,
                pingora::ErrorSource::Downstream => 0,
                _ => 500,
            },
        };
        if code > 0 {
            let err = if code == 502 {
                Denial::new(Code::Unavailable).with_message("办税模块暂时不可用，请稍后再试")
            } else {
                Denial::new(Code::Internal)
            };
            let _ = respond::write(session, ApiResponse::error_with_status(code, &err)).await;
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
