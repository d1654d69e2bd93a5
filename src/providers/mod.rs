//! The providers, each one folder holding all the gateway knows of it: how it signs and how its
//! webhooks verify, how its bodies normalize, what an admin enters for a tenant's connection
//! (its [`CredentialSpec`]), the event types it emits, the actions the gateway takes toward it,
//! and the simulator's example scenarios. [`REGISTRY`] lists them; the ingest path, the admin
//! API, the catalog, the admin UI, the CLI and the JSON Schema read it and name no provider.
//!
//! Adding a provider: a folder `providers/<name>/` with a type implementing [`WebhookProvider`],
//! and one line in [`REGISTRY`]. Its example webhooks go in `tests/fixtures/<name>/`, where the
//! golden test finds them (`tests/fixtures/golden/<name>_<example>.json`).

pub mod action;
pub mod catalog;
pub mod client;
pub mod credentials;
pub mod uber_health;
pub mod vectorcare;
pub mod vital;

pub use credentials::{CredentialSpec, KeyKind};

use actix_web::http::header::HeaderMap;
use chrono::{DateTime, Utc};

use crate::domain::KeyId;
use crate::normalize::lenient::Text;
use crate::normalize::Normalized;

/// The request as received: headers and the exact body bytes.
pub struct Inbound<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
}

impl Inbound<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub enum KeyMaterial {
    /// An RSA public key as PKCS#1 DER (parsed and validated with `rsa`), verified with ring,
    /// which verifies about ten times faster (README, "Performance").
    RsaPublicPkcs1(Vec<u8>),
    Secret(Vec<u8>),
}

/// One active verification key of a tenant's connection.
pub struct VerifyKey {
    pub id: KeyId,
    pub material: KeyMaterial,
}

/// How a webhook was verified, kept with the event for audit.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Verified {
    /// `rsa-pkcs1v15-sha256` or `hmac-sha256-standard-webhooks`.
    pub method: &'static str,
    pub key_id: KeyId,
    /// The provider's delivery id from the headers (Vital `svix-id`).
    pub delivery_id: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

/// Why a webhook was refused. Each maps to a status and a stable problem code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    MissingSignature(String),
    InvalidSignature(String),
    TimestampOutOfTolerance(String),
    InvalidPayload(String),
}

/// What a provider is, declared once in its `spec.rs`.
pub struct About {
    /// The name in URLs and stored rows (`vectorcare`): stable.
    pub name: &'static str,
    pub display_name: &'static str,
    /// One line on what the provider is.
    pub summary: &'static str,
    /// What a tenant's connection holds, and how each field is checked.
    pub credentials: &'static CredentialSpec,
    /// Every normalized type this provider's webhooks can become.
    pub event_types: &'static [&'static str],
    /// The gateway's calls to the provider on a tenant's behalf.
    pub actions: &'static [action::Action],
    /// The simulator's scenarios: name and what it sends (the first is the default).
    pub scenarios: &'static [(&'static str, &'static str)],
}

impl Rejection {
    /// A text field the event is keyed on: missing, empty or not a string refuses the body.
    pub fn unless_present(field: Text, key: &str) -> Result<String, Rejection> {
        field
            .0
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Rejection::InvalidPayload(format!("`{key}` is missing or not a string")))
    }
}

pub trait WebhookProvider: Send + Sync + 'static {
    fn about(&self) -> &'static About;
    fn name(&self) -> &'static str {
        self.about().name
    }
    fn display_name(&self) -> &'static str {
        self.about().display_name
    }
    fn summary(&self) -> &'static str {
        self.about().summary
    }
    fn credentials(&self) -> &'static CredentialSpec {
        self.about().credentials
    }
    fn event_types(&self) -> &'static [&'static str] {
        self.about().event_types
    }
    fn actions(&self) -> &'static [action::Action] {
        self.about().actions
    }
    fn scenarios(&self) -> &'static [(&'static str, &'static str)] {
        self.about().scenarios
    }
    /// The bodies of a scenario, in order; `None` for an unknown name.
    fn scenario(&self, name: &str) -> Option<Vec<serde_json::Value>>;
    /// Signs a body as the provider would with `material` (a private key's PEM or a secret):
    /// the headers to send.
    fn sign(&self, material: &str, body: &[u8]) -> Result<Vec<(String, String)>, String>;
    /// Headers worth keeping next to the raw body (signatures included, for replay checks).
    fn kept_headers(&self) -> &'static [&'static str];
    /// Checks the signature over the raw body, before anything parses it.
    fn verify(&self, inbound: &Inbound, keys: &[VerifyKey]) -> Result<Verified, Rejection>;
    /// Parses the verified body into the normalized form. Unknown statuses, actions and types
    /// are kept as data, never refused.
    fn normalize(&self, inbound: &Inbound, verified: &Verified) -> Result<Normalized, Rejection>;
}

/// Every provider the gateway speaks to.
pub static REGISTRY: &[&dyn WebhookProvider] = &[
    &vectorcare::VectorCare,
    &vital::Vital,
    &uber_health::UberHealth,
];

/// A provider of the registry. Only [`Provider::parse`] makes one, so an unknown name never
/// reaches a handler, a row or a label.
///
/// Stored as its name; a row naming a provider the registry no longer has fails to load rather
/// than being read as another provider.
#[derive(Clone, Copy, sea_orm::DeriveValueType)]
#[sea_orm(value_type = "String")]
pub struct Provider(&'static dyn WebhookProvider);

impl Provider {
    pub fn all() -> impl Iterator<Item = Provider> {
        REGISTRY.iter().map(|p| Provider(*p))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::all().find(|p| p.as_str() == text).ok_or_else(|| {
            let known: Vec<&str> = Self::all().map(Provider::as_str).collect();
            format!("unknown provider `{text}`; known: {}", known.join(", "))
        })
    }

    pub fn as_str(self) -> &'static str {
        self.0.name()
    }

    /// What the gateway knows of this provider.
    pub fn plugin(self) -> &'static dyn WebhookProvider {
        self.0
    }
}

impl sea_orm::TryFromU64 for Provider {
    fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
        Err(sea_orm::DbErr::ConvertFromU64("Provider"))
    }
}

impl std::str::FromStr for Provider {
    type Err = crate::domain::states::UnknownWord;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Provider::parse(text).map_err(|_| crate::domain::states::UnknownWord {
            what: "provider",
            word: text.to_owned(),
        })
    }
}

impl PartialEq for Provider {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Provider {}

impl std::hash::Hash for Provider {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Provider {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Provider::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Provider {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A provider's name, as `GET /api/v1/providers` lists them.",
            ))
            .enum_values(Some(Provider::all().map(Provider::as_str)))
            .into()
    }
}

impl utoipa::ToSchema for Provider {}
