//! Uber Health end to end: its webhooks through the public port (signatures made by openssl and
//! by the `hmac` crate, never by the gateway's own code), and its trips API played on 127.0.0.1
//! (`fake.rs`).

mod actions;
mod fake;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{assert_problem, spawn_app_with, TestApp};
use fake::{FakeUber, CLIENT_ID, CLIENT_SECRET};

const KEY: &str = "uber-app-signing-key-0123456789";
const TRIP: &str = "9f3c2a1e-5b7d-4c8e-a2f1-3d6b8e0c4a57";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/uber-health");

struct World {
    app: TestApp,
    admin: String,
    uber: FakeUber,
}

async fn world() -> World {
    world_with(|_| {}).await
}

async fn world_with(customize: impl FnOnce(&mut gateway::config::RawSettings)) -> World {
    let app = spawn_app_with(|s| {
        s.allow_http_endpoints = true;
        customize(s);
    })
    .await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", Some("123")).await;
    let uber = FakeUber::start().await;
    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/uber-health",
            &admin,
            json!({
                "signing_keys": [KEY],
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "token_url": format!("{}/oauth/v2/token", uber.base),
                "api_base_url": uber.base,
            }),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    app.create_endpoint(&admin, "acme", "https://receiver.example.com/hooks")
        .await;
    World { app, admin, uber }
}

fn hex_hmac(key: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn status_change(event_id: &str, trip: &str, status: &str, at: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event_id": event_id, "event_time": at, "event_type": "health.status_changed",
        "resource_href": format!("https://api.uber.com/v1/health/trips/{trip}"),
        "meta": {"user_id": "u-1", "org_uuid": "o-1", "resource_id": trip, "status": status},
    }))
    .unwrap()
}

impl World {
    /// An admin's GET, as JSON.
    async fn read(&self, path: &str) -> Value {
        let res = self.app.get_as(path, &self.admin).await;
        assert_eq!(res.status().as_u16(), 200, "{path}");
        res.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: &[u8], signature: Option<&str>) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .post(self.app.url(path))
            .header("content-type", "application/json")
            .header("x-environment", "sandbox")
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("x-uber-signature", sig);
        }
        req.send().await.unwrap()
    }

    async fn send(&self, body: &[u8]) -> Value {
        let res = self
            .post(
                "/webhooks/uber-health/acme",
                body,
                Some(&hex_hmac(KEY, body)),
            )
            .await;
        assert_eq!(res.status().as_u16(), 200);
        res.json().await.unwrap()
    }

    async fn act(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.app
            .client
            .request(
                method,
                self.app
                    .url(&format!("/api/v1/tenants/acme/uber-health/trips/{path}")),
            )
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn an_uber_health_webhook_signed_by_openssl_is_accepted_and_shows_its_environment() {
    let w = world().await;
    let body = std::fs::read(format!("{FIXTURES}/status_accepted.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.json"), &body).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", KEY, "-hex", "body.json"])
        .current_dir(dir.path())
        .output()
        .expect("openssl is installed");
    assert!(out.status.success());
    // `HMAC-SHA2-256(body.json)= <hex>`
    let text = String::from_utf8(out.stdout).unwrap();
    let sig = text.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(sig.len(), 64, "{text}");

    let res = w
        .post("/webhooks/uber-health/acme", &body, Some(&sig))
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let ack: Value = res.json().await.unwrap();
    assert_eq!(ack["status"], "accepted");
    let id = ack["event_id"].as_str().unwrap();

    // The customer id form reaches the same tenant: the same event, a duplicate.
    let again: Value = w
        .post("/webhooks/uber-health?customer_id=123", &body, Some(&sig))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["status"].as_str(), again["event_id"].as_str()),
        (Some("duplicate"), Some(id))
    );

    let got: Value = w.read(&format!("/api/v1/tenants/acme/events/{id}")).await;
    assert_eq!(got["raw"]["headers"]["x-environment"], "sandbox");
    assert_eq!(got["raw"]["verification"]["method"], "hmac-sha256-hex");
    let ce = &got["normalized"];
    assert_eq!(ce["type"], "transport.request.assigned");
    assert_eq!(ce["subject"], TRIP);
    assert_eq!(ce["provider"], "uber-health");
    assert_eq!(ce["data"]["kind"], "transport_request");
    assert_eq!(ce["data"]["status"], "scheduled");
    assert_eq!(ce["data"]["provider_status"], "accepted");
    assert_eq!(
        ce["data"]["links"]["resource_href"],
        format!("https://api.uber.com/v1/health/trips/{TRIP}")
    );
}

