//! Handlers of the login flow and the session (API.md): captcha, stage 1, SMS for
//! stage 2, stage 2, the session view, logout; plus the public catalog reads
//! (tax authorities, module tree).

use super::wire::{ApiRequest, ApiResponse, Text};
use super::{require_csrf, require_session};
use crate::app::App;
use crate::auth::login::{Client, Stage1, Verification};
use crate::auth::officers::{facts, OfficerEntry};
use crate::auth::throttle::RateClass;
use crate::error::{Code, Error};
use crate::identity::{mask_name, mask_phone};
use crate::policy::{Decision, EnterpriseAction, ModuleView};
use crate::store::records::{Enterprise, LoginKind, Source, TaxAuthority};
use crate::store::Tree;
use serde::{Deserialize, Serialize};

pub fn client(app: &App, req: &ApiRequest) -> Client {
    Client {
        ip: req.client_ip.clone(),
        fingerprint: crate::auth::client_fingerprint(app, &req.client_ip, &req.user_agent),
    }
}

#[derive(Serialize)]
struct EnterpriseView<'a> {
    name: &'a str,
    uscc: &'a str,
}

fn enterprise_view(e: &Enterprise) -> EnterpriseView<'_> {
    EnterpriseView {
        name: &e.name,
        uscc: e.uscc.as_deref().unwrap_or(&e.key),
    }
}

pub(super) fn count_login<T>(app: &App, stage: &str, r: &Result<T, Error>) {
    let result = match r {
        Ok(_) => "ok".to_string(),
        Err(e) => serde_json::to_value(e.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_lowercase))
            .unwrap_or_default(),
    };
    app.metrics
        .logins
        .with_label_values(&[stage, &result])
        .inc();
}

pub async fn captcha(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Captcha, &req.client_ip, now)
        .await?;
    let c = app.issue_captcha(now).await?;
    Ok(ApiResponse::ok(&serde_json::json!({
        "captcha_id": c.captcha_id,
        "image": c.image,
    })))
}

pub async fn tax_authorities(app: &App) -> Result<ApiResponse, Error> {
    let all: Vec<(_, TaxAuthority)> = app.store.scan_prefix(Tree::TaxAuthorities, b"").await?;
    let list: Vec<TaxAuthority> = all.into_iter().map(|(_, t)| t).collect();
    Ok(ApiResponse::ok(&list))
}

