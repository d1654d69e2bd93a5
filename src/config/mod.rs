//! Configuration in layers: built-in defaults, an optional TOML file, then environment variables.
//!
//! Every setting has one flat key. In a TOML file it is written as is (`listen = "0.0.0.0:8080"`),
//! in the environment with the `GATEWAY_` prefix in upper case (`GATEWAY_LISTEN`). `DATABASE_URL`
//! is also read without the prefix because every tool around a database already speaks it.
//!
//! Loading happens in two steps so that a bad value names its setting: [`RawSettings`] is what the
//! layers say, as text and numbers; [`Settings::from_raw`] parses it into typed values or fails
//! with a [`ConfigError`] that says which setting is wrong and why.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

mod delivery;
mod monitor;
mod retention;
pub use delivery::DeliverySettings;
pub use monitor::MonitorSettings;
pub use retention::{RetentionSettings, RETENTION_DAYS};

/// What the configuration layers say, before validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSettings {
    pub listen: String,
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub database_max_connections: Option<u32>,
    pub sqlite_synchronous: String,
    pub migrate_on_start: bool,
    pub master_key: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub master_key_previous: Option<String>,
    pub master_key_previous_file: Option<PathBuf>,
    pub log_format: String,
    pub log: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_reload_interval: String,
    pub http_workers: Option<usize>,
    pub max_body_bytes: usize,
    pub shutdown_timeout: String,
    pub admin_rate_limit_per_second: u32,
    pub admin_rate_limit_burst: u32,
    pub allow_http_endpoints: bool,
    pub endpoint_secret_grace: String,
    pub token_default_ttl: String,
    pub webhook_max_body_bytes: usize,
    pub ingest_rate_limit_per_second: u32,
    pub ingest_rate_limit_burst: u32,
    pub ingest_failed_verifications_per_minute: u32,
    pub ingest_failed_verifications_burst: u32,
    pub trusted_proxy_header: Option<String>,
    pub connection_cache_ttl: String,
    pub ingest_batch_max: usize,
    pub provider_timeout: String,
    pub retention_days: u32,
    pub purge_interval: String,
    pub purge_batch: u64,
    pub delivery_enabled: bool,
    pub delivery_concurrency: usize,
    pub delivery_endpoint_concurrency: u32,
    pub delivery_timeout: String,
    pub delivery_retry_schedule: String,
    pub delivery_jitter: f64,
    pub delivery_retry_after_max: String,
    pub delivery_disable_after: String,
    pub delivery_poll_interval: String,
    pub delivery_lease: String,
    pub ssrf_guard: bool,
    pub ssrf_allowlist: String,
    /// `host=address` pairs, comma-separated: these names resolve to these addresses for
    /// outbound calls (like curl's `--resolve`), still under the SSRF guard.
    pub ssrf_resolve: String,
    /// An HTTP(S) proxy for every outbound call (callbacks and provider calls); empty: none.
    /// The environment's `HTTP_PROXY`/`HTTPS_PROXY` are never used.
    pub outbound_proxy: String,
    pub monitor_interval: String,
    pub pull_max_wait: String,
    pub operator_url: String,
    pub operator_secret: String,
    pub alert_failures: u32,
    pub alert_backlog: u64,
    pub alert_oldest_pending: String,
    pub alert_verification_failures: u32,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: None,
            sqlite_synchronous: "full".into(),
            migrate_on_start: true,
            master_key: None,
            master_key_file: None,
            master_key_previous: None,
            master_key_previous_file: None,
            log_format: "auto".into(),
            log: None,
            tls_cert: None,
            tls_key: None,
            tls_reload_interval: "30s".into(),
            http_workers: None,
            max_body_bytes: 1024 * 1024,
            shutdown_timeout: "30s".into(),
            admin_rate_limit_per_second: 20,
            admin_rate_limit_burst: 100,
            allow_http_endpoints: false,
            endpoint_secret_grace: "24h".into(),
            token_default_ttl: "90d".into(),
            webhook_max_body_bytes: 1024 * 1024,
            ingest_rate_limit_per_second: 1000,
            ingest_rate_limit_burst: 5000,
            ingest_failed_verifications_per_minute: 60,
            ingest_failed_verifications_burst: 20,
            trusted_proxy_header: None,
            connection_cache_ttl: "5s".into(),
            ingest_batch_max: 512,
            retention_days: 30,
            purge_interval: "60s".into(),
            purge_batch: 500,
            provider_timeout: "15s".into(),
            delivery_enabled: true,
            delivery_concurrency: 128,
            delivery_endpoint_concurrency: 10,
            delivery_timeout: "15s".into(),
            delivery_retry_schedule: "0s,5s,5m,30m,2h,5h,10h,10h".into(),
            delivery_jitter: 0.2,
            delivery_retry_after_max: "1h".into(),
            delivery_disable_after: "5d".into(),
            delivery_poll_interval: "1s".into(),
            delivery_lease: "60s".into(),
            ssrf_guard: true,
            ssrf_allowlist: String::new(),
            ssrf_resolve: String::new(),
            outbound_proxy: String::new(),
            monitor_interval: "5s".into(),
            pull_max_wait: "60s".into(),
            operator_url: String::new(),
            operator_secret: String::new(),
            alert_failures: 5,
            alert_backlog: 1000,
            alert_oldest_pending: "15m".into(),
            alert_verification_failures: 20,
        }
    }
}

