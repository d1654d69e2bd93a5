//! The admin REST API under `/api/v1`: tenants, provider connections, endpoints, tokens, audit.
//! Every route is documented through its `#[utoipa::path]`; doc comments are the OpenAPI text.

pub mod access;
pub mod alerts;
pub mod audit;
pub mod connection_schema;
pub mod data_keys;
pub mod deliveries;
pub mod disclosures;
pub mod endpoints;
pub mod events;
pub mod providers;
pub mod stats;
pub mod tenants;
pub mod tokens;

use utoipa_actix_web::service_config::ServiceConfig;

pub use audit::{audit_mutations, forget_caches_after_change};

/// Registers every admin route; mounted under `/api/v1` by `startup`.
pub fn configure(cfg: &mut ServiceConfig) {
    tenants::configure(cfg);
    providers::configure(cfg);
    endpoints::configure(cfg);
    events::configure(cfg);
    disclosures::configure(cfg);
    deliveries::configure(cfg);
    tokens::configure(cfg);
    audit::configure(cfg);
    access::configure(cfg);
    data_keys::configure(cfg);
    stats::configure(cfg);
    alerts::configure(cfg);
}
