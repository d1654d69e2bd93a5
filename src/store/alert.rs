//! Operational alerts: raised once per dedupe key (a condition and its window), listed in the
//! API and the UI, and sent to the operator endpoint with retries.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};

use crate::domain::{AlertId, AlertKind, AlertStatus, EndpointId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: AlertId,
    pub kind: AlertKind,
    /// One alert per key: the condition and the window it fires in.
    pub dedupe_key: String,
    pub tenant_id: Option<TenantId>,
    pub endpoint_id: Option<EndpointId>,
    pub summary: String,
    /// JSON object: the figures behind the alert (never patient data).
    pub detail: String,
    pub status: AlertStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// An alert to raise.
pub struct Raise {
    pub kind: AlertKind,
    pub dedupe_key: String,
    pub tenant_id: Option<TenantId>,
    pub endpoint_id: Option<EndpointId>,
    pub summary: String,
    pub detail: serde_json::Value,
}

/// Stores the alert unless one with its dedupe key exists; `true` when it is new.
pub async fn raise(db: &impl ConnectionTrait, a: Raise, now: DateTime<Utc>) -> Result<bool, DbErr> {
    use sea_orm::ActiveValue::Set;
    let done = Entity::insert(ActiveModel {
        id: Set(AlertId::generate()),
        kind: Set(a.kind),
        dedupe_key: Set(a.dedupe_key),
        tenant_id: Set(a.tenant_id),
        endpoint_id: Set(a.endpoint_id),
        summary: Set(a.summary),
        detail: Set(a.detail.to_string()),
        status: Set(AlertStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        sent_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(Column::DedupeKey)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(done == 1)
}

/// Alerts due to be sent to the operator endpoint, oldest first.
pub async fn due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Status.eq(AlertStatus::Pending))
        .filter(Column::NextAttemptAt.lte(now))
        .order_by_asc(Column::NextAttemptAt)
        .limit(limit)
        .all(db)
        .await
}

/// Records an attempt to send an alert: sent, due again at `retry_at`, or failed for good.
pub async fn attempted(
    db: &impl ConnectionTrait,
    id: &AlertId,
    attempts: i32,
    outcome: Result<(), (String, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let update = Entity::update_many()
        .col_expr(Column::Attempts, Expr::value(attempts))
        .filter(Column::Id.eq(id.clone()));
    let update = match outcome {
        Ok(()) => update
            .col_expr(Column::Status, Expr::value(AlertStatus::Sent))
            .col_expr(Column::SentAt, Expr::value(now))
            .col_expr(Column::LastError, Expr::value(Option::<String>::None)),
        Err((error, Some(at))) => update
            .col_expr(Column::NextAttemptAt, Expr::value(at))
            .col_expr(Column::LastError, Expr::value(error)),
        Err((error, None)) => update
            .col_expr(Column::Status, Expr::value(AlertStatus::Failed))
            .col_expr(Column::LastError, Expr::value(error)),
    };
    update.exec(db).await?;
    Ok(())
}

/// Alerts newest first, before `cursor`, of one kind or tenant when asked.
pub async fn list(
    db: &impl ConnectionTrait,
    kind: Option<AlertKind>,
    tenant: Option<&TenantId>,
    before: Option<AlertId>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut query = Entity::find().order_by_desc(Column::Id);
    if let Some(id) = before {
        query = query.filter(Column::Id.lt(id));
    }
    if let Some(kind) = kind {
        query = query.filter(Column::Kind.eq(kind));
    }
    if let Some(t) = tenant {
        query = query.filter(Column::TenantId.eq(t.clone()));
    }
    query.limit(limit).all(db).await
}
