//! The `gateway` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use migration::{MigrationStatus, Migrator, MigratorTrait};

use crate::app::Application;
use crate::config::Settings;
use crate::web::auth::{issue_token, Role};
use crate::{store, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about = "Webhook gateway for healthcare integrations"
)]
pub struct Cli {
    /// TOML configuration file; environment variables override it.
    #[arg(long, global = true, env = "GATEWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Send correctly signed example webhooks to a running gateway.
    Simulate {
        /// A provider of the registry (`gateway simulate --help` lists them).
        #[arg(value_parser = provider_names())]
        provider: String,
        /// The tenant's webhook URL, e.g. http://127.0.0.1:8080/webhooks/vectorcare/acme-health
        #[arg(long)]
        url: String,
        /// What signs: for providers that sign with a private key (VectorCare), the PEM file of
        /// the RSA private key whose public half the tenant's connection holds; for providers
        /// that sign with a shared secret, the secret itself as the tenant's connection holds
        /// it (`--secret` is the same option).
        #[arg(long, alias = "secret", value_name = "PEM_FILE|SECRET")]
        key: Option<String>,
        /// One of the provider's scenarios (`GET /api/v1/providers` lists them); default: its first.
        #[arg(long)]
        scenario: Option<String>,
    },
    /// Load test: start a gateway on a fresh database, send signed webhooks, wait for every
    /// delivery to a built-in sink, report. Exits non-zero on errors, lost or duplicated deliveries.
    Bench {
        /// Webhooks to send (half VectorCare, half Vital).
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Endpoints per tenant (each event is delivered to every one).
        #[arg(long, default_value_t = 1)]
        fanout: usize,
        /// Tenants the events are spread over (round robin).
        #[arg(long, default_value_t = 4)]
        tenants: usize,
        /// A PostgreSQL server URL (a throw-away database is created on it); SQLite by default.
        #[arg(long)]
        database_url: Option<String>,
        /// Write the report as JSON to this file too.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seconds to wait for the deliveries after the last acknowledgement.
        #[arg(long, default_value_t = 300)]
        wait: u64,
        /// Send at this many webhooks per second (open loop) instead of as fast as possible.
        #[arg(long)]
        rate: Option<f64>,
        /// A gateway setting for the run, e.g. `--set sqlite_synchronous=normal` (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Store this many expired events first: the purger works through them during the run
        /// (every second unless `--set purge_interval=...`).
        #[arg(long, default_value_t = 0)]
        purgeable: usize,
    },
    /// Manage API tokens (the first admin token comes from here).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Rotate the master key (README, "Rotating the master key").
    MasterKey {
        #[command(subcommand)]
        action: MasterKeyAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum MasterKeyAction {
    /// Print a new random master key (base64 of 32 bytes) on stdout.
    Generate,
    /// Re-seal every stored secret and data key under GATEWAY_MASTER_KEY, reading the old values
    /// with GATEWAY_MASTER_KEY_PREVIOUS; then the database names the new key. Safe to run while
    /// the gateway serves, and to run again.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Mint a token and print it on stdout (and nothing else there).
    Create {
        /// `admin` or `tenant`.
        #[arg(long, value_parser = ["admin", "tenant"])]
        role: String,
        /// For `--role tenant`: the tenant's id or slug.
        #[arg(long)]
        tenant: Option<String>,
        /// A name to recognise the token by in lists and the audit log.
        #[arg(long, default_value = "created on the command line")]
        name: String,
        /// Lifetime, e.g. 90d or 12h (default: token_default_ttl).
        #[arg(long)]
        ttl: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert the latest migrations.
    Down {
        /// How many to revert.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
}

/// Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let sink = match cli.command {
        None | Some(Command::Serve) => telemetry::Sink::Stdout,
        Some(_) => telemetry::Sink::Stderr,
    };
    telemetry::init(settings.log_format, &settings.log_filter, sink);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Migrate { action } => migrate(settings, action).await,
            Command::Token { action } => token(settings, action).await,
            Command::MasterKey { action } => master_key(settings, action).await,
            Command::Bench {
                events,
                concurrency,
                fanout,
                tenants,
                database_url,
                json,
                wait,
                rate,
                set,
                purgeable,
            } => {
                bench(
                    crate::bench::Options {
                        events,
                        concurrency: concurrency.max(1),
                        fanout: fanout.max(1),
                        tenants: tenants.max(1),
                        database_url,
                        wait: std::time::Duration::from_secs(wait),
                        rate,
                        purgeable,
                        set: set
                            .iter()
                            .filter_map(|kv| {
                                kv.split_once('=')
                                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                            })
                            .collect(),
                    },
                    json,
                )
                .await
            }
            Command::Simulate {
                provider,
                url,
                key,
                scenario,
            } => simulate(&provider, &url, key, scenario.as_deref()).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "gateway stopped with an error");
            eprintln!("gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Handlers are installed before the port is bound and announced: a SIGTERM that arrives right
    // after "listening" must stop the process gracefully, not kill it.
    let signals = Signals::install()?;
    let app = Application::build(settings).await?;
    let shutdown = app.state().shutdown.clone();
    tokio::spawn(async move {
        let signal = signals.wait().await;
        tracing::info!(
            signal,
            "shutting down: no new connections, finishing requests in flight"
        );
        shutdown.cancel();
    });
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
                int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

async fn bench(opts: crate::bench::Options, json: Option<PathBuf>) -> anyhow::Result<()> {
    let report = crate::bench::run(opts).await?;
    print!("{}", crate::bench::table(&report));
    let text = serde_json::to_string(&report)?;
    println!("{text}");
    if let Some(path) = json {
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    if report.errors > 0 || report.lost > 0 || report.duplicated > 0 {
        anyhow::bail!(
            "{} errors, {} lost, {} duplicated deliveries",
            report.errors,
            report.lost,
            report.duplicated
        );
    }
    Ok(())
}

async fn simulate(
    provider: &str,
    url: &str,
    key: Option<String>,
    scenario: Option<&str>,
) -> anyhow::Result<()> {
    use crate::providers::{KeyKind, Provider};
    let provider = Provider::parse(provider).map_err(|e| anyhow::anyhow!(e))?;
    let plugin = provider.plugin();
    let material = match (plugin.credentials().keys.kind, key) {
        (KeyKind::RsaPublicKey, Some(path)) => {
            std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?
        }
        (KeyKind::RsaPublicKey, None) => {
            anyhow::bail!("{provider} needs --key <private key PEM file>")
        }
        (_, Some(secret)) => secret,
        (_, None) => anyhow::bail!("{provider} needs --key <its signing secret>"),
    };
    let scenario = scenario
        .or_else(|| plugin.scenarios().first().map(|(n, _)| *n))
        .unwrap_or_default();
    crate::simulate::run(provider, url, &material, scenario).await
}

/// The registry's providers, for the command line.
fn provider_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::providers::Provider::all().map(|p| p.as_str()))
}

async fn master_key(settings: Settings, action: MasterKeyAction) -> anyhow::Result<()> {
    match action {
        MasterKeyAction::Generate => {
            println!("{}", crate::crypto::MasterKey::generate().to_base64());
            Ok(())
        }
        MasterKeyAction::Rotate => {
            let keys = crate::app::Keys::load(&settings)?;
            if keys.previous.is_none() {
                anyhow::bail!(
                    "set GATEWAY_MASTER_KEY_PREVIOUS (or _FILE) to the key being replaced, and \
                     GATEWAY_MASTER_KEY to the new one"
                );
            }
            let db = store::connect(&settings).await?;
            keys.check(&db).await?;
            let done = store::rekey::rotate(&db, &keys.cipher, &keys.master).await?;
            eprintln!("re-sealed under the new master key: {done}");
            eprintln!(
                "the database now names the new key; remove GATEWAY_MASTER_KEY_PREVIOUS and restart the replicas one by one"
            );
            Ok(())
        }
    }
}

async fn token(settings: Settings, action: TokenAction) -> anyhow::Result<()> {
    let TokenAction::Create {
        role,
        tenant,
        name,
        ttl,
    } = action;
    let keys = crate::app::Keys::load(&settings)?;
    let db = store::connect(&settings).await?;
    if settings.migrate_on_start {
        store::migrate_up(&db).await?;
    }
    keys.check(&db).await?;
    let role = match (role.as_str(), tenant) {
        ("admin", None) => Role::Admin,
        ("tenant", Some(reference)) => {
            let t = crate::store::tenant::find_by_ref(&db, &reference)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no tenant `{reference}`"))?;
            Role::Tenant(t.id)
        }
        ("admin", Some(_)) => anyhow::bail!("--tenant goes only with --role tenant"),
        _ => anyhow::bail!("--role tenant needs --tenant <id or slug>"),
    };
    let ttl = match ttl {
        Some(text) => {
            humantime::parse_duration(&text).map_err(|e| anyhow::anyhow!("--ttl `{text}`: {e}"))?
        }
        None => settings.token_default_ttl,
    };
    let jwt = keys.token_keys(&db).await?;
    let (row, signed) = issue_token(&db, &jwt, &name, &role, ttl, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "created {} token {} ({}), expires {}",
        row.role, row.id, row.name, row.expires_at
    );
    println!("{signed}");
    db.close().await.ok();
    Ok(())
}

async fn migrate(settings: Settings, action: MigrateAction) -> anyhow::Result<()> {
    let db = store::connect(&settings).await?;
    match action {
        MigrateAction::Up => {
            store::migrate_up(&db).await?;
            println!("all migrations applied");
        }
        MigrateAction::Down { steps } => {
            Migrator::down(&db, Some(steps))
                .await
                .context("reverting migrations")?;
            println!("reverted {steps} migration(s)");
        }
        MigrateAction::Status => {
            let all = Migrator::get_migration_with_status_read_only(&db)
                .await
                .context("reading migration status")?;
            for m in &all {
                let status = match m.status() {
                    MigrationStatus::Applied => "applied",
                    MigrationStatus::Pending => "pending",
                };
                println!("{status:8} {}", m.name());
            }
        }
    }
    db.close().await.ok();
    Ok(())
}
