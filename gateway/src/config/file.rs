//! The configuration file format, exactly as an operator writes it.
//!
//! Contract: every struct here mirrors YAML keys one to one and refuses unknown keys
//! (`deny_unknown_fields`), so a typo is an error with its line, never a silent default.
//! Nothing here is validated beyond its type: [`super::Config::from_file`] turns this
//! into the checked internal configuration the gateway uses.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `development` or `production`; development providers are refused in production.
    pub mode: Mode,
    pub listen: String,
    #[serde(default)]
    pub admin_listen: Option<String>,
    pub data_dir: PathBuf,
    /// Hex key (≥ 32 bytes) for the upstream identity signature and code hashing.
    /// Either inline or in a file; a file keeps it out of the config repository.
    #[serde(default)]
    pub secret_key: Option<String>,
    #[serde(default)]
    pub secret_key_file: Option<PathBuf>,
    #[serde(default)]
    pub cookie_secure: bool,
    /// TLS on the public listener; absent: plain HTTP (behind a terminating proxy).
    #[serde(default)]
    pub tls: Option<TlsFile>,
    /// Load balancers (CIDRs) whose `X-Forwarded-For` names the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// PEM roots for `https://` upstreams and providers (default: the system's).
    #[serde(default)]
    pub upstream_ca_file: Option<PathBuf>,
    /// Trust anchors of certificate login (CA登录, 税控设备登录); none: that login is off.
    #[serde(default)]
    pub ca_roots: Vec<CaRootFile>,
    #[serde(default)]
    pub threads: Option<usize>,
    /// pingora's work-stealing runtime (one multi-thread runtime) instead of one
    /// single-thread runtime per worker thread.
    #[serde(default)]
    pub work_stealing: Option<bool>,
    #[serde(default)]
    pub shutdown_grace_seconds: Option<u64>,
    #[serde(default)]
    pub sled_cache_mib: Option<u64>,
    /// Where state lives: sled in `data_dir` (the default), or PostgreSQL shared by
    /// several nodes.
    #[serde(default)]
    pub store: Option<StoreFile>,
    /// Live sessions kept decoded in memory (0: none).
    #[serde(default)]
    pub session_cache_entries: Option<usize>,
    /// Nice value (0–19, default 10) of the background threads: password hashing and
    /// the store's flusher, below the proxy's worker threads.
    #[serde(default)]
    pub background_nice: Option<i32>,
    /// Development only: `/admin/clock` may freeze and move the gateway's clock (tests
    /// of lifetimes and windows without waiting for them).
    #[serde(default)]
    pub test_clock: bool,
    pub schema: PathBuf,
    pub policies: PathBuf,
    pub modules: PathBuf,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    pub providers: ProvidersFile,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub argon2: Argon2File,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum StoreFile {
    Sled,
    Postgres {
        /// `postgresql://user@host:port/db` or key=value form; a password belongs in
        /// `url_file` or the `PGPASSWORD` environment, not here.
        #[serde(default)]
        url: Option<String>,
        /// A file holding the URL (kept out of the config repository).
        #[serde(default)]
        url_file: Option<PathBuf>,
        /// Connections per node (default 8).
        #[serde(default)]
        pool_size: Option<usize>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// A plain-HTTP listener that only redirects to https.
    #[serde(default)]
    pub redirect_listen: Option<String>,
    /// `Strict-Transport-Security: max-age` (default one year; 0 sends none).
    #[serde(default)]
    pub hsts_seconds: Option<u64>,
}

/// One CA whose certificates may log enterprises in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaRootFile {
    /// Shown in the audit and the logs, e.g. `云南CA`.
    pub name: String,
    /// `ca` (CA登录: the bureau's CA) or `device` (税控设备登录: the device CA).
    pub kind: CertificateLogin,
    /// The CA's root certificate (PEM).
    pub root_file: PathBuf,
    /// The CRL the CA publishes (PEM or DER); re-read when the file changes.
    #[serde(default)]
    pub crl_file: Option<PathBuf>,
}

/// Which enterprise login a CA's certificates give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateLogin {
    Ca,
    Device,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Development,
    Production,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// Path prefix, matched on whole segments: `/tax/vat` matches `/tax/vat/x`, not `/tax/vatx`.
    pub prefix: String,
    /// Module id from the catalog; the Cedar resource of every request under the prefix.
    pub module: String,
    /// `host:port` or `http://host:port` of the upstream tax module; `https://host:port`
    /// for TLS (verified against `upstream_ca_file` or the system's roots).
    pub upstream: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersFile {
    pub captcha: CaptchaFile,
    pub sms: SmsFile,
    #[serde(default)]
    pub realname: Option<RealnameFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum CaptchaFile {
    /// A PNG image captcha; the answer exists only in the store.
    Image,
    /// Development: an image too, and the answer appended to the outbox file.
    Outbox { outbox: PathBuf },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum SmsFile {
    /// Production: POST `{"phone","text","purpose"}` as JSON to `url`.
    Http {
        url: String,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Development: append each code to the outbox file as a JSON line.
    Outbox { outbox: PathBuf },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum RealnameFile {
    Http {
        url: String,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    Fixture {
        fixture: PathBuf,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub login_ticket_seconds: Option<u64>,
    /// Certificate login: seconds to sign and send back a challenge (default 120).
    #[serde(default)]
    pub ca_challenge_seconds: Option<u64>,
    pub session_idle_seconds: Option<u64>,
    pub session_absolute_seconds: Option<u64>,
    pub captcha_seconds: Option<u64>,
    pub sms_code_seconds: Option<u64>,
    pub sms_resend_seconds: Option<u64>,
    pub sms_daily_per_phone: Option<u32>,
    pub sms_max_attempts: Option<u32>,
    pub lockout_threshold: Option<u32>,
    pub lockout_seconds: Option<u64>,
    pub ip_requests_per_minute: Option<u32>,
    pub max_body_bytes: Option<usize>,
    pub header_read_seconds: Option<u64>,
    pub body_read_seconds: Option<u64>,
    pub connections_per_ip: Option<usize>,
    /// Seconds any one store call may take before the request answers 503.
    pub store_deadline_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2File {
    pub memory_kib: Option<u32>,
    pub iterations: Option<u32>,
    pub parallelism: Option<u32>,
    /// How many hashes may run at once; the rest wait, so a login storm cannot take
    /// every core from proxied traffic (SPEC P3).
    pub concurrency: Option<usize>,
}
