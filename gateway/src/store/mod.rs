//! The store: trees of typed, versioned records behind one interface, on sled (the
//! embedded default, one process) or PostgreSQL (several nodes). No business rules.
//!
//! Contract:
//! - every kind of record has its own [`Tree`]; keys are built only by the functions in
//!   [`keys`], so the layout is written down once;
//! - [`Store::get`] / [`Store::put`] encode with [`codec`]; writes that touch several
//!   records go through [`Store::transaction`] (serializable, retried on conflict);
//!   read-modify-write of one record goes through [`Store::update`] (atomic on every
//!   backend, so counters are shared by all nodes of one store);
//! - nothing is acknowledged before [`Store::flush`] returned (SPEC S8): callers that
//!   answer a client after a write call it first;
//! - every call of a serving gateway has a deadline ([`deadline`]): a store that does
//!   not answer in time is [`StoreError::Unavailable`], never a caller that waits for
//!   ever;
//! - all state of the login flows lives here, never only in process memory, so it
//!   survives a restart and any node can serve the next request; the session cache
//!   (`auth/session_cache.rs`) holds copies that every write changing them invalidates,
//!   on this node directly and on the others through [`changes`].
//!
//! The engines are [`sled_store`] and [`postgres`]; nothing outside `store/` names them.

pub mod backend;
pub mod changes;
pub mod codec;
pub mod copy;
pub mod deadline;
mod error;
mod group_commit;
pub mod keys;
pub mod postgres;
pub mod records;
pub mod sled_store;
mod tree;
mod tx;

pub use backend::{Backend, Change, Pair, Scan, Write};
pub use error::StoreError;
pub use tree::Tree;
pub use tx::{Tx, TxError};

use deadline::{Deadline, Op};
use scoped_futures::ScopedBoxFuture;
use serde::{de::DeserializeOwned, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many times [`Store::transaction`] and [`Store::update`] try before giving up.
const ATTEMPTS: u32 = 40;
/// Page size of scans that walk a whole tree.
const PAGE: usize = 1_000;

#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    deadline: Arc<Deadline>,
    /// Transaction and update attempts that met a concurrent write and ran again.
    retries: Arc<AtomicU64>,
    /// Turns of [`Store::update`] on engines that do not serialize updates themselves:
    /// updates of one key in this process wait for each other (a striped lock) instead
    /// of failing compare-and-swap against each other (a crowd behind one address
    /// bumping its rate window).
    update_turns: Arc<[tokio::sync::Mutex<()>]>,
}

/// Stripes of [`Store`]'s update turns.
const UPDATE_STRIPES: usize = 256;

