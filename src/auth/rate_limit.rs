//! Per-token rate limit of the admin API (governor, GCRA). Over the limit: 429 with Retry-After.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::TokenId;
use crate::error::ApiError;

pub struct AdminRateLimiter {
    limiter: DefaultKeyedRateLimiter<TokenId>,
    clock: DefaultClock,
}

impl AdminRateLimiter {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    pub fn check(&self, token: &TokenId) -> Result<(), ApiError> {
        self.limiter.check_key(token).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }
}
