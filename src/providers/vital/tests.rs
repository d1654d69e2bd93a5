use super::*;

fn order_key_of(body: &str) -> String {
    let (_, data) = envelope(body.as_bytes()).unwrap();
    order_key(&data, DateTime::from_timestamp(0, 0).unwrap()).0
}

#[test]
fn an_orders_key_is_its_last_events_time_then_id_else_the_count_of_its_events() {
    let at = "2026-02-01T10:00:00.000Z";
    assert_eq!(
        order_key_of(
            r#"{"id":"o","last_event":{"id":7,"created_at":"2026-02-01T10:00:00Z"},"events":[1,2,3]}"#
        ),
        format!("{at}#{:020}", 7)
    );
    // No usable id: the number of events; an element that is not an object still counts.
    assert_eq!(
        order_key_of(
            r#"{"id":"o","updated_at":"2026-02-01T10:00:00Z","events":[{"id":1},{"id":-2},"x"]}"#
        ),
        format!("{at}#{:020}", 3)
    );
    assert_eq!(
        order_key_of(r#"{"id":"o","last_event":{"id":-2,"created_at":"2026-02-01T10:00:00Z"}}"#),
        format!("{at}#{:020}", 0)
    );
    assert_eq!(
        order_key_of(r#"{"id":"o","last_event":"x","events":{}}"#),
        format!("1970-01-01T00:00:00.000Z#{:020}", 0)
    );
}

#[test]
fn a_bare_body_is_typed_by_which_fields_are_there_even_when_null() {
    let kind = |body: &str| envelope(body.as_bytes()).unwrap().0;
    assert_eq!(
        kind(r#"{"id":"a","order_id":null,"start_at":null}"#),
        "labtest.appointment.updated"
    );
    assert_eq!(
        kind(r#"{"order_id":"o","interpretation":null}"#),
        "labtest.result.critical"
    );
    assert_eq!(
        kind(r#"{"id":"o","events":[{"status":"received.at_home_phlebotomy.ordered"}]}"#),
        "labtest.order.created"
    );
    assert_eq!(
        kind(r#"{"event_type":"labtest.appointment.update","data":{"id":"a"}}"#),
        "labtest.appointment.updated"
    );
    assert_eq!(
        kind(r#"{"event_type":"labtest.order.updated","data":null,"id":"o"}"#),
        "labtest.order.updated",
        "an envelope without an object is read as a bare order"
    );
}

#[test]
fn order_statuses_map_by_level() {
    assert_eq!(
        order_status("received.at_home_phlebotomy.ordered"),
        Status::Pending
    );
    assert_eq!(
        order_status("collecting_sample.at_home_phlebotomy.appointment_scheduled"),
        Status::Scheduled
    );
    assert_eq!(
        order_status("collecting_sample.at_home_phlebotomy.draw_completed"),
        Status::InProgress
    );
    assert_eq!(
        order_status("completed.at_home_phlebotomy.completed"),
        Status::Completed
    );
    assert_eq!(
        order_status("failed.at_home_phlebotomy.sample_error"),
        Status::Failed
    );
    assert_eq!(order_status("teleported.somewhere.new"), Status::Unknown);
}

#[test]
fn a_timestamp_at_the_ends_of_the_integers_is_out_of_tolerance_not_an_overflow() {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    let now = chrono::Utc::now();
    let key = b"0123456789abcdef0123456789abcdef".to_vec();
    for ts in [
        i64::MIN,
        i64::MIN + 1,
        now.timestamp() - (1 << 62),
        i64::MAX,
    ] {
        let body = br#"{"event_type":"labtest.order.created","data":{"id":"o"}}"#;
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("svix-id"),
            HeaderValue::from_static("msg_1"),
        );
        headers.insert(
            HeaderName::from_static("svix-timestamp"),
            HeaderValue::from(ts),
        );
        let sig = crate::signature::sign(&key, "msg_1", ts, body);
        headers.insert(
            HeaderName::from_static("svix-signature"),
            HeaderValue::from_str(&sig).unwrap(),
        );
        let inbound = Inbound {
            headers: &headers,
            body,
            now,
        };
        let keys = [VerifyKey {
            id: crate::domain::KeyId::generate(),
            material: KeyMaterial::Secret(key.clone()),
        }];
        assert!(
            matches!(
                Vital.verify(&inbound, &keys),
                Err(Rejection::TimestampOutOfTolerance(_))
            ),
            "{ts}"
        );
    }
}

#[test]
fn an_order_with_an_empty_id_is_refused_not_stored_without_a_subject() {
    let headers = actix_web::http::header::HeaderMap::new();
    for body in [
        r#"{"event_type":"labtest.order.updated","data":{"id":"","status":"received"}}"#,
        r#"{"id":"","status":"collecting_sample","events":[]}"#,
    ] {
        let inbound = Inbound {
            headers: &headers,
            body: body.as_bytes(),
            now: chrono::Utc::now(),
        };
        let verified = Verified {
            method: "test",
            key_id: crate::domain::KeyId::generate(),
            delivery_id: Some("msg_1".into()),
            timestamp: None,
        };
        assert!(
            matches!(
                Vital.normalize(&inbound, &verified),
                Err(Rejection::InvalidPayload(_))
            ),
            "{body}"
        );
    }
}
