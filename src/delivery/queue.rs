//! The queue in the database: every statement the workers run against `deliveries`. Claims take
//! leases (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several processes share the queue); a
//! lease given back without an attempt moves the delivery's due time; the LISTEN that wakes
//! this process when another one queued work. Outcomes are written by the outbox.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QuerySelect, Statement,
};
use tokio_util::sync::CancellationToken;

use crate::crypto::payload as sealed;
use crate::crypto::Cipher;
use crate::domain::{DataKeyId, DeliveryId, DeliveryStatus, EndpointId, EventId, PayloadMode};
use crate::store::{data_key, delivery, WriteGate};

/// PostgreSQL's NOTIFY channel: a commit that left deliveries in the queue wakes every replica.
pub const NOTIFY_CHANNEL: &str = "gateway_deliveries";

/// A leased delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
    pub attempts: i32,
    /// Its number in the endpoint's sequence, sent in the body (`endpointseq`) and a header.
    pub seq: Option<i64>,
    /// The body to send, loaded once per event for the whole claimed batch; `None` when the
    /// event's payload can no longer be read (its data key was destroyed).
    pub payload: Option<Arc<Payload>>,
}

/// What a delivery sends: the CloudEvent as bytes, shared by the deliveries of one event.
#[derive(Debug)]
pub struct Payload {
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
    /// The minimal body, made once per event when its first `minimal` endpoint needs it.
    minimal: OnceLock<Vec<u8>>,
}

impl Payload {
    pub fn new(body: Vec<u8>, received_at: DateTime<Utc>) -> Self {
        Self {
            body,
            received_at,
            minimal: OnceLock::new(),
        }
    }

    /// What an endpoint in `mode` is sent. `api_url` is the gateway's public URL, which the
    /// minimal body's `dataref` points into.
    pub fn body_for(&self, mode: PayloadMode, api_url: &str) -> &[u8] {
        match mode {
            PayloadMode::Full => &self.body,
            PayloadMode::Minimal => self
                .minimal
                .get_or_init(|| minimal_body(&self.body, api_url)),
        }
    }
}

/// The minimal form of a full body (`crate::normalize::minimal`), with `dataref` (a CloudEvents
/// extension): the API URL of the full event, read with a tenant-scoped token.
pub fn minimal_body(full: &[u8], api_url: &str) -> Vec<u8> {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(full) else {
        // Never the case for a body the gateway made; sending the full one is not an option.
        return b"{}".to_vec();
    };
    let mut minimal = crate::normalize::minimal::minimal(&event);
    let ids = (
        event.get("tenantid").and_then(|v| v.as_str()),
        event.get("id").and_then(|v| v.as_str()),
    );
    if let (Some(map), (Some(tenant), Some(id))) = (minimal.as_object_mut(), ids) {
        map.insert(
            "dataref".into(),
            format!(
                "{}/api/v1/tenants/{tenant}/events/{id}",
                api_url.trim_end_matches('/')
            )
            .into(),
        );
    }
    serde_json::to_vec(&minimal).unwrap_or_else(|_| b"{}".to_vec())
}

/// The body sent: the stored CloudEvent completed with the provider's body, with the `stale`
/// extension when it applies.
pub fn payload(stored: &str, raw_body: &str, stale: bool) -> Vec<u8> {
    let cloud_event = crate::normalize::with_provider_data(stored, raw_body);
    match cloud_event.strip_prefix('{') {
        // The CloudEvent is never empty (`specversion` comes first), so a comma follows.
        Some(rest) if stale => format!("{{\"stale\":true,{rest}").into_bytes(),
        _ => cloud_event.into_bytes(),
    }
}

/// A name for this process's workers, stored with the leases they take.
pub fn new_worker_id() -> String {
    format!("wrk_{}", uuid::Uuid::now_v7().simple())
}

pub struct Queue {
    db: DatabaseConnection,
    cipher: Arc<Cipher>,
    gate: WriteGate,
    worker_id: String,
    lease: chrono::Duration,
}

