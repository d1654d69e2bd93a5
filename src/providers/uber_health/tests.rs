use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::KeyId;

const KEY: &str = "uber-signing-key-0123456789";

fn key(text: &str) -> VerifyKey {
    VerifyKey {
        id: KeyId::generate(),
        material: KeyMaterial::Secret(text.as_bytes().to_vec()),
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn verify(h: &HeaderMap, body: &[u8], keys: &[VerifyKey]) -> Result<Verified, Rejection> {
    let inbound = Inbound {
        headers: h,
        body,
        now: Utc::now(),
    };
    UberHealth.verify(&inbound, keys)
}

fn normalized(body: serde_json::Value) -> Normalized {
    let body = body.to_string();
    let h = HeaderMap::new();
    let inbound = Inbound {
        headers: &h,
        body: body.as_bytes(),
        now: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    };
    let verified = verify_ok();
    UberHealth.normalize(&inbound, &verified).unwrap()
}

fn verify_ok() -> Verified {
    Verified {
        method: "hmac-sha256-hex",
        key_id: KeyId::generate(),
        delivery_id: None,
        timestamp: None,
    }
}

fn webhook(status: &str, at: i64) -> serde_json::Value {
    json!({
        "event_id": format!("e-{status}-{at}"), "event_time": at, "event_type": STATUS_CHANGED,
        "resource_href": "https://api.uber.com/v1/health/trips/t-1",
        "meta": {"user_id": "u", "org_uuid": "o", "resource_id": "t-1", "status": status},
    })
}

#[test]
fn the_signature_is_the_lowercase_hex_hmac_of_the_body_keyed_by_the_key_as_text() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert_eq!(
        hex::encode(signature(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn any_of_the_connections_keys_verifies_and_anything_else_is_refused() {
    let body = br#"{"event_id":"e"}"#;
    let good = hex::encode(signature(KEY.as_bytes(), body));
    let keys = [key("an-older-signing-key-000"), key(KEY)];
    let ok = verify(&headers(&[(SIGNATURE_HEADER, &good)]), body, &keys).unwrap();
    assert_eq!(ok.key_id, keys[1].id, "the second key (rotation) matched");
    // Upper-case hex is the same signature.
    let upper = good.to_uppercase();
    assert!(verify(&headers(&[(SIGNATURE_HEADER, &upper)]), body, &keys).is_ok());

    assert!(matches!(
        verify(&HeaderMap::new(), body, &keys),
        Err(Rejection::MissingSignature(_))
    ));
    let other_key = hex::encode(signature(b"not-the-tenants-key-at-all", body));
    let tampered = hex::encode(signature(KEY.as_bytes(), br#"{"event_id":"f"}"#));
    for bad in [other_key.as_str(), tampered.as_str(), "zz", &good[..62], ""] {
        assert!(
            matches!(
                verify(&headers(&[(SIGNATURE_HEADER, bad)]), body, &keys),
                Err(Rejection::InvalidSignature(_))
            ),
            "{bad}"
        );
    }
    // A key of another kind never matches.
    let rsa_only = [VerifyKey {
        id: KeyId::generate(),
        material: KeyMaterial::RsaPublicPkcs1(KEY.as_bytes().to_vec()),
    }];
    assert!(verify(&headers(&[(SIGNATURE_HEADER, &good)]), body, &rsa_only).is_err());
}

#[test]
fn every_documented_status_has_a_unified_status_and_a_type_and_unknown_ones_are_kept() {
    let documented = [
        ("processing", Status::Pending, types::TRANSPORT_OFFERED),
        ("scheduled", Status::Scheduled, types::TRANSPORT_OFFERED),
        ("offered", Status::Pending, types::TRANSPORT_OFFERED),
        ("expired", Status::Cancelled, types::TRANSPORT_WITHDRAWN),
        ("accepted", Status::Scheduled, types::TRANSPORT_ASSIGNED),
        ("arriving", Status::InProgress, types::TRANSPORT_UPDATED),
        (
            "driver_redispatched",
            Status::Pending,
            types::TRANSPORT_UPDATED,
        ),
        ("in_progress", Status::InProgress, types::TRANSPORT_UPDATED),
        ("completed", Status::Completed, types::TRANSPORT_COMPLETED),
        (
            "driver_canceled",
            Status::Cancelled,
            types::TRANSPORT_WITHDRAWN,
        ),
        (
            "rider_canceled",
            Status::Cancelled,
            types::TRANSPORT_WITHDRAWN,
        ),
        (
            "no_drivers_available",
            Status::Failed,
            types::TRANSPORT_WITHDRAWN,
        ),
        ("failed", Status::Failed, types::TRANSPORT_WITHDRAWN),
    ];
    for (status, unified, event_type) in documented {
        let n = normalized(webhook(status, 1_799_999_000));
        assert_eq!(
            (n.data.status, n.event_type),
            (unified, event_type),
            "{status}"
        );
        assert!(stage(status) > 0, "{status} has a stage");
        assert_eq!(n.data.provider_status.as_deref(), Some(status));
    }
    let n = normalized(webhook("teleporting", 1_799_999_000));
    assert_eq!(
        (n.data.status, n.event_type),
        (Status::Unknown, types::TRANSPORT_UPDATED)
    );
    assert_eq!(n.data.provider_status.as_deref(), Some("teleporting"));
}

#[test]
fn a_status_change_is_ordered_by_its_second_then_by_how_far_along_the_trip_it_is() {
    let key = |status: &str, at: i64| normalized(webhook(status, at)).order_key;
    // A later second always wins, whatever the status.
    assert!(key("processing", 1_700_000_001) > key("completed", 1_700_000_000));
    // Within one second, a later stage wins; a tie is not stale.
    assert!(key("completed", 1_700_000_000) > key("in_progress", 1_700_000_000));
    assert!(key("arriving", 1_700_000_000) > key("accepted", 1_700_000_000));
    assert_eq!(
        key("accepted", 1_700_000_000),
        key("driver_redispatched", 1_700_000_000)
    );
    // An unknown status ranks first within its second.
    assert!(key("teleporting", 1_700_000_000) < key("processing", 1_700_000_000));
    let n = normalized(webhook("accepted", 1_700_000_000));
    assert_eq!(n.subject, "t-1");
    assert_eq!(n.staleness_key.as_deref(), Some("uber_trip:t-1"));
    assert_eq!(n.occurred_at.timestamp(), 1_700_000_000);
    assert_eq!(
        n.data.links["resource_href"],
        "https://api.uber.com/v1/health/trips/t-1"
    );
}

#[test]
fn other_event_types_and_timeless_events_are_kept_and_never_judged_stale() {
    let mut other = webhook("accepted", 1_700_000_000);
    other["event_type"] = json!("health.trip.receipt_ready");
    let n = normalized(other);
    assert_eq!(n.staleness_key, None);
    assert_eq!(
        n.data.provider_event_type.as_deref(),
        Some("health.trip.receipt_ready")
    );
    let mut timeless = webhook("accepted", 0);
    timeless["event_time"] = json!("yesterday");
    let n = normalized(timeless);
    assert_eq!(n.staleness_key, None);
    assert_eq!(n.occurred_at.timestamp(), 1_800_000_000, "the receipt time");
}

#[test]
fn a_body_without_an_event_id_or_a_trip_is_refused() {
    let h = HeaderMap::new();
    for body in [
        json!({"event_time": 1, "meta": {"resource_id": "t"}}),
        json!({"event_id": "e", "event_time": 1, "meta": {"status": "accepted"}}),
        json!({"event_id": "e", "meta": "t"}),
        json!(["not", "an", "object"]),
    ] {
        let text = body.to_string();
        let inbound = Inbound {
            headers: &h,
            body: text.as_bytes(),
            now: Utc::now(),
        };
        assert!(
            matches!(
                UberHealth.normalize(&inbound, &verify_ok()),
                Err(Rejection::InvalidPayload(_))
            ),
            "{body}"
        );
    }
}

#[test]
fn the_simulators_scenarios_are_signed_to_verify_and_move_forward() {
    for (name, _) in simulate::SCENARIOS {
        let bodies = UberHealth.scenario(name).unwrap();
        let mut last = String::new();
        for body in bodies {
            let text = body.to_string();
            let signed = UberHealth.sign(KEY, text.as_bytes()).unwrap();
            let pairs: Vec<(&str, &str)> = signed
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert!(verify(&headers(&pairs), text.as_bytes(), &[key(KEY)]).is_ok());
            let order = normalized(body).order_key;
            assert!(order > last, "{name}: each step is newer than the last");
            last = order;
        }
    }
    assert!(UberHealth.scenario("nope").is_none());
}
