//! The delivery workers' settings, read from the raw layers.

use std::time::Duration;

use super::{invalid, parse_duration, ConfigError, RawSettings};

/// How deliveries to tenant endpoints behave.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Whether this process runs delivery workers.
    pub enabled: bool,
    /// Deliveries in flight at once in this process.
    pub concurrency: usize,
    /// Default per-endpoint cap on deliveries in flight.
    pub endpoint_concurrency: u32,
    pub timeout: Duration,
    /// Delay before attempt n+1 (the first entry is the first attempt's delay, usually 0).
    pub retry_schedule: Vec<Duration>,
    pub jitter: f64,
    pub retry_after_max: Duration,
    pub disable_after: Duration,
    pub poll_interval: Duration,
    /// How long a worker owns a delivery it claimed; after a crash, others take it over then.
    pub lease: Duration,
    pub ssrf_guard: bool,
    pub ssrf_allowlist: Vec<ipnet::IpNet>,
    /// Names pinned to addresses for outbound calls.
    pub ssrf_resolve: Vec<(String, std::net::IpAddr)>,
    /// The explicit proxy of every outbound call (callbacks and provider calls), if any.
    pub outbound_proxy: Option<url::Url>,
    /// The longest a pull endpoint's read waits for events, whatever its `wait` asks (a proxy
    /// in front may close idle requests sooner).
    pub pull_max_wait: Duration,
}

/// Comma-separated entries, each read by `parse`; empty entries are skipped.
fn comma_list<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, ConfigError>,
) -> Result<Vec<T>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse)
        .collect()
}

impl DeliverySettings {
    pub(super) fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        Ok(Self {
            enabled: raw.delivery_enabled,
            concurrency: match raw.delivery_concurrency {
                0 => return Err(invalid("delivery_concurrency", "must be at least 1")),
                n => n,
            },
            endpoint_concurrency: match raw.delivery_endpoint_concurrency {
                0 => {
                    return Err(invalid(
                        "delivery_endpoint_concurrency",
                        "must be at least 1",
                    ))
                }
                n => n,
            },
            timeout: parse_duration("delivery_timeout", &raw.delivery_timeout)?,
            retry_schedule: {
                let list = raw
                    .delivery_retry_schedule
                    .split(',')
                    .map(|d| parse_duration("delivery_retry_schedule", d))
                    .collect::<Result<Vec<_>, _>>()?;
                if list.is_empty() {
                    return Err(invalid(
                        "delivery_retry_schedule",
                        "needs at least one entry",
                    ));
                }
                list
            },
            jitter: if (0.0..=1.0).contains(&raw.delivery_jitter) {
                raw.delivery_jitter
            } else {
                return Err(invalid("delivery_jitter", "must be between 0 and 1"));
            },
            retry_after_max: parse_duration(
                "delivery_retry_after_max",
                &raw.delivery_retry_after_max,
            )?,
            disable_after: parse_duration("delivery_disable_after", &raw.delivery_disable_after)?,
            poll_interval: parse_duration("delivery_poll_interval", &raw.delivery_poll_interval)?,
            lease: {
                let lease = parse_duration("delivery_lease", &raw.delivery_lease)?;
                let timeout = parse_duration("delivery_timeout", &raw.delivery_timeout)?;
                if lease <= timeout {
                    return Err(invalid(
                        "delivery_lease",
                        "must be longer than delivery_timeout",
                    ));
                }
                lease
            },
            pull_max_wait: {
                let wait = parse_duration("pull_max_wait", &raw.pull_max_wait)?;
                if wait > Duration::from_secs(60) {
                    return Err(invalid("pull_max_wait", "must be at most 60s"));
                }
                wait
            },
            ssrf_guard: raw.ssrf_guard,
            ssrf_allowlist: comma_list(&raw.ssrf_allowlist, |s| {
                crate::domain::parse_cidr(s).map_err(|m| invalid("ssrf_allowlist", m))
            })?,
            outbound_proxy: match raw.outbound_proxy.trim() {
                "" => None,
                text => Some(
                    url::Url::parse(text)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https"))
                        .ok_or_else(|| {
                            invalid("outbound_proxy", "must be an http:// or https:// URL")
                        })?,
                ),
            },
            ssrf_resolve: comma_list(&raw.ssrf_resolve, |pair| {
                let bad = || {
                    invalid(
                        "ssrf_resolve",
                        "must be host=address pairs, comma-separated",
                    )
                };
                let (host, ip) = pair.split_once('=').ok_or_else(bad)?;
                let ip = ip.trim().parse().map_err(|_| bad())?;
                Ok((host.trim().to_ascii_lowercase(), ip))
            })?,
        })
    }
}
