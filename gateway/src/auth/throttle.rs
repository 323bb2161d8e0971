//! Throttling (SPEC S4).
//!
//! - Per client address: a fixed one-minute window per class of unauthenticated
//!   endpoint; past the configured limit the answer is `RATE_LIMITED` with `retry_after`.
//!   Failed captchas and failed passwords have their own window with half the limit,
//!   so guessing is slowed down before ordinary use is.
//! - Per account: consecutive wrong passwords of an enterprise or a person; at the
//!   threshold the account is locked for the configured time (`LOCKED`, `retry_after`).
//!   A success resets the count; a password reset clears the lock.
//!
//! Why lockout is not a cheap denial of service: every enterprise attempt needs a freshly
//! solved image captcha, so locking someone out costs five solved captchas per 15
//! minutes per account, all audited and rate-limited per address; the lock covers the
//! password only — SMS verification of officers stays open, and 忘记密码 (which proves
//! possession of the legal rep's or finance officer's phone) clears it at once.

use crate::app::App;
use crate::error::{Code, Error};
use crate::store::records::{Lockout, RateWindow};
use crate::store::{keys, Tree};

/// Classes of unauthenticated endpoints, each with its own window.
#[derive(Debug, Clone, Copy)]
pub enum RateClass {
    Captcha,
    Login,
    Sms,
    Failure,
}

impl RateClass {
    fn as_str(self) -> &'static str {
        match self {
            RateClass::Captcha => "captcha",
            RateClass::Login => "login",
            RateClass::Sms => "sms",
            RateClass::Failure => "failure",
        }
    }
}

/// Whose password failed.
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    Enterprise(&'a str),
    Person(&'a str),
}

impl Account<'_> {
    fn key(&self) -> Vec<u8> {
        match self {
            Account::Enterprise(e) => keys::lockout("enterprise", e),
            Account::Person(p) => keys::lockout("person", p),
        }
    }
}

impl App {
    /// Counts one request of `class` from `client_ip`; refuses past the limit.
    pub async fn check_rate(
        &self,
        class: RateClass,
        client_ip: &str,
        now: i64,
    ) -> Result<(), Error> {
        let limit = self.config.limits.ip_requests_per_minute;
        let count = self.bump_window(class, client_ip, now, 1).await?;
        let failures = self
            .window_count(RateClass::Failure, client_ip, now)
            .await?;
        if count > limit || failures.saturating_mul(2) > limit {
            return Err(Error::new(Code::RateLimited).retry_after((60 - now.rem_euclid(60)) as u64));
        }
        Ok(())
    }

    /// A failed captcha or password from this address.
    pub async fn count_failure_for_client(&self, client_ip: &str, now: i64) -> Result<(), Error> {
        self.bump_window(RateClass::Failure, client_ip, now, 1)
            .await?;
        Ok(())
    }

    async fn window_count(
        &self,
        class: RateClass,
        client_ip: &str,
        now: i64,
    ) -> Result<u32, Error> {
        let window = now.div_euclid(60);
        let w: Option<RateWindow> = self
            .store
            .get(Tree::Rate, keys::rate(class.as_str(), client_ip))
            .await?;
        Ok(w.filter(|w| w.window == window).map_or(0, |w| w.count))
    }

    async fn bump_window(
        &self,
        class: RateClass,
        client_ip: &str,
        now: i64,
        by: u32,
    ) -> Result<u32, Error> {
        let window = now.div_euclid(60);
        let w = self
            .store
            .update::<RateWindow>(Tree::Rate, keys::rate(class.as_str(), client_ip), |old| {
                let mut w = old
                    .filter(|w| w.window == window)
                    .unwrap_or(RateWindow { window, count: 0 });
                w.count = w.count.saturating_add(by);
                Some(w)
            })
            .await?;
        Ok(w.map_or(0, |w| w.count))
    }

    /// `LOCKED` with the seconds left if the account is locked now.
    pub async fn check_lock(&self, account: Account<'_>, now: i64) -> Result<(), Error> {
        let l: Option<Lockout> = self.store.get(Tree::Lockouts, account.key()).await?;
        match l {
            Some(l) if l.locked_until > now => {
                Err(Error::new(Code::Locked).retry_after((l.locked_until - now) as u64))
            }
            _ => Ok(()),
        }
    }

    /// Records a wrong password; returns the error to answer (`LOCKED` when this failure
    /// reached the threshold, `BAD_CREDENTIALS` otherwise).
    pub async fn record_password_failure(
        &self,
        account: Account<'_>,
        client_ip: &str,
        now: i64,
    ) -> Result<Error, Error> {
        self.count_failure_for_client(client_ip, now).await?;
        self.record_account_failure(account, now).await
    }

    /// Counts one failure against `account`'s lockout (not against the address); returns
    /// `LOCKED` when it reached the threshold, `BAD_CREDENTIALS` otherwise.
    pub async fn record_account_failure(
        &self,
        account: Account<'_>,
        now: i64,
    ) -> Result<Error, Error> {
        let threshold = self.config.limits.lockout_threshold;
        let lock_secs = self.config.limits.lockout.as_secs() as i64;
        let mut locked = false;
        self.store
            .update::<Lockout>(Tree::Lockouts, account.key(), |old| {
                // A lock that has run out starts a fresh count.
                let mut l = old
                    .filter(|l| l.locked_until == 0 || l.locked_until > now)
                    .unwrap_or_default();
                // Attempts that were checked before a parallel one locked the account
                // arrive here locked: they answer LOCKED and leave the lock as it is.
                locked = l.locked_until > now;
                if locked {
                    return Some(l);
                }
                l.failures = l.failures.saturating_add(1);
                locked = l.failures >= threshold;
                if locked {
                    l.locked_until = now + lock_secs;
                    l.failures = 0;
                }
                Some(l)
            })
            .await?;
        Ok(if locked {
            Error::new(Code::Locked).retry_after(lock_secs as u64)
        } else {
            Error::new(Code::BadCredentials)
        })
    }

    /// A correct password: the count starts again.
    pub async fn clear_failures(&self, account: Account<'_>) -> Result<(), Error> {
        self.store.remove(Tree::Lockouts, account.key()).await?;
        Ok(())
    }
}
