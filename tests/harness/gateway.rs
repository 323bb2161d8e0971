//! A gateway process under test.

use super::repo;
use super::tls::TestPki;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use taxgate::demo::upstream::{self, EchoModule};

/// Routes of the test gateway: prefix, module id.
pub const ROUTES: &[(&str, &str)] = &[
    ("/tax/zzs", "wybs.sfsb.zzs"),
    ("/query/sbxx", "wycx.sbxx"),
    ("/wdxx/nsrxx", "wdxx.nsrxx"),
];

pub const KEY_HEX: &str = "6b6579206f662074686520746178676174652074657374207375697465212121";

/// A step run on a test gateway's temp dir before it is used.
pub type Prepare = Box<dyn FnOnce(&Path) + Send>;

#[derive(Default)]
pub struct GatewayOptions {
    /// Copy the repository's policies into the temp dir (for tests that edit them).
    pub own_policies: bool,
    /// Extra YAML appended to the config (e.g. `limits:`).
    pub extra_yaml: String,
    /// Skip the fixture registry import.
    pub empty: bool,
    /// Which store the gateway runs on.
    pub store: TestStore,
    /// TLS on the public listener with certificates made for the test (harness/tls.rs),
    /// and the plain redirect listener.
    pub tls: bool,
    /// Routes whose upstream is not the harness's echo module: (module id, upstream).
    pub upstreams: Vec<(&'static str, String)>,
    /// The real-name fixture (default: tests/fixtures/realname.yaml).
    pub realname_fixture: Option<PathBuf>,
    /// `providers.sms` and `providers.realname` as flow YAML (default: outbox, fixture).
    pub sms_yaml: Option<String>,
    pub realname_yaml: Option<String>,
    /// Runs on the temp dir before anything is written to it (e.g. mounts a small
    /// file system at `data`).
    pub prepare: Option<Prepare>,
}

/// The store of a gateway under test.
#[derive(Default)]
pub enum TestStore {
    /// sled, or PostgreSQL when the run says `TAXGATE_TEST_STORE=postgres` (each gateway
    /// then gets a new database on the tests' own cluster, harness/postgres.rs).
    #[default]
    FromEnv,
    /// sled in the temp dir, whatever the run says.
    Sled,
    /// This PostgreSQL database (a connection string).
    Postgres(String),
}

/// Whether this run puts every gateway on PostgreSQL (`TAXGATE_TEST_STORE=postgres`).
pub fn postgres_by_default() -> bool {
    std::env::var("TAXGATE_TEST_STORE").is_ok_and(|v| v == "postgres")
}

pub struct Gateway {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: Arc<tempfile::TempDir>,
    pub config: PathBuf,
    pub outbox: PathBuf,
    pub policies: PathBuf,
    pub modules: Vec<(String, EchoModule)>,
    /// The PostgreSQL connection string, when the store is PostgreSQL.
    pub postgres: Option<String>,
    /// With TLS: the test's CA and the gateway's certificate files.
    pub pki: Option<Arc<TestPki>>,
    /// With TLS: the plain listener that redirects to https.
    pub redirect: Option<SocketAddr>,
    /// Where this node keeps its own files (logs, pid file); the temp dir for the first.
    home: PathBuf,
    child: Child,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_taxgate")
}

/// Runs a `taxgate` command to completion; returns (success, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run taxgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Gateway {
    pub async fn start() -> Gateway {
        Gateway::start_with(GatewayOptions::default()).await
    }

