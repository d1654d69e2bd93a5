//! Callback endpoints: where a tenant receives normalized events, signed with the endpoint's
//! Standard Webhooks secret.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::{
    EndpointId, EndpointUrl, Ordering, PayloadMode, SecretId, SigningSecret, TenantId,
};
use crate::error::{ApiError, FieldError, Problem};
use crate::store::{endpoint, endpoint_headers, endpoint_secret, for_tenant};
use crate::web::auth::TenantScope;
use crate::web::http::ApiJson;
use crate::web::pagination::{finish, PageQuery};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

/// The longest a rotated-out secret may keep signing.
const MAX_GRACE: Duration = Duration::from_secs(30 * 86_400);

mod checks;

use checks::{
    check_concurrency, check_description, check_event_types, check_headers, check_rate_limit,
    check_url,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_endpoints)
        .service(create_endpoint)
        .service(get_endpoint)
        .service(update_endpoint)
        .service(delete_endpoint)
        .service(rotate_secret)
        .service(list_secrets);
}

/// A tenant's callback endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Endpoint {
    pub id: EndpointId,
    pub tenant_id: TenantId,
    #[schema(value_type = String, example = "https://dispatch.example.com/hooks/gateway")]
    pub url: EndpointUrl,
    pub description: String,
    /// Event types delivered here (`*` suffix matches a prefix, e.g. `transport.*`); empty means all.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Extra headers sent with every delivery: names with a masked hint of each value (values
    /// are sealed at rest and never shown again).
    #[schema(example = json!({"Authorization": "****c3Rk"}))]
    pub headers: BTreeMap<String, String>,
    /// Deliveries per second at most; `null` for no limit.
    pub rate_limit_per_second: Option<u32>,
    /// Why the gateway disabled the endpoint, when it did.
    pub disabled_reason: Option<String>,
    /// Also receive events marked stale (older than one already seen for their subject).
    pub include_stale: bool,
    pub ordering: Ordering,
    pub payload_mode: PayloadMode,
    /// Deliveries in flight at once, per gateway process; `null`: the gateway's default.
    pub max_concurrency: Option<u32>,
    /// Since when every attempt has failed; `null` when the last one succeeded.
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<endpoint::Model> for Endpoint {
    fn from(m: endpoint::Model) -> Self {
        Self {
            id: m.id,
            tenant_id: m.tenant_id,
            url: m.url,
            description: m.description,
            event_types: serde_json::from_value(m.event_types).unwrap_or_default(),
            enabled: m.enabled,
            headers: endpoint_headers::hints(&m.headers),
            rate_limit_per_second: m.rate_limit_per_second.and_then(|n| u32::try_from(n).ok()),
            disabled_reason: m.disabled_reason,
            include_stale: m.include_stale,
            ordering: m.ordering,
            payload_mode: m.payload_mode,
            max_concurrency: m.max_concurrency.and_then(|n| u32::try_from(n).ok()),
            failing_since: m.failing_since,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// The endpoint with its signing secret: shown once, at creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointCreated {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_...`: verify our `webhook-signature` with it. Not shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub signing_secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub data: Vec<Endpoint>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// https URL (http only when the gateway allows it).
    pub url: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Extra headers sent with every delivery (credentials welcome: values are sealed at rest
    /// and answered only as a masked hint).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Deliveries per second at most (`0` or absent: no limit).
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    pub rate_limit_per_second: Option<u32>,
    /// Also receive stale events (default false).
    #[serde(default)]
    pub include_stale: bool,
    #[serde(default)]
    pub ordering: Ordering,
    /// `full` (default): the normalized event with its patient data; `minimal`: ids, type,
    /// status, times and links, and `dataref` to read the rest through the API.
    #[serde(default)]
    pub payload_mode: PayloadMode,
    /// Deliveries in flight at once (1 to 100), per gateway process; `0` or absent: the
    /// gateway's default.
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    pub max_concurrency: Option<u32>,
}

fn yes() -> bool {
    true
}

/// Fields to change; absent fields stay. `rate_limit_per_second: 0` removes the limit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Enabling clears `disabled_reason`.
    pub enabled: Option<bool>,
    /// Replaces every header. A value sent back exactly as its masked hint keeps the stored
    /// value, so what was read can be returned without erasing a credential.
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    pub rate_limit_per_second: Option<u32>,
    pub include_stale: Option<bool>,
    pub ordering: Option<Ordering>,
    pub payload_mode: Option<PayloadMode>,
    /// `0` returns to the gateway's default.
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    pub max_concurrency: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps signing, `0s` to `30d`, e.g. `24h` (default: the
    /// gateway's `endpoint_secret_grace`); `0s` retires it at once.
    pub grace_period: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretRotated {
    pub secret_id: SecretId,
    /// The new `whsec_...`, shown once.
    pub signing_secret: String,
    /// Until when the previous secrets still sign (a grace period never extends an earlier end).
    pub previous_secrets_expire_at: DateTime<Utc>,
}

/// A signing secret as listed: never the secret itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretInfo {
    pub id: SecretId,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    /// `null` while it is the current secret.
    pub expires_at: Option<DateTime<Utc>>,
}

fn new_secret(
    state: &AppState,
    endpoint: &EndpointId,
) -> (endpoint_secret::ActiveModel, SigningSecret) {
    let secret = SigningSecret::generate();
    let id = SecretId::generate();
    let sealed = state
        .cipher
        .seal(secret.expose(), &format!("endpoint_secret:{id}"));
    let model = endpoint_secret::ActiveModel {
        id: Set(id),
        endpoint_id: Set(endpoint.clone()),
        secret_ciphertext: Set(sealed),
        hint: Set(secret.hint()),
        created_at: Set(Utc::now()),
        expires_at: Set(None),
    };
    (model, secret)
}

async fn find(
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
    let url = check_url(&state, &input.url, &mut errors);
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
    let id = EndpointId::generate();
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
    let mut model: endpoint::ActiveModel = current.into();
    if let Some(u) = &input.url {
        if let Some(url) = check_url(&state, u, &mut errors) {
            model.url = Set(url);
        }
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
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    model.updated_at = Set(Utc::now());
    let model = model.update(&state.db).await?;
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

/// Rotate an endpoint's signing secret
///
/// Generates a new secret, returned once. The previous secrets keep signing for the grace
/// period, so deliveries carry a signature for the old and the new secret while the receiver
/// switches over.
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = EndpointId, Path, description = "Endpoint id")
    ),
    request_body(content = Option<RotateSecret>, description = "Optional; an empty body uses the default grace period"),
    responses(
        (status = 200, body = SecretRotated),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid grace period (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/endpoints/{endpoint}/rotate-secret")]
async fn rotate_secret(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let current = find(&state, &scope, &path.1).await?;
    let input: RotateSecret = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSecret::default()
    } else {
        // `null` is the schema's "no body" too.
        serde_json::from_slice::<Option<RotateSecret>>(&body)
            .map_err(|e| ApiError::InvalidJson(e.to_string()))?
            .unwrap_or_default()
    };
    let grace = match input.grace_period.as_deref() {
        None => state.settings.endpoint_secret_grace,
        Some(text) => crate::domain::bounded_duration(text, Duration::ZERO, MAX_GRACE)
            .map_err(|m| ApiError::Validation(vec![FieldError::new("grace_period", m)]))?,
    };
    let now = Utc::now();
    let expires = chrono::Duration::from_std(grace)
        .ok()
        .and_then(|g| now.checked_add_signed(g))
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new("grace_period", "is too long")])
        })?;
    let txn = crate::store::begin_write(&state.db).await?;
    // A grace period only ever shortens a previous secret's life: rotating with `0s` after a
    // leak retires every earlier secret at once, not just the latest.
    endpoint_secret::Entity::update_many()
        .col_expr(
            endpoint_secret::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(expires),
        )
        .filter(endpoint_secret::Column::EndpointId.eq(current.id.clone()))
        .filter(
            sea_orm::Condition::any()
                .add(endpoint_secret::Column::ExpiresAt.is_null())
                .add(endpoint_secret::Column::ExpiresAt.gt(expires)),
        )
        .exec(&txn)
        .await?;
    let (model, secret) = new_secret(&state, &current.id);
    let model = model.insert(&txn).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(SecretRotated {
        secret_id: model.id,
        signing_secret: secret.expose().to_owned(),
        previous_secrets_expire_at: expires,
    }))
}

/// List an endpoint's signing secrets
///
/// Only hints and validity: a secret is shown once, when created.
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = EndpointId, Path, description = "Endpoint id")
    ),
    responses((status = 200, body = Vec<SecretInfo>), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/endpoints/{endpoint}/secrets")]
async fn list_secrets(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let current = find(&state, &scope, &path.1).await?;
    let rows = endpoint_secret::active_for_endpoint(&state.db, &current.id, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(
        rows.into_iter()
            .map(|s| SecretInfo {
                id: s.id,
                hint: s.hint,
                created_at: s.created_at,
                expires_at: s.expires_at,
            })
            .collect::<Vec<_>>(),
    ))
}
