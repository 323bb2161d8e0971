//! Providers for what lies outside the gateway: image captchas, the SMS gateway and (with
//! registration) real-name verification. Each has a production implementation and a
//! development one that writes to an outbox file so a person or a test can read it.

pub mod captcha;
pub mod outbox;
pub mod realname;
pub mod sms;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}
