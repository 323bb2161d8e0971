//! Assembling and running the pingora server: the gateway service on the public
//! listener (TLS when configured, behind the connection limits), the redirect listener,
//! the admin service on the operators' listener, the policy and certificate watchers.
//!
//! Contract: [`Bound::bind`] binds every listener first (port 0 allowed) and loads the
//! TLS certificate, so the caller can print the real addresses ([`Bound::announce`]) and
//! a bad certificate stops the start; [`Bound::inherit`] instead takes the listening
//! sockets of the running process at the same addresses (pingora's graceful upgrade:
//! the old process hands them over on SIGQUIT, then drains). [`Bound::run`] serves until
//! SIGTERM, then drains within the configured grace period and exits the process. pingora's own defaults (a
//! 300 s drain, a pid file and upgrade socket in /tmp, system roots for upstream TLS) are
//! replaced by the config's.

use crate::admin::Admin;
use crate::app::App;
use crate::proxy::api_threads::ApiThreads;
use crate::proxy::connection::{ConnectionLimits, Guarded};
use crate::proxy::gateway::Gateway;
use crate::proxy::listener::{self, Prebound};
use crate::proxy::redirect::Redirect;
use crate::proxy::respond::EdgeHeaders;
use crate::proxy::tls::{self, Certificates};
use pingora::apps::{HttpServerOptions, ServerApp};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::ExecutionPhase;
use pingora::server::Server;
use pingora::services::listening::Service;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

pub struct Bound {
    app: Arc<App>,
    api: ApiThreads,
    public: Listener,
    admin: Option<Listener>,
    /// With TLS: the certificate in force and the plain redirect listener, if any.
    certificates: Option<Arc<Certificates>>,
    redirect: Option<Listener>,
    /// Taking over from a running process.
    upgrade: bool,
}

/// Where a service listens: a socket bound here, or one the process being upgraded
/// hands over.
enum Listener {
    Bound(TcpListener, SocketAddr),
    Inherited(SocketAddr),
}

impl Listener {
    fn addr(&self) -> SocketAddr {
        match self {
            Listener::Bound(_, a) | Listener::Inherited(a) => *a,
        }
    }

    /// Adds `service`, listening here (plain TCP: TLS, if any, is the app's,
    /// proxy/connection.rs), to `server`.
    fn serve<A: ServerApp + Send + Sync + 'static>(
        self,
        server: &mut Server,
        mut service: Service<A>,
    ) {
        service.add_tcp(&self.addr().to_string());
        match self {
            Listener::Bound(socket, local) => {
                server.add_service(Prebound::new(service, socket, local))
            }
            Listener::Inherited(_) => server.add_service(service),
        };
    }
}

/// Follows `server`'s execution phases on a thread of its own. Returns a flag set when
/// the server starts handing its sockets over (SIGQUIT) or stopping (SIGTERM); once the
/// shutdown has started, [`exit_after`] ends the process `grace` later whatever is still
/// running.
fn watch_phases(server: &Server, app: Arc<App>, grace: Duration) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let mut phases = server.watch_execution_phase();
    let set = flag.clone();
    let watcher = std::thread::Builder::new()
        .name("phase-watch".into())
        .spawn(move || loop {
            match phases.blocking_recv() {
                Ok(ExecutionPhase::ShutdownStarted) => {
                    set.store(true, Ordering::Relaxed);
                    exit_after(grace, &app);
                    return;
                }
                Ok(
                    ExecutionPhase::GracefulUpgradeTransferringFds
                    | ExecutionPhase::GracefulUpgradeCloseTimeout
                    | ExecutionPhase::GracefulTerminate,
                ) => set.store(true, Ordering::Relaxed),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        });
    if let Err(e) = watcher {
        tracing::warn!(error = %e, "phase watcher not started: keep-alive is not ended early");
    }
    flag
}

/// The last word of a shutdown: `grace` after it began, whatever still runs (a request
/// that did not finish, a store call that does not return), the process exits. Just
/// before, the audit events still queued are written and the store is flushed once more
/// (at most [`LAST_FLUSH`] for both), so the unacknowledged writes of the last moments
/// (audit events of refusals and denials) are kept too. pingora itself exits at about
/// the same time when nothing hangs.
fn exit_after(grace: Duration, app: &App) {
    let started = Instant::now();
    std::thread::sleep(grace.saturating_sub(LAST_FLUSH));
    let last = async {
        app.audit.drain().await;
        app.store.flush().await
    };
    let flushed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(async { tokio::time::timeout(LAST_FLUSH, last).await }));
    if !matches!(flushed, Ok(Ok(Ok(())))) {
        tracing::error!("shutdown: the last store flush did not finish in time");
    }
    std::thread::sleep(grace.saturating_sub(started.elapsed()));
    std::process::exit(0);
}

/// How long the last flush of a shutdown may take.
const LAST_FLUSH: Duration = Duration::from_millis(300);

impl Bound {
    pub fn bind(app: Arc<App>, listen: &str, admin_listen: Option<&str>) -> std::io::Result<Bound> {
        let bind = |a: &str| listener::bind(a).map(|(l, local)| Listener::Bound(l, local));
        Bound::new(app, listen, admin_listen, false, bind)
    }

