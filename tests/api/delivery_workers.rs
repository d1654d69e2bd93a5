//! Delivery workers: the SSRF guard at send time, test sends and statistics, leases (claimed and
//! handed off), the per-endpoint concurrency cap, and how failed attempts are classified.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::delivery::{setup_with, verify};
use crate::helpers::assert_problem;
use crate::receiver::Receiver;

#[tokio::test]
async fn the_ssrf_guard_refuses_internal_targets_unless_allowlisted() {
    // `receiver.test` resolves, through the gateway's own resolver, to the receiver on loopback.
    let s = setup_with(|c| {
        c.ssrf_allowlist = String::new();
        c.ssrf_resolve = "receiver.test=127.0.0.1".into();
    })
    .await;
    let rx = Receiver::start().await;
    // A literal internal address is refused when the endpoint is created.
    let res = s
        .app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &s.admin,
            json!({"url": rx.url}),
        )
        .await;
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "url");

    // A name is checked on every attempt, after resolution.
    let named = rx.url.replace("127.0.0.1", "receiver.test");
    let ep = s.endpoint(&named, json!({})).await;
    s.event(1, "VC-SSRF").await;
    s.drain().await;
    assert!(
        rx.received().is_empty(),
        "nothing reached the internal address"
    );
    let d = &s.deliveries("").await[0];
    let detail = s.delivery(d["id"].as_str().unwrap()).await;
    assert_eq!(detail["attempt_log"][0]["error_class"], "ssrf_refused");

    // `localhost` resolves to loopback through the system resolver: refused too.
    let res = s
        .app
        .patch_as(
            &format!(
                "/api/v1/tenants/acme/endpoints/{}",
                ep["id"].as_str().unwrap()
            ),
            &s.admin,
            json!({"url": rx.url.replace("127.0.0.1", "localhost")}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let res: Value = s
        .app
        .post_as(
            &format!(
                "/api/v1/tenants/acme/endpoints/{}/test",
                ep["id"].as_str().unwrap()
            ),
            &s.admin,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["success"], false);
    assert_eq!(res["error_class"], "ssrf_refused");
    assert!(rx.received().is_empty());
}

#[tokio::test]
async fn a_test_event_reports_the_endpoints_answer_and_stats_summarize_attempts() {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    let ep = s.endpoint(&rx.url, json!({})).await;
    let id = ep["id"].as_str().unwrap();
    let res: Value = s
        .app
        .post_as(
            &format!("/api/v1/tenants/acme/endpoints/{id}/test"),
            &s.admin,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["success"], true);
    assert_eq!(res["status_code"], 200);
    assert_eq!(rx.received()[0].json()["type"], "gateway.test");
    assert!(verify(
        ep["signing_secret"].as_str().unwrap(),
        &rx.received()[0]
    ));

    rx.fail_next(1);
    s.event(1, "VC-STATS").await;
    s.event(2, "VC-STATS2").await;
    s.drain().await;
    let stats: Value = s
        .app
        .get_as(
            &format!("/api/v1/tenants/acme/endpoints/{id}/stats"),
            &s.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["attempts"], 3);
    assert_eq!(stats["successes"], 2);
    assert!((stats["success_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert!(stats["latency_ms"]["p50"].is_number());
    assert_eq!(stats["backlog"], 0);

    let metrics = s.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"gateway_delivery_attempts_total{outcome="success"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"gateway_delivery_attempts_total{outcome="failure"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_delivery_queue_depth 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_delivery_whose_worker_died_is_taken_over_when_its_lease_expires() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
    let s = setup_with(|c| {
        c.delivery_timeout = "4s".into();
        c.delivery_lease = "9s".into();
    })
    .await;
    let rx = Receiver::start().await;
    s.endpoint(&rx.url, json!({})).await;
    s.event(1, "VC-LEASE").await;
    // A worker claimed it and died: the lease is held, nothing was sent.
    let before = chrono::Utc::now();
    let claimed = s.app.state.delivery.claim(10).await.unwrap();
    let after = chrono::Utc::now();
    assert_eq!(claimed.len(), 1);
    assert_eq!(s.drain().await, 0, "a leased delivery is not sent twice");
    assert!(rx.received().is_empty());

    let row = gateway::store::delivery::Entity::find_by_id(claimed[0].id.clone())
        .one(&s.app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(row.next_attempt_at),
        row.leased_until,
        "a leased delivery is next due when its lease runs out"
    );
    let lease = row.leased_until.unwrap();
    assert!(
        lease >= before + chrono::Duration::seconds(9)
            && lease <= after + chrono::Duration::seconds(9),
        "a claim holds its delivery for delivery_lease: {before} .. {lease} .. {after}"
    );
    // Time passes beyond the lease.
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let mut expired: gateway::store::delivery::ActiveModel = row.into();
    expired.leased_until = Set(Some(past));
    expired.next_attempt_at = Set(past);
    expired.update(&s.app.state.db).await.unwrap();
    assert_eq!(s.drain().await, 1);
    assert_eq!(rx.received().len(), 1);
}

#[tokio::test]
async fn a_new_delivery_is_leased_when_stored_and_sent_without_being_claimed() {
    use sea_orm::EntityTrait;
    let s = setup_with(|c| {
        c.delivery_enabled = true;
        c.delivery_timeout = "4s".into();
        c.delivery_lease = "9s".into();
    })
    .await;
    let rx = Receiver::start().await;
    rx.set_delay(Duration::from_millis(1500));
    s.endpoint(&rx.url, json!({})).await;
    s.event(1, "VC-HANDOFF").await;

    // Acknowledged: the row is leased to this process (the request is on its way to the slow
    // receiver) and due only when the lease runs out, so no claim can take it.
    let rows = gateway::store::delivery::Entity::find()
        .all(&s.app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status.as_str(), "pending");
    assert!(rows[0].leased_by.is_some(), "stored with its lease");
    assert_eq!(rows[0].leased_until, Some(rows[0].next_attempt_at));
    assert_eq!(
        rows[0].leased_until,
        Some(rows[0].created_at + chrono::Duration::seconds(9)),
        "a handed-off delivery is held for delivery_lease from its creation"
    );
    assert!(s.app.state.delivery.claim(10).await.unwrap().is_empty());
    assert_eq!(rx.wait_for(1, Duration::from_secs(5)).await.len(), 1);

    let done = wait_until(Duration::from_secs(5), || async {
        gateway::store::delivery::Entity::find_by_id(rows[0].id.clone())
            .one(&s.app.state.db)
            .await
            .unwrap()
            .filter(|d| d.status.as_str() == "succeeded")
    })
    .await;
    assert!(done.is_some(), "the outcome is recorded");
    assert_eq!(rx.received().len(), 1, "sent once");
}

/// Polls `check` until it returns something or `limit` passes.
async fn wait_until<T, F, Fut>(limit: Duration, check: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_per_endpoint_concurrency_cap_keeps_one_delivery_in_flight_at_a_time() {
    let s = setup_with(|c| c.delivery_enabled = true).await;
    let rx = Receiver::start().await;
    rx.set_delay(Duration::from_millis(300));
    s.endpoint(&rx.url, json!({"max_concurrency": 1})).await;
    for i in 0..3 {
        s.event(i, &format!("VC-CAP{i}")).await;
    }
    let got = rx.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    let mut arrivals: Vec<Instant> = got.iter().map(|r| r.at).collect();
    arrivals.sort();
    for pair in arrivals.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(280),
            "a second request arrived while one was in flight"
        );
    }
}

#[tokio::test]
async fn the_attempt_log_classifies_dns_tls_and_connection_failures() {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    let port = rx
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // A closed port, a name that cannot resolve, and TLS spoken to a plain HTTP server.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        (format!("http://127.0.0.1:{closed}/"), "connect"),
        ("https://no-such-host.invalid/".to_owned(), "dns"),
        (format!("https://127.0.0.1:{port}/"), "tls"),
    ];
    for (url, class) in cases {
        let ep = s.endpoint(&url, json!({})).await;
        let res: Value = s
            .app
            .post_as(
                &format!(
                    "/api/v1/tenants/acme/endpoints/{}/test",
                    ep["id"].as_str().unwrap()
                ),
                &s.admin,
                json!({}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(res["success"], false, "{url}");
        assert_eq!(res["error_class"], class, "{url}: {res}");
    }
}
