//! The gateway's shared state, built once at start-up and shared by every request.
//!
//! Contract: [`App::open`] opens the store, loads catalog, schema and policies, builds
//! the providers from the config and refuses to start on any error. Business operations
//! are `impl App` blocks in `auth/` (login, sessions, throttling), one file per concern.

use crate::audit::Audit;
use crate::auth::session_cache::SessionCache;
use crate::auth::trust::TrustAnchors;
use crate::config::{CaptchaProvider, Config, SmsProvider, StoreKind};
use crate::crypto::password::Hasher;
use crate::crypto::secrets::Keyed;
use crate::crypto::signing::IdentitySigner;
use crate::policy::{Catalog, PolicyEngine};
use crate::providers::outbox::Outbox;
use crate::providers::realname::{FixtureRealname, HttpRealname, RealnameProvider};
use crate::providers::sms::{HttpSms, OutboxSms, SmsSender};
use crate::proxy::routes::Routes;
use crate::store::Store;
use std::sync::Arc;

pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub keyed: Keyed,
    pub hasher: Hasher,
    pub catalog: Arc<Catalog>,
    pub policy: Arc<PolicyEngine>,
    pub routes: Routes,
    pub signer: IdentitySigner,
    pub sms: Arc<dyn SmsSender>,
    /// Development only: where issued captcha answers are also written.
    pub captcha_outbox: Option<Arc<Outbox>>,
    /// Real-name verification; registration and recovery are unavailable without it.
    pub realname: Option<Arc<dyn RealnameProvider>>,
    pub audit: Audit,
    /// Live sessions decoded once; see its contract for who must invalidate what.
    pub sessions: Arc<SessionCache>,
    pub metrics: crate::metrics::Metrics,
    /// This process among the nodes sharing the store (random per start).
    pub node_id: String,
    /// The CAs of certificate login (CA登录, 税控设备登录); empty: that login is off.
    pub trust: Arc<TrustAnchors>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error("{0}")]
    Other(String),
}

impl App {
    pub fn open(config: Config) -> Result<App, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StartError::Other(format!("data dir {}: {e}", config.data_dir.display()))
        })?;
        let store = match &config.store {
            // sled's flusher thread, which also compacts segments for up to half of every
            // flush interval, is spawned by `open` and inherits the opening thread's
            // priority.
            StoreKind::Sled { cache_bytes } => {
                crate::priority::spawned_at(config.background_nice, || {
                    crate::store::sled_store::open(&config.data_dir, *cache_bytes)
                })?
            }
            StoreKind::Postgres { url, pool_size } => {
                crate::store::postgres::open(&url.0, *pool_size)?
            }
        };
        let store = store.with_deadline(config.limits.store_deadline);
        App::with_store(config, store)
    }

    pub fn with_store(config: Config, store: Store) -> Result<App, StartError> {
        let catalog = Arc::new(Catalog::load(&config.modules)?);
        let policy = Arc::new(PolicyEngine::load(
            &config.schema,
            &config.policies,
            catalog.clone(),
        )?);
        let routes = Routes::new(&config.routes, &catalog).map_err(StartError::Other)?;
        let keyed = Keyed::new(&config.secret_key.0);
        let hasher = Hasher::new(&config.argon2).map_err(|e| StartError::Other(e.to_string()))?;
        let mut outboxes: Vec<Arc<Outbox>> = Vec::new();
        let mut outbox_for = |path: &std::path::Path| -> Arc<Outbox> {
            if let Some(o) = outboxes.iter().find(|o| o.path() == path) {
                return o.clone();
            }
            let o = Arc::new(Outbox::new(path));
            outboxes.push(o.clone());
            o
        };
        let captcha_outbox = match &config.captcha {
            CaptchaProvider::Image => None,
            CaptchaProvider::Outbox(p) => Some(outbox_for(p)),
        };
        let ca_file = config.upstream_ca_file.as_deref();
        let sms: Arc<dyn SmsSender> = match &config.sms {
            SmsProvider::Outbox(p) => Arc::new(OutboxSms::new(outbox_for(p))),
            SmsProvider::Http { url, timeout } => Arc::new(
                HttpSms::new(url, *timeout, ca_file)
                    .map_err(|e| StartError::Other(e.to_string()))?,
            ),
        };
        let realname: Option<Arc<dyn RealnameProvider>> = match &config.realname {
            None => None,
            Some(crate::config::RealnameProvider::Fixture(path)) => Some(Arc::new(
                FixtureRealname::load(path).map_err(|e| StartError::Other(e.to_string()))?,
            )),
            Some(crate::config::RealnameProvider::Http { url, timeout }) => Some(Arc::new(
                HttpRealname::new(url, *timeout, ca_file)
                    .map_err(|e| StartError::Other(e.to_string()))?,
            )),
        };
        let trust = Arc::new(TrustAnchors::load(&config.ca_roots).map_err(StartError::Other)?);
        let metrics =
            crate::metrics::Metrics::new().map_err(|e| StartError::Other(e.to_string()))?;
        let sessions = Arc::new(SessionCache::new(config.session_cache_entries));
        if store.is_shared() {
            // Other nodes write too: cached sessions are used only while the change feed
            // is current (SessionCache contract).
            sessions.follow_other_nodes();
            store.watch(sessions.clone());
        }
        Ok(App {
            trust,
            metrics,
            node_id: crate::crypto::secrets::short_id(),
            sessions,
            realname,
            signer: IdentitySigner::new(keyed.clone()),
            audit: Audit::new(store.clone()),
            config: Arc::new(config),
            store,
            keyed,
            hasher,
            catalog,
            policy,
            routes,
            sms,
            captcha_outbox,
        })
    }
}

/// An `App` on a temporary store with the repository's schema, policies and catalog, a
/// fast argon2 and outbox providers, for unit tests.
#[cfg(test)]
pub fn test_app(dir: &std::path::Path) -> App {
    use crate::config::*;
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = Config {
        mode: Mode::Development,
        listen: "127.0.0.1:0".into(),
        admin_listen: None,
        data_dir: dir.join("data"),
        secret_key: SecretKey(vec![7; 32]),
        cookie_secure: false,
        tls: None,
        trusted_proxies: TrustedProxies::default(),
        upstream_ca_file: None,
        ca_roots: Vec::new(),
        threads: 1,
        work_stealing: false,
        shutdown_grace: std::time::Duration::from_secs(1),
        store: StoreKind::Sled {
            cache_bytes: 1 << 20,
        },
        session_cache_entries: 1_000,
        background_nice: 0,
        test_clock: false,
        schema: repo.join("schema/taxgate.cedarschema"),
        policies: repo.join("policies"),
        modules: repo.join("config/modules.yaml"),
        routes: Vec::new(),
        captcha: CaptchaProvider::Outbox(dir.join("outbox.jsonl")),
        sms: SmsProvider::Outbox(dir.join("outbox.jsonl")),
        realname: None,
        limits: Limits::default(),
        argon2: Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            concurrency: 1,
            nice: 0,
        },
    };
    App::open(config).unwrap()
}
