//! What an attempt's outcome means, decided without the database: when the next attempt is due
//! (the schedule, jitter, `Retry-After`), whether the delivery is done or dead, and whether its
//! endpoint starts failing, recovers, or is disabled. The outbox writes the resulting [`Plan`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use super::send::Outcome;
use crate::config::DeliverySettings;
use crate::domain::{AttemptId, DeliveryId, DeliveryStatus, EndpointId, PayloadMode, TenantId};
use crate::store::delivery_attempt;

/// An attempt's outcome, ready to write.
pub struct Plan {
    pub attempt: delivery_attempt::Model,
    pub delivery: DeliveryId,
    pub endpoint: EndpointId,
    pub attempts: i32,
    pub status: DeliveryStatus,
    pub next_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub now: DateTime<Utc>,
    pub endpoint_change: Option<EndpointChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointChange {
    Healthy,
    Failing {
        since: DateTime<Utc>,
        disable: Option<String>,
    },
}

/// How long a lease lasts, claimed or handed off: `delivery_lease`, which the settings keep
/// longer than `delivery_timeout`, so a live worker never loses one.
pub fn lease_for(settings: &DeliverySettings) -> chrono::Duration {
    chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::minutes(1))
}

/// Delay before the next attempt after `attempts` failed ones; `None` when none is left.
/// A `Retry-After` the endpoint sent wins over the schedule, within bounds.
pub fn next_delay(
    settings: &DeliverySettings,
    attempts: usize,
    retry_after: Option<Duration>,
    rng: &mut impl Rng,
) -> Option<Duration> {
    let planned = *settings.retry_schedule.get(attempts)?;
    if let Some(ra) = retry_after {
        return Some(ra.clamp(Duration::from_secs(1), settings.retry_after_max));
    }
    if planned.is_zero() || settings.jitter == 0.0 {
        return Some(planned);
    }
    let factor = 1.0 + rng.gen_range(-settings.jitter..=settings.jitter);
    Some(planned.mul_f64(factor))
}

/// The endpoint as the policy needs it.
pub struct EndpointState<'a> {
    pub id: &'a EndpointId,
    pub tenant_id: &'a TenantId,
    pub failing_since: Option<DateTime<Utc>>,
    /// What the attempt sent, recorded with it for the accounting of disclosures.
    pub payload_mode: PayloadMode,
}