    /// Like [`Bound::bind`], for `taxgate serve --upgrade`: the addresses are the running
    /// process's (explicit ports), and its sockets are taken over when it gets SIGQUIT.
    pub fn inherit(
        app: Arc<App>,
        listen: &str,
        admin_listen: Option<&str>,
    ) -> std::io::Result<Bound> {
        let inherit = |a: &str| {
            let addr: SocketAddr = a.parse().map_err(std::io::Error::other)?;
            if addr.port() == 0 {
                return Err(std::io::Error::other(
                    "an upgrade takes over the running process's ports: give them explicitly",
                ));
            }
            Ok(Listener::Inherited(addr))
        };
        Bound::new(app, listen, admin_listen, true, inherit)
    }

    fn new(
        app: Arc<App>,
        listen: &str,
        admin_listen: Option<&str>,
        upgrade: bool,
        open: impl Fn(&str) -> std::io::Result<Listener>,
    ) -> std::io::Result<Bound> {
        let tls = app.config.tls.as_ref();
        let certificates = tls
            .map(|t| Certificates::load(&t.cert_file, &t.key_file))
            .transpose()
            .map_err(std::io::Error::other)?;
        let public = open(listen)?;
        let admin = admin_listen.map(&open).transpose()?;
        let redirect = tls
            .and_then(|t| t.redirect_listen.as_deref())
            .map(&open)
            .transpose()?;
        // Half the proxy's thread count, at least one: API calls are rare beside proxying.
        let api = ApiThreads::start((app.config.threads / 2).max(1))?;
        Ok(Bound {
            app,
            api,
            public,
            admin,
            certificates,
            redirect,
            upgrade,
        })
    }

    /// Prints the bound addresses, one line each (tests and scripts read them).
    pub fn announce(&self) {
        let scheme = if self.certificates.is_some() {
            "https"
        } else {
            "http"
        };
        println!("listening on {scheme}://{}", self.public_addr());
        if let Some(r) = &self.redirect {
            println!("redirect on http://{}", r.addr());
        }
        if let Some(a) = self.admin_addr() {
            println!("admin on http://{a}");
        }
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public.addr()
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(Listener::addr)
    }

    /// Serves until told to stop; never returns.
    pub fn run(self) -> ! {
        let config = &self.app.config;
        let grace = config.shutdown_grace.as_secs();
        let run_dir = config.data_dir.join("run");
        let _ = std::fs::create_dir_all(&run_dir);
        let conf = ServerConf {
            threads: config.threads,
            work_stealing: config.work_stealing,
            // The grace period is the requests' time to finish; after it nothing is
            // waited for (and `exit_after` ends the process if anything hangs).
            grace_period_seconds: Some(grace),
            graceful_shutdown_timeout_seconds: Some(0),
            pid_file: run_dir.join("taxgate.pid").display().to_string(),
            upgrade_sock: run_dir.join("upgrade.sock").display().to_string(),
            ca_file: config
                .upstream_ca_file
                .as_ref()
                .map(|f| f.display().to_string()),
            ..ServerConf::default()
        };
        let opt = Opt {
            upgrade: self.upgrade,
            ..Opt::default()
        };
        let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
        // With `upgrade`: waits on the upgrade socket for the old process's listeners.
        server.bootstrap();

        crate::policy::spawn_reload_watcher(self.app.policy.clone(), Duration::from_secs(1));
        crate::auth::trust::spawn_refresher(&self.app.trust, Duration::from_secs(1));
        if let Err(e) = crate::auth::janitor::spawn_janitor(&self.app, Duration::from_secs(60)) {
            tracing::error!(error = %e, "janitor not started: expired records are not swept");
        }

        let https_port = self.public.addr().port();
        let edge = EdgeHeaders::new(config);
        let gateway = Gateway {
            app: self.app.clone(),
            api: self.api,
            edge: edge.clone(),
            draining: watch_phases(&server, self.app.clone(), config.shutdown_grace),
        };
        let limits = ConnectionLimits {
            header_read: config.limits.header_read,
            per_ip: config.limits.connections_per_ip,
            trusted: config.trusted_proxies.clone(),
        };
        let mut proxy = pingora::proxy::http_proxy(&server.configuration, gateway);
        // pingora refuses CONNECT itself, without `Allow`; the gateway refuses it (and
        // TRACE) with one. Nothing is tunnelled.
        let mut options = HttpServerOptions::default();
        options.allow_connect_method_proxying = true;
        proxy.server_options = Some(options);
        let mut guarded = Guarded::new(proxy, limits.clone());
        if let Some(certificates) = self.certificates {
            tls::spawn_reloader(&certificates, Duration::from_secs(1));
            match tls::acceptor(certificates) {
                Ok(acceptor) => guarded = guarded.with_tls(acceptor, edge.hsts()),
                Err(e) => {
                    tracing::error!(error = %e, "TLS listener not configured");
                    std::process::exit(1);
                }
            }
        }
        let filter = guarded.filter();
        let mut public = Service::new("taxgate".to_string(), guarded);
        public.set_connection_filter(filter);
        self.public.serve(&mut server, public);

        if let Some(listener) = self.redirect {
            // The same connection limits as the TLS listener beside it.
            let redirect = Guarded::new(Redirect { https_port }, limits.clone());
            let filter = redirect.filter();
            let mut redirect = Service::new("taxgate-redirect".to_string(), redirect);
            redirect.set_connection_filter(filter);
            listener.serve(&mut server, redirect);
        }

        if let Some(listener) = self.admin {
            let admin = Admin {
                app: self.app.clone(),
            };
            listener.serve(
                &mut server,
                Service::new("taxgate-admin".to_string(), admin),
            );
        }
        server.run_forever()
    }
}
