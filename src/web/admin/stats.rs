//! Throughput, failures and backlog per minute, for the dashboard.

use std::collections::BTreeMap;

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, DurationRound, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, FieldError};
use crate::web::auth::Principal;
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(stats);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// How many minutes back (1 to 1440, default 60).
    #[param(minimum = 1, maximum = 1440)]
    pub minutes: Option<i64>,
}

/// One minute.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsBucket {
    /// The minute's start (UTC).
    pub at: DateTime<Utc>,
    /// Webhooks stored (received and verified).
    pub events: i64,
    /// Delivery attempts that succeeded.
    pub delivered: i64,
    /// Delivery attempts that failed.
    pub failed: i64,
    /// Deliveries waiting at the minute's end.
    pub backlog: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub minutes: i64,
    /// Oldest first; every minute present, zeros included.
    pub buckets: Vec<StatsBucket>,
    /// Deliveries waiting now.
    pub backlog: i64,
    /// Every pull endpoint's reader: where it stands now.
    pub pull: Vec<PullReader>,
}

/// A pull endpoint's reader, now.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullReader {
    pub endpoint_id: crate::domain::EndpointId,
    pub tenant_id: crate::domain::TenantId,
    pub last_seq: i64,
    pub cursor: i64,
    /// Events not yet passed by the cursor.
    pub backlog: i64,
    /// How long the oldest of them has waited, in seconds.
    pub lag_seconds: Option<f64>,
    /// When the reader last read.
    pub read_at: Option<DateTime<Utc>>,
}

/// A minute's label in each backend's SQL, comparable with `label()` below.
fn minute(backend: DatabaseBackend, column: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => {
            format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI')")
        }
        _ => format!("strftime('%Y-%m-%dT%H:%M', {column})"),
    }
}

fn label(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

/// `SELECT minute, sums… FROM table WHERE column >= since GROUP BY minute`.
async fn per_minute(
    db: &impl ConnectionTrait,
    table: &str,
    column: &str,
    sums: &[&str],
    since: DateTime<Utc>,
) -> Result<BTreeMap<String, Vec<i64>>, ApiError> {
    let backend = db.get_database_backend();
    let mark = if backend == DatabaseBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let cols: Vec<String> = sums
        .iter()
        .enumerate()
        .map(|(i, e)| format!("CAST(SUM({e}) AS BIGINT) AS s{i}"))
        .collect();
    let sql = format!(
        "SELECT {m} AS minute, {cols} FROM {table} WHERE {column} >= {mark} GROUP BY 1",
        m = minute(backend, column),
        cols = cols.join(", "),
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [since.into()]))
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let m: String = row.try_get("", "minute")?;
        let mut values = Vec::with_capacity(sums.len());
        for i in 0..sums.len() {
            values.push(
                row.try_get::<Option<i64>>("", &format!("s{i}"))?
                    .unwrap_or(0),
            );
        }
        out.insert(m, values);
    }
    Ok(out)
}

/// Dashboard statistics
///
/// Per minute over the last `minutes`: webhooks stored, delivery attempts that succeeded and
/// failed, and the delivery backlog at each minute's end. Admins only.
#[utoipa::path(
    tag = "stats",
    params(StatsQuery),
    responses((status = 200, body = Stats), CommonErrors),
    security(("bearer" = []))
)]
#[get("/stats")]
async fn stats(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    let minutes = query.minutes.unwrap_or(60);
    if !(1..=1440).contains(&minutes) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "minutes",
            "must be between 1 and 1440",
        )]));
    }
    let now = Utc::now();
    let start = now
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap_or(now)
        - chrono::Duration::minutes(minutes - 1);
    let db = &state.db;
    let events = per_minute(db, "events", "received_at", &["1"], start).await?;
    let attempts = per_minute(
        db,
        "delivery_attempts",
        "at",
        &[
            "CASE WHEN success THEN 1 ELSE 0 END",
            "CASE WHEN success THEN 0 ELSE 1 END",
        ],
        start,
    )
    .await?;
    let created = per_minute(db, "deliveries", "created_at", &["1"], start).await?;
    let completed = per_minute(db, "deliveries", "completed_at", &["1"], start).await?;
    let (backlog, _) = crate::delivery::queue::stats(db).await?;

    // The backlog now, walked back one minute at a time: before a minute, it held what the minute
    // completed and not what it created.
    let mut buckets = Vec::with_capacity(minutes as usize);
    let mut level = backlog;
    for i in (0..minutes).rev() {
        let at = start + chrono::Duration::minutes(i);
        let key = label(at);
        let get = |m: &BTreeMap<String, Vec<i64>>, j: usize| {
            m.get(&key).and_then(|v| v.get(j).copied()).unwrap_or(0)
        };
        buckets.push(StatsBucket {
            at,
            events: get(&events, 0),
            delivered: get(&attempts, 0),
            failed: get(&attempts, 1),
            backlog: level.max(0),
        });
        level = level - get(&created, 0) + get(&completed, 0);
    }
    buckets.reverse();
    Ok(HttpResponse::Ok().json(Stats {
        minutes,
        buckets,
        backlog,
        pull: crate::store::monitor::pull_positions(db)
            .await?
            .into_iter()
            .map(|p| PullReader {
                lag_seconds: p
                    .oldest_unread
                    .map(|t| crate::store::endpoint_sequence::seconds_since(t, Utc::now())),
                backlog: p.last_seq - p.cursor,
                endpoint_id: p.endpoint_id,
                tenant_id: p.tenant_id,
                last_seq: p.last_seq,
                cursor: p.cursor,
                read_at: p.read_at,
            })
            .collect(),
    }))
}
