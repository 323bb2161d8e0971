//! `bench-passthrough`: the framework's own limit (SPEC P2): a pingora reverse proxy
//! that forwards every request to one upstream, with no authentication, no routing and
//! no header work. Same pingora version and `ServerConf` knobs as taxgate.
//!
//! ```text
//! bench-passthrough --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT
//!                   [--threads 2] [--work-stealing true|false] [--run-dir DIR]
//! ```

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use std::net::SocketAddr;

// The allocator taxgate ships with, so the comparison measures the work, not malloc.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Pass {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Pass {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen", "127.0.0.1:6190");
    let upstream: SocketAddr = arg(&args, "--upstream", "127.0.0.1:6191")
        .parse()
        .expect("--upstream host:port");
    let run_dir = std::path::PathBuf::from(arg(&args, "--run-dir", "/tmp/bench-passthrough"));
    let _ = std::fs::create_dir_all(&run_dir);
    let conf = ServerConf {
        threads: arg(&args, "--threads", "2").parse().expect("--threads"),
        work_stealing: arg(&args, "--work-stealing", "true") == "true",
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        pid_file: run_dir.join("pass.pid").display().to_string(),
        upgrade_sock: run_dir.join("pass.sock").display().to_string(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Pass { upstream });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    println!("listening on http://{listen}");
    server.run_forever()
}
