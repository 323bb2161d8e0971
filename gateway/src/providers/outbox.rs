//! The development outbox: one JSON object per line, appended (API.md, "Development
//! providers"). Only constructed in development mode: the config refuses it otherwise.

use super::ProviderError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    /// Serializes appends from this process so lines never interleave.
    lock: Mutex<()>,
}

impl Outbox {
    pub fn new(path: &Path) -> Outbox {
        Outbox {
            path: path.to_path_buf(),
            lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, line: &serde_json::Value) -> Result<(), ProviderError> {
        let mut text = line.to_string();
        text.push('\n');
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| ProviderError::Unavailable(format!("outbox {}: {e}", self.path.display())))
    }
}
