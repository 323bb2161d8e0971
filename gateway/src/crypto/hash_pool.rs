//! The threads that run argon2: a fixed pool, outside the async runtime, below the
//! proxy's CPU priority.
//!
//! Contract:
//! - `threads` OS threads run jobs in arrival order; more jobs queue, so a login storm
//!   uses at most `threads` cores (SPEC P3);
//! - each thread lowers its own scheduling priority to `nice` ([`crate::priority`]) when
//!   it starts, so when the CPU is contended the proxy's worker threads win and hashing takes
//!   what they leave idle; proxied latency stays flat beside a storm, logins slow down
//!   instead. `nice: 0` keeps the default priority;
//! - a job whose caller has gone away (client disconnected) is skipped, not computed;
//! - the threads end when the last handle to the pool is dropped.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct HashPool {
    jobs: Sender<Job>,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing thread is gone")]
pub struct PoolGone;

impl HashPool {
    pub fn new(threads: usize, nice: i32) -> std::io::Result<HashPool> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("taxgate-argon2-{i}"))
                .spawn(move || {
                    crate::priority::lower_current_thread(nice);
                    work(&queue);
                })?;
        }
        Ok(HashPool { jobs })
    }

    /// Runs `f` on a pool thread and waits for its result without blocking the runtime.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, PoolGone> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        });
        self.jobs.send(job).map_err(|_| PoolGone)?;
        rx.await.map_err(|_| PoolGone)
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while taking one job, never while hashing.
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_its_own_threads() {
        let pool = HashPool::new(2, 0).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("taxgate-argon2-"));
        let mut total = 0;
        for i in 0..16u64 {
            total += pool.run(move || i * 2).await.unwrap();
        }
        assert_eq!(total, 240);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn pool_threads_run_below_the_callers_priority() {
        let base = crate::priority::current_nice();
        let pool = HashPool::new(1, 10).unwrap();
        let nice = pool.run(crate::priority::current_nice).await.unwrap();
        assert_eq!(nice, (base + 10).min(19));
    }
}
