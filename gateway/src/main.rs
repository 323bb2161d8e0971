//! The `taxgate` command line (API.md, "Command line").

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use taxgate::config::Config;

#[derive(Parser)]
#[command(
    name = "taxgate",
    version,
    about = "Login and authorization gateway for e-tax services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with a config file.
    Serve {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        listen: Option<String>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Take over the listening sockets of the running process (pingora's graceful
        /// upgrade): start this, then send the old process SIGQUIT. Needs the
        /// PostgreSQL store and listen addresses with explicit ports.
        #[arg(long)]
        upgrade: bool,
    },
    /// Development mode on an embedded default, with demo tax modules.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        outbox: Option<PathBuf>,
        #[arg(long)]
        realname_fixture: Option<PathBuf>,
    },
    /// Check config, schema and policies; exit 1 with the errors.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// The core tax system's export.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The store as a whole.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Development tools (certificate login of the demo); not for production.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Subcommand)]
enum DevCommand {
    /// Make a demo CA, a demo tax-device CA and certificates with keys for every
    /// enterprise of a registry file (what exists is kept).
    Pki {
        #[arg(long)]
        out: PathBuf,
        /// Default: the repository's config/demo-registry.yaml.
        #[arg(long)]
        registry: Option<PathBuf>,
    },
    /// Sign a certificate-login challenge with a PKCS#8 PEM key (SM2, P-256 or RSA), the way
    /// an enterprise's signing plug-in would; prints the base64 signature.
    Sign {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        challenge: String,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy every record into another, empty store (e.g. sled → PostgreSQL); stop the
    /// gateways of both first.
    Copy {
        /// Config naming the source store.
        #[arg(long)]
        from: PathBuf,
        /// Config naming the destination store.
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Import a registry file (idempotent).
    Import {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Audit events as JSON lines on stdout.
    Export {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// RFC 3339 time; events from then on.
        #[arg(long)]
        since: Option<String>,
    },
}

// glibc malloc contends on its arena locks when pingora's threads free what another
// thread allocated (bench/README.md: ~2x CPU per proxied request); jemalloc does not.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,pingora_core=warn,pingora_proxy=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("taxgate: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve {
            config,
            listen,
            data_dir,
            upgrade,
        } => {
            let mut config = Config::from_file(&config).map_err(|e| e.to_string())?;
            if let Some(l) = listen {
                config.listen = l;
            }
            if let Some(d) = data_dir {
                config.data_dir = d;
            }
            let listen = config.listen.clone();
            let admin = config.admin_listen.clone();
            if upgrade && matches!(config.store, taxgate::config::StoreKind::Sled { .. }) {
                return Err(
                    "--upgrade needs the PostgreSQL store: the running process holds \
                            the sled data dir until it exits (restart instead)"
                        .into(),
                );
            }
            let app = taxgate::app::App::open(config).map_err(|e| e.to_string())?;
            let app = std::sync::Arc::new(app);
            let bound = if upgrade {
                taxgate::server::Bound::inherit(app, &listen, admin.as_deref())
            } else {
                taxgate::server::Bound::bind(app, &listen, admin.as_deref())
            }
            .map_err(|e| format!("listen {listen}: {e}"))?;
            bound.announce();
            bound.run()
        }
        Command::Demo {
            listen,
            data_dir,
            outbox,
            realname_fixture,
        } => taxgate::demo::run::run(taxgate::demo::run::DemoArgs {
            listen,
            data_dir,
            outbox,
            realname_fixture,
        }),
        Command::Check { config } => taxgate::commands::check(&config),
        Command::Registry {
            command:
                RegistryCommand::Import {
                    data_dir,
                    config,
                    file,
                },
        } => taxgate::commands::import(data_dir, config, &file),
        Command::Audit {
            command:
                AuditCommand::Export {
                    data_dir,
                    config,
                    since,
                },
        } => taxgate::commands::audit_export(data_dir, config, since.as_deref()),
        Command::Store {
            command: StoreCommand::Copy { from, to },
        } => taxgate::commands::store_copy(&from, &to),
        Command::Dev {
            command: DevCommand::Pki { out, registry },
        } => {
            let registry = registry.unwrap_or_else(|| {
                taxgate::demo::run::repo_dir().join("config/demo-registry.yaml")
            });
            let pki = taxgate::demo::pki::ensure(&out, &registry)?;
            println!("demo certificates in {}", pki.dir.display());
            for (account, name) in &pki.enterprises {
                println!("  {name}: certs/{account}.pem (CA登录, SM2), certs/{account}-device.pem (税控设备登录, P-256)");
            }
            Ok(())
        }
        Command::Dev {
            command: DevCommand::Sign { key, challenge },
        } => {
            println!("{}", taxgate::demo::pki::sign(&key, &challenge)?);
            Ok(())
        }
    }
}
