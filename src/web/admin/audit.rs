//! The audit log: every mutation of the admin API (who, what, target, when, outcome), written by
//! a middleware around `/api/v1` so that no handler can forget it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{get, web, HttpMessage, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::{AuditId, TenantId};
use crate::error::{ApiError, FieldError};
use crate::store::audit_entry;
use crate::web::auth::Principal;
use crate::web::pagination::{finish, PageQuery};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_audit);
}

/// `POST /api/v1/tenants/{tenant}/endpoints` → `tenants.endpoints.create`; an action-like last
/// segment names itself: `.../rotate-secret` → `tenants.endpoints.rotate-secret`.
pub fn action_name(method: &Method, pattern: &str) -> String {
    let parts: Vec<&str> = pattern
        .trim_start_matches("/api/v1/")
        .split('/')
        .filter(|s| !s.is_empty() && !s.starts_with('{'))
        .collect();
    let last_is_action = parts.last().is_some_and(|p| p.contains('-'));
    let verb = match *method {
        Method::POST if last_is_action => None,
        Method::POST => Some("create"),
        Method::PUT => Some("set"),
        Method::PATCH => Some("update"),
        Method::DELETE => Some("delete"),
        _ => Some("call"),
    };
    let mut name = parts.join(".");
    if let Some(v) = verb {
        name.push('.');
        name.push_str(v);
    }
    name
}

pub async fn audit_mutations(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = req.method().clone();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.call(req).await;
    }
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let path = req.path().to_owned();
    let res = next.call(req).await?;
    let Some(state) = state else { return Ok(res) };
    let principal = res.request().extensions().get::<Principal>().cloned();
    // Unauthenticated attempts are logged, not audited: the table is for what callers did.
    let Some(principal) = principal else {
        tracing::warn!(%method, status = res.status().as_u16(), "unauthenticated mutation refused");
        return Ok(res);
    };
    let mut pattern = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| path.clone());
    // The provider is part of what was done (`tenants.providers.vectorcare.set`); only a known
    // one, so a caller cannot write text of its own into the action.
    if let Some(p) = res
        .request()
        .match_info()
        .get("provider")
        .and_then(|p| crate::providers::Provider::parse(p).ok())
    {
        pattern = pattern.replace("{provider}", p.as_str());
    }
    let created = res
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.rsplit('/').next())
        .map(str::to_owned);
    let target = created.or_else(|| {
        let info = res.request().match_info();
        info.iter().last().map(|(_, v)| v.to_owned())
    });
    let tenant = res
        .request()
        .extensions()
        .get::<TenantId>()
        .cloned()
        .or_else(|| principal.tenant().cloned())
        .or_else(|| target.as_deref().and_then(|t| TenantId::parse(t).ok()));
    let status = res.status().as_u16();
    let row = audit_entry::ActiveModel {
        id: Set(AuditId::generate()),
        at: Set(Utc::now()),
        actor_token_id: Set(Some(principal.token_id.to_string())),
        actor_name: Set(Some(fit(&principal.name, 200))),
        actor_role: Set(Some(principal.role.name().to_owned())),
        tenant_id: Set(tenant.map(|t| t.to_string())),
        action: Set(action_name(&method, &pattern)),
        method: Set(method.to_string()),
        path: Set(fit(&path, 2048)),
        target: Set(target.map(|t| fit(&t, 200))),
        status: Set(i32::from(status)),
        outcome: Set(if status < 400 { "success" } else { "failure" }.to_owned()),
    };
    if let Err(e) = row.insert(&state.db).await {
        tracing::error!(error = %e, "writing the audit log failed");
    }
    Ok(res)
}

/// Text as its audit column holds it: at most `max` characters, NUL replaced. An entry is
/// never dropped for what a caller typed (a 3,000-character path still leaves its trace).
pub fn fit(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if out.contains('\0') {
        out = out.replace('\0', "\u{FFFD}");
    }
    out
}

/// After an admin change that succeeded, this process's caches start over: keys, tenants or
/// connections may have changed (the next webhook is verified against the new ones), and so may
/// an endpoint's URL, headers or secrets (the next delivery sees them).
pub async fn forget_caches_after_change(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.call(req).await;
    }
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let res = next.call(req).await?;
    if let Some(state) = state.filter(|_| res.status().as_u16() < 400) {
        state.ingest.forget_connections();
        state.delivery.forget_endpoints();
    }
    Ok(res)
}

