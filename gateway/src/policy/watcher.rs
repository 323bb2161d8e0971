//! Hot reload: a background thread that polls the policy files.
//!
//! Contract: the watcher compares the files' fingerprint (length and mtime of
//! the schema and of every `*.cedar` file, plus the file list) with the last
//! one it acted on, and calls [`PolicyEngine::reload`] once per change. It
//! logs `info` with the new version and the reload duration on success and
//! `warn` with Cedar's message on failure (the old set stays in force, and a
//! broken file is not retried until it changes again). It holds only a weak
//! reference: the thread ends when the engine is dropped.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::engine::PolicyEngine;

/// Starts the watcher thread (see the module contract).
pub fn spawn_reload_watcher(engine: Arc<PolicyEngine>, interval: Duration) -> JoinHandle<()> {
    let weak = Arc::downgrade(&engine);
    let mut seen = engine.loaded_fingerprint();
    drop(engine);
    std::thread::Builder::new()
        .name("policy-watcher".to_string())
        .spawn(move || loop {
            std::thread::sleep(interval);
            let Some(engine) = weak.upgrade() else {
                return;
            };
            let now = engine.files_fingerprint();
            if now == seen {
                continue;
            }
            seen = now;
            let start = Instant::now();
            match engine.reload() {
                Ok(status) => tracing::info!(
                    version = status.version,
                    hash = %status.hash,
                    policies = status.policies,
                    duration_ms = start.elapsed().as_secs_f64() * 1e3,
                    "policies reloaded"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    version_in_force = engine.status().version,
                    "policy reload refused; previous policies stay in force"
                ),
            }
        })
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not start the policy watcher thread");
            std::thread::spawn(|| {})
        })
}
