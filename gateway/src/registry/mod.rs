//! Import of the core tax system's export (核心征管系统, API.md "Registry import").
//!
//! Contract: [`import`] validates the whole file first — every identifier with its
//! checksum, every reference, every password — and reports each bad row with its path
//! (`enterprises[2].officers[0].id_number: …`); with any error nothing is written. A valid
//! file is applied as one atomic batch and flushed. Re-import is idempotent: an
//! existing enterprise keeps its password (it may have been reset since), registry roles
//! and phones are replaced by the file's, officers who left the registry lose their
//! registry binding, and bindings made in taxgate (self-registered, added, unbound) stay.

mod apply;
mod file;
mod validate;

pub use apply::{import, ImportReport};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot parse the registry file: {0}")]
    Syntax(String),
    #[error("the registry file has {} error(s), nothing was imported:\n{}", .0.len(), .0.join("\n"))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("password hashing: {0}")]
    Hash(String),
}
