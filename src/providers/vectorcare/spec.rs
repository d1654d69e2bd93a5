//! VectorCare as a plug-in: its connection's fields, the types it emits, the calls the gateway
//! makes to its Open API, and how the simulator plays it.

use super::actions::{
    plan, Accept, ChangeRequest, Decline, LocationUpdate, ProposeTime, ResponseNotes, StateUpdate,
};
use crate::normalize::types;
use crate::providers::action::{input, Action, ApiAuth};
use crate::providers::credentials::{
    CredentialSpec, Field, FieldKind, KeyKind, KeySpec, Target, IP_ALLOWLIST,
};
use crate::providers::About;

pub const TOKEN_URL: &str = "https://auth.vectorcare.com/v2.0/oauth2/token";
pub const API_BASE_URL: &str = "https://hub.vectorcare.com/openapi/v2.0/";

pub static CREDENTIALS: CredentialSpec = CredentialSpec {
    keys: KeySpec {
        field: "public_keys",
        add_field: "public_key_pem",
        kind: KeyKind::RsaPublicKey,
        label: "Public keys (PEM)",
        description: "RSA public keys in PEM (`-----BEGIN PUBLIC KEY-----`), at least 2048 bits, \
                      as copied from VectorCare's settings. At least one is required when the \
                      connection is created; when given, the list replaces the whole key set.",
    },
    fields: &[
        Field {
            name: "client_id",
            label: "OAuth2 client id",
            description: "OAuth2 client id for VectorCare's Open API.",
            kind: FieldKind::Text,
            target: Target::ClientId,
        },
        Field {
            name: "client_secret",
            label: "OAuth2 client secret",
            description: "OAuth2 client secret; write-only.",
            kind: FieldKind::Secret,
            target: Target::Secret,
        },
        Field {
            name: "token_url",
            label: "Token URL",
            description: "Default `https://auth.vectorcare.com/v2.0/oauth2/token`.",
            kind: FieldKind::Url { base: false },
            target: Target::TokenUrl,
        },
        Field {
            name: "api_base_url",
            label: "API base URL",
            description: "Default `https://hub.vectorcare.com/openapi/v2.0/` (UAT: \
                          `https://hub-uat.vectorcare.com/openapi/v2.0/`).",
            kind: FieldKind::Url { base: true },
            target: Target::ApiBaseUrl,
        },
        IP_ALLOWLIST,
    ],
    secret_context: "vectorcare_client_secret",
    default_token_url: Some(TOKEN_URL),
    default_api_base_url: Some(API_BASE_URL),
    api: ApiAuth::ClientCredentials { scope: None },
};

pub const EVENT_TYPES: &[&str] = types::TRANSPORT;

const REQUEST: Option<(&str, &str)> = Some(("request", "VectorCare service_request_id"));

pub static ACTIONS: [Action; 6] = [
    Action {
        name: "accept",
        label: "Accept",
        method: "POST",
        path: "/api/v1/tenants/{tenant}/vectorcare/requests/{request}/accept",
        description: "Accept a broadcast request.",
        fields: &["response_notes"],
        details: "Accepts a VectorCare service request broadcast to this tenant \
                  (`PUT requests/{id}/accept/`). `response_notes` is optional, at most 450 \
                  characters. Send `{}` for none.",
        subject: REQUEST,
        input: Some(input::<ResponseNotes>),
        plan: plan::<Accept>,
    },
    Action {
        name: "decline",
        label: "Decline",
        method: "POST",
        path: "/api/v1/tenants/{tenant}/vectorcare/requests/{request}/decline",
        description: "Decline a broadcast request.",
        fields: &["response_notes"],
        details: "Declines a VectorCare service request broadcast to this tenant \
                  (`PUT requests/{id}/decline/`).",
        subject: REQUEST,
        input: Some(input::<ResponseNotes>),
        plan: plan::<Decline>,
    },
    Action {
        name: "state",
        label: "Report a state",
        method: "POST",
        path: "/api/v1/tenants/{tenant}/vectorcare/requests/{request}/state",
        description: "Report the transport's state (en route, arrived, on board, ...).",
        fields: &["name", "timestamp"],
        details: "Reports progress on an assigned request (`POST requests/{id}/state/`): a known \
                  state name and when it happened (UTC, not in the future, at most 7 days ago).",
        subject: REQUEST,
        input: Some(input::<StateUpdate>),
        plan: plan::<StateUpdate>,
    },
    Action {
        name: "locations",
        label: "Report locations",
        method: "POST",
        path: "/api/v1/tenants/{tenant}/vectorcare/requests/{request}/locations",
        description: "Report the vehicle's positions.",
        fields: &["locations"],
        details: "Sends the vehicle's positions (`POST requests/{id}/locations/`): 1 to 200 \
                  points, each with `lat`, `lng`, `alt` and `timestamp` (Unix seconds, not in \
                  the future, at most 7 days ago).",
        subject: REQUEST,
        input: Some(input::<LocationUpdate>),
        plan: plan::<LocationUpdate>,
    },
    Action {
        name: "best_time",
        label: "Propose a time",
        method: "POST",
        path: "/api/v1/tenants/{tenant}/vectorcare/requests/{request}/best-time",
        description: "Propose the best pickup time for a broadcast.",
        fields: &["proposed_agreed_dt"],
        details: "Proposes a pickup time for a request (`PUT requests/{id}/best-time/`), in UTC.",
        subject: REQUEST,
        input: Some(input::<ProposeTime>),
        plan: plan::<ProposeTime>,
    },
    Action {
        name: "change_request",
        label: "Request a change",
        method: "POST",
        path: "/api/v1/tenants/{tenant}/vectorcare/requests/{request}/change-request",
        description: "Ask to change the agreed time of an assigned request.",
        fields: &["agreed_dt", "change_reason"],
        details: "Asks to change the agreed time (`POST requests/{id}/change-request/`), with a \
                  reason of at most 450 characters.",
        subject: REQUEST,
        input: Some(input::<ChangeRequest>),
        plan: plan::<ChangeRequest>,
    },
];

pub static ABOUT: About = About {
    name: "vectorcare",
    display_name: "VectorCare",
    summary: "Medical transport marketplace: RSA-signed webhooks, OAuth2 Open API.",
    credentials: &CREDENTIALS,
    event_types: EVENT_TYPES,
    actions: &ACTIONS,
    scenarios: super::simulate::SCENARIOS,
};
