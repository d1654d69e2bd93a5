//! The normalized schema: golden outputs for every provider example, a mapping table per status
//! and action, and every output validated against `openapi/normalized-event.schema.json`.
//! `UPDATE_GOLDEN=1 cargo test normalization` rewrites the golden files after a deliberate change.

use actix_web::http::header::HeaderMap;
use chrono::{TimeZone, Utc};
use gateway::domain::{KeyId, TenantId};
use gateway::normalize::{stored_cloud_event, with_provider_data};
use gateway::providers::{vectorcare, vital, Inbound, Provider, Rejection, Verified};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

pub fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/normalized-event.schema.json"
    ))
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

pub fn assert_valid(validator: &jsonschema::Validator, event: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "schema violations: {errors:#?}\n{event:#}"
    );
}

/// Normalizes a body as the ingest path does after verification.
pub fn normalize(provider: Provider, body: &[u8]) -> Result<Value, Rejection> {
    let headers = HeaderMap::new();
    let now = Utc.with_ymd_and_hms(2026, 2, 15, 12, 0, 0).unwrap();
    let inbound = Inbound {
        headers: &headers,
        body,
        now,
    };
    let verified = Verified {
        method: "test",
        key_id: KeyId::parse("key_test").unwrap(),
        delivery_id: Some("msg_2fixture".into()),
        timestamp: Some(now),
    };
    let n = provider.plugin().normalize(&inbound, &verified)?;
    let stored = stored_cloud_event(
        "evt_golden",
        &TenantId::parse("tn_golden").unwrap(),
        provider.as_str(),
        &n,
    )
    .unwrap();
    let served = with_provider_data(&stored, std::str::from_utf8(body).unwrap());
    Ok(serde_json::from_str(&served).unwrap())
}

fn fixture(provider: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{provider}/{name}.json")).unwrap()
}

#[test]
fn every_provider_example_normalizes_to_its_golden_output_and_validates() {
    let validator = schema();
    // Every provider of the registry, every example in its fixtures folder: a provider's new
    // example is golden-tested as soon as it is added.
    let mut cases = Vec::new();
    for provider in Provider::all() {
        let mut names: Vec<String> = std::fs::read_dir(format!("{FIXTURES}/{provider}"))
            .unwrap_or_else(|_| panic!("{provider} has a folder of examples under {FIXTURES}"))
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json").map(str::to_owned)
            })
            .collect();
        names.sort();
        assert!(!names.is_empty(), "{provider} has examples");
        cases.extend(names.into_iter().map(|n| (provider, n)));
    }
    assert!(cases.len() >= 8, "{}", cases.len());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (provider, name) in cases {
        let name = name.as_str();
        let body = fixture(provider.as_str(), name);
        let event = normalize(provider, &body).unwrap();
        assert_valid(&validator, &event);
        let original: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            event["data"]["provider_data"], original,
            "{name}: the provider's object is kept unchanged"
        );
        let golden_path = format!("{FIXTURES}/golden/{provider}_{name}.json");
        if update {
            std::fs::write(
                &golden_path,
                serde_json::to_string_pretty(&event).unwrap() + "\n",
            )
            .unwrap();
            continue;
        }
        let golden: Value =
            serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap()).unwrap();
        assert_eq!(
            event, golden,
            "{name} differs from {golden_path}; run UPDATE_GOLDEN=1 after a deliberate change"
        );
    }
}

#[test]
fn the_authoritative_pickup_time_is_agreed_for_time_else_pickup_date_time() {
    let cct = normalize(
        vectorcare::PROVIDER,
        &fixture("vectorcare", "critical_care_accepted"),
    )
    .unwrap();
    assert_eq!(
        cct["data"]["schedule"]["scheduled_at"],
        "2026-02-15T18:45:00.000Z"
    );
    assert_eq!(cct["data"]["schedule"]["source"], "agreed_for_time");
    let bls = normalize(
        vectorcare::PROVIDER,
        &fixture("vectorcare", "bls_broadcast_received"),
    )
    .unwrap();
    assert_eq!(
        bls["data"]["schedule"]["scheduled_at"],
        "2026-02-16T14:00:00.000Z"
    );
    assert_eq!(bls["data"]["schedule"]["source"], "pickup_date_time");
    assert_eq!(bls["data"]["pickup"]["lat"], 39.799);
    assert_eq!(bls["data"]["patient"]["last_name"], "Hollis");
}

#[test]
fn unavailable_with_null_data_normalizes_to_a_withdrawn_request() {
    let e = normalize(vectorcare::PROVIDER, &fixture("vectorcare", "unavailable")).unwrap();
    assert_eq!(e["type"], "transport.request.withdrawn");
    assert_eq!(e["data"]["status"], "cancelled");
    assert!(e["data"]["patient"].is_null() && e["data"]["schedule"].is_null());
    assert_eq!(e["subject"], "VC-TN4KQ8R2");
    assert_eq!(e["time"], "2026-02-15T10:30:45.000Z");
}

