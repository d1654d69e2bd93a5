//! Where a provider's webhook becomes a stored event: resolve the tenant and its keys, check
//! the source address and the rate limit ([`Ingest::admit`]), then verify the signature over the
//! raw body, normalize, and hand the record to the outbox, answering after the commit
//! ([`Ingest::store`]). The HTTP routes are `crate::web::webhooks`.

pub mod connections;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use chrono::Utc;
use sea_orm::DatabaseConnection;
use serde_json::{json, Map, Value};

use crate::crypto::payload::{self, PayloadRef};
use crate::crypto::Cipher;
use crate::domain::{EventId, TenantId};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::normalize::stored_cloud_event;
use crate::outbox::{Outcome, Record, Refused, Sealed, Writer};
use crate::providers::{Inbound, Provider, Rejection};
use crate::rate_limit::KeyedLimiter;
use crate::store::data_key;
use connections::{ConnectionCache, Resolved, TenantRef};

pub struct Ingest {
    db: DatabaseConnection,
    cipher: Arc<Cipher>,
    connections: ConnectionCache,
    limits: Limits,
    outbox: Writer,
    metrics: Arc<Metrics>,
}

/// Who may spend what: a tenant's quota is spent only by webhooks that verified, so nobody
/// without its key can make its genuine webhooks answer 429; failed verifications have their own
/// budget per source address.
pub struct Limits {
    pub per_tenant: KeyedLimiter<(TenantId, Provider)>,
    pub failures_per_address: KeyedLimiter<IpAddr>,
}

/// A webhook whose tenant accepts it from this address now; its body is read next.
pub struct Admitted {
    provider: Provider,
    resolved: Arc<Resolved>,
}

impl Admitted {
    /// The tenant whose URL the webhook came to.
    pub fn tenant_id(&self) -> &TenantId {
        &self.resolved.tenant_id
    }
}

impl Ingest {
    pub fn new(
        db: DatabaseConnection,
        cipher: Arc<Cipher>,
        connections: ConnectionCache,
        limits: Limits,
        outbox: Writer,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            db,
            cipher,
            connections,
            limits,
            outbox,
            metrics,
        }
    }

    /// Keys, tenants or connections may have changed: the next webhook is verified against the
    /// new ones.
    pub fn forget_connections(&self) {
        self.connections.clear();
    }

    /// The checks that need no body: a known provider, a tenant with a connection to it, enabled,
    /// the caller's address on its allowlist.
    pub async fn admit(
        &self,
        provider_name: &str,
        reference: TenantRef,
        client_ip: impl FnOnce() -> Option<IpAddr>,
    ) -> Result<Admitted, ApiError> {
        let provider = Provider::parse(provider_name).map_err(ApiError::UnknownProvider)?;
        self.metrics
            .webhooks_received
            .get_or_create(&Metrics::provider(provider.as_str()))
            .inc();
        let resolved = self
            .connections
            .resolve(&self.db, &self.cipher, provider, &reference)
            .await?
            .ok_or(ApiError::TenantNotFound)?;
        if resolved.disabled {
            return Err(ApiError::TenantDisabled);
        }
        // The caller's address is looked up only for a tenant that restricts it.
        if !resolved.allowlist.is_empty() {
            let ip = client_ip();
            if !ip.is_some_and(|ip| resolved.allowlist.iter().any(|n| n.contains(&ip))) {
                return Err(ApiError::SourceIpNotAllowed(
                    ip.map_or_else(|| "(unknown)".to_owned(), |i| i.to_string()),
                ));
            }
        }
        Ok(Admitted { provider, resolved })
    }

    /// Verifies, normalizes and stores an admitted webhook; answers after the commit. A webhook
    /// that verified spends its tenant's quota; one that did not spends its source address's.
    pub async fn store(
        &self,
        admitted: Admitted,
        headers: &HeaderMap,
        body: &[u8],
        client_ip: impl FnOnce() -> Option<IpAddr>,
    ) -> Result<Outcome, ApiError> {
        let Admitted { provider, resolved } = admitted;
        let handler = provider.plugin();
        let inbound = Inbound {
            headers,
            body,
            now: Utc::now(),
        };
        let verified = match handler.verify(&inbound, &resolved.keys) {
            Ok(v) => v,
            Err(r) => {
                if let Some(ip) = client_ip() {
                    self.limits.failures_per_address.check(&ip)?;
                }
                return Err(rejection(r));
            }
        };
        self.limits
            .per_tenant
            .check(&(resolved.tenant_id.clone(), provider))?;
        let normalized = handler.normalize(&inbound, &verified).map_err(rejection)?;
        normalized
            .check_storable()
            .map_err(ApiError::InvalidPayload)?;
        // JSON was parsed above, so the body is valid UTF-8 and stored byte for byte.
        let raw_body = String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::InvalidPayload("the body is not UTF-8".into()))?;
        let mut kept = Map::new();
        for name in handler.kept_headers() {
            if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok()) {
                kept.insert((*name).to_owned(), Value::String(v.to_owned()));
            }
        }
        let id = EventId::generate();
        let cloud_event = stored_cloud_event(
            id.as_str(),
            &resolved.tenant_id,
            provider.as_str(),
            &normalized,
        )
        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
        let raw_headers = Value::Object(kept).to_string();
        let sealed = seal(
            &resolved.data_key,
            &id,
            &cloud_event,
            &raw_headers,
            &raw_body,
        );
        let record = Record {
            cloud_event,
            id,
            tenant_id: resolved.tenant_id.clone(),
            provider,
            normalized,
            raw_body,
            raw_headers,
            verification: json!(verified).to_string(),
            received_at: inbound.now,
            sealed,
        };
        let outcome = match self.outbox.submit(record).await {
            Ok(outcome) => outcome,
            Err(Refused {
                record: Some(mut record),
                ..
            }) => {
                // The tenant's data key was destroyed after this process cached it: seal
                // again under the tenant's live key, once.
                self.connections.clear();
                let key = data_key::active(&self.db, &self.cipher, &record.tenant_id).await?;
                record.sealed = seal(
                    &key,
                    &record.id,
                    &record.cloud_event,
                    &record.raw_headers,
                    &record.raw_body,
                );
                self.outbox
                    .submit(*record)
                    .await
                    .map_err(|r| ApiError::from(r.error))?
            }
            Err(refused) => return Err(ApiError::from(refused.error)),
        };
        let label = Metrics::provider(provider.as_str());
        if outcome.duplicate {
            self.metrics.events_duplicate.get_or_create(&label).inc();
        } else {
            self.metrics.events_stored.get_or_create(&label).inc();
            if outcome.stale {
                self.metrics.events_stale.get_or_create(&label).inc();
            }
        }
        Ok(outcome)
    }
}

fn seal(
    key: &data_key::ActiveKey,
    id: &EventId,
    cloud_event: &str,
    raw_headers: &str,
    raw_body: &str,
) -> Sealed {
    let parts = PayloadRef {
        cloud_event,
        raw_headers,
        raw_body,
    };
    Sealed {
        key_id: key.id.clone(),
        blob: payload::seal(&key.key, id.as_str(), parts),
    }
}

fn rejection(r: Rejection) -> ApiError {
    match r {
        Rejection::MissingSignature(m) => ApiError::MissingSignature(m),
        Rejection::InvalidSignature(m) => ApiError::InvalidSignature(m),
        Rejection::TimestampOutOfTolerance(m) => ApiError::TimestampOutOfTolerance(m),
        Rejection::InvalidPayload(m) => ApiError::InvalidPayload(m),
    }
}
