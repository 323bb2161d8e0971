//! The JSON API under `/api/v1` (API.md).
//!
//! Contract: [`handle`] takes an [`ApiRequest`] (already size-limited by the caller) and
//! always returns an [`ApiResponse`]: a handler's error becomes the JSON error body with
//! its status. Routing is a flat match on method and path; handlers live in one file per
//! flow and do only wire work (parse, call an `App` operation, shape the answer).
//! State-changing calls made with a session must carry its CSRF token.

pub mod certificate_login;
pub mod error;
pub mod login;
pub mod manage;
pub mod recovery;
pub mod register;
pub mod wire;

use crate::app::App;
use crate::auth::session::SessionContext;
use crate::error::{Code, Error};
use http::Method;
use wire::{ApiRequest, ApiResponse};

pub const PREFIX: &str = "/api/v1";

pub async fn handle(app: &App, req: &ApiRequest) -> ApiResponse {
    let now = crate::clock::now();
    match route(app, req, now).await {
        Ok(resp) => resp,
        Err(e) => ApiResponse::error(&e),
    }
}

async fn route(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    let m = &req.method;
    match req.path.as_str() {
        "/captcha" => {
            only(m, Method::GET)?
                .then(login::captcha(app, req, now))
                .await
        }
        "/tax-authorities" => {
            only(m, Method::GET)?
                .then(login::tax_authorities(app))
                .await
        }
        "/modules" => only(m, Method::GET)?.then(login::modules(app)).await,
        "/login/enterprise" => {
            only(m, Method::POST)?
                .then(login::enterprise(app, req, now))
                .await
        }
        "/login/ca/challenge" => {
            only(m, Method::POST)?
                .then(certificate_login::challenge(app, req, now))
                .await
        }
        "/login/ca" => {
            only(m, Method::POST)?
                .then(certificate_login::login(app, req, now))
                .await
        }
        "/login/officer/sms" => {
            only(m, Method::POST)?
                .then(login::officer_sms(app, req, now))
                .await
        }
        "/login/officer" => {
            only(m, Method::POST)?
                .then(login::officer(app, req, now))
                .await
        }
        "/session" => {
            only(m, Method::GET)?
                .then(login::session(app, req, now))
                .await
        }
        "/logout" => {
            only(m, Method::POST)?
                .then(login::logout(app, req, now))
                .await
        }
        "/realname/start" => {
            only(m, Method::POST)?
                .then(register::realname_start(app, req, now))
                .await
        }
        p if p.starts_with("/realname/") => {
            let id = p.trim_start_matches("/realname/");
            only(m, Method::GET)?
                .then(register::realname_status(app, id, now))
                .await
        }
        "/register/sms" => {
            only(m, Method::POST)?
                .then(register::register_sms(app, req, now))
                .await
        }
        "/register/person" => {
            only(m, Method::POST)?
                .then(register::register_person(app, req, now))
                .await
        }
        "/register/enterprise-user/start" => {
            only(m, Method::POST)?
                .then(register::enterprise_user_start(app, req, now))
                .await
        }
        "/register/enterprise-user/authorizers" => {
            only(m, Method::GET)?
                .then(register::authorizers(app, req, now))
                .await
        }
        "/register/enterprise-user/authorizer-sms" => {
            only(m, Method::POST)?
                .then(register::authorizer_sms(app, req, now))
                .await
        }
        "/register/enterprise-user/confirm" => {
            only(m, Method::POST)?
                .then(register::confirm(app, req, now))
                .await
        }
        "/recovery/person/start" => {
            only(m, Method::POST)?
                .then(recovery::person_start(app, req, now))
                .await
        }
        "/recovery/person/verify" => {
            only(m, Method::POST)?
                .then(recovery::person_verify(app, req, now))
                .await
        }
        "/recovery/person/reset" => {
            only(m, Method::POST)?
                .then(recovery::person_reset(app, req, now))
                .await
        }
        "/recovery/enterprise/start" => {
            only(m, Method::POST)?
                .then(recovery::enterprise_start(app, req, now))
                .await
        }
        "/recovery/enterprise/sms" => {
            only(m, Method::POST)?
                .then(recovery::enterprise_sms(app, req, now))
                .await
        }
        "/recovery/enterprise/verify" => {
            only(m, Method::POST)?
                .then(recovery::enterprise_verify(app, req, now))
                .await
        }
        "/recovery/enterprise/reset" => {
            only(m, Method::POST)?
                .then(recovery::enterprise_reset(app, req, now))
                .await
        }
        "/enterprise/users" => match *m {
            Method::GET | Method::HEAD => manage::users(app, req, now).await,
            Method::POST => manage::add_user(app, req, now).await,
            _ => Err(Error::method_not_allowed("GET, HEAD, POST")),
        },
        "/enterprise/candidates" => {
            only(m, Method::GET)?
                .then(manage::candidates(app, req, now))
                .await
        }
        p if grants_target(p).is_some() => {
            let id = grants_target(p).unwrap_or_default();
            only(m, Method::PUT)?
                .then(manage::set_grants(app, req, id, now))
                .await
        }
        _ => Err(Error::new(Code::NotFound).with_message("接口不存在")),
    }
}

/// `/enterprise/users/{id}/grants` → `id` (one non-empty segment).
fn grants_target(path: &str) -> Option<&str> {
    path.strip_prefix("/enterprise/users/")?
        .strip_suffix("/grants")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Proof that the method matched; `then` runs the handler.
struct Allowed;

impl Allowed {
    async fn then<F: std::future::Future<Output = Result<ApiResponse, Error>>>(
        self,
        f: F,
    ) -> Result<ApiResponse, Error> {
        f.await
    }
}

/// `allowed`, and HEAD wherever GET is (RFC 9110 §9.3.2; the edge drops the body).
fn only(method: &Method, allowed: Method) -> Result<Allowed, Error> {
    let head_for_get = allowed == Method::GET && *method == Method::HEAD;
    if *method == allowed || head_for_get {
        Ok(Allowed)
    } else if allowed == Method::GET {
        Err(Error::method_not_allowed("GET, HEAD"))
    } else {
        Err(Error::method_not_allowed(allowed.as_str()))
    }
}

/// The caller's live session, or `UNAUTHENTICATED`.
pub async fn require_session(
    app: &App,
    req: &ApiRequest,
    now: i64,
) -> Result<SessionContext, Error> {
    let token = req
        .session_token
        .as_deref()
        .ok_or_else(|| Error::new(Code::Unauthenticated))?;
    app.resolve_session(token, now)
        .await?
        .ok_or_else(|| Error::new(Code::Unauthenticated).with_message("登录已失效，请重新登录"))
}

/// A state-changing call with a session must echo the session's CSRF token.
pub fn require_csrf(req: &ApiRequest, ctx: &SessionContext) -> Result<(), Error> {
    match req.csrf_token.as_deref() {
        Some(t)
            if crate::crypto::secrets::ct_eq(t.as_bytes(), ctx.session().csrf_token.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(Error::new(Code::CsrfInvalid)),
    }
}