    pub async fn start_with(opts: GatewayOptions) -> Gateway {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        if let Some(prepare) = opts.prepare {
            prepare(dir.path());
        }
        let key = hex::decode(KEY_HEX).unwrap();
        let mut modules = Vec::new();
        for (_, module) in ROUTES {
            modules.push((
                module.to_string(),
                upstream::spawn(module, &key).await.unwrap(),
            ));
        }
        let policies = if opts.own_policies {
            let p = dir.path().join("policies");
            copy_dir(&repo().join("policies"), &p);
            p
        } else {
            repo().join("policies")
        };
        let outbox = dir.path().join("outbox.jsonl");
        let routes: String = ROUTES
            .iter()
            .zip(&modules)
            .map(|((prefix, module), (_, echo))| {
                let upstream = opts
                    .upstreams
                    .iter()
                    .find(|(m, _)| m == module)
                    .map_or_else(|| echo.addr.to_string(), |(_, u)| u.clone());
                format!("  - {{prefix: {prefix}, module: {module}, upstream: \"{upstream}\"}}\n")
            })
            .collect();
        let config = dir.path().join("taxgate.yaml");
        let repo = repo();
        let postgres = match opts.store {
            TestStore::FromEnv => postgres_by_default().then(super::postgres::new_database),
            TestStore::Sled => None,
            TestStore::Postgres(url) => Some(url),
        };
        let store = match &postgres {
            Some(url) => format!("store: {{kind: postgres, url: \"{url}\", pool_size: 4}}\n"),
            None => String::new(),
        };
        let pki = opts.tls.then(|| Arc::new(TestPki::new(dir.path())));
        let tls = match &pki {
            Some(p) => format!(
                "tls: {{cert_file: {}, key_file: {}, redirect_listen: \"127.0.0.1:0\"}}\n",
                p.cert_file.display(),
                p.key_file.display()
            ),
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "mode: development\n\
                 listen: 127.0.0.1:0\n\
                 admin_listen: 127.0.0.1:0\n\
                 data_dir: {data}\n\
                 secret_key: \"{KEY_HEX}\"\n\
                 shutdown_grace_seconds: 1\n\
                 schema: {schema}\n\
                 policies: {policies}\n\
                 modules: {modules}\n\
                 routes:\n{routes}\
                 providers:\n  \
                   captcha: {{kind: outbox, outbox: {outbox}}}\n  \
                   sms: {sms}\n  \
                   realname: {realname}\n\
                 argon2: {{memory_kib: 256, iterations: 1, parallelism: 1}}\n\
                 {store}\
                 {tls}\
                 {extra}\n",
                data = dir.path().join("data").display(),
                schema = repo.join("schema/taxgate.cedarschema").display(),
                policies = policies.display(),
                modules = repo.join("config/modules.yaml").display(),
                outbox = outbox.display(),
                sms = opts
                    .sms_yaml
                    .clone()
                    .unwrap_or_else(|| format!("{{kind: outbox, outbox: {}}}", outbox.display())),
                realname = opts.realname_yaml.clone().unwrap_or_else(|| format!(
                    "{{kind: fixture, fixture: {}}}",
                    opts.realname_fixture
                        .clone()
                        .unwrap_or_else(|| repo.join("tests/fixtures/realname.yaml"))
                        .display()
                )),
                extra = opts.extra_yaml,
            ),
        )
        .unwrap();
        if !opts.empty {
            let fixture = repo.join("tests/fixtures/registry.yaml");
            let (ok, _, err) = run_cli(&[
                "registry",
                "import",
                "--config",
                config.to_str().unwrap(),
                fixture.to_str().unwrap(),
            ]);
            assert!(ok, "fixture import failed: {err}");
        }
        let (child, addrs) = spawn(&config, dir.path());
        Gateway {
            addr: addrs.public,
            admin: addrs.admin,
            redirect: addrs.redirect,
            home: dir.path().to_path_buf(),
            dir,
            config,
            outbox,
            policies,
            modules,
            postgres,
            pki,
            child,
        }
    }

    /// A second node on the same PostgreSQL store: the same config, upstreams and
    /// outbox, its own data dir, port and log.
    pub fn start_peer(&self, name: &str) -> Gateway {
        assert!(self.postgres.is_some(), "peers share a PostgreSQL store");
        let home = self.dir.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        let text = std::fs::read_to_string(&self.config).unwrap();
        let data_line = format!("data_dir: {}", self.data_dir().display());
        assert!(text.contains(&data_line));
        let config = home.join("taxgate.yaml");
        std::fs::write(
            &config,
            text.replace(
                &data_line,
                &format!("data_dir: {}", home.join("data").display()),
            ),
        )
        .unwrap();
        let (child, addrs) = spawn(&config, &home);
        Gateway {
            addr: addrs.public,
            admin: addrs.admin,
            redirect: addrs.redirect,
            pki: self.pki.clone(),
            dir: self.dir.clone(),
            home,
            config,
            outbox: self.outbox.clone(),
            policies: self.policies.clone(),
            modules: Vec::new(),
            postgres: self.postgres.clone(),
            child,
        }
    }

    /// The gateway's store, opened from the test through the store interface (a sled
    /// store only while the gateway is stopped: sled allows one process).
    pub fn open_store(&self) -> taxgate::store::Store {
        match &self.postgres {
            Some(url) => taxgate::store::postgres::open(url, 2).unwrap(),
            None => taxgate::store::sled_store::open(&self.data_dir(), 1 << 20).unwrap(),
        }
    }

    /// Moves this (stopped) gateway's config to `url`'s PostgreSQL store; the next
    /// restart serves from there.
    pub fn switch_to_postgres(&mut self, url: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let line = format!("store: {{kind: postgres, url: \"{url}\", pool_size: 4}}\n");
        std::fs::write(&self.config, text + &line).unwrap();
        self.postgres = Some(url.to_string());
    }

    /// `kill -9` without a restart.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn base(&self) -> String {
        match &self.pki {
            // The certificate names localhost.
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", self.addr),
        }
    }

    pub fn module(&self, id: &str) -> &EchoModule {
        &self
            .modules
            .iter()
            .find(|(m, _)| m == id)
            .unwrap_or_else(|| panic!("no test module {id}"))
            .1
    }

    /// `kill -9`, then start again on the same data dir (new port).
    pub fn crash_and_restart(&mut self) {
        self.kill();
        let (child, addrs) = spawn(&self.config, &self.home);
        self.child = child;
        self.addr = addrs.public;
        self.admin = addrs.admin;
        self.redirect = addrs.redirect;
    }

    /// pingora's graceful upgrade: a new process started with `--upgrade` on the same
    /// addresses (written into the config), then SIGQUIT to the running one, which hands
    /// over its sockets and drains. Returns how long the old process took to exit.
    pub fn upgrade(&mut self) -> Duration {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text = text
            .replace(
                "\nlisten: 127.0.0.1:0\n",
                &format!("\nlisten: {}\n", self.addr),
            )
            .replace(
                "\nadmin_listen: 127.0.0.1:0\n",
                &format!("\nadmin_listen: {}\n", self.admin),
            );
        std::fs::write(&self.config, text).unwrap();
        let (new, addrs) = spawn_with(&self.config, &self.home, &["--upgrade"]);
        assert_eq!((addrs.public, addrs.admin), (self.addr, self.admin));
        // The new process waits on the upgrade socket for the old one's listeners.
        std::thread::sleep(Duration::from_millis(300));
        let mut old = std::mem::replace(&mut self.child, new);
        let started = std::time::Instant::now();
        self.signal_pid(old.id(), "-QUIT");
        old.wait().unwrap();
        started.elapsed()
    }

    fn signal_pid(&self, pid: u32, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal} {pid}");
    }

    /// Sends `signal` (e.g. `-HUP`) to the gateway process.
    pub fn signal(&self, signal: &str) {
        self.signal_pid(self.child.id(), signal);
    }

    /// Sends SIGTERM and waits for the exit; returns how long it took.
    pub fn terminate(&mut self) -> (Duration, std::process::ExitStatus) {
        let started = std::time::Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        (started.elapsed(), status)
    }

    /// The gateway process's id (its /proc figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes the gateway's test clock (config `test_clock: true`) one second into the
    /// next whole minute of real time, so a per-minute window cannot turn over during a
    /// test; returns that instant.
    pub async fn freeze_clock(&self) -> i64 {
        let admin = super::Browser::admin(self);
        let real = admin.get("/admin/clock").await.expect(200).json()["now"]
            .as_i64()
            .unwrap();
        let start = (real / 60 + 1) * 60 + 1;
        let body = format!("{{\"now\": {start}}}");
        admin
            .send("PUT", "/admin/clock", &[], Some(&body))
            .await
            .expect(200);
        start
    }

    /// Sends SIGTERM and asserts a graceful exit (status 0) within the grace period
    /// (1 s) and a margin.
    #[track_caller]
    pub fn stop(&mut self) {
        let (took, status) = self.terminate();
        assert!(status.success(), "not a graceful exit: {status:?}");
        assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
        let log = self.stderr();
        assert!(!log.contains("panicked"), "a thread panicked:\n{log}");
    }

    pub fn data_dir(&self) -> PathBuf {
        self.home.join("data")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.home.join("gateway.stderr")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The listeners a started gateway printed.
struct Addrs {
    public: SocketAddr,
    admin: SocketAddr,
    redirect: Option<SocketAddr>,
}

fn spawn(config: &Path, dir: &Path) -> (Child, Addrs) {
    spawn_with(config, dir, &[])
}

/// [`spawn`] with extra `serve` arguments.
fn spawn_with(config: &Path, dir: &Path, extra: &[&str]) -> (Child, Addrs) {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("gateway.stderr"))
        .unwrap();
    let mut child = Command::new(bin())
        .args(["serve", "--config", config.to_str().unwrap()])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start taxgate");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut public, mut redirect) = (None, None);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let listening = line
                .strip_prefix("listening on http://")
                .or_else(|| line.strip_prefix("listening on https://"));
            if let Some(a) = listening {
                public = a.parse::<SocketAddr>().ok();
            }
            if let Some(a) = line.strip_prefix("redirect on http://") {
                redirect = a.parse::<SocketAddr>().ok();
            }
            if let (Some(public), Some(a)) = (public, line.strip_prefix("admin on http://")) {
                let admin = a.parse::<SocketAddr>().unwrap();
                let _ = tx.send(Addrs {
                    public,
                    admin,
                    redirect,
                });
            }
        }
    });
    let addrs = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(a) => a,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "gateway did not start: {}",
                std::fs::read_to_string(dir.join("gateway.stderr")).unwrap_or_default()
            );
        }
    };
    // The addresses are printed before pingora runs; wait until the admin listener
    // answers, so the server (and its signal handling) is up.
    for _ in 0..500 {
        if healthz(addrs.admin) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, addrs)
}

fn healthz(admin: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(admin) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
