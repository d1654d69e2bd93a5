//! The monitor's settings: handshakes, heartbeats and the operator's alerts, read from the raw
//! layers.

use std::time::Duration;

use crate::domain::SigningSecret;

use super::{invalid, parse_duration, ConfigError, RawSettings};

#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// How often the monitor runs: handshakes, heartbeats, alert conditions, alerts to send.
    pub interval: Duration,
    /// Where alerts go (signed like every callback); `None`: they are only listed.
    pub operator_url: Option<url::Url>,
    /// The `whsec_` secret alerts are signed with.
    pub operator_secret: Option<SigningSecret>,
    /// Consecutive failed attempts of an endpoint that raise `endpoint_failing`.
    pub alert_failures: u32,
    /// Pending deliveries of one endpoint that raise `backlog`.
    pub alert_backlog: u64,
    /// Age of an endpoint's oldest pending delivery that raises `oldest_pending`.
    pub alert_oldest_pending: Duration,
    /// Failed verifications on one tenant's URL within a minute that raise
    /// `verification_failures`.
    pub alert_verification_failures: u32,
}

impl MonitorSettings {
    pub(super) fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        let interval = parse_duration("monitor_interval", &raw.monitor_interval)?;
        if interval < Duration::from_millis(50) {
            return Err(invalid("monitor_interval", "must be at least 50ms"));
        }
        let operator_url = match raw.operator_url.trim() {
            "" => None,
            text => Some(
                url::Url::parse(text)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| invalid("operator_url", "must be an http:// or https:// URL"))?,
            ),
        };
        let operator_secret = match raw.operator_secret.trim() {
            "" => None,
            text => Some(SigningSecret::parse(text).map_err(|_| {
                invalid(
                    "operator_secret",
                    "must be a whsec_ secret (base64 after the prefix)",
                )
            })?),
        };
        if operator_url.is_some() != operator_secret.is_some() {
            return Err(invalid(
                "operator_secret",
                "operator_url and operator_secret go together",
            ));
        }
        for (key, n) in [
            ("alert_failures", u64::from(raw.alert_failures)),
            ("alert_backlog", raw.alert_backlog),
            (
                "alert_verification_failures",
                u64::from(raw.alert_verification_failures),
            ),
        ] {
            if n == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        Ok(Self {
            interval,
            operator_url,
            operator_secret,
            alert_failures: raw.alert_failures,
            alert_backlog: raw.alert_backlog,
            alert_oldest_pending: parse_duration(
                "alert_oldest_pending",
                &raw.alert_oldest_pending,
            )?,
            alert_verification_failures: raw.alert_verification_failures,
        })
    }
}
