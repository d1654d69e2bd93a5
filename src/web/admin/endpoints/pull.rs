//! An endpoint's events in sequence order, and a pull endpoint's cursor. A receiver that saw a
//! gap in the numbers reads exactly what it missed (`after`); a pull endpoint's receiver reads
//! here instead of being sent anything, long-polls (`wait`), and commits its position.

use std::time::Duration;

use actix_web::{get, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::delivery::Claimed;
use crate::domain::{DeliveryId, DeliveryStatus, EndpointKind, EventId};
use crate::error::{ApiError, FieldError, Problem};
use crate::store::{delivery, endpoint_sequence, for_tenant};
use crate::web::admin::access::{self, Shown};
use crate::web::auth::Reader;
use crate::web::http::ApiJson;
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(endpoint_events)
        .service(get_cursor)
        .service(put_cursor);
}

/// The longest a read waits for events.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How often a waiting read looks again: events of any replica show within this.
const LOOK_EVERY: Duration = Duration::from_millis(200);
const MAX_LIMIT: u64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SequenceQuery {
    /// Events numbered after this one (default: a pull endpoint's committed cursor, else 0).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// How many at most (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// When none is there yet, wait up to this many seconds for the first (`0s` to `60s`, e.g.
    /// `30s`; default `0s`; the gateway's `pull_max_wait` may cut it shorter): it is answered
    /// within a second of its arrival.
    #[param(pattern = r"^([0-9]|[1-5][0-9]|60)s$")]
    pub wait: Option<String>,
}

/// One event as numbered for this endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct SequencedEvent {
    /// Its number in the endpoint's sequence.
    pub seq: i64,
    pub event_id: EventId,
    pub delivery_id: DeliveryId,
    /// `succeeded` once sent (push) or passed by the cursor (pull).
    pub status: DeliveryStatus,
    /// The CloudEvent exactly as the endpoint is sent it (its payload mode, `endpointseq`
    /// included); `null` when the payload is gone (purged by retention, or shredded).
    #[schema(value_type = Option<Object>)]
    pub event: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SequencedEvents {
    pub data: Vec<SequencedEvent>,
    /// The `after` of the next read: the last number answered (or the one asked for).
    pub next_after: i64,
    /// The last number given so far.
    pub last_seq: i64,
}

/// Where an endpoint's sequence stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cursor {
    pub kind: EndpointKind,
    /// The last number given so far.
    pub last_seq: i64,
    /// The last number the receiver committed (pull endpoints).
    pub cursor: i64,
    /// Events not yet passed by the cursor (pull endpoints): `last_seq - cursor`.
    pub backlog: i64,
    /// How long the oldest event not yet passed by the cursor has waited, in seconds.
    pub lag_seconds: Option<f64>,
    /// When the receiver last read.
    pub read_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitCursor {
    /// The last number processed: every event up to it counts as delivered.
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "crate::domain::numbers::required_i64")]
    pub cursor: i64,
}

/// `0s` to `60s`, whole seconds, exactly as the parameter's pattern says.
fn wait_of(text: &str) -> Option<Duration> {
    let digits = text.strip_suffix('s')?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() == 2 && digits.starts_with('0') {
        return None;
    }
    let wait = Duration::from_secs(digits.parse().ok()?);
    (wait <= MAX_WAIT).then_some(wait)
}

fn limit_of(q: &SequenceQuery) -> Result<u64, ApiError> {
    match q.limit {
        None => Ok(100),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::Validation(vec![FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )])),
    }
}

