//! Authentication: captchas, SMS codes, throttling, the two-stage enterprise login and
//! sessions. Each file adds one concern to [`crate::app::App`] as an `impl` block.
//!
//! The enterprise login is a state machine whose states live in the store:
//! `captcha issued → (stage 1) login ticket → (stage 2) session`. Every transition checks
//! the state it starts from (a ticket that is unknown, expired, used, or bound to another
//! client is `TICKET_INVALID`); any unexpected transition is a denial.

pub mod captcha;
pub mod certificate_login;
pub mod flow;
pub mod janitor;
pub mod login;
pub mod manage;
pub mod officers;
pub mod realname;
pub mod recovery;
pub mod register;
pub mod session;
pub mod session_cache;
pub mod sms_codes;
pub mod throttle;
pub mod trust;

/// The client a ticket is bound to: its address and a keyed hash of its User-Agent.
pub fn client_fingerprint(app: &crate::app::App, ip: &str, user_agent: &str) -> String {
    format!("{ip}|{}", &app.keyed.hash("client", user_agent)[..16])
}
