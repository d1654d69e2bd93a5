//! Deliveries and their attempts; replay (redeliver, recover, resend), test sends, and
//! per-endpoint statistics.

use actix_web::http::header;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::{AttemptId, DeliveryId, DeliveryStatus, EndpointId, EventId};
use crate::error::{ApiError, FieldError, Problem};
use crate::store::{delivery, delivery_attempt, endpoint, event, for_tenant, payload};
use crate::web::auth::TenantScope;
use crate::web::http::ApiJson;
use crate::web::pagination::{finish, PageQuery};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_deliveries)
        .service(get_delivery)
        .service(redeliver)
        .service(recover)
        .service(resend)
        .service(send_test)
        .service(stats);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
    pub subject: String,
    /// `pending` (waiting or in flight), `succeeded`, or `dead` (replayable).
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<delivery::Model> for Delivery {
    fn from(m: delivery::Model) -> Self {
        Self {
            id: m.id,
            event_id: m.event_id,
            endpoint_id: m.endpoint_id,
            subject: m.subject,
            status: m.status,
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            last_status_code: m.last_status_code,
            last_error: m.last_error,
            created_at: m.created_at,
            completed_at: m.completed_at,
        }
    }
}

/// One HTTP attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attempt {
    pub id: AttemptId,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    /// `timeout`, `connect`, `dns`, `tls`, `http_status`, `redirect`, `ssrf_refused`, `other`;
    /// `null` on success.
    pub error_class: Option<String>,
    pub error: Option<String>,
    /// The first KiB of the endpoint's answer.
    pub response_snippet: Option<String>,
    pub success: bool,
}

