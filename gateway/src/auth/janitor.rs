//! Removing what has expired: captchas, login and flow tickets, real-name checks, SMS
//! codes, old rate windows, sessions past their idle or absolute limit. Expired records
//! are already refused where they are read; this only keeps the store (and the session
//! cache) from growing.

use crate::app::App;
use crate::store::records::{
    Captcha, FlowTicket, LoginTicket, RateWindow, RealnameCheck, Session, SmsCode,
};
use crate::store::{codec, keys, successor, Store, StoreError, Tree};
use serde::de::DeserializeOwned;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Records read per page while sweeping.
const PAGE: usize = 500;

/// Removes every record of `tree` for which `expired` says so (or that no longer
/// decodes), page by page; each removal only if the record is unchanged since read, so a
/// record renewed meanwhile stays. Returns each removed key with its record.
async fn sweep<T: DeserializeOwned>(
    store: &Store,
    tree: Tree,
    expired: impl Fn(&T) -> bool,
) -> Result<Vec<(Vec<u8>, Option<T>)>, StoreError> {
    let mut removed = Vec::new();
    let mut start = None;
    loop {
        let page = store.scan_page(tree, b"", start, PAGE).await?;
        for (k, v) in &page {
            let record = codec::decode::<T>(v).ok();
            if record.as_ref().is_none_or(&expired)
                && store.compare_and_swap(tree, k, Some(v), None).await?
            {
                removed.push((k.clone(), record));
            }
        }
        match page.last() {
            Some((k, _)) if page.len() == PAGE => start = Some(successor(k)),
            _ => return Ok(removed),
        }
    }
}

impl App {
    /// One pass over every tree with expiring records; returns how many were removed.
    pub async fn sweep_expired(&self, now: i64) -> Result<usize, StoreError> {
        let s = &self.store;
        let limits = &self.config.limits;
        let idle = limits.session_idle.as_secs() as i64;
        let absolute = limits.session_absolute.as_secs() as i64;
        let mut n = sweep::<Captcha>(s, Tree::Captchas, |c| c.expires_at <= now)
            .await?
            .len();
        n += sweep::<LoginTicket>(s, Tree::LoginTickets, |x| x.expires_at <= now)
            .await?
            .len();
        n += sweep::<FlowTicket>(s, Tree::FlowTickets, |x| x.expires_at <= now)
            .await?
            .len();
        n += sweep::<RealnameCheck>(s, Tree::Realname, |x| x.expires_at <= now)
            .await?
            .len();
        n += sweep::<SmsCode>(s, Tree::SmsCodes, |x| x.expires_at <= now)
            .await?
            .len();
        let this_minute = now.div_euclid(60);
        n += sweep::<RateWindow>(s, Tree::Rate, |w| w.window < this_minute)
            .await?
            .len();
        let ended = sweep::<Session>(s, Tree::Sessions, |x| {
            now - x.last_seen > idle || now - x.created_at > absolute
        })
        .await?;
        n += ended.len();
        for (k, session) in ended {
            let hash = String::from_utf8_lossy(&k).into_owned();
            if let Some(x) = session {
                let index = keys::session_of_officer(&x.enterprise, &x.person, &hash);
                s.remove(Tree::SessionsByOfficer, index).await?;
            }
            self.sessions.session_ended(&hash);
        }
        // Memory only: expired or stale entries would be refused where they are read.
        self.sessions
            .prune(|s| now - s.last_seen > idle || now - s.created_at > absolute);
        Ok(n)
    }
}

/// Where the janitor's lease lives in [`Tree::Meta`].
const LEASE_KEY: &str = "janitor_lease";

