//! Validated configuration.
//!
//! Contract: [`Config::from_file`] reads the YAML format of [`file`], resolves relative
//! paths against the config file's directory, checks every value (addresses, routes,
//! key length, argon2 floor in production, development providers only in development)
//! and returns either a [`Config`] the rest of the gateway can trust without further
//! checks, or a [`ConfigError`] naming the key and, for syntax errors, the line.

pub mod edge;
pub mod file;

pub use edge::{Tls, TrustedProxies, Upstream};
use file::{Argon2File, CaptchaFile, ConfigFile, LimitsFile, RealnameFile, SmsFile};
pub use file::{CertificateLogin, Mode};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// The running configuration. Secrets are kept out of `Debug`.
#[derive(Clone)]
pub struct Config {
    pub mode: Mode,
    pub listen: String,
    pub admin_listen: Option<String>,
    pub data_dir: PathBuf,
    pub secret_key: SecretKey,
    /// `Secure` on the session cookie: set in the file, or implied by `tls`.
    pub cookie_secure: bool,
    pub tls: Option<Tls>,
    pub trusted_proxies: TrustedProxies,
    pub upstream_ca_file: Option<PathBuf>,
    /// Trust anchors of certificate login, in the order they are tried.
    pub ca_roots: Vec<CaRoot>,
    pub threads: usize,
    pub work_stealing: bool,
    pub shutdown_grace: Duration,
    pub store: StoreKind,
    pub session_cache_entries: usize,
    /// Nice value of background threads (hashing, the store's flusher).
    pub background_nice: i32,
    /// Development only: the admin listener's `/admin/clock` (clock.rs) is on.
    pub test_clock: bool,
    pub schema: PathBuf,
    pub policies: PathBuf,
    pub modules: PathBuf,
    pub routes: Vec<Route>,
    pub captcha: CaptchaProvider,
    pub sms: SmsProvider,
    pub realname: Option<RealnameProvider>,
    pub limits: Limits,
    pub argon2: Argon2Params,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("secret_key", &"<redacted>")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

/// Where the store lives.
#[derive(Debug, Clone)]
pub enum StoreKind {
    /// sled in the data dir: one process, the embedded default.
    Sled { cache_bytes: u64 },
    /// PostgreSQL shared by every node.
    Postgres { url: PostgresUrl, pool_size: usize },
}

/// A connection string; may hold a password, so never printed.
#[derive(Clone)]
pub struct PostgresUrl(pub String);

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<postgres url>")
    }
}

/// Key material; never printed.
#[derive(Clone)]
pub struct SecretKey(pub Vec<u8>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub prefix: String,
    pub module: String,
    pub upstream: Upstream,
}

/// A CA whose certificates log enterprises in (`ca_roots`); the files exist.
#[derive(Debug, Clone)]
pub struct CaRoot {
    pub name: String,
    pub kind: CertificateLogin,
    pub root_file: PathBuf,
    pub crl_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub enum CaptchaProvider {
    Image,
    Outbox(PathBuf),
}

#[derive(Debug, Clone)]
pub enum SmsProvider {
    Http { url: String, timeout: Duration },
    Outbox(PathBuf),
}

#[derive(Debug, Clone)]
pub enum RealnameProvider {
    Http { url: String, timeout: Duration },
    Fixture(PathBuf),
}

/// Every time limit and threshold of the login flows (SPEC L6, S2–S5).
#[derive(Debug, Clone)]
pub struct Limits {
    pub login_ticket: Duration,
    /// How long a certificate-login challenge may be signed and sent back.
    pub ca_challenge: Duration,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub captcha: Duration,
    pub sms_code: Duration,
    pub sms_resend: Duration,
    pub sms_daily_per_phone: u32,
    pub sms_max_attempts: u32,
    pub lockout_threshold: u32,
    pub lockout: Duration,
    pub ip_requests_per_minute: u32,
    pub max_body_bytes: usize,
    /// From a request's first byte to the end of its headers (slow clients are cut).
    pub header_read: Duration,
    /// From the end of a request's headers to the end of its body.
    pub body_read: Duration,
    /// Open connections one client address may hold (a trusted proxy is exempt).
    pub connections_per_ip: usize,
    /// The longest any one store call may take: past it the request answers
    /// `503 UNAVAILABLE` and `/healthz` fails (store/deadline.rs).
    pub store_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_file(&LimitsFile::default())
    }
}

