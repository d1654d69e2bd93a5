//! Group commit: concurrent webhooks are written together, one transaction per batch, so one
//! fsync acknowledges many events. Each event is stored with its raw body and headers, its
//! normalized form, and one delivery row per matching endpoint (the outbox) in the same
//! transaction; the HTTP answer goes out only after the commit.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QuerySelect,
};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::domain::{DeliveryId, EndpointId, EventId, Provider, TenantId};
use crate::normalize::Normalized;
use crate::store::{delivery, endpoint, event, subject_head, WriteGate};

/// One verified, normalized webhook ready to store.
pub struct Record {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub provider: Provider,
    pub normalized: Normalized,
    pub cloud_event: Value,
    pub raw_body: String,
    pub raw_headers: Value,
    pub verification: Value,
    pub received_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub event_id: EventId,
    pub duplicate: bool,
    pub stale: bool,
    pub deliveries: usize,
}

struct Job {
    record: Record,
    reply: oneshot::Sender<Result<Outcome, String>>,
}

#[derive(Clone)]
pub struct IngestWriter {
    tx: mpsc::Sender<Job>,
}

impl IngestWriter {
    /// Starts the writer task; it runs until every handle is dropped, after finishing what it has.
    pub fn start(
        db: DatabaseConnection,
        gate: WriteGate,
        max_batch: usize,
        wake: Arc<Notify>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(16 * max_batch.max(1));
        // SQLite has one writer anyway; PostgreSQL takes several transactions at once, and each
        // writer's round trips to the server overlap with the others'.
        let writers = if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            4
        } else {
            1
        };
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..writers {
            tokio::spawn(run(
                db.clone(),
                gate.clone(),
                rx.clone(),
                max_batch.max(1),
                wake.clone(),
            ));
        }
        Self { tx }
    }

    pub async fn submit(&self, record: Record) -> Result<Outcome, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { record, reply })
            .await
            .map_err(|_| "the ingest writer has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the ingest writer dropped the request".to_owned())?
    }
}

