//! The outbox on SQLite, through SQLite's own API: the same rows as the PostgreSQL backend,
//! written one row per execution of a statement prepared once per connection. SQLite runs in
//! this thread, so a row costs a few microseconds; there is no round trip to amortize and no
//! multi-row statement to parse again.
//!
//! Values are stored exactly as sqlx stores them, so both paths read each other's rows:
//! timestamps as RFC 3339 text (`timestamp`), booleans as 0/1, JSON as text.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::future::BoxFuture;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use sea_orm::DbErr;
use serde_json::Value;

use super::plan::{
    check_keys, fan_out, head_key, judge, key_ids, number, sequence_counts, HeadKey, Outcome,
    Record, Stored, Target,
};
use crate::delivery::{EndpointChange, Plan};
use crate::domain::{DeliveryStatus, EndpointId, EndpointKind, EventId, Ordering, TenantId};
use crate::handoff::Handoff;

/// The outbox on SQLite's own connection to the database file.
pub struct Sqlite {
    conn: Arc<Mutex<Connection>>,
}

impl Sqlite {
    pub fn new(conn: Arc<Mutex<Connection>>) -> Self {
        Self { conn }
    }
}

impl super::Backend for Sqlite {
    fn write<'a>(
        &'a self,
        records: &'a [&'a Record],
        plans: &'a [&'a Plan],
        handoff: &'a Handoff,
    ) -> BoxFuture<'a, Result<Stored, DbErr>> {
        Box::pin(async move {
            blocking(|| {
                let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
                write(&mut conn, records, plans, handoff)
            })
        })
    }
}

/// Runs a synchronous write without stalling the other tasks of the runtime's thread: on a
/// multi-threaded runtime they move to another thread meanwhile. A current-thread runtime
/// (tests) runs it in place.
fn blocking<T>(write: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(write),
        _ => write(),
    }
}

/// One transaction: the outcomes, then the events with their heads and deliveries.
fn write(
    conn: &mut Connection,
    records: &[&Record],
    plans: &[&Plan],
    handoff: &Handoff,
) -> Result<Stored, DbErr> {
    let txn = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    if !plans.is_empty() {
        write_outcomes(&txn, handoff.worker_id(), plans)?;
    }
    let stored = if records.is_empty() {
        Stored::default()
    } else {
        store_events(&txn, records, handoff)?
    };
    txn.commit().map_err(db)?;
    Ok(stored)
}

/// A lock held elsewhere past the busy timeout is the database being unavailable (503, retry),
/// not a fault of the batch.
fn db(e: rusqlite::Error) -> DbErr {
    let busy = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    if busy {
        super::unavailable()
    } else {
        DbErr::Custom(format!("sqlite: {e}"))
    }
}

/// As sqlx writes a `DateTime<Utc>`; the queue's due-time comparisons compare this text.
fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn store_events(
    txn: &Transaction<'_>,
    records: &[&Record],
    handoff: &Handoff,
) -> Result<Stored, DbErr> {
    check_keys(&key_ids(records), &live_keys(txn, &key_ids(records))?)?;
    let targets = targets(txn, records)?;
    // The same judgment as the portable path: before the insert, and again without the
    // retries when the batch held some.
    let heads = read_heads(txn, records)?;
    let mut judged = judge(records, &heads, |_| true);
    let inserted = insert_events(txn, records, &judged.stale)?;
    if inserted.len() < records.len() {
        let again = judge(records, &heads, |r| inserted.contains(r.id.as_str()));
        let mut set = txn
            .prepare_cached("UPDATE events SET stale = ?1 WHERE id = ?2")
            .map_err(db)?;
        for (flag, ids) in [
            (true, again.stale.difference(&judged.stale)),
            (false, judged.stale.difference(&again.stale)),
        ] {
            for id in ids.filter(|id| inserted.contains(*id)) {
                set.execute(params![flag, id]).map_err(db)?;
            }
        }
        judged = again;
    }
    write_heads(txn, &judged.moved)?;

    let mut fanout = fan_out(records, &inserted, &judged.stale, &targets, handoff);
    let lasts = reserve_sequences(txn, &sequence_counts(&fanout.rows))?;
    number(&mut fanout, &lasts)?;
    let mut outcomes = Vec::with_capacity(records.len());
    for (r, outcome) in records.iter().zip(fanout.outcomes) {
        outcomes.push(match outcome {
            Some(o) => o,
            None => duplicate_of(txn, r)?,
        });
    }
    let mut insert = txn
        .prepare_cached(
            "INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, subject, status, \
             attempts, next_attempt_at, leased_until, leased_by, created_at, updated_at, seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10, ?10, ?11)",
        )
        .map_err(db)?;
    for d in &fanout.rows {
        insert
            .execute(params![
                d.id.as_str(),
                d.tenant_id.as_str(),
                d.event_id.as_str(),
                d.endpoint_id.as_str(),
                d.subject,
                DeliveryStatus::Pending.as_str(),
                timestamp(&d.next_attempt_at),
                d.leased_until.as_ref().map(timestamp),
                d.leased_until.map(|_| handoff.worker_id()),
                timestamp(&d.created_at),
                d.seq,
            ])
            .map_err(db)?;
    }
    Ok(Stored {
        outcomes,
        handed: fanout.handed,
        queued: fanout.queued,
    })
}