impl Limits {
    fn from_file(l: &LimitsFile) -> Limits {
        let secs = |v: Option<u64>, d: u64| Duration::from_secs(v.unwrap_or(d));
        Limits {
            login_ticket: secs(l.login_ticket_seconds, 300),
            ca_challenge: secs(l.ca_challenge_seconds, 120),
            session_idle: secs(l.session_idle_seconds, 30 * 60),
            session_absolute: secs(l.session_absolute_seconds, 12 * 3600),
            captcha: secs(l.captcha_seconds, 300),
            sms_code: secs(l.sms_code_seconds, 300),
            sms_resend: secs(l.sms_resend_seconds, 60),
            sms_daily_per_phone: l.sms_daily_per_phone.unwrap_or(10),
            sms_max_attempts: l.sms_max_attempts.unwrap_or(5),
            lockout_threshold: l.lockout_threshold.unwrap_or(5),
            lockout: secs(l.lockout_seconds, 15 * 60),
            ip_requests_per_minute: l.ip_requests_per_minute.unwrap_or(120),
            max_body_bytes: l.max_body_bytes.unwrap_or(16 * 1024),
            header_read: secs(l.header_read_seconds, 10),
            body_read: secs(l.body_read_seconds, 30),
            connections_per_ip: l.connections_per_ip.unwrap_or(256),
            store_deadline: secs(l.store_deadline_seconds, 5),
        }
    }
}

/// argon2id parameters (SPEC S1: ≥ 19 MiB, t = 2, p = 1 in production).
#[derive(Debug, Clone, Copy)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub concurrency: usize,
    /// Nice value of the hashing threads (crypto/hash_pool.rs): `background_nice`.
    pub nice: i32,
}

impl Argon2Params {
    pub const PRODUCTION_FLOOR_KIB: u32 = 19 * 1024;

    fn from_file(a: &Argon2File, nice: i32) -> Argon2Params {
        Argon2Params {
            memory_kib: a.memory_kib.unwrap_or(Self::PRODUCTION_FLOOR_KIB),
            iterations: a.iterations.unwrap_or(2),
            parallelism: a.parallelism.unwrap_or(1),
            concurrency: a.concurrency.unwrap_or_else(default_hash_concurrency),
            nice,
        }
    }
}

/// One fewer than the cores, at least one: a login storm leaves a core to the proxy.
fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1).max(1))
        .unwrap_or(1)
}

