//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabel {
    pub provider: String,
    pub reason: String,
}

fn histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
    ])
}

pub struct Metrics {
    registry: Registry,
    pub webhooks_received: Family<ProviderLabel, Counter>,
    pub webhooks_rejected: Family<RejectLabel, Counter>,
    pub events_stored: Family<ProviderLabel, Counter>,
    pub events_duplicate: Family<ProviderLabel, Counter>,
    pub events_stale: Family<ProviderLabel, Counter>,
    pub ingest_seconds: Family<ProviderLabel, Histogram, fn() -> Histogram>,
    /// Attempts by outcome: `success`, `failure` (will retry), `dead`.
    pub delivery_attempts: Family<OutcomeLabel, Counter>,
    pub delivery_attempt_seconds: Histogram,
    /// Retries scheduled after a failed attempt.
    pub delivery_retries: Counter,
    pub delivery_latency_seconds: Histogram,
    pub queue_depth: Gauge,
    pub oldest_pending_seconds: Gauge<f64, AtomicU64>,
    /// Operational alerts raised, by kind.
    pub alerts_raised: Family<KindLabel, Counter>,
    /// Endpoints whose every attempt has failed since `failing_since`.
    pub endpoints_failing: Gauge,
    /// Per pull endpoint: events not yet passed by the cursor, the age of the oldest of them,
    /// and when its receiver last read (Unix seconds).
    pub pull_backlog: Family<EndpointLabel, Gauge>,
    pub pull_lag_seconds: Family<EndpointLabel, Gauge<f64, AtomicU64>>,
    pub pull_last_read_timestamp_seconds: Family<EndpointLabel, Gauge<f64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gateway");
        let webhooks_received = Family::<ProviderLabel, Counter>::default();
        let webhooks_rejected = Family::<RejectLabel, Counter>::default();
        let events_stored = Family::<ProviderLabel, Counter>::default();
        let events_duplicate = Family::<ProviderLabel, Counter>::default();
        let events_stale = Family::<ProviderLabel, Counter>::default();
        let ingest_seconds =
            Family::<ProviderLabel, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register(
            "webhooks_received",
            "Provider webhooks received",
            webhooks_received.clone(),
        );
        registry.register(
            "webhooks_rejected",
            "Provider webhooks refused, by reason (the problem code)",
            webhooks_rejected.clone(),
        );
        registry.register(
            "events_stored",
            "Events stored (new, not duplicates)",
            events_stored.clone(),
        );
        registry.register(
            "events_duplicate",
            "Webhooks answered as duplicates",
            events_duplicate.clone(),
        );
        registry.register(
            "events_stale",
            "Events stored as stale",
            events_stale.clone(),
        );
        registry.register(
            "ingest_ack_seconds",
            "Time from receiving a webhook to acknowledging it",
            ingest_seconds.clone(),
        );
        let delivery_attempts = Family::<OutcomeLabel, Counter>::default();
        let delivery_attempt_seconds = histogram();
        let delivery_retries = Counter::default();
        registry.register(
            "delivery_retries",
            "Retries scheduled after a failed attempt",
            delivery_retries.clone(),
        );
        let delivery_latency_seconds = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0,
        ]);
        let queue_depth = Gauge::default();
        let oldest_pending_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "delivery_attempts",
            "Delivery attempts by outcome (success, failure = will retry, dead)",
            delivery_attempts.clone(),
        );
        registry.register(
            "delivery_attempt_seconds",
            "Duration of one delivery attempt",
            delivery_attempt_seconds.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "From receiving the webhook to its successful delivery",
            delivery_latency_seconds.clone(),
        );
        registry.register(
            "delivery_queue_depth",
            "Deliveries pending (all endpoints)",
            queue_depth.clone(),
        );
        registry.register(
            "delivery_oldest_pending_seconds",
            "Age of the oldest pending delivery",
            oldest_pending_seconds.clone(),
        );
        let alerts_raised = Family::<KindLabel, Counter>::default();
        let endpoints_failing = Gauge::default();
        let pull_backlog = Family::<EndpointLabel, Gauge>::default();
        let pull_lag_seconds = Family::<EndpointLabel, Gauge<f64, AtomicU64>>::default();
        let pull_last_read_timestamp_seconds =
            Family::<EndpointLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "alerts_raised",
            "Operational alerts raised, by kind (README, \"Operator alerts\")",
            alerts_raised.clone(),
        );
        registry.register(
            "endpoints_failing",
            "Endpoints whose every attempt has failed for a while (failing_since set)",
            endpoints_failing.clone(),
        );
        registry.register(
            "pull_backlog",
            "Events of a pull endpoint not yet passed by its cursor",
            pull_backlog.clone(),
        );
        registry.register(
            "pull_lag_seconds",
            "Age of a pull endpoint's oldest event not yet passed by its cursor",
            pull_lag_seconds.clone(),
        );
        registry.register(
            "pull_last_read_timestamp_seconds",
            "When a pull endpoint's receiver last read (Unix time)",
            pull_last_read_timestamp_seconds.clone(),
        );
        Self {
            alerts_raised,
            endpoints_failing,
            pull_backlog,
            pull_lag_seconds,
            pull_last_read_timestamp_seconds,
            delivery_attempts,
            delivery_attempt_seconds,
            delivery_retries,
            delivery_latency_seconds,
            queue_depth,
            oldest_pending_seconds,
            registry,
            webhooks_received,
            webhooks_rejected,
            events_stored,
            events_duplicate,
            events_stale,
            ingest_seconds,
        }
    }
}

impl Metrics {
    pub fn provider(provider: &str) -> ProviderLabel {
        ProviderLabel {
            provider: provider.to_owned(),
        }
    }

    pub fn reject(&self, provider: &str, reason: &str) {
        self.webhooks_rejected
            .get_or_create(&RejectLabel {
                provider: provider.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
