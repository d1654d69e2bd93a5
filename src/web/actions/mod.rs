//! Where the gateway acts toward the providers on a tenant's behalf: VectorCare's Open API
//! (accept, decline, state, locations, best time, change request) with the tenant's OAuth2 client
//! credentials, and Vital's resend of missed webhooks with the tenant's API key. Inputs are
//! checked before any call; every call is recorded and shows in its subject's timeline.

pub mod client;

use actix_web::{get, post, web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::ActionId;
use crate::error::{ApiError, FieldError};
use crate::providers::vectorcare::actions::{
    self as vectorcare, Accept, ChangeRequest, Decline, LocationUpdate, ProposeTime, ResponseNotes,
    StateUpdate, VectorCareCall,
};
use crate::providers::Provider;
use crate::providers::{vectorcare as vectorcare_provider, vital};
use crate::store::{for_tenant, provider_action, provider_connection};
use crate::web::admin::pagination::{finish, PageQuery};
use crate::web::admin::CommonErrors;
use crate::web::auth::TenantScope;
use crate::web::http::ApiJson;
use crate::web::AppState;
use client::Credentials;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(accept)
        .service(decline)
        .service(state_update)
        .service(location_update)
        .service(propose_time)
        .service(change_request)
        .service(vital_resend)
        .service(list_actions);
}

/// One call made to a provider on a tenant's behalf, as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionRecord {
    pub id: ActionId,
    pub provider: Provider,
    /// `accept`, `decline`, `state`, `locations`, `best_time`, `change_request`, `resend_events`.
    pub action: String,
    /// The VectorCare request or Vital order concerned.
    pub subject: Option<String>,
    /// `succeeded`, `failed`, or `pending` while the call runs (or if the process stopped mid-call).
    pub outcome: String,
    /// The provider's HTTP status, when it answered.
    pub provider_status: Option<i32>,
    /// The problem code answered to the caller when it failed.
    pub error_code: Option<String>,
    /// The provider's message (or why the call could not be made).
    pub message: Option<String>,
    /// What was sent to the provider.
    pub request: Value,
    /// Who asked: the API token's name and id.
    pub actor: String,
    pub actor_token_id: String,
    /// The gateway request id (`x-request-id`) of the API call.
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<provider_action::Model> for ActionRecord {
    fn from(m: provider_action::Model) -> Self {
        Self {
            id: m.id,
            provider: m.provider,
            action: m.action,
            subject: m.subject,
            outcome: m.outcome,
            provider_status: m.provider_status,
            error_code: m.error_code,
            message: m.message,
            request: m.request,
            actor: m.actor_name,
            actor_token_id: m.actor_token_id,
            request_id: m.request_id,
            created_at: m.created_at,
            completed_at: m.completed_at,
        }
    }
}

/// A successful call: the record, and the provider's answer when it sent a JSON body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    #[serde(flatten)]
    pub action: ActionRecord,
    pub provider_response: Option<Value>,
}

/// Errors particular to provider calls, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
pub enum ActionErrors {
    /// An input failed the local checks; nothing was sent (`validation_failed`), or the provider
    /// found the request invalid (`provider_bad_request`, with its message).
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(crate::error::Problem),
    /// The tenant has no such connection or it lacks credentials (`connection_incomplete`), or
    /// the request is no longer available to this tenant (`provider_forbidden`).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(crate::error::Problem),
    /// The provider refused the connection's credentials (`provider_credentials_rejected`) or
    /// failed (`provider_failed`).
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(crate::error::Problem),
    /// The provider did not answer in time (`provider_unreachable`).
    #[response(status = 504, content_type = "application/problem+json")]
    Timeout(crate::error::Problem),
}

/// What a provider answered, or why no answer could be had.
struct Called {
    status: Option<u16>,
    result: Result<Option<Value>, ApiError>,
}

impl Called {
    fn failed(e: ApiError) -> Self {
        Self {
            status: None,
            result: Err(e),
        }
    }
}

