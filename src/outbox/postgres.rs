//! The outbox on PostgreSQL, through sea-orm: a batch of webhooks with their subjects' heads and
//! outbox rows, and delivery outcomes, in multi-row statements (a batch costs a handful of round
//! trips, not a few per event). The statements are portable: an in-memory SQLite database, which
//! only a pool can share, is written through this path too.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Statement,
};

use super::plan::{
    check_keys, fan_out, head_key, judge, key_ids, number, sequence_counts, HeadKey, Outcome,
    Record, Stored, Target,
};
use crate::delivery::queue::placeholder;
use crate::delivery::{EndpointChange, Plan, NOTIFY_CHANNEL};
use crate::domain::{DeliveryStatus, TenantId};
use crate::handoff::Handoff;
use crate::store::{delivery, delivery_attempt, endpoint, event, subject_head};

/// The outbox through a sea-orm connection.
pub struct Postgres {
    db: DatabaseConnection,
}

impl Postgres {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl super::Backend for Postgres {
    fn write<'a>(
        &'a self,
        records: &'a [&'a Record],
        plans: &'a [&'a Plan],
        handoff: &'a Handoff,
    ) -> BoxFuture<'a, Result<Stored, DbErr>> {
        Box::pin(async move {
            let txn = crate::store::begin_write(&self.db).await?;
            if !plans.is_empty() {
                write_outcomes(&txn, handoff.worker_id(), plans).await?;
            }
            let stored = if records.is_empty() {
                Stored::default()
            } else {
                store_events(&txn, records, handoff).await?
            };
            txn.commit().await?;
            Ok(stored)
        })
    }
}

/// Stores a batch of webhooks inside the caller's transaction: the events (a retry of one
/// already stored inserts nothing), their subjects' heads, and one delivery per matching
/// endpoint, leased to this process's workers when they have room for it now.
async fn store_events(
    txn: &impl ConnectionTrait,
    records: &[&Record],
    handoff: &Handoff,
) -> Result<Stored, DbErr> {
    let backend = txn.get_database_backend();
    let keys = key_ids(records);
    check_keys(&keys, &live_keys(txn, backend, &keys).await?)?;
    // The batch's tenants' enabled endpoints, in one query.
    let mut tenants: Vec<TenantId> = records.iter().map(|r| r.tenant_id.clone()).collect();
    tenants.sort();
    tenants.dedup();
    let mut targets: HashMap<TenantId, Vec<Target>> = HashMap::new();
    for chunk in crate::store::pow2_chunks(&tenants, CHUNK) {
        for ep in endpoint::enabled_of_tenants(txn, chunk).await? {
            targets
                .entry(ep.tenant_id.clone())
                .or_default()
                .push(Target::from(&ep));
        }
    }

    // Multi-row statements: a batch costs a handful of statements, not a few per event.
    // Staleness is judged before the insert, so each event is written once with its flag; a
    // retry in the batch (inserted nothing) is judged again without it, which is rare.
    let heads = read_heads(txn, backend, records).await?;
    let mut judged = judge(records, &heads, |_| true);
    let inserted = insert_events(txn, backend, records, &judged.stale).await?;
    if inserted.len() < records.len() {
        let again = judge(records, &heads, |r| inserted.contains(r.id.as_str()));
        correct_stale(txn, &inserted, &judged.stale, &again.stale).await?;
        judged = again;
    }
    write_heads(txn, backend, &judged.moved).await?;

    let mut fanout = fan_out(records, &inserted, &judged.stale, &targets, handoff);
    let lasts = reserve_sequences(txn, backend, &sequence_counts(&fanout.rows)).await?;
    number(&mut fanout, &lasts)?;
    let mut outcomes = Vec::with_capacity(records.len());
    for (r, outcome) in records.iter().zip(fanout.outcomes) {
        outcomes.push(match outcome {
            Some(o) => o,
            None => duplicate_of(txn, r).await?,
        });
    }
    let stored = Stored {
        outcomes,
        handed: fanout.handed,
        queued: fanout.queued,
    };
    for chunk in crate::store::pow2_chunks(&fanout.rows, CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(delivery::Entity).columns([
            delivery::Column::Id,
            delivery::Column::TenantId,
            delivery::Column::EventId,
            delivery::Column::EndpointId,
            delivery::Column::Subject,
            delivery::Column::Status,
            delivery::Column::Attempts,
            delivery::Column::NextAttemptAt,
            delivery::Column::LeasedUntil,
            delivery::Column::LeasedBy,
            delivery::Column::CreatedAt,
            delivery::Column::UpdatedAt,
            delivery::Column::Seq,
        ]);
        for d in chunk {
            insert
                .values([
                    Expr::value(d.id.to_string()),
                    Expr::value(d.tenant_id.to_string()),
                    Expr::value(d.event_id.to_string()),
                    Expr::value(d.endpoint_id.to_string()),
                    Expr::value(d.subject.clone()),
                    Expr::value(DeliveryStatus::Pending),
                    Expr::value(0i32),
                    Expr::value(d.next_attempt_at),
                    Expr::value(d.leased_until),
                    Expr::value(d.leased_until.map(|_| handoff.worker_id().to_owned())),
                    Expr::value(d.created_at),
                    Expr::value(d.created_at),
                    Expr::value(d.seq),
                ])
                .map_err(query_error)?;
        }
        txn.execute_raw(backend.build(&insert)).await?;
    }

    if backend == sea_orm::DatabaseBackend::Postgres && stored.queued {
        // Delivered on commit to every replica's LISTEN, so another process's workers start at once.
        txn.execute_unprepared(&format!("NOTIFY {}", NOTIFY_CHANNEL))
            .await?;
    }
    Ok(stored)
}

