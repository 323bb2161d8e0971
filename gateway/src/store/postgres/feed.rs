//! The change feed of the PostgreSQL backend: how one node learns, within about a
//! second, what other nodes changed in the trees it caches.
//!
//! One dedicated connection per node `LISTEN`s on `taxgate_changes`; a notification, or
//! at the latest a poll every [`POLL`], reads the `changes` rows after the last one seen
//! and hands their keys to the [`ChangeListener`]. Sequence numbers are taken before
//! commit, so a row may become visible after a higher one: the feed keeps reading from
//! the lowest number it has not seen yet (a hole is waited for up to [`HOLE_GRACE`], the
//! longest a writing transaction may take, then treated as rolled back). After any
//! failure the listener is resynced (every copy forgotten) and the feed starts again
//! from the newest row: whatever changed while it was away is no longer cached.

use super::{op, CONNECT_TIMEOUT};
use crate::store::changes::ChangeListener;
use crate::store::{StoreError, Tree};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::{AsyncMessage, NoTls};

/// The longest between two catch-ups while nothing is notified.
pub const POLL: Duration = Duration::from_millis(250);
/// How long copies may be used after a catch-up: the staleness bound.
pub const FRESH_FOR: Duration = Duration::from_millis(1_000);
/// How long a hole in the sequence is waited for.
const HOLE_GRACE: Duration = Duration::from_secs(10);
const RETRY: Duration = Duration::from_millis(250);

/// Follows the feed for as long as the runtime runs.
pub async fn follow(config: tokio_postgres::Config, listener: Arc<dyn ChangeListener>) {
    loop {
        if let Err(e) = follow_once(&config, listener.as_ref()).await {
            tracing::warn!(error = %e, "postgres change feed interrupted; resyncing");
        }
        listener.resync();
        tokio::time::sleep(RETRY).await;
    }
}

async fn follow_once(
    config: &tokio_postgres::Config,
    listener: &dyn ChangeListener,
) -> Result<(), StoreError> {
    let mut config = config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    let (client, mut connection) = op(config.connect(NoTls)).await?;
    let (wake, mut woken) = tokio::sync::mpsc::channel::<()>(1);
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    let _ = wake.try_send(());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "postgres change feed connection failed");
                    return;
                }
            }
        }
    });
    let result = async {
        op(client.batch_execute("LISTEN taxgate_changes")).await?;
        // Everything before now is already in the store, and nothing is cached from
        // before this point that a resync has not dropped.
        let newest: i64 = op(client.query_one("SELECT coalesce(max(seq), 0) FROM changes", &[]))
            .await?
            .get(0);
        let mut cursor = Cursor::new(newest);
        let read = client
            .prepare("SELECT seq, tree, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT 10000")
            .await
            .map_err(super::store_error)?;
        loop {
            let rows = op(client.query(&read, &[&cursor.floor])).await?;
            let now = Instant::now();
            for row in rows {
                let seq: i64 = row.get(0);
                if cursor.see(seq) {
                    let key: Vec<u8> = row.get(2);
                    if let Some(tree) = Tree::from_id(row.get(1)) {
                        listener.changed(tree, &key);
                    }
                }
            }
            cursor.advance(now);
            listener.fresh_until(now + FRESH_FOR);
            tokio::select! {
                woke = woken.recv() => if woke.is_none() {
                    return Err(StoreError::Unavailable("change feed connection closed".into()));
                },
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
    .await;
    driver.abort();
    result
}

/// Which sequence numbers were delivered: all up to `floor`, and `seen` above it.
struct Cursor {
    floor: i64,
    seen: BTreeSet<i64>,
    /// When the hole just above `floor` was first noticed.
    hole_since: Option<Instant>,
}

impl Cursor {
    fn new(floor: i64) -> Cursor {
        Cursor {
            floor,
            seen: BTreeSet::new(),
            hole_since: None,
        }
    }

    /// Records `seq`; true if it is new (to be delivered).
    fn see(&mut self, seq: i64) -> bool {
        seq > self.floor && self.seen.insert(seq)
    }

    /// Raises `floor` over every delivered number and every hole older than the grace.
    fn advance(&mut self, now: Instant) {
        loop {
            while self.seen.remove(&(self.floor + 1)) {
                self.floor += 1;
                self.hole_since = None;
            }
            let Some(&next) = self.seen.first() else {
                self.hole_since = None;
                return;
            };
            let since = *self.hole_since.get_or_insert(now);
            if now.duration_since(since) < HOLE_GRACE {
                return;
            }
            // The hole is a rolled-back transaction: skip it.
            self.floor = next - 1;
            self.hole_since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_commit_below_a_seen_number_is_still_read() {
        let t0 = Instant::now();
        let mut c = Cursor::new(10);
        assert!(c.see(12));
        c.advance(t0);
        assert_eq!(c.floor, 10, "11 may still commit");
        assert!(!c.see(12), "delivered once");
        assert!(c.see(11));
        c.advance(t0);
        assert_eq!(c.floor, 12);
    }

    #[test]
    fn a_hole_is_given_up_after_the_grace() {
        let t0 = Instant::now();
        let mut c = Cursor::new(0);
        c.see(2);
        c.advance(t0);
        assert_eq!(c.floor, 0);
        c.advance(t0 + HOLE_GRACE);
        assert_eq!(c.floor, 2);
        assert!(!c.see(1), "below the floor now");
    }
}
