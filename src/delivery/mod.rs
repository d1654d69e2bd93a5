//! Where an event leaves: workers take due deliveries (handed off by the outbox, or claimed from
//! the queue with leases), send them signed (Standard Webhooks), and have every attempt's
//! outcome recorded. Nothing leaves the queue until it succeeded or died, so a crashed worker's
//! deliveries are picked up when their lease expires.
//!
//! - `queue`: every statement against the queue (claim, give back, LISTEN, stats);
//! - `policy`: what an outcome means (schedule, jitter, `Retry-After`, disabling), pure;
//! - `endpoints`: endpoint snapshots and per-endpoint rate limits;
//! - `capacity`: slots in all and per endpoint, shared with the hand-off;
//! - `send`: the signed POST; `ssrf`: the guard on where it may go.

pub mod capacity;
pub mod endpoints;
pub mod monitor;
pub mod policy;
pub mod queue;
pub mod send;
pub mod ssrf;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sea_orm::DbErr;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::DeliverySettings;
use crate::crypto::Cipher;
use crate::domain::{DeliveryStatus, Ordering};
use crate::metrics::Metrics;
use crate::store::{self, endpoint};

pub use capacity::{Capacity, Handed, Reserved};
pub use endpoints::Snapshot;
pub use policy::{lease_for, EndpointChange, Plan};
pub use queue::{new_worker_id, payload, Claimed, Payload, NOTIFY_CHANNEL};
use send::{Message, Outcome, Sender};

/// Where outcomes go to be written: the outbox's group commit, wired in by the application.
pub trait Recorder: Send + Sync {
    /// Answers after the commit; a plan that was not written comes back with the reason.
    fn record(&self, plan: Plan) -> BoxFuture<'_, Result<(), Box<NotRecorded>>>;
}

/// An outcome the database did not take, handed back (when the writer still had it) so it can
/// be written again.
pub struct NotRecorded {
    pub error: DbErr,
    pub plan: Option<Plan>,
}

/// Why a delivery whose event's payload was shredded ended without an attempt.
pub const SHREDDED: &str = "the event's payload was shredded (its tenant's data key was destroyed)";

/// How long a delivery waits in memory for a slot of its endpoint before going back to the queue.
const ENDPOINT_SLOT_WAIT: Duration = Duration::from_millis(250);

pub struct Dispatcher {
    settings: DeliverySettings,
    metrics: Arc<Metrics>,
    sender: Sender,
    queue: queue::Queue,
    endpoints: endpoints::Endpoints,
    notify: Arc<Notify>,
    recorder: Arc<dyn Recorder>,
    capacity: Arc<Capacity>,
    handed: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Handed>>>,
    /// The gateway's public URL: minimal bodies point into its API.
    api_url: String,
    /// The last `delivery_dead` alert key raised per endpoint (one a minute).
    dead_alerts: Mutex<std::collections::HashMap<crate::domain::EndpointId, String>>,
}

/// What the dispatcher is built from besides its queue and settings.
pub struct Parts {
    pub cipher: Arc<Cipher>,
    pub metrics: Arc<Metrics>,
    pub notify: Arc<Notify>,
    pub recorder: Arc<dyn Recorder>,
    pub capacity: Arc<Capacity>,
    pub handed: Option<tokio::sync::mpsc::UnboundedReceiver<Handed>>,
    pub api_url: String,
}

