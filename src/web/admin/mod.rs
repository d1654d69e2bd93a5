//! The admin REST API under `/api/v1`: tenants, provider connections, endpoints, tokens, audit.
//! Every route is documented through its `#[utoipa::path]`; doc comments are the OpenAPI text.

pub mod audit;
pub mod deliveries;
pub mod endpoints;
pub mod events;
pub mod pagination;
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
    deliveries::configure(cfg);
    tokens::configure(cfg);
    audit::configure(cfg);
    stats::configure(cfg);
}

/// Standard error answers shared by the admin routes, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
pub enum CommonErrors {
    /// Missing, malformed, expired, revoked or foreign token (`missing_token`, `malformed_token`,
    /// `invalid_token`, `token_expired`, `token_revoked`).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(#[to_schema] crate::error::Problem),
    /// The token's role may not do this (`forbidden`).
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(crate::error::Problem),
    /// The resource does not exist, or belongs to another tenant (`not_found`).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(crate::error::Problem),
    /// Too many requests for this token (`rate_limited`); see `Retry-After`.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(crate::error::Problem),
}
