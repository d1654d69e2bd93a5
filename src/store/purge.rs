//! Retention: once an event is older than its tenant's retention period, its payload (the
//! webhook as received, its headers, the normalized data) and the response bodies its deliveries
//! got back are purged. The skeleton stays (ids, type, subject, times, delivery outcomes and
//! attempts), so counts, timelines and audits still add up. An event with a delivery still
//! pending keeps its payload until the delivery ends: that is what would be sent. Waiting to be
//! read by a pull endpoint does not count: retention applies to what sits unread.
//!
//! A deleted tenant's rows are removed the same way (`remove_deleted_batch`), its own row last.
//!
//! Purging runs in small batches, each its own short write (SQLite's writers take turns through
//! the [`WriteGate`]), so acknowledgements never wait behind a long purge.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{delivery, delivery_attempt, event, tenant, WriteGate};
use crate::config::RetentionSettings;
use crate::crypto::Cipher;
use crate::domain::{DeliveryStatus, EventId, TenantId};

/// What one batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub purged: u64,
    /// The last event looked at: the next batch starts after it. `None`: nothing left.
    pub last: Option<EventId>,
    /// The first event kept because a delivery of it is pending.
    pub first_kept: Option<EventId>,
}

/// Purges up to `limit` events of `tenant` received before `cutoff`, after `after`. Reads go
/// through `db` (the pool), so they never wait for SQLite's one writer connection, which
/// acknowledgements use; only the write takes a turn at the gate.
pub async fn purge_batch(
    db: &DatabaseConnection,
    gate: &WriteGate,
    tenant: &TenantId,
    cutoff: DateTime<Utc>,
    after: Option<&EventId>,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<Batch, DbErr> {
    let mut candidates = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::TenantId.eq(tenant.clone()))
        // Ids are time-ordered: this bound is "received before the cutoff", on the index.
        .filter(event::Column::Id.lt(EventId::bound_at(cutoff)))
        .filter(event::Column::PurgedAt.is_null());
    if let Some(after) = after {
        candidates = candidates.filter(event::Column::Id.gt(after.clone()));
    }
    let ids: Vec<EventId> = candidates
        .order_by_asc(event::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    let Some(last) = ids.last().cloned() else {
        return Ok(Batch::default());
    };
    let busy: Vec<EventId> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::EventId)
        .filter(delivery::Column::EventId.is_in(ids.clone()))
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
        .filter(delivery::Column::EndpointId.not_in_subquery(pull_endpoints()))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let busy: std::collections::HashSet<EventId> = busy.into_iter().collect();
    let purgeable: Vec<EventId> = ids
        .iter()
        .filter(|id| !busy.contains(*id))
        .cloned()
        .collect();
    let first_kept = ids.iter().find(|id| busy.contains(id)).cloned();
    let purged = if purgeable.is_empty() {
        0
    } else {
        let turn = gate.enter().await;
        let txn = super::begin_write(turn.db).await?;
        let n = strip(&txn, &purgeable, now).await?;
        txn.commit().await?;
        n
    };
    Ok(Batch {
        purged,
        last: Some(last),
        first_kept,
    })
}

/// Pull endpoints: an event waiting to be read by one is not "being delivered". Retention
/// applies to what sits unread; the reader then reads it as purged.
fn pull_endpoints() -> sea_orm::sea_query::SelectStatement {
    sea_orm::sea_query::Query::select()
        .column(super::endpoint::Column::Id)
        .from(super::endpoint::Entity)
        .and_where(super::endpoint::Column::Kind.eq(crate::domain::EndpointKind::Pull))
        .to_owned()
}