impl Config {
    /// Reads, resolves and validates a config file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let raw: ConfigFile = serde_yaml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_raw(raw, base, path)
    }

    fn from_raw(raw: ConfigFile, base: &Path, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let resolve = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let development = raw.mode == Mode::Development;
        if raw.test_clock && !development {
            return Err(invalid(
                "test_clock",
                "the test clock is for development mode only".into(),
            ));
        }

        check_addr(&raw.listen).map_err(|m| invalid("listen", m))?;
        if let Some(a) = &raw.admin_listen {
            check_addr(a).map_err(|m| invalid("admin_listen", m))?;
        }

        let secret_key = match (&raw.secret_key, &raw.secret_key_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "secret_key",
                    "give secret_key or secret_key_file, not both".into(),
                ))
            }
            (Some(hex_key), None) => parse_key(hex_key).map_err(|m| invalid("secret_key", m))?,
            (None, Some(file)) => {
                let file = resolve(file);
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| invalid("secret_key_file", format!("{}: {e}", file.display())))?;
                parse_key(text.trim()).map_err(|m| invalid("secret_key_file", m))?
            }
            (None, None) => return Err(invalid("secret_key", "missing".into())),
        };

        let mut routes = Vec::with_capacity(raw.routes.len());
        for (i, r) in raw.routes.iter().enumerate() {
            let key = format!("routes[{i}]");
            if !r.prefix.starts_with('/') || r.prefix.len() < 2 || r.prefix.ends_with('/') {
                return Err(invalid(
                    &format!("{key}.prefix"),
                    format!("`{}` must start with / and not end with /", r.prefix),
                ));
            }
            if r.prefix.starts_with("/api/") || r.prefix == "/api" {
                return Err(invalid(
                    &format!("{key}.prefix"),
                    "/api is the gateway's own API".into(),
                ));
            }
            let upstream =
                Upstream::parse(&r.upstream).map_err(|m| invalid(&format!("{key}.upstream"), m))?;
            if routes.iter().any(|o: &Route| o.prefix == r.prefix) {
                return Err(invalid(
                    &format!("{key}.prefix"),
                    format!("`{}` is routed twice", r.prefix),
                ));
            }
            routes.push(Route {
                prefix: r.prefix.clone(),
                module: r.module.clone(),
                upstream,
            });
        }

        let captcha = match &raw.providers.captcha {
            CaptchaFile::Image => CaptchaProvider::Image,
            CaptchaFile::Outbox { outbox } => CaptchaProvider::Outbox(resolve(outbox)),
        };
        let sms = match &raw.providers.sms {
            SmsFile::Http { url, timeout_ms } => SmsProvider::Http {
                url: check_url(url).map_err(|m| invalid("providers.sms.url", m))?,
                timeout: Duration::from_millis(timeout_ms.unwrap_or(3000)),
            },
            SmsFile::Outbox { outbox } => SmsProvider::Outbox(resolve(outbox)),
        };
        let realname = match &raw.providers.realname {
            None => None,
            Some(RealnameFile::Http { url, timeout_ms }) => Some(RealnameProvider::Http {
                url: check_url(url).map_err(|m| invalid("providers.realname.url", m))?,
                timeout: Duration::from_millis(timeout_ms.unwrap_or(3000)),
            }),
            Some(RealnameFile::Fixture { fixture }) => {
                Some(RealnameProvider::Fixture(resolve(fixture)))
            }
        };
        if !development {
            if matches!(captcha, CaptchaProvider::Outbox(_)) {
                return Err(invalid(
                    "providers.captcha",
                    "the outbox provider is for development mode only".into(),
                ));
            }
            if matches!(sms, SmsProvider::Outbox(_)) {
                return Err(invalid(
                    "providers.sms",
                    "the outbox provider is for development mode only".into(),
                ));
            }
            if matches!(realname, Some(RealnameProvider::Fixture(_))) {
                return Err(invalid(
                    "providers.realname",
                    "the fixture provider is for development mode only".into(),
                ));
            }
        }

        let background_nice = raw.background_nice.unwrap_or(10);
        if !(0..=19).contains(&background_nice) {
            return Err(invalid(
                "background_nice",
                "must be between 0 and 19".into(),
            ));
        }
        let argon2 = Argon2Params::from_file(&raw.argon2, background_nice);
        if !development
            && (argon2.memory_kib < Argon2Params::PRODUCTION_FLOOR_KIB
                || argon2.iterations < 2
                || argon2.parallelism < 1)
        {
            return Err(invalid(
                "argon2",
                "production needs memory_kib ≥ 19456, iterations ≥ 2, parallelism ≥ 1".into(),
            ));
        }
        if argon2.memory_kib < 8 * argon2.parallelism.max(1) || argon2.iterations == 0 {
            return Err(invalid("argon2", "parameters out of argon2's range".into()));
        }
        if argon2.concurrency == 0 {
            return Err(invalid("argon2.concurrency", "must be at least 1".into()));
        }

        let sled_cache_bytes = raw.sled_cache_mib.unwrap_or(64) * 1024 * 1024;
        let store = match &raw.store {
            None | Some(file::StoreFile::Sled) => StoreKind::Sled {
                cache_bytes: sled_cache_bytes,
            },
            Some(file::StoreFile::Postgres {
                url,
                url_file,
                pool_size,
            }) => {
                let url = match (url, url_file) {
                    (Some(u), None) => u.clone(),
                    (None, Some(f)) => std::fs::read_to_string(resolve(f))
                        .map_err(|e| invalid("store.url_file", e.to_string()))?
                        .trim()
                        .to_string(),
                    _ => {
                        return Err(invalid(
                            "store",
                            "postgres needs exactly one of `url` and `url_file`".into(),
                        ))
                    }
                };
                let pool_size = pool_size.unwrap_or(8);
                if pool_size == 0 {
                    return Err(invalid("store.pool_size", "must be at least 1".into()));
                }
                StoreKind::Postgres {
                    url: PostgresUrl(url),
                    pool_size,
                }
            }
        };

        let limits = Limits::from_file(&raw.limits);
        if limits.ca_challenge.is_zero() {
            return Err(invalid(
                "limits.ca_challenge_seconds",
                "must be at least 1".into(),
            ));
        }
        if limits.lockout_threshold == 0 || limits.sms_max_attempts == 0 {
            return Err(invalid("limits", "thresholds must be at least 1".into()));
        }
        if limits.header_read.is_zero()
            || limits.body_read.is_zero()
            || limits.store_deadline.is_zero()
        {
            return Err(invalid("limits", "deadlines must be at least 1 s".into()));
        }
        if limits.connections_per_ip == 0 {
            return Err(invalid(
                "limits.connections_per_ip",
                "must be at least 1".into(),
            ));
        }

        let tls = match &raw.tls {
            None => None,
            Some(t) => {
                for (key, file) in [
                    ("tls.cert_file", &t.cert_file),
                    ("tls.key_file", &t.key_file),
                ] {
                    let file = resolve(file);
                    std::fs::metadata(&file)
                        .map_err(|e| invalid(key, format!("{}: {e}", file.display())))?;
                }
                if let Some(a) = &t.redirect_listen {
                    check_addr(a).map_err(|m| invalid("tls.redirect_listen", m))?;
                }
                Some(Tls {
                    cert_file: resolve(&t.cert_file),
                    key_file: resolve(&t.key_file),
                    redirect_listen: t.redirect_listen.clone(),
                    hsts_seconds: t.hsts_seconds.unwrap_or(edge::DEFAULT_HSTS_SECONDS),
                })
            }
        };
        let trusted_proxies = TrustedProxies::parse(&raw.trusted_proxies)
            .map_err(|m| invalid("trusted_proxies", m))?;
        let upstream_ca_file = raw.upstream_ca_file.as_deref().map(resolve);
        if let Some(f) = &upstream_ca_file {
            std::fs::metadata(f)
                .map_err(|e| invalid("upstream_ca_file", format!("{}: {e}", f.display())))?;
        }

        let mut ca_roots: Vec<CaRoot> = Vec::with_capacity(raw.ca_roots.len());
        for (i, r) in raw.ca_roots.iter().enumerate() {
            let key = format!("ca_roots[{i}]");
            let name = r.name.trim();
            if name.is_empty() || ca_roots.iter().any(|o| o.name == name) {
                return Err(invalid(
                    &format!("{key}.name"),
                    "each CA needs a name of its own".into(),
                ));
            }
            let root_file = resolve(&r.root_file);
            let crl_file = r.crl_file.as_deref().map(resolve);
            for (what, file) in [
                ("root_file", Some(&root_file)),
                ("crl_file", crl_file.as_ref()),
            ] {
                if let Some(file) = file {
                    std::fs::metadata(file).map_err(|e| {
                        invalid(&format!("{key}.{what}"), format!("{}: {e}", file.display()))
                    })?;
                }
            }
            ca_roots.push(CaRoot {
                name: name.to_string(),
                kind: r.kind,
                root_file,
                crl_file,
            });
        }

        Ok(Config {
            mode: raw.mode,
            listen: raw.listen,
            admin_listen: raw.admin_listen,
            data_dir: resolve(&raw.data_dir),
            secret_key,
            cookie_secure: raw.cookie_secure || tls.is_some(),
            tls,
            trusted_proxies,
            upstream_ca_file,
            ca_roots,
            threads: raw.threads.unwrap_or(2).max(1),
            work_stealing: raw.work_stealing.unwrap_or(false),
            shutdown_grace: Duration::from_secs(raw.shutdown_grace_seconds.unwrap_or(5)),
            store,
            session_cache_entries: raw.session_cache_entries.unwrap_or(50_000),
            background_nice,
            test_clock: raw.test_clock,
            schema: resolve(&raw.schema),
            policies: resolve(&raw.policies),
            modules: resolve(&raw.modules),
            routes,
            captcha,
            sms,
            realname,
            limits,
            argon2,
        })
    }

    pub fn is_development(&self) -> bool {
        self.mode == Mode::Development
    }
}

