//! Vital as the simulator plays it: example webhooks signed with a `whsec_` secret (Svix).

use chrono::Utc;
use serde_json::{json, Value};

use crate::domain::SigningSecret;

const ORDER: &str =
    include_str!("../../../tests/fixtures/vital/order_appointment_scheduled_bare.json");
const APPOINTMENT: &str = include_str!("../../../tests/fixtures/vital/appointment_updated.json");
const CRITICAL: &str = include_str!("../../../tests/fixtures/vital/result_critical.json");

/// `svix-id`, `svix-timestamp`, `svix-signature` for a body.
pub fn sign(secret: &SigningSecret, body: &[u8]) -> (String, i64, String) {
    let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let ts = Utc::now().timestamp();
    let sig = crate::signature::sign(&secret.key_bytes(), &id, ts, body);
    (id, ts, sig)
}

pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "phlebotomy",
        "order created, appointment booked and confirmed, sample drawn, results complete",
    ),
    ("critical-result", "one labtest.result.critical"),
];

pub fn scenario(name: &str) -> Option<Vec<Value>> {
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
