//! Endpoints as the workers send to them: the row, its active secrets' keys and its headers,
//! cached for a second (the hot path reads an endpoint once, not once per delivery), and each
//! endpoint's own rate limiter.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sea_orm::{DatabaseConnection, DbErr};
use secrecy::ExposeSecret;

use crate::crypto::Cipher;
use crate::domain::{EndpointId, SigningSecret};
use crate::store::{endpoint, endpoint_headers, endpoint_secret, tenant};

const TTL: Duration = Duration::from_secs(1);

/// An endpoint as the workers send to it: its row, its active secrets' keys, its headers.
pub struct Snapshot {
    pub ep: endpoint::Model,
    /// The endpoint's tenant is disabled: its deliveries wait, kept, until it is enabled again.
    pub tenant_disabled: bool,
    pub keys: Vec<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

type Limiters = HashMap<EndpointId, (u32, Arc<DefaultDirectRateLimiter>)>;

pub struct Endpoints {
    cipher: Arc<Cipher>,
    cache: Mutex<HashMap<EndpointId, (Instant, Arc<Snapshot>)>>,
    limits: Mutex<Limiters>,
}

impl Endpoints {
    pub fn new(cipher: Arc<Cipher>) -> Self {
        Self {
            cipher,
            cache: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
        }
    }

    /// The endpoint with its decrypted keys. Admin changes and failure transitions drop the
    /// entry, so a change is seen by the next delivery.
    pub async fn snapshot(
        &self,
        db: &DatabaseConnection,
        id: &EndpointId,
    ) -> Result<Option<Arc<Snapshot>>, DbErr> {
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, snap)) = cache.get(id) {
                if at.elapsed() < TTL {
                    return Ok(Some(snap.clone()));
                }
            }
        }
        let Some(ep) = endpoint::find_by_id_unscoped(db, id).await? else {
            return Ok(None);
        };
        let mut keys = Vec::new();
        for s in endpoint_secret::active_for_endpoint(db, &ep.id, Utc::now()).await? {
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
        let headers = endpoint_headers::open(&self.cipher, &ep.id, &ep.headers);
        let tenant_disabled = tenant::is_disabled(db, &ep.tenant_id).await?;
        let snap = Arc::new(Snapshot {
            ep,
            tenant_disabled,
            keys,
            headers,
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(id.clone(), (Instant::now(), snap.clone()));
        Ok(Some(snap))
    }

    /// Drops every cached endpoint, e.g. after an admin change (URL, headers, secrets, enabled).
    pub fn forget_all(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn forget(&self, id: &EndpointId) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// `Err(wait)` when the endpoint's rate limit says wait.
    pub fn rate(&self, ep: &endpoint::Model) -> Result<(), Duration> {
        let Some(rate) = ep
            .rate_limit_per_second
            .and_then(|n| u32::try_from(n).ok())
            .and_then(NonZeroU32::new)
        else {
            return Ok(());
        };
        let limiter = {
            let mut map = self.limits.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = || Arc::new(RateLimiter::direct(Quota::per_second(rate)));
            let entry = map
                .entry(ep.id.clone())
                .or_insert_with(|| (rate.get(), fresh()));
            if entry.0 != rate.get() {
                *entry = (rate.get(), fresh());
            }
            entry.1.clone()
        };
        limiter.check().map_err(|not_until| {
            use governor::clock::Clock;
            not_until.wait_time_from(governor::clock::DefaultClock::default().now())
        })
    }
}
