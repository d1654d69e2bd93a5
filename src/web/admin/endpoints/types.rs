//! What the endpoint routes take and answer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{
    EndpointId, EndpointKind, EndpointUrl, Ordering, PayloadMode, SecretId, TenantId,
};
use crate::store::{endpoint, endpoint_headers};

/// A tenant's callback endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Endpoint {
    pub id: EndpointId,
    pub tenant_id: TenantId,
    #[schema(value_type = String, example = "https://dispatch.example.com/hooks/gateway")]
    pub url: EndpointUrl,
    pub description: String,
    /// Event types delivered here (`*` suffix matches a prefix, e.g. `transport.*`); empty means all.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Extra headers sent with every delivery: names with a masked hint of each value (values
    /// are sealed at rest and never shown again).
    #[schema(example = json!({"Authorization": "****c3Rk"}))]
    pub headers: BTreeMap<String, String>,
    /// Deliveries per second at most; `null` for no limit.
    pub rate_limit_per_second: Option<u32>,
    /// Why the gateway disabled the endpoint, when it did.
    pub disabled_reason: Option<String>,
    /// Also receive events marked stale (older than one already seen for their subject).
    pub include_stale: bool,
    pub ordering: Ordering,
    pub payload_mode: PayloadMode,
    /// Deliveries in flight at once, per gateway process; `null`: the gateway's default.
    pub max_concurrency: Option<u32>,
    /// Since when every attempt has failed; `null` when the last one succeeded.
    pub failing_since: Option<DateTime<Utc>>,
    /// `push`: events are POSTed to `url`; `pull`: the receiver reads them at `url` (the API)
    /// with an endpoint token, and commits its cursor.
    pub kind: EndpointKind,
    /// Patient data is sent only after the endpoint answered a signed
    /// `gateway.endpoint.handshake` event 2xx (on creation, re-enable and URL change).
    pub handshake: bool,
    /// When the endpoint last answered its handshake; `null` while it is awaited.
    pub verified_at: Option<DateTime<Utc>>,
    /// A `gateway.endpoint.heartbeat` event (with the sequence's last number) after this many
    /// minutes without anything sent; `null`: none.
    pub heartbeat_minutes: Option<u32>,
    /// A failed delivery is marked `superseded` instead of retried once a newer event of its
    /// subject was delivered here.
    pub supersede: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<endpoint::Model> for Endpoint {
    fn from(m: endpoint::Model) -> Self {
        Self {
            id: m.id,
            tenant_id: m.tenant_id,
            url: m.url,
            description: m.description,
            event_types: serde_json::from_value(m.event_types).unwrap_or_default(),
            enabled: m.enabled,
            headers: endpoint_headers::hints(&m.headers),
            rate_limit_per_second: m.rate_limit_per_second.and_then(|n| u32::try_from(n).ok()),
            disabled_reason: m.disabled_reason,
            include_stale: m.include_stale,
            ordering: m.ordering,
            payload_mode: m.payload_mode,
            max_concurrency: m.max_concurrency.and_then(|n| u32::try_from(n).ok()),
            failing_since: m.failing_since,
            kind: m.kind,
            handshake: m.handshake,
            verified_at: m.verified_at,
            heartbeat_minutes: m.heartbeat_minutes.and_then(|n| u32::try_from(n).ok()),
            supersede: m.supersede,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// The endpoint with its signing secret: shown once, at creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointCreated {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_...`: verify our `webhook-signature` with it. Not shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub signing_secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub data: Vec<Endpoint>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// https URL (http only when the gateway allows it); required for a push endpoint, absent
    /// for a pull endpoint (its URL is the API route its receiver reads).
    #[serde(default)]
    pub url: Option<String>,
    /// `push` (default) or `pull`.
    #[serde(default)]
    pub kind: EndpointKind,
    /// Require a handshake before patient data is sent (push endpoints; default false).
    #[serde(default)]
    pub handshake: bool,
    /// A heartbeat after this many minutes (1 to 1440) without anything sent; `0` or absent:
    /// none (push endpoints).
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    pub heartbeat_minutes: Option<u32>,
    /// Mark an older failed delivery `superseded` instead of retrying it once a newer event of
    /// its subject was delivered (push endpoints, not with `fifo_subject`; default false).
    #[serde(default)]
    pub supersede: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Extra headers sent with every delivery (credentials welcome: values are sealed at rest
    /// and answered only as a masked hint).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Deliveries per second at most (`0` or absent: no limit).
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    pub rate_limit_per_second: Option<u32>,
    /// Also receive stale events (default false).
    #[serde(default)]
    pub include_stale: bool,
    #[serde(default)]
    pub ordering: Ordering,
    /// `full` (default): the normalized event with its patient data; `minimal`: ids, type,
    /// status, times and links, and `dataref` to read the rest through the API.
    #[serde(default)]
    pub payload_mode: PayloadMode,
    /// Deliveries in flight at once (1 to 100), per gateway process; `0` or absent: the
    /// gateway's default.
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    pub max_concurrency: Option<u32>,
}

fn yes() -> bool {
    true
}

/// Fields to change; absent fields stay. `rate_limit_per_second: 0` removes the limit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Enabling clears `disabled_reason`.
    pub enabled: Option<bool>,
    /// Replaces every header. A value sent back exactly as its masked hint keeps the stored
    /// value, so what was read can be returned without erasing a credential.
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    pub rate_limit_per_second: Option<u32>,
    pub include_stale: Option<bool>,
    pub ordering: Option<Ordering>,
    pub payload_mode: Option<PayloadMode>,
    /// `0` returns to the gateway's default.
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    pub max_concurrency: Option<u32>,
    /// Turning it on asks for a new handshake.
    pub handshake: Option<bool>,
    /// `0` removes the heartbeat.
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_u32")]
    pub heartbeat_minutes: Option<u32>,
    pub supersede: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps signing, `0s` to `30d`, e.g. `24h` (default: the
    /// gateway's `endpoint_secret_grace`); `0s` retires it at once.
    pub grace_period: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretRotated {
    pub secret_id: SecretId,
    /// The new `whsec_...`, shown once.
    pub signing_secret: String,
    /// Until when the previous secrets still sign (a grace period never extends an earlier end).
    pub previous_secrets_expire_at: DateTime<Utc>,
}

/// A signing secret as listed: never the secret itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretInfo {
    pub id: SecretId,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    /// `null` while it is the current secret.
    pub expires_at: Option<DateTime<Utc>>,
}
