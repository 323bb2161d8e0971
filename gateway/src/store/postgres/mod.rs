//! The shared backend: PostgreSQL, for several gateway nodes on one store.
//!
//! Layout: one table `kv (tree, key, value)` holding every tree (records stay versioned
//! JSON, see `codec`, so record changes need no SQL migration), a sequence for ids, and
//! the change log that keeps the nodes' caches true (`changes`, written by a trigger in
//! the same transaction as the write, announced with `NOTIFY`; see [`feed`]).
//!
//! Contract (beyond [`Backend`]'s):
//! - every call is committed when it returns `Ok` (autocommit, or the transaction's
//!   `COMMIT`), so [`Backend::flush`] has nothing left to do: durability is the server's
//!   (`fsync`, `synchronous_commit`, replication), which the bureau configures;
//! - transactions run at `SERIALIZABLE`; a serialization failure or deadlock is
//!   [`StoreError::Conflict`], which `Store::transaction` retries;
//! - a server that is down, unreachable or slower than [`OP_TIMEOUT`] is
//!   [`StoreError::Unavailable`] (503), never a hang; the pool reconnects by itself;
//! - connections and the change feed are driven by a small runtime of the backend's own,
//!   so they outlive whichever runtime first asked for them.

pub mod feed;
mod migrations;

use super::backend::{Backend, BackendTx, Change, Pair, Scan, Write};
use super::changes::ChangeListener;
use super::{Store, StoreError, Tree};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

/// The longest any one store call may take before it is `UNAVAILABLE`.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens the store at `url` with at most `pool_size` connections, creating or migrating
/// its schema first.
pub fn open(url: &str, pool_size: usize) -> Result<Store, StoreError> {
    Ok(Store::new(Arc::new(PgBackend::open(url, pool_size)?)))
}

pub struct PgBackend {
    pool: Pool,
    config: tokio_postgres::Config,
    runtime: Arc<StoreRuntime>,
}

/// The backend's own runtime; shut down without waiting when the backend goes.
struct StoreRuntime(Option<Runtime>);

impl StoreRuntime {
    fn handle(&self) -> Option<&Handle> {
        self.0.as_ref().map(Runtime::handle)
    }
}

impl Drop for StoreRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

type ConnectResult =
    Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>;

/// Connections are made, and then driven, on the backend's runtime.
struct ConnectOnRuntime(Handle);

impl deadpool_postgres::Connect for ConnectOnRuntime {
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> std::pin::Pin<Box<dyn Future<Output = ConnectResult> + Send + '_>> {
        let config = config.clone();
        let handle = self.0.clone();
        Box::pin(async move {
            let made = handle.spawn(async move {
                let (client, connection) = config.connect(NoTls).await?;
                let task = tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!(error = %e, "postgres connection closed");
                    }
                });
                Ok((client, task))
            });
            match made.await {
                Ok(r) => r,
                // The runtime is shutting down: no connection will come; the pool's
                // create timeout answers the caller.
                Err(_) => std::future::pending().await,
            }
        })
    }
}

impl PgBackend {
    pub fn open(url: &str, pool_size: usize) -> Result<PgBackend, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("postgres url: {e}")))?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("taxgate");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("taxgate-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("store runtime: {e}")))?;
        let manager = Manager::from_connect(
            config.clone(),
            ConnectOnRuntime(runtime.handle().clone()),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(OP_TIMEOUT))
            .create_timeout(Some(OP_TIMEOUT))
            .recycle_timeout(Some(OP_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("postgres pool: {e}")))?;
        let backend = PgBackend {
            pool,
            config,
            runtime: Arc::new(StoreRuntime(Some(runtime))),
        };
        // On a thread of its own, so opening works inside or outside an async context.
        std::thread::scope(|s| {
            s.spawn(|| {
                let handle = backend
                    .runtime
                    .handle()
                    .ok_or_else(|| StoreError::Backend("store runtime gone".into()))?;
                handle.block_on(backend.migrate())
            })
            .join()
            .unwrap_or_else(|_| Err(StoreError::Backend("migration thread failed".into())))
        })?;
        Ok(backend)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = op(client.transaction()).await?;
        op(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&migrations::LOCK])).await?;
        op(tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS taxgate_schema (
                 version    int         PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        ))
        .await?;
        let current: i32 =
            op(tx.query_one("SELECT coalesce(max(version), 0) FROM taxgate_schema", &[]))
                .await?
                .get(0);
        let known = migrations::MIGRATIONS.last().map_or(0, |m| m.0);
        if current > known {
            return Err(StoreError::Backend(format!(
                "the database schema is version {current}, newer than this taxgate knows ({known})"
            )));
        }
        for (version, sql) in migrations::MIGRATIONS.iter().filter(|m| m.0 > current) {
            op(tx.batch_execute(sql)).await?;
            op(tx.execute(
                "INSERT INTO taxgate_schema (version) VALUES ($1)",
                &[version],
            ))
            .await?;
            tracing::info!(version, "postgres schema migrated");
        }
        op(tx.commit()).await
    }

    /// One attempt of [`Backend::update_locked`]: `None` when a twin created the record
    /// first (nothing written).
    async fn update_once(
        &self,
        tree: Tree,
        key: &[u8],
        change: Change<'_>,
    ) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        let t = tree.id();
        let mut c = self.client().await?;
        let tx = op(c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
            .start())
        .await?;
        let current: Option<Vec<u8>> = op(tx.query_opt(
            "SELECT value FROM kv WHERE tree = $1 AND key = $2 FOR UPDATE",
            &[&t, &key],
        ))
        .await?
        .map(|r| r.get(0));
        let new = change(current.as_deref())?;
        match (&current, &new) {
            (None, None) => return Ok(Some(None)),
            (None, Some(v)) => {
                let inserted = op(tx.execute(
                    "INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (tree, key) DO NOTHING",
                    &[&t, &key, v],
                ))
                .await?;
                if inserted == 0 {
                    return Ok(None);
                }
            }
            (Some(_), Some(v)) => {
                op(tx.execute(
                    "UPDATE kv SET value = $3 WHERE tree = $1 AND key = $2",
                    &[&t, &key, v],
                ))
                .await?;
            }
            (Some(_), None) => {
                op(tx.execute("DELETE FROM kv WHERE tree = $1 AND key = $2", &[&t, &key])).await?;
            }
        }
        op(tx.commit()).await?;
        Ok(Some(new))
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

