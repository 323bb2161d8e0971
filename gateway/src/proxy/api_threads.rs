//! The JSON API (logins, registration, recovery, user management) runs on threads of its
//! own, not on the proxy's worker threads.
//!
//! Contract: [`ApiThreads::run`] executes an API call on a separate tokio runtime and
//! awaits its answer without blocking the calling worker. An API call does synchronous
//! store work (tickets, sessions, audit events: about a millisecond per login on a
//! province-sized store); on the proxy's single-thread runtimes that millisecond would
//! delay every proxied request queued behind it (SPEC P3). On threads of their own, the
//! kernel interleaves the two at fine grain instead. Reading the request body and
//! writing the answer stay on the worker.

use std::future::Future;
use tokio::runtime::{Builder, Handle};

pub struct ApiThreads {
    handle: Handle,
}

#[derive(Debug, thiserror::Error)]
#[error("API call did not complete: {0}")]
pub struct ApiTaskFailed(String);

impl ApiThreads {
    /// Starts `threads` runtime threads (named `taxgate-api`) that live as long as the
    /// process.
    pub fn start(threads: usize) -> std::io::Result<ApiThreads> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("taxgate-api")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("taxgate-api-owner".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(ApiThreads { handle })
    }

    /// Runs `call` on the API threads and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        call: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, ApiTaskFailed> {
        self.handle
            .spawn(call)
            .await
            .map_err(|e| ApiTaskFailed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn calls_run_on_the_api_threads() {
        let api = ApiThreads::start(1).unwrap();
        let name = api
            .run(async { std::thread::current().name().map(str::to_string) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("taxgate-api"));
        let failed = api.run(async { panic!("boom") }).await;
        assert!(failed.is_err(), "a panicking call is an error, not a crash");
    }
}