/// The provider's own words from an error body: common JSON fields, else the text.
fn provider_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for key in ["detail", "message", "error_description", "error", "errors"] {
            match v.get(key) {
                Some(Value::String(s)) if !s.is_empty() => return Some(s.clone()),
                Some(other @ (Value::Array(_) | Value::Object(_))) => {
                    return Some(other.to_string())
                }
                _ => {}
            }
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_owned();
    (!text.is_empty()).then(|| text.chars().take(500).collect())
}

/// Maps a provider's answer to ours. 2xx passes through; the rest become problems carrying the
/// provider's message.
async fn interpret(name: &str, res: reqwest::Response) -> Called {
    let status = res.status();
    let wait = crate::delivery::send::retry_after(res.headers()).map(|d| d.as_secs().max(1));
    let body = res.bytes().await.unwrap_or_default();
    let said = provider_message(&body);
    let with = |what: &str| match &said {
        Some(m) => format!("{name} {what}: {m}"),
        None => format!("{name} {what}"),
    };
    let result = match status.as_u16() {
        200..=299 => Ok(serde_json::from_slice::<Value>(&body).ok()),
        400 => Err(ApiError::ProviderBadRequest(with(
            "refused the request (400)",
        ))),
        401 => Err(ApiError::ProviderCredentialsRejected(with(
            "refused the connection's credentials (401)",
        ))),
        403 => Err(ApiError::ProviderForbidden(with(
            "says this is not available to the tenant (403)",
        ))),
        404 => Err(ApiError::ProviderNotFound(with("does not know it (404)"))),
        429 => Err(ApiError::ProviderRateLimited {
            message: with("asks to slow down (429)"),
            retry_after_secs: wait,
        }),
        other => Err(ApiError::ProviderFailed(with(&format!("answered {other}")))),
    };
    Called {
        status: Some(status.as_u16()),
        result,
    }
}

fn unreachable(name: &str, e: &reqwest::Error) -> ApiError {
    ApiError::ProviderUnreachable(format!(
        "{name} could not be reached: {}",
        client::error_chain(e)
    ))
}

/// Opens a connection's sealed secret (client secret or API key).
fn open_secret(
    state: &AppState,
    conn: &provider_connection::Model,
    provider: Provider,
) -> Result<Option<SecretString>, ApiError> {
    let Some(sealed) = &conn.secret_ciphertext else {
        return Ok(None);
    };
    state
        .cipher
        .open(
            sealed,
            &provider_connection::secret_context(provider, &conn.id),
        )
        .map(Some)
        .map_err(|_| {
            ApiError::internal(anyhow::anyhow!(
                "a stored provider secret could not be decrypted"
            ))
        })
}

fn base_url(conn: &provider_connection::Model, name: &str) -> Result<reqwest::Url, ApiError> {
    let base = conn.api_base_url.as_deref().ok_or_else(|| {
        ApiError::ConnectionIncomplete(format!("the {name} connection has no api_base_url"))
    })?;
    // Relative paths join below the base only when it ends with a slash.
    let base = if base.ends_with('/') {
        base.to_owned()
    } else {
        format!("{base}/")
    };
    reqwest::Url::parse(&base).map_err(|e| {
        ApiError::ConnectionIncomplete(format!("the {name} connection's api_base_url: {e}"))
    })
}

async fn connection(
    state: &AppState,
    scope: &TenantScope,
    provider: Provider,
) -> Result<provider_connection::Model, ApiError> {
    provider_connection::find_for_tenant(&state.db, scope.id(), provider)
        .await?
        .ok_or_else(|| {
            ApiError::ConnectionIncomplete(format!(
                "the tenant has no {} connection; create it with PUT /api/v1/tenants/{}/providers/{}",
                provider.as_str(),
                scope.tenant.slug,
                provider.as_str()
            ))
        })
}

/// Who asks, for whom, in which API request.
struct Ctx<'a> {
    state: &'a AppState,
    scope: &'a TenantScope,
    request_id: Option<String>,
}

