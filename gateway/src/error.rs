//! The domain error: a stable code and a Chinese message for people. A leaf module: the
//! business layers (`auth/`, `registry/`) answer with it, and only the HTTP edge (`api/`,
//! `proxy/respond.rs`) maps it to a status (`api/error.rs`).
//!
//! Contract: every failure a client can meet is an [`Error`] with a [`Code`] named in
//! API.md. Bad input is always a 4xx code; only a failing store or provider gives
//! `UNAVAILABLE` / `INTERNAL`, and then without internal detail (the detail goes to the
//! log).

use crate::store::{StoreError, TxError};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    InvalidInput,
    CaptchaInvalid,
    BadCredentials,
    Locked,
    RateLimited,
    SmsCodeInvalid,
    TicketInvalid,
    /// The chosen officer may not use this verification method (not an HTTP 405).
    MethodNotAllowed,
    /// The HTTP method is not one this path answers (HTTP 405).
    HttpMethodNotAllowed,
    NotBound,
    /// Certificate login: the challenge is unknown, used, expired or another client's.
    ChallengeInvalid,
    /// No configured CA issued the certificate (or its chain is incomplete).
    CertUntrusted,
    /// A certificate of the chain is outside its validity period.
    CertExpired,
    /// A certificate of the chain is on its CA's revocation list.
    CertRevoked,
    /// The certificate's key usage does not allow signing.
    CertNotForLogin,
    /// The certificate carries no USCC / TIN.
    CertNoEnterprise,
    /// The certificate's enterprise is not known to the tax system.
    EnterpriseUnknown,
    /// The signature over the challenge does not verify with the certificate's key.
    SignatureInvalid,
    AlreadyRegistered,
    PasswordMismatch,
    RealnameFailed,
    NotFound,
    Forbidden,
    Unauthenticated,
    CsrfInvalid,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

impl Code {
    pub fn default_message(self) -> &'static str {
        match self {
            Code::InvalidInput => "请求参数有误",
            Code::CaptchaInvalid => "验证码错误或已失效，请刷新后重试",
            Code::BadCredentials => "账号或密码错误",
            Code::Locked => "密码错误次数过多，账号已被临时锁定",
            Code::RateLimited => "操作过于频繁，请稍后再试",
            Code::SmsCodeInvalid => "短信验证码错误或已失效",
            Code::TicketInvalid => "操作已过期，请重新开始",
            Code::MethodNotAllowed => "该办税人员不能使用此验证方式",
            Code::HttpMethodNotAllowed => "不支持该请求方法",
            Code::NotBound => "未绑定企业",
            Code::ChallengeInvalid => "证书登录请求已失效，请重新获取后签名",
            Code::CertUntrusted => "证书不是受信任的CA签发的",
            Code::CertExpired => "证书已过期或尚未生效",
            Code::CertRevoked => "证书已被吊销",
            Code::CertNotForLogin => "该证书不能用于签名登录",
            Code::CertNoEnterprise => "证书中没有企业的统一社会信用代码或纳税人识别号",
            Code::EnterpriseUnknown => "证书对应的企业未在电子税务局登记",
            Code::SignatureInvalid => "证书签名验证失败",
            Code::AlreadyRegistered => "已注册",
            Code::PasswordMismatch => "密码与自然人注册时设置的密码不一致，可使用“忘记密码”重置",
            Code::RealnameFailed => "实名认证未通过",
            Code::NotFound => "未找到",
            Code::Forbidden => "无权访问",
            Code::Unauthenticated => "请先登录",
            Code::CsrfInvalid => "页面已过期，请刷新后重试",
            Code::PayloadTooLarge => "请求内容过大",
            Code::Unavailable => "服务暂时不可用，请稍后再试",
            Code::Internal => "系统繁忙，请稍后再试",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Error {
    pub code: Code,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// With `HTTP_METHOD_NOT_ALLOWED`: the methods the target accepts (`Allow`).
    #[serde(skip)]
    pub allow: Option<String>,
}

impl Error {
    pub fn new(code: Code) -> Error {
        Error {
            code,
            message: code.default_message().to_string(),
            retry_after: None,
            field: None,
            allow: None,
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Error {
        self.message = message.into();
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Error {
        self.field = Some(field.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Error {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The method is not one of `allow` (comma-separated, as the `Allow` header lists them).
    pub fn method_not_allowed(allow: impl Into<String>) -> Error {
        let allow = allow.into();
        Error::new(Code::HttpMethodNotAllowed)
            .with_message(format!("此接口只接受 {allow} 请求"))
            .allowing(allow)
    }

    fn allowing(mut self, allow: String) -> Error {
        self.allow = Some(allow);
        self
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Error {
        Error::new(Code::InvalidInput)
            .with_field(field)
            .with_message(message)
    }

    /// Internal failure: logged with its detail, answered without it.
    pub fn internal(detail: impl std::fmt::Display) -> Error {
        tracing::error!(error = %detail, "internal error");
        Error::new(Code::Internal)
    }

    /// The store or a provider cannot be reached now: logged, answered `UNAVAILABLE`.
    pub fn unavailable(detail: impl std::fmt::Display) -> Error {
        tracing::warn!(error = %detail, "unavailable");
        Error::new(Code::Unavailable)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            // A store that does not answer in time, or a write that met concurrent
            // writes on every retry: both pass; the client may try again.
            StoreError::Unavailable(_) | StoreError::Conflict => Error::unavailable(e),
            e => Error::internal(e),
        }
    }
}

impl<E: Into<Error>> From<TxError<E>> for Error {
    fn from(e: TxError<E>) -> Error {
        match e {
            TxError::Abort(e) => e.into(),
            TxError::Store(e) => e.into(),
        }
    }
}
