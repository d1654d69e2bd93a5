//! Where an event leaves: workers claim due deliveries from the outbox (leases; `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, so several processes share the queue), send them signed (Standard
//! Webhooks), log every attempt, and schedule retries. Nothing is removed from the queue until it
//! succeeded or died, so a crashed worker's deliveries are picked up when their lease expires.

pub mod handoff;
pub mod send;
pub mod ssrf;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Statement,
};
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::DeliverySettings;
use crate::crypto::Cipher;
use crate::domain::{AttemptId, DeliveryId, EndpointId, EventId, SigningSecret};
use crate::metrics::Metrics;
use crate::store::{delivery, delivery_attempt, endpoint, endpoint_secret, WriteGate};
use handoff::{Capacity, Handed};
use send::{Message, Outcome, Sender};

pub const NOTIFY_CHANNEL: &str = "gateway_deliveries";

/// A leased delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
    pub attempts: i32,
    /// The body to send, loaded once per event for the whole claimed batch.
    pub payload: Option<Arc<Payload>>,
}

/// What a delivery sends: the CloudEvent as bytes, shared by the deliveries of one event.
#[derive(Debug)]
pub struct Payload {
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
}

pub struct Dispatcher {
    db: DatabaseConnection,
    settings: DeliverySettings,
    cipher: Arc<Cipher>,
    metrics: Arc<Metrics>,
    sender: Sender,
    worker_id: String,
    notify: Arc<Notify>,
    gate: WriteGate,
    writer: crate::writer::Writer,
    capacity: Arc<Capacity>,
    handed: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Handed>>>,
    endpoint_limits: Mutex<HashMap<EndpointId, (u32, Arc<DefaultDirectRateLimiter>)>>,
    endpoint_cache: Mutex<HashMap<EndpointId, (std::time::Instant, Arc<Snapshot>)>>,
}

const ENDPOINT_CACHE_TTL: Duration = Duration::from_secs(1);

/// How long a delivery waits in memory for a slot of its endpoint before going back to the queue.
const ENDPOINT_SLOT_WAIT: Duration = Duration::from_millis(250);