impl Dispatcher {
    pub fn new(queue: queue::Queue, settings: DeliverySettings, parts: Parts) -> Arc<Self> {
        let Parts {
            cipher,
            metrics,
            notify,
            recorder,
            capacity,
            handed,
            api_url,
        } = parts;
        let sender = Sender::new(
            settings.timeout,
            settings.concurrency,
            ssrf::Guard::from_settings(&settings),
            settings.outbound_proxy.as_ref(),
        );
        Arc::new(Self {
            recorder,
            capacity,
            handed: Mutex::new(handed),
            queue,
            endpoints: endpoints::Endpoints::new(cipher),
            settings,
            metrics,
            sender,
            notify,
            api_url,
            dead_alerts: Mutex::new(std::collections::HashMap::new()),
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
            tokio::spawn(async move { queue::listen(url, move || me.poke(), stop).await });
        }
        let handed = self.handed.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut handed) = handed {
            // Weak: the outbox holds the sending side, and the dispatcher holds the outbox.
            let weak = Arc::downgrade(self);
            tokio::spawn(async move {
                while let Some(h) = handed.recv().await {
                    let Some(me) = weak.upgrade() else { break };
                    tokio::spawn(async move {
                        let notify = me.notify.clone();
                        let Handed { claimed, slot } = h;
                        me.deliver(&claimed).await;
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
                let busy = self.capacity.busy_endpoints();
                let claimed = match self.queue.claim(limit as u64, &busy).await {
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
            let claimed = match self.queue.claim(200, &[]).await {
                Ok(c) if !c.is_empty() => c,
                _ => return total,
            };
            total += claimed.len();
            futures_util::future::join_all(claimed.into_iter().map(|c| self.clone().process(c)))
                .await;
        }
    }

    /// Leases up to `limit` due deliveries (see [`queue::Queue::claim`]).
    pub async fn claim(&self, limit: u64) -> Result<Vec<Claimed>, DbErr> {
        self.queue.claim(limit, &[]).await
    }

    /// Loads the payloads of deliveries read outside the workers (a pull endpoint's reads).
    pub async fn load_payloads(&self, claimed: &mut [Claimed]) -> Result<(), DbErr> {
        self.queue.load_payloads(claimed).await
    }

    /// The body a delivery sends in `mode`, numbered; `None` when its payload is gone.
    pub fn body_of(&self, c: &Claimed, mode: crate::domain::PayloadMode) -> Option<Vec<u8>> {
        let body = c.payload.as_ref()?.body_for(mode, &self.api_url);
        Some(match c.seq {
            Some(seq) => send::with_sequence(body, seq),
            None => body.to_vec(),
        })
    }

    /// Something may be due in the queue: the workers look.
    pub fn poke(&self) {
        self.capacity.mark_backlog();
        self.notify.notify_one();
    }

    /// The endpoint as the workers send to it (cached for a second).
    pub async fn snapshot(
        &self,
        id: &crate::domain::EndpointId,
    ) -> Result<Option<Arc<Snapshot>>, DbErr> {
        self.endpoints.snapshot(self.queue.db(), id).await
    }

    /// Drops cached endpoints, e.g. after an admin change (URL, headers, secrets, enabled).
    pub fn forget_endpoints(&self) {
        self.endpoints.forget_all();
    }

    /// Gives a lease back without an attempt: the delivery waits `delay`, it is never dropped.
    /// A database that cannot take it back now answers an error: the caller keeps the delivery
    /// and tries again (`deliver`).
    async fn defer(self: &Arc<Self>, c: &Claimed, delay: Duration) -> Result<(), DbErr> {
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        if let Err(e) = self.queue.give_back(&c.id, at).await {
            if crate::error::is_unavailable(&e) {
                return Err(e);
            }
            tracing::warn!(error = %e, delivery = %c.id, "deferring a delivery failed; its lease will expire");
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            me.poke();
        });
        Ok(())
    }

    async fn process(self: Arc<Self>, c: Claimed) {
        self.deliver(&c).await;
    }

    /// Sends one leased delivery; while the database is unavailable it tries again, inside the
    /// lease, so that a short outage delays the delivery rather than parking it until the lease
    /// runs out.
    async fn deliver(self: &Arc<Self>, c: &Claimed) {
        let until = Instant::now() + self.retry_window();
        let mut wait = Duration::from_millis(200);
        loop {
            match self.try_process(c, until).await {
                Ok(()) => return,
                Err(e) if crate::error::is_unavailable(&e) && Instant::now() + wait < until => {
                    tracing::warn!(error = %e, delivery = %c.id, "database unavailable; trying the delivery again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(error = %e, delivery = %c.id, "delivery processing failed; retried after the lease expires");
                    return;
                }
            }
        }
    }

    /// How long a leased delivery may wait for the database: what its lease leaves after one
    /// attempt, less a second, so that no other worker takes it over meanwhile.
    fn retry_window(&self) -> Duration {
        self.settings
            .lease
            .saturating_sub(self.settings.timeout)
            .saturating_sub(Duration::from_secs(1))
    }

    /// Sends one leased delivery. An outcome the database cannot take now is written again until
    /// `deadline` (the same for every try of this delivery): past it the lease may run out and
    /// the delivery be sent again.
    async fn try_process(self: &Arc<Self>, c: &Claimed, deadline: Instant) -> Result<(), DbErr> {
        let Some(snap) = self.snapshot(&c.endpoint_id).await? else {
            return Ok(());
        };
        let ep = &snap.ep;
        if ep.deleted_at.is_some() {
            // In memory when its endpoint was deleted: it ends as the others did.
            return self.queue.give_up(&c.id, endpoint::DELETED).await;
        }
        if !ep.enabled || snap.tenant_disabled {
            // Disabled (the endpoint or its tenant) since the delivery was handed off: it waits
            // in the queue, which claims nothing of a disabled endpoint or tenant.
            self.defer(c, Duration::ZERO).await?;
            return Ok(());
        }
        // A fast endpoint frees a slot within milliseconds: waiting a little here is cheaper
        // than putting the delivery back in the queue. A slow one gets it back after the wait.
        let slot = self.capacity.endpoint_slot(ep);
        let permit = match tokio::time::timeout(ENDPOINT_SLOT_WAIT, slot.acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                self.defer(c, Duration::from_millis(50)).await?;
                return Ok(());
            }
        };
        if let Err(wait) = self.endpoints.rate(ep) {
            drop(permit);
            self.defer(c, wait.max(Duration::from_millis(5))).await?;
            return Ok(());
        }
        let (Some(p), Some(body)) = (&c.payload, self.body_of(c, ep.payload_mode)) else {
            drop(permit);
            return self.queue.give_up(&c.id, SHREDDED).await;
        };
        if c.attempts > 0
            && ep.supersede
            && ep.ordering != Ordering::FifoSubject
            && store::delivery::newer_delivered(self.queue.db(), &c.id).await?
        {
            drop(permit);
            return self
                .queue
                .end(
                    &c.id,
                    DeliveryStatus::Superseded,
                    store::delivery::SUPERSEDED,
                )
                .await;
        }
        let received_at = p.received_at;
        let outcome = self
            .sender
            .send(&Message {
                url: ep.url.as_str(),
                webhook_id: c.event_id.as_str(),
                delivery_id: Some(c.id.as_str()),
                sequence: c.seq,
                body: &body,
                keys: &snap.keys,
                extra_headers: &snap.headers,
            })
            .await;
        drop(permit);
        self.record(c, ep, received_at, &outcome, deadline).await
    }

    /// Writes an outcome, again and again while the database is unavailable, until `deadline`:
    /// the attempt was made, and sending it again is what this avoids.
    async fn record_until(&self, mut plan: Plan, deadline: Instant) -> Result<(), DbErr> {
        let mut wait = Duration::from_millis(100);
        loop {
            match self.recorder.record(plan).await {
                Ok(()) => return Ok(()),
                Err(refused) => {
                    let NotRecorded { error, plan: back } = *refused;
                    let Some(back) = back else {
                        return Err(error);
                    };
                    if !crate::error::is_unavailable(&error) || Instant::now() + wait >= deadline {
                        return Err(error);
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                    plan = back;
                }
            }
        }
    }

    /// The alerts an outcome raises: a delivery died (one per endpoint a minute), the
    /// endpoint was disabled. An alert not written is logged; the outcome stands.
    async fn alert(
        &self,
        ep: &endpoint::Model,
        c: &Claimed,
        status: DeliveryStatus,
        disabled: Option<String>,
        now: DateTime<Utc>,
    ) {
        use crate::domain::AlertKind;
        let mut raise = Vec::new();
        let dead_key = format!("delivery_dead:{}:{}", ep.id, now.format("%Y-%m-%dT%H:%M"));
        // Many deaths of one endpoint in a minute are one alert: only the first tries a write.
        let first_this_minute = status == DeliveryStatus::Dead && {
            let mut last = self.dead_alerts.lock().unwrap_or_else(|p| p.into_inner());
            if last.len() > 10_000 {
                last.clear();
            }
            last.insert(ep.id.clone(), dead_key.clone()).as_ref() != Some(&dead_key)
        };
        if first_this_minute {
            raise.push(store::alert::Raise {
                kind: AlertKind::DeliveryDead,
                dedupe_key: dead_key,
                tenant_id: Some(ep.tenant_id.clone()),
                endpoint_id: Some(ep.id.clone()),
                summary: format!("a delivery to endpoint {} died", ep.id),
                detail: serde_json::json!({"delivery_id": c.id, "event_id": c.event_id}),
            });
        }
        if let Some(reason) = disabled {
            raise.push(store::alert::Raise {
                kind: AlertKind::EndpointDisabled,
                dedupe_key: format!("endpoint_disabled:{}:{}", ep.id, now.timestamp_millis()),
                tenant_id: Some(ep.tenant_id.clone()),
                endpoint_id: Some(ep.id.clone()),
                summary: format!("endpoint {} was disabled", ep.id),
                detail: serde_json::json!({"reason": reason}),
            });
        }
        for a in raise {
            if let Err(e) = monitor::raise(self.queue.db(), &self.metrics, a).await {
                tracing::warn!(error = %e, endpoint = %ep.id, "raising an alert failed");
            }
        }
    }

    async fn record(
        &self,
        c: &Claimed,
        ep: &endpoint::Model,
        received_at: DateTime<Utc>,
        o: &Outcome,
        deadline: Instant,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        let state = policy::EndpointState {
            id: &ep.id,
            tenant_id: &ep.tenant_id,
            failing_since: ep.failing_since,
            payload_mode: ep.payload_mode,
        };
        let (plan, label) = policy::plan(
            &self.settings,
            &c.id,
            c.attempts,
            &state,
            o,
            now,
            &mut rand::thread_rng(),
        );
        let status = plan.status;
        let had_change = plan.endpoint_change.is_some();
        let disabled = match &plan.endpoint_change {
            Some(EndpointChange::Failing {
                disable: Some(reason),
                ..
            }) => {
                tracing::warn!(endpoint = %ep.id, reason = reason.as_str(), "endpoint disabled");
                Some(reason.clone())
            }
            _ => None,
        };
        self.record_until(plan, deadline).await?;
        self.alert(ep, c, status, disabled, now).await;
        if had_change {
            // failing_since or enabled changed: the next delivery must see it.
            self.endpoints.forget(&ep.id);
        }

        self.metrics
            .delivery_attempts
            .get_or_create(&crate::metrics::OutcomeLabel {
                outcome: label.to_owned(),
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
        if ep.ordering == Ordering::FifoSubject && status != DeliveryStatus::Pending {
            // The next event of this subject may go now.
            self.poke();
        }
        Ok(())
    }
}
