//! Tenants: the customer organizations whose webhooks the gateway receives.

use actix_web::http::header;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::{Slug, TenantId};
use crate::error::{ApiError, FieldError, Problem};
use crate::store::tenant;
use crate::web::auth::{Principal, TenantScope};
use crate::web::http::ApiJson;
use crate::web::pagination::{finish, PageQuery};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_tenants)
        .service(create_tenant)
        .service(get_tenant)
        .service(update_tenant)
        .service(delete_tenant);
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Disabled,
}

/// A customer organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    /// URL-safe name used in the tenant's webhook URLs.
    #[schema(value_type = String, example = "acme-health")]
    pub slug: Slug,
    #[schema(example = "Acme Health")]
    pub name: String,
    /// The organization's id in the integrator's own system; also usable in webhook URLs
    /// (`/webhooks/{provider}?customer_id=...`).
    #[schema(example = "123")]
    pub customer_id: Option<String>,
    /// A disabled tenant's webhooks are refused; its data stays.
    pub status: TenantStatus,
    /// Days its events' payloads are kept before they are purged; `null`: the gateway's
    /// default (`retention_days`, 30 unless configured).
    pub retention_days: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<tenant::Model> for Tenant {
    fn from(m: tenant::Model) -> Self {
        Self {
            id: m.id,
            slug: m.slug,
            name: m.name,
            customer_id: m.customer_id,
            status: if m.disabled {
                TenantStatus::Disabled
            } else {
                TenantStatus::Active
            },
            retention_days: m.retention_days,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub data: Vec<Tenant>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    #[schema(example = "acme-health")]
    pub slug: String,
    #[schema(example = "Acme Health")]
    pub name: String,
    #[schema(example = "123")]
    pub customer_id: Option<String>,
    /// Days its events' payloads are kept, 1 to 3650; absent or `null`: the gateway's default.
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 3650, example = 30)]
    pub retention_days: Option<u32>,
}

/// Fields to change; absent fields stay as they are. `customer_id: ""` removes it;
/// `retention_days: null` returns to the gateway's default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub customer_id: Option<String>,
    pub status: Option<TenantStatus>,
    /// Days its events' payloads are kept, 1 to 3650; `null`: the gateway's default.
    #[serde(default, deserialize_with = "crate::domain::numbers::present_u32")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 3650)]
    pub retention_days: Option<Option<u32>>,
}