/// An endpoint as the workers send to it: its row, its active secrets' keys, its headers.
pub struct Snapshot {
    pub ep: endpoint::Model,
    pub keys: Vec<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

/// A name for this process's workers, stored with the leases they take.
pub fn new_worker_id() -> String {
    format!("wrk_{}", uuid::Uuid::now_v7().simple())
}

/// How long a lease lasts: longer than any attempt, so a live worker never loses one.
pub fn lease_for(settings: &DeliverySettings) -> chrono::Duration {
    chrono::Duration::from_std(settings.timeout + Duration::from_secs(30))
        .unwrap_or(chrono::Duration::minutes(1))
}

/// What the dispatcher is built from besides the database and settings.
pub struct Parts {
    pub cipher: Arc<Cipher>,
    pub metrics: Arc<Metrics>,
    pub notify: Arc<Notify>,
    pub gate: WriteGate,
    pub writer: crate::writer::Writer,
    pub capacity: Arc<Capacity>,
    pub worker_id: String,
    pub handed: Option<tokio::sync::mpsc::UnboundedReceiver<Handed>>,
}

impl Dispatcher {
    pub fn new(db: DatabaseConnection, settings: DeliverySettings, parts: Parts) -> Arc<Self> {
        let Parts {
            cipher,
            metrics,
            notify,
            gate,
            writer,
            capacity,
            worker_id,
            handed,
        } = parts;
        let sender = Sender::new(
            settings.timeout,
            settings.concurrency,
            ssrf::Guard {
                enabled: settings.ssrf_guard,
                allow: settings.ssrf_allowlist.clone(),
            },
        );
        Arc::new(Self {
            writer,
            capacity,
            handed: Mutex::new(handed),
            db,
            settings,
            cipher,
            metrics,
            sender,
            worker_id,
            gate,
            notify,
            endpoint_limits: Mutex::new(HashMap::new()),
            endpoint_cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Starts the worker loop (and, on PostgreSQL, the LISTEN that wakes it for other
    /// processes' events) when delivery is enabled for this process.
    pub fn spawn(self: &Arc<Self>, listen_url: Option<String>, shutdown: CancellationToken) {
        if !self.settings.enabled {
            return;
        }
        if let Some(url) = listen_url {
            let me = self.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move { listen(url, me, stop).await });
        }
        let handed = self.handed.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut handed) = handed {
            // Weak: the writer holds the sending side, and the dispatcher holds the writer.
            let weak = Arc::downgrade(self);
            tokio::spawn(async move {
                while let Some(h) = handed.recv().await {
                    let Some(me) = weak.upgrade() else { break };
                    tokio::spawn(async move {
                        let notify = me.notify.clone();
                        let Handed { claimed, slot } = h;
                        if let Err(e) = me.try_process(&claimed).await {
                            tracing::error!(error = %e, delivery = %claimed.id, "delivery processing failed; retried after the lease expires");
                        }
                        drop(slot);
                        if me.capacity.has_backlog() {
                            notify.notify_one();
                        }
                    });
                }
            });
        }
        let me = self.clone();
        tokio::spawn(async move { me.run(shutdown).await });
    }

    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            loop {
                let free = self.capacity.slots.available_permits();
                if free == 0 || shutdown.is_cancelled() {
                    break;
                }
                let limit = free.min(200);
                self.capacity.clear_backlog();
                let claimed = match self.claim(limit as u64).await {
                    Ok(c) if c.len() == limit => {
                        self.capacity.mark_backlog();
                        c
                    }
                    Ok(c) => c,
                    Err(e) => {
                        self.capacity.mark_backlog();
                        tracing::warn!(error = %e, "claiming deliveries failed");
                        break;
                    }
                };
                if claimed.is_empty() {
                    break;
                }
                for c in claimed {
                    let Ok(permit) = self.capacity.slots.clone().acquire_owned().await else {
                        return;
                    };
                    let me = self.clone();
                    tokio::spawn(async move {
                        let notify = me.notify.clone();
                        let capacity = me.capacity.clone();
                        me.process(c).await;
                        drop(permit);
                        if capacity.has_backlog() {
                            notify.notify_one();
                        }
                    });
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        // Let deliveries in flight finish; what does not finish is re-leased after expiry.
        let _ = tokio::time::timeout(
            self.settings.timeout + Duration::from_secs(1),
            self.capacity
                .slots
                .acquire_many(self.settings.concurrency as u32),
        )
        .await;
    }

    /// Processes every delivery that is due now, until none is left; for tests and tools that
    /// want the queue empty without waiting on timers. Returns how many were attempted.
    pub async fn drain(self: &Arc<Self>) -> usize {
        let mut total = 0;
        loop {
            let claimed = match self.claim(200).await {
                Ok(c) if !c.is_empty() => c,
                _ => return total,
            };
            total += claimed.len();
            futures_util::future::join_all(claimed.into_iter().map(|c| self.clone().process(c)))
                .await;
        }
    }

    /// Something may be due in the queue: the workers look.
    pub fn poke(&self) {
        self.capacity.mark_backlog();
        self.notify.notify_one();
    }

    fn lease(&self) -> chrono::Duration {
        lease_for(&self.settings)
    }

    /// Leases up to `limit` due deliveries of enabled endpoints. A FIFO endpoint's delivery is due
    /// only when no earlier delivery of the same subject is still pending.
    pub async fn claim(&self, limit: u64) -> Result<Vec<Claimed>, DbErr> {
        let backend = self.db.get_database_backend();
        let now = Utc::now();
        let lock = if backend == DatabaseBackend::Postgres {
            "FOR UPDATE OF d SKIP LOCKED"
        } else {
            ""
        };
        let [p1, p2, p3, p4] = [1, 2, 3, 4].map(|n| placeholder(backend, n));
        // A claimed delivery is next due when its lease runs out, so later claims' scans of due
        // deliveries stop before the ones in flight.
        let sql = format!(
            "UPDATE deliveries SET leased_until = {p1}, leased_by = {p2}, next_attempt_at = {p1} \
             WHERE id IN ( \
               SELECT d.id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id \
               WHERE d.status = 'pending' AND d.next_attempt_at <= {p3} \
                 AND (d.leased_until IS NULL OR d.leased_until < {p3}) AND e.enabled \
                 AND (e.ordering <> 'fifo_subject' OR NOT EXISTS ( \
                   SELECT 1 FROM deliveries p WHERE p.endpoint_id = d.endpoint_id \
                   AND p.subject = d.subject AND p.status = 'pending' AND p.id < d.id)) \
               ORDER BY d.next_attempt_at LIMIT {p4} {lock}) \
             RETURNING id, event_id, endpoint_id, attempts",
        );
        let leased_until = now + self.lease();
        let values: Vec<sea_orm::Value> = vec![
            leased_until.into(),
            self.worker_id.clone().into(),
            now.into(),
            (limit as i64).into(),
        ];
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
                    payload: None,
                });
            }
        }
        self.load_payloads(&mut out).await?;
        Ok(out)
    }

