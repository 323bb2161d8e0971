//! The embedded backend: sled, one process per data dir.
//!
//! Contract (beyond [`Backend`]'s):
//! - no sled call runs on an async worker thread: each runs on the blocking pool, at most
//!   [`IN_FLIGHT`] at once. sled calls can wait on each other (a multi-tree transaction
//!   takes sled's global lock, a flush holds it shared while the disk writes), and a
//!   proxy worker waiting there would stall every request it carries; the store's
//!   deadline ([`super::Store`]) answers the caller, and a stuck call holds one blocking
//!   thread of at most [`IN_FLIGHT`], never a worker;
//! - [`Backend::flush`] is group commit ([`super::group_commit`]): one thread of ours
//!   flushes, one flush at a time, each acknowledging every write before it; sled's own
//!   periodic flusher is off and ours flushes every [`IDLE_FLUSH`] instead. sled's
//!   `flush_async` is never called (it deadlocks under concurrency, sled#1308);
//! - transactions are optimistic: reads go to the trees and are remembered, writes are
//!   buffered; commit runs one sled transaction over every tree touched that checks each
//!   remembered value is still there and applies the writes, or fails with
//!   [`StoreError::Conflict`] so [`super::Store::transaction`] runs the body again.
//!
//! Durability: sled's flush writes its log with `sync_file_range`; an acknowledged write
//! survives a `kill -9` of the process. For a store that must survive power loss, use the
//! PostgreSQL backend (README, "Several nodes").

use super::backend::{Backend, BackendTx, Pair, Scan, Write};
use super::group_commit::GroupCommit;
use super::{StoreError, Tree};
use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// sled calls running at once; more wait for a turn (within the store's deadline).
pub const IN_FLIGHT: usize = 64;
/// How often the flusher makes unacknowledged writes durable when no writer waits.
pub const IDLE_FLUSH: Duration = Duration::from_millis(500);

/// A [`super::Store`] on sled in `dir`, with a page cache of `cache_bytes`.
pub fn open(dir: &Path, cache_bytes: u64) -> Result<super::Store, StoreError> {
    Ok(super::Store::new(Arc::new(SledBackend::open(
        dir,
        cache_bytes,
    )?)))
}

#[derive(Clone)]
pub struct SledBackend {
    inner: Arc<Trees>,
    turns: Arc<Semaphore>,
}

struct Trees {
    /// Declared first, so it is dropped first: its last flush runs while the trees are
    /// still open.
    flusher: GroupCommit,
    db: sled::Db,
    /// Indexed by [`Tree::id`].
    trees: Vec<sled::Tree>,
}

fn backend_error(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SledBackend {
    /// Opens (creating if needed) the store in `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledBackend, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    StoreError::Locked(dir.display().to_string())
                }
                e => backend_error(e),
            })?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<_, _>>()
            .map_err(backend_error)?;
        let flusher = {
            let db = db.clone();
            GroupCommit::start("taxgate-flusher", IDLE_FLUSH, move || {
                db.flush().map(|_| ()).map_err(|e| e.to_string())
            })
            .map_err(|e| StoreError::Backend(format!("flusher thread: {e}")))?
        };
        Ok(SledBackend {
            inner: Arc::new(Trees { flusher, db, trees }),
            turns: Arc::new(Semaphore::new(IN_FLIGHT)),
        })
    }

    /// Runs `call` on the blocking pool when a turn is free (see the module contract).
    async fn blocking<R: Send + 'static>(
        &self,
        call: impl FnOnce(&Trees) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closing".into()))?;
        let trees = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            call(&trees)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store call failed: {e}")))?
    }
}

