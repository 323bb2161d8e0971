//! Every store call has a deadline: past it the caller gets
//! [`StoreError::Unavailable`] (answered `503 UNAVAILABLE`), the miss is counted by kind
//! of call, and the request that made it is free to answer. The call itself may still
//! finish later (a write past its deadline may be applied): a 503 says "not known to be
//! done", never "not done", so a client retries with a fresh attempt (a new captcha, a
//! new code), which the single-use records make safe.

use super::StoreError;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The deadline of a store opened by itself: offline tools (imports, copies, the
/// benchmarks' generator) write batches of any size and wait for them. A serving gateway
/// sets `limits.store_deadline_seconds` ([`super::Store::with_deadline`]).
pub const OFFLINE: Duration = Duration::from_secs(24 * 3600);

/// What kind of store call missed its deadline (the metric's `op` label).
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Read = 0,
    Write = 1,
    Scan = 2,
    Transaction = 3,
    Flush = 4,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Read, Op::Write, Op::Scan, Op::Transaction, Op::Flush];

    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Scan => "scan",
            Op::Transaction => "transaction",
            Op::Flush => "flush",
        }
    }
}

pub struct Deadline {
    limit: Duration,
    missed: [AtomicU64; Op::ALL.len()],
}

impl Deadline {
    pub fn new(limit: Duration) -> Deadline {
        Deadline {
            limit,
            missed: Default::default(),
        }
    }

    /// `call`'s result, or `Unavailable` once the deadline passed.
    pub async fn bound<T>(
        &self,
        op: Op,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.limit, call).await {
            Ok(result) => result,
            Err(_) => {
                self.missed[op as usize].fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Unavailable(format!(
                    "store {} took longer than {} ms",
                    op.name(),
                    self.limit.as_millis()
                )))
            }
        }
    }

    /// Misses since start, by kind of call.
    pub fn missed(&self) -> [(Op, u64); Op::ALL.len()] {
        Op::ALL.map(|op| (op, self.missed[op as usize].load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_past_its_deadline_is_unavailable_and_counted() {
        let d = Deadline::new(Duration::from_millis(20));
        let slow = d
            .bound(Op::Flush, async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await;
        assert!(matches!(slow, Err(StoreError::Unavailable(_))), "{slow:?}");
        assert_eq!(d.bound(Op::Read, async { Ok(7) }).await.unwrap(), 7);
        let missed = d.missed();
        assert_eq!(missed[Op::Flush as usize].1, 1);
        assert_eq!(missed[Op::Read as usize].1, 0);
    }
}