pub async fn modules(app: &App) -> Result<ApiResponse, Error> {
    Ok(ApiResponse::ok(&app.full_module_tree()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnterpriseLogin {
    account: Text<32>,
    password: Text<128>,
    captcha_id: Text<64>,
    captcha_answer: Text<16>,
}

#[derive(Serialize)]
struct OfficerRow {
    officer_id: String,
    name_masked: String,
    roles: Vec<&'static str>,
    sources: Vec<Source>,
    phone_masked: String,
    methods: Vec<&'static str>,
}

fn officer_row(id: String, entry: &OfficerEntry) -> OfficerRow {
    let mut methods = Vec::with_capacity(2);
    if entry.officer.may_use_password() && entry.person.password_hash.is_some() {
        methods.push("password");
    }
    methods.push("sms");
    OfficerRow {
        officer_id: id,
        name_masked: mask_name(&entry.person.name),
        roles: entry.officer.role_names(),
        sources: entry.officer.sources(),
        phone_masked: mask_phone(entry.sms_phone()),
        methods,
    }
}

pub async fn enterprise(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let body: EnterpriseLogin = req.json()?;
    let account = body.account.as_str().trim();
    super::register::check_account("account", account)?;
    app.check_captcha(
        body.captcha_id.as_str(),
        body.captcha_answer.as_str(),
        &req.client_ip,
        now,
    )
    .await?;
    let stage1 = app
        .login_enterprise(account, body.password.as_str(), &client(app, req), now)
        .await;
    count_login(app, "enterprise", &stage1);
    Ok(stage1_answer(&stage1?))
}

/// The answer of stage 1, whichever way it was passed: the ticket for stage 2, the
/// enterprise, the officers to choose from, and the login kind.
pub(super) fn stage1_answer(stage1: &Stage1) -> ApiResponse {
    let officers: Vec<OfficerRow> = stage1
        .officers
        .iter()
        .map(|(id, e)| officer_row(id.clone(), e))
        .collect();
    ApiResponse::ok(&serde_json::json!({
        "login_ticket": stage1.ticket,
        "enterprise": enterprise_view(&stage1.enterprise),
        "officers": officers,
        "login": stage1.login.as_str(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfficerSms {
    login_ticket: Text<64>,
    officer_id: Text<32>,
}

pub async fn officer_sms(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Sms, &req.client_ip, now).await?;
    let body: OfficerSms = req.json()?;
    let resend_after = app
        .send_login_sms(
            body.login_ticket.as_str(),
            body.officer_id.as_str(),
            &client(app, req),
            now,
        )
        .await?;
    Ok(ApiResponse::ok(
        &serde_json::json!({ "resend_after": resend_after }),
    ))
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Method {
    Password,
    Sms,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfficerLogin {
    login_ticket: Text<64>,
    officer_id: Text<32>,
    method: Method,
    #[serde(default)]
    password: Option<Text<128>>,
    #[serde(default)]
    sms_code: Option<Text<6>>,
}

pub async fn officer(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let body: OfficerLogin = req.json()?;
    let verification = match (body.method, &body.password, &body.sms_code) {
        (Method::Password, Some(pw), _) => Verification::Password(pw.as_str()),
        (Method::Sms, _, Some(code)) => Verification::Sms(code.as_str()),
        (Method::Password, None, _) => return Err(Error::invalid("password", "请输入密码")),
        (Method::Sms, _, None) => return Err(Error::invalid("sms_code", "请输入短信验证码")),
    };
    let s = app
        .login_officer(
            body.login_ticket.as_str(),
            body.officer_id.as_str(),
            verification,
            &client(app, req),
            now,
        )
        .await;
    count_login(app, "officer", &s);
    let s = s?;
    let roles = s.entry.officer.role_names();
    let modules = app.authorized_modules(&s.entry.officer, &roles, s.login);
    Ok(ApiResponse::ok(&serde_json::json!({
        "enterprise": enterprise_view(&s.enterprise),
        "officer": { "name": s.entry.person.name, "roles": roles },
        "modules": modules,
        "csrf_token": s.csrf_token,
    }))
    .with_cookie(app.session_cookie(&s.token)))
}

pub async fn session(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    let ctx = require_session(app, req, now).await?;
    let enterprise: Enterprise = app
        .store
        .get(Tree::Enterprises, &ctx.session().enterprise)
        .await?
        .ok_or_else(|| Error::new(Code::Unauthenticated))?;
    let person = app
        .person(&ctx.session().person)
        .await?
        .ok_or_else(|| Error::new(Code::Unauthenticated))?;
    let roles = ctx.officer().role_names();
    let login = ctx.session().login;
    let can_manage = matches!(
        app.policy.authorize_enterprise(
            &facts(ctx.officer(), &roles, login),
            EnterpriseAction::ManageUsers
        ),
        Decision::Allow
    );
    let modules = app.authorized_modules(ctx.officer(), &roles, login);
    Ok(ApiResponse::ok(&serde_json::json!({
        "enterprise": enterprise_view(&enterprise),
        "officer": { "name": person.name, "roles": roles },
        "modules": modules,
        "can_manage_users": can_manage,
        "csrf_token": ctx.session().csrf_token,
    })))
}

pub async fn logout(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    let ctx = require_session(app, req, now).await?;
    require_csrf(req, &ctx)?;
    app.logout(&ctx.token_hash, ctx.session(), &req.client_ip, now)
        .await?;
    app.store.flush().await?;
    Ok(ApiResponse::no_content().with_cookie(app.clear_session_cookie()))
}

impl App {
    /// The module tree this officer may use in a session opened by `login`, each node
    /// with its routed path.
    pub fn authorized_modules(
        &self,
        officer: &crate::store::records::Officer,
        roles: &[&'static str],
        login: LoginKind,
    ) -> Vec<ModuleView> {
        self.policy
            .authorized_tree(&facts(officer, roles, login), &|id| self.routes.path_of(id))
    }

    /// The whole catalog with routed paths.
    pub fn full_module_tree(&self) -> Vec<ModuleView> {
        self.policy.full_tree(&|id| self.routes.path_of(id))
    }
}
