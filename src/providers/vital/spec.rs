//! Vital / Junction as a plug-in: its connection's fields, the types it emits, the call the
//! gateway makes to its API, and how the simulator plays it.

use super::actions::{plan_resend, ResendEvents};
use crate::normalize::types;
use crate::providers::action::{input, Action, ApiAuth};
use crate::providers::credentials::{
    CredentialSpec, Field, FieldKind, KeyKind, KeySpec, Target, IP_ALLOWLIST,
};
use crate::providers::About;

/// Vital / Junction API base URL per region.
pub const REGIONS: &[(&str, &str)] = &[
    ("us", "https://api.us.junction.com/"),
    ("eu", "https://api.eu.junction.com/"),
    ("us-sandbox", "https://api.sandbox.us.junction.com/"),
    ("eu-sandbox", "https://api.sandbox.eu.junction.com/"),
];

pub static CREDENTIALS: CredentialSpec = CredentialSpec {
    keys: KeySpec {
        field: "signing_secrets",
        add_field: "signing_secret",
        kind: KeyKind::StandardWebhooksSecret,
        label: "Webhook signing secrets",
        description: "Webhook signing secrets `whsec_...` from Vital's dashboard. At least one is \
                      required when the connection is created; when given, the list replaces \
                      the whole set.",
    },
    fields: &[
        Field {
            name: "api_key",
            label: "API key",
            description: "API key for Vital's API (`X-Vital-API-Key`); write-only.",
            kind: FieldKind::Secret,
            target: Target::Secret,
        },
        Field {
            name: "region",
            label: "Region",
            description: "`us`, `eu`, `us-sandbox` or `eu-sandbox` (default `us`); or give \
                          `api_base_url`.",
            kind: FieldKind::Choice(REGIONS),
            target: Target::ApiBaseUrl,
        },
        Field {
            name: "api_base_url",
            label: "API base URL",
            description: "Overrides the region's URL.",
            kind: FieldKind::Url { base: false },
            target: Target::ApiBaseUrl,
        },
        IP_ALLOWLIST,
    ],
    secret_context: "vital_api_key",
    default_token_url: None,
    default_api_base_url: Some("https://api.us.junction.com/"),
    api: ApiAuth::ApiKeyHeader("x-vital-api-key"),
};

pub const EVENT_TYPES: &[&str] = &[
    types::LAB_ORDER_CREATED,
    types::LAB_ORDER_UPDATED,
    types::LAB_APPOINTMENT_CREATED,
    types::LAB_APPOINTMENT_UPDATED,
    types::LAB_RESULT_CRITICAL,
    types::LAB_OTHER,
];

pub static ACTIONS: [Action; 1] = [Action {
    name: "resend_events",
    label: "Resend missed webhooks",
    method: "POST",
    path: "/api/v1/tenants/{tenant}/vital/resend-events",
    description: "Ask Vital to send again the webhooks of some orders, or of a time range.",
    fields: &["order_ids", "start_at", "end_at"],
    details: "Asks Vital to replay the latest webhook of the given orders \
              (`POST /v3/order/resend_events` with the connection's API key), to recover events \
              missed while an endpoint was down.",
    subject: None,
    input: Some(input::<ResendEvents>),
    plan: plan_resend,
}];

pub static ABOUT: About = About {
    name: "vital",
    display_name: "Vital / Junction",
    summary: "Lab testing and at-home phlebotomy: Svix-signed webhooks, API key.",
    credentials: &CREDENTIALS,
    event_types: EVENT_TYPES,
    actions: &ACTIONS,
    scenarios: super::simulate::SCENARIOS,
};
