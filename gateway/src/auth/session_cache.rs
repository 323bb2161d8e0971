//! Live sessions decoded once and kept in memory, so that a proxied request of an active
//! session reads nothing from the store (SPEC P1/P2: two sled reads and two JSON decodes
//! were most of a decision's cost and all of its tail).
//!
//! Contract:
//! - an entry copies a session record and its officer record, together with the
//!   *generations* of both keys read **before** the records were read from the store;
//! - an entry is used only while both generations are unchanged: every write that ends
//!   a session or changes an officer calls [`SessionCache::session_ended`] /
//!   [`SessionCache::officer_changed`] after the store write and before the write is
//!   acknowledged, so no entry outlives what it copies, whatever the interleaving;
//! - generations live in a fixed table indexed by a hash of the key, so bumping one is a
//!   single atomic add and needs no lock; two keys sharing a slot only cost a re-read;
//! - bounded: at most `capacity` entries. When full, further sessions are served from
//!   the store, uncached, until the janitor drops expired and stale entries. Capacity 0
//!   turns the cache off.
//!
//! - with several nodes on one store, other nodes' writes arrive through the store's
//!   change feed ([`ChangeListener`]) and bump the same generations; entries are then
//!   used only while the feed is fresh (it caught up less than a second ago). When it is
//!   not (the store unreachable), every request reads the store: the cache fails
//!   closed, because the one-second bound on a revocation reaching every node cannot
//!   be kept without the feed. A feed that may have missed changes resyncs: one global
//!   generation, part of every stamp, is bumped and all entries dropped.
//!
//! Reads take no lock (papaya: lock-free reads, epoch-based reclamation).
//!
//! Beside the entries, a memo of each token's keyed hash ([`SessionCache::token_hash`]):
//! the HMAC-SHA256 that names a session in the store cost a proxied request more than
//! the rest of its decision. The memo is keyed by SipHash-2-4's 128-bit output under a
//! random key of this process (a PRF: no token can be made to take another's place
//! without that key, and no raw token is kept); it maps a token to a value that never
//! changes, so it needs no invalidation, only a bound.

use crate::store::changes::ChangeListener;
use crate::store::records::{Officer, Session};
use crate::store::{keys, Tree};
use rand::RngCore;
use siphasher::sip128::SipHasher24;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Slots in the generation table: 32 KiB, shared by sessions and officers.
const SLOTS: usize = 4096;

/// A session and the officer it acts for, as read from the store.
pub struct LiveSession {
    pub session: Session,
    pub officer: Officer,
    /// The officer's role names, derived once: Cedar's facts and the roles header.
    pub roles: Vec<&'static str>,
    /// `roles` comma-joined, as sent upstream in `X-Taxgate-Roles`.
    pub roles_header: String,
    stamp: Stamp,
}

/// Where the generations of an entry's two keys were when it was read.
#[derive(Clone, Copy)]
pub struct Stamp {
    epoch: u64,
    session_slot: usize,
    session_gen: u64,
    officer_slot: usize,
    officer_gen: u64,
}

/// The first half of a [`Stamp`], taken before the session record is read.
#[derive(Clone, Copy)]
pub struct SessionStamp {
    epoch: u64,
    slot: usize,
    generation: u64,
}

pub struct SessionCache {
    entries: papaya::HashMap<String, Arc<LiveSession>>,
    /// Token (by its keyed SipHash) → the store's keyed hash of it.
    token_hashes: papaya::HashMap<u128, Arc<str>>,
    token_key: SipHasher24,
    generations: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
    capacity: usize,
    /// Bumped by a resync: every stamp taken before is stale.
    epoch: AtomicU64,
    /// Set when other nodes write the store: entries need a fresh feed.
    shared: AtomicBool,
    /// Until when (milliseconds after `started`) the feed vouches for entries.
    fresh_until_ms: AtomicU64,
    started: Instant,
}