/// Runs one database call under [`OP_TIMEOUT`], mapping its error.
async fn op<T>(
    call: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(OP_TIMEOUT, call).await {
        Ok(r) => r.map_err(store_error),
        Err(_) => Err(StoreError::Unavailable(
            "postgres did not answer in time".into(),
        )),
    }
}

fn store_error(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            StoreError::Conflict
        }
        // Connection exceptions (08…) and an operator's shutdown (57P…).
        Some(c) if c.code().starts_with("08") || c.code().starts_with("57P") => {
            StoreError::Unavailable(e.to_string())
        }
        Some(_) => StoreError::Backend(e.to_string()),
        // No SQLSTATE: the connection itself failed.
        None => StoreError::Unavailable(e.to_string()),
    }
}

/// The smallest key above every key starting with `prefix`; `None` when there is none.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

const GET: &str = "SELECT value FROM kv WHERE tree = $1 AND key = $2";
const PUT: &str = "INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3)
                   ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value";
const REMOVE: &str = "DELETE FROM kv WHERE tree = $1 AND key = $2 RETURNING value";

#[async_trait]
impl Backend for PgBackend {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let c = self.client().await?;
        let st = op(c.prepare_cached(GET)).await?;
        let row = op(c.query_opt(&st, &[&tree.id(), &key])).await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let c = self.client().await?;
        let st = op(c.prepare_cached(PUT)).await?;
        op(c.execute(&st, &[&tree.id(), &key, &value])).await?;
        Ok(())
    }

    async fn remove(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let c = self.client().await?;
        let st = op(c.prepare_cached(REMOVE)).await?;
        let row = op(c.query_opt(&st, &[&tree.id(), &key])).await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let t = tree.id();
        let changed = match (expected, new) {
            (None, None) => {
                let st = op(c.prepare_cached(GET)).await?;
                return Ok(op(c.query_opt(&st, &[&t, &key])).await?.is_none());
            }
            (None, Some(v)) => {
                let st = op(c.prepare_cached(
                    "INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (tree, key) DO NOTHING",
                ))
                .await?;
                op(c.execute(&st, &[&t, &key, &v])).await?
            }
            (Some(old), Some(v)) => {
                let st = op(c.prepare_cached(
                    "UPDATE kv SET value = $4 WHERE tree = $1 AND key = $2 AND value = $3",
                ))
                .await?;
                op(c.execute(&st, &[&t, &key, &old, &v])).await?
            }
            (Some(old), None) => {
                let st = op(
                    c.prepare_cached("DELETE FROM kv WHERE tree = $1 AND key = $2 AND value = $3")
                )
                .await?;
                op(c.execute(&st, &[&t, &key, &old])).await?
            }
        };
        Ok(changed == 1)
    }

    fn serializes_updates(&self) -> bool {
        true
    }

    /// `SELECT … FOR UPDATE` in a READ COMMITTED transaction: concurrent updates of one
    /// record queue on its row lock. An absent record has no row to lock: when a twin
    /// inserts it first, this attempt rolls back and the next one locks that row.
    async fn update_locked(
        &self,
        tree: Tree,
        key: &[u8],
        change: Change<'_>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        for _ in 0..3 {
            if let Some(new) = self.update_once(tree, key, &mut *change).await? {
                return Ok(new);
            }
        }
        Err(StoreError::Conflict)
    }

    async fn scan(&self, scan: Scan) -> Result<Vec<Pair>, StoreError> {
        let c = self.client().await?;
        let from = match scan.start {
            Some(start) if start > scan.prefix => start,
            _ => scan.prefix.clone(),
        };
        let to = prefix_end(&scan.prefix);
        let limit = i64::try_from(scan.limit).unwrap_or(i64::MAX);
        let st = op(c.prepare_cached(
            "SELECT key, value FROM kv
             WHERE tree = $1 AND key >= $2 AND ($3::bytea IS NULL OR key < $3)
             ORDER BY key LIMIT $4",
        ))
        .await?;
        let rows = op(c.query(&st, &[&scan.tree.id(), &from, &to, &limit])).await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        // The last write of each key wins, as if applied in order; then one statement
        // for every put and one for every removal, whatever the batch's size.
        let mut last: std::collections::BTreeMap<(i16, Vec<u8>), Option<Vec<u8>>> =
            std::collections::BTreeMap::new();
        for (tree, key, value) in writes {
            last.insert((tree.id(), key), value);
        }
        let (mut put, mut removed): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
        for ((tree, key), value) in last {
            match value {
                Some(v) => put.push((tree, key, v)),
                None => removed.push((tree, key)),
            }
        }
        let mut c = self.client().await?;
        let tx = op(c.transaction()).await?;
        if !put.is_empty() {
            let (trees, (keys, values)): (Vec<i16>, (Vec<Vec<u8>>, Vec<Vec<u8>>)) =
                put.into_iter().map(|(t, k, v)| (t, (k, v))).unzip();
            op(tx.execute(
                "INSERT INTO kv (tree, key, value)
                 SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[])
                 ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value",
                &[&trees, &keys, &values],
            ))
            .await?;
        }
        if !removed.is_empty() {
            let (trees, keys): (Vec<i16>, Vec<Vec<u8>>) = removed.into_iter().unzip();
            op(tx.execute(
                "DELETE FROM kv WHERE (tree, key) IN
                 (SELECT * FROM unnest($1::smallint[], $2::bytea[]))",
                &[&trees, &keys],
            ))
            .await?;
        }
        op(tx.commit()).await
    }

    async fn begin(&self) -> Result<Box<dyn BackendTx>, StoreError> {
        let client = self.client().await?;
        op(client.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")).await?;
        Ok(Box::new(PgTx {
            client: Some(client),
            runtime: self.runtime.clone(),
        }))
    }

    async fn next_id(&self) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let st = op(c.prepare_cached("SELECT nextval('ids')")).await?;
        let id: i64 = op(c.query_one(&st, &[])).await?.get(0);
        Ok(id as u64)
    }

    async fn next_ids(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        let c = self.client().await?;
        let st = op(c.prepare_cached("SELECT nextval('ids') FROM generate_series(1, $1::bigint)"))
            .await?;
        let rows = op(c.query(&st, &[&(n as i64)])).await?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn maintain(&self, _now: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        op(c.execute(
            "DELETE FROM changes WHERE at < now() - interval '10 minutes'",
            &[],
        ))
        .await?;
        Ok(())
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn watch(&self, listener: Arc<dyn ChangeListener>) {
        if let Some(handle) = self.runtime.handle() {
            handle.spawn(feed::follow(self.config.clone(), listener));
        }
    }
}

/// A `SERIALIZABLE` transaction on one pooled connection. Dropped without commit, it is
/// rolled back on the backend's runtime before the connection goes back to the pool.
struct PgTx {
    client: Option<Object>,
    runtime: Arc<StoreRuntime>,
}

impl PgTx {
    fn client(&self) -> Result<&Object, StoreError> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::Backend("transaction already ended".into()))
    }
}

#[async_trait]
impl BackendTx for PgTx {
    async fn get(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let c = self.client()?;
        let st = op(c.prepare_cached(GET)).await?;
        let row = op(c.query_opt(&st, &[&tree.id(), &key])).await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let c = self.client()?;
        let st = op(c.prepare_cached(PUT)).await?;
        op(c.execute(&st, &[&tree.id(), &key, &value])).await?;
        Ok(())
    }

    async fn remove(&mut self, tree: Tree, key: &[u8]) -> Result<(), StoreError> {
        let c = self.client()?;
        let st = op(c.prepare_cached(REMOVE)).await?;
        op(c.execute(&st, &[&tree.id(), &key])).await?;
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let client = self
            .client
            .take()
            .ok_or_else(|| StoreError::Backend("transaction already ended".into()))?;
        match op(client.batch_execute("COMMIT")).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // A failed COMMIT has ended the transaction; a connection in doubt is
                // not reused.
                let _ = Object::take(client);
                Err(e)
            }
        }
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        match self.runtime.handle() {
            Some(handle) => {
                handle.spawn(async move {
                    if op(client.batch_execute("ROLLBACK")).await.is_err() {
                        let _ = Object::take(client);
                    }
                });
            }
            None => {
                let _ = Object::take(client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
