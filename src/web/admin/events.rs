//! Reading stored events: a tenant's list, one event (normalized and raw), and a subject's
//! timeline.

use actix_web::{get, web, HttpRequest, HttpResponse};

use super::access::{self, Shown};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::EventId;
use crate::error::{ApiError, FieldError};
use crate::providers::Provider;
use crate::store::payload::{self, PayloadState};
use crate::store::{event, for_tenant};
use crate::web::auth::TenantScope;
use crate::web::pagination::{finish, PageQuery};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_events)
        .service(get_event)
        .service(timeline);
}

/// An event as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventSummary {
    pub id: EventId,
    pub provider: Provider,
    /// Normalized type, e.g. `transport.request.assigned`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The provider's request, order or appointment id.
    pub subject: String,
    /// Unified status.
    pub status: String,
    /// Older than an event already seen for its subject (stored, not fanned out).
    pub stale: bool,
    pub provider_event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// When its payload was purged at the end of its tenant's retention period; `null` while
    /// it is held.
    pub purged_at: Option<DateTime<Utc>>,
}

/// How much of an event to show.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// The normalized event and the webhook as received (an access to patient data: recorded).
    Full,
    /// Ids, type, status, times and links only; no patient or address field, no raw webhook
    /// (not recorded).
    Minimal,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewQuery {
    /// `full` (default) or `minimal`.
    pub view: Option<View>,
}

/// One event: summary, the CloudEvent delivered to endpoints, and the webhook as received.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub summary: EventSummary,
    pub payload: PayloadStatus,
    /// The normalized CloudEvent (see the normalized schema in README); `null` once purged or
    /// shredded.
    pub normalized: Option<Value>,
    /// The webhook as received; `null` once purged or shredded.
    pub raw: Option<RawWebhook>,
}