/// A setting that is missing or wrong; the message names it and where its value came from
/// (the config file, or the environment variable).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting `{key}` ({origin}): {reason}")]
    Invalid {
        key: &'static str,
        origin: String,
        reason: String,
    },
    #[error("configuration could not be read: {0}")]
    Load(String),
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        origin: format!("env {}", env_name(key)),
        reason: reason.into(),
    }
}

/// Where `key`'s value came from: the file that set it, the environment, or the default.
fn origin(figment: &Figment, key: &str) -> String {
    let env = env_name(key);
    match figment.find_metadata(key) {
        Some(m) => match &m.source {
            Some(figment::Source::File(path)) => format!("in {}", path.display()),
            _ if m.name.contains("environment") => format!("env {env}"),
            _ => format!("the default; set it with env {env}"),
        },
        None => format!("env {env}"),
    }
}

/// The environment variable that sets `key`.
pub fn env_name(key: &str) -> String {
    if key == "database_url" {
        "DATABASE_URL".into()
    } else {
        format!("GATEWAY_{}", key.to_ascii_uppercase())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    Full,
    Normal,
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub reload_interval: Duration,
}

/// Where the database lives; the SQLite default is created on first run.
#[derive(Debug, Clone)]
pub enum DatabaseTarget {
    Sqlite { url: String, embedded_default: bool },
    Postgres { url: SecretString },
}

/// How the master key is obtained.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// Given inline (base64 of 32 bytes), e.g. from a secret store through the environment.
    Inline(SecretString),
    /// Read from a file holding the base64 text.
    File(PathBuf),
    /// Read from `<data_dir>/master.key`, generated there on first run if missing.
    Generated(PathBuf),
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub public_url: Url,
    pub data_dir: PathBuf,
    pub database: DatabaseTarget,
    pub database_max_connections: u32,
    pub sqlite_synchronous: SqliteSync,
    pub migrate_on_start: bool,
    pub master_key: MasterKeySource,
    /// The key being rotated away from: values sealed under it still open (README, "Rotating
    /// the master key").
    pub master_key_previous: Option<MasterKeySource>,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub tls: Option<TlsSettings>,
    pub http_workers: usize,
    pub max_body_bytes: usize,
    pub shutdown_timeout: Duration,
    pub admin_rate_limit_per_second: NonZeroU32,
    pub admin_rate_limit_burst: NonZeroU32,
    pub allow_http_endpoints: bool,
    pub endpoint_secret_grace: Duration,
    pub token_default_ttl: Duration,
    pub webhook_max_body_bytes: usize,
    pub ingest_rate_limit_per_second: NonZeroU32,
    pub ingest_rate_limit_burst: NonZeroU32,
    /// Failed verifications allowed per source address.
    pub ingest_failed_verifications_per_minute: NonZeroU32,
    pub ingest_failed_verifications_burst: NonZeroU32,
    /// Header holding the client address, set by a trusted proxy (rightmost entry is used).
    pub trusted_proxy_header: Option<actix_web::http::header::HeaderName>,
    pub connection_cache_ttl: Duration,
    pub ingest_batch_max: usize,
    /// How long a call to a provider (token or API) may take.
    pub provider_timeout: Duration,
    pub delivery: DeliverySettings,
    pub retention: RetentionSettings,
    pub monitor: MonitorSettings,
}

