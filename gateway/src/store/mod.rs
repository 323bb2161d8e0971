//! The store: sled trees of typed, versioned records. No business rules.
//!
//! Contract:
//! - every kind of record has its own tree, named in [`Trees`]; keys are built only by
//!   the functions in [`keys`], so the layout is written down once;
//! - [`Store::get`] / [`Store::put`] encode with [`codec`]; writes that touch several
//!   trees go through [`Store::transaction`] (one sled transaction);
//! - nothing is acknowledged before [`Store::flush`] returned (SPEC S8): callers that
//!   answer a client after a write call it first;
//! - all state of the login flows lives here, never only in process memory, so it
//!   survives a restart; the session cache (`auth/session_cache.rs`) holds copies that
//!   every write changing them invalidates.

pub mod codec;
pub mod keys;
pub mod records;

use serde::{de::DeserializeOwned, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: corrupt record: {0}")]
    Corrupt(String),
    #[error("store: data dir {0} is in use by another taxgate process")]
    Locked(String),
}

/// Every tree of the store.
#[derive(Clone)]
pub struct Trees {
    pub enterprises: sled::Tree,
    /// USCC or TIN → enterprise key.
    pub accounts: sled::Tree,
    pub persons: sled::Tree,
    /// ID number → person id.
    pub persons_by_id_number: sled::Tree,
    /// phone → person id (registered persons only).
    pub persons_by_phone: sled::Tree,
    /// enterprise \0 person → Officer.
    pub officers: sled::Tree,
    /// person \0 enterprise → ().
    pub officers_by_person: sled::Tree,
    /// token hash → Session.
    pub sessions: sled::Tree,
    /// enterprise \0 person \0 token hash → ().
    pub sessions_by_officer: sled::Tree,
    /// ticket hash → LoginTicket.
    pub login_tickets: sled::Tree,
    pub captchas: sled::Tree,
    /// purpose \0 scope → SmsCode.
    pub sms_codes: sled::Tree,
    /// phone → SmsQuota.
    pub sms_quota: sled::Tree,
    /// account kind \0 id → Lockout.
    pub lockouts: sled::Tree,
    /// class \0 client → RateWindow.
    pub rate: sled::Tree,
    pub tax_authorities: sled::Tree,
    /// verification id → RealnameCheck.
    pub realname: sled::Tree,
    /// ticket hash → FlowTicket (registration, recovery).
    pub flow_tickets: sled::Tree,
    /// big-endian time + sequence → AuditEvent.
    pub audit: sled::Tree,
    pub meta: sled::Tree,
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    pub trees: Trees,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    StoreError::Locked(dir.display().to_string())
                }
                sled::Error::Io(ref io) if io.to_string().contains("lock") => {
                    StoreError::Locked(dir.display().to_string())
                }
                e => StoreError::Sled(e),
            })?;
        let t = |name: &str| db.open_tree(name);
        let trees = Trees {
            enterprises: t("enterprises")?,
            accounts: t("accounts")?,
            persons: t("persons")?,
            persons_by_id_number: t("persons_by_id_number")?,
            persons_by_phone: t("persons_by_phone")?,
            officers: t("officers")?,
            officers_by_person: t("officers_by_person")?,
            sessions: t("sessions")?,
            sessions_by_officer: t("sessions_by_officer")?,
            login_tickets: t("login_tickets")?,
            captchas: t("captchas")?,
            sms_codes: t("sms_codes")?,
            sms_quota: t("sms_quota")?,
            lockouts: t("lockouts")?,
            rate: t("rate")?,
            tax_authorities: t("tax_authorities")?,
            realname: t("realname")?,
            flow_tickets: t("flow_tickets")?,
            audit: t("audit")?,
            meta: t("meta")?,
        };
        Ok(Store { db, trees })
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key)? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub fn put<T: Serialize>(
        &self,
        tree: &sled::Tree,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), StoreError> {
        tree.insert(key.as_ref(), codec::encode(value)?)?;
        Ok(())
    }

    pub fn remove(&self, tree: &sled::Tree, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        tree.remove(key)?;
        Ok(())
    }

    /// Decodes every record under a key prefix, in key order.
    pub fn scan_prefix<T: DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        prefix: impl AsRef<[u8]>,
    ) -> Result<Vec<(sled::IVec, T)>, StoreError> {
        tree.scan_prefix(prefix)
            .map(|item| {
                let (k, v) = item?;
                Ok((k, codec::decode(&v)?))
            })
            .collect()
    }

    /// Runs `f` as one sled transaction over `trees` (given in that order to `f`).
    /// `f` may run more than once on conflict; it must not have side effects outside.
    pub fn transaction<R, E>(
        &self,
        trees: &[&sled::Tree],
        f: impl Fn(&[TransactionalTree]) -> Result<R, ConflictableTransactionError<E>>,
    ) -> Result<R, TxError<E>> {
        trees.transaction(|tx| f(tx)).map_err(|e| match e {
            TransactionError::Abort(e) => TxError::Abort(e),
            TransactionError::Storage(e) => TxError::Store(StoreError::Sled(e)),
        })
    }

    /// Makes every write so far durable. Call before acknowledging a write (SPEC S8).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Blocking flush, for command-line tools outside the async runtime.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// A monotonic id, unique across restarts.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }
}

/// The outcome of a failed [`Store::transaction`].
#[derive(Debug)]
pub enum TxError<E> {
    /// `f` aborted with a business outcome.
    Abort(E),
    Store(StoreError),
}

/// Typed access inside a transaction.
pub fn tx_get<T: DeserializeOwned, E>(
    tree: &TransactionalTree,
    key: impl AsRef<[u8]>,
) -> Result<Option<T>, ConflictableTransactionError<E>> {
    match tree.get(key.as_ref())? {
        Some(bytes) => codec::decode(&bytes).map(Some).map_err(|e| {
            ConflictableTransactionError::Storage(sled::Error::Unsupported(e.to_string()))
        }),
        None => Ok(None),
    }
}

pub fn tx_put<T: Serialize, E>(
    tree: &TransactionalTree,
    key: impl AsRef<[u8]>,
    value: &T,
) -> Result<(), ConflictableTransactionError<E>> {
    let bytes = codec::encode(value).map_err(|e| {
        ConflictableTransactionError::Storage(sled::Error::Unsupported(e.to_string()))
    })?;
    tree.insert(key.as_ref(), bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::records::Lockout;
    use super::*;

    #[tokio::test]
    async fn records_survive_reopen_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path(), 1 << 20).unwrap();
            s.put(
                &s.trees.lockouts,
                "k",
                &Lockout {
                    failures: 3,
                    locked_until: 9,
                },
            )
            .unwrap();
            s.flush().await.unwrap();
        }
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        let l: Lockout = s.get(&s.trees.lockouts, "k").unwrap().unwrap();
        assert_eq!((l.failures, l.locked_until), (3, 9));
    }

    #[test]
    fn transaction_aborts_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        let r: Result<(), TxError<&str>> = s.transaction(&[&s.trees.meta, &s.trees.rate], |t| {
            t[0].insert("a", "1")?;
            t[1].insert("b", "2")?;
            Err(ConflictableTransactionError::Abort("no"))
        });
        assert!(matches!(r, Err(TxError::Abort("no"))));
        assert!(s.trees.meta.get("a").unwrap().is_none());
        assert!(s.trees.rate.get("b").unwrap().is_none());
    }
}