impl From<delivery_attempt::Model> for Attempt {
    fn from(m: delivery_attempt::Model) -> Self {
        Self {
            id: m.id,
            attempt: m.attempt,
            at: m.at,
            status_code: m.status_code,
            duration_ms: m.duration_ms,
            error_class: m.error_class,
            error: m.error,
            response_snippet: m.response_snippet,
            success: m.success,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub attempt_log: Vec<Attempt>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub data: Vec<Delivery>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<String>,
    pub event_id: Option<String>,
    /// `pending`, `succeeded`, `dead`.
    pub status: Option<DeliveryStatus>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverInput {
    /// Deliveries created at or after this time (RFC 3339).
    pub since: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    /// How many failed or dead deliveries were scheduled again.
    pub recovered: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendInput {
    pub endpoint_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    pub success: bool,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub response_snippet: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointStats {
    pub endpoint_id: EndpointId,
    /// Attempts in the window (last 24 hours).
    pub attempts: u64,
    pub successes: u64,
    /// `successes / attempts`; `null` without attempts.
    pub success_rate: Option<f64>,
    pub latency_ms: Percentiles,
    /// Deliveries pending now.
    pub backlog: u64,
    pub oldest_pending_at: Option<DateTime<Utc>>,
    pub dead: u64,
}

#[derive(Debug, Serialize, ToSchema, Default)]
pub struct Percentiles {
    pub p50: Option<i32>,
    pub p90: Option<i32>,
    pub p99: Option<i32>,
    pub max: Option<i32>,
}

async fn find(
    state: &AppState,
    scope: &TenantScope,
    id: &str,
) -> Result<delivery::Model, ApiError> {
    let id = DeliveryId::parse(id).map_err(|_| ApiError::NotFound)?;
    for_tenant(scope.id())
        .deliveries()
        .filter(delivery::Column::Id.eq(id))
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound)
}

async fn find_endpoint(
    state: &AppState,
    scope: &TenantScope,
    id: &str,
) -> Result<endpoint::Model, ApiError> {
    let id = EndpointId::parse(id).map_err(|_| ApiError::NotFound)?;
    endpoint::find_for_tenant(&state.db, scope.id(), &id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// List deliveries
///
/// Newest first.
#[utoipa::path(
    tag = "deliveries",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery, DeliveryFilter),
    responses((status = 200, body = DeliveryList), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/deliveries")]
async fn list_deliveries(
    state: web::Data<AppState>,
    scope: TenantScope,
    page: web::Query<PageQuery>,
    filter: web::Query<DeliveryFilter>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let mut q = for_tenant(scope.id())
        .deliveries()
        .order_by_desc(delivery::Column::Id);
    if let Some(c) = &page.cursor {
        let c = DeliveryId::parse(c)
            .map_err(|m| ApiError::Validation(vec![FieldError::new("cursor", m)]))?;
        q = q.filter(delivery::Column::Id.lt(c));
    }
    if let Some(e) = &filter.endpoint_id {
        q = q.filter(delivery::Column::EndpointId.eq(e.clone()));
    }
    if let Some(e) = &filter.event_id {
        q = q.filter(delivery::Column::EventId.eq(e.clone()));
    }
    if let Some(s) = &filter.status {
        q = q.filter(delivery::Column::Status.eq(*s));
    }
    let rows = q.limit(limit + 1).all(&state.db).await?;
    let (rows, next_cursor) = finish(rows, limit, |d| d.id.clone());
    Ok(HttpResponse::Ok().json(DeliveryList {
        data: rows.into_iter().map(Delivery::from).collect(),
        next_cursor,
    }))
}

/// Get a delivery with its attempt log
#[utoipa::path(
    tag = "deliveries",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("delivery" = DeliveryId, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryDetail), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/deliveries/{delivery}")]
async fn get_delivery(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let d = find(&state, &scope, &path.1).await?;
    let attempts = for_tenant(scope.id())
        .attempts()
        .filter(delivery_attempt::Column::DeliveryId.eq(d.id.clone()))
        .order_by_asc(delivery_attempt::Column::Id)
        .all(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryDetail {
        delivery: Delivery::from(d),
        attempt_log: attempts.into_iter().map(Attempt::from).collect(),
    }))
}

/// Redeliver a delivery
///
/// Schedules it again now, whatever its state (a `succeeded` one is sent once more); its attempt
/// log continues. A delivery to a deleted endpoint cannot be sent again (`409 conflict`).
#[utoipa::path(
    tag = "deliveries",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("delivery" = DeliveryId, Path, description = "Delivery id")),
    responses(
        (status = 202, body = Delivery),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the delivery's endpoint was deleted (`conflict`)"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "the event's payload was purged (`event_purged`) or shredded (`payload_shredded`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/deliveries/{delivery}/redeliver")]
async fn redeliver(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let d = find(&state, &scope, &path.1).await?;
    require_held(payload::held(&state.db, &d.event_id).await?)?;
    if endpoint::find_for_tenant(&state.db, scope.id(), &d.endpoint_id)
        .await?
        .is_none()
    {
        return Err(ApiError::Conflict {
            field: "endpoint_id".into(),
            message: "the delivery's endpoint was deleted; it cannot be sent again".into(),
        });
    }
    let mut m: delivery::ActiveModel = d.into();
    let now = Utc::now();
    m.status = Set(DeliveryStatus::Pending.to_owned());
    m.next_attempt_at = Set(now);
    m.leased_until = Set(None);
    m.leased_by = Set(None);
    m.completed_at = Set(None);
    m.updated_at = Set(now);
    let d = m.update(&state.db).await?;
    state.delivery.poke();
    Ok(HttpResponse::Accepted().json(Delivery::from(d)))
}

/// Recover an endpoint's failed deliveries
///
/// Schedules again now every dead delivery, and every pending one that has already failed, created
/// since the given time.
#[utoipa::path(
    tag = "deliveries",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("endpoint" = EndpointId, Path, description = "Endpoint id")),
    request_body = RecoverInput,
    responses((status = 200, body = Recovered), CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/endpoints/{endpoint}/recover")]
async fn recover(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    body: ApiJson<RecoverInput>,
) -> Result<HttpResponse, ApiError> {
    let ep = find_endpoint(&state, &scope, &path.1).await?;
    let now = Utc::now();
    let res = for_tenant(scope.id())
        .update_deliveries()
        .col_expr(
            delivery::Column::Status,
            Expr::value(DeliveryStatus::Pending),
        )
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
        .col_expr(
            delivery::Column::CompletedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
        .filter(delivery::Column::EndpointId.eq(ep.id.clone()))
        .filter(delivery::Column::CreatedAt.gte(body.0.since))
        .filter(
            sea_orm::Condition::any()
                .add(delivery::Column::Status.eq(DeliveryStatus::Dead))
                .add(
                    sea_orm::Condition::all()
                        .add(delivery::Column::Status.eq(DeliveryStatus::Pending))
                        .add(delivery::Column::Attempts.gt(0))
                        .add(delivery::Column::LeasedBy.is_null()),
                ),
        )
        .exec(&state.db)
        .await?;
    state.delivery.poke();
    Ok(HttpResponse::Ok().json(Recovered {
        recovered: res.rows_affected,
    }))
}

/// Send an event again to one endpoint
///
/// Creates a new delivery of the event to the endpoint (even one whose filters would not match).
#[utoipa::path(
    tag = "deliveries",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("event" = EventId, Path, description = "Event id")),
    request_body = ResendInput,
    responses(
        (status = 201, body = Delivery),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "the event's payload was purged (`event_purged`) or shredded (`payload_shredded`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/events/{event}/resend")]
async fn resend(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    body: ApiJson<ResendInput>,
) -> Result<HttpResponse, ApiError> {
    let event_id = EventId::parse(&path.1).map_err(|_| ApiError::NotFound)?;
    let ev = event::find_for_tenant(&state.db, scope.id(), &event_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    require_held(payload::held(&state.db, &ev.id).await?)?;
    let ep = find_endpoint(&state, &scope, &body.0.endpoint_id)
        .await
        .map_err(|_| {
            ApiError::Validation(vec![FieldError::new(
                "endpoint_id",
                "no such endpoint for this tenant",
            )])
        })?;
    let now = Utc::now();
    let d = delivery::ActiveModel {
        id: Set(DeliveryId::generate()),
        tenant_id: Set(scope.id().clone()),
        event_id: Set(ev.id),
        endpoint_id: Set(ep.id),
        subject: Set(ev.subject),
        status: Set(DeliveryStatus::Pending.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        leased_until: Set(None),
        leased_by: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_status_code: Set(None),
        last_error: Set(None),
        completed_at: Set(None),
        // Out of sequence: the event keeps the number it had, and a receiver's count of the
        // endpoint's sequence is not moved by a resend.
        seq: Set(None),
    }
    .insert(&state.db)
    .await?;
    state.delivery.poke();
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/tenants/{}/deliveries/{}", scope.id(), d.id),
        ))
        .json(Delivery::from(d)))
}

/// Send a test event to an endpoint
///
/// One signed `gateway.test` CloudEvent, sent now; the answer says how the endpoint replied.
/// Nothing is stored or retried.
#[utoipa::path(
    tag = "deliveries",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("endpoint" = EndpointId, Path, description = "Endpoint id")),
    responses((status = 200, body = TestResult), CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/endpoints/{endpoint}/test")]
async fn send_test(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let ep = find_endpoint(&state, &scope, &path.1).await?;
    let now = Utc::now();
    // The same endpoint view (URL, headers, decrypted secrets) the workers sign with.
    let snap = state
        .delivery
        .snapshot(&ep.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let id = format!("test_{}", uuid::Uuid::now_v7().simple());
    let body = serde_json::to_vec(&serde_json::json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("/gateway/tenants/{}", scope.id()),
        "type": "gateway.test",
        "subject": ep.id.as_str(),
        "time": crate::normalize::rfc3339(now),
        "datacontenttype": "application/json",
        "tenantid": scope.id().as_str(),
        "data": {"message": "A test event from the webhook gateway."}
    }))
    .map_err(ApiError::internal)?;
    let o = state
        .delivery
        .sender()
        .send(&crate::delivery::send::Message {
            url: snap.ep.url.as_str(),
            webhook_id: &id,
            delivery_id: None,
            sequence: None,
            body: &body,
            keys: &snap.keys,
            extra_headers: &snap.headers,
        })
        .await;
    Ok(HttpResponse::Ok().json(TestResult {
        success: o.success(),
        status_code: o.status,
        duration_ms: o.duration.as_millis() as u64,
        error_class: o.error_class.map(str::to_owned),
        error: o.error,
        response_snippet: o.snippet,
    }))
}

fn percentile(sorted: &[i32], p: f64) -> Option<i32> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied()
}

/// Endpoint statistics
///
/// Over the last 24 hours: attempts, success rate, latency percentiles; and the backlog now.
#[utoipa::path(
    tag = "deliveries",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("endpoint" = EndpointId, Path, description = "Endpoint id")),
    responses((status = 200, body = EndpointStats), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/endpoints/{endpoint}/stats")]
async fn stats(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let ep = find_endpoint(&state, &scope, &path.1).await?;
    let since = Utc::now() - chrono::Duration::hours(24);
    let rows: Vec<(i32, bool)> = for_tenant(scope.id())
        .attempts()
        .select_only()
        .column(delivery_attempt::Column::DurationMs)
        .column(delivery_attempt::Column::Success)
        .filter(delivery_attempt::Column::EndpointId.eq(ep.id.clone()))
        .filter(delivery_attempt::Column::At.gte(since))
        .into_tuple()
        .all(&state.db)
        .await?;
    let attempts = rows.len() as u64;
    let successes = rows.iter().filter(|(_, ok)| *ok).count() as u64;
    let mut durations: Vec<i32> = rows.iter().map(|(d, _)| *d).collect();
    durations.sort_unstable();
    let pending = for_tenant(scope.id())
        .deliveries()
        .filter(delivery::Column::EndpointId.eq(ep.id.clone()))
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending));
    let backlog = pending.clone().count(&state.db).await?;
    let oldest = pending
        .order_by_asc(delivery::Column::CreatedAt)
        .one(&state.db)
        .await?
        .map(|d| d.created_at);
    let dead = for_tenant(scope.id())
        .deliveries()
        .filter(delivery::Column::EndpointId.eq(ep.id.clone()))
        .filter(delivery::Column::Status.eq(DeliveryStatus::Dead))
        .count(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(EndpointStats {
        endpoint_id: ep.id,
        attempts,
        successes,
        success_rate: (attempts > 0).then(|| successes as f64 / attempts as f64),
        latency_ms: Percentiles {
            p50: percentile(&durations, 0.5),
            p90: percentile(&durations, 0.9),
            p99: percentile(&durations, 0.99),
            max: durations.last().copied(),
        },
        backlog,
        oldest_pending_at: oldest,
        dead,
    }))
}

/// A delivery can be made again only while its event's payload can be read.
fn require_held(held: payload::Held) -> Result<(), ApiError> {
    match held {
        payload::Held::Yes => Ok(()),
        payload::Held::Purged => Err(ApiError::EventPurged),
        payload::Held::Shredded => Err(ApiError::PayloadShredded),
    }
}
