//! Errors of the policy layer.
//!
//! Contract: every error names what a security admin has to fix — the file, the
//! policy `@id` or module id, and the line where one is known — and carries
//! Cedar's own message unchanged where Cedar produced it. Errors are plain data
//! (`Clone`), so the engine can remember the last reload failure and report it.

use std::path::{Path, PathBuf};

/// Why the catalog, the schema or the policies could not be loaded, or an
/// entity could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A file or directory could not be read.
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    /// The module catalog (`config/modules.yaml`) is malformed or inconsistent.
    #[error("module catalog: {0}")]
    Catalog(String),
    /// The Cedar schema does not parse.
    #[error("{file}: {message}")]
    Schema { file: String, message: String },
    /// A policy file does not parse, or a policy in it is not acceptable
    /// (no `@id`, duplicate `@id`, template, unknown module …).
    #[error("{file}: {message}")]
    Policy { file: String, message: String },
    /// Strict validation against the schema failed; one line per Cedar error.
    #[error("policy validation failed:\n{0}")]
    Validation(String),
    /// A request entity could not be built (should not happen with a valid
    /// catalog; reported rather than panicking).
    #[error("entity: {0}")]
    Entity(String),
}

impl PolicyError {
    pub(crate) fn io(path: &Path, err: &std::io::Error) -> Self {
        PolicyError::Io {
            path: path.to_path_buf(),
            message: err.to_string(),
        }
    }
}
