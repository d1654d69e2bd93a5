//! The outbox's planning, the same for every backend and free of the database: what a batch
//! of webhooks is ([`Record`]), which of its events are stale and where their subjects' heads
//! move ([`judge`]), which endpoints each new event goes to and which deliveries are handed to
//! this process's workers ([`fan_out`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::delivery::{Claimed, Handed, Payload};
use crate::domain::{DataKeyId, DeliveryId, EndpointId, EndpointKind, EventId, Ordering, TenantId};
use crate::handoff::Handoff;
use crate::normalize::Normalized;
use crate::providers::Provider;
use crate::store::endpoint;

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
    /// The CloudEvent, headers and body sealed under the tenant's data key: what is stored.
    /// The plain fields above serve the hand-off only.
    pub sealed: Sealed,
}

/// A payload sealed by [`crate::crypto::payload::seal`] and the key that sealed it.
pub struct Sealed {
    pub key_id: DataKeyId,
    pub blob: Vec<u8>,
}

/// The error a cycle fails with when a record's data key was destroyed after the record was
/// sealed (by another replica, or through the CLI): storing it would keep a payload nobody can
/// read. The cycle's records are then written one by one, and the ingest seals that record again
/// under the tenant's new key.
pub const KEY_DESTROYED: &str = "the data key sealing this event was destroyed";

pub fn is_key_destroyed(e: &sea_orm::DbErr) -> bool {
    matches!(e, sea_orm::DbErr::Custom(m) if m == KEY_DESTROYED)
}

/// The data keys a batch was sealed with, sorted (concurrent writers lock them in one order).
pub fn key_ids(records: &[&Record]) -> Vec<DataKeyId> {
    let mut ids: Vec<DataKeyId> = records.iter().map(|r| r.sealed.key_id.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Refuses a batch sealed with a key that is not among `live`.
pub fn check_keys(needed: &[DataKeyId], live: &HashSet<DataKeyId>) -> Result<(), sea_orm::DbErr> {
    if needed.iter().all(|k| live.contains(k)) {
        Ok(())
    } else {
        Err(sea_orm::DbErr::Custom(KEY_DESTROYED.into()))
    }
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

/// An endpoint as the writer sees it: what decides whether an event goes to it, and how.
pub struct Target {
    pub id: EndpointId,
    pub include_stale: bool,
    pub event_types: Value,
    /// FIFO endpoints' deliveries always go through the queue, which orders them per subject.
    pub fifo: bool,
    /// Never handed off to a worker: a pull endpoint (read through the API) or one waiting for
    /// its handshake (the queue holds its deliveries until then).
    pub held: bool,
    /// A pull endpoint: no worker needs to look at the queue for it.
    pub pull: bool,
}

impl From<&endpoint::Model> for Target {
    fn from(ep: &endpoint::Model) -> Self {
        Self {
            id: ep.id.clone(),
            include_stale: ep.include_stale,
            event_types: ep.event_types.clone(),
            fifo: ep.ordering == Ordering::FifoSubject,
            held: ep.kind == EndpointKind::Pull || ep.awaiting_handshake(),
            pull: ep.kind == EndpointKind::Pull,
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
    /// Its number in the endpoint's sequence ([`number`]).
    pub seq: i64,
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
            let lease = handoff.reserve(e.fifo || e.held).map(|slots| {
                let payload = body
                    .get_or_insert_with(|| Arc::new(payload_of(r, is_stale)))
                    .clone();
                fanout.handed.push(slots.with(Claimed {
                    id: id.clone(),
                    event_id: r.id.clone(),
                    endpoint_id: e.id.clone(),
                    attempts: 0,
                    seq: None,
                    payload: Some(payload),
                }));
            });
            fanout.queued |= lease.is_none() && !e.pull;
            fanout.rows.push(NewDelivery {
                id,
                tenant_id: r.tenant_id.clone(),
                event_id: r.id.clone(),
                endpoint_id: e.id.clone(),
                subject: n.subject.clone(),
                next_attempt_at: lease.map_or(now, |()| leased_until),
                leased_until: lease.map(|()| leased_until),
                created_at: now,
                seq: 0,
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

/// How many numbers each endpoint's sequence gives this batch, in endpoint order: the order in
/// which concurrent writers lock the sequences, so that they never wait on each other in a cycle.
pub fn sequence_counts(rows: &[NewDelivery]) -> Vec<(EndpointId, i64)> {
    let mut counts: std::collections::BTreeMap<&EndpointId, i64> = Default::default();
    for d in rows {
        *counts.entry(&d.endpoint_id).or_default() += 1;
    }
    counts.into_iter().map(|(id, n)| (id.clone(), n)).collect()
}

/// Numbers the batch's deliveries: each endpoint's from `lasts` (its sequence's last number
/// after this batch's reservation) down, so the batch holds exactly the numbers it reserved, in
/// the order the events came. Handed-off deliveries carry their number to the worker.
pub fn number(fanout: &mut Fanout, lasts: &HashMap<EndpointId, i64>) -> Result<(), sea_orm::DbErr> {
    let counts: HashMap<EndpointId, i64> = sequence_counts(&fanout.rows).into_iter().collect();
    let mut next: HashMap<&EndpointId, i64> = HashMap::with_capacity(counts.len());
    for (id, n) in &counts {
        let last = lasts.get(id).copied().ok_or_else(|| {
            sea_orm::DbErr::Custom(format!("no sequence was reserved for endpoint {id}"))
        })?;
        next.insert(id, last - n + 1);
    }
    let mut numbers: HashMap<&DeliveryId, i64> = HashMap::with_capacity(fanout.handed.len());
    for d in &mut fanout.rows {
        if let Some(n) = next.get_mut(&d.endpoint_id) {
            d.seq = *n;
            *n += 1;
        }
    }
    for d in &fanout.rows {
        numbers.insert(&d.id, d.seq);
    }
    for h in &mut fanout.handed {
        h.claimed.seq = numbers.get(&h.claimed.id).copied();
    }
    Ok(())
}

/// What a handed-off delivery sends: the CloudEvent with the provider's body (marked when stale).
fn payload_of(r: &Record, stale: bool) -> Payload {
    Payload::new(
        crate::delivery::payload(&r.cloud_event, &r.raw_body, stale),
        r.received_at,
    )
}

pub type HeadKey = (String, &'static str, String);

pub fn head_key(r: &Record) -> Option<HeadKey> {
    let key = r.normalized.staleness_key.as_ref()?;
    Some((r.tenant_id.to_string(), r.provider.as_str(), key.clone()))
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
mod tests;