#[test]
fn a_vectorcare_field_of_an_unexpected_type_is_left_out_and_the_event_still_normalizes() {
    let mut body: Value =
        serde_json::from_slice(&fixture("vectorcare", "bls_broadcast_received")).unwrap();
    body["data"]["patient_last_name"] = json!(42);
    body["data"]["pickup_location"] = json!("somewhere");
    body["data"]["destination_location"]["lat"] = json!("north");
    body["data"]["collection_id"] = json!({"nested": [1, "two"]});
    body["event_timestamp"] = json!(false);
    let e = normalize(vectorcare::PROVIDER, &serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(e["data"]["patient"]["last_name"], Value::Null);
    assert_eq!(
        e["data"]["patient"]["first_name"],
        body["data"]["patient_first_name"]
    );
    assert_eq!(e["data"]["pickup"], Value::Null);
    assert_eq!(e["data"]["destination"]["lat"], Value::Null);
    assert_eq!(
        e["data"]["destination"]["city"],
        body["data"]["destination_location"]["city"]
    );
    assert_eq!(
        e["data"]["links"]["collection_id"],
        json!({"nested": [1, "two"]})
    );
    assert_eq!(e["time"], "2026-02-15T12:00:00.000Z", "the receipt time");
    assert_eq!(e["data"]["provider_data"], body, "the body, whole");
    assert_valid(&schema(), &e);
}

fn vectorcare_with(status: &str, action: &str) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&fixture("vectorcare", "bls_broadcast_received")).unwrap();
    body["request_status"] = json!(status);
    body["action"] = json!(action);
    if status == "UNAVAILABLE" {
        body["data"] = Value::Null;
    }
    serde_json::to_vec(&body).unwrap()
}

#[test]
fn every_vectorcare_action_maps_to_a_type_and_status() {
    let validator = schema();
    // (action, its typical request_status, type, unified status) as in README's table.
    let table = [
        (
            "BROADCAST_RECEIVED",
            "AVAILABLE",
            "transport.request.offered",
            "pending",
        ),
        (
            "BROADCAST_ACCEPTED",
            "ASSIGNED",
            "transport.request.assigned",
            "scheduled",
        ),
        (
            "BROADCAST_DECLINED",
            "UNAVAILABLE",
            "transport.request.withdrawn",
            "cancelled",
        ),
        (
            "BROADCAST_CANCELED",
            "UNAVAILABLE",
            "transport.request.withdrawn",
            "cancelled",
        ),
        (
            "BROADCAST_EXPIRED",
            "UNAVAILABLE",
            "transport.request.withdrawn",
            "cancelled",
        ),
        (
            "PROPOSAL_SUBMITTED",
            "AVAILABLE",
            "transport.request.offered",
            "pending",
        ),
        (
            "PROPOSAL_ACCEPTED",
            "ASSIGNED",
            "transport.request.assigned",
            "scheduled",
        ),
        (
            "PROPOSAL_DECLINED",
            "UNAVAILABLE",
            "transport.request.withdrawn",
            "cancelled",
        ),
        (
            "CHANGE_REQUEST_ACCEPTED",
            "ASSIGNED",
            "transport.request.updated",
            "scheduled",
        ),
        (
            "CHANGE_REQUEST_DECLINED",
            "ASSIGNED",
            "transport.request.updated",
            "scheduled",
        ),
        (
            "REQUEST_DATA_UPDATED",
            "ASSIGNED",
            "transport.request.updated",
            "scheduled",
        ),
        (
            "REQUEST_DATA_UPDATED",
            "AVAILABLE",
            "transport.request.updated",
            "pending",
        ),
        (
            "REQUEST_DATA_UPDATED",
            "COMPLETED",
            "transport.request.completed",
            "completed",
        ),
        (
            "TELEPORT_REQUESTED",
            "ASSIGNED",
            "transport.request.assigned",
            "scheduled",
        ),
        (
            "REQUEST_DATA_UPDATED",
            "ON_HOLD",
            "transport.request.updated",
            "unknown",
        ),
    ];
    for (action, status, ty, unified) in table {
        let e = normalize(vectorcare::PROVIDER, &vectorcare_with(status, action)).unwrap();
        assert_valid(&validator, &e);
        assert_eq!(
            (
                e["type"].as_str().unwrap(),
                e["data"]["status"].as_str().unwrap()
            ),
            (ty, unified),
            "{action} + {status}"
        );
        assert_eq!(
            e["data"]["provider_action"], action,
            "unknown values are kept as data"
        );
        assert_eq!(e["data"]["provider_status"], status);
    }
}