impl Settings {
    /// Reads defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawSettings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .merge(Env::prefixed("GATEWAY_").ignore(&["config"]));
        let raw: RawSettings = figment
            .extract()
            .map_err(|e| ConfigError::Load(describe_figment_error(&figment, e)))?;
        Self::from_raw(raw).map_err(|e| match e {
            ConfigError::Invalid { key, reason, .. } => ConfigError::Invalid {
                key,
                origin: origin(&figment, key),
                reason,
            },
            other => other,
        })
    }

    pub fn from_raw(raw: RawSettings) -> Result<Self, ConfigError> {
        let delivery = DeliverySettings::from_raw(&raw)?;
        let retention = RetentionSettings::from_raw(&raw)?;
        let monitor = MonitorSettings::from_raw(&raw)?;
        let listen: SocketAddr = raw.listen.trim().parse().map_err(|e| {
            invalid(
                "listen",
                format!("`{}` is not an address and port ({e})", raw.listen),
            )
        })?;

        let tls = match (raw.tls_cert, raw.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                for (k, p) in [("tls_cert", &cert), ("tls_key", &key)] {
                    if !p.is_file() {
                        return Err(invalid(
                            k,
                            format!("{} is not a readable file", p.display()),
                        ));
                    }
                }
                Some(TlsSettings {
                    cert,
                    key,
                    reload_interval: parse_duration(
                        "tls_reload_interval",
                        &raw.tls_reload_interval,
                    )?,
                })
            }
            (Some(_), None) => {
                return Err(invalid("tls_key", "tls_cert is set but tls_key is not"))
            }
            (None, Some(_)) => {
                return Err(invalid("tls_cert", "tls_key is set but tls_cert is not"))
            }
        };

        let public_url = match raw.public_url.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => parse_public_url(s)?,
            _ => {
                let scheme = if tls.is_some() { "https" } else { "http" };
                parse_public_url(&format!("{scheme}://{listen}"))?
            }
        };

        let database = match raw.database_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => parse_database_url(url)?,
            _ => {
                let path = raw.data_dir.join("gateway.db");
                DatabaseTarget::Sqlite {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    embedded_default: true,
                }
            }
        };
        // SQLite writes through one connection at a time anyway, and each pooled connection keeps
        // its own page and statement caches: a small pool is as fast and much leaner.
        let database_max_connections = match (raw.database_max_connections, &database) {
            (Some(0), _) => return Err(invalid("database_max_connections", "must be at least 1")),
            (Some(n), _) => n,
            (None, DatabaseTarget::Sqlite { .. }) => 4,
            (None, _) => 16,
        };

        let sqlite_synchronous = match raw.sqlite_synchronous.to_ascii_lowercase().as_str() {
            "full" => SqliteSync::Full,
            "normal" => SqliteSync::Normal,
            other => {
                return Err(invalid(
                    "sqlite_synchronous",
                    format!(
                        "`{other}` is not one of full, normal (OFF would lose acknowledged events)"
                    ),
                ))
            }
        };

        let master_key_previous = match (raw.master_key_previous, raw.master_key_previous_file) {
            (Some(k), _) if !k.trim().is_empty() => {
                crate::crypto::MasterKey::from_base64(k.trim())
                    .map_err(|reason| invalid("master_key_previous", reason))?;
                Some(MasterKeySource::Inline(SecretString::from(
                    k.trim().to_owned(),
                )))
            }
            (_, Some(path)) => Some(MasterKeySource::File(path)),
            _ => None,
        };
        let master_key = match (raw.master_key, raw.master_key_file) {
            (Some(k), _) if !k.trim().is_empty() => {
                crate::crypto::MasterKey::from_base64(k.trim())
                    .map_err(|reason| invalid("master_key", reason))?;
                MasterKeySource::Inline(SecretString::from(k.trim().to_owned()))
            }
            (_, Some(path)) => MasterKeySource::File(path),
            _ => match &database {
                DatabaseTarget::Sqlite { .. } => {
                    MasterKeySource::Generated(raw.data_dir.join("master.key"))
                }
                DatabaseTarget::Postgres { .. } => {
                    return Err(invalid(
                        "master_key",
                        "required with PostgreSQL so that every replica encrypts and signs with the same key \
                         (generate one with `openssl rand -base64 32`)",
                    ))
                }
            },
        };

        let log_format = match raw.log_format.to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "pretty" | "text" => LogFormat::Pretty,
            "auto" => {
                use is_terminal::IsTerminal;
                if std::io::stdout().is_terminal() {
                    LogFormat::Pretty
                } else {
                    LogFormat::Json
                }
            }
            other => {
                return Err(invalid(
                    "log_format",
                    format!("`{other}` is not one of auto, json, pretty"),
                ))
            }
        };
        let log_filter = raw
            .log
            .or_else(|| std::env::var("RUST_LOG").ok())
            .unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| invalid("log", format!("`{log_filter}` is not a log filter ({e})")))?;

        let http_workers = match raw.http_workers {
            Some(0) => return Err(invalid("http_workers", "must be at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        if raw.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024 bytes"));
        }

        Ok(Settings {
            listen,
            public_url,
            data_dir: raw.data_dir,
            database,
            database_max_connections,
            sqlite_synchronous,
            migrate_on_start: raw.migrate_on_start,
            master_key,
            master_key_previous,
            log_format,
            log_filter,
            tls,
            http_workers,
            max_body_bytes: raw.max_body_bytes,
            shutdown_timeout: parse_duration("shutdown_timeout", &raw.shutdown_timeout)?,
            admin_rate_limit_per_second: NonZeroU32::new(raw.admin_rate_limit_per_second)
                .ok_or_else(|| invalid("admin_rate_limit_per_second", "must be at least 1"))?,
            admin_rate_limit_burst: NonZeroU32::new(raw.admin_rate_limit_burst)
                .ok_or_else(|| invalid("admin_rate_limit_burst", "must be at least 1"))?,
            allow_http_endpoints: raw.allow_http_endpoints,
            endpoint_secret_grace: parse_duration(
                "endpoint_secret_grace",
                &raw.endpoint_secret_grace,
            )?,
            token_default_ttl: parse_duration("token_default_ttl", &raw.token_default_ttl)?,
            webhook_max_body_bytes: match raw.webhook_max_body_bytes {
                n if n < 1024 => {
                    return Err(invalid(
                        "webhook_max_body_bytes",
                        "must be at least 1024 bytes",
                    ))
                }
                n => n,
            },
            ingest_rate_limit_per_second: NonZeroU32::new(raw.ingest_rate_limit_per_second)
                .ok_or_else(|| invalid("ingest_rate_limit_per_second", "must be at least 1"))?,
            ingest_rate_limit_burst: NonZeroU32::new(raw.ingest_rate_limit_burst)
                .ok_or_else(|| invalid("ingest_rate_limit_burst", "must be at least 1"))?,
            ingest_failed_verifications_per_minute: NonZeroU32::new(
                raw.ingest_failed_verifications_per_minute,
            )
            .ok_or_else(|| {
                invalid(
                    "ingest_failed_verifications_per_minute",
                    "must be at least 1",
                )
            })?,
            ingest_failed_verifications_burst: NonZeroU32::new(
                raw.ingest_failed_verifications_burst,
            )
            .ok_or_else(|| invalid("ingest_failed_verifications_burst", "must be at least 1"))?,
            trusted_proxy_header: match raw.trusted_proxy_header.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(h) => Some(
                    actix_web::http::header::HeaderName::from_bytes(
                        h.to_ascii_lowercase().as_bytes(),
                    )
                    .map_err(|_| {
                        invalid(
                            "trusted_proxy_header",
                            format!("`{h}` is not a header name"),
                        )
                    })?,
                ),
            },
            connection_cache_ttl: parse_duration(
                "connection_cache_ttl",
                &raw.connection_cache_ttl,
            )?,
            ingest_batch_max: match raw.ingest_batch_max {
                0 => return Err(invalid("ingest_batch_max", "must be at least 1")),
                n => n,
            },
            provider_timeout: parse_duration("provider_timeout", &raw.provider_timeout)?,
            delivery,
            retention,
            monitor,
        })
    }
}

