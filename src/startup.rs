//! Builds the application: state, routes, middleware, and the HTTP server on a pre-bound
//! listener (tests bind port 0 and read the port back).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::auth::jwt::JwtKeys;
use crate::config::{MasterKeySource, Settings};
use crate::crypto::{Cipher, MasterKey};
use crate::delivery::handoff::{Capacity, Handoff};
use crate::delivery::Dispatcher;
use crate::domain::{Provider, TenantId, TokenId};
use crate::ingest::connections::ConnectionCache;
use crate::metrics::Metrics;
use crate::rate_limit::KeyedLimiter;
use crate::writer::Writer;
use crate::{admin, health, http, ingest, metrics, openapi, store, tls};
use tokio::sync::Notify;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub master_key: Arc<MasterKey>,
    /// Seals and opens secrets at rest.
    pub cipher: Arc<Cipher>,
    pub jwt: Arc<JwtKeys>,
    pub admin_limiter: Arc<KeyedLimiter<TokenId>>,
    pub ingest_limiter: Arc<KeyedLimiter<(TenantId, Provider)>>,
    pub connections: Arc<ConnectionCache>,
    pub ingest: Writer,
    pub metrics: Arc<Metrics>,
    /// Wakes the delivery workers when new deliveries are committed.
    pub delivery: Arc<Dispatcher>,
    /// Calls to the providers on tenants' behalf, with the OAuth2 token cache.
    pub providers: Arc<crate::actions::client::ProviderClient>,
    /// Cancelled once when the process shuts down; background tasks watch it.
    pub shutdown: CancellationToken,
}

/// Every route of the gateway. Used by the server, by `actix_web::test`, and by the OpenAPI dump.
pub fn configure(cfg: &mut ServiceConfig) {
    health::configure(cfg);
    metrics::configure(cfg);
    ingest::configure(cfg);
    cfg.service(
        utoipa_actix_web::scope("/api/v1")
            .wrap(from_fn(admin::audit_mutations))
            .configure(admin::configure)
            .configure(crate::actions::configure),
    );
}

/// The complete application with its middleware, ready for `HttpServer` or `actix_web::test`.
pub fn build_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.settings.max_body_bytes;
    let (app, api) = App::new()
        .into_utoipa_app()
        .openapi(openapi::base())
        .app_data(web::Data::new(state))
        .app_data(http::json_config(limit))
        .app_data(http::path_config())
        .app_data(http::query_config())
        .app_data(web::PayloadConfig::new(limit))
        .configure(configure)
        .split_for_parts();
    app.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", api))
        .configure(crate::admin_ui::configure)
        .wrap(ErrorHandlers::new().default_handler(http::problem_fallback))
        .wrap(from_fn(http::request_context))
}

pub fn load_master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    match &settings.master_key {
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

impl AppState {
    pub fn new(
        db: DatabaseConnection,
        gate: crate::store::WriteGate,
        settings: Settings,
        master_key: MasterKey,
    ) -> Self {
        let wake = Arc::new(Notify::new());
        let cipher = Arc::new(Cipher::new(&master_key));
        let metrics = Arc::new(Metrics::default());
        let capacity = Arc::new(Capacity::new(
            settings.delivery.concurrency,
            settings.delivery.endpoint_concurrency as usize,
        ));
        let worker_id = crate::delivery::new_worker_id();
        let (handoff, handed) = Handoff::new(
            capacity.clone(),
            worker_id.clone(),
            crate::delivery::lease_for(&settings.delivery),
            settings.delivery.enabled,
            wake.clone(),
        );
        let writer = Writer::start(gate.clone(), settings.ingest_batch_max, handoff);
        Self {
            ingest: writer.clone(),
            delivery: Dispatcher::new(
                db.clone(),
                settings.delivery.clone(),
                crate::delivery::Parts {
                    cipher: cipher.clone(),
                    metrics: metrics.clone(),
                    notify: wake,
                    gate,
                    writer,
                    capacity,
                    worker_id,
                    handed,
                },
            ),
            db,
            cipher,
            jwt: Arc::new(JwtKeys::new(&master_key)),
            admin_limiter: Arc::new(KeyedLimiter::new(
                settings.admin_rate_limit_per_second,
                settings.admin_rate_limit_burst,
            )),
            ingest_limiter: Arc::new(KeyedLimiter::new(
                settings.ingest_rate_limit_per_second,
                settings.ingest_rate_limit_burst,
            )),
            connections: Arc::new(ConnectionCache::new(settings.connection_cache_ttl)),
            metrics,
            providers: Arc::new(crate::actions::client::ProviderClient::new(
                settings.provider_timeout,
            )),
            settings: Arc::new(settings),
            master_key: Arc::new(master_key),
            shutdown: CancellationToken::new(),
        }
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
        let master_key = load_master_key(&settings)?;
        let db = store::connect(&settings).await?;
        if settings.migrate_on_start {
            store::migrate_up(&db).await?;
        }
        match store::readiness(&db).await {
            Ok(()) => store::instance::check_master_key(&db, &master_key).await?,
            // Without the schema there is nothing to check yet; /readyz reports why.
            Err(reason) => tracing::warn!(reason, "starting with an incomplete schema"),
        }
        let gate = store::WriteGate::open(&settings, &db).await?;
        let state = AppState::new(db, gate.clone(), settings, master_key);
        let listen_url = match &state.settings.database {
            crate::config::DatabaseTarget::Postgres { url } => Some(url.expose_secret().to_owned()),
            crate::config::DatabaseTarget::Sqlite { .. } => None,
        };
        state.delivery.spawn(listen_url, state.shutdown.clone());
        store::spawn_checkpointer(&state.settings, &gate, state.shutdown.clone())?;
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
