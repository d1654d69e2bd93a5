//! The one error type of the HTTP surface.
//!
//! Every error answer is `application/problem+json` (RFC 7807) with a stable machine-readable
//! `code`. Clients branch on `code`, never on `title` or `detail`, so codes are never renamed.
//! Internal causes are logged with their context and answered as an opaque 500.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One offending input field of a 422 answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON pointer-like path of the field, e.g. `public_keys[0].pem`.
    pub field: String,
    /// Why it was refused, in plain words.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route matches this path")]
    RouteNotFound,
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    #[error("the requested resource does not exist")]
    NotFound,
    #[error("the request body is not valid JSON for this operation: {0}")]
    InvalidJson(String),
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be sent as {expected}")]
    UnsupportedMediaType { expected: &'static str },
    #[error("the request headers exceed the limit of {count} headers or {bytes} bytes")]
    HeadersTooLarge { count: usize, bytes: usize },
    #[error("a path parameter is not valid: {0}")]
    InvalidPath(String),
    #[error("a query parameter is not valid: {0}")]
    InvalidQuery(String),
    #[error("the request is malformed: {0}")]
    BadRequest(String),
    #[error("one or more fields are invalid")]
    Validation(Vec<FieldError>),
    #[error("{message}")]
    Conflict { field: String, message: String },
    /// The event's payload was purged (past its tenant's retention): it cannot be sent again.
    #[error("the event's payload was purged at the end of its retention period; it can no longer be sent")]
    EventPurged,
    /// The event's payload was shredded (its tenant's data key was destroyed).
    #[error("the event's payload was shredded (its tenant's data key was destroyed); it can no longer be read or sent")]
    PayloadShredded,
    /// A body field names a resource that does not exist (a token's `tenant`).
    #[error("{message}")]
    ReferenceNotFound { field: String, message: String },
    #[error("{detail}")]
    Unauthorized { code: &'static str, detail: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    UnknownProvider(String),
    #[error("no tenant is configured for this provider at this URL")]
    TenantNotFound,
    #[error("this tenant is disabled")]
    TenantDisabled,
    #[error("the source address {0} is not in the tenant's allowlist")]
    SourceIpNotAllowed(String),
    #[error("{0}")]
    MissingSignature(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    TimestampOutOfTolerance(String),
    #[error("{0}")]
    InvalidPayload(String),
    #[error("the service is not ready: {0}")]
    NotReady(String),
    /// The database refused or timed out: nothing was changed; the same request may be sent
    /// again after `Retry-After`.
    #[error("the database is unavailable; retry after {retry_after_secs} s")]
    DatabaseUnavailable { retry_after_secs: u64 },
    /// The tenant's provider connection lacks what this call needs (credentials, API key).
    #[error("{0}")]
    ConnectionIncomplete(String),
    /// The provider refused the connection's credentials (`invalid_client`): fix the connection.
    #[error("{0}")]
    ProviderCredentialsRejected(String),
    /// The provider answered 400: it found the request invalid.
    #[error("{0}")]
    ProviderBadRequest(String),
    /// The provider answered 403: the request is no longer available to this tenant.
    #[error("{0}")]
    ProviderForbidden(String),
    /// The provider answered 404.
    #[error("{0}")]
    ProviderNotFound(String),
    /// The provider answered 429: back off, for `Retry-After` seconds when it said so.
    #[error("{message}")]
    ProviderRateLimited {
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// The provider answered something else unexpected (5xx, an unreadable body).
    #[error("{0}")]
    ProviderFailed(String),
    /// The provider could not be reached in time.
    #[error("{0}")]
    ProviderUnreachable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The stable code clients branch on. Exhaustive on purpose: a new variant must pick one.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::RouteNotFound => "route_not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::NotFound => "not_found",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::HeadersTooLarge { .. } => "headers_too_large",
            ApiError::InvalidPath(_) => "invalid_path",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation(_) => "validation_failed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::ReferenceNotFound { .. } => "reference_not_found",
            ApiError::EventPurged => "event_purged",
            ApiError::PayloadShredded => "payload_shredded",
            ApiError::Unauthorized { code, .. } => code,
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::UnknownProvider(_) => "unknown_provider",
            ApiError::TenantNotFound => "tenant_not_found",
            ApiError::TenantDisabled => "tenant_disabled",
            ApiError::SourceIpNotAllowed(_) => "source_ip_not_allowed",
            ApiError::MissingSignature(_) => "missing_signature",
            ApiError::InvalidSignature(_) => "invalid_signature",
            ApiError::TimestampOutOfTolerance(_) => "timestamp_out_of_tolerance",
            ApiError::InvalidPayload(_) => "invalid_payload",
            ApiError::NotReady(_) => "not_ready",
            ApiError::DatabaseUnavailable { .. } => "database_unavailable",
            ApiError::ConnectionIncomplete(_) => "connection_incomplete",
            ApiError::ProviderCredentialsRejected(_) => "provider_credentials_rejected",
            ApiError::ProviderBadRequest(_) => "provider_bad_request",
            ApiError::ProviderForbidden(_) => "provider_forbidden",
            ApiError::ProviderNotFound(_) => "provider_not_found",
            ApiError::ProviderRateLimited { .. } => "provider_rate_limited",
            ApiError::ProviderFailed(_) => "provider_failed",
            ApiError::ProviderUnreachable(_) => "provider_unreachable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            ApiError::RouteNotFound => "Route not found",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::NotFound => "Not found",
            ApiError::InvalidJson(_) => "Invalid JSON body",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::UnsupportedMediaType { .. } => "Unsupported media type",
            ApiError::HeadersTooLarge { .. } => "Request headers too large",
            ApiError::InvalidPath(_) => "Invalid path parameter",
            ApiError::InvalidQuery(_) => "Invalid query parameter",
            ApiError::BadRequest(_) => "Bad request",
            ApiError::Validation(_) => "Validation failed",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::ReferenceNotFound { .. } => "Referenced resource not found",
            ApiError::EventPurged => "Event payload purged",
            ApiError::PayloadShredded => "Event payload shredded",
            ApiError::Unauthorized { .. } => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::RateLimited { .. } => "Too many requests",
            ApiError::UnknownProvider(_) => "Unknown provider",
            ApiError::TenantNotFound => "Tenant not found",
            ApiError::TenantDisabled => "Tenant disabled",
            ApiError::SourceIpNotAllowed(_) => "Source address not allowed",
            ApiError::MissingSignature(_) => "Missing signature",
            ApiError::InvalidSignature(_) => "Invalid signature",
            ApiError::TimestampOutOfTolerance(_) => "Timestamp out of tolerance",
            ApiError::InvalidPayload(_) => "Invalid payload",
            ApiError::NotReady(_) => "Not ready",
            ApiError::DatabaseUnavailable { .. } => "Database unavailable",
            ApiError::ConnectionIncomplete(_) => "Provider connection incomplete",
            ApiError::ProviderCredentialsRejected(_) => "Provider refused the credentials",
            ApiError::ProviderBadRequest(_) => "Provider refused the request",
            ApiError::ProviderForbidden(_) => "Not available at the provider",
            ApiError::ProviderNotFound(_) => "Not found at the provider",
            ApiError::ProviderRateLimited { .. } => "Provider rate limit",
            ApiError::ProviderFailed(_) => "Provider error",
            ApiError::ProviderUnreachable(_) => "Provider unreachable",
            ApiError::Internal(_) => "Internal server error",
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }
}

/// Unique constraints by name (PostgreSQL says the name, SQLite the columns), with the field and
/// message a client should see. Kept next to the migrations' constraint names.
const UNIQUE_CONSTRAINTS: &[(&str, &str, &str, &str)] = &[
    (
        "uq_tenants_slug",
        "tenants.slug",
        "slug",
        "a tenant with this slug already exists",
    ),
    (
        "uq_tenants_customer_id",
        "tenants.customer_id",
        "customer_id",
        "another tenant already has this customer_id",
    ),
    (
        "uq_provider_keys_fingerprint",
        "provider_keys.connection_id, provider_keys.fingerprint",
        "key",
        "this key is already configured for the connection",
    ),
    (
        "uq_provider_connections_tenant_provider",
        "provider_connections.tenant_id, provider_connections.provider",
        "provider",
        "the tenant already has a connection to this provider",
    ),
];

/// Reads a JSON value into `T`: a value of the wrong shape answers 422 `validation_failed` with
/// `errors[].field` set to the offending path, anything else 400 `invalid_json`.
pub fn from_json<'de, T, D>(de: D) -> Result<T, ApiError>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de, Error = serde_json::Error>,
{
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let field = if path == "." {
                "(body)".to_owned()
            } else {
                path
            };
            ApiError::Validation(vec![FieldError::new(field, inner.to_string())])
        } else {
            ApiError::InvalidJson(inner.to_string())
        }
    })
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        if let Some(sea_orm::SqlErr::UniqueConstraintViolation(message)) = e.sql_err() {
            for (name, columns, field, text) in UNIQUE_CONSTRAINTS {
                if message.contains(name) || message.contains(columns) {
                    return ApiError::Conflict {
                        field: (*field).to_owned(),
                        message: (*text).to_owned(),
                    };
                }
            }
        }
        if is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable");
            return ApiError::DatabaseUnavailable {
                retry_after_secs: DATABASE_RETRY_AFTER_SECS,
            };
        }
        ApiError::Internal(anyhow::Error::new(e).context("database"))
    }
}

