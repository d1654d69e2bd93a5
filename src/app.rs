//! The top: wires the layers together (state, outbox, hand-off, delivery workers) and runs the
//! HTTP server on a pre-bound listener (tests bind port 0 and read the port back).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::HttpServer;
use anyhow::Context;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{MasterKeySource, Settings};
use crate::crypto::{Cipher, MasterKey};
use crate::delivery::queue::Queue;
use crate::delivery::{self, Capacity, Dispatcher};
use crate::handoff::Handoff;
use crate::ingest::connections::ConnectionCache;
use crate::ingest::{Ingest, Limits};
use crate::metrics::Metrics;
use crate::providers::client::ProviderClient;
use crate::rate_limit::KeyedLimiter;
use crate::store::{self, WriteGate};
use crate::web::auth::jwt::JwtKeys;
use crate::web::{build_app, AppState};
use crate::{outbox, tls};

fn load_key(source: &MasterKeySource) -> anyhow::Result<MasterKey> {
    match source {
        MasterKeySource::Inline(text) => MasterKey::from_base64(text.expose_secret())
            .map_err(|reason| anyhow::anyhow!("GATEWAY_MASTER_KEY {reason}")),
        MasterKeySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading master key file {}", path.display()))?;
            MasterKey::from_base64(&text)
                .map_err(|reason| anyhow::anyhow!("master key file {}: {reason}", path.display()))
        }
        MasterKeySource::Generated(path) => {
            let (key, created) = MasterKey::load_or_generate(path)
                .with_context(|| format!("master key file {}", path.display()))?;
            if created {
                tracing::warn!(
                    path = %path.display(),
                    "generated a new master key; back it up with the database: without it no stored secret can be read"
                );
            }
            Ok(key)
        }
    }
}

/// The master key, the previous one during a rotation, and the cipher that seals with the first
/// and opens with either.
pub struct Keys {
    pub master: MasterKey,
    pub previous: Option<MasterKey>,
    pub cipher: Arc<Cipher>,
}

impl Keys {
    /// The configured keys, without the database.
    pub fn load(settings: &Settings) -> anyhow::Result<Self> {
        let master = load_key(&settings.master_key)?;
        // The key being rotated away from, when one is configured.
        let previous = settings
            .master_key_previous
            .as_ref()
            .map(|source| load_key(source).context("GATEWAY_MASTER_KEY_PREVIOUS"))
            .transpose()?;
        let cipher = Arc::new(Cipher::rotating(&master, previous.as_ref()));
        Ok(Self {
            master,
            previous,
            cipher,
        })
    }

    /// Refuses keys other than the one the database was written with (or, during a rotation,
    /// is being moved from).
    pub async fn check(&self, db: &DatabaseConnection) -> anyhow::Result<()> {
        store::instance::check_master_key(db, &self.master, self.previous.as_ref()).await
    }

    /// The API token keys, as stored (sealed) in the database.
    pub async fn token_keys(&self, db: &DatabaseConnection) -> anyhow::Result<JwtKeys> {
        let key = store::instance::token_key(
            db,
            &self.cipher,
            [Some(&self.master), self.previous.as_ref()],
        )
        .await?;
        Ok(JwtKeys::from_secret(&key))
    }
}