impl<'a> Ctx<'a> {
    fn new(state: &'a AppState, scope: &'a TenantScope, req: &HttpRequest) -> Self {
        let request_id = req
            .extensions()
            .get::<crate::web::http::RequestId>()
            .map(|r| r.0.clone());
        Self {
            state,
            scope,
            request_id,
        }
    }
}

/// Records the action as pending, runs the call, records its outcome, and answers.
async fn recorded<F>(
    ctx: &Ctx<'_>,
    provider: Provider,
    action: &str,
    subjects: Vec<Option<String>>,
    sent: &Value,
    call: F,
) -> Result<HttpResponse, ApiError>
where
    F: std::future::Future<Output = Called>,
{
    let (state, scope) = (ctx.state, ctx.scope);
    let now = Utc::now();
    let mut rows: Vec<provider_action::Model> = subjects
        .into_iter()
        .map(|subject| provider_action::Model {
            id: ActionId::generate(),
            tenant_id: scope.id().clone(),
            provider,
            action: action.to_owned(),
            subject,
            request: sent.clone(),
            actor_token_id: scope.principal.token_id.to_string(),
            actor_name: scope.principal.name.clone(),
            request_id: ctx.request_id.clone(),
            outcome: provider_action::OUTCOME_PENDING.to_owned(),
            provider_status: None,
            error_code: None,
            message: None,
            created_at: now,
            completed_at: None,
        })
        .collect();
    provider_action::Entity::insert_many(
        rows.iter()
            .map(|m| m.clone().into_active_model().reset_all()),
    )
    .exec_without_returning(&state.db)
    .await?;
    let called = call.await;
    let (outcome, code, message) = match &called.result {
        Ok(_) => (provider_action::OUTCOME_SUCCEEDED, None, None),
        Err(e) => (
            provider_action::OUTCOME_FAILED,
            Some(e.code().to_owned()),
            Some(e.to_string().chars().take(2000).collect::<String>()),
        ),
    };
    tracing::info!(
        tenant = %scope.id(),
        provider = provider.as_str(),
        action,
        outcome,
        provider_status = called.status,
        "provider action"
    );
    let status = called.status.map(i32::from);
    let completed_at = Utc::now();
    provider_action::Entity::update_many()
        .col_expr(provider_action::Column::Outcome, Expr::value(outcome))
        .col_expr(provider_action::Column::ProviderStatus, Expr::value(status))
        .col_expr(
            provider_action::Column::ErrorCode,
            Expr::value(code.clone()),
        )
        .col_expr(
            provider_action::Column::Message,
            Expr::value(message.clone()),
        )
        .col_expr(
            provider_action::Column::CompletedAt,
            Expr::value(Some(completed_at)),
        )
        .filter(provider_action::Column::Id.is_in(rows.iter().map(|r| r.id.clone())))
        .exec(&state.db)
        .await?;
    let response = called.result?;
    if rows.is_empty() {
        return Err(ApiError::internal(anyhow::anyhow!(
            "no action was recorded"
        )));
    }
    let mut first = rows.swap_remove(0);
    first.outcome = outcome.to_owned();
    first.provider_status = status;
    first.completed_at = Some(completed_at);
    Ok(HttpResponse::Ok().json(ActionResult {
        action: first.into(),
        provider_response: response,
    }))
}

/// Calls VectorCare's Open API with the connection's token; on a 401 it fetches a fresh token
/// and tries once more.
async fn call_vectorcare(
    state: &AppState,
    conn: &provider_connection::Model,
    creds: &Credentials,
    method: Method,
    url: reqwest::Url,
    body: &Value,
) -> Called {
    let providers = &state.providers;
    for attempt in 0..2 {
        let token = match providers.token(creds).await {
            Ok(t) => t,
            Err(e) => return Called::failed(e),
        };
        let sent = providers
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token.secret.expose_secret())
            .json(body)
            .send()
            .await;
        let res = match sent {
            Ok(r) => r,
            Err(e) => return Called::failed(unreachable("VectorCare", &e)),
        };
        if res.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
            // Expired or revoked early: the token is dropped and the call made once more.
            providers.invalidate(&conn.id, token.serial).await;
            continue;
        }
        return interpret("VectorCare", res).await;
    }
    Called::failed(ApiError::ProviderFailed(
        "VectorCare refused two tokens in a row".into(),
    ))
}

