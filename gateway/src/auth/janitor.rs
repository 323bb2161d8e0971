//! Removing what has expired: captchas, login and flow tickets, real-name checks, SMS
//! codes, old rate windows, sessions past their idle or absolute limit. Expired records
//! are already refused where they are read; this only keeps the store (and the session
//! cache) from growing.

use crate::app::App;
use crate::store::records::{
    Captcha, FlowTicket, LoginTicket, RateWindow, RealnameCheck, Session, SmsCode,
};
use crate::store::{codec, keys, StoreError};
use serde::de::DeserializeOwned;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Removes every record of `tree` for which `expired` says so (or that no longer decodes).
fn sweep<T: DeserializeOwned>(
    tree: &sled::Tree,
    expired: impl Fn(&T) -> bool,
) -> Result<usize, StoreError> {
    let mut n = 0;
    for item in tree.iter() {
        let (k, v) = item?;
        if codec::decode::<T>(&v).map_or(true, |r| expired(&r)) {
            // Only if unchanged since read: a record renewed meanwhile stays.
            if tree.compare_and_swap(&k, Some(v), None::<Vec<u8>>)?.is_ok() {
                n += 1;
            }
        }
    }
    Ok(n)
}

impl App {
    /// One pass over every tree with expiring records; returns how many were removed.
    pub fn sweep_expired(&self, now: i64) -> Result<usize, StoreError> {
        let t = &self.store.trees;
        let limits = &self.config.limits;
        let idle = limits.session_idle.as_secs() as i64;
        let absolute = limits.session_absolute.as_secs() as i64;
        let mut n = sweep::<Captcha>(&t.captchas, |c| c.expires_at <= now)?;
        n += sweep::<LoginTicket>(&t.login_tickets, |x| x.expires_at <= now)?;
        n += sweep::<FlowTicket>(&t.flow_tickets, |x| x.expires_at <= now)?;
        n += sweep::<RealnameCheck>(&t.realname, |x| x.expires_at <= now)?;
        n += sweep::<SmsCode>(&t.sms_codes, |x| x.expires_at <= now)?;
        n += sweep::<RateWindow>(&t.rate, |w| w.window < now.div_euclid(60))?;
        for item in t.sessions.iter() {
            let (k, v) = item?;
            let Ok(s) = codec::decode::<Session>(&v) else {
                continue;
            };
            if now - s.last_seen > idle || now - s.created_at > absolute {
                let hash = String::from_utf8_lossy(&k).into_owned();
                t.sessions.remove(&k)?;
                t.sessions_by_officer.remove(keys::session_of_officer(
                    &s.enterprise,
                    &s.person,
                    &hash,
                ))?;
                self.sessions.session_ended(&hash);
                n += 1;
            }
        }
        // Memory only: expired or stale entries would be refused where they are read.
        self.sessions
            .prune(|s| now - s.last_seen > idle || now - s.created_at > absolute);
        Ok(n)
    }
}

/// Sweeps every `interval` on its own thread while the gateway lives.
pub fn spawn_janitor(app: &Arc<App>, interval: Duration) -> std::thread::JoinHandle<()> {
    let weak: Weak<App> = Arc::downgrade(app);
    std::thread::spawn(move || loop {
        std::thread::sleep(interval);
        let Some(app) = weak.upgrade() else {
            return;
        };
        match app.sweep_expired(crate::clock::now()) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "expired records swept"),
            Err(e) => tracing::warn!(error = %e, "sweeping expired records failed"),
        }
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn sweeps_only_what_expired() {
        let dir = tempfile::tempdir().unwrap();
        let app = crate::app::test_app(dir.path());
        let live = app.issue_captcha(1_000).await.unwrap();
        let old = app.issue_captcha(0).await.unwrap();
        let removed = app.sweep_expired(1_000).unwrap();
        assert_eq!(removed, 1);
        assert!(app
            .store
            .trees
            .captchas
            .contains_key(&live.captcha_id)
            .unwrap());
        assert!(!app
            .store
            .trees
            .captchas
            .contains_key(&old.captcha_id)
            .unwrap());
    }
}
