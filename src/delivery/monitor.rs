//! The monitor: what runs on a timer beside the workers, in one replica at a time (a lease in
//! the database). It sends handshakes to endpoints that await one, heartbeats to quiet
//! endpoints that asked for them, raises the alerts whose conditions it watches (endpoints
//! failing, backlogs, old pending deliveries), sends alerts to the operator endpoint, and sets
//! the gauges of pull endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use tokio_util::sync::CancellationToken;

use super::send::{Message, Sender};
use super::Dispatcher;
use crate::config::MonitorSettings;
use crate::domain::{AlertKind, EndpointId};
use crate::metrics::{EndpointLabel, KindLabel, Metrics};
use crate::store::{alert, endpoint, endpoint_sequence, lease, monitor as watch};

/// The event an endpoint that requires a handshake must answer 2xx.
pub const HANDSHAKE: &str = "gateway.endpoint.handshake";
/// The event a quiet endpoint is sent when it asked for a heartbeat.
pub const HEARTBEAT: &str = "gateway.endpoint.heartbeat";
/// An alert's type is this prefix and its kind.
pub const ALERT_PREFIX: &str = "gateway.alert.";
/// Attempts at sending one alert before it is marked failed.
const ALERT_ATTEMPTS: i32 = 10;

pub struct Monitor {
    db: DatabaseConnection,
    settings: MonitorSettings,
    dispatcher: Arc<Dispatcher>,
    metrics: Arc<Metrics>,
    /// The operator endpoint is configuration, not a tenant's input: no SSRF guard.
    operator: Sender,
    holder: String,
    /// Handshakes that failed: when each endpoint's next one is due (backing off).
    backoff: Mutex<HashMap<EndpointId, (u32, DateTime<Utc>)>>,
}

