//! What the monitor reads across tenants: endpoints awaiting a handshake or due a heartbeat,
//! failing endpoints, pending deliveries per endpoint, pull endpoints' positions. Never a
//! tenant's request: every row read here goes to the operator's alerts or the gateway's own
//! gauges and events.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};

use super::{delivery_attempt, endpoint, endpoint_sequence};
use crate::domain::{EndpointId, EndpointKind, TenantId};

fn live_push() -> sea_orm::Select<endpoint::Entity> {
    endpoint::Entity::find()
        .filter(endpoint::Column::Enabled.eq(true))
        .filter(endpoint::Column::DeletedAt.is_null())
        .filter(endpoint::Column::Kind.eq(EndpointKind::Push))
}

/// Enabled push endpoints that require a handshake and have not answered one.
pub async fn awaiting_handshake(db: &impl ConnectionTrait) -> Result<Vec<endpoint::Model>, DbErr> {
    live_push()
        .filter(endpoint::Column::Handshake.eq(true))
        .filter(endpoint::Column::VerifiedAt.is_null())
        .limit(100)
        .all(db)
        .await
}

/// The endpoint answered its handshake now (unless it was asked for a new one meanwhile: the
/// row changed, and the next run sends that one).
pub async fn verified(
    db: &impl ConnectionTrait,
    id: &EndpointId,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    endpoint::Entity::update_many()
        .col_expr(endpoint::Column::VerifiedAt, Expr::value(now))
        .filter(endpoint::Column::Id.eq(id.clone()))
        .filter(endpoint::Column::VerifiedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Enabled push endpoints that asked for a heartbeat (and are not awaiting a handshake), with
/// their interval in minutes.
pub async fn with_heartbeat(
    db: &impl ConnectionTrait,
) -> Result<Vec<(endpoint::Model, u32)>, DbErr> {
    let rows = live_push()
        .filter(endpoint::Column::HeartbeatMinutes.is_not_null())
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|ep| !ep.awaiting_handshake())
        .filter_map(|ep| {
            let n = ep.heartbeat_minutes.and_then(|n| u32::try_from(n).ok())?;
            (n > 0).then_some((ep, n))
        })
        .collect())
}

/// When the endpoint was last attempted.
pub async fn last_attempt(
    db: &impl ConnectionTrait,
    id: &EndpointId,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    delivery_attempt::Entity::find()
        .select_only()
        .column(delivery_attempt::Column::At)
        .filter(delivery_attempt::Column::EndpointId.eq(id.clone()))
        .order_by_desc(delivery_attempt::Column::At)
        .into_tuple()
        .one(db)
        .await
}

/// Enabled endpoints failing since some time, with that time and their attempts since (all
/// failures: a success ends the run).
pub async fn failing(
    db: &impl ConnectionTrait,
) -> Result<Vec<(endpoint::Model, DateTime<Utc>, i64)>, DbErr> {
    let rows = endpoint::Entity::find()
        .filter(endpoint::Column::Enabled.eq(true))
        .filter(endpoint::Column::DeletedAt.is_null())
        .filter(endpoint::Column::FailingSince.is_not_null())
        .limit(1000)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for ep in rows {
        let Some(since) = ep.failing_since else {
            continue;
        };
        let n = delivery_attempt::Entity::find()
            .filter(delivery_attempt::Column::EndpointId.eq(ep.id.clone()))
            .filter(delivery_attempt::Column::At.gte(since))
            .count(db)
            .await?;
        out.push((ep, since, n as i64));
    }
    Ok(out)
}

/// One endpoint's pending deliveries.
pub struct Pending {
    pub endpoint_id: EndpointId,
    pub tenant_id: TenantId,
    pub count: i64,
    pub oldest: DateTime<Utc>,
}

/// Pending deliveries per endpoint.
pub async fn pending_by_endpoint(db: &impl ConnectionTrait) -> Result<Vec<Pending>, DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT endpoint_id, tenant_id, COUNT(*) AS n, MIN(created_at) AS oldest \
             FROM deliveries WHERE status = 'pending' GROUP BY endpoint_id, tenant_id",
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let endpoint: String = row.try_get("", "endpoint_id")?;
        let tenant: String = row.try_get("", "tenant_id")?;
        let (Ok(endpoint_id), Ok(tenant_id)) =
            (EndpointId::parse(&endpoint), TenantId::parse(&tenant))
        else {
            continue;
        };
        out.push(Pending {
            endpoint_id,
            tenant_id,
            count: row.try_get("", "n")?,
            oldest: row.try_get("", "oldest")?,
        });
    }
    Ok(out)
}

/// Where a pull endpoint's receiver stands.
pub struct PullPosition {
    pub endpoint_id: EndpointId,
    pub tenant_id: TenantId,
    pub last_seq: i64,
    pub cursor: i64,
    pub read_at: Option<DateTime<Utc>>,
    /// When the oldest event not yet passed by the cursor was routed to it.
    pub oldest_unread: Option<DateTime<Utc>>,
}

/// Every live pull endpoint's position.
pub async fn pull_positions(db: &impl ConnectionTrait) -> Result<Vec<PullPosition>, DbErr> {
    let endpoints = endpoint::Entity::find()
        .filter(endpoint::Column::DeletedAt.is_null())
        .filter(endpoint::Column::Kind.eq(EndpointKind::Pull))
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(endpoints.len());
    for ep in endpoints {
        let seq = endpoint_sequence::of(db, &ep.id).await?;
        let oldest_unread = endpoint_sequence::oldest_after(db, &ep.id, seq.cursor).await?;
        out.push(PullPosition {
            endpoint_id: ep.id,
            tenant_id: ep.tenant_id,
            last_seq: seq.last_seq,
            cursor: seq.cursor,
            read_at: seq.read_at,
            oldest_unread,
        });
    }
    Ok(out)
}