/// Takes `counts` numbers from each endpoint's sequence (created at its first event) and answers
/// each sequence's last number after that. The rows stay locked until commit, so concurrent
/// writers (this process's and other replicas') number one endpoint's deliveries one batch after
/// another, without gaps or repeats; they lock in endpoint order, after the subjects' heads.
async fn reserve_sequences(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DatabaseBackend,
    counts: &[(crate::domain::EndpointId, i64)],
) -> Result<HashMap<crate::domain::EndpointId, i64>, DbErr> {
    let mut lasts = HashMap::with_capacity(counts.len());
    for chunk in crate::store::pow2_chunks(counts, CHUNK) {
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 2);
        let mut rows = Vec::with_capacity(chunk.len());
        for (id, n) in chunk {
            let at = values.len();
            values.extend([id.to_string().into(), (*n).into()]);
            rows.push(format!(
                "({}, {}, 0)",
                placeholder(backend, at + 1),
                placeholder(backend, at + 2)
            ));
        }
        let sql = format!(
            "INSERT INTO endpoint_sequences (endpoint_id, last_seq, cursor) VALUES {} \
             ON CONFLICT (endpoint_id) DO UPDATE \
             SET last_seq = endpoint_sequences.last_seq + excluded.last_seq \
             RETURNING endpoint_id, last_seq",
            rows.join(", ")
        );
        for row in txn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            let id: String = row.try_get("", "endpoint_id")?;
            let last: i64 = row.try_get("", "last_seq")?;
            let id = crate::domain::EndpointId::parse(&id).map_err(DbErr::Custom)?;
            lasts.insert(id, last);
        }
    }
    Ok(lasts)
}

/// Rows per multi-row statement: well under both backends' limits on bound parameters.
const CHUNK: usize = 64;

fn query_error(e: sea_orm::sea_query::error::Error) -> DbErr {
    DbErr::Custom(format!("building a statement: {e}"))
}

