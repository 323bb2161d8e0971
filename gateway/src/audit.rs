//! The audit trail (SPEC S9): every login step, lockout, grant, revoke, unbind, reset
//! and denied request, kept in the store in time order.
//!
//! Contract: every event lives under a key of big-endian time and a store-unique
//! sequence, so a scan is chronological and two events never collide. An event that
//! records a change is written in the change's own transaction: [`Audit::slot`] reserves
//! its key before the transaction, [`Slot::put`] writes it inside (or [`Slot::write`]
//! joins a batch), so the change and its event are on disk together or not at all. An
//! event that records no change (a refused attempt, a denied request) is appended alone
//! by [`Audit::record`]; a denied proxied request's event is queued by
//! [`Audit::record_later`] and written with the others queued beside it, in one batch
//! (two store calls for the batch, not two per request: a flood of forbidden requests
//! costs the proxy a queue push each). The queue holds at most [`MAX_QUEUED`] events;
//! past that an event is dropped and counted ([`Audit::dropped`], metric
//! `taxgate_audit_events_dropped_total`), so a flood cannot grow the gateway's memory.
//! Nothing here flushes: the handler that acknowledges the change
//! flushes the store, and events without an acknowledgement reach disk with the store's
//! own periodic flush (sled) or at once (PostgreSQL). [`Audit::export`] writes JSON
//! lines from a point in time on.

use crate::store::records::AuditEvent;
use crate::store::{codec, successor, Store, StoreError, Tree, Tx, Write};
use std::io::Write as IoWrite;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The most events [`Audit::record_later`] holds before it drops them.
pub const MAX_QUEUED: usize = 10_000;

#[derive(Clone)]
pub struct Audit {
    store: Store,
    queued: Arc<Queued>,
}

/// Events waiting for their batch, and whether a task is writing them.
#[derive(Default)]
struct Queued {
    state: Mutex<QueueState>,
    dropped: AtomicU64,
}

#[derive(Default)]
struct QueueState {
    events: Vec<(i64, Event)>,
    writing: bool,
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
    /// The key of an event at `now` with the store-unique `id`.
    fn at(now: i64, id: u64) -> Slot {
        let mut key = Vec::with_capacity(16);
        key.extend_from_slice(&now.to_be_bytes());
        key.extend_from_slice(&id.to_be_bytes());
        Slot {
            key,
            at: crate::clock::rfc3339(now),
        }
    }

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
        Audit {
            store,
            queued: Arc::default(),
        }
    }

    /// Reserves the key of an event at `now` (see the module contract).
    pub async fn slot(&self, now: i64) -> Result<Slot, StoreError> {
        Ok(Slot::at(now, self.store.next_id().await?))
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

    /// Queues an event that records no change, at `now`, for a task of the current tokio
    /// runtime to write (see the module contract): the caller does not wait for the store.
    /// Call it on a tokio runtime (the proxy's workers).
    pub fn record_later(&self, now: i64, event: Event) {
        let mut state = self.queued.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.events.len() >= MAX_QUEUED {
            drop(state);
            if self.queued.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    max = MAX_QUEUED,
                    "audit queue full: events of denied requests are dropped and counted"
                );
            }
            return;
        }
        state.events.push((now, event));
        if std::mem::replace(&mut state.writing, true) {
            return;
        }
        drop(state);
        let audit = self.clone();
        tokio::spawn(async move { audit.write_queued().await });
    }

    /// Events dropped by [`Audit::record_later`] since start.
    pub fn dropped(&self) -> u64 {
        self.queued.dropped.load(Ordering::Relaxed)
    }

    /// Writes what is queued now, whether or not a task is writing (a shutdown's last
    /// step: that task may not run again). Events are written once either way: each
    /// batch is taken out of the queue before it is written.
    pub async fn drain(&self) {
        let batch = std::mem::take(
            &mut self
                .queued
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .events,
        );
        if !batch.is_empty() {
            self.write_batch(&batch).await;
        }
    }

    /// Writes queued events, a batch at a time, until the queue is empty.
    async fn write_queued(&self) {
        loop {
            let batch = {
                let mut state = self.queued.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.events.is_empty() {
                    state.writing = false;
                    return;
                }
                std::mem::take(&mut state.events)
            };
            self.write_batch(&batch).await;
        }
    }

    /// Writes one batch; a failure is logged with the number of events lost.
    async fn write_batch(&self, batch: &[(i64, Event)]) {
        if let Err(err) = self.try_write_batch(batch).await {
            tracing::error!(error = %err, events = batch.len(), "audit events not written");
        }
    }

    /// One batch: its keys reserved together, its events applied together.
    async fn try_write_batch(&self, batch: &[(i64, Event)]) -> Result<(), StoreError> {
        let ids = self.store.next_ids(batch.len()).await?;
        let mut writes = Vec::with_capacity(batch.len());
        for ((now, event), id) in batch.iter().zip(ids) {
            writes.push(Slot::at(*now, id).write(event)?);
        }
        self.store.apply(writes).await
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
    async fn queued_events_are_written_in_batches_and_a_full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sled_store::open(dir.path(), 1 << 20).unwrap();
        let a = Audit::new(store);
        for i in 0..(MAX_QUEUED + 5) as i64 {
            a.record_later(1_000 + i, Event::new("proxy.denied", "forbidden"));
        }
        assert_eq!(
            a.dropped(),
            5,
            "queued while nothing ran: the last five dropped"
        );
        // The writer task runs once this task yields; wait for the queue to drain.
        for _ in 0..500 {
            if !a.queued.state.lock().unwrap().writing {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mut out = Vec::new();
        assert_eq!(a.export(0, &mut out).await.unwrap(), MAX_QUEUED);
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().next().unwrap().contains("1970-01-01T00:16:40"));
        // Once written, the queue takes events again.
        a.record_later(50_000, Event::new("proxy.denied", "forbidden"));
        for _ in 0..500 {
            if !a.queued.state.lock().unwrap().writing {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(a.export(50_000, &mut Vec::new()).await.unwrap(), 1);
        assert_eq!(a.dropped(), 5);
    }

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