/// Sweeps every `interval` on its own thread while the gateway lives, and writes this
/// node's heartbeat beside (`nodes.rs`). With several nodes
/// on one store, only the holder of the janitor lease sweeps: a node takes the lease when
/// it is free or has run out (three intervals after its holder's last pass), so a node
/// that dies hands the work to another within three intervals.
pub fn spawn_janitor(app: &Arc<App>, interval: Duration) -> std::io::Result<()> {
    let weak: Weak<App> = Arc::downgrade(app);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("taxgate-janitor".into())
        .spawn(move || {
            runtime.block_on(async move {
                let heartbeat = tokio::spawn(beat_while_alive(weak.clone()));
                loop {
                    tokio::time::sleep(interval).await;
                    let Some(app) = weak.upgrade() else {
                        heartbeat.abort();
                        return;
                    };
                    let now = crate::clock::now();
                    match app.janitor_pass(now, interval).await {
                        Ok(None) => {}
                        Ok(Some(0)) => {}
                        Ok(Some(n)) => tracing::debug!(removed = n, "expired records swept"),
                        Err(e) => tracing::warn!(error = %e, "sweeping expired records failed"),
                    }
                }
            })
        })?;
    Ok(())
}

/// This node's heartbeat (`nodes.rs`): at once, then every `BEAT_EVERY`.
async fn beat_while_alive(weak: Weak<App>) {
    loop {
        let Some(app) = weak.upgrade() else {
            return;
        };
        if let Err(e) = app.beat(crate::clock::now()).await {
            tracing::warn!(error = %e, "node heartbeat not written");
        }
        drop(app);
        tokio::time::sleep(crate::nodes::BEAT_EVERY).await;
    }
}

impl App {
    /// Takes or renews the lease and sweeps; `None` when another node holds the lease.
    pub async fn janitor_pass(
        &self,
        now: i64,
        interval: Duration,
    ) -> Result<Option<usize>, StoreError> {
        let until = now + 3 * interval.as_secs().max(1) as i64;
        let me = self.node_id.as_str();
        let lease = self
            .store
            .update::<JanitorLease>(Tree::Meta, LEASE_KEY, |held| match held {
                Some(l) if l.node != me && l.until > now => Some(l),
                _ => Some(JanitorLease {
                    node: me.to_string(),
                    until,
                }),
            })
            .await?;
        if lease.is_none_or(|l| l.node != me) {
            return Ok(None);
        }
        self.store.maintain(now).await?;
        crate::nodes::forget_gone(&self.store, now).await?;
        self.sweep_expired(now).await.map(Some)
    }
}

/// Who sweeps, until when (Unix seconds).
#[derive(serde::Serialize, serde::Deserialize)]
struct JanitorLease {
    node: String,
    until: i64,
}

#[cfg(test)]
mod tests {
    use crate::store::Tree;
    use std::time::Duration;

    #[tokio::test]
    async fn sweeps_only_what_expired() {
        let dir = tempfile::tempdir().unwrap();
        let app = crate::app::test_app(dir.path());
        let live = app.issue_captcha(1_000).await.unwrap();
        let old = app.issue_captcha(0).await.unwrap();
        let removed = app.sweep_expired(1_000).await.unwrap();
        assert_eq!(removed, 1);
        assert!(app
            .store
            .contains(Tree::Captchas, &live.captcha_id)
            .await
            .unwrap());
        assert!(!app
            .store
            .contains(Tree::Captchas, &old.captcha_id)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn one_node_at_a_time_holds_the_lease_until_it_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let a = crate::app::test_app(dir.path());
        let b = crate::app::App::with_store(a.config.as_ref().clone(), a.store.clone()).unwrap();
        let minute = Duration::from_secs(60);
        assert!(a.janitor_pass(1_000, minute).await.unwrap().is_some());
        assert!(
            b.janitor_pass(1_010, minute).await.unwrap().is_none(),
            "a holds it"
        );
        assert!(
            a.janitor_pass(1_060, minute).await.unwrap().is_some(),
            "renewed"
        );
        // a dies: three intervals after its last pass, b takes over.
        assert!(b.janitor_pass(1_200, minute).await.unwrap().is_none());
        assert!(b.janitor_pass(1_241, minute).await.unwrap().is_some());
        assert!(a.janitor_pass(1_250, minute).await.unwrap().is_none());
    }
}