/// Checks the input, then makes the call with the tenant's credentials and records it.
async fn vectorcare_action<C: VectorCareCall>(
    state: &AppState,
    scope: &TenantScope,
    req: &HttpRequest,
    request: &str,
    input: C,
) -> Result<HttpResponse, ApiError> {
    let body = input.provider_body(Utc::now())?;
    let ctx = &Ctx::new(state, scope, req);
    let (action, method, path) = (C::ACTION, C::METHOD, C::PATH);
    let request = vectorcare::request_ref(request)?;
    let conn = connection(state, scope, vectorcare_provider::PROVIDER).await?;
    let secret = open_secret(state, &conn, vectorcare_provider::PROVIDER)?;
    let (Some(client_id), Some(client_secret)) = (conn.client_id.clone(), secret) else {
        return Err(ApiError::ConnectionIncomplete(
            "the VectorCare connection has no client_id and client_secret; set them with PUT \
             /api/v1/tenants/{tenant}/providers/vectorcare"
                .into(),
        ));
    };
    let token_url = conn.token_url.clone().ok_or_else(|| {
        ApiError::ConnectionIncomplete("the VectorCare connection has no token_url".into())
    })?;
    let url = base_url(&conn, "VectorCare")?
        .join(&format!("requests/{request}/{path}"))
        .map_err(|e| ApiError::internal(anyhow::anyhow!("building the VectorCare URL: {e}")))?;
    let creds = Credentials {
        connection: conn.id.clone(),
        version: conn.updated_at.timestamp_micros().to_string(),
        client_id,
        client_secret,
        token_url,
    };
    recorded(
        ctx,
        vectorcare_provider::PROVIDER,
        action,
        vec![Some(request.to_owned())],
        &body,
        call_vectorcare(state, &conn, &creds, method, url, &body),
    )
    .await
}

