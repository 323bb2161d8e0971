//! Handlers of 忘记密码 (API.md; seed §4).

use super::login::client;
use super::register::field;
use super::wire::{ApiRequest, ApiResponse, Text};
use crate::app::App;
use crate::auth::throttle::RateClass;
use crate::error::Error;
use crate::identity::{mask_name, mask_phone, Phone};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonStart {
    phone: Text<20>,
    captcha_id: Text<64>,
    captcha_answer: Text<16>,
}

pub async fn person_start(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Sms, &req.client_ip, now).await?;
    let b: PersonStart = req.json()?;
    let phone = field("phone", b.phone.as_str(), Phone::parse)?;
    app.check_captcha(
        b.captcha_id.as_str(),
        b.captcha_answer.as_str(),
        &req.client_ip,
        now,
    )
    .await?;
    let (ticket, resend_after) = app
        .start_person_recovery(phone.as_str(), &client(app, req), now)
        .await?;
    Ok(ApiResponse::ok(
        &json!({ "recovery_ticket": ticket, "resend_after": resend_after }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Verify {
    recovery_ticket: Text<64>,
    sms_code: Text<6>,
    realname_verification_id: Text<64>,
}

pub async fn person_verify(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let b: Verify = req.json()?;
    app.verify_person_recovery(
        b.recovery_ticket.as_str(),
        b.sms_code.as_str(),
        b.realname_verification_id.as_str(),
        &client(app, req),
        now,
    )
    .await?;
    Ok(ApiResponse::no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reset {
    recovery_ticket: Text<64>,
    new_password: Text<64>,
}

pub async fn person_reset(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let b: Reset = req.json()?;
    app.reset_person_password(
        b.recovery_ticket.as_str(),
        b.new_password.as_str(),
        &client(app, req),
        now,
    )
    .await?;
    Ok(ApiResponse::no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnterpriseStart {
    account: Text<32>,
    captcha_id: Text<64>,
    captcha_answer: Text<16>,
}

pub async fn enterprise_start(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let b: EnterpriseStart = req.json()?;
    let account = b.account.as_str().trim();
    super::register::check_account("account", account)?;
    app.check_captcha(
        b.captcha_id.as_str(),
        b.captcha_answer.as_str(),
        &req.client_ip,
        now,
    )
    .await?;
    let (ticket, enterprise, recipients) = app
        .start_enterprise_recovery(account, &client(app, req), now)
        .await?;
    let rows: Vec<_> = recipients
        .iter()
        .map(|r| {
            json!({
                "recipient_id": r.id,
                "role": r.role.as_str(),
                "name_masked": mask_name(&r.name),
                "phone_masked": mask_phone(&r.phone),
            })
        })
        .collect();
    Ok(ApiResponse::ok(&json!({
        "recovery_ticket": ticket,
        "enterprise": { "name": enterprise.name },
        "recipients": rows,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnterpriseSms {
    recovery_ticket: Text<64>,
    recipient_id: Text<32>,
}

pub async fn enterprise_sms(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Sms, &req.client_ip, now).await?;
    let b: EnterpriseSms = req.json()?;
    let resend_after = app
        .send_enterprise_recovery_sms(
            b.recovery_ticket.as_str(),
            b.recipient_id.as_str(),
            &client(app, req),
            now,
        )
        .await?;
    Ok(ApiResponse::ok(&json!({ "resend_after": resend_after })))
}

pub async fn enterprise_verify(
    app: &App,
    req: &ApiRequest,
    now: i64,
) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let b: Verify = req.json()?;
    app.verify_enterprise_recovery(
        b.recovery_ticket.as_str(),
        b.sms_code.as_str(),
        b.realname_verification_id.as_str(),
        &client(app, req),
        now,
    )
    .await?;
    Ok(ApiResponse::no_content())
}

pub async fn enterprise_reset(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let b: Reset = req.json()?;
    app.reset_enterprise_password(
        b.recovery_ticket.as_str(),
        b.new_password.as_str(),
        &client(app, req),
        now,
    )
    .await?;
    Ok(ApiResponse::no_content())
}