/// Read an endpoint's events in sequence order
///
/// Every event routed to an endpoint has the next number of the endpoint's sequence (gapless,
/// assigned when the event is stored); push deliveries carry it in the `endpointseq` attribute
/// and the `x-gateway-sequence` header. A receiver that sees a gap reads what it missed here.
/// A pull endpoint's receiver reads here with its endpoint token, long-polls with `wait`, and
/// commits its position with `PUT .../cursor`. Resends are out of sequence and not listed.
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = crate::domain::EndpointId, Path, description = "Endpoint id"),
        SequenceQuery
    ),
    responses((status = 200, body = SequencedEvents), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/endpoints/{endpoint}/events")]
async fn endpoint_events(
    state: web::Data<AppState>,
    reader: Reader,
    query: web::Query<SequenceQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let limit = limit_of(&query)?;
    let wait = match query.wait.as_deref() {
        None => Duration::ZERO,
        Some(text) => wait_of(text).ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "wait",
                "must be whole seconds from 0s to 60s, like 30s",
            )])
        })?,
    };
    let ep = &reader.endpoint;
    let pull = ep.kind == EndpointKind::Pull;
    let after = match query.after {
        Some(n) if n < 0 => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "after",
                "must be 0 or more",
            )]))
        }
        Some(n) => n,
        None if pull => endpoint_sequence::of(&state.db, &ep.id).await?.cursor,
        None => 0,
    };
    let until = tokio::time::Instant::now() + wait.min(state.settings.delivery.pull_max_wait);
    let rows = loop {
        let rows = for_tenant(&reader.tenant.id)
            .deliveries()
            .filter(delivery::Column::EndpointId.eq(ep.id.clone()))
            .filter(delivery::Column::Seq.gt(after))
            .order_by_asc(delivery::Column::Seq)
            .limit(limit)
            .all(&state.db)
            .await?;
        let now = tokio::time::Instant::now();
        if !rows.is_empty() || now >= until || state.shutdown.is_cancelled() {
            break rows;
        }
        tokio::time::sleep(LOOK_EVERY.min(until - now)).await;
    };
    if pull {
        endpoint_sequence::touch_read(&state.db, &ep.id, Utc::now()).await?;
    }
    if !rows.is_empty() {
        access::record(
            &state,
            &req,
            &reader.principal,
            &reader.tenant.id,
            Shown::EndpointEvents,
            None,
            None,
        )
        .await?;
    }
    let mut claimed: Vec<Claimed> = rows
        .iter()
        .map(|d| Claimed {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            attempts: d.attempts,
            seq: d.seq,
            payload: None,
        })
        .collect();
    state.delivery.load_payloads(&mut claimed).await?;
    let data: Vec<SequencedEvent> = rows
        .into_iter()
        .zip(claimed)
        .map(|(d, c)| SequencedEvent {
            seq: d.seq.unwrap_or_default(),
            event: state
                .delivery
                .body_of(&c, ep.payload_mode)
                .and_then(|b| serde_json::from_slice(&b).ok()),
            event_id: d.event_id,
            delivery_id: d.id,
            status: d.status,
        })
        .collect();
    let last_seq = endpoint_sequence::of(&state.db, &ep.id).await?.last_seq;
    Ok(HttpResponse::Ok().json(SequencedEvents {
        next_after: data.last().map_or(after, |e| e.seq),
        data,
        last_seq,
    }))
}

async fn cursor_of(state: &AppState, reader: &Reader) -> Result<Cursor, ApiError> {
    let ep = &reader.endpoint;
    let seq = endpoint_sequence::of(&state.db, &ep.id).await?;
    let pull = ep.kind == EndpointKind::Pull;
    let oldest = if pull {
        endpoint_sequence::oldest_after(&state.db, &ep.id, seq.cursor).await?
    } else {
        None
    };
    Ok(Cursor {
        kind: ep.kind,
        last_seq: seq.last_seq,
        cursor: seq.cursor,
        backlog: if pull { seq.last_seq - seq.cursor } else { 0 },
        lag_seconds: oldest.map(|t| endpoint_sequence::seconds_since(t, Utc::now())),
        read_at: seq.read_at,
    })
}

/// Where an endpoint's sequence stands
///
/// The last number given; for a pull endpoint also its cursor, backlog, lag and last read.
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = crate::domain::EndpointId, Path, description = "Endpoint id")
    ),
    responses((status = 200, body = Cursor), CommonErrors),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/endpoints/{endpoint}/cursor")]
async fn get_cursor(state: web::Data<AppState>, reader: Reader) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cursor_of(&state, &reader).await?))
}

/// Commit a pull endpoint's position
///
/// Every event numbered up to `cursor` counts as delivered. The cursor only moves forward; the
/// same value again is accepted and changes nothing.
#[utoipa::path(
    tag = "endpoints",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("endpoint" = crate::domain::EndpointId, Path, description = "Endpoint id")
    ),
    request_body = CommitCursor,
    responses(
        (status = 200, body = Cursor),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a push endpoint, or a cursor behind the committed one (`conflict`)"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a cursor past the last number (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[put("/tenants/{tenant}/endpoints/{endpoint}/cursor")]
async fn put_cursor(
    state: web::Data<AppState>,
    reader: Reader,
    body: ApiJson<CommitCursor>,
) -> Result<HttpResponse, ApiError> {
    let ep = &reader.endpoint;
    if ep.kind != EndpointKind::Pull {
        return Err(ApiError::Conflict {
            field: "kind".into(),
            message: "only a pull endpoint has a cursor".into(),
        });
    }
    let to = body.0.cursor;
    if to < 0 {
        return Err(ApiError::Validation(vec![FieldError::new(
            "cursor",
            "must be 0 or more",
        )]));
    }
    let txn = crate::store::begin_write(&state.db).await?;
    let moved = endpoint_sequence::commit_cursor(&txn, &ep.id, to, Utc::now()).await?;
    match moved {
        Ok(_) => txn.commit().await?,
        Err(endpoint_sequence::CursorRefused::Ahead { last }) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "cursor",
                format!("is past the last number given ({last})"),
            )]))
        }
        Err(endpoint_sequence::CursorRefused::Behind { cursor }) => {
            return Err(ApiError::Conflict {
                field: "cursor".into(),
                message: format!("the cursor only moves forward; it is at {cursor}"),
            })
        }
    }
    Ok(HttpResponse::Ok().json(cursor_of(&state, &reader).await?))
}