/// The database refused, dropped or timed out the connection (pool exhausted, server down or
/// restarting, too many clients, SQLite busy past its timeout), as opposed to refusing the
/// statement: the request did nothing and can be sent again.
pub fn is_unavailable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    match e {
        // Opening a connection failed, whatever the reason (refused, closed mid-handshake).
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(r) | DbErr::Query(r) => match r {
            RuntimeErr::SqlxError(x) => match x.as_ref() {
                Sqlx::Io(_)
                | Sqlx::Tls(_)
                | Sqlx::PoolTimedOut
                | Sqlx::PoolClosed
                | Sqlx::WorkerCrashed => true,
                Sqlx::Database(d) => d.code().is_some_and(|c| unavailable_code(&c)),
                _ => false,
            },
            #[allow(unreachable_patterns)]
            _ => false,
        },
        _ => false,
    }
}

/// PostgreSQL's connection exceptions (class 08), too many connections (53300), and an
/// operator's intervention (57P01-57P03: shutdown, crash shutdown, cannot connect now);
/// SQLite's busy (5) and locked (6).
fn unavailable_code(code: &str) -> bool {
    code.starts_with("08")
        || code == "53300"
        || code.starts_with("57P")
        || code == "5"
        || code == "6"
}

/// What a client is told to wait when the database is unavailable: long enough for a pool to
/// get a connection back, short enough for a provider's retry budget.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 2;