/// Empties the payloads of `ids` (those not purged yet) and their attempts' response bodies.
async fn strip(
    db: &impl ConnectionTrait,
    ids: &[EventId],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let done = event::Entity::update_many()
        .col_expr(event::Column::RawBody, Expr::value(""))
        .col_expr(
            event::Column::RawHeaders,
            Expr::value(serde_json::json!({})),
        )
        .col_expr(
            event::Column::Normalized,
            Expr::value(serde_json::json!({})),
        )
        .col_expr(
            event::Column::SealedPayload,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .col_expr(event::Column::PurgedAt, Expr::value(now))
        .filter(event::Column::Id.is_in(ids.to_vec()))
        .filter(event::Column::PurgedAt.is_null())
        // Checked again in the same statement: a resend may have made one pending meanwhile.
        .filter(
            event::Column::Id.not_in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(delivery::Column::EventId)
                    .from(delivery::Entity)
                    .and_where(delivery::Column::EventId.is_in(ids.to_vec()))
                    .and_where(delivery::Column::Status.eq(DeliveryStatus::Pending))
                    .and_where(delivery::Column::EndpointId.not_in_subquery(pull_endpoints()))
                    .to_owned(),
            ),
        )
        .exec(db)
        .await?;
    let deliveries: Vec<crate::domain::DeliveryId> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Id)
        .filter(delivery::Column::EventId.is_in(ids.to_vec()))
        .into_tuple()
        .all(db)
        .await?;
    if !deliveries.is_empty() {
        delivery_attempt::Entity::update_many()
            .col_expr(
                delivery_attempt::Column::ResponseSnippet,
                Expr::value(Option::<String>::None),
            )
            .filter(delivery_attempt::Column::DeliveryId.is_in(deliveries))
            .filter(delivery_attempt::Column::ResponseSnippet.is_not_null())
            .exec(db)
            .await?;
    }
    Ok(done.rows_affected)
}

/// Removes up to `limit` events of a deleted tenant, with their deliveries and attempts (the
/// database cascades); once none is left, the tenant's own row and what hangs on it
/// (connections, keys, endpoints, tokens, subject heads, provider actions). Answers how many
/// events went, and whether the tenant is gone.
pub async fn remove_deleted_batch(
    db: &DatabaseConnection,
    gate: &WriteGate,
    tenant: &TenantId,
    limit: u64,
) -> Result<(u64, bool), DbErr> {
    let ids: Vec<EventId> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::TenantId.eq(tenant.clone()))
        .order_by_asc(event::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    let turn = gate.enter().await;
    let txn = super::begin_write(turn.db).await?;
    if ids.is_empty() {
        // What has no foreign key to the tenant goes with it: its endpoints' sequences and
        // its alerts.
        super::endpoint_sequence::Entity::delete_many()
            .filter(
                super::endpoint_sequence::Column::EndpointId.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(super::endpoint::Column::Id)
                        .from(super::endpoint::Entity)
                        .and_where(super::endpoint::Column::TenantId.eq(tenant.clone()))
                        .to_owned(),
                ),
            )
            .exec(&txn)
            .await?;
        super::alert::Entity::delete_many()
            .filter(super::alert::Column::TenantId.eq(tenant.clone()))
            .exec(&txn)
            .await?;
        tenant::Entity::delete_many()
            .filter(tenant::Column::Id.eq(tenant.clone()))
            .filter(tenant::Column::DeletedAt.is_not_null())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        return Ok((0, true));
    }
    let done = event::Entity::delete_many()
        .filter(event::Column::Id.is_in(ids))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok((done.rows_affected, false))
}

/// The purger: every tenant's events past retention, batch after batch. It remembers, per
/// tenant, the last event before which everything is purged, so a pass does not walk the
/// purged history again.
pub struct Purger {
    db: DatabaseConnection,
    gate: WriteGate,
    cipher: Arc<Cipher>,
    settings: RetentionSettings,
    purged_through: HashMap<TenantId, EventId>,
    /// Every payload stored in plain columns (before payloads were sealed) is sealed now: new
    /// events are always sealed, so there is no need to look again.
    all_sealed: bool,
}

impl Purger {
    pub fn new(
        db: DatabaseConnection,
        gate: WriteGate,
        cipher: Arc<Cipher>,
        settings: RetentionSettings,
    ) -> Self {
        Self {
            db,
            gate,
            cipher,
            settings,
            purged_through: HashMap::new(),
            all_sealed: false,
        }
    }

