//! API tokens: JWTs an admin mints for admins or for one tenant; listed and revoked here.

use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::{TenantId, TokenId};
use crate::error::{ApiError, FieldError, Problem};
use crate::store::{api_token, tenant};
use crate::web::auth::{issue_token, Principal, Role};
use crate::web::http::ApiJson;
use crate::web::pagination::{finish, PageQuery};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_tokens)
        .service(create_token)
        .service(get_token)
        .service(revoke_token);
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    /// Everything, every tenant.
    Admin,
    /// One tenant's own resources.
    Tenant,
    /// Reads one endpoint's events and moves its cursor, nothing else; made at
    /// `POST /tenants/{tenant}/endpoints/{endpoint}/tokens`.
    Endpoint,
}

/// The roles `POST /tokens` makes; endpoint tokens are made on their endpoint.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NewTokenRole {
    /// Everything, every tenant.
    Admin,
    /// One tenant's own resources.
    Tenant,
}

/// A token as listed: never the JWT itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub id: TokenId,
    pub name: String,
    pub role: TokenRole,
    pub tenant_id: Option<TenantId>,
    /// The endpoint an `endpoint` token reads.
    pub endpoint_id: Option<crate::domain::EndpointId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_token::Model> for Token {
    fn from(m: api_token::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            role: match m.role.as_str() {
                "admin" => TokenRole::Admin,
                "endpoint" => TokenRole::Endpoint,
                _ => TokenRole::Tenant,
            },
            tenant_id: m.tenant_id,
            endpoint_id: m.endpoint_id,
            created_at: m.created_at,
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
        }
    }
}

/// The new token with its JWT: shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreated {
    #[serde(flatten)]
    pub info: Token,
    /// Send as `Authorization: Bearer <token>`. Not shown again.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub data: Vec<Token>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    #[schema(example = "dispatch integration")]
    pub name: String,
    pub role: NewTokenRole,
    /// Required for `tenant` tokens: the tenant's id or slug.
    pub tenant: Option<String>,
    /// Lifetime, e.g. `30d` or `12h` (default: the gateway's `token_default_ttl`, at most 10 years).
    pub expires_in: Option<String>,
}

/// List tokens
///
/// Admin only. Revoked and expired tokens stay listed for reference.
#[utoipa::path(
    tag = "tokens",
    params(PageQuery),
    responses((status = 200, body = TokenList), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tokens")]
async fn list_tokens(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    let limit = page.limit()?;
    let mut query = api_token::Entity::find().order_by_asc(api_token::Column::Id);
    if let Some(cursor) = &page.cursor {
        let cursor = TokenId::parse(cursor)
            .map_err(|m| ApiError::Validation(vec![FieldError::new("cursor", m)]))?;
        query = query.filter(api_token::Column::Id.gt(cursor));
    }
    let rows = query.limit(limit + 1).all(&state.db).await?;
    let (rows, next_cursor) = finish(rows, limit, |t| t.id.clone());
    Ok(HttpResponse::Ok().json(TokenList {
        data: rows.into_iter().map(Token::from).collect(),
        next_cursor,
    }))
}

/// Create a token
///
/// Admin only. The JWT is in this answer only.
#[utoipa::path(
    tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 201, body = TokenCreated),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "the tenant named in `tenant` does not exist (`reference_not_found`; `errors` names the field)"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[post("/tokens")]
async fn create_token(
    state: web::Data<AppState>,
    principal: Principal,
    body: ApiJson<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    let input = body.0;
    let mut errors = Vec::new();
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    let ttl = token_ttl(&state, input.expires_in.as_deref(), &mut errors);
    let role = match (input.role, input.tenant.as_deref()) {
        (NewTokenRole::Admin, None) => Some(Role::Admin),
        (NewTokenRole::Admin, Some(_)) => {
            errors.push(FieldError::new("tenant", "must be absent for admin tokens"));
            None
        }
        (NewTokenRole::Tenant, None) => {
            errors.push(FieldError::new("tenant", "is required for tenant tokens"));
            None
        }
        (NewTokenRole::Tenant, Some(reference)) => {
            match tenant::find_by_ref(&state.db, reference).await? {
                Some(t) => Some(Role::Tenant(t.id)),
                // Answered after the other fields' checks: an invalid body is a 422 first.
                None => None,
            }
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (Some(role), Some(ttl)) = (role, ttl) else {
        return Err(ApiError::ReferenceNotFound {
            field: "tenant".into(),
            message: "no such tenant".into(),
        });
    };
    let (row, token) = issue_token(
        &state.db,
        &state.jwt,
        name,
        &role,
        ttl,
        Some(&principal.token_id),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/tokens/{}", row.id)))
        .json(TokenCreated {
            info: Token::from(row),
            token,
        }))
}

/// A token's lifetime: `expires_in` (one minute to ten years) or the gateway's default.
pub(crate) fn token_ttl(
    state: &AppState,
    expires_in: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<std::time::Duration> {
    match expires_in {
        None => Some(state.settings.token_default_ttl),
        Some(text) => match crate::domain::bounded_duration(
            text,
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(10 * 366 * 86_400),
        ) {
            Ok(d) => Some(d),
            Err(m) => {
                errors.push(FieldError::new("expires_in", m));
                None
            }
        },
    }
}

async fn find(state: &AppState, id: &str) -> Result<api_token::Model, ApiError> {
    let id = TokenId::parse(id).map_err(|_| ApiError::NotFound)?;
    api_token::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Get a token
#[utoipa::path(
    tag = "tokens",
    params(("token" = TokenId, Path, description = "Token id")),
    responses((status = 200, body = Token), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tokens/{token}")]
async fn get_token(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    Ok(HttpResponse::Ok().json(Token::from(find(&state, &path).await?)))
}

/// Revoke a token
///
/// Admin only. Takes effect at once, on every replica: every request checks the token's row.
#[utoipa::path(
    tag = "tokens",
    params(("token" = TokenId, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), CommonErrors),
    security(("bearer" = []))
)]
#[delete("/tokens/{token}")]
async fn revoke_token(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    let row = find(&state, &path).await?;
    if row.revoked_at.is_none() {
        let mut model: api_token::ActiveModel = row.into();
        model.revoked_at = Set(Some(Utc::now()));
        model.update(&state.db).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}