/// Assembles the state the handlers see and the pipeline behind it: the outbox (group commit)
/// with its hand-off to this process's delivery workers, which record their outcomes through
/// the same outbox.
pub fn assemble(
    db: DatabaseConnection,
    gate: WriteGate,
    settings: Settings,
    keys: Keys,
    jwt: JwtKeys,
) -> AppState {
    let wake = Arc::new(Notify::new());
    let cipher = keys.cipher.clone();
    let metrics = Arc::new(Metrics::default());
    let capacity = Arc::new(Capacity::new(
        settings.delivery.concurrency,
        settings.delivery.endpoint_concurrency as usize,
    ));
    let worker_id = delivery::new_worker_id();
    let lease = delivery::lease_for(&settings.delivery);
    let (handoff, handed) = Handoff::new(
        capacity.clone(),
        worker_id.clone(),
        lease,
        settings.delivery.enabled,
        wake.clone(),
    );
    let outbox = outbox::Writer::start(gate.clone(), settings.ingest_batch_max, handoff);
    let dispatcher = Dispatcher::new(
        Queue::new(db.clone(), cipher.clone(), gate, worker_id, lease),
        settings.delivery.clone(),
        delivery::Parts {
            cipher: cipher.clone(),
            metrics: metrics.clone(),
            notify: wake,
            recorder: Arc::new(outbox.clone()),
            capacity,
            handed,
            api_url: settings.public_url.to_string(),
        },
    );
    let ingest = Ingest::new(
        db.clone(),
        cipher.clone(),
        ConnectionCache::new(settings.connection_cache_ttl),
        Limits {
            per_tenant: KeyedLimiter::new(
                settings.ingest_rate_limit_per_second,
                settings.ingest_rate_limit_burst,
            ),
            failures_per_address: KeyedLimiter::per_minute(
                settings.ingest_failed_verifications_per_minute,
                settings.ingest_failed_verifications_burst,
            ),
        },
        outbox,
        metrics.clone(),
    );
    let monitor = delivery::monitor::Monitor::new(
        db.clone(),
        settings.monitor.clone(),
        dispatcher.clone(),
        metrics.clone(),
        settings.delivery.timeout,
    );
    AppState {
        ingest: Arc::new(ingest),
        delivery: dispatcher,
        monitor,
        verification_watch: Default::default(),
        db,
        cipher,
        jwt: Arc::new(jwt),
        admin_limiter: Arc::new(KeyedLimiter::new(
            settings.admin_rate_limit_per_second,
            settings.admin_rate_limit_burst,
        )),
        metrics,
        providers: Arc::new(ProviderClient::new(
            settings.provider_timeout,
            settings.delivery.outbound_proxy.as_ref(),
        )),
        settings: Arc::new(settings),
        master_key: Arc::new(keys.master),
        shutdown: CancellationToken::new(),
    }
}

pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    state: AppState,
}

impl Application {
    /// Binds `settings.listen` and builds everything.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("binding {} (GATEWAY_LISTEN)", settings.listen))?;
        Self::build_with_listener(settings, listener).await
    }

    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let keys = Keys::load(&settings)?;
        let db = store::connect(&settings).await?;
        if settings.migrate_on_start {
            store::migrate_up(&db).await?;
        }
        let jwt = match store::readiness(&db).await {
            Ok(()) => {
                keys.check(&db).await?;
                let sealed = store::endpoint_headers::seal_plain(&db, &keys.cipher).await?;
                if sealed > 0 {
                    tracing::info!(
                        endpoints = sealed,
                        "sealed endpoint headers stored in plain text"
                    );
                }
                keys.token_keys(&db).await?
            }
            // Without the schema there is nothing to check yet; /readyz reports why.
            Err(reason) => {
                tracing::warn!(reason, "starting with an incomplete schema");
                JwtKeys::new(&keys.master)
            }
        };
        let gate = WriteGate::open(&settings, &db).await?;
        let state = assemble(db, gate.clone(), settings, keys, jwt);
        let listen_url = match &state.settings.database {
            crate::config::DatabaseTarget::Postgres { url } => Some(url.expose_secret().to_owned()),
            crate::config::DatabaseTarget::Sqlite { .. } => None,
        };
        state.delivery.spawn(listen_url, state.shutdown.clone());
        if state.settings.delivery.enabled {
            state.monitor.spawn(state.shutdown.clone());
        }
        store::spawn_checkpointer(&state.settings, &gate, state.shutdown.clone())?;
        store::purge::spawn_purger(
            state.db.clone(),
            gate,
            state.cipher.clone(),
            state.settings.retention.clone(),
            state.shutdown.clone(),
        );
        let local_addr = listener.local_addr()?;
        let server = serve(listener, state.clone())?;
        Ok(Self {
            server,
            local_addr,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs until `state.shutdown` is cancelled, then stops gracefully: no new connections,
    /// requests in flight finish (up to `shutdown_timeout`).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let shutdown = self.state.shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        let result = self.server.await;
        self.state.shutdown.cancel();
        self.state.db.clone().close().await.ok();
        result.context("HTTP server")
    }
}

fn serve(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    let settings = state.settings.clone();
    let app_state = state.clone();
    let server = HttpServer::new(move || build_app(app_state.clone()))
        .workers(settings.http_workers)
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        // Signals are handled by the caller, so that SIGINT and SIGTERM both stop gracefully.
        .disable_signals();
    let (scheme, server) = match &settings.tls {
        Some(tls_settings) => {
            let (config, resolver) = tls::server_config(tls_settings)?;
            tls::spawn_reloader(tls_settings.clone(), resolver, state.shutdown.clone());
            ("https", server.listen_rustls_0_23(listener, config)?)
        }
        None => ("http", server.listen(listener)?),
    };
    for addr in server.addrs() {
        tracing::info!(
            addr = %addr,
            scheme,
            public_url = %settings.public_url,
            database = store::backend_name(&state.db),
            "listening"
        );
    }
    Ok(server.run())
}