impl Monitor {
    pub fn new(
        db: DatabaseConnection,
        settings: MonitorSettings,
        dispatcher: Arc<Dispatcher>,
        metrics: Arc<Metrics>,
        timeout: Duration,
    ) -> Arc<Self> {
        let unguarded = super::ssrf::Guard {
            enabled: false,
            allow: Vec::new(),
            pinned: Vec::new(),
        };
        Arc::new(Self {
            db,
            settings,
            dispatcher,
            metrics,
            operator: Sender::new(timeout, 4, unguarded, None),
            holder: super::new_worker_id(),
            backoff: Mutex::new(HashMap::new()),
        })
    }

    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.tick().await {
                    tracing::warn!(error = %e, "the monitor's run failed; trying again");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(me.settings.interval) => {}
                }
            }
        });
    }

    /// One run: everything the monitor does, when this replica holds its lease.
    pub async fn tick(&self) -> Result<(), DbErr> {
        let now = Utc::now();
        let hold = chrono::Duration::from_std(self.settings.interval * 3)
            .unwrap_or(chrono::Duration::seconds(15))
            .max(chrono::Duration::seconds(10));
        if !lease::take(&self.db, "monitor", &self.holder, now, now + hold).await? {
            return Ok(());
        }
        self.handshakes().await?;
        self.heartbeats().await?;
        self.conditions().await?;
        self.pull_gauges().await?;
        self.send_alerts().await
    }

    /// A signed gateway event to an endpoint, as its deliveries are signed.
    async fn send_to(
        &self,
        ep: &endpoint::Model,
        event_type: &str,
        seq: Option<i64>,
        data: serde_json::Value,
    ) -> Result<super::send::Outcome, DbErr> {
        let Some(snap) = self.dispatcher.snapshot(&ep.id).await? else {
            return Err(DbErr::RecordNotFound(ep.id.to_string()));
        };
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let body = gateway_event(&id, event_type, Some(ep.tenant_id.as_str()), data);
        let body = match seq {
            Some(n) => super::send::with_sequence(&body, n),
            None => body,
        };
        Ok(self
            .dispatcher
            .sender()
            .send(&Message {
                url: ep.url.as_str(),
                webhook_id: &id,
                delivery_id: None,
                sequence: seq,
                body: &body,
                keys: &snap.keys,
                extra_headers: &snap.headers,
            })
            .await)
    }

    async fn handshakes(&self) -> Result<(), DbErr> {
        let now = Utc::now();
        for ep in watch::awaiting_handshake(&self.db).await? {
            let due = {
                let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
                backoff.get(&ep.id).is_none_or(|(_, at)| *at <= now)
            };
            if !due {
                continue;
            }
            let data = serde_json::json!({
                "endpoint_id": ep.id,
                "challenge": uuid::Uuid::new_v4().simple().to_string(),
            });
            let outcome = self.send_to(&ep, HANDSHAKE, None, data).await?;
            if outcome.success() {
                self.backoff
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&ep.id);
                watch::verified(&self.db, &ep.id, now).await?;
                self.dispatcher.forget_endpoints();
                // Its deliveries waited in the queue: the workers look now.
                self.dispatcher.poke();
            } else {
                let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
                let failures = backoff.get(&ep.id).map_or(0, |(n, _)| *n) + 1;
                // Doubling from the monitor's interval, at most ten minutes.
                let wait = (self.settings.interval * 2u32.pow(failures.min(12)))
                    .min(Duration::from_secs(600));
                backoff.insert(
                    ep.id.clone(),
                    (
                        failures,
                        now + chrono::Duration::from_std(wait).unwrap_or_default(),
                    ),
                );
                tracing::warn!(endpoint = %ep.id, error = outcome.error.as_deref().unwrap_or(""), "handshake not answered 2xx");
            }
        }
        Ok(())
    }

    async fn heartbeats(&self) -> Result<(), DbErr> {
        let now = Utc::now();
        for (ep, minutes) in watch::with_heartbeat(&self.db).await? {
            let seq = endpoint_sequence::of(&self.db, &ep.id).await?;
            let last_sent = watch::last_attempt(&self.db, &ep.id).await?;
            let quiet_since = [
                seq.heartbeat_at,
                last_sent,
                ep.verified_at,
                Some(ep.created_at),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(ep.created_at);
            if now - quiet_since < chrono::Duration::minutes(i64::from(minutes)) {
                continue;
            }
            let data = serde_json::json!({
                "endpoint_id": ep.id,
                "last_seq": seq.last_seq,
                "quiet_since": quiet_since.to_rfc3339_opts(SecondsFormat::Millis, true),
            });
            let outcome = self
                .send_to(&ep, HEARTBEAT, Some(seq.last_seq), data)
                .await?;
            if !outcome.success() {
                tracing::warn!(endpoint = %ep.id, error = outcome.error.as_deref().unwrap_or(""), "heartbeat not answered 2xx");
            }
            endpoint_sequence::touch_heartbeat(&self.db, &ep.id, now).await?;
        }
        Ok(())
    }

    /// Raises an alert unless its dedupe key was raised before.
    pub async fn raise(&self, a: alert::Raise) -> Result<(), DbErr> {
        raise(&self.db, &self.metrics, a).await
    }

    async fn conditions(&self) -> Result<(), DbErr> {
        let now = Utc::now();
        let failing = watch::failing(&self.db).await?;
        self.metrics.endpoints_failing.set(failing.len() as i64);
        for (ep, since, failures) in failing {
            if failures < i64::from(self.settings.alert_failures) {
                continue;
            }
            self.raise(alert::Raise {
                kind: AlertKind::EndpointFailing,
                dedupe_key: format!("endpoint_failing:{}:{}", ep.id, since.timestamp_millis()),
                tenant_id: Some(ep.tenant_id.clone()),
                endpoint_id: Some(ep.id.clone()),
                summary: format!("endpoint {} failed {failures} times in a row", ep.id),
                detail: serde_json::json!({"failures": failures, "failing_since": since}),
            })
            .await?;
        }
        let hour = now.format("%Y-%m-%dT%H").to_string();
        for p in watch::pending_by_endpoint(&self.db).await? {
            if p.count as u64 > self.settings.alert_backlog {
                self.raise(alert::Raise {
                    kind: AlertKind::Backlog,
                    dedupe_key: format!("backlog:{}:{hour}", p.endpoint_id),
                    tenant_id: Some(p.tenant_id.clone()),
                    endpoint_id: Some(p.endpoint_id.clone()),
                    summary: format!("{} deliveries pending for endpoint {}", p.count, p.endpoint_id),
                    detail: serde_json::json!({"pending": p.count, "threshold": self.settings.alert_backlog}),
                })
                .await?;
            }
            let age = (now - p.oldest).to_std().unwrap_or_default();
            if age > self.settings.alert_oldest_pending {
                self.raise(alert::Raise {
                    kind: AlertKind::OldestPending,
                    dedupe_key: format!("oldest_pending:{}:{hour}", p.endpoint_id),
                    tenant_id: Some(p.tenant_id.clone()),
                    endpoint_id: Some(p.endpoint_id.clone()),
                    summary: format!(
                        "endpoint {}'s oldest pending delivery waited {}s",
                        p.endpoint_id,
                        age.as_secs()
                    ),
                    detail: serde_json::json!({"oldest_pending_seconds": age.as_secs(), "oldest_created_at": p.oldest}),
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn pull_gauges(&self) -> Result<(), DbErr> {
        let now = Utc::now();
        for p in watch::pull_positions(&self.db).await? {
            let label = EndpointLabel {
                endpoint: p.endpoint_id.to_string(),
            };
            self.metrics
                .pull_backlog
                .get_or_create(&label)
                .set(p.last_seq - p.cursor);
            let lag = p
                .oldest_unread
                .map_or(0.0, |t| endpoint_sequence::seconds_since(t, now));
            self.metrics.pull_lag_seconds.get_or_create(&label).set(lag);
            if let Some(read) = p.read_at {
                self.metrics
                    .pull_last_read_timestamp_seconds
                    .get_or_create(&label)
                    .set(read.timestamp_millis() as f64 / 1000.0);
            }
        }
        Ok(())
    }

    async fn send_alerts(&self) -> Result<(), DbErr> {
        let (Some(url), Some(secret)) = (
            self.settings.operator_url.as_ref(),
            self.settings.operator_secret.as_ref(),
        ) else {
            return Ok(());
        };
        let keys = vec![secret.key_bytes()];
        for a in alert::due(&self.db, Utc::now(), 50).await? {
            let data = serde_json::json!({
                "kind": a.kind,
                "summary": a.summary,
                "tenant_id": a.tenant_id,
                "endpoint_id": a.endpoint_id,
                "detail": serde_json::from_str::<serde_json::Value>(&a.detail).unwrap_or_default(),
                "created_at": a.created_at,
            });
            let body = gateway_event(
                a.id.as_str(),
                &format!("{ALERT_PREFIX}{}", a.kind),
                a.tenant_id.as_ref().map(|t| t.as_str()),
                data,
            );
            let o = self
                .operator
                .send(&Message {
                    url: url.as_str(),
                    webhook_id: a.id.as_str(),
                    delivery_id: None,
                    sequence: None,
                    body: &body,
                    keys: &keys,
                    extra_headers: &[],
                })
                .await;
            let attempts = a.attempts.saturating_add(1);
            let now = Utc::now();
            let outcome = if o.success() {
                Ok(())
            } else {
                let error = o.error.unwrap_or_default();
                let retry = (attempts < ALERT_ATTEMPTS)
                    .then(|| now + chrono::Duration::seconds((5i64 << attempts.min(10)).min(3600)));
                Err((error, retry))
            };
            alert::attempted(&self.db, &a.id, attempts, outcome, now).await?;
        }
        Ok(())
    }
}

/// Raises an alert (counted in `gateway_alerts_raised_total` when new).
pub async fn raise(
    db: &impl sea_orm::ConnectionTrait,
    metrics: &Metrics,
    a: alert::Raise,
) -> Result<(), DbErr> {
    let kind = a.kind;
    let summary = a.summary.clone();
    if alert::raise(db, a, Utc::now()).await? {
        tracing::warn!(
            kind = kind.as_str(),
            summary = summary.as_str(),
            "alert raised"
        );
        metrics
            .alerts_raised
            .get_or_create(&KindLabel {
                kind: kind.as_str().to_owned(),
            })
            .inc();
    }
    Ok(())
}

/// A CloudEvent of the gateway's own (handshake, heartbeat, alert).
fn gateway_event(
    id: &str,
    event_type: &str,
    tenant: Option<&str>,
    data: serde_json::Value,
) -> Vec<u8> {
    let mut event = serde_json::json!({
        "specversion": "1.0",
        "type": event_type,
        "source": "/gateway",
        "id": id,
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "datacontenttype": "application/json",
        "data": data,
    });
    if let (Some(t), Some(map)) = (tenant, event.as_object_mut()) {
        map.insert("tenantid".into(), t.into());
    }
    serde_json::to_vec(&event).unwrap_or_default()
}
