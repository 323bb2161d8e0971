//! The store interface's contract (gateway/src/store/backend.rs), held to both backends:
//! the same checks on a sled dir and on a PostgreSQL database of the tests' own cluster.

use crate::harness::postgres;
use scoped_futures::ScopedFutureExt;
use std::sync::Arc;
use taxgate::store::{Store, StoreError, Tree, TxError};

/// A fresh store of each kind (the temp dir lives as long as the returned guard).
fn stores() -> Vec<(&'static str, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sled = taxgate::store::sled_store::open(dir.path(), 1 << 20).unwrap();
    let pg = taxgate::store::postgres::open(&postgres::new_database(), 4).unwrap();
    vec![("sled", sled, Some(dir)), ("postgres", pg, None)]
}

#[tokio::test]
async fn single_key_operations_and_compare_and_swap() {
    for (kind, s, _guard) in stores() {
        assert_eq!(s.kind(), kind);
        assert!(s.get_raw(Tree::Meta, "k").await.unwrap().is_none());
        s.put_raw(Tree::Meta, "k", b"1").await.unwrap();
        assert!(s.contains(Tree::Meta, "k").await.unwrap());
        assert!(
            !s.contains(Tree::Rate, "k").await.unwrap(),
            "{kind}: trees are apart"
        );
        assert_eq!(
            s.remove(Tree::Meta, "k").await.unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(s.remove(Tree::Meta, "k").await.unwrap(), None);

        assert!(s
            .compare_and_swap(Tree::Meta, "c", None, Some(b"a"))
            .await
            .unwrap());
        assert!(!s
            .compare_and_swap(Tree::Meta, "c", None, Some(b"b"))
            .await
            .unwrap());
        assert!(!s
            .compare_and_swap(Tree::Meta, "c", Some(b"x"), Some(b"b"))
            .await
            .unwrap());
        assert!(s
            .compare_and_swap(Tree::Meta, "c", Some(b"a"), Some(b"b"))
            .await
            .unwrap());
        assert!(!s
            .compare_and_swap(Tree::Meta, "c", None, None)
            .await
            .unwrap());
        assert!(s
            .compare_and_swap(Tree::Meta, "c", Some(b"b"), None)
            .await
            .unwrap());
        assert!(s
            .compare_and_swap(Tree::Meta, "c", None, None)
            .await
            .unwrap());
        assert!(
            s.get_raw(Tree::Meta, "c").await.unwrap().is_none(),
            "{kind}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_lose_nothing_and_never_run_out_of_retries() {
    for (kind, s, _guard) in stores() {
        // 200 updates of one record at once, on four threads: each waits its turn (the
        // row lock on PostgreSQL, the process's turns on sled), none fails, none is lost.
        let start = Arc::new(tokio::sync::Barrier::new(200));
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (s, start) = (s.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    s.update::<u64>(Tree::Lockouts, "n", |n| Some(n.unwrap_or(0) + 1))
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let n: u64 = s.get(Tree::Lockouts, "n").await.unwrap().unwrap();
        assert_eq!(n, 200, "{kind}");
    }
}

#[tokio::test]
async fn scans_page_in_key_order_within_their_prefix() {
    for (kind, s, _guard) in stores() {
        let mut writes = Vec::new();
        for i in 0..2_500u32 {
            writes.push((
                Tree::Audit,
                [b"p".as_slice(), &i.to_be_bytes()].concat(),
                Some(vec![1]),
            ));
        }
        // Neighbours that must not show: before, after, and a prefix ending in 0xff.
        writes.push((Tree::Audit, b"o\xff".to_vec(), Some(vec![2])));
        writes.push((Tree::Audit, b"q".to_vec(), Some(vec![2])));
        writes.push((Tree::Audit, b"p\xff\xff".to_vec(), Some(vec![3])));
        writes.push((Tree::Meta, b"p1".to_vec(), Some(vec![2])));
        s.apply(writes).await.unwrap();
        let all = s.scan_prefix_raw(Tree::Audit, b"p").await.unwrap();
        assert_eq!(all.len(), 2_501, "{kind}");
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "{kind}: key order");
        assert_eq!(all.last().unwrap().0, b"p\xff\xff".to_vec());
        let high = s.scan_prefix_raw(Tree::Audit, b"p\xff").await.unwrap();
        assert_eq!(high.len(), 1, "{kind}");
        let page = s
            .scan_page(Tree::Audit, b"p", Some(all[10].0.clone()), 5)
            .await
            .unwrap();
        assert_eq!(
            page.first().unwrap().0,
            all[10].0,
            "{kind}: start is inclusive"
        );
        assert_eq!(page.len(), 5);
    }
}

#[tokio::test]
async fn a_batch_is_applied_in_order_and_at_once() {
    for (kind, s, _guard) in stores() {
        s.put_raw(Tree::Meta, "gone", b"x").await.unwrap();
        s.apply(vec![
            (Tree::Meta, b"a".to_vec(), Some(b"1".to_vec())),
            (Tree::Meta, b"a".to_vec(), Some(b"2".to_vec())),
            (Tree::Meta, b"b".to_vec(), Some(b"1".to_vec())),
            (Tree::Meta, b"b".to_vec(), None),
            (Tree::Meta, b"gone".to_vec(), None),
        ])
        .await
        .unwrap();
        s.apply(Vec::new()).await.unwrap();
        assert_eq!(
            s.get_raw(Tree::Meta, "a").await.unwrap(),
            Some(b"2".to_vec()),
            "{kind}"
        );
        assert!(
            s.get_raw(Tree::Meta, "b").await.unwrap().is_none(),
            "{kind}"
        );
        assert!(
            s.get_raw(Tree::Meta, "gone").await.unwrap().is_none(),
            "{kind}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_commit_whole_abort_clean_and_retry_conflicts() {
    for (kind, s, _guard) in stores() {
        // An abort writes nothing, even what it wrote before aborting.
        let r: Result<(), TxError<&str>> = s
            .transaction(|tx| {
                async move {
                    tx.put(Tree::Meta, "half", &1u8).await?;
                    Err(TxError::Abort("no"))
                }
                .scope_boxed()
            })
            .await;
        assert!(matches!(r, Err(TxError::Abort("no"))), "{kind}");
        assert!(!s.contains(Tree::Meta, "half").await.unwrap(), "{kind}");

        // Read-modify-write transactions on one counter from many tasks at once (four
        // threads): conflicts are retried, so every one of them counts. The first four
        // all read before any commits (a barrier on their first attempt; four, as the
        // PostgreSQL pool holds four connections), so at least three conflicts happen.
        let s = Arc::new(s);
        let retries_before = s.retries();
        let barrier = Arc::new(tokio::sync::Barrier::new(4));
        let start = Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (s, barrier, start) = (s.clone(), barrier.clone(), start.clone());
                tokio::spawn(async move {
                    if i >= 4 {
                        start.wait().await;
                    }
                    let first = Arc::new(std::sync::atomic::AtomicBool::new(i < 4));
                    let r = s
                        .transaction(|tx| {
                            let (barrier, first) = (barrier.clone(), first.clone());
                            async move {
                                let n: u64 = tx.get(Tree::Meta, "counter").await?.unwrap_or(0);
                                if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                                    barrier.wait().await;
                                }
                                tx.put(Tree::Meta, "counter", &(n + 1)).await?;
                                tx.put(Tree::Rate, format!("by-{i}"), &n).await?;
                                Ok::<(), TxError<()>>(())
                            }
                            .scope_boxed()
                        })
                        .await;
                    if i < 4 {
                        start.wait().await;
                    }
                    r
                })
            })
            .collect();
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => {}
                Err(TxError::Store(StoreError::Conflict)) => panic!("{kind}: retries ran out"),
                Err(e) => panic!("{kind}: {e:?}"),
            }
        }
        let n: u64 = s.get(Tree::Meta, "counter").await.unwrap().unwrap();
        assert_eq!(n, 20, "{kind}");
        let retried = s.retries() - retries_before;
        assert!(retried >= 3, "{kind}: {retried} retries");
        // Each saw a different count: they were serialized.
        let mut seen: Vec<u64> = Vec::new();
        for (_, v) in s.scan_prefix::<u64>(Tree::Rate, "by-").await.unwrap() {
            seen.push(v);
        }
        seen.sort();
        assert_eq!(seen, (0..20).collect::<Vec<u64>>(), "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ids_are_never_handed_out_twice_by_two_nodes_one_or_a_batch_at_a_time() {
    let url = postgres::new_database();
    let dir = tempfile::tempdir().unwrap();
    let a = taxgate::store::postgres::open(&url, 2).unwrap();
    let b = taxgate::store::postgres::open(&url, 2).unwrap();
    let sled = taxgate::store::sled_store::open(dir.path(), 1 << 20).unwrap();
    // Two nodes of one PostgreSQL store, 100 callers each, all at once; and 100 callers
    // of one sled store. Every other caller takes a batch of seven (next_ids).
    for (kind, nodes) in [("postgres", vec![a, b]), ("sled", vec![sled])] {
        let callers = 100 * nodes.len();
        let start = Arc::new(tokio::sync::Barrier::new(callers));
        let tasks: Vec<_> = (0..callers)
            .map(|i| {
                let (s, start) = (nodes[i % nodes.len()].clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    if i % 2 == 0 {
                        vec![s.next_id().await.unwrap()]
                    } else {
                        s.next_ids(7).await.unwrap()
                    }
                })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.extend(t.await.unwrap());
        }
        let handed_out = ids.len();
        assert_eq!(
            handed_out,
            callers / 2 * 8,
            "{kind}: a batch came back short"
        );
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), handed_out, "{kind}: an id handed out twice");
    }
}
