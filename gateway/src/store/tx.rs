//! One transaction of [`super::Store::transaction`], typed.

use super::backend::BackendTx;
use super::deadline::{Deadline, Op};
use super::{codec, StoreError, Tree};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::Arc;

/// How a transaction ended when it did not commit.
#[derive(Debug)]
pub enum TxError<E> {
    /// The body ended it with a business outcome; nothing was written.
    Abort(E),
    Store(StoreError),
}

impl<E> From<StoreError> for TxError<E> {
    fn from(e: StoreError) -> TxError<E> {
        TxError::Store(e)
    }
}

/// Every read and the commit have the store's deadline; writes are buffered until the
/// commit on some backends, and bounded too.
pub struct Tx {
    inner: Box<dyn BackendTx>,
    deadline: Arc<Deadline>,
}

impl Tx {
    pub(super) fn new(inner: Box<dyn BackendTx>, deadline: Arc<Deadline>) -> Tx {
        Tx { inner, deadline }
    }

    pub(super) async fn commit(self) -> Result<(), StoreError> {
        self.deadline
            .bound(Op::Transaction, self.inner.commit())
            .await
    }

    pub async fn get<T: DeserializeOwned>(
        &mut self,
        tree: Tree,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<T>, StoreError> {
        match self.get_raw(tree, key).await? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub async fn get_raw(
        &mut self,
        tree: Tree,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let read = self.inner.get(tree, key.as_ref());
        self.deadline.bound(Op::Transaction, read).await
    }

    pub async fn put<T: Serialize>(
        &mut self,
        tree: Tree,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = codec::encode(value)?;
        self.put_raw(tree, key, &bytes).await
    }

    pub async fn put_raw(
        &mut self,
        tree: Tree,
        key: impl AsRef<[u8]>,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let write = self.inner.put(tree, key.as_ref(), value);
        self.deadline.bound(Op::Transaction, write).await
    }

    pub async fn remove(&mut self, tree: Tree, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        let write = self.inner.remove(tree, key.as_ref());
        self.deadline.bound(Op::Transaction, write).await
    }
}
