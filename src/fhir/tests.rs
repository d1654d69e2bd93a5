use serde_json::{json, Value};

use super::bundle::{notification, Content, Event, Kind, Release, Subscription};
use super::resources::{of_event, stable_id};

fn transport() -> Value {
    json!({
        "id": "evt_1", "type": "transport.request.assigned", "provider": "vectorcare",
        "tenantid": "tn_1", "subject": "VC-1", "time": "2026-02-15T12:00:00.000Z",
        "data": {
            "kind": "transport_request", "status": "scheduled", "provider_status": "ASSIGNED",
            "patient": {"first_name": "Margaret", "last_name": "Hollis", "date_of_birth": "1941-07-22", "gender": "female", "middle_name": null},
            "schedule": {"scheduled_at": "2026-02-16T14:00:00.000Z"},
            "pickup": {"line1": "400 Elm St", "city": "Springfield", "lat": 39.799, "lng": -89.644, "line2": null},
            "destination": {"name": "Springfield General Hospital", "line1": "800 E Carpenter St"},
            "collection": null, "links": {}
        }
    })
}

fn sub() -> Subscription<'static> {
    Subscription {
        id: "ep_1",
        topic: "https://gateway.test/fhir/SubscriptionTopic/transport",
        base: "https://gateway.test/fhir/tn_1",
        status: "active",
    }
}

#[test]
fn a_transport_request_is_a_task_on_a_service_request_with_its_places_and_patient() {
    let r = of_event(&transport());
    let types: Vec<&str> = r.iter().map(|r| r.resource_type).collect();
    assert_eq!(
        types,
        ["Task", "ServiceRequest", "Location", "Location", "Patient"]
    );
    let (task, request) = (&r[0].body, &r[1].body);
    assert_eq!(task["status"], "accepted");
    assert_eq!(task["businessStatus"]["text"], "ASSIGNED");
    assert_eq!(task["focus"]["reference"], r[1].reference());
    assert_eq!(request["status"], "active");
    assert_eq!(request["occurrenceDateTime"], "2026-02-16T14:00:00.000Z");
    assert_eq!(request["subject"]["reference"], r[4].reference());
    assert_eq!(request["identifier"][0]["value"], "VC-1");
    assert_eq!(r[2].body["position"]["latitude"], 39.799);
    // FHIR forbids nulls and empty values.
    let text = serde_json::to_string(&r.iter().map(|r| &r.body).collect::<Vec<_>>()).unwrap();
    assert!(
        !text.contains("null") && !text.contains("\"\"") && !text.contains("[]"),
        "{text}"
    );
    assert_eq!(r[4].body["name"][0]["given"], json!(["Margaret"]));
}

#[test]
fn resource_ids_are_stable_per_subject_and_differ_between_tenants() {
    let a = of_event(&transport());
    let mut later = transport();
    later["id"] = json!("evt_2");
    later["data"]["status"] = json!("completed");
    let b = of_event(&later);
    assert_eq!(a[0].id, b[0].id, "the same subject upserts the same Task");
    assert_eq!(b[0].body["status"], "completed");
    assert_ne!(
        stable_id("sr", "tn_1", "vectorcare", "x"),
        stable_id("sr", "tn_2", "vectorcare", "x")
    );
    assert!(a.iter().all(|r| r.id.len() <= 64
        && r.id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')));
}

#[test]
fn a_notification_bundle_puts_the_status_first_and_a_request_on_every_entry() {
    let resources = of_event(&transport());
    let events = [Event {
        number: 7,
        timestamp: "2026-02-15T12:00:00.000Z",
        resources: &resources,
    }];
    for release in [Release::R4, Release::R4B] {
        let b = notification(
            release,
            Content::FullResource,
            &sub(),
            Kind::EventNotification,
            7,
            &events,
            "2026-02-15T12:00:01Z",
        );
        assert_eq!(b["type"], "history");
        let entries = b["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 1 + resources.len());
        assert!(entries
            .iter()
            .all(|e| e["request"]["method"].is_string() && e["response"]["status"].is_string()));
        let status = &entries[0]["resource"];
        match release {
            Release::R4 => {
                assert_eq!(status["resourceType"], "Parameters");
                let event = status["parameter"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == "notification-event")
                    .unwrap();
                assert_eq!(event["part"][0]["valueString"], "7");
            }
            Release::R4B => {
                assert_eq!(status["resourceType"], "SubscriptionStatus");
                assert_eq!(status["notificationEvent"][0]["eventNumber"], "7");
                assert_eq!(status["eventsSinceSubscriptionStart"], "7");
            }
        }
        assert_eq!(entries[1]["resource"]["resourceType"], "Task");
    }
}

#[test]
fn empty_and_id_only_notifications_carry_no_patient_data() {
    let resources = of_event(&transport());
    let events = [Event {
        number: 1,
        timestamp: "2026-02-15T12:00:00.000Z",
        resources: &resources,
    }];
    for content in [Content::Empty, Content::IdOnly] {
        let b = notification(
            Release::R4,
            content,
            &sub(),
            Kind::EventNotification,
            1,
            &events,
            "2026-02-15T12:00:01Z",
        );
        let text = b.to_string();
        for private in ["Margaret", "Hollis", "1941-07-22", "Elm St"] {
            assert!(!text.contains(private), "{content:?}: {private}");
        }
        let n = b["entry"].as_array().unwrap().len();
        assert_eq!(
            n,
            if content == Content::Empty {
                1
            } else {
                1 + resources.len()
            }
        );
    }
    let handshake = notification(
        Release::R4B,
        Content::Empty,
        &sub(),
        Kind::Handshake,
        0,
        &[],
        "2026-02-15T12:00:01Z",
    );
    assert_eq!(handshake["entry"][0]["resource"]["type"], "handshake");
    assert!(handshake["entry"][0]["resource"]
        .get("notificationEvent")
        .is_none());
}
