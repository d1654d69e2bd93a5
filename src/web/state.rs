//! What every handler can reach. Assembled by `crate::app`, which also starts the background
//! work behind these handles.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::crypto::{Cipher, MasterKey};
use crate::delivery::Dispatcher;
use crate::domain::TokenId;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::providers::client::ProviderClient;
use crate::rate_limit::KeyedLimiter;
use crate::web::auth::jwt::JwtKeys;

/// Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub master_key: Arc<MasterKey>,
    /// Seals and opens secrets at rest.
    pub cipher: Arc<Cipher>,
    pub jwt: Arc<JwtKeys>,
    pub admin_limiter: Arc<KeyedLimiter<TokenId>>,
    /// Resolves, verifies, normalizes and stores webhooks.
    pub ingest: Arc<Ingest>,
    pub metrics: Arc<Metrics>,
    /// The delivery workers: redelivery, recovery and the test drain go through them.
    pub delivery: Arc<Dispatcher>,
    /// Calls to the providers on tenants' behalf, with the OAuth2 token cache.
    pub providers: Arc<ProviderClient>,
    /// Handshakes, heartbeats, alert conditions and alerts to the operator endpoint.
    pub monitor: Arc<crate::delivery::monitor::Monitor>,
    /// Failed verifications per tenant this minute, for the `verification_failures` alert.
    pub verification_watch: Arc<crate::web::admin::alerts::VerificationWatch>,
    /// Cancelled once when the process shuts down; background tasks watch it.
    pub shutdown: CancellationToken,
}