impl Store {
    /// A store whose calls have the [`deadline::OFFLINE`] deadline (a serving gateway
    /// sets its own with [`Store::with_deadline`]).
    pub fn new(backend: Arc<dyn Backend>) -> Store {
        Store {
            backend,
            deadline: Arc::new(Deadline::new(deadline::OFFLINE)),
            retries: Arc::default(),
            update_turns: (0..UPDATE_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The same store with calls bounded by `limit` (counted apart from this one's).
    pub fn with_deadline(self, limit: std::time::Duration) -> Store {
        Store {
            backend: self.backend,
            deadline: Arc::new(Deadline::new(limit)),
            retries: self.retries,
            update_turns: self.update_turns,
        }
    }

    /// How many transaction and update attempts met a concurrent write and ran again
    /// since start (`taxgate_store_retries_total`).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Before attempt `attempt`: nothing the first time, then a random pause of up to
    /// 0.1 ms, 0.2 ms, … 12.8 ms, so writers that collided spread out instead of
    /// colliding again; every retry is counted.
    async fn backoff(&self, attempt: u32) {
        if attempt == 0 {
            return;
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
        let ceiling_us = 100u64 << attempt.min(7);
        let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=ceiling_us);
        tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
    }

    /// The deadline of every call, and how many missed it since start.
    pub fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    /// Writes `key` in [`Tree::Meta`] and makes it durable within the deadline: the
    /// health probe (`/healthz`). Returns how long it took.
    pub async fn probe(&self, key: &str, now: i64) -> Result<std::time::Duration, StoreError> {
        let started = std::time::Instant::now();
        self.put(Tree::Meta, key, &now).await?;
        self.flush().await?;
        Ok(started.elapsed())
    }

    /// `sled` or `postgres`.
    pub fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        tree: Tree,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<T>, StoreError> {
        match self
            .deadline
            .bound(Op::Read, self.backend.get(tree, key.as_ref()))
            .await?
        {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The stored bytes, for index trees whose values are plain ids.
    pub async fn get_raw(
        &self,
        tree: Tree,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.deadline
            .bound(Op::Read, self.backend.get(tree, key.as_ref()))
            .await
    }

    pub async fn contains(&self, tree: Tree, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.get_raw(tree, key).await?.is_some())
    }

    pub async fn put<T: Serialize>(
        &self,
        tree: Tree,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = codec::encode(value)?;
        self.deadline
            .bound(Op::Write, self.backend.put(tree, key.as_ref(), &bytes))
            .await
    }

    /// Stores bytes as they are (index trees: plain ids, or nothing).
    pub async fn put_raw(
        &self,
        tree: Tree,
        key: impl AsRef<[u8]>,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.deadline
            .bound(Op::Write, self.backend.put(tree, key.as_ref(), value))
            .await
    }

    /// Removes the key; returns the bytes it held.
    pub async fn remove(
        &self,
        tree: Tree,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.deadline
            .bound(Op::Write, self.backend.remove(tree, key.as_ref()))
            .await
    }

    /// Writes `new` (`None` removes) only if the key still holds `expected`.
    pub async fn compare_and_swap(
        &self,
        tree: Tree,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let cas = self
            .backend
            .compare_and_swap(tree, key.as_ref(), expected, new);
        self.deadline.bound(Op::Write, cas).await
    }

    /// Atomically replaces the record with `f(current)` (`None` removes it) and returns
    /// the new value. `f` may run more than once; it must not have side effects outside.
    /// A record that no longer decodes is handed to `f` as absent. Updates of one key
    /// wait for each other (the engine's row lock, or this process's turns), so a crowd
    /// on one record queues instead of failing; compare-and-swap stays the check.
    pub async fn update<T: Serialize + DeserializeOwned + Send>(
        &self,
        tree: Tree,
        key: impl AsRef<[u8]>,
        mut f: impl FnMut(Option<T>) -> Option<T> + Send,
    ) -> Result<Option<T>, StoreError> {
        let key = key.as_ref();
        if self.backend.serializes_updates() {
            let mut new = None;
            let mut change = |current: Option<&[u8]>| {
                let value = f(current.and_then(|b| codec::decode(b).ok()));
                let bytes = value.as_ref().map(codec::encode).transpose()?;
                new = Some(value);
                Ok(bytes)
            };
            let locked = self.backend.update_locked(tree, key, &mut change);
            self.deadline.bound(Op::Transaction, locked).await?;
            return Ok(new.flatten());
        }
        let stripe = {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            let h = BuildHasherDefault::<DefaultHasher>::default().hash_one((tree, key));
            &self.update_turns[h as usize % UPDATE_STRIPES]
        };
        let _turn = self
            .deadline
            .bound(Op::Write, async { Ok(stripe.lock().await) })
            .await?;
        for attempt in 0..ATTEMPTS {
            self.backoff(attempt).await;
            let current = self
                .deadline
                .bound(Op::Read, self.backend.get(tree, key))
                .await?;
            let new = f(current.as_deref().and_then(|b| codec::decode(b).ok()));
            let bytes = new.as_ref().map(codec::encode).transpose()?;
            let cas =
                self.backend
                    .compare_and_swap(tree, key, current.as_deref(), bytes.as_deref());
            if self.deadline.bound(Op::Write, cas).await? {
                return Ok(new);
            }
        }
        Err(StoreError::Conflict)
    }

    /// Decodes every record under a key prefix, in key order.
    pub async fn scan_prefix<T: DeserializeOwned>(
        &self,
        tree: Tree,
        prefix: impl AsRef<[u8]>,
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        self.scan_prefix_raw(tree, prefix)
            .await?
            .into_iter()
            .map(|(k, v)| Ok((k, codec::decode(&v)?)))
            .collect()
    }

    /// Every key and stored bytes under a prefix, in key order.
    pub async fn scan_prefix_raw(
        &self,
        tree: Tree,
        prefix: impl AsRef<[u8]>,
    ) -> Result<Vec<Pair>, StoreError> {
        let prefix = prefix.as_ref().to_vec();
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let page = self.scan_page(tree, &prefix, start, PAGE).await?;
            let done = page.len() < PAGE;
            start = page.last().map(|(k, _)| successor(k));
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// At most `limit` pairs under `prefix` from `start` (inclusive) on; the next page
    /// starts at [`successor`] of the last key.
    pub async fn scan_page(
        &self,
        tree: Tree,
        prefix: &[u8],
        start: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        let scan = Scan {
            tree,
            prefix: prefix.to_vec(),
            start,
            limit,
        };
        self.deadline.bound(Op::Scan, self.backend.scan(scan)).await
    }

    /// Applies every write at once, without reading (imports).
    pub async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.deadline
            .bound(Op::Write, self.backend.apply(writes))
            .await
    }

    /// Runs `body` in one serializable transaction and commits it. On a conflict with a
    /// concurrent writer the whole body runs again (so it must not have side effects
    /// outside the transaction); a business outcome ends it with [`TxError::Abort`] and
    /// nothing written.
    ///
    /// ```ignore
    /// store.transaction(|tx| async move { tx.put(Tree::Meta, "k", &1u8).await?; Ok(()) }
    ///     .scope_boxed()).await
    /// ```
    pub async fn transaction<'c, R, E, F>(&self, mut body: F) -> Result<R, TxError<E>>
    where
        F: for<'t> FnMut(&'t mut Tx) -> ScopedBoxFuture<'c, 't, Result<R, TxError<E>>> + Send + 'c,
        R: Send,
        E: Send,
    {
        for attempt in 0..ATTEMPTS {
            self.backoff(attempt).await;
            let begun = self.deadline.bound(Op::Transaction, self.backend.begin());
            let mut tx = Tx::new(begun.await?, self.deadline.clone());
            match body(&mut tx).await {
                Ok(r) => match tx.commit().await {
                    Ok(()) => return Ok(r),
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(TxError::Store(e)),
                },
                Err(TxError::Store(StoreError::Conflict)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(TxError::Store(StoreError::Conflict))
    }

    /// Makes every write so far durable. Call before acknowledging a write (SPEC S8).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.deadline.bound(Op::Flush, self.backend.flush()).await
    }

    /// Backend housekeeping; see [`Backend::maintain`].
    pub async fn maintain(&self, now: i64) -> Result<(), StoreError> {
        self.deadline
            .bound(Op::Write, self.backend.maintain(now))
            .await
    }

    /// Whether other nodes share this store (their changes come through [`Store::watch`]).
    pub fn is_shared(&self) -> bool {
        self.backend.is_shared()
    }

    /// Delivers other nodes' changes to `listener`; see [`changes`].
    pub fn watch(&self, listener: Arc<dyn changes::ChangeListener>) {
        self.backend.watch(listener)
    }

    /// A number never handed out before by this store (on any node).
    pub async fn next_id(&self) -> Result<u64, StoreError> {
        self.deadline.bound(Op::Write, self.backend.next_id()).await
    }

    /// `n` store-unique ids in one call.
    pub async fn next_ids(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        self.deadline
            .bound(Op::Write, self.backend.next_ids(n))
            .await
    }
}

/// The smallest key after `key` in bytewise order.
pub fn successor(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    k
}
