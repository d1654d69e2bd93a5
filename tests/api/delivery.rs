//! Delivery to tenant endpoints: signatures checked by an independent Standard Webhooks library,
//! retries, dead letters, auto-disable, 410, Retry-After, redirects, isolation between endpoints,
//! FIFO per subject, rate limits, replay, and the API around it (the workers: `delivery_workers`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp, VECTORCARE_PUBLIC_PEM};
use crate::receiver::Receiver;
use crate::webhooks::{vectorcare_event, VECTORCARE_PRIVATE_PEM};

pub struct Setup {
    pub app: TestApp,
    pub admin: String,
}

pub fn delivery_settings(s: &mut gateway::config::RawSettings) {
    s.allow_http_endpoints = true;
    s.ssrf_allowlist = "127.0.0.1/32".into();
    s.delivery_retry_schedule = "0s,0s,0s".into();
    s.delivery_jitter = 0.0;
}

pub async fn setup_with(customize: impl FnOnce(&mut gateway::config::RawSettings)) -> Setup {
    let app = spawn_app_with(|s| {
        delivery_settings(s);
        customize(s);
    })
    .await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/vectorcare",
            &admin,
            json!({"public_keys": [VECTORCARE_PUBLIC_PEM]}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    Setup { app, admin }
}

impl Setup {
    pub async fn endpoint(&self, url: &str, extra: Value) -> Value {
        let mut body = json!({"url": url});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let res = self
            .app
            .post_as("/api/v1/tenants/acme/endpoints", &self.admin, body)
            .await;
        assert_eq!(res.status().as_u16(), 201);
        res.json().await.unwrap()
    }

    /// Posts a signed VectorCare webhook; returns the gateway's event id.
    pub async fn event(&self, n: u64, request: &str) -> String {
        let body = vectorcare_event(
            &format!("01JN{n:022}"),
            request,
            "ASSIGNED",
            "REQUEST_DATA_UPDATED",
        );
        let res = self
            .app
            .post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
            .await;
        assert_eq!(res.status().as_u16(), 200);
        res.json::<Value>().await.unwrap()["event_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn drain(&self) -> usize {
        self.app.state.delivery.drain().await
    }

    pub async fn deliveries(&self, query: &str) -> Vec<Value> {
        let v: Value = self
            .app
            .get_as(
                &format!("/api/v1/tenants/acme/deliveries{query}"),
                &self.admin,
            )
            .await
            .json()
            .await
            .unwrap();
        v["data"].as_array().unwrap().clone()
    }

    pub async fn delivery(&self, id: &str) -> Value {
        self.app
            .get_as(
                &format!("/api/v1/tenants/acme/deliveries/{id}"),
                &self.admin,
            )
            .await
            .json()
            .await
            .unwrap()
    }
}

pub fn verify(secret: &str, r: &crate::receiver::Received) -> bool {
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, r.headers[name].parse().unwrap());
    }
    wh.verify(&r.body, &headers).is_ok()
}

