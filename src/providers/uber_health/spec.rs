//! Uber Health as a plug-in: its connection's fields, the types it emits, the calls the gateway
//! makes to its trips API, and how the simulator plays it.

use super::actions::{plan_cancel, plan_get, TRIP};
use crate::normalize::types;
use crate::providers::action::{Action, ApiAuth};
use crate::providers::credentials::{
    CredentialSpec, Field, FieldKind, KeyKind, KeySpec, Target, IP_ALLOWLIST,
};
use crate::providers::About;

pub const TOKEN_URL: &str = "https://auth.uber.com/oauth/v2/token";

/// Uber's API base URL per environment.
pub const ENVIRONMENTS: &[(&str, &str)] = &[
    ("production", "https://api.uber.com/"),
    ("sandbox", "https://sandbox-api.uber.com/"),
];

pub static CREDENTIALS: CredentialSpec = CredentialSpec {
    keys: KeySpec {
        field: "signing_keys",
        add_field: "signing_key",
        kind: KeyKind::RawSecret,
        label: "Webhook signing keys",
        description: "The Uber app's webhook signing keys, as shown in Uber's developer \
                      dashboard (used as plain text, 16 to 1000 characters). At least one is \
                      required when the connection is created; when given, the list replaces \
                      the whole set.",
    },
    fields: &[
        Field {
            name: "client_id",
            label: "OAuth2 client id",
            description: "The Uber app's client id (client credentials, scope `health`).",
            kind: FieldKind::Text,
            target: Target::ClientId,
        },
        Field {
            name: "client_secret",
            label: "OAuth2 client secret",
            description: "The Uber app's client secret; write-only.",
            kind: FieldKind::Secret,
            target: Target::Secret,
        },
        Field {
            name: "token_url",
            label: "Token URL",
            description: "Default `https://auth.uber.com/oauth/v2/token`.",
            kind: FieldKind::Url { base: false },
            target: Target::TokenUrl,
        },
        Field {
            name: "environment",
            label: "Environment",
            description: "`production` (`https://api.uber.com/`, the default) or `sandbox` \
                          (`https://sandbox-api.uber.com/`); or give `api_base_url`.",
            kind: FieldKind::Choice(ENVIRONMENTS),
            target: Target::ApiBaseUrl,
        },
        Field {
            name: "api_base_url",
            label: "API base URL",
            description: "Overrides the environment's URL.",
            kind: FieldKind::Url { base: false },
            target: Target::ApiBaseUrl,
        },
        IP_ALLOWLIST,
    ],
    secret_context: "uber_health_client_secret",
    default_token_url: Some(TOKEN_URL),
    default_api_base_url: Some("https://api.uber.com/"),
    api: ApiAuth::ClientCredentials {
        scope: Some("health"),
    },
};

pub const EVENT_TYPES: &[&str] = types::TRANSPORT;

pub static ACTIONS: [Action; 2] = [
    Action {
        name: "get_trip",
        label: "Get the trip",
        method: "GET",
        path: "/api/v1/tenants/{tenant}/uber-health/trips/{trip}",
        description: "Read the trip from Uber: rider, pickup, destination, driver, status.",
        fields: &[],
        details: "Reads the trip (`GET /v1/health/trips/{request_id}`) with the connection's \
                  OAuth2 token; Uber's answer is `provider_response`. It carries patient data: \
                  the call is recorded (who, when, outcome), the answer is not stored.",
        subject: TRIP,
        input: None,
        plan: plan_get,
    },
    Action {
        name: "cancel_trip",
        label: "Cancel the trip",
        method: "POST",
        path: "/api/v1/tenants/{tenant}/uber-health/trips/{trip}/cancel",
        description: "Cancel the trip at Uber.",
        fields: &[],
        details: "Cancels the trip (`DELETE /v1/health/trips/{request_id}`, answered 204) with \
                  the connection's OAuth2 token. Uber then sends the trip's cancellation \
                  webhook.",
        subject: TRIP,
        input: None,
        plan: plan_cancel,
    },
];

pub static ABOUT: About = About {
    name: "uber-health",
    display_name: "Uber Health",
    summary:
        "Non-emergency rides through Uber: HMAC-signed trip status webhooks, OAuth2 trips API.",
    credentials: &CREDENTIALS,
    event_types: EVENT_TYPES,
    actions: &ACTIONS,
    scenarios: super::simulate::SCENARIOS,
};