    /// Seals, batch by batch, the payloads stored before payloads were sealed; answers how
    /// many. Past retention they are purged first, and never sealed.
    pub async fn seal_plain(&mut self) -> Result<u64, DbErr> {
        let mut total = 0;
        while !self.all_sealed {
            let started = Instant::now();
            let n = super::payload::seal_plain_batch(
                &self.db,
                &self.gate,
                &self.cipher,
                self.settings.batch,
            )
            .await?;
            total += n;
            self.all_sealed = n == 0;
            pause_after(started).await;
        }
        Ok(total)
    }

    /// One pass over every tenant as of `now`; answers how many events were purged.
    pub async fn pass(&mut self, now: DateTime<Utc>) -> Result<u64, DbErr> {
        let tenants: Vec<(TenantId, Option<i32>, Option<DateTime<Utc>>)> = tenant::Entity::find()
            .select_only()
            .column(tenant::Column::Id)
            .column(tenant::Column::RetentionDays)
            .column(tenant::Column::DeletedAt)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut total = 0;
        for (tenant, days, deleted) in tenants {
            if deleted.is_some() {
                self.remove_tenant(&tenant).await?;
                continue;
            }
            let days = days
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(self.settings.default_days);
            let Some(cutoff) = now.checked_sub_signed(chrono::Duration::days(i64::from(days)))
            else {
                continue;
            };
            total += self.purge_tenant(&tenant, cutoff, now).await?;
        }
        Ok(total)
    }

    /// A deleted tenant's rows, batch after batch, the tenant's row last.
    async fn remove_tenant(&mut self, tenant: &TenantId) -> Result<(), DbErr> {
        let mut removed = 0;
        loop {
            let started = Instant::now();
            let (n, gone) =
                remove_deleted_batch(&self.db, &self.gate, tenant, self.settings.batch).await?;
            removed += n;
            if gone {
                self.purged_through.remove(tenant);
                tracing::info!(tenant = %tenant, events = removed, "removed a deleted tenant");
                return Ok(());
            }
            pause_after(started).await;
        }
    }

    async fn purge_tenant(
        &mut self,
        tenant: &TenantId,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, DbErr> {
        let mut cursor = self.purged_through.get(tenant).cloned();
        let mut contiguous = true;
        let mut total = 0;
        loop {
            let started = Instant::now();
            let batch = purge_batch(
                &self.db,
                &self.gate,
                tenant,
                cutoff,
                cursor.as_ref(),
                self.settings.batch,
                now,
            )
            .await?;
            total += batch.purged;
            let Some(last) = batch.last else {
                return Ok(total);
            };
            if contiguous {
                match batch.first_kept {
                    Some(_) => contiguous = false,
                    None => {
                        self.purged_through.insert(tenant.clone(), last.clone());
                    }
                }
            }
            cursor = Some(last);
            pause_after(started).await;
        }
    }
}

/// Between two batches the purger rests as long as the batch took (at least 5 ms): it never
/// takes more than about half of the database's and the machine's time from the writers that
/// acknowledge webhooks, however large the backlog (README, "Patient data": a million events
/// purged during a run at 1,000 webhooks/s).
async fn pause_after(started: Instant) {
    let took = started.elapsed();
    tokio::time::sleep(took.max(Duration::from_millis(5))).await;
}

/// Runs a pass every `interval` until `stop`.
pub fn spawn_purger(
    db: DatabaseConnection,
    gate: WriteGate,
    cipher: Arc<Cipher>,
    settings: RetentionSettings,
    stop: tokio_util::sync::CancellationToken,
) {
    let interval = settings.interval;
    let mut purger = Purger::new(db, gate, cipher, settings);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            match purger.pass(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "purged payloads past retention"),
                Err(e) => tracing::warn!(error = %e, "purge pass failed; the next pass retries"),
            }
            match purger.seal_plain().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "sealed payloads stored in plain columns"),
                Err(e) => {
                    tracing::warn!(error = %e, "sealing plain payloads failed; the next pass retries")
                }
            }
        }
    });
}
