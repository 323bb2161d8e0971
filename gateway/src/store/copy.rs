//! Copying a whole store into another, empty one: how a site outgrows sled and moves to
//! PostgreSQL (`taxgate store copy`), and how benchmarks fill a PostgreSQL store.
//!
//! Contract: refuses a destination that holds any record; copies every tree in key
//! order, page by page, each page one atomic batch, then flushes. The destination's ids
//! start afresh: ids appear only in audit keys, after the event's time, and events
//! written after the copy are later than every copied one, so keys cannot collide. The
//! source must not be written while it is copied (stop the gateway that uses it).

use super::{successor, Store, StoreError, Tree};

/// Records per batch.
const PAGE: usize = 2_000;

/// Copies every record of `from` into `to`; returns the count per tree.
pub async fn copy(from: &Store, to: &Store) -> Result<Vec<(Tree, usize)>, StoreError> {
    for tree in Tree::ALL {
        if !to.scan_page(tree, b"", None, 1).await?.is_empty() {
            return Err(StoreError::Backend(format!(
                "the destination store is not empty (tree {})",
                tree.name()
            )));
        }
    }
    let mut counts = Vec::with_capacity(Tree::ALL.len());
    for tree in Tree::ALL {
        let mut n = 0;
        let mut start = None;
        loop {
            let page = from.scan_page(tree, b"", start, PAGE).await?;
            let done = page.len() < PAGE;
            start = page.last().map(|(k, _)| successor(k));
            n += page.len();
            to.apply(page.into_iter().map(|(k, v)| (tree, k, Some(v))).collect())
                .await?;
            if done {
                break;
            }
        }
        counts.push((tree, n));
    }
    to.flush().await?;
    Ok(counts)
}