/// Accept a broadcast
///
/// Accepts a VectorCare service request broadcast to this tenant (`PUT requests/{id}/accept/`).
/// `response_notes` is optional, at most 450 characters. Send `{}` for none.
#[utoipa::path(
    tag = "provider actions",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("request" = String, Path, description = "VectorCare service_request_id")
    ),
    request_body = ResponseNotes,
    responses((status = 200, body = ActionResult), ActionErrors, CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/vectorcare/requests/{request}/accept")]
async fn accept(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: ApiJson<ResponseNotes>,
) -> Result<HttpResponse, ApiError> {
    vectorcare_action(&state, &scope, &req, &path.1, Accept(body.0)).await
}

/// Decline a broadcast
///
/// Declines a VectorCare service request broadcast to this tenant (`PUT requests/{id}/decline/`).
#[utoipa::path(
    tag = "provider actions",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("request" = String, Path, description = "VectorCare service_request_id")
    ),
    request_body = ResponseNotes,
    responses((status = 200, body = ActionResult), ActionErrors, CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/vectorcare/requests/{request}/decline")]
async fn decline(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: ApiJson<ResponseNotes>,
) -> Result<HttpResponse, ApiError> {
    vectorcare_action(&state, &scope, &req, &path.1, Decline(body.0)).await
}

/// Report a state
///
/// Reports progress on an assigned request (`POST requests/{id}/state/`): a known state name and
/// when it happened (UTC, not in the future, at most 7 days ago).
#[utoipa::path(
    tag = "provider actions",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("request" = String, Path, description = "VectorCare service_request_id")
    ),
    request_body = StateUpdate,
    responses((status = 200, body = ActionResult), ActionErrors, CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/vectorcare/requests/{request}/state")]
async fn state_update(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: ApiJson<StateUpdate>,
) -> Result<HttpResponse, ApiError> {
    vectorcare_action(&state, &scope, &req, &path.1, body.0).await
}

/// Report locations
///
/// Sends the vehicle's positions (`POST requests/{id}/locations/`): 1 to 200 points, each with
/// `lat`, `lng`, `alt` and `timestamp` (Unix seconds, not in the future, at most 7 days ago).
#[utoipa::path(
    tag = "provider actions",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("request" = String, Path, description = "VectorCare service_request_id")
    ),
    request_body = LocationUpdate,
    responses((status = 200, body = ActionResult), ActionErrors, CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/vectorcare/requests/{request}/locations")]
async fn location_update(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: ApiJson<LocationUpdate>,
) -> Result<HttpResponse, ApiError> {
    vectorcare_action(&state, &scope, &req, &path.1, body.0).await
}

/// Propose a time
///
/// Proposes a pickup time for a request (`PUT requests/{id}/best-time/`), in UTC.
#[utoipa::path(
    tag = "provider actions",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("request" = String, Path, description = "VectorCare service_request_id")
    ),
    request_body = ProposeTime,
    responses((status = 200, body = ActionResult), ActionErrors, CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/vectorcare/requests/{request}/best-time")]
async fn propose_time(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: ApiJson<ProposeTime>,
) -> Result<HttpResponse, ApiError> {
    vectorcare_action(&state, &scope, &req, &path.1, body.0).await
}

/// Request a change
///
/// Asks to change the agreed time (`POST requests/{id}/change-request/`), with a reason of at
/// most 450 characters.
#[utoipa::path(
    tag = "provider actions",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("request" = String, Path, description = "VectorCare service_request_id")
    ),
    request_body = ChangeRequest,
    responses((status = 200, body = ActionResult), ActionErrors, CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/vectorcare/requests/{request}/change-request")]
async fn change_request(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: ApiJson<ChangeRequest>,
) -> Result<HttpResponse, ApiError> {
    vectorcare_action(&state, &scope, &req, &path.1, body.0).await
}

/// Which Vital orders to replay: their ids, or a window of at most 60 days.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendEvents {
    /// 1 to 100 Vital order ids.
    pub order_ids: Option<Vec<String>>,
    /// Window start, RFC 3339 (with `end_at`, instead of `order_ids`).
    pub start_at: Option<DateTime<Utc>>,
    /// Window end, at most 60 days after `start_at`.
    pub end_at: Option<DateTime<Utc>>,
}

