//! How long patient data is kept: the default retention of a tenant's payloads and the purger's
//! pace, read from the raw layers.

use std::time::Duration;

use super::{invalid, parse_duration, ConfigError, RawSettings};

/// The bounds of a retention period, in days: at least one day (a delivery's retries finish
/// within it), at most ten years.
pub const RETENTION_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;

#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// Days a payload is kept, for a tenant that sets none.
    pub default_days: u32,
    /// How often the purger looks for payloads past retention.
    pub interval: Duration,
    /// Events purged per transaction: small enough not to hold the write lock long.
    pub batch: u64,
}

impl RetentionSettings {
    pub(super) fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        if !RETENTION_DAYS.contains(&raw.retention_days) {
            return Err(invalid("retention_days", "must be 1 to 3650 days"));
        }
        let interval = parse_duration("purge_interval", &raw.purge_interval)?;
        if interval < Duration::from_secs(1) {
            return Err(invalid("purge_interval", "must be at least 1s"));
        }
        if !(1..=10_000).contains(&raw.purge_batch) {
            return Err(invalid("purge_batch", "must be 1 to 10000 events"));
        }
        Ok(Self {
            default_days: raw.retention_days,
            interval,
            batch: raw.purge_batch,
        })
    }
}
