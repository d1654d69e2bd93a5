//! Uber Health as the simulator plays it: trip status webhooks, signed with the app's signing key
//! (`gateway simulate uber-health --key SIGNING_KEY`).

use chrono::Utc;
use serde_json::{json, Value};

pub const SCENARIOS: &[(&str, &str)] = &[
    // The first is the default.
    (
        "lifecycle",
        "processing, accepted, arriving, in_progress, completed",
    ),
    ("cancellation", "processing, accepted, rider_canceled"),
];

/// The bodies of a scenario, in sending order, one second apart and ending now. Each run is a
/// new trip with fresh event ids, so it can be repeated.
pub fn scenario(name: &str) -> Option<Vec<Value>> {
    let statuses: &[&str] = match name {
        "lifecycle" => &[
            "processing",
            "accepted",
            "arriving",
            "in_progress",
            "completed",
        ],
        "cancellation" => &["processing", "accepted", "rider_canceled"],
        _ => return None,
    };
    let trip = uuid::Uuid::new_v4().to_string();
    let (user, org) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let last = Utc::now().timestamp();
    let first = last - statuses.len() as i64 + 1;
    Some(
        statuses
            .iter()
            .zip(first..)
            .map(|(status, at)| {
                json!({
                    "event_id": uuid::Uuid::new_v4().to_string(),
                    "event_time": at,
                    "event_type": super::STATUS_CHANGED,
                    "resource_href": format!("https://sandbox-api.uber.com/v1/health/trips/{trip}"),
                    "meta": {
                        "user_id": user.to_string(),
                        "org_uuid": org.to_string(),
                        "resource_id": trip,
                        "status": status,
                    },
                })
            })
            .collect(),
    )
}
