//! The minimum necessary view of a normalized event: what identifies it and tells its state,
//! without a patient's or an address's fields. Written as a list of what is kept, so a field
//! added to the schema later stays out until someone decides it belongs here.

use serde_json::{Map, Value};

/// The CloudEvent attributes kept: all of them (ids, type, times, provider); `data` is projected.
const ATTRIBUTES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "tenantid",
    "provider",
    "providereventid",
];

/// The members of `data` kept as they are: kind, statuses, when it is scheduled, and links.
const DATA: [&str; 7] = [
    "kind",
    "status",
    "provider_status",
    "provider_action",
    "provider_event_type",
    "schedule",
    "links",
];

/// `event` without patient or address fields (`patient`, `pickup`, `destination`,
/// `collection`, `provider_data` and anything not listed above).
pub fn minimal(event: &Value) -> Value {
    let keep = |from: &Value, names: &[&str]| -> Map<String, Value> {
        names
            .iter()
            .filter_map(|n| from.get(*n).map(|v| ((*n).to_owned(), v.clone())))
            .collect()
    };
    let mut out = keep(event, &ATTRIBUTES);
    if let Some(data) = event.get("data").filter(|d| d.is_object()) {
        out.insert("data".into(), Value::Object(keep(data, &DATA)));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_minimal_view_keeps_ids_state_times_and_links_and_nothing_about_the_patient() {
        let event = json!({
            "specversion": "1.0", "id": "evt_1", "type": "transport.request.assigned",
            "subject": "VC-1", "time": "2026-01-01T00:00:00Z", "tenantid": "tn_1",
            "data": {
                "kind": "transport_request", "status": "scheduled",
                "patient": {"first_name": "Margaret", "date_of_birth": "1941-07-22"},
                "pickup": {"line1": "12 Lake Rd"}, "destination": {"line1": "1 Main St"},
                "collection": {"line1": "3 Elm St"},
                "schedule": {"scheduled_at": "2026-01-02T00:00:00Z"},
                "links": {"web_url": "https://hub.vectorcare.com/requests/VC-1"},
                "provider_data": {"patient_first_name": "Margaret"},
                "a_field_added_later": "Margaret"
            }
        });
        let m = minimal(&event);
        let text = m.to_string();
        for private in ["Margaret", "1941", "Lake", "Main", "Elm"] {
            assert!(!text.contains(private), "{private} in {text}");
        }
        assert_eq!(m["id"], "evt_1");
        assert_eq!(m["subject"], "VC-1");
        assert_eq!(m["data"]["status"], "scheduled");
        assert_eq!(
            m["data"]["schedule"]["scheduled_at"],
            "2026-01-02T00:00:00Z"
        );
        assert_eq!(
            m["data"]["links"]["web_url"],
            "https://hub.vectorcare.com/requests/VC-1"
        );
        assert_eq!(
            minimal(&json!({"id": "evt_2", "data": null})),
            json!({"id": "evt_2"})
        );
    }
}