/// Whether the event's payload can still be read.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayloadStatus {
    /// Held, sealed under the tenant's data key.
    Held,
    /// Purged at the end of the tenant's retention period (`purged_at`).
    Purged,
    /// Its tenant's data key was destroyed: nobody can read it any more.
    Shredded,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RawWebhook {
    /// The body exactly as received.
    pub body: String,
    /// The relevant headers as received (signatures included).
    pub headers: Value,
    /// How it was verified: method and key id.
    pub verification: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub data: Vec<EventSummary>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    pub subject: String,
    /// Every event of the subject in the provider's order (oldest first); stale ones included.
    pub events: Vec<EventSummary>,
    /// Every call the gateway made to the provider about this subject, oldest first.
    pub actions: Vec<crate::web::actions::ActionRecord>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    pub provider: Option<Provider>,
    /// Exact type, or a prefix ending in `*` (`transport.*`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    pub subject: Option<String>,
    /// Unified status.
    pub status: Option<String>,
    /// Received at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Received before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}

impl From<&event::Model> for EventSummary {
    fn from(m: &event::Model) -> Self {
        Self {
            id: m.id.clone(),
            provider: m.provider,
            event_type: m.event_type.clone(),
            subject: m.subject.clone(),
            status: m.status.clone(),
            stale: m.stale,
            provider_event_id: m.provider_event_id.clone(),
            occurred_at: m.occurred_at,
            received_at: m.received_at,
            purged_at: m.purged_at,
        }
    }
}

/// The columns a list needs: everything but the bodies.
fn summary_columns() -> [event::Column; 11] {
    use event::Column::*;
    [
        Id,
        TenantId,
        Provider,
        ProviderEventId,
        EventType,
        Subject,
        Status,
        Stale,
        OccurredAt,
        ReceivedAt,
        PurgedAt,
    ]
}

#[derive(Debug, sea_orm::FromQueryResult)]
struct SummaryRow {
    id: EventId,
    provider: Provider,
    provider_event_id: String,
    event_type: String,
    subject: String,
    status: String,
    stale: bool,
    occurred_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    purged_at: Option<DateTime<Utc>>,
}

impl From<SummaryRow> for EventSummary {
    fn from(m: SummaryRow) -> Self {
        Self {
            id: m.id,
            provider: m.provider,
            event_type: m.event_type,
            subject: m.subject,
            status: m.status,
            stale: m.stale,
            provider_event_id: m.provider_event_id,
            occurred_at: m.occurred_at,
            received_at: m.received_at,
            purged_at: m.purged_at,
        }
    }
}

/// List a tenant's events
///
/// Newest first.
#[utoipa::path(
    tag = "events",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery, EventFilter),
    responses((status = 200, body = EventList), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/events")]
async fn list_events(
    state: web::Data<AppState>,
    scope: TenantScope,
    page: web::Query<PageQuery>,
    filter: web::Query<EventFilter>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let mut query = for_tenant(scope.id())
        .events()
        .select_only()
        .columns(summary_columns())
        .order_by_desc(event::Column::Id);
    if let Some(cursor) = &page.cursor {
        let cursor = EventId::parse(cursor)
            .map_err(|m| ApiError::Validation(vec![FieldError::new("cursor", m)]))?;
        query = query.filter(event::Column::Id.lt(cursor));
    }
    if let Some(p) = filter.provider {
        query = query.filter(event::Column::Provider.eq(p.as_str()));
    }
    if let Some(t) = &filter.event_type {
        query = match t.strip_suffix('*') {
            Some(prefix) => query.filter(event::Column::EventType.starts_with(prefix)),
            None => query.filter(event::Column::EventType.eq(t.clone())),
        };
    }
    if let Some(s) = &filter.subject {
        query = query.filter(event::Column::Subject.eq(s.clone()));
    }
    if let Some(s) = &filter.status {
        query = query.filter(event::Column::Status.eq(s.clone()));
    }
    if let Some(t) = filter.since {
        query = query.filter(event::Column::ReceivedAt.gte(t));
    }
    if let Some(t) = filter.until {
        query = query.filter(event::Column::ReceivedAt.lt(t));
    }
    let rows: Vec<SummaryRow> = query.limit(limit + 1).into_model().all(&state.db).await?;
    let (rows, next_cursor) = finish(rows, limit, |r| r.id.clone());
    Ok(HttpResponse::Ok().json(EventList {
        data: rows.into_iter().map(EventSummary::from).collect(),
        next_cursor,
    }))
}

/// Get an event
///
/// The normalized CloudEvent next to the webhook exactly as received: a read of patient data,
/// written to the access log. `?view=minimal` shows only ids, type, status, times and links (no
/// patient or address field, no raw webhook) and is not recorded.
#[utoipa::path(
    tag = "events",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("event" = EventId, Path, description = "Event id"),
        ViewQuery
    ),
    responses((status = 200, body = EventDetail), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/events/{event}")]
async fn get_event(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    query: web::Query<ViewQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = EventId::parse(&path.1).map_err(|_| ApiError::NotFound)?;
    let m = event::find_for_tenant(&state.db, scope.id(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let minimal = matches!(query.view, Some(View::Minimal));
    if !minimal {
        access::record(
            &state,
            &req,
            &scope.principal,
            scope.id(),
            Shown::Event,
            Some(&m.subject),
            Some(m.id.as_str()),
        )
        .await?;
    }
    let summary = EventSummary::from(&m);
    let held = match payload::open(&state.db, &state.cipher, &m).await? {
        PayloadState::Held(p) => p,
        PayloadState::Purged => return Ok(gone(summary, PayloadStatus::Purged)),
        PayloadState::Shredded => return Ok(gone(summary, PayloadStatus::Shredded)),
    };
    let mut normalized: Value = serde_json::from_str(&held.cloud_event)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored CloudEvent: {e}")))?;
    if minimal {
        // No patient or address field is shown: not an access to record.
        return Ok(HttpResponse::Ok().json(EventDetail {
            summary,
            payload: PayloadStatus::Held,
            normalized: Some(crate::normalize::minimal::minimal(&normalized)),
            raw: None,
        }));
    }
    crate::normalize::restore_provider_data(&mut normalized, &held.raw_body);
    let headers = serde_json::from_str(&held.raw_headers).unwrap_or(Value::Null);
    Ok(HttpResponse::Ok().json(EventDetail {
        summary,
        payload: PayloadStatus::Held,
        normalized: Some(normalized),
        raw: Some(RawWebhook {
            body: held.raw_body,
            headers,
            verification: m.verification,
        }),
    }))
}

fn gone(summary: EventSummary, payload: PayloadStatus) -> HttpResponse {
    HttpResponse::Ok().json(EventDetail {
        summary,
        payload,
        normalized: None,
        raw: None,
    })
}

/// A subject's timeline
///
/// Every event of one service request or order (Vital appointment events carry their order's
/// id), in the provider's order, and the provider actions taken on it.
#[utoipa::path(
    tag = "events",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("subject" = String, Path, description = "The subject: a transport request, trip or order id")
    ),
    responses((status = 200, body = Timeline), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/subjects/{subject}/timeline")]
async fn timeline(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let subject = path.into_inner().1;
    access::record(
        &state,
        &req,
        &scope.principal,
        scope.id(),
        Shown::Timeline,
        Some(&subject),
        None,
    )
    .await?;
    let rows: Vec<SummaryRow> = for_tenant(scope.id())
        .events()
        .select_only()
        .columns(summary_columns())
        .filter(event::Column::Subject.eq(subject.clone()))
        .order_by_asc(event::Column::OccurredAt)
        .order_by_asc(event::Column::OrderKey)
        .order_by_asc(event::Column::Id)
        .limit(1000)
        .into_model()
        .all(&state.db)
        .await?;
    let actions = crate::web::actions::for_subject(&state.db, scope.id(), &subject).await?;
    Ok(HttpResponse::Ok().json(Timeline {
        subject,
        events: rows.into_iter().map(EventSummary::from).collect(),
        actions,
    }))
}
