//! Sessions (SPEC S5): a 256-bit token in an HttpOnly, SameSite=Strict cookie, kept in
//! the store only as its keyed hash; idle and absolute timeouts; ended by logout,
//! unbinding and password reset.
//!
//! Contract: [`App::resolve_session`] is the one check on every request: a session that
//! is unknown, idle too long, too old, or whose officer is no longer bound is removed
//! and answers `None`. `last_seen` is written at most once a minute, so the idle timeout
//! is exact to a minute and a proxied request normally costs no store write. When the
//! store does not take that write in time, the cached session is served all the same
//! (a stuck store stops logins, not the sessions already open).

use super::session_cache::LiveSession;
use crate::app::App;
use crate::audit::Event;
use crate::error::Error;
use crate::store::records::{Officer, Session};
use crate::store::{keys, StoreError, Tree, Tx, Write};
use std::sync::Arc;

pub const COOKIE: &str = "taxgate_session";
const TOUCH_EVERY: i64 = 60;

/// A live session and the binding it acts for.
pub struct SessionContext {
    pub token_hash: String,
    live: Arc<LiveSession>,
}

impl SessionContext {
    pub fn session(&self) -> &Session {
        &self.live.session
    }

    pub fn officer(&self) -> &Officer {
        &self.live.officer
    }

    /// The officer's role names (derived once per cached session).
    pub fn roles(&self) -> &[&'static str] {
        &self.live.roles
    }

    /// The session with its officer, to keep beyond this request's borrow.
    pub fn live(&self) -> &Arc<LiveSession> {
        &self.live
    }
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