impl SessionCache {
    pub fn new(capacity: usize) -> SessionCache {
        let mut key = [0u64; 2];
        key.iter_mut()
            .for_each(|k| *k = rand::rngs::OsRng.next_u64());
        SessionCache {
            entries: papaya::HashMap::new(),
            token_hashes: papaya::HashMap::new(),
            token_key: SipHasher24::new_with_keys(key[0], key[1]),
            generations: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: Default::default(),
            capacity,
            epoch: AtomicU64::new(0),
            shared: AtomicBool::new(false),
            fresh_until_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Other nodes write the same store: use entries only while the change feed is fresh.
    pub fn follow_other_nodes(&self) {
        self.shared.store(true, Ordering::Release);
    }

    fn feed_is_fresh(&self) -> bool {
        !self.shared.load(Ordering::Acquire)
            || (self.started.elapsed().as_millis() as u64)
                < self.fresh_until_ms.load(Ordering::Acquire)
    }

    fn slot(&self, key: &[u8]) -> usize {
        self.hasher.hash_one(key) as usize % SLOTS
    }

    fn generation(&self, slot: usize) -> u64 {
        self.generations[slot].load(Ordering::Acquire)
    }

    fn bump(&self, key: &[u8]) {
        self.generations[self.slot(key)].fetch_add(1, Ordering::AcqRel);
    }

    /// The store's keyed hash of `token`: from the memo, or `compute`d and remembered
    /// (with the cache off, always computed). A full memo is emptied and refilled.
    pub fn token_hash(&self, token: &str, compute: impl FnOnce(&str) -> String) -> String {
        if self.capacity == 0 {
            return compute(token);
        }
        let id = u128::from(self.token_key.hash(token.as_bytes()));
        let memo = self.token_hashes.pin();
        if let Some(hash) = memo.get(&id) {
            return hash.to_string();
        }
        let hash = compute(token);
        if memo.len() >= self.capacity {
            memo.clear();
        }
        memo.insert(id, Arc::from(hash.as_str()));
        hash
    }

    /// The current entry for `token_hash`, if there is one and nothing it copies has
    /// changed since it was read.
    pub fn get(&self, token_hash: &str) -> Option<Arc<LiveSession>> {
        if !self.feed_is_fresh() {
            return None;
        }
        let map = self.entries.pin();
        let live = map.get(token_hash)?;
        self.is_current(&live.stamp).then(|| live.clone())
    }

    fn is_current(&self, s: &Stamp) -> bool {
        self.epoch.load(Ordering::Acquire) == s.epoch
            && self.generation(s.session_slot) == s.session_gen
            && self.generation(s.officer_slot) == s.officer_gen
    }

    /// Call before reading the session record from the store.
    pub fn session_stamp(&self, token_hash: &str) -> SessionStamp {
        let slot = self.slot(token_hash.as_bytes());
        SessionStamp {
            epoch: self.epoch.load(Ordering::Acquire),
            slot,
            generation: self.generation(slot),
        }
    }

    /// Call before reading the officer record from the store; completes the stamp.
    pub fn officer_stamp(&self, session: SessionStamp, enterprise: &str, person: &str) -> Stamp {
        let officer_slot = self.slot(&keys::officer(enterprise, person));
        Stamp {
            epoch: session.epoch,
            session_slot: session.slot,
            session_gen: session.generation,
            officer_slot,
            officer_gen: self.generation(officer_slot),
        }
    }

    /// Wraps records read under `stamp` and keeps them when there is room.
    pub fn insert(
        &self,
        token_hash: &str,
        session: Session,
        officer: Officer,
        stamp: Stamp,
    ) -> Arc<LiveSession> {
        let roles = officer.role_names();
        let live = Arc::new(LiveSession {
            roles_header: roles.join(","),
            roles,
            session,
            officer,
            stamp,
        });
        let map = self.entries.pin();
        if map.len() < self.capacity || map.contains_key(token_hash) {
            map.insert(token_hash.to_string(), live.clone());
        }
        live
    }

    /// The same entry with the session record replaced (a touch of `last_seen`).
    pub fn replace_session(
        &self,
        token_hash: &str,
        old: &LiveSession,
        session: Session,
    ) -> Arc<LiveSession> {
        self.insert(token_hash, session, old.officer.clone(), old.stamp)
    }

    /// A session record was removed from the store.
    pub fn session_ended(&self, token_hash: &str) {
        self.bump(token_hash.as_bytes());
        self.entries.pin().remove(token_hash);
    }

    /// An officer record was written (grants, binding).
    pub fn officer_changed(&self, enterprise: &str, person: &str) {
        self.bump(&keys::officer(enterprise, person));
    }

    /// Drops entries that are stale or for which `expired` says so; returns how many.
    pub fn prune(&self, expired: impl Fn(&Session) -> bool) -> usize {
        let map = self.entries.pin();
        let before = map.len();
        map.retain(|_, live| self.is_current(&live.stamp) && !expired(&live.session));
        before.saturating_sub(map.len())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl ChangeListener for SessionCache {
    fn changed(&self, tree: Tree, key: &[u8]) {
        match tree {
            Tree::Sessions => {
                self.bump(key);
                self.entries
                    .pin()
                    .remove(String::from_utf8_lossy(key).as_ref());
            }
            Tree::Officers => self.bump(key),
            _ => {}
        }
    }

    fn resync(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.pin().clear();
    }

    fn fresh_until(&self, until: Instant) {
        let ms = until.saturating_duration_since(self.started).as_millis() as u64;
        self.fresh_until_ms.store(ms, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(e: &str, p: &str, last_seen: i64) -> Session {
        Session {
            enterprise: e.into(),
            person: p.into(),
            created_at: 0,
            last_seen,
            csrf_token: "c".into(),
            client_ip: "127.0.0.1".into(),
            login: Default::default(),
        }
    }

    fn fill(c: &SessionCache, token: &str, e: &str, p: &str) {
        let s = c.session_stamp(token);
        let stamp = c.officer_stamp(s, e, p);
        c.insert(token, session(e, p, 0), Officer::new(e, p), stamp);
    }

    #[test]
    fn entries_are_served_until_their_session_or_officer_changes() {
        let c = SessionCache::new(10);
        fill(&c, "t1", "E", "P");
        fill(&c, "t2", "E", "Q");
        assert!(c.get("t1").is_some() && c.get("t2").is_some());
        c.officer_changed("E", "P");
        assert!(c.get("t1").is_none(), "officer P changed");
        let shares_slot = c.slot(&keys::officer("E", "Q")) == c.slot(&keys::officer("E", "P"));
        assert!(
            c.get("t2").is_some() || shares_slot,
            "officer Q did not change"
        );
        c.session_ended("t2");
        assert!(c.get("t2").is_none(), "session t2 ended");
    }

    #[test]
    fn other_nodes_changes_invalidate_and_a_stale_feed_fails_closed() {
        let c = SessionCache::new(10);
        c.follow_other_nodes();
        fill(&c, "t1", "E", "P");
        fill(&c, "t2", "E", "Q");
        assert!(c.get("t1").is_none(), "no catch-up yet: not served");
        c.fresh_until(Instant::now() + std::time::Duration::from_secs(60));
        assert!(c.get("t1").is_some() && c.get("t2").is_some());
        // Another node wrote officer P, and removed session t2.
        c.changed(Tree::Officers, &keys::officer("E", "P"));
        assert!(c.get("t1").is_none());
        c.changed(Tree::Sessions, b"t2");
        assert!(c.get("t2").is_none());
        // A feed that lost track drops everything, including reads stamped before.
        fill(&c, "t3", "E", "R");
        let early = c.officer_stamp(c.session_stamp("t4"), "E", "S");
        c.resync();
        assert!(c.get("t3").is_none() && c.is_empty());
        c.insert("t4", session("E", "S", 0), Officer::new("E", "S"), early);
        assert!(c.get("t4").is_none(), "stamped before the resync");
        // And an expired catch-up stops serving what is cached.
        fill(&c, "t5", "E", "T");
        assert!(c.get("t5").is_some());
        c.fresh_until(Instant::now());
        assert!(c.get("t5").is_none());
    }

    #[test]
    fn a_read_that_raced_a_write_is_never_served() {
        let c = SessionCache::new(10);
        // Stamps taken, then the officer is changed, then the (old) records arrive.
        let s = c.session_stamp("t");
        let stamp = c.officer_stamp(s, "E", "P");
        c.officer_changed("E", "P");
        c.insert("t", session("E", "P", 0), Officer::new("E", "P"), stamp);
        assert!(c.get("t").is_none());
        // The same for a session ended between its read and the insert.
        let s = c.session_stamp("u");
        let stamp = c.officer_stamp(s, "E", "R");
        c.session_ended("u");
        c.insert("u", session("E", "R", 0), Officer::new("E", "R"), stamp);
        assert!(c.get("u").is_none());
    }

    #[test]
    fn capacity_bounds_the_entries_and_zero_turns_the_cache_off() {
        let c = SessionCache::new(2);
        for t in ["a", "b", "c"] {
            fill(&c, t, "E", t);
        }
        assert_eq!(c.len(), 2);
        assert!(c.get("c").is_none());
        let off = SessionCache::new(0);
        fill(&off, "a", "E", "a");
        assert!(off.is_empty() && off.get("a").is_none());
    }

    #[test]
    fn token_hashes_are_computed_once_per_token_and_the_memo_is_bounded() {
        let c = SessionCache::new(2);
        let computed = std::cell::Cell::new(0);
        let hash = |t: &str| {
            computed.set(computed.get() + 1);
            format!("h({t})")
        };
        assert_eq!(c.token_hash("a", hash), "h(a)");
        assert_eq!(c.token_hash("a", hash), "h(a)");
        assert_eq!(computed.get(), 1);
        assert_eq!(c.token_hash("b", hash), "h(b)");
        assert_eq!(c.token_hash("c", hash), "h(c)", "full: emptied, then kept");
        assert_eq!(c.token_hash("c", hash), "h(c)");
        assert_eq!(computed.get(), 3);
        assert_eq!(c.token_hashes.len(), 1);
        let off = SessionCache::new(0);
        off.token_hash("a", hash);
        off.token_hash("a", hash);
        assert_eq!(computed.get(), 5, "the cache off computes every time");
    }

    #[test]
    fn prune_drops_expired_and_stale_entries() {
        let c = SessionCache::new(10);
        fill(&c, "old", "E", "A");
        let s = c.session_stamp("new");
        let stamp = c.officer_stamp(s, "E", "B");
        c.insert("new", session("E", "B", 100), Officer::new("E", "B"), stamp);
        assert_eq!(c.prune(|s| s.last_seen < 50), 1);
        assert!(c.get("new").is_some() && c.get("old").is_none());
    }
}