#[tokio::test]
async fn callbacks_are_cloudevents_that_an_independent_standard_webhooks_library_verifies_also_during_rotation(
) {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    let ep = s
        .endpoint(&rx.url, json!({"headers": {"X-Tenant-Key": "abc123"}}))
        .await;
    let old_secret = ep["signing_secret"].as_str().unwrap().to_owned();
    let event_id = s.event(1, "VC-SIG").await;
    assert_eq!(s.drain().await, 1);
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.headers["content-type"], "application/cloudevents+json");
    assert_eq!(r.headers["x-tenant-key"], "abc123");
    assert_eq!(r.headers["webhook-id"], event_id.as_str());
    assert!(r.headers["x-delivery-id"].starts_with("dlv_"));
    let ce = r.json();
    assert_eq!(ce["id"], event_id.as_str());
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["type"], "transport.request.updated");
    assert!(
        verify(&old_secret, r),
        "verifies with the endpoint's secret"
    );
    assert!(
        !verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", r),
        "and not with another"
    );

    let path = format!(
        "/api/v1/tenants/acme/endpoints/{}/rotate-secret",
        ep["id"].as_str().unwrap()
    );
    let rotated: Value = s
        .app
        .post_as(&path, &s.admin, json!({"grace_period": "1h"}))
        .await
        .json()
        .await
        .unwrap();
    let new_secret = rotated["signing_secret"].as_str().unwrap();
    s.event(2, "VC-SIG").await;
    s.drain().await;
    let r = &rx.received()[1];
    assert_eq!(
        r.headers["webhook-signature"].split(' ').count(),
        2,
        "one signature per active secret"
    );
    assert!(
        verify(&old_secret, r),
        "the old secret still verifies during the grace period"
    );
    assert!(verify(new_secret, r), "the new one too");

    s.app
        .post_as(&path, &s.admin, json!({"grace_period": "0s"}))
        .await;
    s.event(3, "VC-SIG").await;
    s.drain().await;
    let r = &rx.received()[2];
    assert!(
        !verify(&old_secret, r) && !verify(new_secret, r),
        "both retired at once"
    );
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_recovers_and_every_attempt_is_logged() {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    s.endpoint(&rx.url, json!({})).await;
    rx.fail_next(2);
    s.event(1, "VC-RETRY").await;
    s.drain().await;
    let d = &s.deliveries("").await[0];
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["attempts"], 3);
    let detail = s.delivery(d["id"].as_str().unwrap()).await;
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[0]["error_class"], "http_status");
    assert_eq!(log[0]["response_snippet"], "receiver answered 500");
    assert_eq!(log[2]["success"], true);
    let ids: Vec<String> = rx
        .received()
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "webhook-id is stable across retries"
    );
}