fn check_addr(addr: &str) -> Result<(), String> {
    addr.parse::<SocketAddr>()
        .map(|_| ())
        .map_err(|_| format!("`{addr}` is not an address like 127.0.0.1:8080"))
}

fn check_url(url: &str) -> Result<String, String> {
    match url.parse::<http::Uri>() {
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some() => {
            Ok(url.to_string())
        }
        Ok(_) => Err(format!("`{url}`: an http:// or https:// URL")),
        Err(e) => Err(format!("`{url}`: {e}")),
    }
}

fn parse_key(hex_key: &str) -> Result<SecretKey, String> {
    let bytes = hex::decode(hex_key).map_err(|_| "must be hexadecimal".to_string())?;
    if bytes.len() < 32 {
        return Err(format!(
            "must be at least 32 bytes (64 hex digits), got {}",
            bytes.len()
        ));
    }
    Ok(SecretKey(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
mode: development
listen: 127.0.0.1:0
data_dir: data
secret_key: "0000000000000000000000000000000000000000000000000000000000000000"
schema: ../schema/taxgate.cedarschema
policies: ../policies
modules: modules.yaml
routes:
  - {prefix: /tax/vat, module: wybs.sfsb.zzs, upstream: "127.0.0.1:9001"}
providers:
  captcha: {kind: outbox, outbox: outbox.jsonl}
  sms: {kind: outbox, outbox: outbox.jsonl}
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: ConfigFile = serde_yaml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: "t.yaml".into(),
            message: e.to_string(),
        })?;
        Config::from_raw(raw, Path::new("/etc/taxgate"), Path::new("t.yaml"))
    }

    #[test]
    fn minimal_config_resolves_paths_against_its_directory() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/etc/taxgate/data"));
        assert_eq!(c.routes[0].module, "wybs.sfsb.zzs");
        assert_eq!(c.limits.lockout_threshold, 5);
        assert_eq!(c.argon2.memory_kib, 19 * 1024);
    }

    #[test]
    fn unknown_key_is_refused_with_its_line() {
        let text = MINIMAL.replace("cookie_secure", "x").to_string() + "colour: blue\n";
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn production_refuses_development_providers_and_weak_argon2() {
        let prod = MINIMAL.replace("mode: development", "mode: production");
        let err = parse(&prod).unwrap_err().to_string();
        assert!(err.contains("providers.captcha"), "{err}");
        let prod =
            prod.replace(
                "{kind: outbox, outbox: outbox.jsonl}\n  sms",
                "{kind: image}\n  sms",
            )
            .replace(
                "sms: {kind: outbox, outbox: outbox.jsonl}",
                "sms: {kind: http, url: \"http://127.0.0.1:1/sms\"}",
            ) + "argon2: {memory_kib: 1024}\n";
        let err = parse(&prod).unwrap_err().to_string();
        assert!(err.contains("argon2"), "{err}");
    }

    #[test]
    fn short_key_and_bad_upstream_are_named() {
        let err = parse(&MINIMAL.replace(
            "\"0000000000000000000000000000000000000000000000000000000000000000\"",
            "\"00ff\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("`secret_key`"), "{err}");
        let err = parse(&MINIMAL.replace("127.0.0.1:9001", "localhost"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("routes[0].upstream"), "{err}");
    }

    #[test]
    fn the_store_is_sled_unless_postgres_is_named_with_one_url() {
        assert!(matches!(
            parse(MINIMAL).unwrap().store,
            StoreKind::Sled { cache_bytes } if cache_bytes == 64 << 20
        ));
        let pg = MINIMAL.to_string()
            + "store: {kind: postgres, url: \"host=/tmp user=u password=hunter2\", pool_size: 3}\n";
        let c = parse(&pg).unwrap();
        assert!(matches!(c.store, StoreKind::Postgres { pool_size: 3, .. }));
        assert!(
            !format!("{:?}", c.store).contains("hunter2"),
            "the URL is never printed"
        );
        for (bad, key) in [
            ("store: {kind: postgres}\n", "store"),
            ("store: {kind: postgres, url: x, url_file: y}\n", "store"),
            (
                "store: {kind: postgres, url: x, pool_size: 0}\n",
                "store.pool_size",
            ),
            ("store: {kind: mongodb}\n", "unknown variant"),
        ] {
            let err = parse(&(MINIMAL.to_string() + bad)).unwrap_err().to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/taxgate.yaml");
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c.routes.len(), 3);
        assert_eq!(c.argon2.memory_kib, 19456);
    }

    #[test]
    fn debug_never_prints_the_key() {
        let c = parse(&MINIMAL.replace(
            "0000000000000000000000000000000000000000000000000000000000000000",
            "abababababababababababababababababababababababababababababababab",
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains("abab"));
    }
}
