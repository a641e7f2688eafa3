//! `ascent`: serve the site, or run an organizer command.

use std::path::PathBuf;

use anyhow::Context;
use ascent_server::admin::{self, PasswordSource};
use ascent_server::config::Config;
use ascent_server::telemetry;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ascent",
    version,
    about = "Ascent: an open competition that grows an open LLM in seven phases"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the site (the default).
    Serve,
    /// Organizer commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the database if needed and bring its schema up to date.
    Migrate,
    /// Manage phases.
    Phases {
        #[command(subcommand)]
        command: PhasesCommand,
    },
    /// Create an organizer account (or promote an existing one). The password comes from
    /// ASCENT_ORGANIZER_PASSWORD or the first line of standard input.
    CreateOrganizer {
        email: String,
        /// Public name; defaults to the email's local part.
        #[arg(long)]
        handle: Option<String>,
    },
    /// Held-out data.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Seed the demo: its contributors submit the checkpoints in DIR (default demo/)
    /// through the upload pipeline; the server's workers score them.
    SeedDemo {
        #[arg(default_value = "demo")]
        dir: PathBuf,
    },
    /// Remote workers.
    Worker {
        #[command(subcommand)]
        command: WorkerCommand,
    },
    /// Print a password reset link for a contributor who lost their password (once they
    /// have shown who they are): it sets a new password once within the hour and signs
    /// out every browser of the account. Recorded in the audit log with the reason.
    ResetLink {
        handle: String,
        /// Why the link is issued, e.g. how the contributor proved who they are.
        #[arg(long)]
        reason: String,
        /// This site's public address (default: http:// and ASCENT_ADDR).
        #[arg(long, value_name = "URL")]
        site: Option<String>,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Validate a token shard and make it a phase's held-out data.
    Add {
        #[arg(long)]
        phase: u8,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum WorkerCommand {
    /// Register a worker with the public half of its signing key (printed on the
    /// worker by `ascent-eval key`) and print its token (shown once).
    Create {
        name: String,
        #[arg(long, value_name = "HEX")]
        public_key: String,
        /// TEE attestation evidence for that key (JSON, from `ascent-eval attest` on the
        /// worker); verified before the worker is registered.
        #[arg(long, value_name = "FILE")]
        evidence: Option<PathBuf>,
    },
    /// Revoke a worker's token: its leases lapse and its results are refused.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum PhasesCommand {
    /// Validate a preset (presets/demo.toml, presets/real.toml) and load its seven phases.
    Load {
        preset: PathBuf,
        /// Overwrite phases that are already loaded (refused once there are submissions).
        #[arg(long)]
        replace: bool,
    },
    /// Validate a preset without loading it.
    Check { preset: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let cli = Cli::parse();
    let config = Config::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let pool = open_database(&config).await?;
            serve(pool, config).await
        }
        Command::Admin { command } => {
            println!("{}", run_admin(command, &config).await?);
            Ok(())
        }
    }
}

async fn run_admin(command: AdminCommand, config: &Config) -> anyhow::Result<String> {
    match command {
        AdminCommand::Phases {
            command: PhasesCommand::Check { preset },
        } => admin::check_preset(&preset),
        AdminCommand::Migrate => {
            open_database(config).await?;
            Ok("database is up to date".to_owned())
        }
        AdminCommand::Phases {
            command: PhasesCommand::Load { preset, replace },
        } => admin::load_phases(&open_database(config).await?, &preset, replace).await,
        AdminCommand::Data {
            command: DataCommand::Add { phase, file },
        } => {
            let storage = ascent_server::storage::Storage::new(&config.data_dir);
            admin::add_data(&open_database(config).await?, &storage, phase, &file).await
        }
        AdminCommand::SeedDemo { dir } => {
            ascent_server::demo::seed(config, &open_database(config).await?, &dir).await
        }
        AdminCommand::Worker {
            command:
                WorkerCommand::Create {
                    name,
                    public_key,
                    evidence,
                },
        } => {
            let evidence = evidence
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))
                })
                .transpose()?;
            admin::create_worker(
                &open_database(config).await?,
                &name,
                &public_key,
                evidence.as_deref(),
                config.dev_attestation,
            )
            .await
        }
        AdminCommand::Worker {
            command: WorkerCommand::Revoke { name },
        } => admin::revoke_worker(&open_database(config).await?, &name).await,
        AdminCommand::ResetLink {
            handle,
            reason,
            site,
        } => {
            // A wildcard bind address is no address to visit; the port still is.
            let site = site.unwrap_or_else(|| match config.addr.ip().is_unspecified() {
                true => format!("http://localhost:{}", config.addr.port()),
                false => format!("http://{}", config.addr),
            });
            admin::reset_link(&open_database(config).await?, &handle, &reason, &site).await
        }
        AdminCommand::CreateOrganizer { email, handle } => {
            let source = match std::env::var("ASCENT_ORGANIZER_PASSWORD") {
                Ok(password) if !password.is_empty() => PasswordSource::Env(password),
                _ => PasswordSource::Stdin,
            };
            admin::create_organizer(
                &open_database(config).await?,
                &email,
                handle.as_deref(),
                source,
            )
            .await
        }
    }
}

/// Opens the database (creating the data directory and file if needed) and migrates it.
async fn open_database(config: &Config) -> anyhow::Result<ascent_store::SqlitePool> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let pool = ascent_store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url))?;
    ascent_store::migrate(&pool).await?;
    Ok(pool)
}

async fn serve(pool: ascent_store::SqlitePool, config: Config) -> anyhow::Result<()> {
    let server = ascent_server::serve::start(pool, config).await?;
    shutdown_signal().await;
    server.stop().await
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
