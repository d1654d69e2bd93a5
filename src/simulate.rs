//! `gateway simulate`: sends correctly signed example webhooks to a running gateway, so an
//! integrator can try the whole flow without the provider's test environment.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::domain::SigningSecret;

/// `X-VectorCare-Signature` for a body: base64 of RSA PKCS#1 v1.5 over SHA-256.
pub fn sign_vectorcare(private_key_pem: &str, body: &[u8]) -> Result<String, String> {
    let key = RsaPrivateKey::from_pkcs8_pem(private_key_pem)
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            RsaPrivateKey::from_pkcs1_pem(private_key_pem)
        })
        .map_err(|e| format!("not an RSA private key in PEM: {e}"))?;
    let signature = SigningKey::<Sha256>::new(key).sign(body);
    Ok(STANDARD.encode(signature.to_bytes()))
}

/// `svix-id`, `svix-timestamp`, `svix-signature` for a body.
pub fn sign_vital(secret: &SigningSecret, body: &[u8]) -> (String, i64, String) {
    let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let ts = Utc::now().timestamp();
    let sig = crate::signature::sign(&secret.key_bytes(), &id, ts, body);
    (id, ts, sig)
}

const BLS: &str = include_str!("../tests/fixtures/vectorcare/bls_broadcast_received.json");
const ORDER: &str = include_str!("../tests/fixtures/vital/order_appointment_scheduled_bare.json");
const APPOINTMENT: &str = include_str!("../tests/fixtures/vital/appointment_updated.json");
const CRITICAL: &str = include_str!("../tests/fixtures/vital/result_critical.json");

pub const VECTORCARE_SCENARIOS: &[(&str, &str)] = &[
    ("broadcast", "one BROADCAST_RECEIVED (AVAILABLE)"),
    ("lifecycle", "broadcast, accepted, data updated, completed"),
    (
        "withdrawn",
        "broadcast, then BROADCAST_CANCELED (UNAVAILABLE, data null)",
    ),
];

pub const VITAL_SCENARIOS: &[(&str, &str)] = &[
    (
        "phlebotomy",
        "order created, appointment booked and confirmed, sample drawn, results complete",
    ),
    ("critical-result", "one labtest.result.critical"),
];

/// The bodies of a scenario, in sending order. Each run gets fresh ids, so it can be repeated.
pub fn vectorcare_scenario(name: &str) -> Option<Vec<Value>> {
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

pub fn vital_scenario(name: &str) -> Option<Vec<Value>> {
    let order: Value = serde_json::from_str(ORDER).ok()?;
    let appointment: Value = serde_json::from_str(APPOINTMENT).ok()?;
    let order_id = uuid::Uuid::new_v4().to_string();
    let order_at = |low: &str, high: &str, n: u64| {
        let mut o = order.clone();
        o["id"] = json!(order_id);
        let mut events: Vec<Value> = Vec::new();
        for i in 1..=n {
            events.push(json!({"id": i, "created_at": crate::normalize::rfc3339(Utc::now()), "status": if i == n { format!("{high}.at_home_phlebotomy.{low}") } else { "received.at_home_phlebotomy.ordered".to_owned() }}));
        }
        o["events"] = json!(events);
        o
    };
    let appointment_at = |status: &str| {
        let mut a = appointment["data"].clone();
        a["order_id"] = json!(order_id);
        a["status"] = json!(status);
        a["events"] = json!([{"created_at": crate::normalize::rfc3339(Utc::now()), "data": null, "status": status}]);
        a
    };
    match name {
        "phlebotomy" => Some(vec![
            json!({"event_type": "labtest.order.created", "data": order_at("ordered", "received", 1)}),
            json!({"event_type": "labtest.appointment.created", "data": appointment_at("pending")}),
            json!({"event_type": "labtest.appointment.updated", "data": appointment_at("confirmed")}),
            json!({"event_type": "labtest.order.updated", "data": order_at("appointment_scheduled", "collecting_sample", 2)}),
            json!({"event_type": "labtest.order.updated", "data": order_at("draw_completed", "collecting_sample", 3)}),
            json!({"event_type": "labtest.order.updated", "data": order_at("completed", "completed", 4)}),
        ]),
        "critical-result" => {
            let mut c: Value = serde_json::from_str(CRITICAL).ok()?;
            c["data"]["order_id"] = json!(order_id);
            Some(vec![c])
        }
        _ => None,
    }
}

/// Sends a scenario and prints one line per webhook; fails on the first non-2xx answer.
pub async fn run(
    provider: crate::domain::Provider,
    url: &str,
    key: &str,
    scenario: &str,
) -> anyhow::Result<()> {
    use crate::domain::Provider;
    let bodies = match provider {
        Provider::Vectorcare => vectorcare_scenario(scenario),
        Provider::Vital => vital_scenario(scenario),
    };
    let known = match provider {
        Provider::Vectorcare => VECTORCARE_SCENARIOS,
        Provider::Vital => VITAL_SCENARIOS,
    };
    let Some(bodies) = bodies else {
        let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
        anyhow::bail!("unknown scenario `{scenario}`; known: {}", names.join(", "));
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()?;
    for body in bodies {
        let bytes = serde_json::to_vec(&body)?;
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .body(bytes.clone());
        req = match provider {
            Provider::Vectorcare => req.header(
                "x-vectorcare-signature",
                sign_vectorcare(key, &bytes).map_err(|e| anyhow::anyhow!(e))?,
            ),
            Provider::Vital => {
                let secret = SigningSecret::parse(key.trim())
                    .map_err(|e| anyhow::anyhow!("--secret {e}"))?;
                let (id, ts, sig) = sign_vital(&secret, &bytes);
                req.header("svix-id", id)
                    .header("svix-timestamp", ts.to_string())
                    .header("svix-signature", sig)
            }
        };
        let res = req.send().await?;
        let status = res.status();
        let answer = res.text().await.unwrap_or_default();
        let what = body
            .get("action")
            .or_else(|| body.get("event_type"))
            .and_then(Value::as_str)
            .unwrap_or("event");
        println!("{} {what}: {answer}", status.as_u16());
        if !status.is_success() {
            anyhow::bail!("the gateway answered {status}");
        }
    }
    Ok(())
}
