//! Group commit: one thread makes writes durable, many writers wait for it.
//!
//! Contract: [`GroupCommit::durable`] returns once a flush that *began after it was
//! called* has finished, so every write that returned before the call is durable when it
//! resolves. Flushes never run concurrently with each other: the one flusher thread runs
//! them back to back, and one flush acknowledges every writer that was waiting when it
//! began (under a crowd, a hundred writers cost one flush, not a hundred). With no
//! writer waiting, the thread still flushes every `idle_every`, so writes that nobody
//! acknowledges (audit events of refusals) reach the disk within that time.
//!
//! Why a thread of our own (README, "Reliability"): sled 0.34's `flush_async` runs the
//! flush on sled's own I/O pool, where it waits for a log write queued on that same
//! pool; eight concurrent flushes occupy the pool's seven threads and wait for ever
//! (sled#1308, #1241). Here no flush runs on sled's pool, and at most one runs at a time.
//!
//! Dropping the handle stops the thread after the flush in progress, with a last flush.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// What a flush reports: `Err` carries the engine's message.
pub type FlushResult = Result<(), String>;

pub struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// How many flushes have begun.
    begun: u64,
    /// Each waiter with the number of the flush it waits for.
    waiters: Vec<(u64, oneshot::Sender<FlushResult>)>,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-changed (every
        // change is one push, one increment or one drain), so a poisoned lock is used.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl GroupCommit {
    /// Starts the flusher thread (`name`), which calls `flush` for every group and every
    /// `idle_every` when no one waits.
    pub fn start(
        name: &str,
        idle_every: Duration,
        flush: impl Fn() -> FlushResult + Send + 'static,
    ) -> std::io::Result<GroupCommit> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || run(&shared, idle_every, flush))?
        };
        Ok(GroupCommit {
            shared,
            thread: Some(thread),
        })
    }

    /// Waits until every write that returned before this call is durable.
    pub async fn durable(&self) -> FlushResult {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if state.stop {
                return Err("the store is closing".into());
            }
            let next = state.begun + 1;
            state.waiters.push((next, tx));
        }
        self.shared.wake.notify_one();
        rx.await
            .unwrap_or_else(|_| Err("the flusher thread stopped".into()))
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, idle_every: Duration, flush: impl Fn() -> FlushResult) {
    let mut state = shared.lock();
    loop {
        if state.waiters.is_empty() && !state.stop {
            state = match shared.wake.wait_timeout(state, idle_every) {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
        }
        let stopping = state.stop;
        state.begun += 1;
        let number = state.begun;
        drop(state);

        let result = flush();
        if let Err(e) = &result {
            tracing::error!(error = %e, "store flush failed");
        }

        state = shared.lock();
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiters)
            .into_iter()
            .partition(|(wanted, _)| *wanted <= number);
        state.waiters = waiting;
        for (_, tx) in done {
            let _ = tx.send(result.clone());
        }
        if stopping {
            for (_, tx) in state.waiters.drain(..) {
                let _ = tx.send(Err("the store is closing".into()));
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_flush_at_a_time_and_each_writer_waits_for_a_flush_begun_after_it() {
        let running = Arc::new(AtomicBool::new(false));
        let flushes = Arc::new(AtomicU64::new(0));
        // What the last finished flush covered: every write numbered below it.
        let covered = Arc::new(AtomicU64::new(0));
        let writes = Arc::new(AtomicU64::new(0));
        let gc = {
            let (running, flushes, covered, writes) = (
                running.clone(),
                flushes.clone(),
                covered.clone(),
                writes.clone(),
            );
            Arc::new(
                GroupCommit::start("test-flusher", Duration::from_secs(60), move || {
                    assert!(!running.swap(true, Ordering::SeqCst), "two flushes at once");
                    let upto = writes.load(Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    covered.store(upto, Ordering::SeqCst);
                    flushes.fetch_add(1, Ordering::SeqCst);
                    running.store(false, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap(),
            )
        };
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (gc, writes, covered) = (gc.clone(), writes.clone(), covered.clone());
            tasks.push(tokio::spawn(async move {
                let mine = writes.fetch_add(1, Ordering::SeqCst) + 1;
                gc.durable().await.unwrap();
                assert!(
                    covered.load(Ordering::SeqCst) >= mine,
                    "acknowledged before durable"
                );
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert!(
            (1..200).contains(&n),
            "200 writers were grouped into {n} flushes"
        );
    }

    #[tokio::test]
    async fn a_failed_flush_fails_its_waiters_and_the_next_one_can_succeed() {
        let fail = Arc::new(AtomicBool::new(true));
        let gc = {
            let fail = fail.clone();
            GroupCommit::start("test-flusher", Duration::from_secs(60), move || {
                if fail.load(Ordering::SeqCst) {
                    Err("disk full".into())
                } else {
                    Ok(())
                }
            })
            .unwrap()
        };
        assert_eq!(gc.durable().await, Err("disk full".to_string()));
        fail.store(false, Ordering::SeqCst);
        assert_eq!(gc.durable().await, Ok(()));
    }

    #[test]
    fn flushes_when_idle_and_once_more_when_dropped() {
        let flushes = Arc::new(AtomicU64::new(0));
        let gc = {
            let flushes = flushes.clone();
            GroupCommit::start("test-flusher", Duration::from_millis(10), move || {
                flushes.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap()
        };
        std::thread::sleep(Duration::from_millis(100));
        let idle = flushes.load(Ordering::SeqCst);
        assert!(idle >= 2, "{idle} idle flushes in 100 ms at 10 ms");
        drop(gc);
        assert!(
            flushes.load(Ordering::SeqCst) > idle,
            "a last flush on drop"
        );
    }
}
