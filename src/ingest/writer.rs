//! Storing webhooks. Each event is stored with its raw body and headers, its normalized form, and
//! one delivery row per matching endpoint (the outbox) in the same transaction; concurrent
//! webhooks share that transaction (group commit, see `crate::writer`), and the HTTP answer goes
//! out only after the commit.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::Value;
use std::sync::Arc;

use crate::delivery::handoff::{Handed, Handoff};
use crate::delivery::{Claimed, Payload};
use crate::domain::{DeliveryId, EndpointId, EventId, Provider, TenantId};
use crate::normalize::Normalized;
use crate::store::{delivery, endpoint, event, subject_head};

/// One verified, normalized webhook ready to store.
pub struct Record {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub provider: Provider,
    pub normalized: Normalized,
    /// The CloudEvent as stored (without the provider's body, see
    /// [`crate::normalize::stored_cloud_event`]), the headers kept and the verification, as
    /// JSON text: serialized by the request's own thread, so the one writer only copies them.
    pub cloud_event: String,
    pub raw_body: String,
    pub raw_headers: String,
    pub verification: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub event_id: EventId,
    pub duplicate: bool,
    pub stale: bool,
    pub deliveries: usize,
}

/// What storing a batch gave: an answer per record, in order, and the new deliveries.
#[derive(Default)]
pub struct Stored {
    pub outcomes: Vec<Outcome>,
    /// Leased to this process's workers in the same transaction; sent after the commit.
    pub handed: Vec<Handed>,
    /// Some new deliveries were left in the queue for whichever worker claims them first.
    pub queued: bool,
}

/// Stores a batch of webhooks inside the caller's transaction: the events (a retry of one
/// already stored inserts nothing), their subjects' heads, and one delivery per matching
/// endpoint, leased to this process's workers when they have room for it now.
pub async fn store_events(
    txn: &impl ConnectionTrait,
    records: &[&Record],
    handoff: &Handoff,
) -> Result<Stored, DbErr> {
    let backend = txn.get_database_backend();
    // The batch's tenants' enabled endpoints, in one query.
    let mut tenants: Vec<TenantId> = records.iter().map(|r| r.tenant_id.clone()).collect();
    tenants.sort();
    tenants.dedup();
    let mut targets: HashMap<TenantId, Vec<Target>> = HashMap::new();
    for chunk in crate::store::pow2_chunks(&tenants, CHUNK) {
        for ep in endpoint::Entity::find()
            .filter(endpoint::Column::TenantId.is_in(chunk.iter().cloned()))
            .filter(endpoint::Column::Enabled.eq(true))
            .all(txn)
            .await?
        {
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

    let fanout = fan_out(records, &inserted, &judged.stale, &targets, handoff);
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
        ]);
        for d in chunk {
            insert
                .values([
                    Expr::value(d.id.to_string()),
                    Expr::value(d.tenant_id.to_string()),
                    Expr::value(d.event_id.to_string()),
                    Expr::value(d.endpoint_id.to_string()),
                    Expr::value(d.subject.clone()),
                    Expr::value(delivery::STATUS_PENDING),
                    Expr::value(0i32),
                    Expr::value(d.next_attempt_at),
                    Expr::value(d.leased_until),
                    Expr::value(d.leased_until.map(|_| handoff.worker_id().to_owned())),
                    Expr::value(d.created_at),
                    Expr::value(d.created_at),
                ])
                .map_err(query_error)?;
        }
        txn.execute_raw(backend.build(&insert)).await?;
    }

    if backend == sea_orm::DatabaseBackend::Postgres && stored.queued {
        // Delivered on commit to every replica's LISTEN, so another process's workers start at once.
        txn.execute_unprepared(&format!("NOTIFY {}", crate::delivery::NOTIFY_CHANNEL))
            .await?;
    }
    Ok(stored)
}

/// An endpoint as the writer sees it: what decides whether an event goes to it, and how.
pub struct Target {
    pub id: EndpointId,
    pub include_stale: bool,
    pub event_types: Value,
    /// FIFO endpoints' deliveries always go through the queue, which orders them per subject.
    pub fifo: bool,
}

impl From<&endpoint::Model> for Target {
    fn from(ep: &endpoint::Model) -> Self {
        Self {
            id: ep.id.clone(),
            include_stale: ep.include_stale,
            event_types: ep.event_types.clone(),
            fifo: ep.ordering == "fifo_subject",
        }
    }
}

