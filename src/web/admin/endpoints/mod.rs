//! Callback endpoints: where a tenant receives normalized events, signed with the endpoint's
//! Standard Webhooks secret.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder, QuerySelect,
};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::{EndpointId, EndpointKind, EndpointUrl, Ordering};
use crate::error::{ApiError, FieldError, Problem};
use crate::store::{endpoint, endpoint_headers, for_tenant};
use crate::web::auth::TenantScope;
use crate::web::http::ApiJson;
use crate::web::pagination::{finish, PageQuery};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

/// The longest a rotated-out secret may keep signing.
const MAX_GRACE: Duration = Duration::from_secs(30 * 86_400);

mod checks;
mod pull;
mod secrets;
mod tokens;
mod types;

use checks::{
    check_concurrency, check_description, check_event_types, check_headers, check_heartbeat,
    check_rate_limit, check_url,
};
use secrets::new_secret;
pub use types::*;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_endpoints)
        .service(create_endpoint)
        .service(get_endpoint)
        .service(update_endpoint)
        .service(delete_endpoint)
        .configure(secrets::configure)
        .configure(pull::configure)
        .configure(tokens::configure);
}

pub(super) async fn find(
    state: &AppState,
    scope: &TenantScope,
    id: &str,
) -> Result<endpoint::Model, ApiError> {
    let id = EndpointId::parse(id).map_err(|_| ApiError::NotFound)?;
    endpoint::find_for_tenant(&state.db, scope.id(), &id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// List a tenant's endpoints
#[utoipa::path(
    tag = "endpoints",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, body = EndpointList), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/endpoints")]
async fn list_endpoints(
    state: web::Data<AppState>,
    scope: TenantScope,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let mut query = for_tenant(scope.id())
        .endpoints()
        .order_by_asc(endpoint::Column::Id);
    if let Some(cursor) = &page.cursor {
        let cursor = EndpointId::parse(cursor)
            .map_err(|m| ApiError::Validation(vec![FieldError::new("cursor", m)]))?;
        query = query.filter(endpoint::Column::Id.gt(cursor));
    }
    let rows = query.limit(limit + 1).all(&state.db).await?;
    let (rows, next_cursor) = finish(rows, limit, |e| e.id.clone());
    Ok(HttpResponse::Ok().json(EndpointList {
        data: rows.into_iter().map(Endpoint::from).collect(),
        next_cursor,
    }))
}

/// Create an endpoint
///
/// The gateway generates the endpoint's signing secret (`whsec_` + 32 random bytes, Standard
/// Webhooks) and returns it in this answer only.
#[utoipa::path(
    tag = "endpoints",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = CreateEndpoint,
    responses(
        (status = 201, body = EndpointCreated),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/endpoints")]
async fn create_endpoint(
    state: web::Data<AppState>,
    scope: TenantScope,
    body: ApiJson<CreateEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let mut errors = Vec::new();
    let id = EndpointId::generate();
    let url = match (input.kind, &input.url) {
        (EndpointKind::Push, Some(url)) => check_url(&state, url, &mut errors),
        (EndpointKind::Push, None) => {
            errors.push(FieldError::new("url", "is required for a push endpoint"));
            None
        }
        (EndpointKind::Pull, None) => Some(pull_url(&state, scope.id(), &id)?),
        (EndpointKind::Pull, Some(_)) => {
            errors.push(FieldError::new(
                "url",
                "a pull endpoint is sent nothing; its receiver reads its events from the API",
            ));
            None
        }
    };
    if let Some(n) = input.heartbeat_minutes {
        check_heartbeat(n, &mut errors);
    }
    errors.extend(option_conflicts(
        input.kind,
        input.ordering,
        input.handshake,
        input.heartbeat_minutes,
        input.supersede,
    ));
    check_description(&input.description, &mut errors);
    check_event_types(&input.event_types, &mut errors);
    check_headers(&input.headers, &mut errors);
    if let Some(n) = input.rate_limit_per_second {
        check_rate_limit(n, &mut errors);
    }
    if let Some(n) = input.max_concurrency {
        check_concurrency(n, &mut errors);
    }
    let Some(url) = url.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let now = Utc::now();
    let txn = crate::store::begin_write(&state.db).await?;
    let model = endpoint::ActiveModel {
        id: Set(id.clone()),
        tenant_id: Set(scope.id().clone()),
        url: Set(url),
        description: Set(input.description),
        event_types: Set(serde_json::json!(input.event_types)),
        enabled: Set(input.enabled),
        headers: Set(endpoint_headers::seal(
            &state.cipher,
            &id,
            &input.headers,
            &serde_json::Value::Null,
        )),
        rate_limit_per_second: Set(input
            .rate_limit_per_second
            .filter(|n| *n > 0)
            .map(|n| n as i32)),
        disabled_reason: Set(None),
        include_stale: Set(input.include_stale),
        ordering: Set(input.ordering),
        payload_mode: Set(input.payload_mode),
        max_concurrency: Set(input.max_concurrency.filter(|n| *n > 0).map(|n| n as i32)),
        failing_since: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        kind: Set(input.kind),
        handshake: Set(input.handshake),
        verified_at: Set(None),
        heartbeat_minutes: Set(input.heartbeat_minutes.filter(|n| *n > 0).map(|n| n as i32)),
        supersede: Set(input.supersede),
    }
    .insert(&txn)
    .await?;
    let (secret_model, secret) = new_secret(&state, &id);
    secret_model.insert(&txn).await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/tenants/{}/endpoints/{id}", scope.id()),
        ))
        .json(EndpointCreated {
            endpoint: Endpoint::from(model),
            signing_secret: secret.expose().to_owned(),
        }))
}

