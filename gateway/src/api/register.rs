//! Handlers of real-name verification and registration (API.md; seed §2).

use super::login::client;
use super::wire::{ApiRequest, ApiResponse, Text};
use crate::app::App;
use crate::auth::register::PersonForm;
use crate::auth::throttle::RateClass;
use crate::error::{Code, Error};
use crate::identity::{mask_name, mask_phone, IdNumber, PersonName, Phone};
use crate::providers::sms::Purpose;
use crate::store::records::LoginKind;
use serde::Deserialize;
use serde_json::json;

/// Parses one identifier field; a bad one is `INVALID_INPUT` naming the field.
pub fn field<T>(
    name: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, crate::identity::IdentityError>,
) -> Result<T, Error> {
    parse(value).map_err(|e| Error::invalid(name, e.message_zh()))
}

/// A USCC or TIN, well formed; anything else is `INVALID_INPUT` naming `name`.
pub fn check_account(name: &str, account: &str) -> Result<(), Error> {
    let account = account.trim();
    if crate::identity::Uscc::parse(account).is_ok() || crate::identity::Tin::parse(account).is_ok()
    {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            "请输入正确的统一社会信用代码或纳税人识别号",
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RealnameStart {
    name: Text<32>,
    id_number: Text<24>,
}

pub async fn realname_start(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Sms, &req.client_ip, now).await?;
    let body: RealnameStart = req.json()?;
    let name = field("name", body.name.as_str(), PersonName::parse)?;
    let id = field("id_number", body.id_number.as_str(), IdNumber::parse)?;
    let s = app.start_realname(name.as_str(), id.as_str(), now).await?;
    Ok(ApiResponse::ok(&json!({
        "verification_id": s.verification_id,
        "qr_payload": s.qr_payload,
        "status": s.status,
    })))
}

pub async fn realname_status(app: &App, id: &str, now: i64) -> Result<ApiResponse, Error> {
    if id.is_empty() || id.len() > 64 {
        return Err(Error::new(Code::NotFound));
    }
    let status = app.realname_status(id, now).await?;
    Ok(ApiResponse::ok(&json!({ "status": status })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterSms {
    phone: Text<20>,
    captcha_id: Text<64>,
    captcha_answer: Text<16>,
}

pub async fn register_sms(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Sms, &req.client_ip, now).await?;
    let body: RegisterSms = req.json()?;
    let phone = field("phone", body.phone.as_str(), Phone::parse)?;
    app.check_captcha(
        body.captcha_id.as_str(),
        body.captcha_answer.as_str(),
        &req.client_ip,
        now,
    )
    .await?;
    let resend_after = app
        .send_sms_code(Purpose::Register, phone.as_str(), phone.as_str(), now)
        .await?;
    Ok(ApiResponse::ok(&json!({ "resend_after": resend_after })))
}

fn form(
    phone: &str,
    name: &str,
    id_number: &str,
    password: &str,
    new_password: bool,
) -> Result<PersonForm, Error> {
    let form = PersonForm {
        phone: field("phone", phone, Phone::parse)?,
        name: field("name", name, PersonName::parse)?,
        id_number: field("id_number", id_number, IdNumber::parse)?,
        password: password.to_string(),
    };
    if new_password {
        crate::identity::check_new_password(password)
            .map_err(|r| Error::invalid("password", r.message_zh()))?;
    }
    Ok(form)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterPerson {
    phone: Text<20>,
    sms_code: Text<6>,
    name: Text<32>,
    id_number: Text<24>,
    password: Text<64>,
    tax_authority: Text<11>,
    realname_verification_id: Text<64>,
}

pub async fn register_person(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let b: RegisterPerson = req.json()?;
    let form = form(
        b.phone.as_str(),
        b.name.as_str(),
        b.id_number.as_str(),
        b.password.as_str(),
        true,
    )?;
    let person_id = app
        .register_person(
            &form,
            b.sms_code.as_str(),
            b.tax_authority.as_str(),
            b.realname_verification_id.as_str(),
            &client(app, req),
            now,
        )
        .await?;
    Ok(ApiResponse::json(201, &json!({ "person_id": person_id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnterpriseUserStart {
    phone: Text<20>,
    sms_code: Text<6>,
    name: Text<32>,
    id_number: Text<24>,
    password: Text<64>,
    realname_verification_id: Text<64>,
}

pub async fn enterprise_user_start(
    app: &App,
    req: &ApiRequest,
    now: i64,
) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let b: EnterpriseUserStart = req.json()?;
    // The password policy applies only when he sets a new one (an existing person
    // must repeat his own); `start_enterprise_user` decides which.
    let form = form(
        b.phone.as_str(),
        b.name.as_str(),
        b.id_number.as_str(),
        b.password.as_str(),
        false,
    )?;
    let ticket = app
        .start_enterprise_user(
            &form,
            b.sms_code.as_str(),
            b.realname_verification_id.as_str(),
            &client(app, req),
            now,
        )
        .await?;
    Ok(ApiResponse::ok(&json!({ "registration_ticket": ticket })))
}

pub async fn authorizers(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let uscc = req.query_param("uscc").unwrap_or_default();
    let ticket = req.query_param("ticket").unwrap_or_default();
    if ticket.len() > 64 {
        return Err(Error::new(Code::TicketInvalid));
    }
    check_account("uscc", &uscc)?;
    let (enterprise, list) = app
        .authorizers(&ticket, &uscc, &client(app, req), now)
        .await?;
    let rows: Vec<_> = list
        .iter()
        .map(|a| {
            json!({
                "authorizer_id": a.id,
                "role": a.role.as_str(),
                "name_masked": mask_name(&a.entry.person.name),
                "phone_masked": mask_phone(a.entry.officer.registry_phone.as_deref().unwrap_or(&a.entry.person.phone)),
            })
        })
        .collect();
    Ok(ApiResponse::ok(&json!({
        "enterprise": { "name": enterprise.name },
        "authorizers": rows,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizerSms {
    registration_ticket: Text<64>,
    uscc: Text<32>,
    authorizer_id: Text<32>,
}

pub async fn authorizer_sms(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Sms, &req.client_ip, now).await?;
    let b: AuthorizerSms = req.json()?;
    check_account("uscc", b.uscc.as_str())?;
    let resend_after = app
        .send_authorizer_sms(
            b.registration_ticket.as_str(),
            b.uscc.as_str(),
            b.authorizer_id.as_str(),
            &client(app, req),
            now,
        )
        .await?;
    Ok(ApiResponse::ok(&json!({ "resend_after": resend_after })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirm {
    registration_ticket: Text<64>,
    uscc: Text<32>,
    authorizer_id: Text<32>,
    sms_code: Text<6>,
}

pub async fn confirm(app: &App, req: &ApiRequest, now: i64) -> Result<ApiResponse, Error> {
    app.check_rate(RateClass::Login, &req.client_ip, now)
        .await?;
    let b: Confirm = req.json()?;
    check_account("uscc", b.uscc.as_str())?;
    let (enterprise, officer) = app
        .confirm_enterprise_user(
            b.registration_ticket.as_str(),
            b.uscc.as_str(),
            b.authorizer_id.as_str(),
            b.sms_code.as_str(),
            &client(app, req),
            now,
        )
        .await?;
    let roles = officer.role_names();
    let grants: Vec<String> = app
        .authorized_modules(&officer, &roles, LoginKind::Password)
        .into_iter()
        .map(|m| m.id)
        .collect();
    Ok(ApiResponse::json(
        201,
        &json!({
            "enterprise": { "name": enterprise.name, "uscc": enterprise.uscc.as_deref().unwrap_or(&enterprise.key) },
            "grants": grants,
        }),
    ))
}