    /// One query for the events of a claimed batch (fan-out shares them), not one per delivery.
    /// Only what the payload needs: the stored CloudEvent and the provider's body that completes it.
    async fn load_payloads(&self, claimed: &mut [Claimed]) -> Result<(), DbErr> {
        let mut ids: Vec<EventId> = claimed.iter().map(|c| c.event_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let mut loaded: HashMap<String, Arc<Payload>> = HashMap::with_capacity(ids.len());
        let backend = self.db.get_database_backend();
        // The CloudEvent as stored text: completed and sent, not parsed and printed again.
        let body = match backend {
            DatabaseBackend::Postgres => "normalized::text",
            _ => "normalized",
        };
        for chunk in crate::store::pow2_chunks(&ids, 256) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| placeholder(backend, i)).collect();
            let sql = format!(
                "SELECT id, {body} AS body, raw_body, stale, received_at FROM events WHERE id IN ({})",
                marks.join(", ")
            );
            let values: Vec<sea_orm::Value> =
                chunk.iter().map(|id| id.to_string().into()).collect();
            let rows = self
                .db
                .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
                .await?;
            for row in rows {
                let id: String = row.try_get("", "id")?;
                let stored: String = row.try_get("", "body")?;
                let raw_body: String = row.try_get("", "raw_body")?;
                let stale: bool = row.try_get("", "stale")?;
                let received_at: DateTime<Utc> = row.try_get("", "received_at")?;
                let body = payload(&stored, &raw_body, stale);
                loaded.insert(id, Arc::new(Payload { body, received_at }));
            }
        }
        for c in claimed {
            c.payload = loaded.get(c.event_id.as_str()).cloned();
        }
        Ok(())
    }

    /// `Err(wait)` when the endpoint's rate limit says wait.
    fn endpoint_rate(&self, ep: &endpoint::Model) -> Result<(), Duration> {
        let Some(rate) = ep
            .rate_limit_per_second
            .and_then(|n| u32::try_from(n).ok())
            .and_then(NonZeroU32::new)
        else {
            return Ok(());
        };
        let limiter = {
            let mut map = self
                .endpoint_limits
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let entry = map.entry(ep.id.clone()).or_insert_with(|| {
                (
                    rate.get(),
                    Arc::new(RateLimiter::direct(Quota::per_second(rate))),
                )
            });
            if entry.0 != rate.get() {
                *entry = (
                    rate.get(),
                    Arc::new(RateLimiter::direct(Quota::per_second(rate))),
                );
            }
            entry.1.clone()
        };
        limiter.check().map_err(|not_until| {
            use governor::clock::Clock;
            not_until.wait_time_from(governor::clock::DefaultClock::default().now())
        })
    }

    /// Gives a lease back without an attempt: the delivery waits `delay`, it is never dropped.
    async fn defer(self: &Arc<Self>, c: &Claimed, delay: Duration) {
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        let turn = self.gate.enter().await;
        let result = delivery::Entity::update_many()
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(at))
            .col_expr(
                delivery::Column::LeasedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                delivery::Column::LeasedBy,
                Expr::value(Option::<String>::None),
            )
            .filter(delivery::Column::Id.eq(c.id.clone()))
            .filter(delivery::Column::LeasedBy.eq(self.worker_id.clone()))
            .exec(turn.db)
            .await;
        drop(turn);
        if let Err(e) = result {
            tracing::warn!(error = %e, delivery = %c.id, "deferring a delivery failed; its lease will expire");
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            me.poke();
        });
    }

    async fn process(self: Arc<Self>, c: Claimed) {
        if let Err(e) = self.try_process(&c).await {
            tracing::error!(error = %e, delivery = %c.id, "delivery processing failed; retried after the lease expires");
        }
    }

    /// The endpoint with its decrypted keys, cached for a second: the hot path reads it once per
    /// endpoint, not once per delivery. Admin changes and failure transitions drop the entry.
    pub async fn snapshot(&self, id: &EndpointId) -> Result<Option<Arc<Snapshot>>, DbErr> {
        {
            let cache = self
                .endpoint_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some((at, snap)) = cache.get(id) {
                if at.elapsed() < ENDPOINT_CACHE_TTL {
                    return Ok(Some(snap.clone()));
                }
            }
        }
        let Some(ep) = endpoint::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let mut keys = Vec::new();
        for s in endpoint_secret::active_for_endpoint(&self.db, &ep.id, Utc::now()).await? {
            match self
                .cipher
                .open(&s.secret_ciphertext, &format!("endpoint_secret:{}", s.id))
            {
                Ok(text) => match SigningSecret::parse(text.expose_secret()) {
                    Ok(secret) => keys.push(secret.key_bytes()),
                    Err(_) => {
                        tracing::error!(secret = %s.id, "a stored signing secret is malformed")
                    }
                },
                Err(_) => {
                    tracing::error!(secret = %s.id, "a stored signing secret could not be decrypted")
                }
            }
        }
        let headers = serde_json::from_value::<HashMap<String, String>>(ep.headers.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let snap = Arc::new(Snapshot { ep, keys, headers });
        let mut cache = self
            .endpoint_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(id.clone(), (std::time::Instant::now(), snap.clone()));
        Ok(Some(snap))
    }

    /// Drops cached endpoints, e.g. after an admin change (URL, headers, secrets, enabled).
    pub fn forget_endpoints(&self) {
        self.endpoint_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn forget_endpoint(&self, id: &EndpointId) {
        self.endpoint_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Sends one leased delivery.
    async fn try_process(self: &Arc<Self>, c: &Claimed) -> Result<(), DbErr> {
        let Some(snap) = self.snapshot(&c.endpoint_id).await? else {
            return Ok(());
        };
        let ep = &snap.ep;
        if !ep.enabled {
            // Disabled since the delivery was handed off: it waits in the queue.
            self.defer(c, Duration::ZERO).await;
            return Ok(());
        }
        // A fast endpoint frees a slot within milliseconds: waiting a little here is cheaper
        // than putting the delivery back in the queue. A slow one gets it back after the wait.
        let slot = self.capacity.endpoint_slot(ep);
        let permit = match tokio::time::timeout(ENDPOINT_SLOT_WAIT, slot.acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                self.defer(c, Duration::from_millis(50)).await;
                return Ok(());
            }
        };
        if let Err(wait) = self.endpoint_rate(ep) {
            drop(permit);
            self.defer(c, wait.max(Duration::from_millis(5))).await;
            return Ok(());
        }
        let Some(p) = &c.payload else {
            return Ok(());
        };
        let received_at = p.received_at;
        let outcome = self
            .sender
            .send(&Message {
                url: ep.url.as_str(),
                webhook_id: c.id.as_str(),
                body: &p.body,
                keys: &snap.keys,
                extra_headers: &snap.headers,
            })
            .await;
        drop(permit);
        self.record(c, ep, received_at, &outcome).await
    }

    /// Delay before the next attempt after `attempts` failed ones; `None` when none is left.
    pub fn next_delay(&self, attempts: usize, retry_after: Option<Duration>) -> Option<Duration> {
        let planned = *self.settings.retry_schedule.get(attempts)?;
        if let Some(ra) = retry_after {
            return Some(ra.clamp(Duration::from_secs(1), self.settings.retry_after_max));
        }
        if planned.is_zero() || self.settings.jitter == 0.0 {
            return Some(planned);
        }
        let factor =
            1.0 + rand::thread_rng().gen_range(-self.settings.jitter..=self.settings.jitter);
        Some(planned.mul_f64(factor))
    }

    async fn record(
        &self,
        c: &Claimed,
        ep: &endpoint::Model,
        received_at: DateTime<Utc>,
        o: &Outcome,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        let attempt = c.attempts + 1;
        let gone = o.status == Some(410);
        let (status, next_at, outcome_label) = if o.success() {
            (delivery::STATUS_SUCCEEDED, now, "success")
        } else if gone {
            (delivery::STATUS_DEAD, now, "dead")
        } else {
            match self.next_delay(attempt as usize, o.retry_after) {
                Some(d) => (
                    delivery::STATUS_PENDING,
                    now + chrono::Duration::from_std(d).unwrap_or_default(),
                    "failure",
                ),
                None => (delivery::STATUS_DEAD, now, "dead"),
            }
        };
        let endpoint_change = if o.success() {
            ep.failing_since
                .is_some()
                .then_some(EndpointChange::Healthy)
        } else {
            let since = ep.failing_since.unwrap_or(now);
            let too_long = now - since
                >= chrono::Duration::from_std(self.settings.disable_after)
                    .unwrap_or(chrono::Duration::days(5));
            let reason = if gone {
                Some("the endpoint answered 410 Gone".to_owned())
            } else if too_long {
                Some(format!(
                    "every delivery failed since {} (more than the allowed {})",
                    crate::normalize::rfc3339(since),
                    humantime::format_duration(self.settings.disable_after)
                ))
            } else {
                None
            };
            if let Some(r) = &reason {
                tracing::warn!(endpoint = %ep.id, reason = r.as_str(), "endpoint disabled");
            }
            Some(EndpointChange::Failing {
                since,
                disable: reason,
            })
        };
        let had_change = endpoint_change.is_some();
        let plan = Plan {
            attempt: delivery_attempt::Model {
                id: AttemptId::generate(),
                delivery_id: c.id.clone(),
                endpoint_id: ep.id.clone(),
                tenant_id: ep.tenant_id.clone(),
                attempt,
                at: now,
                status_code: o.status.map(i32::from),
                duration_ms: o.duration.as_millis().min(i32::MAX as u128) as i32,
                error_class: o.error_class.map(str::to_owned),
                error: o.error.clone(),
                response_snippet: o.snippet.clone(),
                success: o.success(),
            },
            delivery: c.id.clone(),
            endpoint: ep.id.clone(),
            attempts: attempt,
            status,
            next_at,
            status_code: o.status.map(i32::from),
            error: o.error.clone(),
            now,
            endpoint_change,
        };
        self.writer.record(plan).await?;
        if had_change {
            // failing_since or enabled changed: the next delivery must see it.
            self.forget_endpoint(&ep.id);
        }

        self.metrics
            .delivery_attempts
            .get_or_create(&crate::metrics::OutcomeLabel {
                outcome: outcome_label.to_owned(),
            })
            .inc();
        self.metrics
            .delivery_attempt_seconds
            .observe(o.duration.as_secs_f64());
        if o.success() {
            let latency = (now - received_at).to_std().unwrap_or_default();
            self.metrics
                .delivery_latency_seconds
                .observe(latency.as_secs_f64());
        }
        if ep.ordering == "fifo_subject" && status != delivery::STATUS_PENDING {
            // The next event of this subject may go now.
            self.poke();
        }
        Ok(())
    }
}

/// An attempt's outcome, ready to write.
pub struct Plan {
    pub(crate) attempt: delivery_attempt::Model,
    pub(crate) delivery: DeliveryId,
    pub(crate) endpoint: EndpointId,
    pub(crate) attempts: i32,
    pub(crate) status: &'static str,
    pub(crate) next_at: DateTime<Utc>,
    pub(crate) status_code: Option<i32>,
    pub(crate) error: Option<String>,
    pub(crate) now: DateTime<Utc>,
    pub(crate) endpoint_change: Option<EndpointChange>,
}

pub(crate) enum EndpointChange {
    Healthy,
    Failing {
        since: DateTime<Utc>,
        disable: Option<String>,
    },
}

/// Records a batch of attempts and moves their deliveries on, inside the caller's transaction.
pub async fn write_outcomes(
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
                (p.status != delivery::STATUS_PENDING)
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

/// The `n`th (1-based) bound parameter in the backend's spelling.
fn placeholder(backend: DatabaseBackend, n: usize) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
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

/// PostgreSQL LISTEN: another replica's commit wakes this one at once. Reconnects on failure.
async fn listen(url: String, me: Arc<Dispatcher>, stop: CancellationToken) {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        match PgListener::connect(&url).await {
            Ok(mut l) => {
                if l.listen(NOTIFY_CHANNEL).await.is_ok() {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            n = l.recv() => match n {
                                Ok(_) => me.poke(),
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

pub async fn queue_stats(db: &impl ConnectionTrait) -> Result<(i64, Option<DateTime<Utc>>), DbErr> {
    use sea_orm::QuerySelect;
    let row: Option<(i64, Option<DateTime<Utc>>)> = delivery::Entity::find()
        .select_only()
        .column_as(delivery::Column::Id.count(), "n")
        .column_as(delivery::Column::CreatedAt.min(), "oldest")
        .filter(delivery::Column::Status.eq(delivery::STATUS_PENDING))
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.unwrap_or((0, None)))
}