#[tokio::test]
async fn missing_and_wrong_uber_signatures_answer_401_and_a_rotated_key_verifies() {
    let w = world().await;
    let body = status_change("e-sig", "trip-sig", "processing", 1_767_264_000);
    let res = w.post("/webhooks/uber-health/acme", &body, None).await;
    assert_problem(res, 401, "missing_signature").await;
    let other_key = hex_hmac("someone-elses-signing-key", &body);
    let other_body = hex_hmac(KEY, b"{}");
    for sig in [other_key.as_str(), other_body.as_str(), "not-hex", ""] {
        let res = w.post("/webhooks/uber-health/acme", &body, Some(sig)).await;
        assert_problem(res, 401, "invalid_signature").await;
    }
    assert_eq!(w.app.event_count().await, 0);

    // Rotation: a second key added through the API verifies too.
    let new_key = "uber-app-signing-key-rotated-9876";
    let res = w
        .app
        .post_as(
            "/api/v1/tenants/acme/providers/uber-health/keys",
            &w.admin,
            json!({"signing_key": new_key}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let key: Value = res.json().await.unwrap();
    assert!(
        !key.to_string().contains(new_key),
        "the key is never shown again"
    );
    let res = w
        .post(
            "/webhooks/uber-health/acme",
            &body,
            Some(&hex_hmac(new_key, &body)),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    // A field of another provider is named.
    let res = w
        .app
        .post_as(
            "/api/v1/tenants/acme/providers/uber-health/keys",
            &w.admin,
            json!({"public_key_pem": new_key}),
        )
        .await;
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "public_key_pem");
}

#[tokio::test]
async fn concurrent_duplicates_of_one_event_id_store_one_event_and_one_delivery() {
    let w = world().await;
    let body = status_change("e-dup", "trip-dup", "accepted", 1_767_264_000);
    let acks = futures_util::future::join_all((0..12).map(|_| w.send(&body))).await;
    let accepted = acks.iter().filter(|a| a["status"] == "accepted").count();
    assert_eq!(accepted, 1, "{acks:?}");
    assert!(acks.iter().all(|a| a["event_id"] == acks[0]["event_id"]));
    assert_eq!(w.app.event_count().await, 1);
    let id = acks[0]["event_id"].as_str().unwrap();
    assert_eq!(w.app.delivery_count(id).await, 1);
}

#[tokio::test]
async fn out_of_order_status_changes_are_stored_stale_and_delivered_only_where_asked() {
    let w = world().await;
    let res = w
        .app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &w.admin,
            json!({"url": "https://audit.example.com/", "include_stale": true}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let t = 1_767_264_000;
    let in_progress = w
        .send(&status_change("e1", "trip-o", "in_progress", t + 10))
        .await;
    let accepted = w.send(&status_change("e2", "trip-o", "accepted", t)).await;
    assert_eq!(
        (in_progress["stale"].as_bool(), accepted["stale"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(
        w.app
            .delivery_count(in_progress["event_id"].as_str().unwrap())
            .await,
        2
    );
    assert_eq!(
        w.app
            .delivery_count(accepted["event_id"].as_str().unwrap())
            .await,
        1,
        "only where include_stale"
    );

    // The same second: the later stage of the trip wins; the same stage ties and is not stale.
    let completed = w
        .send(&status_change("e3", "trip-o", "completed", t + 20))
        .await;
    let late = w
        .send(&status_change("e4", "trip-o", "arriving", t + 20))
        .await;
    assert_eq!(
        (completed["stale"].as_bool(), late["stale"].as_bool()),
        (Some(false), Some(true))
    );
    let a = w.send(&status_change("e5", "trip-s", "accepted", t)).await;
    let b = w
        .send(&status_change("e6", "trip-s", "driver_redispatched", t))
        .await;
    assert_eq!(
        (a["stale"].as_bool(), b["stale"].as_bool()),
        (Some(false), Some(false))
    );

    // Another trip is not compared with this one.
    let other = w
        .send(&status_change("e7", "trip-x", "processing", t))
        .await;
    assert_eq!(other["stale"], false);
}

#[tokio::test]
async fn an_unknown_status_is_stored_as_unknown_and_a_body_over_the_limit_answers_413() {
    let w = world_with(|s| s.webhook_max_body_bytes = 2048).await;
    let ack = w
        .send(&status_change(
            "e-u",
            "trip-u",
            "teleporting",
            1_767_264_000,
        ))
        .await;
    let got: Value = w
        .read(&format!(
            "/api/v1/tenants/acme/events/{}",
            ack["event_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(got["normalized"]["data"]["status"], "unknown");
    assert_eq!(got["normalized"]["data"]["provider_status"], "teleporting");
    assert_eq!(got["normalized"]["type"], "transport.request.updated");

    let mut big: Value =
        serde_json::from_slice(&status_change("e-big", "t", "accepted", 1)).unwrap();
    big["padding"] = json!("x".repeat(4096));
    let big = serde_json::to_vec(&big).unwrap();
    let res = w
        .post(
            "/webhooks/uber-health/acme",
            &big,
            Some(&hex_hmac(KEY, &big)),
        )
        .await;
    assert_problem(res, 413, "payload_too_large").await;
}

#[tokio::test]
async fn the_simulator_plays_a_trip_lifecycle_and_a_cancellation_that_the_gateway_accepts() {
    let w = world().await;
    for (scenario, sent) in [("lifecycle", 5), ("cancellation", 3)] {
        let url = w.app.url("/webhooks/uber-health/acme");
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
                .args(["simulate", "uber-health", "--url", &url, "--key", KEY])
                .args(["--scenario", scenario])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with("200 ")).count(),
            sent,
            "{stdout}"
        );
        assert!(!stdout.contains("\"stale\":true"), "{stdout}");
    }
    assert_eq!(w.app.event_count().await, 8);
}