fn parse_duration(key: &'static str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        invalid(
            key,
            format!("`{text}` is not a duration like 30s or 5m ({e})"),
        )
    })
}

fn parse_public_url(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| {
        invalid(
            "public_url",
            format!("`{text}` is not an absolute URL ({e})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("public_url", "must start with http:// or https://"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("public_url", "must not carry a query or fragment"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("public_url", "must name a host"));
    }
    Ok(url)
}

fn parse_database_url(text: &str) -> Result<DatabaseTarget, ConfigError> {
    if text.starts_with("sqlite:") {
        Ok(DatabaseTarget::Sqlite {
            url: text.to_owned(),
            embedded_default: false,
        })
    } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        Url::parse(text)
            .map_err(|e| invalid("database_url", format!("not a valid PostgreSQL URL ({e})")))?;
        Ok(DatabaseTarget::Postgres {
            url: SecretString::from(text.to_owned()),
        })
    } else {
        Err(invalid(
            "database_url",
            "must start with sqlite: or postgres:// (the only two supported backends)",
        ))
    }
}

/// Figment names the key in its message; keep it, in one line.
fn describe_figment_error(figment: &Figment, e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            if key.is_empty() {
                e.to_string()
            } else {
                format!("setting `{key}` ({}): {}", origin(figment, &key), e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests;