/// The enabled endpoints of the batch's tenants.
fn targets(
    txn: &Transaction<'_>,
    records: &[&Record],
) -> Result<HashMap<TenantId, Vec<Target>>, DbErr> {
    let mut select = txn
        .prepare_cached(
            "SELECT id, include_stale, event_types, ordering, kind, \
             handshake AND verified_at IS NULL FROM endpoints \
             WHERE tenant_id = ?1 AND enabled = 1",
        )
        .map_err(db)?;
    let mut targets: HashMap<TenantId, Vec<Target>> = HashMap::new();
    for r in records {
        if targets.contains_key(&r.tenant_id) {
            continue;
        }
        let rows = select
            .query_map([r.tenant_id.as_str()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, bool>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, bool>(5)?,
                ))
            })
            .map_err(db)?;
        let mut list = Vec::new();
        for row in rows {
            let (id, include_stale, event_types, ordering, kind, awaiting) = row.map_err(db)?;
            let pull = kind
                .parse::<EndpointKind>()
                .map_err(|e| DbErr::Custom(e.to_string()))?
                == EndpointKind::Pull;
            list.push(Target {
                id: EndpointId::parse(&id).map_err(DbErr::Custom)?,
                include_stale,
                event_types: serde_json::from_str(&event_types).unwrap_or(Value::Null),
                fifo: ordering
                    .parse::<Ordering>()
                    .map_err(|e| DbErr::Custom(e.to_string()))?
                    == Ordering::FifoSubject,
                held: pull || awaiting,
                pull,
            });
        }
        targets.insert(r.tenant_id.clone(), list);
    }
    Ok(targets)
}

/// Takes `counts` numbers from each endpoint's sequence and answers each one's last number after
/// that (the transaction holds SQLite's one write lock).
fn reserve_sequences(
    txn: &Transaction<'_>,
    counts: &[(EndpointId, i64)],
) -> Result<HashMap<EndpointId, i64>, DbErr> {
    let mut reserve = txn
        .prepare_cached(
            "INSERT INTO endpoint_sequences (endpoint_id, last_seq, cursor) VALUES (?1, ?2, 0) \
             ON CONFLICT (endpoint_id) DO UPDATE \
             SET last_seq = endpoint_sequences.last_seq + excluded.last_seq RETURNING last_seq",
        )
        .map_err(db)?;
    let mut lasts = HashMap::with_capacity(counts.len());
    for (id, n) in counts {
        let last: i64 = reserve
            .query_row(params![id.as_str(), n], |row| row.get(0))
            .map_err(db)?;
        lasts.insert(id.clone(), last);
    }
    Ok(lasts)
}

/// The current heads of the batch's subjects (the transaction holds SQLite's one write lock).
fn read_heads(
    txn: &Transaction<'_>,
    records: &[&Record],
) -> Result<HashMap<HeadKey, (String, String)>, DbErr> {
    let mut select = txn
        .prepare_cached(
            "SELECT order_key, event_id FROM subject_heads \
             WHERE tenant_id = ?1 AND provider = ?2 AND subject = ?3",
        )
        .map_err(db)?;
    let mut heads = HashMap::new();
    for key in records.iter().filter_map(|r| head_key(r)) {
        if heads.contains_key(&key) {
            continue;
        }
        let head = select
            .query_row(params![key.0, key.1, key.2], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .optional()
            .map_err(db)?;
        if let Some(head) = head {
            heads.insert(key, head);
        }
    }
    Ok(heads)
}

/// Which of `ids` are live data keys. The transaction holds SQLite's one write lock, so none
/// is destroyed before it commits.
fn live_keys(
    txn: &Transaction<'_>,
    ids: &[crate::domain::DataKeyId],
) -> Result<HashSet<crate::domain::DataKeyId>, DbErr> {
    let mut live = HashSet::with_capacity(ids.len());
    let mut find = txn
        .prepare_cached("SELECT 1 FROM data_keys WHERE id = ?1 AND destroyed_at IS NULL")
        .map_err(db)?;
    for id in ids {
        if find.exists(params![id.as_str()]).map_err(db)? {
            live.insert(id.clone());
        }
    }
    Ok(live)
}

/// Inserts the events; a retry of one already stored (also within the batch) inserts nothing.
/// Returns the ids actually inserted.
fn insert_events(
    txn: &Transaction<'_>,
    records: &[&Record],
    stale: &HashSet<String>,
) -> Result<HashSet<String>, DbErr> {
    let mut insert = txn
        .prepare_cached(
            "INSERT INTO events (id, tenant_id, provider, provider_event_id, event_type, subject, \
             status, order_key, stale, occurred_at, received_at, normalized, raw_body, \
             raw_headers, verification, data_key_id, sealed_payload) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, '{}', '', '{}', ?12, ?13, ?14) \
             ON CONFLICT (tenant_id, provider, provider_event_id) DO NOTHING",
        )
        .map_err(db)?;
    let mut inserted = HashSet::with_capacity(records.len());
    for r in records {
        let n = &r.normalized;
        let changed = insert
            .execute(params![
                r.id.as_str(),
                r.tenant_id.as_str(),
                r.provider.as_str(),
                n.provider_event_id,
                n.event_type,
                n.subject,
                n.data.status.as_str(),
                n.order_key,
                stale.contains(r.id.as_str()),
                timestamp(&n.occurred_at),
                timestamp(&r.received_at),
                r.verification,
                r.sealed.key_id.as_str(),
                r.sealed.blob,
            ])
            .map_err(db)?;
        if changed == 1 {
            inserted.insert(r.id.to_string());
        }
    }
    Ok(inserted)
}

fn write_heads(
    txn: &Transaction<'_>,
    moved: &HashMap<HeadKey, (String, String)>,
) -> Result<(), DbErr> {
    let mut upsert = txn
        .prepare_cached(
            "INSERT INTO subject_heads (tenant_id, provider, subject, order_key, event_id) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (tenant_id, provider, subject) \
             DO UPDATE SET order_key = excluded.order_key, event_id = excluded.event_id",
        )
        .map_err(db)?;
    for ((tenant, provider, subject), (order_key, event_id)) in moved {
        upsert
            .execute(params![tenant, provider, subject, order_key, event_id])
            .map_err(db)?;
    }
    Ok(())
}

/// A retried webhook: answered with the event stored the first time.
fn duplicate_of(txn: &Transaction<'_>, r: &Record) -> Result<Outcome, DbErr> {
    let (id, stale) = txn
        .prepare_cached(
            "SELECT id, stale FROM events \
             WHERE tenant_id = ?1 AND provider = ?2 AND provider_event_id = ?3",
        )
        .map_err(db)?
        .query_row(
            params![
                r.tenant_id.as_str(),
                r.provider.as_str(),
                r.normalized.provider_event_id
            ],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?)),
        )
        .map_err(db)?;
    Ok(Outcome {
        event_id: EventId::parse(&id).map_err(DbErr::Custom)?,
        duplicate: true,
        stale,
        deliveries: 0,
    })
}