/// One audited mutation.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: DateTime<Utc>,
    /// Token id of the caller.
    pub actor_token_id: Option<String>,
    pub actor_name: Option<String>,
    /// `admin` or `tenant`.
    pub actor_role: Option<String>,
    pub tenant_id: Option<String>,
    /// e.g. `tenants.create`, `tenants.endpoints.rotate-secret`, `tokens.delete`.
    pub action: String,
    pub method: String,
    pub path: String,
    /// Id of the resource acted on.
    pub target: Option<String>,
    /// HTTP status of the answer.
    pub status: i32,
    /// `success` (2xx/3xx) or `failure`.
    pub outcome: String,
}

impl From<audit_entry::Model> for AuditEntry {
    fn from(m: audit_entry::Model) -> Self {
        Self {
            id: m.id,
            at: m.at,
            actor_token_id: m.actor_token_id,
            actor_name: m.actor_name,
            actor_role: m.actor_role,
            tenant_id: m.tenant_id,
            action: m.action,
            method: m.method,
            path: m.path,
            target: m.target,
            status: m.status,
            outcome: m.outcome,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub data: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Tenant id (admins only; a tenant token always sees its own tenant's entries).
    pub tenant_id: Option<String>,
    /// Token id of the caller.
    pub actor: Option<String>,
    /// Exact action, e.g. `tenants.create`.
    pub action: Option<String>,
    /// Id of the resource acted on.
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Entries before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}

/// List the audit log
///
/// Newest first. Admins see everything; a tenant token sees its own tenant's entries.
#[utoipa::path(
    tag = "audit",
    params(PageQuery, AuditFilter),
    responses((status = 200, body = AuditList), CommonErrors),
    security(("bearer" = []))
)]
#[get("/audit")]
async fn list_audit(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
    filter: web::Query<AuditFilter>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    // A tenant's token sees its own tenant's entries only; an admin may ask for one tenant's.
    let tenant = match principal.tenant() {
        Some(own) => Some(own.to_string()),
        None => filter.tenant_id.clone(),
    };
    let mut query = audit_entry::of(tenant.as_deref()).order_by_desc(audit_entry::Column::Id);
    if let Some(cursor) = &page.cursor {
        let cursor = AuditId::parse(cursor)
            .map_err(|m| ApiError::Validation(vec![FieldError::new("cursor", m)]))?;
        query = query.filter(audit_entry::Column::Id.lt(cursor));
    }
    if let Some(v) = &filter.actor {
        query = query.filter(audit_entry::Column::ActorTokenId.eq(v.clone()));
    }
    if let Some(v) = &filter.action {
        query = query.filter(audit_entry::Column::Action.eq(v.clone()));
    }
    if let Some(v) = &filter.target {
        query = query.filter(audit_entry::Column::Target.eq(v.clone()));
    }
    if let Some(v) = &filter.outcome {
        query = query.filter(audit_entry::Column::Outcome.eq(v.clone()));
    }
    if let Some(v) = filter.since {
        query = query.filter(audit_entry::Column::At.gte(v));
    }
    if let Some(v) = filter.until {
        query = query.filter(audit_entry::Column::At.lt(v));
    }
    let rows = query.limit(limit + 1).all(&state.db).await?;
    let (rows, next_cursor) = finish(rows, limit, |a| a.id.clone());
    Ok(HttpResponse::Ok().json(AuditList {
        data: rows.into_iter().map(AuditEntry::from).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_named_after_the_route() {
        assert_eq!(
            action_name(&Method::POST, "/api/v1/tenants"),
            "tenants.create"
        );
        assert_eq!(
            action_name(&Method::PATCH, "/api/v1/tenants/{tenant}"),
            "tenants.update"
        );
        assert_eq!(
            action_name(
                &Method::PUT,
                "/api/v1/tenants/{tenant}/providers/vectorcare"
            ),
            "tenants.providers.vectorcare.set"
        );
        assert_eq!(
            action_name(
                &Method::POST,
                "/api/v1/tenants/{tenant}/endpoints/{endpoint}/rotate-secret"
            ),
            "tenants.endpoints.rotate-secret"
        );
        assert_eq!(
            action_name(&Method::DELETE, "/api/v1/tokens/{token}"),
            "tokens.delete"
        );
    }
}
