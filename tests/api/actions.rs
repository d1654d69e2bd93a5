//! Provider actions against local servers playing VectorCare and Vital as documented.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use crate::fake_providers::{FakeProviders, CLIENT_ID, CLIENT_SECRET, VITAL_KEY};
use crate::helpers::{assert_problem, spawn_app_with, TestApp, VECTORCARE_PUBLIC_PEM};

struct World {
    app: TestApp,
    admin: String,
    fake: FakeProviders,
}

async fn world_with_secret(secret: &str) -> World {
    let app = spawn_app_with(|s| s.allow_http_endpoints = true).await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let fake = FakeProviders::start().await;
    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/vectorcare",
            &admin,
            json!({
                "public_keys": [VECTORCARE_PUBLIC_PEM],
                "client_id": CLIENT_ID,
                "client_secret": secret,
                "token_url": fake.token_url(),
                "api_base_url": fake.api_base(),
            }),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    World { app, admin, fake }
}

async fn world() -> World {
    world_with_secret(CLIENT_SECRET).await
}

fn minutes_ago(m: i64) -> String {
    (Utc::now() - chrono::Duration::minutes(m))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl World {
    async fn act(&self, request: &str, call: &str, body: Value) -> reqwest::Response {
        self.app
            .post_as(
                &format!("/api/v1/tenants/acme/vectorcare/requests/{request}/{call}"),
                &self.admin,
                body,
            )
            .await
    }
}

#[tokio::test]
async fn accepting_a_broadcast_calls_vectorcare_with_a_client_credentials_token_and_shows_in_the_timeline(
) {
    let w = world().await;
    let res = w
        .act(
            "VC-1001",
            "accept",
            json!({"response_notes": "Unit 12 on the way"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["outcome"], "succeeded");
    assert_eq!(body["provider_status"], 201);
    assert_eq!(body["action"], "accept");
    assert_eq!(body["subject"], "VC-1001");
    assert!(body["id"].as_str().unwrap().starts_with("act_"));

    // The token request: client credentials in the form body, as documented.
    let forms = w.fake.state.token_requests.lock().unwrap().clone();
    assert_eq!(forms.len(), 1);
    assert_eq!(forms[0]["grant_type"], "client_credentials");
    assert_eq!(forms[0]["client_id"], CLIENT_ID);
    assert_eq!(forms[0]["client_secret"], CLIENT_SECRET);
    let calls = w.fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "PUT");
    assert_eq!(calls[0].path, "/openapi/v2.0/requests/VC-1001/accept/");
    assert_eq!(calls[0].authorization.as_deref(), Some("Bearer vc-token-1"));
    assert_eq!(
        calls[0].body,
        json!({"response_notes": "Unit 12 on the way"})
    );

    // Every other call, with the documented method, path and body; the token is reused.
    let at = minutes_ago(3);
    for (call, body, method, path, sent) in [
        ("decline", json!({}), "PUT", "decline/", json!({})),
        (
            "state",
            json!({"name": "en_route", "timestamp": at}),
            "POST",
            "state/",
            json!({"name": "en_route", "timestamp": at}),
        ),
        (
            "best-time",
            json!({"proposed_agreed_dt": "2030-01-16T09:00:00+00:00"}),
            "PUT",
            "best-time/",
            json!({"proposed_agreed_dt": "2030-01-16T09:00:00Z"}),
        ),
        (
            "change-request",
            json!({"agreed_dt": "2030-01-16T10:30:00Z", "change_reason": "Traffic"}),
            "POST",
            "change-request/",
            json!({"agreed_dt": "2030-01-16T10:30:00Z", "change_reason": "Traffic"}),
        ),
    ] {
        let res = w.act("VC-1001", call, body).await;
        assert_eq!(res.status().as_u16(), 200, "{call}");
        let last = w.fake.calls().pop().unwrap();
        assert_eq!(last.method, method, "{call}");
        assert_eq!(last.path, format!("/openapi/v2.0/requests/VC-1001/{path}"));
        assert_eq!(last.body, sent, "{call}");
    }
    let ts = Utc::now().timestamp() - 30;
    let res = w
        .act(
            "VC-1001",
            "locations",
            json!({"locations": [{"lat": 40.7, "lng": -74.0, "alt": 10.0, "speed": 12.5, "timestamp": ts}]}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        w.fake.calls().pop().unwrap().body,
        json!([{"lat": 40.7, "lng": -74.0, "alt": 10.0, "speed": 12.5, "timestamp": ts}])
    );
    assert_eq!(w.fake.token_requests(), 1, "one token serves every call");

    // The webhook it caused and the actions sit in one timeline.
    let hook = crate::webhooks::vectorcare_event(
        "01JM0000000000000000000A01",
        "VC-1001",
        "ASSIGNED",
        "BROADCAST_ACCEPTED",
    );
    let ack = w
        .app
        .post_vectorcare(
            "/webhooks/vectorcare/acme",
            &hook,
            crate::webhooks::VECTORCARE_PRIVATE_PEM,
        )
        .await;
    assert_eq!(ack.status().as_u16(), 200);
    let timeline: Value = w
        .app
        .get_as("/api/v1/tenants/acme/subjects/VC-1001/timeline", &w.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(timeline["events"].as_array().unwrap().len(), 1);
    let actions: Vec<&str> = timeline["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "accept",
            "decline",
            "state",
            "best_time",
            "change_request",
            "locations"
        ]
    );
    let first = &timeline["actions"][0];
    assert_eq!(first["outcome"], "succeeded");
    assert_eq!(first["provider_status"], 201);
    assert!(first["actor"].as_str().is_some());
    assert!(first["request_id"].as_str().is_some());
}

#[tokio::test]
async fn a_token_is_refreshed_at_about_eighty_percent_of_its_lifetime() {
    let w = world().await;
    w.fake.state.expires_in.store(2, Ordering::SeqCst);
    assert_eq!(w.act("VC-1", "decline", json!({})).await.status(), 200);
    assert_eq!(w.act("VC-1", "decline", json!({})).await.status(), 200);
    assert_eq!(w.fake.token_requests(), 1, "still fresh: reused");
    // 80 % of 2 s: past 1.6 s a new token is fetched, before the old one expires.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(w.act("VC-1", "decline", json!({})).await.status(), 200);
    assert_eq!(w.fake.token_requests(), 2);
    let calls = w.fake.calls();
    assert_eq!(calls.len(), 3, "no call was refused on the way");
    assert_eq!(calls[2].authorization.as_deref(), Some("Bearer vc-token-2"));
}

#[tokio::test]
async fn concurrent_calls_share_one_token_request() {
    let w = world().await;
    w.fake.state.token_delay_ms.store(300, Ordering::SeqCst);
    let at = minutes_ago(1);
    let answers = futures_util::future::join_all((0..8).map(|i| {
        w.act(
            Box::leak(format!("VC-C{i}").into_boxed_str()),
            "state",
            json!({"name": "arrived", "timestamp": at}),
        )
    }))
    .await;
    for a in answers {
        assert_eq!(a.status().as_u16(), 200);
    }
    assert_eq!(w.fake.token_requests(), 1);
    assert_eq!(w.fake.calls().len(), 8);
}

#[tokio::test]
async fn an_expired_token_answered_401_is_replaced_and_the_call_retried_once() {
    let w = world().await;
    assert_eq!(w.act("VC-2", "accept", json!({})).await.status(), 200);
    w.fake.expire_tokens();
    let res = w.act("VC-2", "decline", json!({})).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(w.fake.token_requests(), 2);
    let calls = w.fake.calls();
    assert_eq!(
        calls.len(),
        3,
        "accept, the refused decline, the retried decline"
    );
    assert_eq!(calls[1].authorization.as_deref(), Some("Bearer vc-token-1"));
    assert_eq!(calls[2].authorization.as_deref(), Some("Bearer vc-token-2"));
}

#[tokio::test]
async fn invalid_client_is_reported_as_a_problem_of_the_connection_and_recorded() {
    let w = world_with_secret("not-the-secret").await;
    let res = w.act("VC-3", "accept", json!({})).await;
    let body = assert_problem(res, 502, "provider_credentials_rejected").await;
    assert!(
        body["detail"].as_str().unwrap().contains("invalid_client"),
        "{body}"
    );
    assert!(w.fake.calls().is_empty(), "no API call without a token");
    let list: Value = w
        .app
        .get_as("/api/v1/tenants/acme/actions?subject=VC-3", &w.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["outcome"], "failed");
    assert_eq!(
        list["data"][0]["error_code"],
        "provider_credentials_rejected"
    );
    // The secret given is never echoed in the record.
    assert!(!list.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn provider_refusals_map_to_problems_carrying_the_providers_message() {
    let w = world().await;
    let gone = assert_problem(
        w.act("VC-GONE", "accept", json!({})).await,
        409,
        "provider_forbidden",
    )
    .await;
    assert!(
        gone["detail"]
            .as_str()
            .unwrap()
            .contains("no longer available"),
        "{gone}"
    );
    let missing = assert_problem(
        w.act("VC-MISSING", "accept", json!({})).await,
        404,
        "provider_not_found",
    )
    .await;
    assert!(missing["detail"].as_str().unwrap().contains("Not found."));
    let bad = assert_problem(
        w.act("VC-BAD", "accept", json!({})).await,
        422,
        "provider_bad_request",
    )
    .await;
    assert!(bad["detail"].as_str().unwrap().contains("450 characters"));
    let busy = w.act("VC-BUSY", "accept", json!({})).await;
    assert_eq!(
        busy.headers().get("retry-after").unwrap().to_str().unwrap(),
        "7"
    );
    assert_problem(busy, 429, "provider_rate_limited").await;

    let list: Value = w
        .app
        .get_as("/api/v1/tenants/acme/actions?subject=VC-GONE", &w.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["provider_status"], 403);
    assert_eq!(list["data"][0]["outcome"], "failed");
}

#[tokio::test]
async fn inputs_vectorcare_would_refuse_are_rejected_before_any_call() {
    let w = world().await;
    let now = Utc::now().timestamp();
    let point = |lat: Value, alt: Option<f64>, ts: i64| {
        let mut p = json!({"lat": lat, "lng": -74.0, "timestamp": ts});
        if let Some(a) = alt {
            p["alt"] = json!(a);
        }
        p
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "accept",
            json!({"response_notes": "x".repeat(451)}),
            "response_notes",
        ),
        (
            "decline",
            json!({"response_notes": "y".repeat(451)}),
            "response_notes",
        ),
        (
            "state",
            json!({"name": "teleported", "timestamp": minutes_ago(1)}),
            "name",
        ),
        (
            "state",
            json!({"name": "arrived", "timestamp": minutes_ago(-10)}),
            "timestamp",
        ),
        (
            "state",
            json!({"name": "arrived", "timestamp": minutes_ago(8 * 24 * 60)}),
            "timestamp",
        ),
        (
            "state",
            json!({"name": "arrived", "timestamp": "2025-01-15T14:30:00+02:00"}),
            "timestamp",
        ),
        ("locations", json!({"locations": []}), "locations"),
        (
            "locations",
            json!({"locations": (0..201).map(|_| point(json!(40.0), Some(1.0), now)).collect::<Vec<_>>()}),
            "locations",
        ),
        (
            "locations",
            json!({"locations": [point(json!(40.0), None, now)]}),
            "locations[0].alt",
        ),
        (
            "locations",
            json!({"locations": [point(json!(95.0), Some(1.0), now)]}),
            "locations[0].lat",
        ),
        (
            "locations",
            json!({"locations": [point(json!(40.0), Some(1.0), now + 3600)]}),
            "locations[0].timestamp",
        ),
        (
            "best-time",
            json!({"proposed_agreed_dt": "tomorrow"}),
            "proposed_agreed_dt",
        ),
        (
            "change-request",
            json!({"agreed_dt": "2030-01-16T10:30:00Z", "change_reason": "z".repeat(451)}),
            "change_reason",
        ),
        (
            "change-request",
            json!({"agreed_dt": "2030-01-16T10:30:00-05:00", "change_reason": "Traffic"}),
            "agreed_dt",
        ),
    ];
    for (call, body, field) in cases {
        let res = w.act("VC-4", call, body).await;
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{call}: {problem}");
    }
    let bad_id = w.act("a..b%2F..", "accept", json!({})).await;
    assert_eq!(bad_id.status().as_u16(), 400);
    assert_eq!(w.fake.token_requests(), 0, "nothing reached VectorCare");
    assert!(w.fake.calls().is_empty());
    let list: Value = w
        .app
        .get_as("/api/v1/tenants/acme/actions", &w.admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(list["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_connection_without_client_credentials_is_named_as_incomplete() {
    let app = spawn_app_with(|s| s.allow_http_endpoints = true).await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let res = app
        .post_as(
            "/api/v1/tenants/acme/vectorcare/requests/VC-1/accept",
            &admin,
            json!({}),
        )
        .await;
    assert_problem(res, 409, "connection_incomplete").await;
    app.put_as(
        "/api/v1/tenants/acme/providers/vectorcare",
        &admin,
        json!({"public_keys": [VECTORCARE_PUBLIC_PEM]}),
    )
    .await;
    let res = app
        .post_as(
            "/api/v1/tenants/acme/vectorcare/requests/VC-1/accept",
            &admin,
            json!({}),
        )
        .await;
    let body = assert_problem(res, 409, "connection_incomplete").await;
    assert!(body["detail"].as_str().unwrap().contains("client_secret"));
}

#[tokio::test]
async fn vital_resends_the_latest_webhooks_of_orders_with_the_tenants_api_key() {
    let w = world().await;
    let res = w
        .app
        .put_as(
            "/api/v1/tenants/acme/providers/vital",
            &w.admin,
            json!({
                "signing_secrets": [crate::helpers::VITAL_SECRET],
                "api_key": VITAL_KEY,
                "api_base_url": format!("{}/", w.fake.base),
            }),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let tenant_token = {
        let t: Value = w
            .app
            .get_as("/api/v1/tenants/acme", &w.admin)
            .await
            .json()
            .await
            .unwrap();
        w.app.tenant_token(t["id"].as_str().unwrap()).await
    };
    let res = w
        .app
        .post_as(
            "/api/v1/tenants/acme/vital/resend-events",
            &tenant_token,
            json!({"order_ids": ["ord-1", "ord-2"]}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let calls = w.fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/v3/order/resend_events");
    assert_eq!(calls[0].vital_key.as_deref(), Some(VITAL_KEY));
    assert_eq!(calls[0].body, json!({"order_ids": ["ord-1", "ord-2"]}));
    for order in ["ord-1", "ord-2"] {
        let t: Value = w
            .app
            .get_as(
                &format!("/api/v1/tenants/acme/subjects/{order}/timeline"),
                &w.admin,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(t["actions"][0]["action"], "resend_events", "{order}");
        assert_eq!(t["actions"][0]["provider"], "vital");
        assert_eq!(t["actions"][0]["outcome"], "succeeded");
    }

    let invalid = w
        .app
        .post_as(
            "/api/v1/tenants/acme/vital/resend-events",
            &w.admin,
            json!({}),
        )
        .await;
    assert_problem(invalid, 422, "validation_failed").await;
    let window = w
        .app
        .post_as(
            "/api/v1/tenants/acme/vital/resend-events",
            &w.admin,
            json!({"start_at": "2026-01-01T00:00:00Z", "end_at": "2026-04-01T00:00:00Z"}),
        )
        .await;
    let p = assert_problem(window, 422, "validation_failed").await;
    assert_eq!(p["errors"][0]["field"], "end_at");
    assert_eq!(w.fake.calls().len(), 1, "refused inputs never reach Vital");

    // A wrong key is the connection's problem.
    w.app
        .put_as(
            "/api/v1/tenants/acme/providers/vital",
            &w.admin,
            json!({"api_key": "sk_wrong_key_000000"}),
        )
        .await;
    let res = w
        .app
        .post_as(
            "/api/v1/tenants/acme/vital/resend-events",
            &w.admin,
            json!({"order_ids": ["ord-3"]}),
        )
        .await;
    assert_problem(res, 502, "provider_credentials_rejected").await;
}