/// Get an endpoint
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = EndpointId, Path, description = "Endpoint id")
    ),
    responses((status = 200, body = Endpoint), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/endpoints/{endpoint}")]
async fn get_endpoint(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let model = find(&state, &scope, &path.1).await?;
    Ok(HttpResponse::Ok().json(Endpoint::from(model)))
}

/// Update, enable or disable an endpoint
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = EndpointId, Path, description = "Endpoint id")
    ),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, body = Endpoint),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "an option that does not go with the endpoint's kind or ordering, or a URL for a pull endpoint (`conflict`)"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[patch("/tenants/{tenant}/endpoints/{endpoint}")]
async fn update_endpoint(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    body: ApiJson<UpdateEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let current = find(&state, &scope, &path.1).await?;
    let input = body.0;
    let mut errors = Vec::new();
    let (id, stored_headers) = (current.id.clone(), current.headers.clone());
    let was_enabled = current.enabled;
    let kind = current.kind;
    if let Some(n) = input.heartbeat_minutes {
        check_heartbeat(n, &mut errors);
    }
    // With what is stored: a conflict with the endpoint's state, not a malformed body.
    let conflicts = option_conflicts(
        kind,
        input.ordering.unwrap_or(current.ordering),
        input.handshake.unwrap_or(current.handshake),
        input
            .heartbeat_minutes
            .or(current.heartbeat_minutes.map(|n| n as u32)),
        input.supersede.unwrap_or(current.supersede),
    );
    if let Some(c) = conflicts.into_iter().next() {
        return Err(ApiError::Conflict {
            field: c.field,
            message: c.message,
        });
    }
    let mut model: endpoint::ActiveModel = current.into();
    // A new URL, a re-enabled endpoint or a handshake newly asked for: the receiver at the
    // URL answers a handshake before it is sent patient data again.
    let mut handshake_again = input.handshake == Some(true);
    if let Some(u) = &input.url {
        if kind == EndpointKind::Pull {
            return Err(ApiError::Conflict {
                field: "url".into(),
                message: "a pull endpoint has no URL to change".into(),
            });
        } else if let Some(url) = check_url(&state, u, &mut errors) {
            model.url = Set(url);
            handshake_again = true;
        }
    }
    if let Some(v) = input.handshake {
        model.handshake = Set(v);
    }
    if let Some(n) = input.heartbeat_minutes {
        model.heartbeat_minutes = Set((n > 0).then_some(n as i32));
    }
    if let Some(v) = input.supersede {
        model.supersede = Set(v);
    }
    if let Some(d) = input.description {
        check_description(&d, &mut errors);
        model.description = Set(d);
    }
    if let Some(t) = input.event_types {
        check_event_types(&t, &mut errors);
        model.event_types = Set(serde_json::json!(t));
    }
    if let Some(h) = input.headers {
        check_headers(&h, &mut errors);
        model.headers = Set(endpoint_headers::seal(
            &state.cipher,
            &id,
            &h,
            &stored_headers,
        ));
    }
    if let Some(n) = input.rate_limit_per_second {
        check_rate_limit(n, &mut errors);
        model.rate_limit_per_second = Set((n > 0).then_some(n as i32));
    }
    if let Some(v) = input.include_stale {
        model.include_stale = Set(v);
    }
    if let Some(o) = input.ordering {
        model.ordering = Set(o);
    }
    if let Some(m) = input.payload_mode {
        model.payload_mode = Set(m);
    }
    if let Some(n) = input.max_concurrency {
        check_concurrency(n, &mut errors);
        model.max_concurrency = Set((n > 0).then_some(n as i32));
    }
    if let Some(enabled) = input.enabled {
        model.enabled = Set(enabled);
        if enabled {
            model.disabled_reason = Set(None);
            model.failing_since = Set(None);
            handshake_again |= !was_enabled;
        }
    }
    if handshake_again {
        model.verified_at = Set(None);
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    model.updated_at = Set(Utc::now());
    let model = model.update(&state.db).await?;
    // The workers see the change (handshake, options) at once.
    state.delivery.forget_endpoints();
    Ok(HttpResponse::Ok().json(Endpoint::from(model)))
}

/// Delete an endpoint
///
/// The endpoint is gone from the API and never sent to again; its signing secrets and headers are
/// erased and its pending deliveries end as `dead`. Its deliveries and attempts stay, so the
/// accounting of disclosures still names where each subject's data went.
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = EndpointId, Path, description = "Endpoint id")
    ),
    responses((status = 204, description = "Deleted"), CommonErrors),
    security(("bearer" = []))
)]
#[delete("/tenants/{tenant}/endpoints/{endpoint}")]
async fn delete_endpoint(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let model = find(&state, &scope, &path.1).await?;
    let txn = crate::store::begin_write(&state.db).await?;
    endpoint::mark_deleted(&txn, &model.id).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Where a pull endpoint's receiver reads: its URL.
fn pull_url(
    state: &AppState,
    tenant: &crate::domain::TenantId,
    id: &EndpointId,
) -> Result<EndpointUrl, ApiError> {
    let base = state.settings.public_url.as_str().trim_end_matches('/');
    EndpointUrl::parse(
        &format!("{base}/api/v1/tenants/{tenant}/endpoints/{id}/events"),
        true,
    )
    .map_err(|m| ApiError::internal(anyhow::anyhow!("the pull URL is not a URL: {m}")))
}

/// The delivery options that do not go together.
fn option_conflicts(
    kind: EndpointKind,
    ordering: Ordering,
    handshake: bool,
    heartbeat_minutes: Option<u32>,
    supersede: bool,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if kind == EndpointKind::Pull {
        for (on, field) in [
            (handshake, "handshake"),
            (
                heartbeat_minutes.is_some_and(|n| n > 0),
                "heartbeat_minutes",
            ),
            (supersede, "supersede"),
        ] {
            if on {
                errors.push(FieldError::new(field, "applies to push endpoints only"));
            }
        }
    }
    if supersede && ordering == Ordering::FifoSubject {
        errors.push(FieldError::new(
            "supersede",
            "a fifo_subject endpoint keeps its strict order: nothing is superseded",
        ));
    }
    errors
}
