//! Uber Health's trips API through the gateway: one scoped token for many calls, one refresh on
//! a 401, every documented error.

use std::sync::atomic::Ordering;

use serde_json::Value;

use super::{world, TRIP};
use crate::helpers::assert_problem;

#[tokio::test]
async fn getting_and_cancelling_a_trip_use_the_tenants_scoped_token_and_show_in_its_timeline() {
    let w = world().await;
    let res = w.act(reqwest::Method::GET, TRIP).await;
    assert_eq!(res.status().as_u16(), 200);
    let got: Value = res.json().await.unwrap();
    assert_eq!(got["action"], "get_trip");
    assert_eq!(got["outcome"], "succeeded");
    assert_eq!(got["provider_response"]["guest"]["first_name"], "Ada");
    let res = w
        .act(reqwest::Method::POST, &format!("{TRIP}/cancel"))
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let cancelled: Value = res.json().await.unwrap();
    assert_eq!(
        (
            cancelled["provider_status"].as_i64(),
            cancelled["action"].as_str()
        ),
        (Some(204), Some("cancel_trip"))
    );

    let form = w.uber.state.token_requests.lock().unwrap()[0].clone();
    assert_eq!(form.get("scope").map(String::as_str), Some("health"));
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    let calls = w.uber.calls();
    assert_eq!(
        calls
            .iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect::<Vec<_>>(),
        [
            format!("GET /v1/health/trips/{TRIP}"),
            format!("DELETE /v1/health/trips/{TRIP}")
        ]
    );
    assert!(calls
        .iter()
        .all(|(_, _, a)| a.as_deref() == Some("Bearer uber-token-1")));

    let timeline: Value = w
        .read(&format!("/api/v1/tenants/acme/subjects/{TRIP}/timeline"))
        .await;
    let actions: Vec<&str> = timeline["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["get_trip", "cancel_trip"]);
    let listed = w.read("/api/v1/tenants/acme/actions").await.to_string();
    assert!(
        !listed.contains("Lovelace"),
        "the trip's patient data is not stored"
    );
}

#[tokio::test]
async fn many_calls_cost_one_token_request_and_a_revoked_token_is_replaced_once() {
    let w = world().await;
    let concurrent = futures_util::future::join_all((0..10).map(|i| {
        w.act(
            reqwest::Method::GET,
            Box::leak(format!("trip-{i}").into_boxed_str()),
        )
    }))
    .await;
    assert!(concurrent.iter().all(|r| r.status().as_u16() == 200));
    for i in 0..10 {
        assert_eq!(
            w.act(reqwest::Method::GET, &format!("trip-s{i}"))
                .await
                .status()
                .as_u16(),
            200
        );
    }
    assert_eq!(w.uber.token_requests(), 1, "20 calls, one token");

    // Uber invalidates a token early (a 101st token elsewhere): one new token, one retry.
    w.uber.forget_tokens();
    assert_eq!(
        w.act(reqwest::Method::GET, "trip-after")
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(w.uber.token_requests(), 2);
    assert_eq!(w.uber.calls().len(), 22, "20, the refused call, its retry");
    assert_eq!(
        w.act(reqwest::Method::GET, "trip-next")
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        w.uber.token_requests(),
        2,
        "the new token is cached in turn"
    );
}

#[tokio::test]
async fn each_uber_error_answers_its_problem_and_is_recorded() {
    let w = world().await;
    for (trip, status, code) in [
        ("trip-bad", 422, "provider_bad_request"),
        ("trip-forbidden", 409, "provider_forbidden"),
        ("trip-missing", 404, "provider_not_found"),
        ("trip-broken", 502, "provider_failed"),
    ] {
        let res = w.act(reqwest::Method::GET, trip).await;
        let problem = assert_problem(res, status, code).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("Uber Health"),
            "{problem}"
        );
    }
    let res = w.act(reqwest::Method::GET, "trip%2F..%2Fx").await;
    assert_problem(res, 400, "invalid_path").await;

    // A 401 on a fresh token too: the connection's credentials are at fault.
    w.uber.state.refuse_all_tokens.store(true, Ordering::SeqCst);
    let res = w.act(reqwest::Method::POST, "trip-1/cancel").await;
    assert_problem(res, 502, "provider_credentials_rejected").await;
    w.uber
        .state
        .refuse_all_tokens
        .store(false, Ordering::SeqCst);

    // The token endpoint over its 100 an hour.
    w.uber.forget_tokens();
    w.uber.state.token_limited.store(true, Ordering::SeqCst);
    let res = w.act(reqwest::Method::GET, "trip-1").await;
    assert_eq!(res.headers()["retry-after"], "1800");
    assert_problem(res, 429, "provider_rate_limited").await;

    let recorded = w
        .read("/api/v1/tenants/acme/actions?provider=uber-health")
        .await;
    let outcomes: Vec<(&str, &str)> = recorded["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["outcome"].as_str().unwrap(),
                a["error_code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes.len(),
        6,
        "the invalid path never reached Uber: {outcomes:?}"
    );
    assert!(outcomes.iter().all(|(o, _)| *o == "failed"));
}

#[tokio::test]
async fn another_tenant_cannot_act_with_this_tenants_connection() {
    let w = world().await;
    let other = w.app.create_tenant(&w.admin, "globex", None).await;
    let token = w.app.tenant_token(other["id"].as_str().unwrap()).await;
    let res = w
        .app
        .get_as(
            &format!("/api/v1/tenants/acme/uber-health/trips/{TRIP}"),
            &token,
        )
        .await;
    assert_problem(res, 404, "not_found").await;
    let res = w
        .app
        .get_as(
            &format!("/api/v1/tenants/globex/uber-health/trips/{TRIP}"),
            &token,
        )
        .await;
    assert_problem(res, 409, "connection_incomplete").await;
    assert!(w.uber.calls().is_empty());
}
