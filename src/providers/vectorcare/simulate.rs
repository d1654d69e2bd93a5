//! VectorCare as the simulator plays it: example webhooks signed with a private key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;

const BLS: &str = include_str!("../../../tests/fixtures/vectorcare/bls_broadcast_received.json");

/// `X-VectorCare-Signature` for a body: base64 of RSA PKCS#1 v1.5 over SHA-256.
pub fn sign(private_key_pem: &str, body: &[u8]) -> Result<String, String> {
    let key = RsaPrivateKey::from_pkcs8_pem(private_key_pem)
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            RsaPrivateKey::from_pkcs1_pem(private_key_pem)
        })
        .map_err(|e| format!("not an RSA private key in PEM: {e}"))?;
    let signature = SigningKey::<Sha256>::new(key).sign(body);
    Ok(STANDARD.encode(signature.to_bytes()))
}

pub const SCENARIOS: &[(&str, &str)] = &[
    // The first is the default.
    ("lifecycle", "broadcast, accepted, data updated, completed"),
    ("broadcast", "one BROADCAST_RECEIVED (AVAILABLE)"),
    (
        "withdrawn",
        "broadcast, then BROADCAST_CANCELED (UNAVAILABLE, data null)",
    ),
];

/// The bodies of a scenario, in sending order. Each run gets fresh ids, so it can be repeated.
pub fn scenario(name: &str) -> Option<Vec<Value>> {
    let base: Value = serde_json::from_str(BLS).ok()?;
    let request =
        format!("VC-SIM{}", &uuid::Uuid::now_v7().simple().to_string()[20..]).to_uppercase();
    let steps: &[(&str, &str)] = match name {
        "broadcast" => &[("AVAILABLE", "BROADCAST_RECEIVED")],
        "lifecycle" => &[
            ("AVAILABLE", "BROADCAST_RECEIVED"),
            ("ASSIGNED", "BROADCAST_ACCEPTED"),
            ("ASSIGNED", "REQUEST_DATA_UPDATED"),
            ("COMPLETED", "REQUEST_DATA_UPDATED"),
        ],
        "withdrawn" => &[
            ("AVAILABLE", "BROADCAST_RECEIVED"),
            ("UNAVAILABLE", "BROADCAST_CANCELED"),
        ],
        _ => return None,
    };
    Some(
        steps
            .iter()
            .map(|(status, action)| {
                let mut body = base.clone();
                // Later events get greater ids, as VectorCare's do.
                body["event_id"] = json!(uuid::Uuid::now_v7().simple().to_string());
                body["event_timestamp"] = json!(crate::normalize::rfc3339(Utc::now()));
                body["service_request_id"] = json!(request);
                body["request_status"] = json!(status);
                body["action"] = json!(action);
                if *status == "UNAVAILABLE" {
                    body["data"] = Value::Null;
                } else {
                    body["data"]["service_request_id"] = json!(request);
                    if *status != "AVAILABLE" {
                        body["data"]["agreed_for_time"] = body["data"]["pickup_date_time"].clone();
                    }
                }
                body
            })
            .collect(),
    )
}