/// Which of `ids` are live data keys. On PostgreSQL their rows stay share-locked until commit,
/// so a key destroyed meanwhile (another replica) waits for this batch, which it then shreds
/// with the rest, rather than leaving events stored after it under it.
async fn live_keys(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DatabaseBackend,
    ids: &[crate::domain::DataKeyId],
) -> Result<HashSet<crate::domain::DataKeyId>, DbErr> {
    let mut live = HashSet::with_capacity(ids.len());
    for chunk in crate::store::pow2_chunks(ids, CHUNK) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| placeholder(backend, i)).collect();
        let lock = match backend {
            sea_orm::DatabaseBackend::Postgres => " FOR SHARE",
            _ => "",
        };
        let sql = format!(
            "SELECT id FROM data_keys WHERE id IN ({}) AND destroyed_at IS NULL{lock}",
            marks.join(", ")
        );
        let values: Vec<sea_orm::Value> = chunk.iter().map(|id| id.to_string().into()).collect();
        for row in txn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            let id: String = row.try_get("", "id")?;
            if let Ok(id) = crate::domain::DataKeyId::parse(&id) {
                live.insert(id);
            }
        }
    }
    Ok(live)
}

/// Inserts the batch's events; a conflict on the provider's event id (a retry, also within
/// the batch) inserts nothing. Returns the ids actually inserted.
async fn insert_events(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DatabaseBackend,
    records: &[&Record],
    stale: &HashSet<String>,
) -> Result<HashSet<String>, DbErr> {
    let mut inserted = HashSet::with_capacity(records.len());
    for chunk in crate::store::pow2_chunks(records, CHUNK) {
        let mut insert = Query::insert();
        insert
            .into_table(event::Entity)
            .columns([
                event::Column::Id,
                event::Column::TenantId,
                event::Column::Provider,
                event::Column::ProviderEventId,
                event::Column::EventType,
                event::Column::Subject,
                event::Column::Status,
                event::Column::OrderKey,
                event::Column::Stale,
                event::Column::OccurredAt,
                event::Column::ReceivedAt,
                event::Column::Normalized,
                event::Column::RawBody,
                event::Column::RawHeaders,
                event::Column::Verification,
                event::Column::DataKeyId,
                event::Column::SealedPayload,
            ])
            .on_conflict(
                OnConflict::columns([
                    event::Column::TenantId,
                    event::Column::Provider,
                    event::Column::ProviderEventId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .returning_col(event::Column::Id);
        // JSON columns are text on SQLite and `json` on PostgreSQL (migration 0007), which
        // wants the text cast.
        let json = |text: &str| match backend {
            sea_orm::DatabaseBackend::Postgres => {
                Expr::value(text.to_owned()).cast_as(sea_orm::sea_query::Alias::new("json"))
            }
            _ => Expr::value(text.to_owned()),
        };
        for r in chunk {
            let n = &r.normalized;
            insert
                .values([
                    Expr::value(r.id.to_string()),
                    Expr::value(r.tenant_id.to_string()),
                    Expr::value(r.provider.as_str()),
                    Expr::value(n.provider_event_id.clone()),
                    Expr::value(n.event_type),
                    Expr::value(n.subject.clone()),
                    Expr::value(n.data.status.as_str()),
                    Expr::value(n.order_key.clone()),
                    Expr::value(stale.contains(r.id.as_str())),
                    Expr::value(n.occurred_at),
                    Expr::value(r.received_at),
                    // The payload is held sealed; the plain columns stay empty.
                    json("{}"),
                    Expr::value(""),
                    json("{}"),
                    json(&r.verification),
                    Expr::value(r.sealed.key_id.to_string()),
                    Expr::value(r.sealed.blob.clone()),
                ])
                .map_err(query_error)?;
        }
        for row in txn.query_all_raw(backend.build(&insert)).await? {
            inserted.insert(row.try_get::<String>("", "id")?);
        }
    }
    Ok(inserted)
}

/// A retried webhook: answered with the event stored the first time.
async fn duplicate_of(txn: &impl ConnectionTrait, r: &Record) -> Result<Outcome, DbErr> {
    let existing = event::first_stored(
        txn,
        &r.tenant_id,
        r.provider.as_str(),
        &r.normalized.provider_event_id,
    )
    .await?;
    let (event_id, stale) =
        existing.ok_or_else(|| DbErr::RecordNotFound("duplicate event".into()))?;
    Ok(Outcome {
        event_id,
        duplicate: true,
        stale,
        deliveries: 0,
    })
}

/// The current heads (the newest order key seen, and its event) of the batch's subjects.
///
/// On PostgreSQL each head is made to exist (an empty order key sorts before any real one) and
/// locked in one statement: an insert whose conflict "updates" the row to itself returns the
/// head as it was and holds its row lock until commit, like `SELECT … FOR UPDATE` but without a
/// second round trip and without planning a long `OR` of keys each cycle. The keys go in sorted
/// order, so concurrent writers (this process's, other replicas') lock in one order and
/// serialize per subject. On SQLite the transaction already holds the database's one write lock.
async fn read_heads(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DatabaseBackend,
    records: &[&Record],
) -> Result<HashMap<HeadKey, (String, String)>, DbErr> {
    let keys: Vec<HeadKey> = records
        .iter()
        .filter_map(|r| head_key(r))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut heads = HashMap::with_capacity(keys.len());
    let postgres = backend == sea_orm::DatabaseBackend::Postgres;
    for chunk in crate::store::pow2_chunks(&keys, CHUNK) {
        let found: Vec<subject_head::Model> = if postgres {
            let mut lock = Query::insert();
            lock.into_table(subject_head::Entity)
                .columns(HEAD_COLUMNS)
                .on_conflict(
                    OnConflict::columns(HEAD_KEY)
                        .value(
                            subject_head::Column::OrderKey,
                            Expr::col((subject_head::Entity, subject_head::Column::OrderKey)),
                        )
                        .to_owned(),
                )
                .returning(Query::returning().columns(HEAD_COLUMNS));
            for (tenant, provider, subject) in chunk {
                lock.values([
                    Expr::value(tenant.clone()),
                    Expr::value(*provider),
                    Expr::value(subject.clone()),
                    Expr::value(""),
                    Expr::value(""),
                ])
                .map_err(query_error)?;
            }
            subject_head::Entity::find()
                .from_raw_sql(backend.build(&lock))
                .all(txn)
                .await?
        } else {
            subject_head::find_keys(txn, chunk).await?
        };
        for h in found {
            heads.insert(
                (h.tenant_id, h.provider.as_str(), h.subject),
                (h.order_key, h.event_id),
            );
        }
    }
    Ok(heads)
}

/// After a batch with retries: the flags the insert wrote from the first judgment are set to
/// the second where they differ.
async fn correct_stale(
    txn: &impl ConnectionTrait,
    inserted: &HashSet<String>,
    written: &HashSet<String>,
    right: &HashSet<String>,
) -> Result<(), DbErr> {
    for (flag, ids) in [
        (true, right.difference(written)),
        (false, written.difference(right)),
    ] {
        let ids: Vec<String> = ids.filter(|id| inserted.contains(*id)).cloned().collect();
        if ids.is_empty() {
            continue;
        }
        event::Entity::update_many()
            .col_expr(event::Column::Stale, Expr::value(flag))
            .filter(event::Column::Id.is_in(ids))
            .exec(txn)
            .await?;
    }
    Ok(())
}

async fn write_heads(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DatabaseBackend,
    moved: &HashMap<HeadKey, (String, String)>,
) -> Result<(), DbErr> {
    let moved: Vec<_> = moved.iter().collect();
    for chunk in crate::store::pow2_chunks(&moved, CHUNK) {
        let mut upsert = Query::insert();
        upsert
            .into_table(subject_head::Entity)
            .columns(HEAD_COLUMNS)
            .on_conflict(
                OnConflict::columns(HEAD_KEY)
                    .update_columns([
                        subject_head::Column::OrderKey,
                        subject_head::Column::EventId,
                    ])
                    .to_owned(),
            );
        for ((tenant, provider, subject), (order_key, event_id)) in chunk {
            upsert
                .values([
                    Expr::value(tenant.clone()),
                    Expr::value(*provider),
                    Expr::value(subject.clone()),
                    Expr::value(order_key.clone()),
                    Expr::value(event_id.clone()),
                ])
                .map_err(query_error)?;
        }
        txn.execute_raw(backend.build(&upsert)).await?;
    }
    Ok(())
}

const HEAD_COLUMNS: [subject_head::Column; 5] = [
    subject_head::Column::TenantId,
    subject_head::Column::Provider,
    subject_head::Column::Subject,
    subject_head::Column::OrderKey,
    subject_head::Column::EventId,
];
const HEAD_KEY: [subject_head::Column; 3] = [
    subject_head::Column::TenantId,
    subject_head::Column::Provider,
    subject_head::Column::Subject,
];

/// Records a batch of attempts and moves their deliveries on, inside the caller's transaction.
async fn write_outcomes(
    txn: &impl ConnectionTrait,
    worker: &str,
    plans: &[&Plan],
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    for chunk in crate::store::pow2_chunks(plans, OUTCOME_CHUNK) {
        delivery_attempt::Entity::insert_many(
            chunk
                .iter()
                .map(|p| delivery_attempt::ActiveModel::from(p.attempt.clone())),
        )
        .exec_without_returning(txn)
        .await?;
        // One statement per chunk: `UPDATE … FROM (VALUES …)` reads the same on both backends.
        // Fenced by the lease: a delivery another worker took over is left alone.
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 8 + 1);
        let mut rows = Vec::with_capacity(chunk.len());
        for p in chunk {
            let at = values.len();
            values.extend([
                p.delivery.to_string().into(),
                p.status.into(),
                p.attempts.into(),
                p.next_at.into(),
                p.status_code.into(),
                p.error.clone().into(),
                p.now.into(),
                (p.status != DeliveryStatus::Pending)
                    .then_some(p.now)
                    .into(),
            ]);
            let marks: Vec<String> = (at + 1..=at + 8).map(|i| placeholder(backend, i)).collect();
            rows.push(format!("({})", marks.join(", ")));
        }
        values.push(worker.into());
        let sql = format!(
            "UPDATE deliveries SET status = v.column2, attempts = v.column3, \
             next_attempt_at = v.column4, leased_until = NULL, leased_by = NULL, \
             last_status_code = v.column5, last_error = v.column6, updated_at = v.column7, \
             completed_at = COALESCE(v.column8, deliveries.completed_at) \
             FROM (VALUES {}) AS v \
             WHERE deliveries.id = v.column1 AND deliveries.leased_by = {} \
             RETURNING deliveries.id",
            rows.join(", "),
            placeholder(backend, values.len()),
        );
        let updated = txn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        if updated.len() < chunk.len() {
            let kept: std::collections::HashSet<String> = updated
                .iter()
                .filter_map(|r| r.try_get::<String>("", "id").ok())
                .collect();
            for p in chunk.iter().filter(|p| !kept.contains(p.delivery.as_str())) {
                // The lease expired and another worker owns the delivery now; keep the attempt log.
                tracing::warn!(delivery = %p.delivery, "lease lost before the outcome was recorded");
            }
        }
    }
    for p in plans {
        match &p.endpoint_change {
            None => {}
            Some(EndpointChange::Healthy) => {
                endpoint::Entity::update_many()
                    .col_expr(
                        endpoint::Column::FailingSince,
                        Expr::value(Option::<DateTime<Utc>>::None),
                    )
                    .filter(endpoint::Column::Id.eq(p.endpoint.clone()))
                    .exec(txn)
                    .await?;
            }
            Some(EndpointChange::Failing { since, disable }) => {
                // Only the first failure of a run sets the start; a stale snapshot cannot move it.
                endpoint::Entity::update_many()
                    .col_expr(endpoint::Column::FailingSince, Expr::value(Some(*since)))
                    .filter(endpoint::Column::Id.eq(p.endpoint.clone()))
                    .filter(endpoint::Column::FailingSince.is_null())
                    .exec(txn)
                    .await?;
                let Some(r) = disable else { continue };
                endpoint::Entity::update_many()
                    .col_expr(endpoint::Column::Enabled, Expr::value(false))
                    .col_expr(
                        endpoint::Column::DisabledReason,
                        Expr::value(Some(r.clone())),
                    )
                    .filter(endpoint::Column::Id.eq(p.endpoint.clone()))
                    .exec(txn)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Outcomes per statement: 8 parameters each, well under both backends' limits.
const OUTCOME_CHUNK: usize = 64;
