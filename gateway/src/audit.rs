//! The audit trail (SPEC S9): every login step, lockout, grant, revoke, unbind, reset
//! and denied request, kept in the store in time order.
//!
//! Contract: every event lives under a key of big-endian time and a store-unique
//! sequence, so a scan is chronological and two events never collide. An event that
//! records a change is written in the change's own transaction: [`Audit::slot`] reserves
//! its key before the transaction, [`Slot::put`] writes it inside (or [`Slot::write`]
//! joins a batch), so the change and its event are on disk together or not at all. An
//! event that records no change (a refused attempt, a denied request) is appended alone
//! by [`Audit::record`]. Nothing here flushes: the handler that acknowledges the change
//! flushes the store, and events without an acknowledgement reach disk with the store's
//! own periodic flush (sled) or at once (PostgreSQL). [`Audit::export`] writes JSON
//! lines from a point in time on.

use crate::store::records::AuditEvent;
use crate::store::{codec, successor, Store, StoreError, Tree, Tx, Write};
use std::io::Write as IoWrite;

#[derive(Clone)]
pub struct Audit {
    store: Store,
}

/// What happened, to whom, from where. Built with [`Event::new`] and the setters.
#[derive(Clone)]
pub struct Event {
    inner: AuditEvent,
}

impl Event {
    pub fn new(action: &str, outcome: &str) -> Event {
        Event {
            inner: AuditEvent {
                at: String::new(),
                action: action.to_string(),
                outcome: outcome.to_string(),
                enterprise: None,
                person: None,
                client_ip: None,
                detail: None,
            },
        }
    }

    pub fn enterprise(mut self, e: &str) -> Event {
        self.inner.enterprise = Some(e.to_string());
        self
    }

    pub fn person(mut self, p: &str) -> Event {
        self.inner.person = Some(p.to_string());
        self
    }

    pub fn client(mut self, ip: &str) -> Event {
        self.inner.client_ip = Some(ip.to_string());
        self
    }

    pub fn detail(mut self, d: impl Into<String>) -> Event {
        self.inner.detail = Some(d.into());
        self
    }
}

/// The reserved key of one event, for the transaction of the change it records.
pub struct Slot {
    key: Vec<u8>,
    at: String,
}

impl Slot {
    fn stamped(&self, event: &Event) -> AuditEvent {
        AuditEvent {
            at: self.at.clone(),
            ..event.inner.clone()
        }
    }

    /// Writes `event` in `tx`, beside the change it records.
    pub async fn put(&self, tx: &mut Tx, event: &Event) -> Result<(), StoreError> {
        tx.put(Tree::Audit, &self.key, &self.stamped(event)).await
    }

    /// `event` as one write of a batch ([`Store::apply`]).
    pub fn write(&self, event: &Event) -> Result<Write, StoreError> {
        let bytes = codec::encode(&self.stamped(event))?;
        Ok((Tree::Audit, self.key.clone(), Some(bytes)))
    }
}

impl Audit {
    pub fn new(store: Store) -> Audit {
        Audit { store }
    }

    /// Reserves the key of an event at `now` (see the module contract).
    pub async fn slot(&self, now: i64) -> Result<Slot, StoreError> {
        let mut key = Vec::with_capacity(16);
        key.extend_from_slice(&now.to_be_bytes());
        key.extend_from_slice(&self.store.next_id().await?.to_be_bytes());
        Ok(Slot {
            key,
            at: crate::clock::rfc3339(now),
        })
    }

    /// Appends an event that records no change, at `now`. A failure is logged, never
    /// hidden.
    pub async fn record(&self, now: i64, event: Event) {
        let action = event.inner.action.clone();
        let written = async {
            let slot = self.slot(now).await?;
            let stamped = slot.stamped(&event);
            self.store.put(Tree::Audit, &slot.key, &stamped).await
        }
        .await;
        if let Err(err) = written {
            tracing::error!(error = %err, action = %action, "audit event not written");
        }
    }

    /// Writes every event at or after `since` (Unix seconds) as one JSON line each.
    pub async fn export(&self, since: i64, out: &mut dyn IoWrite) -> Result<usize, StoreError> {
        let mut n = 0;
        let mut start = Some(since.max(0).to_be_bytes().to_vec());
        loop {
            let page = self.store.scan_page(Tree::Audit, b"", start, 1_000).await?;
            for (_, v) in &page {
                let e: AuditEvent = codec::decode(v)?;
                let line =
                    serde_json::to_string(&e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                writeln!(out, "{line}").map_err(|e| StoreError::Backend(e.to_string()))?;
                n += 1;
            }
            match page.last() {
                Some((k, _)) if page.len() == 1_000 => start = Some(successor(k)),
                _ => return Ok(n),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn export_is_chronological_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sled_store::open(dir.path(), 1 << 20).unwrap();
        let a = Audit::new(store);
        a.record(200, Event::new("login", "ok").person("p2")).await;
        a.record(
            100,
            Event::new("login", "bad_credentials").client("1.2.3.4"),
        )
        .await;
        let mut out = Vec::new();
        assert_eq!(a.export(0, &mut out).await.unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("bad_credentials"));
        assert!(lines[1].contains("\"person\":\"p2\""));
        let mut out = Vec::new();
        assert_eq!(a.export(150, &mut out).await.unwrap(), 1);
    }
}
