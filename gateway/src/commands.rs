//! The offline commands: `check`, `registry import`, `audit export`. Each opens what it
//! needs, reports in plain words and returns an error message for exit status 1.

use crate::config::{Argon2Params, Config, StoreKind};
use crate::crypto::password::Hasher;
use crate::store::Store;
use std::path::{Path, PathBuf};

/// `taxgate check`: config, catalog, routes, schema and policies (strict validation), and
/// the CA roots and CRLs of certificate login.
pub fn check(config_path: &Path) -> Result<(), String> {
    let config = Config::from_file(config_path).map_err(|e| e.to_string())?;
    let catalog = crate::policy::Catalog::load(&config.modules).map_err(|e| e.to_string())?;
    let catalog = std::sync::Arc::new(catalog);
    crate::proxy::routes::Routes::new(&config.routes, &catalog)?;
    let engine = crate::policy::PolicyEngine::load(&config.schema, &config.policies, catalog)
        .map_err(|e| e.to_string())?;
    crate::auth::trust::TrustAnchors::load(&config.ca_roots)?;
    let status = engine.status();
    println!(
        "ok: config {}, {} route(s), {} certificate CA(s), policies version {} ({})",
        config_path.display(),
        config.routes.len(),
        config.ca_roots.len(),
        status.version,
        status.hash
    );
    Ok(())
}

/// The store named by `--data-dir` (sled), or by the config's `store` (sled in its data
/// dir, or PostgreSQL, which a serving gateway may share).
fn open_store(data_dir: Option<PathBuf>, config: Option<&Config>) -> Result<Store, String> {
    if let (None, Some(c)) = (&data_dir, config) {
        if let StoreKind::Postgres { url, pool_size } = &c.store {
            return crate::store::postgres::open(&url.0, *pool_size).map_err(|e| e.to_string());
        }
    }
    let dir = data_dir
        .or_else(|| config.map(|c| c.data_dir.clone()))
        .ok_or("give --data-dir or --config")?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::store::sled_store::open(&dir, 64 << 20).map_err(|e| e.to_string())
}

/// Runs a command's async work on a runtime of its own.
fn block_on<T>(work: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(work)
}

/// `taxgate registry import`.
pub fn import(
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
    file: &Path,
) -> Result<(), String> {
    let config = config
        .map(|c| Config::from_file(&c).map_err(|e| e.to_string()))
        .transpose()?;
    let params = config.as_ref().map_or(
        Argon2Params {
            memory_kib: Argon2Params::PRODUCTION_FLOOR_KIB,
            iterations: 2,
            parallelism: 1,
            concurrency: 1,
            nice: 0,
        },
        |c| c.argon2,
    );
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let store = open_store(data_dir, config.as_ref())?;
    let hasher = Hasher::new(&params).map_err(|e| e.to_string())?;
    let report = block_on(async {
        crate::registry::import(&store, &hasher, &text, crate::clock::now())
            .await
            .map_err(|e| format!("{}: {e}", file.display()))
    })?;
    println!(
        "imported {}: {} enterprise(s) added, {} updated, {} person(s) added, {} registry binding(s), {} released",
        file.display(),
        report.enterprises_added,
        report.enterprises_updated,
        report.persons_added,
        report.officers_bound,
        report.officers_released
    );
    Ok(())
}

/// `taxgate audit export`.
pub fn audit_export(
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
    since: Option<&str>,
) -> Result<(), String> {
    let config = config
        .map(|c| Config::from_file(&c).map_err(|e| e.to_string()))
        .transpose()?;
    let since = match since {
        Some(s) => {
            crate::clock::parse_rfc3339(s).ok_or(format!("--since `{s}` is not RFC 3339"))?
        }
        None => 0,
    };
    let store = open_store(data_dir, config.as_ref())?;
    let audit = crate::audit::Audit::new(store);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    block_on(async {
        audit
            .export(since, &mut out)
            .await
            .map_err(|e| e.to_string())
    })?;
    Ok(())
}

/// `taxgate store copy`: every record of one config's store into another's, empty one.
pub fn store_copy(from: &Path, to: &Path) -> Result<(), String> {
    let load = |p: &Path| Config::from_file(p).map_err(|e| e.to_string());
    let (from_config, to_config) = (load(from)?, load(to)?);
    let source = open_store(None, Some(&from_config))?;
    let destination = open_store(None, Some(&to_config))?;
    let counts = block_on(async {
        crate::store::copy::copy(&source, &destination)
            .await
            .map_err(|e| e.to_string())
    })?;
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    let listed: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{} {n}", t.name()))
        .collect();
    println!(
        "copied {total} record(s) from the {} store to the {} store: {}",
        source.kind(),
        destination.kind(),
        listed.join(", ")
    );
    Ok(())
}
