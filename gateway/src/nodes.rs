//! The gateway nodes that share one store, and the policy set each enforces.
//!
//! Contract: every node writes a heartbeat record (`Tree::Meta`, key `node\0<id>`) when
//! it starts and every [`BEAT_EVERY`]: its id, the version and hash of the policies in
//! force, the store it uses. [`App::live_nodes`] lists the beats of the last
//! [`ALIVE_FOR`] seconds, so `/admin/policies` on any node shows every node's policy hash
//! and whether they differ (policy files are per node; a skew is an operator's mistake to
//! see, not to hide). Beats older than [`FORGET_AFTER`] are removed by the janitor.

use crate::app::App;
use crate::store::{Store, StoreError, Tree};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const BEAT_EVERY: Duration = Duration::from_secs(10);
/// A node whose last beat is older than this is not listed.
pub const ALIVE_FOR: i64 = 30;
/// Beats older than this are removed.
pub const FORGET_AFTER: i64 = 600;

const PREFIX: &[u8] = b"node\0";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeBeat {
    pub node: String,
    pub policy_version: u64,
    pub policy_hash: String,
    pub store: String,
    /// Unix seconds.
    pub at: i64,
}

fn key(node: &str) -> Vec<u8> {
    [PREFIX, node.as_bytes()].concat()
}

impl App {
    /// Writes this node's heartbeat.
    pub async fn beat(&self, now: i64) -> Result<(), StoreError> {
        let status = self.policy.status();
        let beat = NodeBeat {
            node: self.node_id.clone(),
            policy_version: status.version,
            policy_hash: status.hash,
            store: self.store.kind().to_string(),
            at: now,
        };
        self.store.put(Tree::Meta, key(&self.node_id), &beat).await
    }

    /// The nodes that beat in the last [`ALIVE_FOR`] seconds, by id.
    pub async fn live_nodes(&self, now: i64) -> Result<Vec<NodeBeat>, StoreError> {
        Ok(self
            .store
            .scan_prefix::<NodeBeat>(Tree::Meta, PREFIX)
            .await?
            .into_iter()
            .map(|(_, b)| b)
            .filter(|b| now - b.at <= ALIVE_FOR)
            .collect())
    }
}

/// Removes beats of nodes gone for longer than [`FORGET_AFTER`]; returns how many.
pub async fn forget_gone(store: &Store, now: i64) -> Result<usize, StoreError> {
    let mut n = 0;
    for (k, v) in store.scan_prefix_raw(Tree::Meta, PREFIX).await? {
        let gone =
            crate::store::codec::decode::<NodeBeat>(&v).map_or(true, |b| now - b.at > FORGET_AFTER);
        if gone
            && store
                .compare_and_swap(Tree::Meta, &k, Some(&v), None)
                .await?
        {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nodes_are_listed_while_they_beat_and_forgotten_later() {
        let dir = tempfile::tempdir().unwrap();
        let a = crate::app::test_app(dir.path());
        let b = App::with_store(a.config.as_ref().clone(), a.store.clone()).unwrap();
        a.beat(1_000).await.unwrap();
        b.beat(1_010).await.unwrap();
        let live = a.live_nodes(1_020).await.unwrap();
        assert_eq!(live.len(), 2);
        assert!(live.iter().all(|n| n.policy_hash == live[0].policy_hash));
        assert_eq!(
            a.live_nodes(1_035).await.unwrap().len(),
            1,
            "a stopped beating"
        );
        assert_eq!(
            forget_gone(&a.store, 1_000 + FORGET_AFTER + 5)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            a.live_nodes(1_035).await.unwrap().len(),
            1,
            "b's beat stays"
        );
    }
}
