//! The webhook routes: `POST /webhooks/{provider}/{tenant}` and
//! `POST /webhooks/{provider}?customer_id=...`. The tenant is admitted before the body is read
//! (`crate::ingest`), the body is read up to its limit, and the answer goes out after the commit.

use std::net::IpAddr;
use std::time::Instant;

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::EventId;
use crate::error::{ApiError, Problem};
use crate::ingest::connections::TenantRef;
use crate::metrics::Metrics;
use crate::providers::Provider;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        utoipa_actix_web::scope("/webhooks")
            .service(receive_by_path)
            .service(receive_by_customer),
    );
}

/// The acknowledgement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ack {
    /// `accepted` (stored now) or `duplicate` (stored before; nothing new is fanned out).
    #[schema(example = "accepted")]
    pub status: &'static str,
    /// The gateway's event id, the same for every retry of the provider's event.
    pub event_id: EventId,
    /// Older than an event already seen for its subject: stored, not fanned out.
    pub stale: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// The tenant's `customer_id`.
    pub customer_id: Option<String>,
}

/// Receive a webhook (tenant in the path)
///
/// The URL to give the provider: `{tenant}` is the tenant's slug or id. The body is verified
/// with the tenant's keys as the provider signs (`GET /api/v1/providers`), stored with its
/// normalized form, and acknowledged after the commit.
#[utoipa::path(
    tag = "webhooks",
    params(
        ("provider" = Provider, Path, description = "A provider's name, as `GET /api/v1/providers` lists them"),
        ("tenant" = String, Path, description = "Tenant slug or id"),
    ),
    request_body(content = Object, description = "The provider's webhook body, exactly as it sends it"),
    responses(
        (status = 200, body = Ack, description = "Stored (or already stored: `duplicate`)"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "verified but not JSON or not the provider's shape (`invalid_payload`)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "`missing_signature`, `invalid_signature`, `timestamp_out_of_tolerance`"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "`source_ip_not_allowed`, `tenant_disabled`"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "`unknown_provider`, `tenant_not_found` (no such tenant, or no connection to this provider)"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "body over `webhook_max_body_bytes` (`payload_too_large`)"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "over the tenant's ingest rate (`rate_limited`), see `Retry-After`"),
    )
)]
#[post("/{provider}/{tenant}")]
async fn receive_by_path(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (provider, tenant) = path.into_inner();
    receive(&state, &req, &provider, TenantRef::Path(tenant), body).await
}

/// Receive a webhook (tenant by customer id)
///
/// One URL per customer organization, told apart by `?customer_id=` (VectorCare's documented
/// pattern). Same checks and answers as the path form.
#[utoipa::path(
    tag = "webhooks",
    params(("provider" = Provider, Path, description = "A provider's name, as `GET /api/v1/providers` lists them"), CustomerQuery),
    request_body(content = Object, description = "The provider's webhook body, exactly as it sends it"),
    responses(
        (status = 200, body = Ack),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/{provider}")]
async fn receive_by_customer(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CustomerQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // A missing customer_id matches no tenant: the same checks (provider first) and answers.
    let customer = query.into_inner().customer_id.unwrap_or_default();
    receive(&state, &req, &path, TenantRef::CustomerId(customer), body).await
}

/// The caller's address: the peer, or the rightmost entry of the trusted proxy's header. Several
/// lines of the header are one list (RFC 9110 5.3): the proxy appends to the last line, so the
/// last entry of the last line is the one it saw; a line it cannot read refuses the address.
pub fn client_ip(state: &AppState, req: &HttpRequest) -> Option<IpAddr> {
    if let Some(name) = &state.settings.trusted_proxy_header {
        let mut last = None;
        for line in req.headers().get_all(name) {
            last = Some(line.to_str().ok()?);
        }
        return last?.rsplit(',').next()?.trim().parse().ok();
    }
    req.peer_addr().map(|a| a.ip())
}

async fn receive(
    state: &AppState,
    req: &HttpRequest,
    provider_name: &str,
    reference: TenantRef,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let result = accept(state, req, provider_name, reference, body).await;
    let label = if Provider::parse(provider_name).is_ok() {
        provider_name
    } else {
        "unknown"
    };
    match &result {
        Ok(_) => {
            state
                .metrics
                .ingest_seconds
                .get_or_create(&Metrics::provider(label))
                .observe(started.elapsed().as_secs_f64());
        }
        Err(e) => {
            state.metrics.reject(label, e.code());
            tracing::info!(provider = label, reason = e.code(), "webhook refused");
        }
    }
    result
}

async fn accept(
    state: &AppState,
    req: &HttpRequest,
    provider_name: &str,
    reference: TenantRef,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let admitted = state
        .ingest
        .admit(provider_name, reference, || client_ip(state, req))
        .await?;
    let body = read_body(req, payload, state.settings.webhook_max_body_bytes).await?;
    let tenant = admitted.tenant_id().clone();
    let outcome = state
        .ingest
        .store(admitted, req.headers(), &body, || client_ip(state, req))
        .await
        .inspect_err(|e| {
            if matches!(
                e,
                ApiError::MissingSignature(_)
                    | ApiError::InvalidSignature(_)
                    | ApiError::TimestampOutOfTolerance(_)
            ) {
                crate::web::admin::alerts::verification_failed(state, provider_name, &tenant);
            }
        })?;
    Ok(HttpResponse::Ok().json(Ack {
        status: if outcome.duplicate {
            "duplicate"
        } else {
            "accepted"
        },
        event_id: outcome.event_id,
        stale: outcome.stale,
    }))
}

/// Reads the body up to `limit` bytes; a larger one is refused without reading it all.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    use futures_util::StreamExt;
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut buf = web::BytesMut::with_capacity(declared.unwrap_or(4096).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