/// The plan for attempt number `attempts + 1` of `delivery`, and its metrics label
/// (`success`, `failure` or `dead`).
pub fn plan(
    settings: &DeliverySettings,
    delivery: &DeliveryId,
    attempts: i32,
    ep: &EndpointState<'_>,
    o: &Outcome,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> (Plan, &'static str) {
    let attempt = attempts.saturating_add(1);
    let gone = o.status == Some(410);
    let (status, next_at, label) = if o.success() {
        (DeliveryStatus::Succeeded, now, "success")
    } else if gone {
        (DeliveryStatus::Dead, now, "dead")
    } else {
        match next_delay(settings, attempt as usize, o.retry_after, rng) {
            Some(d) => (
                DeliveryStatus::Pending,
                now.checked_add_signed(chrono::Duration::from_std(d).unwrap_or_default())
                    .unwrap_or(now),
                "failure",
            ),
            None => (DeliveryStatus::Dead, now, "dead"),
        }
    };
    let endpoint_change = if o.success() {
        ep.failing_since
            .is_some()
            .then_some(EndpointChange::Healthy)
    } else {
        let since = ep.failing_since.unwrap_or(now);
        let too_long = now - since
            >= chrono::Duration::from_std(settings.disable_after)
                .unwrap_or(chrono::Duration::days(5));
        let reason = if gone {
            Some("the endpoint answered 410 Gone".to_owned())
        } else if too_long {
            Some(format!(
                "every delivery failed since {} (more than the allowed {})",
                crate::normalize::rfc3339(since),
                humantime::format_duration(settings.disable_after)
            ))
        } else {
            None
        };
        Some(EndpointChange::Failing {
            since,
            disable: reason,
        })
    };
    let plan = Plan {
        attempt: delivery_attempt::Model {
            id: AttemptId::generate(),
            delivery_id: delivery.clone(),
            endpoint_id: ep.id.clone(),
            tenant_id: ep.tenant_id.clone(),
            attempt,
            at: now,
            payload_mode: ep.payload_mode,
            status_code: o.status.map(i32::from),
            duration_ms: o.duration.as_millis().min(i32::MAX as u128) as i32,
            error_class: o.error_class.map(str::to_owned),
            error: o.error.clone(),
            response_snippet: o.snippet.clone(),
            success: o.success(),
        },
        delivery: delivery.clone(),
        endpoint: ep.id.clone(),
        attempts: attempt,
        status,
        next_at,
        status_code: o.status.map(i32::from),
        error: o.error.clone(),
        now,
        endpoint_change,
    };
    (plan, label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn settings() -> DeliverySettings {
        let mut s = crate::config::Settings::from_raw(Default::default())
            .expect("defaults are valid")
            .delivery;
        s.retry_schedule = vec![
            Duration::ZERO,
            Duration::from_secs(5),
            Duration::from_secs(300),
        ];
        s.jitter = 0.2;
        s.retry_after_max = Duration::from_secs(3600);
        s.disable_after = Duration::from_secs(86_400);
        s
    }

    fn outcome(status: Option<u16>, ok: bool) -> Outcome {
        Outcome {
            status,
            duration: Duration::from_millis(12),
            error_class: (!ok).then_some("http_status"),
            error: (!ok).then(|| "HTTP 500".to_owned()),
            snippet: None,
            retry_after: None,
        }
    }

    fn ids() -> (DeliveryId, EndpointId, TenantId) {
        (
            DeliveryId::generate(),
            EndpointId::generate(),
            TenantId::generate(),
        )
    }

    #[test]
    fn the_schedule_is_followed_with_jitter_and_ends_in_none() {
        let s = settings();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        assert_eq!(next_delay(&s, 0, None, &mut rng), Some(Duration::ZERO));
        for _ in 0..100 {
            let d = next_delay(&s, 1, None, &mut rng).unwrap();
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(6),
                "{d:?}"
            );
        }
        assert_eq!(next_delay(&s, 3, None, &mut rng), None);
    }

    #[test]
    fn retry_after_wins_within_its_bounds() {
        let s = settings();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let ra = |d| next_delay(&s, 1, Some(d), &mut rand::rngs::StdRng::seed_from_u64(1));
        assert_eq!(ra(Duration::from_secs(42)), Some(Duration::from_secs(42)));
        assert_eq!(ra(Duration::ZERO), Some(Duration::from_secs(1)));
        assert_eq!(
            ra(Duration::from_secs(99_999)),
            Some(Duration::from_secs(3600))
        );
        // No attempt left: Retry-After does not bring one back.
        assert_eq!(
            next_delay(&s, 3, Some(Duration::from_secs(5)), &mut rng),
            None
        );
    }

    #[test]
    fn a_success_completes_and_heals_a_failing_endpoint() {
        let s = settings();
        let (d, e, t) = ids();
        let now = Utc::now();
        let ep = EndpointState {
            id: &e,
            tenant_id: &t,
            failing_since: Some(now),
            payload_mode: PayloadMode::Full,
        };
        let (p, label) = plan(
            &s,
            &d,
            0,
            &ep,
            &outcome(Some(200), true),
            now,
            &mut rand::thread_rng(),
        );
        assert_eq!(
            (p.status, label, p.attempts),
            (DeliveryStatus::Succeeded, "success", 1)
        );
        assert_eq!(p.endpoint_change, Some(EndpointChange::Healthy));
        let healthy = EndpointState {
            failing_since: None,
            ..ep
        };
        let (p, _) = plan(
            &s,
            &d,
            0,
            &healthy,
            &outcome(Some(200), true),
            now,
            &mut rand::thread_rng(),
        );
        assert_eq!(p.endpoint_change, None);
    }

    #[test]
    fn a_failure_is_retried_then_dead_and_410_disables_at_once() {
        let s = settings();
        let (d, e, t) = ids();
        let now = Utc::now();
        let ep = EndpointState {
            id: &e,
            tenant_id: &t,
            failing_since: None,
            payload_mode: PayloadMode::Full,
        };
        let (p, label) = plan(
            &s,
            &d,
            0,
            &ep,
            &outcome(Some(500), false),
            now,
            &mut rand::thread_rng(),
        );
        assert_eq!((p.status, label), (DeliveryStatus::Pending, "failure"));
        assert!(p.next_at > now);
        assert_eq!(
            p.endpoint_change,
            Some(EndpointChange::Failing {
                since: now,
                disable: None
            })
        );
        let (p, label) = plan(
            &s,
            &d,
            2,
            &ep,
            &outcome(Some(500), false),
            now,
            &mut rand::thread_rng(),
        );
        assert_eq!((p.status, label), (DeliveryStatus::Dead, "dead"));
        let (p, _) = plan(
            &s,
            &d,
            0,
            &ep,
            &outcome(Some(410), false),
            now,
            &mut rand::thread_rng(),
        );
        assert_eq!(p.status, DeliveryStatus::Dead);
        assert!(matches!(
            p.endpoint_change,
            Some(EndpointChange::Failing {
                disable: Some(_),
                ..
            })
        ));
    }

    #[test]
    fn an_endpoint_failing_longer_than_allowed_is_disabled() {
        let s = settings();
        let (d, e, t) = ids();
        let now = Utc::now();
        let since = now - chrono::Duration::days(2);
        let ep = EndpointState {
            id: &e,
            tenant_id: &t,
            failing_since: Some(since),
            payload_mode: PayloadMode::Full,
        };
        let (p, _) = plan(
            &s,
            &d,
            0,
            &ep,
            &outcome(Some(500), false),
            now,
            &mut rand::thread_rng(),
        );
        let Some(EndpointChange::Failing {
            since: kept,
            disable: Some(reason),
        }) = p.endpoint_change
        else {
            panic!("expected a disable");
        };
        assert_eq!(kept, since);
        assert!(reason.contains("every delivery failed since"), "{reason}");
    }
}
