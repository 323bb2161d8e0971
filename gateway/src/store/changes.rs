//! Changes made by other nodes, for the copies this node keeps.
//!
//! Contract: a backend shared by several processes delivers to its [`ChangeListener`]
//! the key of every write to a [`Tree::is_cached`] tree by any node (sessions: removals
//! only; officers: every write), at most about a second after it committed, and calls
//! [`ChangeListener::fresh_until`] after each successful catch-up. When it cannot be sure
//! it saw every change (a lost connection), it calls [`ChangeListener::resync`] before
//! saying it is fresh again. An embedded backend has one process and no feed.

use super::Tree;
use std::time::Instant;

pub trait ChangeListener: Send + Sync + 'static {
    /// `key` of `tree` was written (or removed) by some node.
    fn changed(&self, tree: Tree, key: &[u8]);
    /// Changes may have been missed: forget every copy.
    fn resync(&self);
    /// Every change committed before the last catch-up has been delivered; copies may be
    /// used until `until`, and not after unless this is called again.
    fn fresh_until(&self, until: Instant);
}