async fn run(
    db: DatabaseConnection,
    gate: WriteGate,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    max_batch: usize,
    wake: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        // One writer collects a batch at a time; the others write theirs meanwhile.
        let received = rx.lock().await.recv_many(&mut batch, max_batch).await;
        if received == 0 {
            break;
        }
        let jobs = std::mem::take(&mut batch);
        let records: Vec<&Record> = jobs.iter().map(|j| &j.record).collect();
        let _turn = gate.enter().await;
        match write_batch(&db, &records).await {
            Ok(outcomes) => {
                if outcomes.iter().any(|o| o.deliveries > 0) {
                    wake.notify_one();
                }
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                // One bad record must not fail its neighbours: retry each on its own.
                tracing::warn!(error = %e, size = jobs.len(), "ingest batch failed; retrying one by one");
                for job in jobs {
                    let result = write_batch(&db, &[&job.record])
                        .await
                        .map(|mut o| o.remove(0))
                        .map_err(|e| {
                            tracing::error!(error = %e, event = %job.record.id, "storing an event failed");
                            "the event could not be stored".to_owned()
                        });
                    if result.as_ref().is_ok_and(|o| o.deliveries > 0) {
                        wake.notify_one();
                    }
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

async fn write_batch(db: &DatabaseConnection, records: &[&Record]) -> Result<Vec<Outcome>, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let mut endpoints: HashMap<TenantId, Vec<endpoint::Model>> = HashMap::new();
    let mut outcomes = Vec::with_capacity(records.len());
    for record in records {
        if !endpoints.contains_key(&record.tenant_id) {
            let list = endpoint::Entity::find()
                .filter(endpoint::Column::TenantId.eq(record.tenant_id.clone()))
                .filter(endpoint::Column::Enabled.eq(true))
                .all(&txn)
                .await?;
            endpoints.insert(record.tenant_id.clone(), list);
        }
        let targets = endpoints
            .get(&record.tenant_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        outcomes.push(write_one(&txn, record, targets).await?);
    }
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres
        && outcomes.iter().any(|o| o.deliveries > 0)
    {
        // Delivered on commit to every replica's LISTEN, so another process's workers start at once.
        txn.execute_unprepared(&format!("NOTIFY {}", crate::delivery::NOTIFY_CHANNEL))
            .await?;
    }
    txn.commit().await?;
    Ok(outcomes)
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

async fn write_one(
    txn: &impl ConnectionTrait,
    r: &Record,
    endpoints: &[endpoint::Model],
) -> Result<Outcome, DbErr> {
    let n = &r.normalized;
    let row = event::ActiveModel {
        id: Set(r.id.clone()),
        tenant_id: Set(r.tenant_id.clone()),
        provider: Set(r.provider.as_str().to_owned()),
        provider_event_id: Set(n.provider_event_id.clone()),
        event_type: Set(n.event_type.to_owned()),
        subject: Set(n.subject.clone()),
        status: Set(n.data.status.as_str().to_owned()),
        order_key: Set(n.order_key.clone()),
        stale: Set(false),
        occurred_at: Set(n.occurred_at),
        received_at: Set(r.received_at),
        normalized: Set(r.cloud_event.clone()),
        raw_body: Set(r.raw_body.clone()),
        raw_headers: Set(r.raw_headers.clone()),
        verification: Set(r.verification.clone()),
    };
    let inserted = event::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                event::Column::TenantId,
                event::Column::Provider,
                event::Column::ProviderEventId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    if inserted == 0 {
        let existing: Option<(EventId, bool)> = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .column(event::Column::Stale)
            .filter(event::Column::TenantId.eq(r.tenant_id.clone()))
            .filter(event::Column::Provider.eq(r.provider.as_str()))
            .filter(event::Column::ProviderEventId.eq(n.provider_event_id.clone()))
            .into_tuple()
            .one(txn)
            .await?;
        let (event_id, stale) =
            existing.ok_or_else(|| DbErr::RecordNotFound("duplicate event".into()))?;
        return Ok(Outcome {
            event_id,
            duplicate: true,
            stale,
            deliveries: 0,
        });
    }

    let mut stale = false;
    if let Some(key) = &n.staleness_key {
        let head = subject_head::ActiveModel {
            tenant_id: Set(r.tenant_id.to_string()),
            provider: Set(r.provider.as_str().to_owned()),
            subject: Set(key.clone()),
            order_key: Set(n.order_key.clone()),
            event_id: Set(r.id.to_string()),
        };
        // Moves the head forward only; when it does not move, this event is older than one seen.
        let moved = subject_head::Entity::insert(head)
            .on_conflict(
                OnConflict::columns([
                    subject_head::Column::TenantId,
                    subject_head::Column::Provider,
                    subject_head::Column::Subject,
                ])
                .update_columns([
                    subject_head::Column::OrderKey,
                    subject_head::Column::EventId,
                ])
                .action_and_where(
                    Expr::col((subject_head::Entity, subject_head::Column::OrderKey)).lte(
                        Expr::col((Alias::new("excluded"), subject_head::Column::OrderKey)),
                    ),
                )
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
        if moved == 0 {
            stale = true;
            event::Entity::update_many()
                .col_expr(event::Column::Stale, Expr::value(true))
                .filter(event::Column::Id.eq(r.id.clone()))
                .exec(txn)
                .await?;
        }
    }

    let now = Utc::now();
    let rows: Vec<delivery::ActiveModel> = endpoints
        .iter()
        .filter(|e| (!stale || e.include_stale) && filter_matches(&e.event_types, n.event_type))
        .map(|e| delivery::ActiveModel {
            id: Set(DeliveryId::generate()),
            tenant_id: Set(r.tenant_id.clone()),
            event_id: Set(r.id.clone()),
            endpoint_id: Set::<EndpointId>(e.id.clone()),
            subject: Set(n.subject.clone()),
            status: Set(delivery::STATUS_PENDING.to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            leased_until: Set(None),
            leased_by: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            last_status_code: Set(None),
            last_error: Set(None),
            completed_at: Set(None),
        })
        .collect();
    let deliveries = rows.len();
    if !rows.is_empty() {
        delivery::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(Outcome {
        event_id: r.id.clone(),
        duplicate: false,
        stale,
        deliveries,
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
