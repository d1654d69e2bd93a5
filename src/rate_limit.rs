//! Keyed rate limits (governor, GCRA): per token on the admin API, per tenant and provider on
//! ingest (verified webhooks only), per source address for failed verifications. Over the limit:
//! 429 with `Retry-After`.

use std::hash::Hash;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
    /// Checks since keys at full capacity were last forgotten: keys a caller chooses (source
    /// addresses) must not grow the map without end.
    checks: std::sync::atomic::AtomicU32,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self::with_quota(Quota::per_second(per_second).allow_burst(burst))
    }

    pub fn per_minute(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        Self::with_quota(Quota::per_minute(per_minute).allow_burst(burst))
    }

    fn with_quota(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            checks: std::sync::atomic::AtomicU32::new(0),
        }
    }

    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        let n = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % 4096 == 4095 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited {
                retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
            }
        })
    }
}
