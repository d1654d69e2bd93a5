//! Where the gateway acts toward the providers on a tenant's behalf. Each provider declares its
//! actions in its folder (`crate::providers::action`); here they become routes (`routes`), run
//! with the tenant's connection (`call`), and are recorded: every call shows in its subject's
//! timeline and in `GET /tenants/{tenant}/actions`. Inputs are checked before any call.

mod call;
mod routes;

use actix_web::{get, web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::ActionId;
use crate::error::{ApiError, FieldError};
use crate::providers::Provider;
use crate::store::{for_tenant, provider_action};
use crate::web::auth::TenantScope;
use crate::web::pagination::{finish, PageQuery};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(routes::Routes).service(list_actions);
}

/// One call made to a provider on a tenant's behalf, as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionRecord {
    pub id: ActionId,
    pub provider: Provider,
    /// The action's name, as `GET /api/v1/providers` lists it (`accept`).
    pub action: String,
    /// The subject concerned (a transport request, a trip, an order).
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
    F: std::future::Future<Output = call::Called>,
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionFilter {
    pub provider: Option<Provider>,
    /// A subject: a transport request, trip or order id.
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