    pub async fn resolve_session(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<SessionContext>, Error> {
        if token.is_empty() || token.len() > 64 {
            return Ok(None);
        }
        let token_hash = self
            .sessions
            .token_hash(token, |t| self.session_token_hash(t));
        let limits = &self.config.limits;
        let idle = |s: &Session| now - s.last_seen > limits.session_idle.as_secs() as i64;
        let live = match self.sessions.get(&token_hash) {
            // A cached copy that looks idle may be behind the store: another node may
            // have served (and touched) the session since. The store decides.
            Some(live) if idle(&live.session) => self.load_session(&token_hash).await?,
            Some(live) => Some(live),
            None => self.load_session(&token_hash).await?,
        };
        let Some(live) = live else {
            return Ok(None);
        };
        let session = &live.session;
        let old = now - session.created_at > limits.session_absolute.as_secs() as i64;
        if idle(session) || old || !live.officer.is_bound() {
            self.end_session(&token_hash, session).await?;
            return Ok(None);
        }
        let live = if now - session.last_seen >= TOUCH_EVERY {
            match self.touch_session(&token_hash, &live, now).await {
                Ok(Some(touched)) => touched,
                Ok(None) => return Ok(None),
                // The store does not take writes now (stuck past its deadline): a live
                // session is still served from memory, and touched again a minute later.
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "session not touched: served from memory");
                    let mut untouched = live.session.clone();
                    untouched.last_seen = now;
                    self.sessions.replace_session(&token_hash, &live, untouched)
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            live
        };
        Ok(Some(SessionContext { token_hash, live }))
    }

    /// Reads a session and its officer from the store (a cache miss) and caches them.
    async fn load_session(&self, token_hash: &str) -> Result<Option<Arc<LiveSession>>, Error> {
        let session_stamp = self.sessions.session_stamp(token_hash);
        let Some(session) = self
            .store
            .get::<Session>(Tree::Sessions, token_hash)
            .await?
        else {
            return Ok(None);
        };
        let stamp =
            self.sessions
                .officer_stamp(session_stamp, &session.enterprise, &session.person);
        match self.officer(&session.enterprise, &session.person).await? {
            Some(officer) => Ok(Some(
                self.sessions.insert(token_hash, session, officer, stamp),
            )),
            None => {
                self.end_session(token_hash, &session).await?;
                Ok(None)
            }
        }
    }

    /// Writes `last_seen = now`, unless the session was removed meanwhile (`None`): an
    /// atomic update, so a request racing a logout cannot bring the session back.
    async fn touch_session(
        &self,
        token_hash: &str,
        live: &LiveSession,
        now: i64,
    ) -> Result<Option<Arc<LiveSession>>, StoreError> {
        let touched = self
            .store
            .update::<Session>(Tree::Sessions, token_hash, |current| {
                let mut s = current?;
                s.last_seen = s.last_seen.max(now);
                Some(s)
            })
            .await?;
        Ok(touched.map(|s| self.sessions.replace_session(token_hash, live, s)))
    }

    /// Ends one session (it expired): the session and its index entry in one batch.
    pub async fn end_session(&self, token_hash: &str, session: &Session) -> Result<(), Error> {
        self.store
            .apply(session_removal(token_hash, session))
            .await?;
        self.sessions.session_ended(token_hash);
        Ok(())
    }

    /// 退出: ends the session, with its `logout` audit event in the same batch. The caller
    /// flushes.
    pub async fn logout(
        &self,
        token_hash: &str,
        session: &Session,
        client_ip: &str,
        now: i64,
    ) -> Result<(), Error> {
        let event = Event::new("logout", "ok")
            .enterprise(&session.enterprise)
            .person(&session.person)
            .client(client_ip);
        let mut writes = session_removal(token_hash, session);
        writes.push(self.audit.slot(now).await?.write(&event)?);
        self.store.apply(writes).await?;
        self.sessions.session_ended(token_hash);
        Ok(())
    }

    /// The session index entries of one officer, or of every officer of an enterprise
    /// when `person` is `None`: read before the transaction that ends them
    /// ([`end_indexed`]; transactions do not scan). A session opened after this read is
    /// refused anyway when the change ends the officer's right to it.
    pub async fn session_index(
        &self,
        enterprise: &str,
        person: Option<&str>,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let prefix = match person {
            Some(p) => {
                let mut k = keys::officer(enterprise, p);
                k.push(0);
                k
            }
            None => keys::officers_of(enterprise),
        };
        let index = self
            .store
            .scan_prefix_raw(Tree::SessionsByOfficer, &prefix)
            .await?;
        Ok(index.into_iter().map(|(k, _)| k).collect())
    }

    /// Drops the cached copies of sessions [`end_indexed`] ended (after the commit).
    pub fn forget_sessions(&self, index: &[Vec<u8>]) {
        for k in index {
            if let Some(hash) = keys::parts(k).get(2) {
                self.sessions.session_ended(hash);
            }
        }
    }
}

/// The writes that remove a session and its index entry.
fn session_removal(token_hash: &str, session: &Session) -> Vec<Write> {
    let index = keys::session_of_officer(&session.enterprise, &session.person, token_hash);
    vec![
        (Tree::Sessions, token_hash.as_bytes().to_vec(), None),
        (Tree::SessionsByOfficer, index, None),
    ]
}

/// Ends, in `tx`, each session of `index` ([`App::session_index`]) that still exists,
/// with its index entry. Returns how many ended.
pub async fn end_indexed(tx: &mut Tx, index: &[Vec<u8>]) -> Result<usize, StoreError> {
    let mut ended = 0;
    for k in index {
        if let Some(hash) = keys::parts(k).get(2) {
            if tx.get_raw(Tree::Sessions, hash).await?.is_some() {
                tx.remove(Tree::Sessions, hash).await?;
                ended += 1;
            }
        }
        tx.remove(Tree::SessionsByOfficer, k).await?;
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use crate::app::{test_app, App};
    use crate::store::records::{Officer, Session};
    use crate::store::{keys, Tree};

    async fn open_session(app: &App, token: &str, now: i64) -> String {
        let mut officer = Officer::new("E", "P");
        officer.added = true;
        app.store
            .put(Tree::Officers, keys::officer("E", "P"), &officer)
            .await
            .unwrap();
        let hash = app.session_token_hash(token);
        let session = Session {
            enterprise: "E".into(),
            person: "P".into(),
            created_at: now,
            last_seen: now,
            csrf_token: "c".into(),
            client_ip: "127.0.0.1".into(),
            login: Default::default(),
        };
        app.store
            .put(Tree::Sessions, &hash, &session)
            .await
            .unwrap();
        hash
    }

    #[tokio::test]
    async fn a_cached_session_follows_its_officer_and_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let app = test_app(dir.path());
        let hash = open_session(&app, "tok", 1_000).await;
        assert!(app.resolve_session("tok", 1_001).await.unwrap().is_some());
        assert_eq!(app.sessions.len(), 1, "cached after the first request");

        // An officer write with its notification: the next request sees it.
        let mut o: Officer = app
            .store
            .get(Tree::Officers, keys::officer("E", "P"))
            .await
            .unwrap()
            .unwrap();
        o.unbound_at = Some(1_002);
        app.store
            .put(Tree::Officers, keys::officer("E", "P"), &o)
            .await
            .unwrap();
        app.sessions.officer_changed("E", "P");
        assert!(app.resolve_session("tok", 1_003).await.unwrap().is_none());
        assert!(app
            .store
            .get_raw(Tree::Sessions, &hash)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_touch_never_brings_back_a_session_removed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let app = test_app(dir.path());
        let hash = open_session(&app, "tok", 1_000).await;
        assert!(app.resolve_session("tok", 1_001).await.unwrap().is_some());
        // Removed behind the cache's back (a logout racing this request), then a request
        // late enough to write `last_seen`.
        app.store.remove(Tree::Sessions, &hash).await.unwrap();
        assert!(app.resolve_session("tok", 1_100).await.unwrap().is_none());
        assert!(app
            .store
            .get_raw(Tree::Sessions, &hash)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_copy_that_looks_idle_asks_the_store_before_ending_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let app = test_app(dir.path());
        let hash = open_session(&app, "tok", 1_000).await;
        assert!(app.resolve_session("tok", 1_001).await.unwrap().is_some());
        // Another node served and touched it later; this node's copy still says 1_000.
        let idle = app.config.limits.session_idle.as_secs() as i64;
        let later = 1_000 + idle;
        app.store
            .update::<Session>(Tree::Sessions, &hash, |s| {
                s.map(|s| Session {
                    last_seen: later,
                    ..s
                })
            })
            .await
            .unwrap();
        let ctx = app.resolve_session("tok", later + 10).await.unwrap();
        assert_eq!(ctx.map(|c| c.session().last_seen), Some(later));
        assert!(app.store.contains(Tree::Sessions, &hash).await.unwrap());
    }

    #[tokio::test]
    async fn last_seen_is_written_once_a_minute_and_idle_sessions_end() {
        let dir = tempfile::tempdir().unwrap();
        let app = test_app(dir.path());
        let hash = open_session(&app, "tok", 1_000).await;
        let stored = async |app: &App| -> Session {
            app.store.get(Tree::Sessions, &hash).await.unwrap().unwrap()
        };
        assert!(app.resolve_session("tok", 1_030).await.unwrap().is_some());
        assert_eq!(stored(&app).await.last_seen, 1_000);
        let ctx = app.resolve_session("tok", 1_061).await.unwrap().unwrap();
        assert_eq!(
            (ctx.session().last_seen, stored(&app).await.last_seen),
            (1_061, 1_061)
        );
        let idle = app.config.limits.session_idle.as_secs() as i64;
        assert!(app
            .resolve_session("tok", 1_062 + idle)
            .await
            .unwrap()
            .is_none());
        assert!(app
            .store
            .get_raw(Tree::Sessions, &hash)
            .await
            .unwrap()
            .is_none());
    }
}
