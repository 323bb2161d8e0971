//! API errors: a stable code, a Chinese message for people, an HTTP status.
//!
//! Contract: every failure a client can meet is an [`ApiError`] serialized as
//! `{"error":{"code","message"[,"retry_after"][,"field"]}}` (API.md). Bad input is always
//! 4xx; only a failing store or provider gives 5xx, and then without internal detail
//! (the detail goes to the log).

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
    MethodNotAllowed,
    NotBound,
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
    pub fn status(self) -> u16 {
        match self {
            Code::InvalidInput
            | Code::CaptchaInvalid
            | Code::SmsCodeInvalid
            | Code::PasswordMismatch
            | Code::RealnameFailed => 400,
            Code::BadCredentials | Code::Unauthenticated | Code::TicketInvalid => 401,
            Code::NotBound | Code::Forbidden | Code::CsrfInvalid | Code::MethodNotAllowed => 403,
            Code::NotFound => 404,
            Code::AlreadyRegistered => 409,
            Code::PayloadTooLarge => 413,
            Code::Locked | Code::RateLimited => 429,
            Code::Internal => 500,
            Code::Unavailable => 503,
        }
    }

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
            Code::NotBound => "未绑定企业",
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
pub struct ApiError {
    pub code: Code,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// HTTP status override (e.g. 405 for a wrong HTTP method).
    #[serde(skip)]
    pub status: Option<u16>,
}

impl ApiError {
    pub fn new(code: Code) -> ApiError {
        ApiError {
            code,
            message: code.default_message().to_string(),
            retry_after: None,
            field: None,
            status: None,
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> ApiError {
        self.message = message.into();
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidInput)
            .with_field(field)
            .with_message(message)
    }

    pub fn status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.code.status())
    }

    /// Internal failure: logged with its detail, answered without it.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(Code::Internal)
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "error": self })).unwrap_or_default()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<sled::Error> for ApiError {
    fn from(e: sled::Error) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<crate::crypto::password::HashError> for ApiError {
    fn from(e: crate::crypto::password::HashError) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<crate::providers::ProviderError> for ApiError {
    fn from(e: crate::providers::ProviderError) -> ApiError {
        tracing::warn!(error = %e, "provider failed");
        ApiError::new(Code::Unavailable)
    }
}

impl<E: Into<ApiError>> From<crate::store::TxError<E>> for ApiError {
    fn from(e: crate::store::TxError<E>) -> ApiError {
        match e {
            crate::store::TxError::Abort(e) => e.into(),
            crate::store::TxError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_api_md_says() {
        let e = ApiError::new(Code::Locked).retry_after(900);
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "LOCKED");
        assert_eq!(v["error"]["retry_after"], 900);
        assert_eq!(e.status(), 429);
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::new(Code::NotBound).body()).unwrap();
        assert_eq!(v["error"]["message"], "未绑定企业");
    }
}
