//! Sessions (SPEC S5): a 256-bit token in an HttpOnly, SameSite=Strict cookie, kept in
//! the store only as its keyed hash; idle and absolute timeouts; ended by logout,
//! unbinding and password reset.
//!
//! Contract: [`App::resolve_session`] is the one check on every request: a session that
//! is unknown, idle too long, too old, or whose officer is no longer bound is removed
//! and answers `None`. `last_seen` is written at most once a minute, so the idle timeout
//! is exact to a minute and a proxied request normally costs no store write.

use crate::api::error::ApiError;
use crate::app::App;
use crate::store::keys;
use crate::store::records::{Officer, Session};

pub const COOKIE: &str = "taxgate_session";
const TOUCH_EVERY: i64 = 60;

/// A live session and the binding it acts for.
pub struct SessionContext {
    pub token_hash: String,
    pub session: Session,
    pub officer: Officer,
}

impl App {
    pub fn session_token_hash(&self, token: &str) -> String {
        self.keyed.hash("session", token)
    }

    /// `Set-Cookie` for a new session.
    pub fn session_cookie(&self, token: &str) -> String {
        format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.config.limits.session_absolute.as_secs(),
            if self.config.cookie_secure {
                "; Secure"
            } else {
                ""
            }
        )
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_session_cookie(&self) -> String {
        format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.config.cookie_secure {
                "; Secure"
            } else {
                ""
            }
        )
    }

    pub fn resolve_session(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<SessionContext>, ApiError> {
        if token.is_empty() || token.len() > 64 {
            return Ok(None);
        }
        let token_hash = self.session_token_hash(token);
        let Some(session) = self
            .store
            .get::<Session>(&self.store.trees.sessions, &token_hash)?
        else {
            return Ok(None);
        };
        let limits = &self.config.limits;
        let idle = now - session.last_seen > limits.session_idle.as_secs() as i64;
        let old = now - session.created_at > limits.session_absolute.as_secs() as i64;
        let officer = self
            .officer(&session.enterprise, &session.person)?
            .filter(Officer::is_bound);
        let Some(officer) = officer.filter(|_| !idle && !old) else {
            self.end_session(&token_hash, &session)?;
            return Ok(None);
        };
        let session = if now - session.last_seen >= TOUCH_EVERY {
            let touched = Session {
                last_seen: now,
                ..session
            };
            self.store
                .put(&self.store.trees.sessions, &token_hash, &touched)?;
            touched
        } else {
            session
        };
        Ok(Some(SessionContext {
            token_hash,
            session,
            officer,
        }))
    }

    pub fn end_session(&self, token_hash: &str, session: &Session) -> Result<(), ApiError> {
        self.store.remove(&self.store.trees.sessions, token_hash)?;
        self.store.remove(
            &self.store.trees.sessions_by_officer,
            keys::session_of_officer(&session.enterprise, &session.person, token_hash),
        )?;
        Ok(())
    }

    /// Ends every session of one officer, or of every officer of an enterprise when
    /// `person` is `None`. Returns how many ended. The caller flushes.
    pub fn end_sessions(&self, enterprise: &str, person: Option<&str>) -> Result<usize, ApiError> {
        let prefix = match person {
            Some(p) => {
                let mut k = keys::officer(enterprise, p);
                k.push(0);
                k
            }
            None => keys::officers_of(enterprise),
        };
        let mut n = 0;
        for item in self.store.trees.sessions_by_officer.scan_prefix(&prefix) {
            let (k, _) = item.map_err(crate::store::StoreError::from)?;
            if let Some(hash) = keys::parts(&k).get(2) {
                self.store.remove(&self.store.trees.sessions, hash)?;
            }
            self.store
                .remove(&self.store.trees.sessions_by_officer, &k)?;
            n += 1;
        }
        Ok(n)
    }
}