impl ResendEvents {
    /// The body for Vital, and the orders (timeline subjects) it concerns.
    fn provider_body(&self) -> Result<(Value, Vec<Option<String>>), ApiError> {
        let mut errors = Vec::new();
        let out = match (&self.order_ids, self.start_at, self.end_at) {
            (Some(ids), None, None) => {
                if ids.is_empty() || ids.len() > 100 {
                    errors.push(FieldError::new("order_ids", "needs 1 to 100 order ids"));
                }
                for (i, id) in ids.iter().enumerate() {
                    if id.trim().is_empty() || id.len() > 128 {
                        errors.push(FieldError::new(
                            format!("order_ids[{i}]"),
                            "must be a Vital order id",
                        ));
                    }
                }
                (
                    json!({"order_ids": ids}),
                    ids.iter().cloned().map(Some).collect(),
                )
            }
            (None, Some(start), Some(end)) => {
                if end <= start {
                    errors.push(FieldError::new("end_at", "must be after start_at"));
                } else if end - start > chrono::Duration::days(60) {
                    errors.push(FieldError::new(
                        "end_at",
                        "the window may span at most 60 days",
                    ));
                }
                (
                    json!({"start_at": crate::normalize::rfc3339(start), "end_at": crate::normalize::rfc3339(end)}),
                    vec![None],
                )
            }
            _ => {
                errors.push(FieldError::new(
                    "order_ids",
                    "give either order_ids or both start_at and end_at",
                ));
                (Value::Null, vec![])
            }
        };
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// Resend Vital webhooks
///
/// Asks Vital to replay the latest webhook of the given orders (`POST /v3/order/resend_events`
/// with the connection's API key), to recover events missed while an endpoint was down.
#[utoipa::path(
    tag = "provider actions",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = ResendEvents,
    responses((status = 200, body = ActionResult), ActionErrors, CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/vital/resend-events")]
async fn vital_resend(
    state: web::Data<AppState>,
    scope: TenantScope,
    req: HttpRequest,
    body: ApiJson<ResendEvents>,
) -> Result<HttpResponse, ApiError> {
    let (sent, subjects) = body.0.provider_body()?;
    let conn = connection(&state, &scope, vital::PROVIDER).await?;
    let Some(key) = open_secret(&state, &conn, vital::PROVIDER)? else {
        return Err(ApiError::ConnectionIncomplete(
            "the Vital connection has no api_key; set it with PUT \
             /api/v1/tenants/{tenant}/providers/vital"
                .into(),
        ));
    };
    let url = base_url(&conn, "Vital")?
        .join("v3/order/resend_events")
        .map_err(|e| ApiError::internal(anyhow::anyhow!("building the Vital URL: {e}")))?;
    let call = async {
        match state
            .providers
            .http
            .post(url)
            .header("x-vital-api-key", key.expose_secret())
            .json(&sent)
            .send()
            .await
        {
            Ok(res) => interpret("Vital", res).await,
            Err(e) => Called::failed(unreachable("Vital", &e)),
        }
    };
    recorded(
        &Ctx::new(&state, &scope, &req),
        vital::PROVIDER,
        "resend_events",
        subjects,
        &sent,
        call,
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionFilter {
    pub provider: Option<Provider>,
    /// A VectorCare request or Vital order id.
    pub subject: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionList {
    pub data: Vec<ActionRecord>,
    pub next_cursor: Option<String>,
}

/// List provider actions
///
/// Every call made to a provider for this tenant, newest first.
#[utoipa::path(
    tag = "provider actions",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        PageQuery,
        ActionFilter
    ),
    responses((status = 200, body = ActionList), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/actions")]
async fn list_actions(
    state: web::Data<AppState>,
    scope: TenantScope,
    page: web::Query<PageQuery>,
    filter: web::Query<ActionFilter>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let mut query = for_tenant(scope.id())
        .actions()
        .order_by_desc(provider_action::Column::Id);
    if let Some(cursor) = &page.cursor {
        let cursor = ActionId::parse(cursor)
            .map_err(|m| ApiError::Validation(vec![FieldError::new("cursor", m)]))?;
        query = query.filter(provider_action::Column::Id.lt(cursor));
    }
    if let Some(p) = filter.provider {
        query = query.filter(provider_action::Column::Provider.eq(p.as_str()));
    }
    if let Some(s) = &filter.subject {
        query = query.filter(provider_action::Column::Subject.eq(s.clone()));
    }
    let rows = query.limit(limit + 1).all(&state.db).await?;
    let (rows, next_cursor) = finish(rows, limit, |r| r.id.clone());
    Ok(HttpResponse::Ok().json(ActionList {
        data: rows.into_iter().map(ActionRecord::from).collect(),
        next_cursor,
    }))
}

/// A subject's actions, oldest first, for its timeline.
pub async fn for_subject(
    db: &impl sea_orm::ConnectionTrait,
    tenant: &crate::domain::TenantId,
    subject: &str,
) -> Result<Vec<ActionRecord>, sea_orm::DbErr> {
    Ok(for_tenant(tenant)
        .actions()
        .filter(provider_action::Column::Subject.eq(subject))
        .order_by_asc(provider_action::Column::Id)
        .limit(1000)
        .all(db)
        .await?
        .into_iter()
        .map(ActionRecord::from)
        .collect())
}
