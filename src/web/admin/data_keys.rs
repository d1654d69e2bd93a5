//! A tenant's data keys: listed, rotated (new events use a new key; older payloads stay
//! readable under theirs) and destroyed (crypto-shredding: every payload the key sealed becomes
//! unreadable at once, on every replica).

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::DataKeyId;
use crate::error::ApiError;
use crate::store::data_key;
use crate::web::auth::TenantScope;
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_data_keys)
        .service(create_data_key)
        .service(destroy_data_key);
}

/// One data key; the key itself is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataKey {
    pub id: DataKeyId,
    pub created_at: DateTime<Utc>,
    /// When it was destroyed (what it sealed is unreadable since); `null` while live.
    pub destroyed_at: Option<DateTime<Utc>>,
    /// New events are sealed with this key (the newest live one).
    pub active: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DataKeyList {
    /// Newest first.
    pub data: Vec<DataKey>,
}

fn view(m: data_key::Model, active: bool) -> DataKey {
    DataKey {
        id: m.id,
        created_at: m.created_at,
        destroyed_at: m.destroyed_at,
        active,
    }
}

/// List a tenant's data keys
///
/// The keys its event payloads are sealed with, newest first; the first live one seals new
/// events.
#[utoipa::path(
    tag = "patient data",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = DataKeyList), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/data-keys")]
async fn list_data_keys(
    state: web::Data<AppState>,
    scope: TenantScope,
) -> Result<HttpResponse, ApiError> {
    let rows = data_key::list_for_tenant(&state.db, scope.id()).await?;
    let active = rows
        .iter()
        .find(|m| m.destroyed_at.is_none())
        .map(|m| m.id.clone());
    let data = rows
        .into_iter()
        .map(|m| {
            let is_active = active.as_ref() == Some(&m.id);
            view(m, is_active)
        })
        .collect();
    Ok(HttpResponse::Ok().json(DataKeyList { data }))
}

/// Rotate a tenant's data key
///
/// Admin only. Makes a new key that seals the tenant's events from now on; payloads sealed
/// before stay readable under their own keys until those are destroyed.
#[utoipa::path(
    tag = "patient data",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = DataKey), CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/data-keys")]
async fn create_data_key(
    state: web::Data<AppState>,
    scope: TenantScope,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let (row, _) = data_key::create(&state.db, &state.cipher, scope.id()).await?;
    Ok(HttpResponse::Created().json(view(row, true)))
}

/// Destroy a data key (crypto-shredding)
///
/// Admin only, and final. The key is erased: every payload it sealed (normalized event, webhook
/// as received, headers) becomes unreadable at once, on every replica; those events answer
/// `payload: shredded`, and their pending deliveries end as `dead`. The events' skeletons,
/// deliveries, attempts and disclosures stay. If it was the active key, the tenant's next event
/// is sealed under a new one. Destroying a destroyed key changes nothing.
#[utoipa::path(
    tag = "patient data",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("data_key" = DataKeyId, Path, description = "Data key id")
    ),
    responses((status = 204, description = "Destroyed"), CommonErrors),
    security(("bearer" = []))
)]
#[delete("/tenants/{tenant}/data-keys/{data_key}")]
async fn destroy_data_key(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let id = DataKeyId::parse(&path.1).map_err(|_| ApiError::NotFound)?;
    data_key::destroy(&state.db, scope.id(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::NoContent().finish())
}
