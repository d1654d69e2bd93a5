//! VectorCare's Open API calls as routes: each checks its input, calls with the tenant's OAuth2
//! credentials, and records the call on the subject's timeline.

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::Utc;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::Value;
use utoipa_actix_web::service_config::ServiceConfig;

use super::client::Credentials;
use super::{
    base_url, connection, interpret, open_secret, recorded, unreachable, ActionErrors,
    ActionResult, Called, Ctx,
};
use crate::error::ApiError;
use crate::providers::vectorcare::actions::{
    self as calls, Accept, ChangeRequest, Decline, LocationUpdate, ProposeTime, ResponseNotes,
    StateUpdate, VectorCareCall,
};
use crate::providers::vectorcare::PROVIDER;
use crate::store::provider_connection;
use crate::web::auth::TenantScope;
use crate::web::http::ApiJson;
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(accept)
        .service(decline)
        .service(state_update)
        .service(location_update)
        .service(propose_time)
        .service(change_request);
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
    let request = calls::request_ref(request)?;
    let conn = connection(state, scope, PROVIDER).await?;
    let secret = open_secret(state, &conn)?;
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
        PROVIDER,
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
