//! Handlers of 我的信息-用户管理-授权信息 (API.md; seed §3). Who may call them is Cedar's
//! `manage_users` decision on the caller's enterprise, not a check in Rust.

use super::wire::{ApiRequest, ApiResponse, Text};
use super::{require_csrf, require_session};
use crate::app::App;
use crate::audit::Event;
use crate::auth::manage::Manager;
use crate::auth::officers::facts;
use crate::auth::session::SessionContext;
use crate::error::{Code, Error};
use crate::identity::mask_name;
use crate::policy::{EnterpriseAction, ModuleView};
use crate::store::records::{LoginKind, Officer};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeSet;

/// The caller's session, if Cedar permits `manage_users` on its enterprise.
async fn manager(app: &App, req: &ApiRequest, now: i64) -> Result<SessionContext, Error> {
    let ctx = require_session(app, req, now).await?;
    let roles = ctx.officer().role_names();
    let decision = app.policy.authorize_enterprise(
        &facts(ctx.officer(), &roles, ctx.session().login),
        EnterpriseAction::ManageUsers,
    );
    if !decision.is_allowed() {
        app.audit
            .record(
                now,
                Event::new("manage.denied", "forbidden")
                    .enterprise(&ctx.officer().enterprise)
                    .person(&ctx.officer().person)
                    .client(&req.client_ip)
                    .detail(format!("{} {}", req.method, req.path)),
            )
            .await;
        return Err(
            Error::new(Code::Forbidden).with_message("只有法定代表人或财务负责人可以管理用户")
        );
    }
    Ok(ctx)
}

/// The caller as the audit names him.
fn manager_of<'a>(ctx: &'a SessionContext, req: &'a ApiRequest) -> Manager<'a> {
    Manager {
        person: &ctx.officer().person,
        client_ip: &req.client_ip,
    }
}

/// The module ids an officer holds: the highest nodes of the catalog he may use in a
/// session of some login kind (a policy may keep a granted module to certificate
/// logins; the 授权 page still shows it as held).
pub fn effective_grants(app: &App, officer: &Officer) -> Vec<String> {
    fn allowed_ids(nodes: &[ModuleView], out: &mut BTreeSet<String>) {
        for n in nodes {
            if n.allowed {
                out.insert(n.id.clone());
            }
            allowed_ids(&n.children, out);
        }
    }
    fn highest(nodes: &[ModuleView], allowed: &BTreeSet<String>, out: &mut Vec<String>) {
        for n in nodes {
            if allowed.contains(&n.id) {
                out.push(n.id.clone());
            } else {
                highest(&n.children, allowed, out);
            }
        }
    }
    let roles = officer.role_names();
    let mut allowed = BTreeSet::new();
    for login in LoginKind::ALL {
        allowed_ids(
            &app.authorized_modules(officer, &roles, login),
            &mut allowed,
        );
    }
    let mut out = Vec::new();
    highest(&app.full_module_tree(), &allowed, &mut out);
    out
}

pub async fn users(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    let ctx = manager(app, req, now).await?;
    let rows: Vec<_> = app
        .bound_officers(&ctx.officer().enterprise)
        .await?
        .iter()
        .map(|e| {
            json!({
                "person_id": e.person.id,
                "name": e.person.name,
                "roles": e.officer.role_names(),
                "sources": e.officer.sources(),
                "customized": e.officer.grants.is_some(),
                "grants": effective_grants(app, &e.officer),
            })
        })
        .collect();
    Ok(ApiResponse::ok(&rows))
}

pub async fn candidates(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    manager(app, req, now).await?;
    let q = req.query_param("q").unwrap_or_default();
    if q.trim().is_empty() || q.chars().count() > 24 {
        return Err(Error::invalid("q", "请输入身份证号或手机号"));
    }
    let rows: Vec<_> = app
        .candidates(&q).await?
        .iter()
        .map(|p| json!({"person_id": p.id, "name_masked": mask_name(&p.name), "realname_verified": p.realname_verified}))
        .collect();
    Ok(ApiResponse::ok(&rows))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddUser {
    person_id: Text<32>,
    #[serde(default)]
    password: Option<Text<64>>,
}

pub async fn add_user(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    let ctx = manager(app, req, now).await?;
    require_csrf(req, &ctx)?;
    let b: AddUser = req.json()?;
    let enterprise = ctx.officer().enterprise.clone();
    let (officer, password_set) = app
        .add_user(
            &enterprise,
            b.person_id.as_str(),
            b.password.as_ref().map(Text::as_str),
            manager_of(&ctx, req),
            now,
        )
        .await?;
    Ok(ApiResponse::json(
        201,
        &json!({
            "person_id": officer.person,
            "grants": effective_grants(app, &officer),
            "password_set": password_set,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Grants {
    modules: Vec<Text<64>>,
}

pub async fn set_grants(
    app: &App,
    req: &ApiRequest,
    person_id: &str,
    now: i64,
) -> Result<ApiResponse, Error> {
    let ctx = manager(app, req, now).await?;
    require_csrf(req, &ctx)?;
    let b: Grants = req.json()?;
    if b.modules.len() > 256 {
        return Err(Error::invalid("modules", "功能模块过多"));
    }
    let modules: BTreeSet<String> = b.modules.into_iter().map(|m| m.0).collect();
    let enterprise = ctx.officer().enterprise.clone();
    let change = app
        .set_grants(&enterprise, person_id, modules, manager_of(&ctx, req), now)
        .await?;
    Ok(ApiResponse::ok(&json!({
        "grants": if change.bound { effective_grants(app, &change.officer) } else { Vec::new() },
        "bound": change.bound,
    })))
}