/// Records attempts and moves their deliveries on, fenced by the lease as on the portable path.
fn write_outcomes(txn: &Transaction<'_>, worker: &str, plans: &[&Plan]) -> Result<(), DbErr> {
    let mut attempt = txn
        .prepare_cached(
            "INSERT INTO delivery_attempts (id, delivery_id, endpoint_id, tenant_id, attempt, at, \
             status_code, duration_ms, error_class, error, response_snippet, success, \
             payload_mode) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .map_err(db)?;
    let mut update = txn
        .prepare_cached(
            "UPDATE deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, \
             leased_until = NULL, leased_by = NULL, last_status_code = ?5, last_error = ?6, \
             updated_at = ?7, completed_at = COALESCE(?8, completed_at) \
             WHERE id = ?1 AND leased_by = ?9",
        )
        .map_err(db)?;
    for p in plans {
        let a = &p.attempt;
        attempt
            .execute(params![
                a.id.as_str(),
                a.delivery_id.as_str(),
                a.endpoint_id.as_str(),
                a.tenant_id.as_str(),
                a.attempt,
                timestamp(&a.at),
                a.status_code,
                a.duration_ms,
                a.error_class,
                a.error,
                a.response_snippet,
                a.success,
                a.payload_mode.as_str(),
            ])
            .map_err(db)?;
        let completed = (p.status != DeliveryStatus::Pending).then(|| timestamp(&p.now));
        let changed = update
            .execute(params![
                p.delivery.as_str(),
                p.status.as_str(),
                p.attempts,
                timestamp(&p.next_at),
                p.status_code,
                p.error,
                timestamp(&p.now),
                completed,
                worker,
            ])
            .map_err(db)?;
        if changed == 0 {
            // The lease expired and another worker owns the delivery now; keep the attempt log.
            tracing::warn!(delivery = %p.delivery, "lease lost before the outcome was recorded");
        }
        match &p.endpoint_change {
            None => {}
            Some(EndpointChange::Healthy) => {
                txn.prepare_cached("UPDATE endpoints SET failing_since = NULL WHERE id = ?1")
                    .map_err(db)?
                    .execute([p.endpoint.as_str()])
                    .map_err(db)?;
            }
            Some(EndpointChange::Failing { since, disable }) => {
                // Only the first failure of a run sets the start; a stale snapshot cannot move it.
                txn.prepare_cached(
                    "UPDATE endpoints SET failing_since = ?2 \
                     WHERE id = ?1 AND failing_since IS NULL",
                )
                .map_err(db)?
                .execute(params![p.endpoint.as_str(), timestamp(since)])
                .map_err(db)?;
                if let Some(reason) = disable {
                    txn.prepare_cached(
                        "UPDATE endpoints SET enabled = 0, disabled_reason = ?2 WHERE id = ?1",
                    )
                    .map_err(db)?
                    .execute(params![p.endpoint.as_str(), reason])
                    .map_err(db)?;
                }
            }
        }
    }
    Ok(())
}
