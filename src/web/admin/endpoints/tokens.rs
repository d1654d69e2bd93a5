//! Endpoint tokens: read-only access to one endpoint's events (and its cursor), for a pull
//! endpoint's receiver or a push receiver filling a gap; revocable at once.

use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpResponse};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::find;
use crate::domain::TokenId;
use crate::error::{ApiError, FieldError, Problem};
use crate::store::api_token;
use crate::web::admin::tokens::{token_ttl, Token, TokenCreated};
use crate::web::auth::{issue_token, Role, TenantScope};
use crate::web::http::ApiJson;
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_endpoint_token)
        .service(list_endpoint_tokens)
        .service(revoke_endpoint_token);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointToken {
    #[schema(example = "lab pull reader")]
    pub name: String,
    /// Lifetime, e.g. `365d` (default: the gateway's `token_default_ttl`, at most 10 years).
    pub expires_in: Option<String>,
}

/// Create an endpoint token
///
/// A token that reads this endpoint's events (`GET .../events`) and moves its cursor
/// (`PUT .../cursor`), and nothing else. The JWT is in this answer only.
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = crate::domain::EndpointId, Path, description = "Endpoint id")
    ),
    request_body = CreateEndpointToken,
    responses(
        (status = 201, body = TokenCreated),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/endpoints/{endpoint}/tokens")]
async fn create_endpoint_token(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    body: ApiJson<CreateEndpointToken>,
) -> Result<HttpResponse, ApiError> {
    let ep = find(&state, &scope, &path.1).await?;
    let mut errors = Vec::new();
    let name = body.0.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    let ttl = token_ttl(&state, body.0.expires_in.as_deref(), &mut errors);
    let Some(ttl) = ttl.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let role = Role::Endpoint(scope.id().clone(), ep.id.clone());
    let (row, token) = issue_token(
        &state.db,
        &state.jwt,
        &name,
        &role,
        ttl,
        Some(&scope.principal.token_id),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!(
                "/api/v1/tenants/{}/endpoints/{}/tokens/{}",
                scope.id(),
                ep.id,
                row.id
            ),
        ))
        .json(TokenCreated {
            info: Token::from(row),
            token,
        }))
}

/// List an endpoint's tokens
///
/// Revoked and expired tokens stay listed; never the JWTs.
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = crate::domain::EndpointId, Path, description = "Endpoint id")
    ),
    responses((status = 200, body = Vec<Token>), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/endpoints/{endpoint}/tokens")]
async fn list_endpoint_tokens(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let ep = find(&state, &scope, &path.1).await?;
    let rows = api_token::of_endpoint(&state.db, &ep.id).await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(Token::from).collect::<Vec<_>>()))
}

/// Revoke an endpoint token
///
/// Takes effect at once, on every replica.
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = crate::domain::EndpointId, Path, description = "Endpoint id"),
        ("token" = TokenId, Path, description = "Token id")
    ),
    responses((status = 204, description = "Revoked"), CommonErrors),
    security(("bearer" = []))
)]
#[delete("/tenants/{tenant}/endpoints/{endpoint}/tokens/{token}")]
async fn revoke_endpoint_token(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let ep = find(&state, &scope, &path.1).await?;
    let id = TokenId::parse(&path.2).map_err(|_| ApiError::NotFound)?;
    let row = api_token::find_of_endpoint(&state.db, &ep.id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if row.revoked_at.is_none() {
        let mut model: api_token::ActiveModel = row.into();
        model.revoked_at = Set(Some(Utc::now()));
        model.update(&state.db).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}
