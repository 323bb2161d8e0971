//! The embedded backend: sled, one process per data dir.
//!
//! Transactions are optimistic: reads go to the trees and are remembered, writes are
//! buffered; commit runs one sled transaction over every tree touched that checks each
//! remembered value is still there and applies the writes, or fails with
//! [`StoreError::Conflict`] so [`super::Store::transaction`] runs the body again.
//!
//! Durability: [`Backend::flush`] is sled's flush, which writes its log with
//! `sync_file_range`; an acknowledged write survives a `kill -9` of the process. For a
//! store that must survive power loss, use the PostgreSQL backend (README, "Several nodes").

use super::backend::{Backend, BackendTx, Pair, Scan, Write};
use super::{StoreError, Tree};
use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

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
}

struct Trees {
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
            .flush_every_ms(Some(500))
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
        Ok(SledBackend {
            inner: Arc::new(Trees { db, trees }),
        })
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        self.inner.tree(tree)
    }
}

impl Trees {
    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree.id() as usize]
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
        Ok(self
            .tree(tree)
            .get(key)
            .map_err(backend_error)?
            .map(|v| v.to_vec()))
    }

    async fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tree(tree).insert(key, value).map_err(backend_error)?;
        Ok(())
    }

    async fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(tree)
            .remove(key)
            .map_err(backend_error)?
            .map(|v| v.to_vec()))
    }

    async fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .tree(tree)
            .compare_and_swap(key, expected, new)
            .map_err(backend_error)?
            .is_ok())
    }

    async fn scan(&self, scan: Scan) -> Result<Vec<Pair>, StoreError> {
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

    async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
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

    async fn begin(&self) -> Result<Box<dyn BackendTx>, StoreError> {
        Ok(Box::new(SledTx {
            trees: self.inner.clone(),
            reads: Vec::new(),
            writes: BTreeMap::new(),
        }))
    }

    async fn next_id(&self) -> Result<u64, StoreError> {
        self.inner.db.generate_id().map_err(backend_error)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.db.flush_async().await.map_err(backend_error)?;
        Ok(())
    }
}

struct SledTx {
    trees: Arc<Trees>,
    reads: Vec<Read>,
    writes: Writes,
}

#[async_trait]
impl BackendTx for SledTx {
    async fn get(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(written) = self.writes.get(&(tree, key.to_vec())) {
            return Ok(written.clone());
        }
        let value = self
            .trees
            .tree(tree)
            .get(key)
            .map_err(backend_error)?
            .map(|v| v.to_vec());
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
        self.trees.commit(&self.reads, &self.writes)
    }
}
