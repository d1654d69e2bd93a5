//! One contract on both backends: the same bad inputs (NUL characters, identifiers longer than
//! the columns) get the same documented answers from SQLite and PostgreSQL, never a 500, and an
//! overlong path still leaves its audit entry.

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, spawn_sqlite_app_with, TestApp};
use crate::webhooks::{vectorcare_event, VECTORCARE_PRIVATE_PEM};

const VITAL_SECRET: &str = crate::helpers::VITAL_SECRET;
const ORDER: &str = include_str!("../fixtures/vital/order_appointment_scheduled_bare.json");

async fn onboard(app: &TestApp) -> String {
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", Some("123")).await;
    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/vectorcare",
            &admin,
            json!({"public_keys": [crate::helpers::VECTORCARE_PUBLIC_PEM]}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/vital",
            &admin,
            json!({"signing_secrets": [VITAL_SECRET]}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    admin
}

async fn answer(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or("").to_owned())
}

async fn vital_with_id(app: &TestApp, id: &str) -> reqwest::Response {
    let body = serde_json::to_vec(&json!({
        "event_type": "labtest.order.created",
        "data": serde_json::from_str::<Value>(ORDER).unwrap()
    }))
    .unwrap();
    let secret = gateway::domain::SigningSecret::parse(VITAL_SECRET).unwrap();
    let ts = chrono::Utc::now().timestamp();
    let sig = gateway::signature::sign(&secret.key_bytes(), id, ts, &body);
    app.client
        .post(app.url("/webhooks/vital/acme"))
        .header("svix-id", id)
        .header("svix-timestamp", ts.to_string())
        .header("svix-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Every bad input, its name, and the answer it got.
async fn bad_inputs(app: &TestApp) -> Vec<(&'static str, (u16, String))> {
    let admin = onboard(app).await;
    let long_id = "E".repeat(250);
    let near_limit = "R".repeat(199);
    let over_limit = "R".repeat(201);
    let long_tenant = "t".repeat(3000);
    let mut out = Vec::new();
    out.push((
        "a NUL in a webhook URL's customer_id, without credentials",
        answer(
            app.client
                .post(app.url("/webhooks/vital?customer_id=a%00b"))
                .body("{}")
                .send()
                .await
                .unwrap(),
        )
        .await,
    ));
    out.push((
        "a NUL in a tenant's name",
        answer(
            app.post_as(
                "/api/v1/tenants",
                &admin,
                json!({"slug": "nul-name", "name": "Acme\u{0}Health"}),
            )
            .await,
        )
        .await,
    ));
    out.push((
        "a NUL in a list filter",
        answer(app.get_as("/api/v1/tenants?name=a%00b", &admin).await).await,
    ));
    out.push((
        "a NUL in an audit filter",
        answer(app.get_as("/api/v1/audit?action=a%00b", &admin).await).await,
    ));
    out.push((
        "a NUL in a token's name",
        answer(
            app.post_as(
                "/api/v1/tokens",
                &admin,
                json!({"name": "a\u{0}b", "role": "admin"}),
            )
            .await,
        )
        .await,
    ));
    out.push((
        "a NUL in a path parameter",
        answer(app.get_as("/api/v1/tenants/ac%00me", &admin).await).await,
    ));
    let body = vectorcare_event(&long_id, "VC-LONG", "ASSIGNED", "REQUEST_DATA_UPDATED");
    out.push((
        "a signed VectorCare event_id of 250 characters",
        answer(
            app.post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
                .await,
        )
        .await,
    ));
    let body = vectorcare_event(
        "01JR0000000000000000000001",
        &near_limit,
        "ASSIGNED",
        "REQUEST_DATA_UPDATED",
    );
    out.push((
        "a VectorCare service_request_id of 199 characters",
        answer(
            app.post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
                .await,
        )
        .await,
    ));
    let body = vectorcare_event(
        "01JR0000000000000000000002",
        &over_limit,
        "ASSIGNED",
        "REQUEST_DATA_UPDATED",
    );
    out.push((
        "a VectorCare service_request_id of 201 characters",
        answer(
            app.post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
                .await,
        )
        .await,
    ));
    out.push((
        "a Vital svix-id of 250 characters",
        answer(vital_with_id(app, &format!("msg_{long_id}")).await).await,
    ));
    out.push((
        "a 3,000-character tenant in a DELETE",
        answer(
            app.delete_as(&format!("/api/v1/tenants/{long_tenant}"), &admin)
                .await,
        )
        .await,
    ));
    out.push((
        "an endpoint URL of 2,048 characters that the URL parser lengthens to 2,049",
        answer(
            app.post_as(
                "/api/v1/tenants/acme/endpoints",
                &admin,
                json!({"url": format!("https://{}", host_of(2040))}),
            )
            .await,
        )
        .await,
    ));
    out.push((
        "a connection's base URL of 2,048 characters, a `/` added, and a client id of 1,000",
        answer(
            app.put_as(
                "/api/v1/tenants/acme/providers/vectorcare",
                &admin,
                json!({
                    "api_base_url": format!("https://a.example/?{}", "q".repeat(2048 - 19)),
                    "token_url": format!("https://{}", host_of(2040)),
                    "client_id": "é".repeat(1000),
                }),
            )
            .await,
        )
        .await,
    ));
    // The refused DELETE was still audited, its path cut to the column.
    let audit: Value = app
        .get_as("/api/v1/audit?limit=5", &admin)
        .await
        .json()
        .await
        .unwrap();
    let entry = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == "DELETE")
        .cloned()
        .unwrap_or(Value::Null);
    out.push((
        "the overlong DELETE's audit entry (path length, status)",
        (
            entry["path"].as_str().map_or(0, |p| p.chars().count()) as u16,
            entry["status"].to_string(),
        ),
    ));
    out
}

fn expected() -> Vec<(u16, &'static str)> {
    vec![
        (400, "invalid_query"),
        (400, "invalid_json"),
        (400, "invalid_query"),
        (400, "invalid_query"),
        (400, "invalid_json"),
        (400, "invalid_path"),
        (400, "invalid_payload"),
        (200, ""),
        (400, "invalid_payload"),
        (400, "invalid_payload"),
        (404, "not_found"),
        (201, ""),
        (200, ""),
        (2048, "404"),
    ]
}

#[tokio::test]
async fn the_same_bad_inputs_get_the_same_documented_answers_on_sqlite_and_postgresql() {
    let sqlite = spawn_sqlite_app_with(|_| {}).await;
    let got = bad_inputs(&sqlite).await;
    for ((what, answer), (status, code)) in got.iter().zip(expected()) {
        assert_eq!(
            (answer.0, answer.1.as_str()),
            (status, code),
            "SQLite: {what}"
        );
    }
    let postgres = spawn_app_with(|_| {}).await;
    if !postgres.database.is_postgres() {
        eprintln!("PostgreSQL's half runs with TEST_DATABASE_URL");
        return;
    }
    let on_postgres = bad_inputs(&postgres).await;
    for ((what, a), (_, b)) in got.iter().zip(&on_postgres) {
        assert_eq!(a, b, "{what}: SQLite and PostgreSQL answer alike");
    }
}

/// A host name of exactly `len` characters: labels of 63 (the most DNS allows) and a shorter last.
fn host_of(len: usize) -> String {
    let mut host = String::new();
    while len - host.len() > 64 {
        host.push_str(&"a".repeat(63));
        host.push('.');
    }
    host.push_str(&"a".repeat(len - host.len()));
    host
}
