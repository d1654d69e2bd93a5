//! What verifying a webhook needs about its tenant, cached briefly so the hot path reads the
//! database once per tenant and provider, not once per request. Admin mutations clear the cache
//! of their process at once; other replicas see changes within `connection_cache_ttl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;

use crate::crypto::Cipher;
use crate::domain::TenantId;
use crate::error::ApiError;
use crate::providers::Provider;
use crate::providers::{KeyMaterial, VerifyKey};
use crate::store::{data_key, provider_connection, provider_key, tenant};

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum TenantRef {
    /// `/webhooks/{provider}/{tenant}`: slug or id.
    Path(String),
    /// `/webhooks/{provider}?customer_id=...`.
    CustomerId(String),
}

pub struct Resolved {
    pub tenant_id: TenantId,
    pub disabled: bool,
    pub allowlist: Vec<ipnet::IpNet>,
    pub keys: Vec<VerifyKey>,
    /// What the tenant's new events are sealed with.
    pub data_key: Arc<data_key::ActiveKey>,
}

type Entry = (Instant, Option<Arc<Resolved>>);

pub struct ConnectionCache {
    ttl: Duration,
    entries: Mutex<HashMap<(Provider, TenantRef), Entry>>,
}

impl ConnectionCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn clear(&self) {
        if let Ok(mut e) = self.entries.lock() {
            e.clear();
        }
    }

    /// `None`: no such tenant, or no connection to this provider.
    pub async fn resolve(
        &self,
        db: &DatabaseConnection,
        cipher: &Cipher,
        provider: Provider,
        reference: &TenantRef,
    ) -> Result<Option<Arc<Resolved>>, ApiError> {
        let key = (provider, reference.clone());
        if let Ok(entries) = self.entries.lock() {
            if let Some((at, value)) = entries.get(&key) {
                if at.elapsed() < self.ttl {
                    return Ok(value.clone());
                }
            }
        }
        let value = load(db, cipher, provider, reference).await?.map(Arc::new);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 100_000 {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), value.clone()));
        }
        Ok(value)
    }
}

async fn load(
    db: &DatabaseConnection,
    cipher: &Cipher,
    provider: Provider,
    reference: &TenantRef,
) -> Result<Option<Resolved>, ApiError> {
    let tenant = match reference {
        TenantRef::Path(r) => tenant::find_by_ref(db, r).await?,
        TenantRef::CustomerId(c) if c.is_empty() => None,
        TenantRef::CustomerId(c) => tenant::find_by_customer_id(db, c).await?,
    };
    let Some(tenant) = tenant else {
        return Ok(None);
    };
    let Some(conn) = provider_connection::find_for_tenant(db, &tenant.id, provider).await? else {
        return Ok(None);
    };
    let secrets = provider.plugin().credentials().keys.kind;
    let mut keys = Vec::new();
    for k in provider_key::list_for_connection(db, &tenant.id, &conn.id).await? {
        let material = match (&k.public_pem, &k.secret_ciphertext) {
            (Some(pem), _) => RsaPublicKey::from_public_key_pem(pem).ok().and_then(|key| {
                use rsa::pkcs1::EncodeRsaPublicKey;
                let pkcs1_der = key.to_pkcs1_der().ok()?.as_bytes().to_vec();
                Some(KeyMaterial::RsaPublicPkcs1(pkcs1_der))
            }),
            // The provider says what its secrets are: a `whsec_` key, or a string used as is.
            (None, Some(sealed)) => cipher
                .open(sealed, &format!("provider_key:{}", k.id))
                .ok()
                .and_then(|s| secrets.secret_material(s.expose_secret())),
            _ => None,
        };
        match material {
            Some(material) => keys.push(VerifyKey { id: k.id, material }),
            None => tracing::error!(key = %k.id, "a stored verification key could not be loaded"),
        }
    }
    let allowlist = serde_json::from_value::<Vec<String>>(conn.ip_allowlist)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let data_key = Arc::new(data_key::active(db, cipher, &tenant.id).await?);
    Ok(Some(Resolved {
        tenant_id: tenant.id,
        disabled: tenant.disabled,
        allowlist,
        keys,
        data_key,
    }))
}