#[tokio::test]
async fn every_copy_and_resend_of_an_event_carries_its_id_as_webhook_id_and_its_own_delivery_id() {
    let s = setup_with(|_| {}).await;
    let (rx1, rx2) = (Receiver::start().await, Receiver::start().await);
    let ep1 = s.endpoint(&rx1.url, json!({})).await;
    s.endpoint(&rx2.url, json!({})).await;
    let event_id = s.event(1, "VC-WID").await;
    assert_eq!(s.drain().await, 2);
    let res = s
        .app
        .post_as(
            &format!("/api/v1/tenants/acme/events/{event_id}/resend"),
            &s.admin,
            json!({"endpoint_id": ep1["id"]}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(s.drain().await, 1);

    let got: Vec<_> = rx1.received().into_iter().chain(rx2.received()).collect();
    assert_eq!(got.len(), 3, "two endpoints, then a resend to one");
    for r in &got {
        assert_eq!(
            r.headers["webhook-id"],
            event_id.as_str(),
            "a receiver deduplicating on webhook-id sees one message"
        );
    }
    let deliveries: HashSet<&String> = got.iter().map(|r| &r.headers["x-delivery-id"]).collect();
    assert_eq!(
        deliveries.len(),
        3,
        "each delivery has its own id: {deliveries:?}"
    );
}

#[tokio::test]
async fn a_delivered_event_carries_the_providers_body_verbatim_and_a_stale_one_says_so() {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    let ep = s.endpoint(&rx.url, json!({"include_stale": true})).await;
    let secret = ep["signing_secret"].as_str().unwrap().to_owned();
    // The first attempts are handed to the workers with the payload built from the request; the
    // retries are claimed from the queue, with the payload read back from the database.
    rx.fail_next(2);
    let mut sent = Vec::new();
    for (n, status, action) in [
        (20, "ASSIGNED", "REQUEST_DATA_UPDATED"),
        (10, "AVAILABLE", "BROADCAST_RECEIVED"),
    ] {
        let body = vectorcare_event(&format!("01JP{n:022}"), "VC-BODY", status, action);
        let res = s
            .app
            .post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
            .await;
        let ack: Value = res.json().await.unwrap();
        sent.push((ack["event_id"].as_str().unwrap().to_owned(), body));
    }
    s.drain().await;
    let received = rx.received();
    assert_eq!(received.len(), 4, "two failed attempts, two retries");
    for r in &received {
        assert!(verify(&secret, r), "signed over the body as sent");
        let text = std::str::from_utf8(&r.body).unwrap();
        let ce = r.json();
        let (id, body) = sent
            .iter()
            .find(|(id, _)| ce["id"] == id.as_str())
            .expect("one of the events sent");
        let original: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(ce["data"]["provider_data"], original);
        assert!(
            text.contains(std::str::from_utf8(body).unwrap()),
            "the provider's body, byte for byte"
        );
        let stale = *id == sent[1].0;
        assert_eq!(ce.get("stale"), stale.then_some(&Value::Bool(true)), "{id}");
        assert_eq!(ce["subject"], "VC-BODY");
    }

    // The admin API serves the same event, with the body in place.
    let detail: Value = s
        .app
        .get_as(
            &format!("/api/v1/tenants/acme/events/{}", sent[1].0),
            &s.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        detail["normalized"]["data"]["provider_data"],
        serde_json::from_slice::<Value>(&sent[1].1).unwrap()
    );
}

#[tokio::test]
async fn after_the_last_attempt_a_delivery_is_dead_visible_and_replayable() {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    let ep = s.endpoint(&rx.url, json!({})).await;
    rx.set_status(503);
    let event_id = s.event(1, "VC-DEAD").await;
    s.drain().await;
    let d = s.deliveries("?status=dead").await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["attempts"], 3, "the schedule has three attempts");
    assert_eq!(d[0]["last_status_code"], 503);

    rx.set_status(200);
    let id = d[0]["id"].as_str().unwrap();
    let res = s
        .app
        .post_as(
            &format!("/api/v1/tenants/acme/deliveries/{id}/redeliver"),
            &s.admin,
            json!({}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 202);
    s.drain().await;
    assert_eq!(s.delivery(id).await["status"], "succeeded");

    // Recover: every failed delivery of the endpoint since a time.
    rx.set_status(500);
    s.event(2, "VC-DEAD2").await;
    s.event(3, "VC-DEAD3").await;
    s.drain().await;
    assert_eq!(s.deliveries("?status=dead").await.len(), 2);
    rx.set_status(200);
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let res = s
        .app
        .post_as(
            &format!(
                "/api/v1/tenants/acme/endpoints/{}/recover",
                ep["id"].as_str().unwrap()
            ),
            &s.admin,
            json!({"since": since}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["recovered"], 2);
    s.drain().await;
    assert!(s.deliveries("?status=dead").await.is_empty());

    // Resend one event to one endpoint: a new delivery.
    let other = Receiver::start().await;
    let ep2 = s
        .endpoint(&other.url, json!({"event_types": ["lab.*"]}))
        .await;
    let res = s
        .app
        .post_as(
            &format!("/api/v1/tenants/acme/events/{event_id}/resend"),
            &s.admin,
            json!({"endpoint_id": ep2["id"]}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    s.drain().await;
    assert_eq!(other.received().len(), 1);
    assert_eq!(other.received()[0].json()["id"], event_id.as_str());
}

#[tokio::test]
async fn a_410_disables_the_endpoint_with_the_reason_visible() {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    let ep = s.endpoint(&rx.url, json!({})).await;
    rx.set_status(410);
    s.event(1, "VC-GONE").await;
    s.drain().await;
    s.event(2, "VC-GONE2").await;
    s.drain().await;
    assert_eq!(
        rx.received().len(),
        1,
        "nothing more is sent to a gone endpoint"
    );
    let got: Value = s
        .app
        .get_as(
            &format!(
                "/api/v1/tenants/acme/endpoints/{}",
                ep["id"].as_str().unwrap()
            ),
            &s.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["enabled"], false);
    assert_eq!(got["disabled_reason"], "the endpoint answered 410 Gone");
    assert_eq!(s.deliveries("?status=dead").await.len(), 1);
    assert!(
        s.deliveries("?status=pending").await.is_empty(),
        "a disabled endpoint is given no new deliveries"
    );
}

#[tokio::test]
async fn an_endpoint_that_only_fails_for_the_configured_period_is_disabled() {
    let s = setup_with(|c| c.delivery_disable_after = "1ms".into()).await;
    let rx = Receiver::start().await;
    let ep = s.endpoint(&rx.url, json!({})).await;
    rx.set_status(500);
    s.event(1, "VC-AUTO").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.drain().await;
    let got: Value = s
        .app
        .get_as(
            &format!(
                "/api/v1/tenants/acme/endpoints/{}",
                ep["id"].as_str().unwrap()
            ),
            &s.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["enabled"], false);
    assert!(
        got["disabled_reason"]
            .as_str()
            .unwrap()
            .starts_with("every delivery failed since"),
        "{got}"
    );
    assert!(got["failing_since"].is_string());
    // Enabling it again clears the failure run.
    let back: Value = s
        .app
        .patch_as(
            &format!(
                "/api/v1/tenants/acme/endpoints/{}",
                ep["id"].as_str().unwrap()
            ),
            &s.admin,
            json!({"enabled": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(back["disabled_reason"].is_null() && back["failing_since"].is_null());
}

#[tokio::test]
async fn retry_after_on_429_is_honoured_and_redirects_are_failures() {
    let s = setup_with(|c| c.delivery_retry_schedule = "0s,5s,5s".into()).await;
    let rx = Receiver::start().await;
    s.endpoint(&rx.url, json!({})).await;
    rx.set_status(429);
    rx.set_retry_after(Some("120"));
    s.event(1, "VC-429").await;
    s.drain().await;
    let d = &s.deliveries("").await[0];
    let next: chrono::DateTime<chrono::Utc> =
        d["next_attempt_at"].as_str().unwrap().parse().unwrap();
    let wait = (next - chrono::Utc::now()).num_seconds();
    assert!(
        (110..=121).contains(&wait),
        "waits the 120 s asked for, not 5 s: {wait}"
    );

    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    s.endpoint(&rx.url, json!({})).await;
    rx.set_status(302);
    s.event(1, "VC-302").await;
    s.drain().await;
    let d = &s.deliveries("").await[0];
    assert_eq!(d["status"], "dead");
    let detail = s.delivery(d["id"].as_str().unwrap()).await;
    assert_eq!(detail["attempt_log"][0]["error_class"], "redirect");
    assert_eq!(
        rx.received().len(),
        3,
        "the redirect target is never requested"
    );
    assert!(rx.received().iter().all(|r| r.status == 302));
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_another_endpoints_deliveries() {
    let s = setup_with(|c| {
        c.delivery_enabled = true;
        c.delivery_timeout = "10s".into();
    })
    .await;
    let slow = Receiver::start().await;
    let fast = Receiver::start().await;
    slow.set_delay(Duration::from_secs(8));
    s.endpoint(&slow.url, json!({})).await;
    s.endpoint(&fast.url, json!({})).await;
    let started = Instant::now();
    for i in 0..5 {
        s.event(i, &format!("VC-HOL{i}")).await;
    }
    let got = fast.wait_for(5, Duration::from_secs(6)).await;
    assert_eq!(got.len(), 5, "the fast endpoint got everything");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(slow.received().len() <= 5);
}

#[tokio::test]
async fn fifo_per_subject_holds_a_later_event_until_the_earlier_one_succeeded() {
    for (ordering, expect_fifo) in [("fifo_subject", true), ("none", false)] {
        let s = setup_with(|_| {}).await;
        let rx = Receiver::start().await;
        s.endpoint(&rx.url, json!({"ordering": ordering})).await;
        rx.fail_next(1);
        let first = s.event(1, "VC-FIFO").await;
        let second = s.event(2, "VC-FIFO").await;
        s.drain().await;
        let order: Vec<(String, u16)> = rx
            .received()
            .iter()
            .map(|r| (r.json()["id"].as_str().unwrap().to_owned(), r.status))
            .collect();
        if expect_fifo {
            assert_eq!(
                order,
                [
                    (first.clone(), 500),
                    (first.clone(), 200),
                    (second.clone(), 200)
                ],
                "{ordering}"
            );
        } else {
            assert_eq!(order.len(), 3);
            let first_round: std::collections::HashSet<&String> =
                order[..2].iter().map(|(id, _)| id).collect();
            assert!(
                first_round.contains(&first) && first_round.contains(&second),
                "without FIFO both go at once, before any retry: {order:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_per_endpoint_rate_limit_spaces_deliveries_and_drops_none() {
    let s = setup_with(|c| c.delivery_enabled = true).await;
    let rx = Receiver::start().await;
    s.endpoint(&rx.url, json!({"rate_limit_per_second": 2}))
        .await;
    let started = Instant::now();
    for i in 0..6 {
        s.event(i, &format!("VC-RATE{i}")).await;
    }
    let got = rx.wait_for(6, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 6, "every delivery arrives");
    let span = got.last().unwrap().at - started;
    assert!(
        span >= Duration::from_millis(1500),
        "six at two per second take at least two seconds: {span:?}"
    );
}