/// A delivery row to insert: pending, no attempt yet; leased to this process when handed off.
pub struct NewDelivery {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
    pub subject: String,
    /// A leased delivery is next due when its lease runs out: until then the claim's scan of
    /// due deliveries never passes over it.
    pub next_attempt_at: DateTime<Utc>,
    pub leased_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Where a batch's new events go, the same on every backend.
pub struct Fanout {
    pub rows: Vec<NewDelivery>,
    /// Per record, in order; `None` for a retry of an event already stored (the caller looks
    /// up the event stored the first time).
    pub outcomes: Vec<Option<Outcome>>,
    pub handed: Vec<Handed>,
    pub queued: bool,
}

/// One delivery per inserted event and matching endpoint, each leased to this process's
/// workers when they have a free slot now (`Handoff::reserve`), else left in the queue.
pub fn fan_out(
    records: &[&Record],
    inserted: &HashSet<String>,
    stale: &HashSet<String>,
    targets: &HashMap<TenantId, Vec<Target>>,
    handoff: &Handoff,
) -> Fanout {
    let now = Utc::now();
    let leased_until = handoff.lease_until(now);
    let mut fanout = Fanout {
        rows: Vec::new(),
        outcomes: Vec::with_capacity(records.len()),
        handed: Vec::new(),
        queued: false,
    };
    for r in records {
        if !inserted.contains(r.id.as_str()) {
            fanout.outcomes.push(None);
            continue;
        }
        let n = &r.normalized;
        let is_stale = stale.contains(r.id.as_str());
        let before = fanout.rows.len();
        let mut body: Option<Arc<Payload>> = None;
        let matching = targets.get(&r.tenant_id).into_iter().flatten().filter(|e| {
            (!is_stale || e.include_stale) && filter_matches(&e.event_types, n.event_type)
        });
        for e in matching {
            let id = DeliveryId::generate();
            let lease = handoff.reserve(e.fifo).map(|slots| {
                let payload = body
                    .get_or_insert_with(|| Arc::new(payload_of(r, is_stale)))
                    .clone();
                fanout.handed.push(slots.with(Claimed {
                    id: id.clone(),
                    event_id: r.id.clone(),
                    endpoint_id: e.id.clone(),
                    attempts: 0,
                    payload: Some(payload),
                }));
            });
            fanout.queued |= lease.is_none();
            fanout.rows.push(NewDelivery {
                id,
                tenant_id: r.tenant_id.clone(),
                event_id: r.id.clone(),
                endpoint_id: e.id.clone(),
                subject: n.subject.clone(),
                next_attempt_at: lease.map_or(now, |()| leased_until),
                leased_until: lease.map(|()| leased_until),
                created_at: now,
            });
        }
        fanout.outcomes.push(Some(Outcome {
            event_id: r.id.clone(),
            duplicate: false,
            stale: is_stale,
            deliveries: fanout.rows.len() - before,
        }));
    }
    fanout
}

/// What a handed-off delivery sends: the CloudEvent with the provider's body (marked when stale).
fn payload_of(r: &Record, stale: bool) -> Payload {
    Payload {
        body: crate::delivery::payload(&r.cloud_event, &r.raw_body, stale),
        received_at: r.received_at,
    }
}

/// Rows per multi-row statement: well under both backends' limits on bound parameters.
const CHUNK: usize = 64;

fn query_error(e: sea_orm::sea_query::error::Error) -> DbErr {
    DbErr::Custom(format!("building a statement: {e}"))
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
                    json(&r.cloud_event),
                    Expr::value(r.raw_body.clone()),
                    json(&r.raw_headers),
                    json(&r.verification),
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
    let existing: Option<(EventId, bool)> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .column(event::Column::Stale)
        .filter(event::Column::TenantId.eq(r.tenant_id.clone()))
        .filter(event::Column::Provider.eq(r.provider.as_str()))
        .filter(event::Column::ProviderEventId.eq(r.normalized.provider_event_id.clone()))
        .into_tuple()
        .one(txn)
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

pub type HeadKey = (String, &'static str, String);

pub fn head_key(r: &Record) -> Option<HeadKey> {
    let key = r.normalized.staleness_key.as_ref()?;
    Some((r.tenant_id.to_string(), r.provider.as_str(), key.clone()))
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
            let mut any = Condition::any();
            for (tenant, provider, subject) in chunk {
                any = any.add(
                    Condition::all()
                        .add(subject_head::Column::TenantId.eq(tenant.clone()))
                        .add(subject_head::Column::Provider.eq(*provider))
                        .add(subject_head::Column::Subject.eq(subject.clone())),
                );
            }
            subject_head::Entity::find().filter(any).all(txn).await?
        };
        for h in found {
            if let Ok(provider) = Provider::parse(&h.provider) {
                heads.insert(
                    (h.tenant_id, provider.as_str(), h.subject),
                    (h.order_key, h.event_id),
                );
            }
        }
    }
    Ok(heads)
}

/// Which events are stale and where the heads move.
pub struct Judged {
    pub stale: HashSet<String>,
    pub moved: HashMap<HeadKey, (String, String)>,
}

/// Judges the events for which `stored` holds in batch order, exactly as if they had been
/// written one by one: an event older than its subject's head is stale; any other moves the head.
pub fn judge(
    records: &[&Record],
    heads: &HashMap<HeadKey, (String, String)>,
    stored: impl Fn(&Record) -> bool,
) -> Judged {
    let mut judged = Judged {
        stale: HashSet::new(),
        moved: HashMap::new(),
    };
    for r in records.iter().filter(|r| stored(r)) {
        let Some(key) = head_key(r) else { continue };
        let order_key = &r.normalized.order_key;
        let head = judged
            .moved
            .get(&key)
            .or_else(|| heads.get(&key))
            .map_or("", |(k, _)| k.as_str());
        if order_key.as_str() < head {
            judged.stale.insert(r.id.to_string());
        } else {
            judged
                .moved
                .insert(key, (order_key.clone(), r.id.to_string()));
        }
    }
    judged
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

/// An endpoint's filters: exact types, or prefixes ending in `*`; none means every type.
pub fn filter_matches(filters: &Value, event_type: &str) -> bool {
    let Some(list) = filters.as_array().filter(|l| !l.is_empty()) else {
        return true;
    };
    list.iter()
        .filter_map(Value::as_str)
        .any(|f| match f.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => f == event_type,
        })
}

#[cfg(test)]
mod tests {
    use super::filter_matches;
    use serde_json::json;

    #[test]
    fn endpoint_filters_match_exact_types_and_prefixes() {
        assert!(filter_matches(&json!([]), "lab.order.updated"));
        assert!(filter_matches(&json!(["lab.*"]), "lab.order.updated"));
        assert!(filter_matches(
            &json!(["transport.request.assigned"]),
            "transport.request.assigned"
        ));
        assert!(!filter_matches(
            &json!(["transport.*"]),
            "lab.order.updated"
        ));
        assert!(!filter_matches(
            &json!(["lab.order.created"]),
            "lab.order.updated"
        ));
    }
}