impl Queue {
    pub fn new(
        db: DatabaseConnection,
        cipher: Arc<Cipher>,
        gate: WriteGate,
        worker_id: String,
        lease: chrono::Duration,
    ) -> Self {
        Self {
            db,
            cipher,
            gate,
            worker_id,
            lease,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Leases up to `limit` due deliveries of enabled push endpoints of enabled tenants (a
    /// disabled one's deliveries are kept and wait, as do those of an endpoint waiting for its
    /// handshake). A FIFO endpoint's delivery is due only when no earlier delivery of the same
    /// subject is still pending. `busy` endpoints (every slot of theirs here taken) are passed
    /// over: one endpoint's backlog never fills the batch ahead of other tenants' deliveries.
    pub async fn claim(&self, limit: u64, busy: &[EndpointId]) -> Result<Vec<Claimed>, DbErr> {
        let backend = self.db.get_database_backend();
        let now = Utc::now();
        let lock = if backend == DatabaseBackend::Postgres {
            "FOR UPDATE OF d SKIP LOCKED"
        } else {
            ""
        };
        let [p1, p2, p3, p4] = [1, 2, 3, 4].map(|n| placeholder(backend, n));
        let skip = if busy.is_empty() {
            String::new()
        } else {
            let marks: Vec<String> = (5..5 + busy.len())
                .map(|n| placeholder(backend, n))
                .collect();
            format!("AND d.endpoint_id NOT IN ({}) ", marks.join(", "))
        };
        // A claimed delivery is next due when its lease runs out, so later claims' scans of due
        // deliveries stop before the ones in flight.
        let sql = format!(
            "UPDATE deliveries SET leased_until = {p1}, leased_by = {p2}, next_attempt_at = {p1} \
             WHERE id IN ( \
               SELECT d.id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id \
               WHERE d.status = 'pending' AND d.next_attempt_at <= {p3} \
                 AND (d.leased_until IS NULL OR d.leased_until < {p3}) AND e.enabled \
                 AND e.kind = 'push' AND NOT (e.handshake AND e.verified_at IS NULL) {skip}\
                 AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = e.tenant_id AND t.disabled) \
                 AND (e.ordering <> 'fifo_subject' OR NOT EXISTS ( \
                   SELECT 1 FROM deliveries p WHERE p.endpoint_id = d.endpoint_id \
                   AND p.subject = d.subject AND p.status = 'pending' AND p.id < d.id)) \
               ORDER BY d.next_attempt_at LIMIT {p4} {lock}) \
             RETURNING id, event_id, endpoint_id, attempts, seq",
        );
        let leased_until = now + self.lease;
        let mut values: Vec<sea_orm::Value> = vec![
            leased_until.into(),
            self.worker_id.clone().into(),
            now.into(),
            (limit as i64).into(),
        ];
        values.extend(busy.iter().map(|id| sea_orm::Value::from(id.to_string())));
        let turn = self.gate.enter().await;
        let rows = turn
            .db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        drop(turn);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let event_id: String = row.try_get("", "event_id")?;
            let endpoint_id: String = row.try_get("", "endpoint_id")?;
            let attempts: i32 = row.try_get("", "attempts")?;
            let seq: Option<i64> = row.try_get("", "seq")?;
            if let (Ok(id), Ok(event_id), Ok(endpoint_id)) = (
                DeliveryId::parse(&id),
                EventId::parse(&event_id),
                EndpointId::parse(&endpoint_id),
            ) {
                out.push(Claimed {
                    id,
                    event_id,
                    endpoint_id,
                    attempts,
                    seq,
                    payload: None,
                });
            }
        }
        self.load_payloads(&mut out).await?;
        Ok(out)
    }

    /// One query for the events of a claimed batch (fan-out shares them), not one per delivery,
    /// and one for their data keys: a key destroyed by any replica is never used again. Only
    /// what the payload needs: the sealed CloudEvent and the provider's body that completes it
    /// (or, for an event stored before payloads were sealed, the plain columns).
    pub async fn load_payloads(&self, claimed: &mut [Claimed]) -> Result<(), DbErr> {
        let mut ids: Vec<EventId> = claimed.iter().map(|c| c.event_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let mut rows = Vec::with_capacity(ids.len());
        let backend = self.db.get_database_backend();
        // The CloudEvent as stored text: completed and sent, not parsed and printed again.
        let body = match backend {
            DatabaseBackend::Postgres => "normalized::text",
            _ => "normalized",
        };
        for chunk in crate::store::pow2_chunks(&ids, 256) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| placeholder(backend, i)).collect();
            let sql = format!(
                "SELECT id, {body} AS body, raw_body, stale, received_at, data_key_id, \
                 sealed_payload FROM events WHERE id IN ({}) AND purged_at IS NULL",
                marks.join(", ")
            );
            let values: Vec<sea_orm::Value> =
                chunk.iter().map(|id| id.to_string().into()).collect();
            rows.extend(
                self.db
                    .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
                    .await?,
            );
        }
        let mut key_ids: Vec<DataKeyId> = Vec::new();
        for row in &rows {
            let key: Option<String> = row.try_get("", "data_key_id")?;
            if let Some(key) = key.and_then(|k| DataKeyId::parse(&k).ok()) {
                key_ids.push(key);
            }
        }
        key_ids.sort();
        key_ids.dedup();
        let keys = data_key::open_many(&self.db, &self.cipher, &key_ids).await?;
        let mut loaded: HashMap<String, Arc<Payload>> = HashMap::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let stale: bool = row.try_get("", "stale")?;
            let received_at: DateTime<Utc> = row.try_get("", "received_at")?;
            let key: Option<String> = row.try_get("", "data_key_id")?;
            let body = match key {
                None => {
                    let stored: String = row.try_get("", "body")?;
                    let raw_body: String = row.try_get("", "raw_body")?;
                    payload(&stored, &raw_body, stale)
                }
                Some(key) => {
                    let blob: Option<Vec<u8>> = row.try_get("", "sealed_payload")?;
                    let opened = DataKeyId::parse(&key)
                        .ok()
                        .and_then(|k| keys.get(&k))
                        .zip(blob)
                        .and_then(|(k, blob)| sealed::open(k, &id, &blob).ok());
                    // Shredded: the delivery cannot be made (see `Claimed::payload`).
                    let Some(p) = opened else { continue };
                    payload(&p.cloud_event, &p.raw_body, stale)
                }
            };
            loaded.insert(id, Arc::new(Payload::new(body, received_at)));
        }
        for c in claimed {
            c.payload = loaded.get(c.event_id.as_str()).cloned();
        }
        Ok(())
    }

