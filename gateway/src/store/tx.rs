//! One transaction of [`super::Store::transaction`], typed.

use super::backend::BackendTx;
use super::{codec, StoreError, Tree};
use serde::{de::DeserializeOwned, Serialize};

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

pub struct Tx {
    inner: Box<dyn BackendTx>,
}

impl Tx {
    pub(super) fn new(inner: Box<dyn BackendTx>) -> Tx {
        Tx { inner }
    }

    pub(super) async fn commit(self) -> Result<(), StoreError> {
        self.inner.commit().await
    }

    pub async fn get<T: DeserializeOwned>(
        &mut self,
        tree: Tree,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<T>, StoreError> {
        match self.inner.get(tree, key.as_ref()).await? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub async fn get_raw(
        &mut self,
        tree: Tree,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(tree, key.as_ref()).await
    }

    pub async fn put<T: Serialize>(
        &mut self,
        tree: Tree,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = codec::encode(value)?;
        self.inner.put(tree, key.as_ref(), &bytes).await
    }

    pub async fn put_raw(
        &mut self,
        tree: Tree,
        key: impl AsRef<[u8]>,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.inner.put(tree, key.as_ref(), value).await
    }

    pub async fn remove(&mut self, tree: Tree, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        self.inner.remove(tree, key.as_ref()).await
    }
}
