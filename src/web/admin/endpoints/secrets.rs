//! An endpoint's signing secrets: rotated with a grace period, listed as hints.

use std::time::Duration;

use actix_web::{get, post, web, HttpResponse};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use utoipa_actix_web::service_config::ServiceConfig;

use super::types::{RotateSecret, SecretInfo, SecretRotated};
use super::{find, MAX_GRACE};
use crate::domain::{EndpointId, SecretId, SigningSecret};
use crate::error::{ApiError, FieldError, Problem};
use crate::store::endpoint_secret;
use crate::web::auth::TenantScope;
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(rotate_secret).service(list_secrets);
}

pub(super) fn new_secret(
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
