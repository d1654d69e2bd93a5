//! Sequence numbers per endpoint and pull delivery: every event routed to an endpoint carries
//! the next number of the endpoint's sequence (body and header, signed); a receiver reads what
//! it missed by number; a pull endpoint is sent nothing, its reader long-polls with a token that
//! reads that endpoint only, and commits its cursor, which counts the events as delivered.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::delivery::{setup_with, verify, Setup};
use crate::helpers::assert_problem;
use crate::normalization::{assert_valid, schema};
use crate::receiver::Receiver;

async fn read(s: &Setup, endpoint: &str, query: &str, token: &str) -> reqwest::Response {
    s.app
        .get_as(
            &format!("/api/v1/tenants/acme/endpoints/{endpoint}/events{query}"),
            token,
        )
        .await
}

#[tokio::test]
async fn every_endpoint_numbers_its_events_without_gaps_and_a_receiver_reads_what_it_missed() {
    let s = setup_with(|_| {}).await;
    let (rx_a, rx_b) = (Receiver::start().await, Receiver::start().await);
    let a = s.endpoint(&rx_a.url, json!({})).await;
    let b = s.endpoint(&rx_b.url, json!({})).await;
    let lab_only = s
        .endpoint(&rx_b.url, json!({"event_types": ["lab.*"]}))
        .await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(s.event(n, &format!("VC-SEQ{n}")).await);
    }
    assert_eq!(s.drain().await, 10);

    for (ep, rx) in [(&a, &rx_a), (&b, &rx_b)] {
        let mut got: Vec<(i64, String)> = rx
            .received()
            .iter()
            .map(|r| {
                assert!(
                    verify(ep["signing_secret"].as_str().unwrap(), r),
                    "signed with the number"
                );
                let body = r.json();
                assert_valid(&schema(), &body);
                let seq = body["endpointseq"].as_i64().unwrap();
                assert_eq!(r.headers["x-gateway-sequence"], seq.to_string());
                (seq, body["id"].as_str().unwrap().to_owned())
            })
            .collect();
        got.sort();
        let expected: Vec<(i64, String)> = (1..=5).zip(ids.iter().cloned()).collect();
        assert_eq!(
            got, expected,
            "each endpoint numbers from 1, in arrival order"
        );
    }

    // A receiver that saw 1, 2 and 5 reads exactly 3 and 4.
    let a_id = a["id"].as_str().unwrap();
    let res = read(&s, a_id, "?after=2&limit=2", &s.admin).await;
    assert_eq!(res.status().as_u16(), 200);
    let page: Value = res.json().await.unwrap();
    let seqs: Vec<i64> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 4]);
    assert_eq!(page["next_after"], 4);
    assert_eq!(page["last_seq"], 5);
    assert_eq!(page["data"][0]["event_id"], ids[2].as_str());
    assert_eq!(page["data"][0]["status"], "succeeded");
    assert_eq!(page["data"][0]["event"]["endpointseq"], 3);
    assert_eq!(page["data"][0]["event"]["id"], ids[2].as_str());

    // The filtered endpoint was routed nothing: its sequence has not started.
    let lab: Value = read(&s, lab_only["id"].as_str().unwrap(), "", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lab["last_seq"], 0);
    assert_eq!(lab["data"], json!([]));

    for bad in [
        "?after=-1",
        "?limit=0",
        "?limit=1001",
        "?wait=61s",
        "?wait=soon",
    ] {
        assert_problem(
            read(&s, a_id, bad, &s.admin).await,
            422,
            "validation_failed",
        )
        .await;
    }
    // The number is the gateway's: an endpoint header may not set it.
    let res = s
        .app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &s.admin,
            json!({"url": rx_a.url, "headers": {"X-Gateway-Sequence": "1"}}),
        )
        .await;
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "headers.X-Gateway-Sequence");

    // A resend is out of sequence: it carries no number and is not listed.
    let res = s
        .app
        .post_as(
            &format!("/api/v1/tenants/acme/events/{}/resend", ids[0]),
            &s.admin,
            json!({"endpoint_id": a_id}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(s.drain().await, 1);
    let resent = rx_a.received().pop().unwrap();
    assert!(!resent.headers.contains_key("x-gateway-sequence"));
    assert!(resent.json().get("endpointseq").is_none());
    let all: Value = read(&s, a_id, "?limit=100", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn a_pull_endpoint_is_sent_nothing_and_its_reader_long_polls_then_commits_its_cursor() {
    let s = setup_with(|_| {}).await;
    let res = s
        .app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &s.admin,
            json!({"kind": "pull", "payload_mode": "minimal"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let ep: Value = res.json().await.unwrap();
    assert_eq!(ep["kind"], "pull");
    let id = ep["id"].as_str().unwrap().to_owned();
    let tenant = ep["tenant_id"].as_str().unwrap().to_owned();
    assert_eq!(
        ep["url"],
        format!("https://gateway.test/api/v1/tenants/{tenant}/endpoints/{id}/events")
    );
    for (body, field) in [
        (json!({"kind": "pull", "url": "http://127.0.0.1:9/"}), "url"),
        (json!({"kind": "pull", "handshake": true}), "handshake"),
        (
            json!({"kind": "pull", "heartbeat_minutes": 5}),
            "heartbeat_minutes",
        ),
        (json!({}), "url"),
    ] {
        let res = s
            .app
            .post_as("/api/v1/tenants/acme/endpoints", &s.admin, body)
            .await;
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }

    for body in [
        json!({"handshake": true}),
        json!({"url": "https://elsewhere.example/"}),
    ] {
        let res = s
            .app
            .patch_as(
                &format!("/api/v1/tenants/acme/endpoints/{id}"),
                &s.admin,
                body,
            )
            .await;
        assert_problem(res, 409, "conflict").await;
    }
    let token: Value = s
        .app
        .post_as(
            &format!("/api/v1/tenants/acme/endpoints/{id}/tokens"),
            &s.admin,
            json!({"name": "lab reader"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(token["role"], "endpoint");
    assert_eq!(token["endpoint_id"], id.as_str());
    let reader = token["token"].as_str().unwrap().to_owned();

    // The reader waits; an event arrives meanwhile and is answered at once.
    let waiting = {
        let (client, url) = (
            s.app.client.clone(),
            s.app.url(&format!(
                "/api/v1/tenants/acme/endpoints/{id}/events?wait=30s"
            )),
        );
        let reader = reader.clone();
        tokio::spawn(async move {
            let res = client.get(url).bearer_auth(reader).send().await.unwrap();
            (
                res.status().as_u16(),
                res.json::<Value>().await.unwrap(),
                Instant::now(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "nothing to read yet: the reader waits"
    );
    let sent_at = Instant::now();
    let event = s.event(1, "VC-PULL1").await;
    let (status, page, answered_at) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        answered_at - sent_at < Duration::from_secs(2),
        "answered {:?} after the event was stored",
        answered_at - sent_at
    );
    assert_eq!(page["data"][0]["seq"], 1);
    assert_eq!(page["data"][0]["event_id"], event.as_str());
    assert_eq!(page["data"][0]["status"], "pending");
    let body = &page["data"][0]["event"];
    assert_valid(&schema(), body);
    assert!(
        body["dataref"].is_string(),
        "the endpoint's payload mode: {body}"
    );
    assert!(body["data"].get("patient").is_none());

    // Nothing was pushed, nothing is claimable.
    assert_eq!(s.drain().await, 0);
    s.event(2, "VC-PULL2").await;
    let cursor: Value = s
        .app
        .get_as(
            &format!("/api/v1/tenants/acme/endpoints/{id}/cursor"),
            &reader,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cursor["last_seq"], 2);
    assert_eq!(cursor["cursor"], 0);
    assert_eq!(cursor["backlog"], 2);
    assert!(cursor["lag_seconds"].as_f64().unwrap() >= 0.0);
    assert!(cursor["read_at"].is_string());

    let commit = |to: i64| {
        let (app, path, reader) = (
            &s.app,
            format!("/api/v1/tenants/acme/endpoints/{id}/cursor"),
            reader.clone(),
        );
        async move { app.put_as(&path, &reader, json!({"cursor": to})).await }
    };
    let res = commit(1).await;
    assert_eq!(res.status().as_u16(), 200);
    let moved: Value = res.json().await.unwrap();
    assert_eq!(
        (moved["cursor"].as_i64(), moved["backlog"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        commit(1).await.status().as_u16(),
        200,
        "the same value again is fine"
    );
    assert_problem(commit(0).await, 409, "conflict").await;
    assert_problem(commit(3).await, 422, "validation_failed").await;
    // Without `after`, the reader continues from its cursor.
    let next: Value = read(&s, &id, "", &reader).await.json().await.unwrap();
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_eq!(next["data"][0]["seq"], 2);
    let delivered = s.deliveries("?status=succeeded").await;
    assert_eq!(delivered.len(), 1, "the cursor passed one event");
    assert_eq!(delivered[0]["event_id"], event.as_str());

    let stats: Value = s
        .app
        .get_as("/api/v1/stats", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    let shown = stats["pull"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["endpoint_id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        (shown["cursor"].as_i64(), shown["backlog"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(shown["read_at"].is_string() && shown["lag_seconds"].is_number());

    // Retention applies to what sits unread: past it, the payload is purged and reads as null.
    let purged = crate::retention::purge_as_of(&s, 31).await;
    assert_eq!(purged, 2, "both events, the unread one too");
    let after: Value = read(&s, &id, "", &reader).await.json().await.unwrap();
    assert_eq!(after["data"][0]["seq"], 2);
    assert!(after["data"][0]["event"].is_null(), "{after}");

    // The monitor sets the pull gauges.
    s.app.state.monitor.tick().await.unwrap();
    let metrics = s.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(&format!("gateway_pull_backlog{{endpoint=\"{id}\"}} 1")),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("gateway_pull_lag_seconds{{endpoint=\"{id}\"}}")));
    assert!(metrics.contains(&format!(
        "gateway_pull_last_read_timestamp_seconds{{endpoint=\"{id}\"}}"
    )));
}

#[tokio::test]
async fn an_endpoint_token_reads_its_own_endpoint_only_and_stops_working_when_revoked() {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    let mine = s.endpoint(&rx.url, json!({})).await;
    let other = s.endpoint(&rx.url, json!({})).await;
    let mine = mine["id"].as_str().unwrap();
    let token: Value = s
        .app
        .post_as(
            &format!("/api/v1/tenants/acme/endpoints/{mine}/tokens"),
            &s.admin,
            json!({"name": "gap filler", "expires_in": "30d"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let jwt = token["token"].as_str().unwrap();
    assert_eq!(read(&s, mine, "", jwt).await.status().as_u16(), 200);
    assert_problem(
        read(&s, other["id"].as_str().unwrap(), "", jwt).await,
        404,
        "not_found",
    )
    .await;
    for path in [
        "/api/v1/tenants/acme/events",
        "/api/v1/tenants/acme/endpoints",
        "/api/v1/tenants",
        "/api/v1/audit",
    ] {
        assert_problem(s.app.get_as(path, jwt).await, 403, "forbidden").await;
    }
    let res = s
        .app
        .post_as(
            &format!("/api/v1/tenants/acme/endpoints/{mine}/tokens"),
            jwt,
            json!({"name": "more"}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    let listed: Value = s
        .app
        .get_as(
            &format!("/api/v1/tenants/acme/endpoints/{mine}/tokens"),
            &s.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("token").is_none(), "never the JWT again");
    let res = s
        .app
        .delete_as(
            &format!(
                "/api/v1/tenants/acme/endpoints/{mine}/tokens/{}",
                token["id"].as_str().unwrap()
            ),
            &s.admin,
        )
        .await;
    assert_eq!(res.status().as_u16(), 204);
    assert_problem(read(&s, mine, "", jwt).await, 401, "token_revoked").await;
    // Endpoint tokens are not made through the general token route.
    let res = s
        .app
        .post_as(
            "/api/v1/tokens",
            &s.admin,
            json!({"name": "x", "role": "endpoint"}),
        )
        .await;
    assert_problem(res, 422, "validation_failed").await;
}
