//! Running the demo: development mode, sled in the data dir (a temp dir if none), the
//! demo registry imported once, one demo tax module per route, credentials printed.

use crate::config::{
    Argon2Params, CaptchaProvider, Config, Limits, Mode, RealnameProvider, Route, SecretKey,
    SmsProvider, StoreKind, TrustedProxies, Upstream,
};
use crate::store::Tree;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct DemoArgs {
    pub listen: String,
    pub data_dir: Option<PathBuf>,
    pub outbox: Option<PathBuf>,
    pub realname_fixture: Option<PathBuf>,
}

/// The modules the demo routes, with their path prefixes.
pub const DEMO_ROUTES: &[(&str, &str)] = &[
    ("/tax/zzs", "wybs.sfsb.zzs"),
    ("/tax/qysds", "wybs.sfsb.qysds"),
    ("/tax/cwbb", "wybs.sfsb.cwbb"),
    ("/tax/jn", "wybs.sfsb.jn"),
    ("/tax/fpsy", "wybs.fpsy"),
    ("/tax/zhxxbg", "wybs.zhxxbg"),
    ("/tax/zmkj", "wybs.zmkj"),
    ("/query/sbxx", "wycx.sbxx"),
    ("/query/jkxx", "wycx.jkxx"),
    ("/hdzx", "hdzx"),
    ("/gzfw", "gzfw"),
    ("/wdxx/nsrxx", "wdxx.nsrxx"),
];

/// The repository's shipped files (schema, policies, catalog, demo data).
pub fn repo_dir() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if compiled.join("policies").is_dir() {
        compiled
    } else {
        PathBuf::from(".")
    }
}

pub fn run(args: DemoArgs) -> Result<(), String> {
    let repo = repo_dir();
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("taxgate-demo-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep(),
    };
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let outbox = args.outbox.unwrap_or_else(|| data_dir.join("outbox.jsonl"));
    let key = demo_key(&data_dir)?;
    let registry = repo.join("config/demo-registry.yaml");
    let pki = super::pki::ensure(&data_dir.join("demo-pki"), &registry)?;

    // The demo modules run on their own runtime thread, beside pingora's.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut routes = Vec::new();
    for (prefix, module) in DEMO_ROUTES {
        let echo = runtime
            .block_on(super::upstream::spawn(module, &key))
            .map_err(|e| format!("demo module {module}: {e}"))?;
        routes.push(Route {
            prefix: prefix.to_string(),
            module: module.to_string(),
            upstream: Upstream {
                addr: echo.addr,
                tls_name: None,
            },
        });
    }

    let config = Config {
        mode: Mode::Development,
        listen: args.listen.clone(),
        admin_listen: Some("127.0.0.1:0".into()),
        data_dir: data_dir.clone(),
        secret_key: SecretKey(key),
        cookie_secure: false,
        tls: None,
        trusted_proxies: TrustedProxies::default(),
        upstream_ca_file: None,
        ca_roots: pki.ca_roots(),
        threads: 2,
        work_stealing: false,
        shutdown_grace: Duration::from_secs(2),
        store: StoreKind::Sled {
            cache_bytes: 64 << 20,
        },
        session_cache_entries: 50_000,
        background_nice: 10,
        test_clock: false,
        schema: repo.join("schema/taxgate.cedarschema"),
        policies: repo.join("policies"),
        modules: repo.join("config/modules.yaml"),
        routes,
        captcha: CaptchaProvider::Outbox(outbox.clone()),
        sms: SmsProvider::Outbox(outbox.clone()),
        realname: Some(RealnameProvider::Fixture(
            args.realname_fixture
                .unwrap_or_else(|| repo.join("config/demo-realname.yaml")),
        )),
        limits: Limits::default(),
        argon2: Argon2Params {
            memory_kib: Argon2Params::PRODUCTION_FLOOR_KIB,
            iterations: 2,
            parallelism: 1,
            concurrency: 1,
            nice: 10,
        },
    };
    let app = crate::app::App::open(config).map_err(|e| e.to_string())?;
    runtime.block_on(async {
        if !app
            .store
            .contains(Tree::Meta, "registry_imported_at")
            .await
            .map_err(|e| e.to_string())?
        {
            let text = std::fs::read_to_string(&registry)
                .map_err(|e| format!("{}: {e}", registry.display()))?;
            crate::registry::import(&app.store, &app.hasher, &text, crate::clock::now())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    })?;
    std::thread::spawn(move || runtime.block_on(std::future::pending::<()>()));
    let bound =
        crate::server::Bound::bind(std::sync::Arc::new(app), &args.listen, Some("127.0.0.1:0"))
            .map_err(|e| format!("listen {}: {e}", args.listen))?;
    bound.announce();
    println!("data dir: {}", data_dir.display());
    println!(
        "outbox (captcha answers and SMS codes): {}",
        outbox.display()
    );
    print_credentials(&registry);
    let certs = pki.dir.join("certs");
    println!(
        "certificate login (证书登录): certificates and keys in {}; sign a challenge with\n  taxgate dev sign --key {}/<USCC>.key --challenge '<challenge>'",
        certs.display(),
        certs.display()
    );
    bound.run()
}

/// A per-data-dir random key, kept so sessions survive a demo restart.
fn demo_key(data_dir: &Path) -> Result<Vec<u8>, String> {
    let path = data_dir.join("demo-secret.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(k) = hex::decode(text.trim()) {
            return Ok(k);
        }
    }
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    std::fs::write(&path, hex::encode(key)).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(key.to_vec())
}

fn print_credentials(registry: &Path) {
    let Ok(text) = std::fs::read_to_string(registry) else {
        return;
    };
    let Ok(v) = serde_yaml::from_str::<serde_yaml::Value>(&text) else {
        return;
    };
    println!("demo enterprises (account / password):");
    for e in v["enterprises"].as_sequence().into_iter().flatten() {
        let account = e["uscc"].as_str().or(e["tin"].as_str()).unwrap_or("");
        println!(
            "  {}  {} / {}",
            e["name"].as_str().unwrap_or(""),
            account,
            e["password"].as_str().unwrap_or("")
        );
    }
}
