//! Assembling and running the pingora server: the gateway service on the public
//! listener (TLS when configured, behind the connection limits), the redirect listener,
//! the admin service on the operators' listener, the policy and certificate watchers.
//!
//! Contract: [`Bound::bind`] binds every listener first (port 0 allowed) and loads the
//! TLS certificate, so the caller can print the real addresses ([`Bound::announce`]) and
//! a bad certificate stops the start; [`Bound::run`] serves until SIGTERM, then drains
//! within the configured grace period and exits the process. pingora's own defaults (a
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
use pingora::apps::HttpServerOptions;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::listening::Service;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

pub struct Bound {
    app: Arc<App>,
    api: ApiThreads,
    public: (TcpListener, SocketAddr),
    admin: Option<(TcpListener, SocketAddr)>,
    /// With TLS: the certificate in force and the plain redirect listener, if any.
    certificates: Option<Arc<Certificates>>,
    redirect: Option<(TcpListener, SocketAddr)>,
}

impl Bound {
    pub fn bind(app: Arc<App>, listen: &str, admin_listen: Option<&str>) -> std::io::Result<Bound> {
        let tls = app.config.tls.as_ref();
        let certificates = tls
            .map(|t| Certificates::load(&t.cert_file, &t.key_file))
            .transpose()
            .map_err(std::io::Error::other)?;
        let public = listener::bind(listen)?;
        let admin = admin_listen.map(listener::bind).transpose()?;
        let redirect = tls
            .and_then(|t| t.redirect_listen.as_deref())
            .map(listener::bind)
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
        if let Some((_, a)) = &self.redirect {
            println!("redirect on http://{a}");
        }
        if let Some(a) = self.admin_addr() {
            println!("admin on http://{a}");
        }
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public.1
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.1)
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
            grace_period_seconds: Some(grace),
            graceful_shutdown_timeout_seconds: Some(grace.max(1)),
            pid_file: run_dir.join("taxgate.pid").display().to_string(),
            upgrade_sock: run_dir.join("upgrade.sock").display().to_string(),
            ca_file: config
                .upstream_ca_file
                .as_ref()
                .map(|f| f.display().to_string()),
            ..ServerConf::default()
        };
        let mut server = Server::new_with_opt_and_conf(None, conf);

        crate::policy::spawn_reload_watcher(self.app.policy.clone(), Duration::from_secs(1));
        if let Err(e) = crate::auth::janitor::spawn_janitor(&self.app, Duration::from_secs(60)) {
            tracing::error!(error = %e, "janitor not started: expired records are not swept");
        }

        let (listener, local) = self.public;
        let https_port = local.port();
        let gateway = Gateway {
            app: self.app.clone(),
            api: self.api,
            edge: EdgeHeaders::new(config),
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
        let guarded = Guarded::new(proxy, limits);
        let filter = guarded.filter();
        let mut public = Service::new("taxgate".to_string(), guarded);
        public.set_connection_filter(filter);
        match self.certificates {
            Some(certificates) => {
                tls::spawn_reloader(&certificates, Duration::from_secs(1));
                match tls::settings(certificates) {
                    Ok(settings) => {
                        public.add_tls_with_settings(&local.to_string(), None, settings)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS listener not configured");
                        std::process::exit(1);
                    }
                }
            }
            None => public.add_tcp(&local.to_string()),
        }
        server.add_service(Prebound::new(public, listener, local));

        if let Some((listener, local)) = self.redirect {
            let mut redirect =
                Service::new("taxgate-redirect".to_string(), Redirect { https_port });
            redirect.add_tcp(&local.to_string());
            server.add_service(Prebound::new(redirect, listener, local));
        }

        if let Some((listener, local)) = self.admin {
            let mut admin = Service::new(
                "taxgate-admin".to_string(),
                Admin {
                    app: self.app.clone(),
                },
            );
            admin.add_tcp(&local.to_string());
            server.add_service(Prebound::new(admin, listener, local));
        }
        server.run_forever()
    }
}
