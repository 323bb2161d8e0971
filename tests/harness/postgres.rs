//! A throw-away PostgreSQL cluster for the tests, started by the tests themselves.
//!
//! One cluster per test process, made on first use from Debian's `postgresql` package:
//! `initdb` into a temp dir (as the `postgres` user when the tests run as root), the
//! server on a free loopback port with its socket in that dir, `fsync` off (a test
//! machine that loses power loses the test, not data). Each test gets a database of its
//! own. A watchdog stops the server and removes the dir when the test process ends,
//! however it ends. Nothing relies on a server already running.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The process's cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start)
}

/// A new empty database on the process's cluster; returns its connection string.
pub fn new_database() -> String {
    let c = cluster();
    let name = format!("t{}", NEXT_DB.fetch_add(1, Ordering::SeqCst));
    c.psql("postgres", &format!("CREATE DATABASE {name}"));
    c.url(&name)
}

impl Cluster {
    /// A cluster of the caller's own (one that a test may stop), cleaned up like the
    /// shared one when the test process ends.
    pub fn start_private() -> Cluster {
        Cluster::start()
    }

    fn start() -> Cluster {
        let bin = bindir();
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("taxgate-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        if as_postgres {
            run(Command::new("chown").args(["-R", "postgres:postgres", dir.to_str().unwrap()]));
        }
        let mut c = Cluster {
            dir,
            port: 0,
            bin,
            as_postgres,
        };
        let data = c.dir.join("data");
        c.run_pg(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        // PostgreSQL binds its port itself: a port found free may be taken by another
        // test process before the server binds it, so a start that fails is tried again
        // on another port.
        let mut failures = Vec::new();
        for _ in 0..5 {
            c.port = free_port();
            match c.try_start() {
                Ok(()) => {
                    c.watch_for_exit();
                    return c;
                }
                Err(e) => failures.push(format!("port {}: {e}", c.port)),
            }
        }
        panic!("PostgreSQL did not start: {failures:#?}");
    }

    /// Stops the server (fast shutdown) — the store becomes unreachable.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        self.run_pg(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts the server (again) on its port, waiting until it accepts connections.
    pub fn restart(&self) {
        if let Err(e) = self.try_start() {
            panic!("PostgreSQL did not start again on port {}: {e}", self.port);
        }
    }

    fn try_start(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port,
            self.dir.display()
        );
        self.pg_command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                self.dir.join("server.log").to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ])
            .output()
            .map_err(|e| e.to_string())
            .and_then(|out| {
                if out.status.success() {
                    Ok(())
                } else {
                    let log =
                        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                    Err(format!("{}{log}", String::from_utf8_lossy(&out.stderr)))
                }
            })
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={database}",
            self.dir.display(),
            self.port
        )
    }

    /// Runs one SQL statement with psql; panics on failure.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let host = self.dir.display().to_string();
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", &host, "-p", &port, "-U", "postgres", "-d", database])
            .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn run_pg(&self, tool: &str, args: &[&str]) {
        run(self.pg_command(tool).args(args));
    }

    /// `tool` of the server's binaries, as the `postgres` user when the tests run as
    /// root, in the cluster's dir.
    fn pg_command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.current_dir(&self.dir);
        cmd
    }

    /// A detached shell that stops the server and removes the dir once this process
    /// is gone.
    fn watch_for_exit(&self) {
        let data = self.dir.join("data");
        let ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            format!(
                "runuser -u postgres -- {} -D {} -m immediate stop",
                ctl.display(),
                data.display()
            )
        } else {
            format!("{} -D {} -m immediate stop", ctl.display(), data.display())
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        // `setsid -f` forks the watchdog off and returns at once.
        let started = Command::new("setsid")
            .args(["-f", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("start the cluster's watchdog");
        assert!(started.success(), "setsid: {started}");
    }
}

/// Debian's server binaries: the newest `/usr/lib/postgresql/N/bin`.
fn bindir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: apt-get install postgresql")
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no initdb under /usr/lib/postgresql")
        .1
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until `f` holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}
