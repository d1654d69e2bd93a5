//! The catalog: what `GET /api/v1/providers` answers, built from the registry. The admin UI
//! renders connection forms and provider actions from it.

use serde::Serialize;
use utoipa::ToSchema;

pub use super::action::Action;
use super::credentials::{FieldKind, KeyKind};
use super::Provider;

/// One provider as the catalog shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderInfo {
    #[schema(value_type = String, example = "vectorcare")]
    pub name: Provider,
    pub display_name: &'static str,
    pub summary: &'static str,
    /// The URLs a tenant's webhooks may be posted to (`{tenant}`: slug or id).
    pub webhook_urls: Vec<String>,
    /// The connection's fields, in the order the form shows them (the keys first).
    pub credential_fields: Vec<CredentialField>,
    /// The field of `POST .../providers/{provider}/keys`.
    pub add_key_field: &'static str,
    pub key_kind: KeyKind,
    pub event_types: &'static [&'static str],
    pub actions: &'static [Action],
    /// The simulator's scenarios (`gateway simulate {provider} --scenario NAME`).
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialField {
    pub name: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    /// `keys` (a list of verification keys), `text`, `secret`, `url`, `choice` or `cidr_list`.
    pub kind: &'static str,
    /// Write-only: stored sealed and shown only as a masked hint.
    pub secret: bool,
    /// Needed when the connection is created.
    pub required_on_create: bool,
    /// For `choice`: the allowed values.
    pub choices: Vec<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
}

impl ProviderInfo {
    pub fn of(provider: Provider, public_url: &str) -> Self {
        let p = provider.plugin();
        let spec = p.credentials();
        let base = public_url.trim_end_matches('/');
        let mut fields = vec![CredentialField {
            name: spec.keys.field,
            label: spec.keys.label,
            description: spec.keys.description,
            kind: "keys",
            secret: spec.keys.kind != KeyKind::RsaPublicKey,
            required_on_create: true,
            choices: Vec::new(),
        }];
        fields.extend(spec.fields.iter().map(|f| CredentialField {
            name: f.name,
            label: f.label,
            description: f.description,
            kind: match f.kind {
                FieldKind::Text => "text",
                FieldKind::Secret => "secret",
                FieldKind::Url { .. } => "url",
                FieldKind::Choice(_) => "choice",
                FieldKind::CidrList => "cidr_list",
            },
            secret: matches!(f.kind, FieldKind::Secret),
            required_on_create: false,
            choices: match f.kind {
                FieldKind::Choice(c) => c.iter().map(|(n, _)| *n).collect(),
                _ => Vec::new(),
            },
        }));
        Self {
            name: provider,
            display_name: p.display_name(),
            summary: p.summary(),
            webhook_urls: vec![
                format!("{base}/webhooks/{provider}/{{tenant}}"),
                format!("{base}/webhooks/{provider}?customer_id={{customer_id}}"),
            ],
            credential_fields: fields,
            add_key_field: spec.keys.add_field,
            key_kind: spec.keys.kind,
            event_types: p.event_types(),
            actions: p.actions(),
            scenarios: p
                .scenarios()
                .iter()
                .map(|(name, description)| Scenario { name, description })
                .collect(),
        }
    }
}

/// The normalized event's JSON Schema with its registry-driven parts set from the registry: the
/// provider names (in `provider` and in `source`) and the event types. The rest of `base` (the
/// committed `openapi/normalized-event.schema.json`) is kept as written.
pub fn normalized_event_schema(mut base: serde_json::Value) -> serde_json::Value {
    let names: Vec<&str> = Provider::all().map(Provider::as_str).collect();
    let mut types: Vec<&str> = Vec::new();
    for p in Provider::all() {
        for t in p.plugin().event_types() {
            if !types.contains(t) {
                types.push(t);
            }
        }
    }
    let props = &mut base["properties"];
    props["provider"] = serde_json::json!({ "enum": names });
    props["type"]["enum"] = serde_json::json!(types);
    props["source"]["pattern"] = serde_json::json!(format!(
        "^/providers/({})/tenants/tn_[0-9a-zA-Z]+$",
        names.join("|")
    ));
    base
}
