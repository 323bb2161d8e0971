//! The store's one error type. A leaf: it names no backend's types, so the layers above
//! can match on it without knowing which engine is underneath.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine failed (I/O, a refused statement). The detail is for the log only.
    #[error("store: {0}")]
    Backend(String),
    /// The engine cannot be reached now (PostgreSQL down); the request may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A transaction met a concurrent write and was not applied; [`super::Store::transaction`]
    /// retries, so callers see this only after every retry met one.
    #[error("store: transaction conflict")]
    Conflict,
    #[error("store: corrupt record: {0}")]
    Corrupt(String),
    #[error("store: data dir {0} is in use by another taxgate process")]
    Locked(String),
}