/// An error answer (RFC 7807 problem details). Branch on `code`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:webhook-gateway:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:webhook-gateway:problem:validation_failed")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `rate_limited`.
    #[schema(example = "validation_failed")]
    pub code: String,
    /// The offending fields (422 and 409 answers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: &str, detail: String) -> Self {
        Self {
            type_: problem_type(code),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors: Vec::new(),
        }
    }

    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, PROBLEM_JSON))
            .json(self)
    }
}

/// Problem type URIs are stable identifiers documented in README ("Errors").
pub fn problem_type(code: &str) -> String {
    format!("urn:webhook-gateway:problem:{code}")
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::RouteNotFound | ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidJson(_)
            | ApiError::InvalidPath(_)
            | ApiError::InvalidQuery(_)
            | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::ReferenceNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::EventPurged | ApiError::PayloadShredded => StatusCode::GONE,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnknownProvider(_) | ApiError::TenantNotFound => StatusCode::NOT_FOUND,
            ApiError::TenantDisabled | ApiError::SourceIpNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::MissingSignature(_)
            | ApiError::InvalidSignature(_)
            | ApiError::TimestampOutOfTolerance(_) => StatusCode::UNAUTHORIZED,
            ApiError::InvalidPayload(_) => StatusCode::BAD_REQUEST,
            ApiError::NotReady(_) | ApiError::DatabaseUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::ConnectionIncomplete(_) | ApiError::ProviderForbidden(_) => {
                StatusCode::CONFLICT
            }
            ApiError::ProviderCredentialsRejected(_) | ApiError::ProviderFailed(_) => {
                StatusCode::BAD_GATEWAY
            }
            ApiError::ProviderBadRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::ProviderNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::ProviderRateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ProviderUnreachable(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            ApiError::Internal(cause) => {
                // The cause chain stays in the log; the client gets nothing it could learn from.
                tracing::error!(error = format!("{cause:#}"), "internal error");
                "The gateway could not complete this request. It has been logged; quote the x-request-id header when reporting it.".to_owned()
            }
            other => other.to_string(),
        };
        let mut problem = Problem::new(status, self.code(), self.title(), detail);
        match self {
            ApiError::Validation(errors) => problem.errors = errors.clone(),
            ApiError::Conflict { field, message }
            | ApiError::ReferenceNotFound { field, message } => {
                problem.errors = vec![FieldError::new(field.clone(), message.clone())]
            }
            _ => {}
        }
        let mut res = problem.response();
        match self {
            ApiError::Unauthorized { .. } => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"webhook-gateway\""),
                );
            }
            ApiError::RateLimited { retry_after_secs }
            | ApiError::DatabaseUnavailable { retry_after_secs }
            | ApiError::ProviderRateLimited {
                retry_after_secs: Some(retry_after_secs),
                ..
            } => {
                res.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(*retry_after_secs),
                );
            }
            _ => {}
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e = ApiError::internal(anyhow::anyhow!("password authentication failed for user x"));
        let res = e.error_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = actix_web::body::to_bytes(res.into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("password"), "{text}");
        assert!(text.contains("\"code\":\"internal_error\""), "{text}");
    }
}
