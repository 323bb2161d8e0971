//! Sending SMS codes (SPEC S3).
//!
//! Contract: [`SmsSender::send`] delivers one code to one phone or fails with
//! [`ProviderError`]; it never logs the code. Production ([`HttpSms`]) POSTs
//! `{"phone","text","purpose"}` as JSON to the configured URL and counts any 2xx as sent;
//! development ([`OutboxSms`]) appends `{"kind":"sms","phone","code","purpose","at"}`.

use super::http_client::{self, HttpClient};
use super::outbox::Outbox;
use super::ProviderError;
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why a code is sent; part of the message and of the code's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Login,
    Register,
    Authorize,
    Recovery,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Register => "register",
            Purpose::Authorize => "authorize",
            Purpose::Recovery => "recovery",
        }
    }

    fn label_zh(self) -> &'static str {
        match self {
            Purpose::Login => "登录",
            Purpose::Register => "注册",
            Purpose::Authorize => "企业授权",
            Purpose::Recovery => "找回密码",
        }
    }
}

pub struct SmsMessage<'a> {
    pub phone: &'a str,
    pub code: &'a str,
    pub purpose: Purpose,
}

impl SmsMessage<'_> {
    pub fn text(&self) -> String {
        format!(
            "【电子税务局】您正在进行{}操作，验证码为{}，5分钟内有效。请勿向任何人泄露。",
            self.purpose.label_zh(),
            self.code
        )
    }
}

#[async_trait]
pub trait SmsSender: Send + Sync {
    async fn send(&self, msg: &SmsMessage<'_>) -> Result<(), ProviderError>;
}

pub struct OutboxSms {
    outbox: Arc<Outbox>,
}

impl OutboxSms {
    pub fn new(outbox: Arc<Outbox>) -> OutboxSms {
        OutboxSms { outbox }
    }
}

#[async_trait]
impl SmsSender for OutboxSms {
    async fn send(&self, msg: &SmsMessage<'_>) -> Result<(), ProviderError> {
        let at = crate::clock::rfc3339(crate::clock::now());
        self.outbox.append(&serde_json::json!({
            "kind": "sms",
            "phone": msg.phone,
            "code": msg.code,
            "purpose": msg.purpose.as_str(),
            "at": at,
        }))
    }
}

pub struct HttpSms {
    url: hyper::Uri,
    timeout: Duration,
    client: HttpClient,
}

impl HttpSms {
    /// `ca_file`: the roots for an `https://` URL (default: the system's).
    pub fn new(
        url: &str,
        timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<HttpSms, ProviderError> {
        let url = url
            .parse()
            .map_err(|e| ProviderError::Unavailable(format!("sms url: {e}")))?;
        Ok(HttpSms {
            url,
            timeout,
            client: http_client::client(ca_file)?,
        })
    }
}

#[async_trait]
impl SmsSender for HttpSms {
    async fn send(&self, msg: &SmsMessage<'_>) -> Result<(), ProviderError> {
        let body = serde_json::json!({
            "phone": msg.phone,
            "text": msg.text(),
            "purpose": msg.purpose.as_str(),
        })
        .to_string();
        let req = hyper::Request::post(self.url.clone())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| ProviderError::Unavailable("sms gateway timed out".into()))?
            .map_err(|e| ProviderError::Unavailable(format!("sms gateway: {e}")))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ProviderError::Unavailable(format!(
                "sms gateway answered {}",
                resp.status()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::fake_service;

    #[tokio::test]
    async fn http_sms_posts_json_and_reports_failures() {
        let (url, seen) = fake_service::start(|_, path, _| {
            if path == "/send" {
                (200, "{}".into())
            } else {
                (500, "down".into())
            }
        })
        .await;
        let sms = HttpSms::new(&format!("{url}/send"), Duration::from_secs(2), None).unwrap();
        let msg = SmsMessage {
            phone: "13800000001",
            code: "123456",
            purpose: Purpose::Login,
        };
        sms.send(&msg).await.unwrap();
        let (method, _, body) = seen.lock().unwrap()[0].clone();
        assert_eq!(method, "POST");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["phone"], "13800000001");
        assert_eq!(v["purpose"], "login");
        assert!(v["text"].as_str().unwrap().contains("123456"));

        let broken = HttpSms::new(&format!("{url}/other"), Duration::from_secs(2), None).unwrap();
        assert!(broken.send(&msg).await.is_err());
        let unreachable =
            HttpSms::new("http://127.0.0.1:1/send", Duration::from_secs(2), None).unwrap();
        assert!(unreachable.send(&msg).await.is_err());
    }
}
