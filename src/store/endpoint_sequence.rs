//! Each endpoint's sequence: the last number given to a delivery of it (numbers are taken by
//! the outbox, in the transaction that stores the event), and for a pull endpoint the cursor
//! its receiver committed and when it last read; for a heartbeat, when the last one went.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ConnectionTrait, QuerySelect};

use crate::domain::{DeliveryStatus, EndpointId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "endpoint_sequences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub endpoint_id: EndpointId,
    pub last_seq: i64,
    pub cursor: i64,
    pub read_at: Option<DateTimeUtc>,
    pub heartbeat_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The endpoint's sequence as it stands: zeros before its first event.
pub async fn of(db: &impl ConnectionTrait, endpoint: &EndpointId) -> Result<Model, DbErr> {
    Ok(Entity::find_by_id(endpoint.clone())
        .one(db)
        .await?
        .unwrap_or(Model {
            endpoint_id: endpoint.clone(),
            last_seq: 0,
            cursor: 0,
            read_at: None,
            heartbeat_at: None,
        }))
}

/// Creates the row when missing, so that an update finds it.
async fn ensure(db: &impl ConnectionTrait, endpoint: &EndpointId) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        endpoint_id: sea_orm::ActiveValue::Set(endpoint.clone()),
        last_seq: sea_orm::ActiveValue::Set(0),
        cursor: sea_orm::ActiveValue::Set(0),
        read_at: sea_orm::ActiveValue::Set(None),
        heartbeat_at: sea_orm::ActiveValue::Set(None),
    })
    .on_conflict(
        OnConflict::column(Column::EndpointId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A pull endpoint's receiver read its events now.
pub async fn touch_read(
    db: &impl ConnectionTrait,
    endpoint: &EndpointId,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    touch(db, endpoint, Column::ReadAt, now).await
}

/// A heartbeat went to the endpoint now.
pub async fn touch_heartbeat(
    db: &impl ConnectionTrait,
    endpoint: &EndpointId,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    touch(db, endpoint, Column::HeartbeatAt, now).await
}

/// Sets one time column, creating the row when missing: one statement.
async fn touch(
    db: &impl ConnectionTrait,
    endpoint: &EndpointId,
    column: Column,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    use sea_orm::ActiveValue::{NotSet, Set};
    let mut row = ActiveModel {
        endpoint_id: Set(endpoint.clone()),
        last_seq: Set(0),
        cursor: Set(0),
        read_at: NotSet,
        heartbeat_at: NotSet,
    };
    match column {
        Column::ReadAt => row.read_at = Set(Some(now)),
        _ => row.heartbeat_at = Set(Some(now)),
    }
    Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::EndpointId)
                .update_column(column)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The creation time of the oldest delivery numbered after `cursor`: how long what a pull
/// endpoint's reader has not passed has waited.
pub async fn oldest_after(
    db: &impl ConnectionTrait,
    endpoint: &EndpointId,
    cursor: i64,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    use super::delivery;
    use sea_orm::QueryOrder;
    delivery::Entity::find()
        .select_only()
        .column(delivery::Column::CreatedAt)
        .filter(delivery::Column::EndpointId.eq(endpoint.clone()))
        .filter(delivery::Column::Seq.gt(cursor))
        .order_by_asc(delivery::Column::Seq)
        .into_tuple()
        .one(db)
        .await
}

/// Seconds from `since` to `now`, never negative.
pub fn seconds_since(since: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    (now - since).num_milliseconds().max(0) as f64 / 1000.0
}

/// Why a cursor was not moved.
#[derive(Debug, PartialEq, Eq)]
pub enum CursorRefused {
    /// Past the last number given: nothing there was read.
    Ahead { last: i64 },
    /// Before the committed cursor: it only moves forward.
    Behind { cursor: i64 },
}

/// Moves a pull endpoint's cursor to `to`, inside the caller's transaction: its pending
/// deliveries up to there count as delivered. The same value again changes nothing.
pub async fn commit_cursor(
    db: &impl ConnectionTrait,
    endpoint: &EndpointId,
    to: i64,
    now: DateTime<Utc>,
) -> Result<Result<Model, CursorRefused>, DbErr> {
    ensure(db, endpoint).await?;
    // Locks the row (PostgreSQL) so two commits of one cursor apply one after the other.
    let current = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            Entity::find_by_id(endpoint.clone())
                .lock_exclusive()
                .one(db)
                .await?
        }
        _ => Entity::find_by_id(endpoint.clone()).one(db).await?,
    };
    let current = current.ok_or_else(|| DbErr::RecordNotFound("endpoint sequence".into()))?;
    if to > current.last_seq {
        return Ok(Err(CursorRefused::Ahead {
            last: current.last_seq,
        }));
    }
    if to < current.cursor {
        return Ok(Err(CursorRefused::Behind {
            cursor: current.cursor,
        }));
    }
    Entity::update_many()
        .col_expr(Column::Cursor, Expr::value(to))
        .col_expr(Column::ReadAt, Expr::value(now))
        .filter(Column::EndpointId.eq(endpoint.clone()))
        .exec(db)
        .await?;
    use super::delivery;
    delivery::Entity::update_many()
        .col_expr(
            delivery::Column::Status,
            Expr::value(DeliveryStatus::Succeeded),
        )
        .col_expr(delivery::Column::CompletedAt, Expr::value(now))
        .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
        .filter(delivery::Column::EndpointId.eq(endpoint.clone()))
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
        .filter(delivery::Column::Seq.lte(to))
        .exec(db)
        .await?;
    Ok(Ok(Model {
        cursor: to,
        read_at: Some(now),
        ..current
    }))
}
