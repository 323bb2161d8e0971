//! Assembling and running the pingora server: the gateway service on the public
//! listener, the admin service on the operators' listener, the policy file watcher.
//!
//! Contract: [`Bound::bind`] binds both listeners first (port 0 allowed) so the caller
//! can print the real addresses; [`Bound::run`] serves until SIGTERM, then drains within
//! the configured grace period and exits the process. pingora's own defaults (a 300 s
//! drain, a pid file and upgrade socket in /tmp) are replaced by the config's.

use crate::admin::Admin;
use crate::app::App;
use crate::proxy::api_threads::ApiThreads;
use crate::proxy::gateway::Gateway;
use crate::proxy::listener::{self, Prebound};
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
}

impl Bound {
    pub fn bind(app: Arc<App>, listen: &str, admin_listen: Option<&str>) -> std::io::Result<Bound> {
        let public = listener::bind(listen)?;
        let admin = admin_listen.map(listener::bind).transpose()?;
        // Half the proxy's thread count, at least one: API calls are rare beside proxying.
        let api = ApiThreads::start((app.config.threads / 2).max(1))?;
        Ok(Bound {
            app,
            api,
            public,
            admin,
        })
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
            ..ServerConf::default()
        };
        let mut server = Server::new_with_opt_and_conf(None, conf);

        crate::policy::spawn_reload_watcher(self.app.policy.clone(), Duration::from_secs(1));
        if let Err(e) = crate::auth::janitor::spawn_janitor(&self.app, Duration::from_secs(60)) {
            tracing::error!(error = %e, "janitor not started: expired records are not swept");
        }

        let (listener, local) = self.public;
        let mut proxy = pingora::proxy::http_proxy_service_with_name(
            &server.configuration,
            Gateway {
                app: self.app.clone(),
                api: self.api,
            },
            "taxgate",
        );
        proxy.add_tcp(&local.to_string());
        server.add_service(Prebound::new(proxy, listener, local));

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
