//! What an engine must provide to hold taxgate's store. No business rules, raw bytes only:
//! typing and encoding are [`super::Store`]'s.
//!
//! Contract, for every implementation:
//! - single-key operations are atomic and, once they return `Ok`, visible to every other
//!   caller of the same store (on every node sharing it);
//! - [`Backend::compare_and_swap`] is atomic: it writes only if the current value equals
//!   `expected` (`None`: absent), and says whether it did;
//! - a [`BackendTx`] is serializable: its reads see one state, and [`BackendTx::commit`]
//!   applies all its writes at once or fails with [`StoreError::Conflict`] when a
//!   concurrent write touched what it read or wrote; a transaction dropped without commit
//!   applies nothing;
//! - after [`Backend::flush`] returns, every write that returned before it survives a
//!   crash of the process (see each backend for power loss);
//! - [`Backend::next_id`] never returns the same number twice for one store.

use super::changes::ChangeListener;
use super::{StoreError, Tree};
use async_trait::async_trait;
use std::sync::Arc;

pub type Pair = (Vec<u8>, Vec<u8>);

/// What a read-modify-write does with one record: the new bytes from the current ones
/// (`None`: absent / remove). It may run more than once and must not act outside.
pub type Change<'a> =
    &'a mut (dyn FnMut(Option<&[u8]>) -> Result<Option<Vec<u8>>, StoreError> + Send);

/// Keys of one tree that start with `prefix`, from `start` (inclusive) on, at most `limit`.
#[derive(Clone, Debug)]
pub struct Scan {
    pub tree: Tree,
    pub prefix: Vec<u8>,
    pub start: Option<Vec<u8>>,
    pub limit: usize,
}

/// One write of a batch: `None` removes.
pub type Write = (Tree, Vec<u8>, Option<Vec<u8>>);

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// `sled` or `postgres`, for logs and `/admin`.
    fn kind(&self) -> &'static str;

    async fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    async fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    /// Removes the key; returns the value it had.
    async fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    async fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError>;

    /// Whether [`Backend::update_locked`] is the engine's: it then serializes
    /// read-modify-writes of one record itself (a row lock), so a crowd on one record
    /// (many clients behind one address bumping its rate window) waits its turn instead
    /// of failing compare-and-swap after compare-and-swap.
    fn serializes_updates(&self) -> bool {
        false
    }

    /// Replaces the record with `change(current)` under the engine's lock; returns the
    /// new bytes. Called only when [`Backend::serializes_updates`].
    async fn update_locked(
        &self,
        _tree: Tree,
        _key: &[u8],
        _change: Change<'_>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::Backend(
            "this engine has no locked update".into(),
        ))
    }

    /// In key order (bytewise).
    async fn scan(&self, scan: Scan) -> Result<Vec<Pair>, StoreError>;

    /// Applies every write atomically, without reading.
    async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    async fn begin(&self) -> Result<Box<dyn BackendTx>, StoreError>;

    async fn next_id(&self) -> Result<u64, StoreError>;

    /// `n` ids, in one call where the engine can.
    async fn next_ids(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(self.next_id().await?);
        }
        Ok(ids)
    }

    async fn flush(&self) -> Result<(), StoreError>;

    /// Housekeeping of the backend's own (old change-log rows), done by the one node
    /// that holds the janitor lease.
    async fn maintain(&self, _now: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Starts delivering other nodes' changes to `listener` (see [`super::changes`]).
    /// A backend used by one process only has none to deliver.
    fn watch(&self, _listener: Arc<dyn ChangeListener>) {}

    /// Whether other processes may write this store (so caches need [`Backend::watch`]).
    fn is_shared(&self) -> bool {
        false
    }
}

#[async_trait]
pub trait BackendTx: Send {
    async fn get(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    async fn put(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    async fn remove(&mut self, tree: Tree, key: &[u8]) -> Result<(), StoreError>;

    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}