impl Trees {
    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree.id() as usize]
    }

    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(tree)
            .get(key)
            .map_err(backend_error)?
            .map(|v| v.to_vec()))
    }

    /// Applies `writes` after checking `reads` are unchanged, as one sled transaction.
    fn commit(&self, reads: &[Read], writes: &Writes) -> Result<(), StoreError> {
        let mut touched: Vec<Tree> = reads
            .iter()
            .map(|r| r.0)
            .chain(writes.keys().map(|(t, _)| *t))
            .collect();
        touched.sort();
        touched.dedup();
        if touched.is_empty() {
            return Ok(());
        }
        let handles: Vec<&sled::Tree> = touched.iter().map(|t| self.tree(*t)).collect();
        let index = |t: Tree| touched.iter().position(|x| *x == t).unwrap_or(0);
        let result = handles.as_slice().transaction(|tx| {
            for (tree, key, seen) in reads {
                let now = tx[index(*tree)].get(key)?;
                if now.as_deref() != seen.as_deref() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
            }
            for ((tree, key), value) in writes {
                let t = &tx[index(*tree)];
                match value {
                    Some(v) => t.insert(key.as_slice(), v.as_slice())?,
                    None => t.remove(key.as_slice())?,
                };
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(())) => Err(StoreError::Conflict),
            Err(TransactionError::Storage(e)) => Err(backend_error(e)),
        }
    }

    /// Applies every write at once, without reading.
    fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        // One write: as `put` or `remove` (sled batches take its global write lock).
        if let [(tree, key, value)] = writes.as_slice() {
            let tree = self.tree(*tree);
            let done = match value {
                Some(v) => tree.insert(key.as_slice(), v.as_slice()).map(|_| ()),
                None => tree.remove(key.as_slice()).map(|_| ()),
            };
            return done.map_err(backend_error);
        }
        let mut batches: BTreeMap<Tree, sled::Batch> = BTreeMap::new();
        for (tree, key, value) in writes {
            let b = batches.entry(tree).or_default();
            match value {
                Some(v) => b.insert(key, v),
                None => b.remove(key),
            }
        }
        // One tree: sled applies a batch atomically without a transaction.
        if batches.len() == 1 {
            if let Some((tree, batch)) = batches.pop_first() {
                return self.tree(tree).apply_batch(batch).map_err(backend_error);
            }
        }
        let trees: Vec<Tree> = batches.keys().copied().collect();
        let handles: Vec<&sled::Tree> = trees.iter().map(|t| self.tree(*t)).collect();
        let batches: Vec<sled::Batch> = batches.into_values().collect();
        handles
            .as_slice()
            .transaction(|tx| {
                for (t, b) in tx.iter().zip(&batches) {
                    t.apply_batch(b)?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => StoreError::Conflict,
                TransactionError::Storage(e) => backend_error(e),
            })
    }

    fn scan(&self, scan: Scan) -> Result<Vec<Pair>, StoreError> {
        let tree = self.tree(scan.tree);
        let iter = match scan.start {
            Some(start) if start.as_slice() > scan.prefix.as_slice() => tree.range(start..),
            _ => tree.range(scan.prefix.clone()..),
        };
        iter.take_while(|item| {
            item.as_ref()
                .map_or(true, |(k, _)| k.starts_with(&scan.prefix))
        })
        .take(scan.limit)
        .map(|item| {
            let (k, v) = item.map_err(backend_error)?;
            Ok((k.to_vec(), v.to_vec()))
        })
        .collect()
    }
}

/// A key read by a transaction and the value it had then.
type Read = (Tree, Vec<u8>, Option<Vec<u8>>);
/// Buffered writes of a transaction, by key; `None` removes.
type Writes = BTreeMap<(Tree, Vec<u8>), Option<Vec<u8>>>;

#[async_trait]
impl Backend for SledBackend {
    fn kind(&self) -> &'static str {
        "sled"
    }

    async fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.blocking(move |t| t.get(tree, &key)).await
    }

    async fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.blocking(move |t| {
            t.tree(tree).insert(key, value).map_err(backend_error)?;
            Ok(())
        })
        .await
    }

    async fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.blocking(move |t| {
            Ok(t.tree(tree)
                .remove(key)
                .map_err(backend_error)?
                .map(|v| v.to_vec()))
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let key = key.to_vec();
        let expected = expected.map(<[u8]>::to_vec);
        let new = new.map(<[u8]>::to_vec);
        self.blocking(move |t| {
            Ok(t.tree(tree)
                .compare_and_swap(key, expected, new)
                .map_err(backend_error)?
                .is_ok())
        })
        .await
    }

    async fn scan(&self, scan: Scan) -> Result<Vec<Pair>, StoreError> {
        self.blocking(move |t| t.scan(scan)).await
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.blocking(move |t| t.apply(writes)).await
    }

    async fn begin(&self) -> Result<Box<dyn BackendTx>, StoreError> {
        Ok(Box::new(SledTx {
            backend: self.clone(),
            reads: Vec::new(),
            writes: BTreeMap::new(),
        }))
    }

    async fn next_id(&self) -> Result<u64, StoreError> {
        self.blocking(|t| t.db.generate_id().map_err(backend_error))
            .await
    }

    async fn next_ids(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        self.blocking(move |t| {
            (0..n)
                .map(|_| t.db.generate_id().map_err(backend_error))
                .collect()
        })
        .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner
            .flusher
            .durable()
            .await
            .map_err(StoreError::Backend)
    }
}

struct SledTx {
    backend: SledBackend,
    reads: Vec<Read>,
    writes: Writes,
}

#[async_trait]
impl BackendTx for SledTx {
    async fn get(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(written) = self.writes.get(&(tree, key.to_vec())) {
            return Ok(written.clone());
        }
        let owned = key.to_vec();
        let value = self.backend.blocking(move |t| t.get(tree, &owned)).await?;
        self.reads.push((tree, key.to_vec(), value.clone()));
        Ok(value)
    }

    async fn put(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.writes
            .insert((tree, key.to_vec()), Some(value.to_vec()));
        Ok(())
    }

    async fn remove(&mut self, tree: Tree, key: &[u8]) -> Result<(), StoreError> {
        self.writes.insert((tree, key.to_vec()), None);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let SledTx {
            backend,
            reads,
            writes,
        } = *self;
        if reads.is_empty() && writes.is_empty() {
            return Ok(());
        }
        backend.blocking(move |t| t.commit(&reads, &writes)).await
    }
}