fn check_retention(days: u32, errors: &mut Vec<FieldError>) -> Option<i32> {
    if crate::config::RETENTION_DAYS.contains(&days) {
        i32::try_from(days).ok()
    } else {
        errors.push(FieldError::new("retention_days", "must be 1 to 3650 days"));
        None
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantFilter {
    /// Only tenants whose name contains this text (case-insensitive).
    pub name: Option<String>,
    pub status: Option<TenantStatus>,
}

fn check_name(name: &str, errors: &mut Vec<FieldError>) {
    let len = name.trim().chars().count();
    if len == 0 || len > 200 {
        errors.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
}

fn check_customer_id(customer_id: &str, errors: &mut Vec<FieldError>) {
    let ok = !customer_id.is_empty()
        && customer_id.len() <= 200
        && customer_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        errors.push(FieldError::new(
            "customer_id",
            "must be 1 to 200 characters of letters, digits, '-', '_' and '.'",
        ));
    }
}

fn parse_slug(text: &str, errors: &mut Vec<FieldError>) -> Option<Slug> {
    Slug::parse(text)
        .map_err(|m| errors.push(FieldError::new("slug", m)))
        .ok()
}

/// List tenants
///
/// Admins see every tenant; a tenant token sees only its own. Ordered by creation.
#[utoipa::path(
    tag = "tenants",
    params(PageQuery, TenantFilter),
    responses((status = 200, body = TenantList), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants")]
async fn list_tenants(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
    filter: web::Query<TenantFilter>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let mut query = tenant::live().order_by_asc(tenant::Column::Id);
    if let Some(own) = principal.tenant() {
        query = query.filter(tenant::Column::Id.eq(own.clone()));
    }
    if let Some(cursor) = &page.cursor {
        let cursor = TenantId::parse(cursor)
            .map_err(|m| ApiError::Validation(vec![FieldError::new("cursor", m)]))?;
        query = query.filter(tenant::Column::Id.gt(cursor));
    }
    if let Some(name) = filter.name.as_deref().filter(|n| !n.is_empty()) {
        let pattern = format!("%{}%", name.to_lowercase().replace(['%', '_'], ""));
        use sea_orm::sea_query::{Expr, ExprTrait, Func};
        query =
            query.filter(Expr::expr(Func::lower(Expr::col(tenant::Column::Name))).like(pattern));
    }
    if let Some(status) = filter.status {
        query = query.filter(tenant::Column::Disabled.eq(status == TenantStatus::Disabled));
    }
    let rows = query.limit(limit + 1).all(&state.db).await?;
    let (rows, next_cursor) = finish(rows, limit, |t| t.id.clone());
    Ok(HttpResponse::Ok().json(TenantList {
        data: rows.into_iter().map(Tenant::from).collect(),
        next_cursor,
    }))
}

/// Create a tenant
///
/// Admin only. The slug and the optional `customer_id` must be unique (409 otherwise).
#[utoipa::path(
    tag = "tenants",
    request_body = CreateTenant,
    responses(
        (status = 201, body = Tenant, headers(("Location" = String))),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "slug or customer_id taken (`conflict`)"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[post("/tenants")]
async fn create_tenant(
    state: web::Data<AppState>,
    principal: Principal,
    body: ApiJson<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    let input = body.0;
    let mut errors = Vec::new();
    let slug = parse_slug(&input.slug, &mut errors);
    check_name(&input.name, &mut errors);
    let customer_id = input.customer_id.filter(|c| !c.is_empty());
    if let Some(c) = &customer_id {
        check_customer_id(c, &mut errors);
    }
    let retention_days = input
        .retention_days
        .and_then(|d| check_retention(d, &mut errors));
    let Some(slug) = slug.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let now = Utc::now();
    let model = tenant::ActiveModel {
        id: Set(TenantId::generate()),
        slug: Set(slug),
        name: Set(input.name.trim().to_owned()),
        customer_id: Set(customer_id),
        disabled: Set(false),
        retention_days: Set(retention_days),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
    }
    .insert(&state.db)
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/tenants/{}", model.id)))
        .json(Tenant::from(model)))
}

/// Get a tenant
///
/// `{tenant}` is the tenant's id or slug.
#[utoipa::path(
    tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id (`tn_...`) or slug")),
    responses((status = 200, body = Tenant), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}")]
async fn get_tenant(scope: TenantScope) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(Tenant::from(scope.tenant)))
}

/// Update or disable a tenant
///
/// Admin only. `status: "disabled"` refuses the tenant's webhooks from then on (its data stays);
/// `status: "active"` enables it again.
#[utoipa::path(
    tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id (`tn_...`) or slug")),
    request_body = UpdateTenant,
    responses(
        (status = 200, body = Tenant),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "slug or customer_id taken (`conflict`)"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[patch("/tenants/{tenant}")]
async fn update_tenant(
    state: web::Data<AppState>,
    scope: TenantScope,
    body: ApiJson<UpdateTenant>,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let input = body.0;
    let mut errors = Vec::new();
    let mut model: tenant::ActiveModel = scope.tenant.into();
    if let Some(s) = &input.slug {
        if let Some(slug) = parse_slug(s, &mut errors) {
            model.slug = Set(slug);
        }
    }
    if let Some(name) = &input.name {
        check_name(name, &mut errors);
        model.name = Set(name.trim().to_owned());
    }
    if let Some(c) = input.customer_id {
        if c.is_empty() {
            model.customer_id = Set(None);
        } else {
            check_customer_id(&c, &mut errors);
            model.customer_id = Set(Some(c));
        }
    }
    if let Some(status) = input.status {
        model.disabled = Set(status == TenantStatus::Disabled);
    }
    match input.retention_days {
        None => {}
        Some(None) => model.retention_days = Set(None),
        Some(Some(days)) => {
            if let Some(d) = check_retention(days, &mut errors) {
                model.retention_days = Set(Some(d));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    model.updated_at = Set(Utc::now());
    let model = model.update(&state.db).await?;
    Ok(HttpResponse::Ok().json(Tenant::from(model)))
}

/// Delete a tenant
///
/// Admin only. The tenant is gone at once: every route and its webhook URL answer 404, its tokens
/// no longer work, its slug and customer id are free for a new tenant, and its data keys are
/// destroyed in the same transaction, so every payload it stored is unreadable from then on.
/// Its rows (events, deliveries, attempts, connections, endpoints, tokens) are then removed in
/// the background in bounded batches, so deleting a large tenant never stalls ingestion.
#[utoipa::path(
    tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id (`tn_...`) or slug")),
    responses((status = 204, description = "Deleted"), CommonErrors),
    security(("bearer" = []))
)]
#[delete("/tenants/{tenant}")]
async fn delete_tenant(
    state: web::Data<AppState>,
    scope: TenantScope,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let txn = crate::store::begin_write(&state.db).await?;
    crate::store::data_key::destroy_all(&txn, &scope.tenant.id).await?;
    tenant::mark_deleted(&txn, &scope.tenant.id).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
