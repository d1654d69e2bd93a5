//! The error answers every API route shares, for the OpenAPI document.

/// Standard error answers shared by the API routes, for the OpenAPI document.
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