fn order_with(high: &str, low: &str) -> Vec<u8> {
    let mut order: Value =
        serde_json::from_slice(&fixture("vital", "order_appointment_scheduled_bare")).unwrap();
    let status = format!("{high}.at_home_phlebotomy.{low}");
    order["events"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": 4, "created_at": "2022-01-04T00:00:00Z", "status": status}));
    serde_json::to_vec(&json!({"event_type": "labtest.order.updated", "data": order, "user_id": "u1", "client_user_id": "c1", "team_id": "t1"})).unwrap()
}

#[test]
fn every_at_home_phlebotomy_order_status_maps_to_a_unified_status() {
    let validator = schema();
    let table = [
        ("received", "ordered", "pending"),
        ("received", "requisition_created", "pending"),
        ("received", "requisition_bypassed", "pending"),
        ("collecting_sample", "appointment_pending", "pending"),
        ("collecting_sample", "appointment_scheduled", "scheduled"),
        ("collecting_sample", "draw_completed", "in_progress"),
        ("collecting_sample", "appointment_cancelled", "pending"),
        ("sample_with_lab", "partial_results", "in_progress"),
        ("completed", "completed", "completed"),
        ("completed", "corrected", "completed"),
        ("failed", "sample_error", "failed"),
        ("cancelled", "cancelled", "cancelled"),
        ("teleported", "beamed_up", "unknown"),
    ];
    for (high, low, unified) in table {
        let e = normalize(vital::PROVIDER, &order_with(high, low)).unwrap();
        assert_valid(&validator, &e);
        assert_eq!(e["type"], "lab.order.updated");
        assert_eq!(e["data"]["status"], unified, "{high}.{low}");
        assert_eq!(
            e["data"]["provider_status"],
            format!("{high}.at_home_phlebotomy.{low}")
        );
        assert_eq!(e["subject"], "84d96c03-6b1c-4226-ad8f-ef44a6bc08af");
        assert_eq!(e["data"]["patient"]["date_of_birth"], "2020-01-01");
    }
}

#[test]
fn every_appointment_status_maps_to_a_unified_status() {
    let validator = schema();
    for (status, unified) in [
        ("pending", "pending"),
        ("reserved", "pending"),
        ("confirmed", "scheduled"),
        ("in_progress", "in_progress"),
        ("completed", "completed"),
        ("cancelled", "cancelled"),
        ("rescheduling", "unknown"),
    ] {
        let mut body: Value =
            serde_json::from_slice(&fixture("vital", "appointment_updated")).unwrap();
        body["event_type"] = json!("labtest.appointment.updated");
        body["data"]["status"] = json!(status);
        let e = normalize(vital::PROVIDER, &serde_json::to_vec(&body).unwrap()).unwrap();
        assert_valid(&validator, &e);
        assert_eq!(e["type"], "lab.appointment.updated");
        assert_eq!(e["data"]["status"], unified, "{status}");
        assert_eq!(
            e["subject"], "1ed9c8d7-e1b4-4d61-8123-0f99de5ae99a",
            "appointments join their order's timeline"
        );
        assert_eq!(
            e["data"]["schedule"]["scheduled_at"],
            "2022-01-01T00:00:00.000Z"
        );
        assert_eq!(e["data"]["schedule"]["timezone"], "America/New_York");
        assert_eq!(e["data"]["collection"]["lat"], 37.7749295);
    }
}

#[test]
fn vital_bodies_with_and_without_an_envelope_are_accepted() {
    let bare = normalize(
        vital::PROVIDER,
        &fixture("vital", "order_appointment_scheduled_bare"),
    )
    .unwrap();
    assert_eq!(bare["type"], "lab.order.updated");
    assert_eq!(bare["data"]["status"], "scheduled");
    let order: Value =
        serde_json::from_slice(&fixture("vital", "order_appointment_scheduled_bare")).unwrap();
    let minimal = json!({"event_type": "labtest.order.created", "data": order});
    let e = normalize(vital::PROVIDER, &serde_json::to_vec(&minimal).unwrap()).unwrap();
    assert_eq!(e["type"], "lab.order.created");
    let unknown = normalize(vital::PROVIDER, &fixture("vital", "match_review_created")).unwrap();
    assert_eq!(unknown["type"], "lab.other");
    assert_eq!(
        unknown["data"]["provider_event_type"],
        "labtest.match_review.created"
    );
    assert_eq!(unknown["data"]["status"], "unknown");
}

#[test]
fn a_body_of_the_wrong_shape_is_refused_as_invalid_payload() {
    for body in [
        &b"[1,2]"[..],
        b"not json",
        br#"{"service_request_id":"x","request_status":"ASSIGNED","action":"A"}"#,
        br#"["e1","2026-02-15T10:30:45Z","VC-1","ASSIGNED","A",null]"#,
        br#"{"event_id":"e1","service_request_id":"x","request_status":"ASSIGNED","action":"A","data":"x"}"#,
        br#"{"event_id":"e1","service_request_id":"x","request_status":"ASSIGNED","action":"A"} {}"#,
        br#"{"event_id":"e1","event_id":"e2","service_request_id":"x","request_status":"ASSIGNED","action":"A"}"#,
    ] {
        assert!(matches!(
            normalize(vectorcare::PROVIDER, body),
            Err(Rejection::InvalidPayload(_))
        ));
    }
    assert!(matches!(
        normalize(
            vital::PROVIDER,
            br#"{"event_type":"labtest.order.updated","data":{"status":"x"}}"#
        ),
        Err(Rejection::InvalidPayload(_))
    ));
}