    /// Ends a delivery that can no longer be made (its event's payload was shredded): dead,
    /// with the reason, and no attempt.
    pub async fn give_up(&self, id: &DeliveryId, reason: &str) -> Result<(), DbErr> {
        self.end(id, DeliveryStatus::Dead, reason).await
    }

    /// Ends a delivery without an attempt, in `status`, with the reason.
    pub async fn end(
        &self,
        id: &DeliveryId,
        status: DeliveryStatus,
        reason: &str,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        let turn = self.gate.enter().await;
        delivery::end_pending_as(status, reason, now)
            .col_expr(
                delivery::Column::LeasedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                delivery::Column::LeasedBy,
                Expr::value(Option::<String>::None),
            )
            .filter(delivery::Column::Id.eq(id.clone()))
            .exec(turn.db)
            .await?;
        Ok(())
    }

    /// Gives a lease back without an attempt: the delivery is due again at `at`.
    pub async fn give_back(&self, id: &DeliveryId, at: DateTime<Utc>) -> Result<(), DbErr> {
        let turn = self.gate.enter().await;
        delivery::Entity::update_many()
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(at))
            .col_expr(
                delivery::Column::LeasedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                delivery::Column::LeasedBy,
                Expr::value(Option::<String>::None),
            )
            .filter(delivery::Column::Id.eq(id.clone()))
            .filter(delivery::Column::LeasedBy.eq(self.worker_id.clone()))
            .exec(turn.db)
            .await?;
        Ok(())
    }
}

pub use crate::store::placeholder;

/// How many deliveries are pending, and since when the oldest.
pub async fn stats(db: &impl ConnectionTrait) -> Result<(i64, Option<DateTime<Utc>>), DbErr> {
    let row: Option<(i64, Option<DateTime<Utc>>)> = delivery::Entity::find()
        .select_only()
        .column_as(delivery::Column::Id.count(), "n")
        .column_as(delivery::Column::CreatedAt.min(), "oldest")
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending))
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.unwrap_or((0, None)))
}

/// PostgreSQL LISTEN: another replica's commit calls `wake` at once. Reconnects on failure.
pub async fn listen(url: String, wake: impl Fn(), stop: CancellationToken) {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        match PgListener::connect(&url).await {
            Ok(mut l) => {
                if l.listen(NOTIFY_CHANNEL).await.is_ok() {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            n = l.recv() => match n {
                                Ok(_) => wake(),
                                Err(e) => {
                                    tracing::warn!(error = %e, "LISTEN connection lost; polling until it is back");
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "LISTEN connection failed; polling meanwhile"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
