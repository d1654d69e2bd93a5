//! Provider webhooks through the public port: verification, every rejection, deduplication,
//! staleness, storage with its outbox rows, and the read API.

use gateway::domain::SigningSecret;
use gateway::providers::vectorcare::simulate::sign as sign_vectorcare;
use gateway::providers::vital::simulate::sign as sign_vital;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, spawn_app_with, TestApp, VECTORCARE_PUBLIC_PEM, VITAL_SECRET,
};

pub const VECTORCARE_PRIVATE_PEM: &str = include_str!("../fixtures/keys/vectorcare_private.pem");
pub const ROTATED_PRIVATE_PEM: &str =
    include_str!("../fixtures/keys/vectorcare_rotated_private.pem");
const BLS: &str = include_str!("../fixtures/vectorcare/bls_broadcast_received.json");
const ORDER: &str = include_str!("../fixtures/vital/order_appointment_scheduled_bare.json");

/// A tenant `acme` (customer id 123) with both providers connected and one endpoint.
pub struct World {
    pub app: TestApp,
    pub admin: String,
    pub tenant_id: String,
    pub endpoint_id: String,
}

pub async fn world_with(customize: impl FnOnce(&mut gateway::config::RawSettings)) -> World {
    let app = spawn_app_with(customize).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "acme", Some("123")).await;
    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/vectorcare",
            &admin,
            json!({"public_keys": [VECTORCARE_PUBLIC_PEM]}),
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
    let ep = app
        .create_endpoint(&admin, "acme", "https://receiver.example.com/hooks")
        .await;
    World {
        tenant_id: tenant["id"].as_str().unwrap().to_owned(),
        endpoint_id: ep["id"].as_str().unwrap().to_owned(),
        app,
        admin,
    }
}

pub async fn world() -> World {
    world_with(|_| {}).await
}

pub fn vectorcare_event(event_id: &str, request: &str, status: &str, action: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_str(BLS).unwrap();
    body["event_id"] = json!(event_id);
    body["service_request_id"] = json!(request);
    body["request_status"] = json!(status);
    body["action"] = json!(action);
    serde_json::to_vec(&body).unwrap()
}

impl TestApp {
    pub async fn post_vectorcare(
        &self,
        path: &str,
        body: &[u8],
        key_pem: &str,
    ) -> reqwest::Response {
        let sig = sign_vectorcare(key_pem, body).unwrap();
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("x-vectorcare-signature", sig)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn post_vital(&self, path: &str, body: &[u8], secret: &str) -> reqwest::Response {
        let (id, ts, sig) = sign_vital(&SigningSecret::parse(secret).unwrap(), body);
        self.client
            .post(self.url(path))
            .header("svix-id", id)
            .header("svix-timestamp", ts.to_string())
            .header("svix-signature", sig)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn event_count(&self) -> u64 {
        gateway::store::event::Entity::find()
            .count(&self.state.db)
            .await
            .unwrap()
    }

    pub async fn delivery_count(&self, event_id: &str) -> u64 {
        gateway::store::delivery::Entity::find()
            .filter(gateway::store::delivery::Column::EventId.eq(event_id))
            .count(&self.state.db)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_signed_vectorcare_webhook_is_stored_raw_and_normalized_with_its_outbox_row() {
    let w = world().await;
    let body = vectorcare_event(
        "01JM0000000000000000000001",
        "VC-AAA111",
        "AVAILABLE",
        "BROADCAST_RECEIVED",
    );
    let res = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let ack: Value = res.json().await.unwrap();
    assert_eq!(ack["status"], "accepted");
    assert_eq!(ack["stale"], false);
    let id = ack["event_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("evt_"));
    assert_eq!(
        w.app.delivery_count(&id).await,
        1,
        "one delivery per matching endpoint, in the same commit"
    );
    let outbox = gateway::store::delivery::Entity::find()
        .one(&w.app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outbox.endpoint_id.as_str(), w.endpoint_id);
    assert_eq!(outbox.status.as_str(), "pending");

    let got: Value = w
        .app
        .get_as(&format!("/api/v1/tenants/acme/events/{id}"), &w.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        got["raw"]["body"].as_str().unwrap().as_bytes(),
        body.as_slice(),
        "the raw body byte for byte"
    );
    assert!(got["raw"]["headers"]["x-vectorcare-signature"].is_string());
    assert_eq!(got["raw"]["verification"]["method"], "rsa-pkcs1v15-sha256");
    let ce = &got["normalized"];
    assert_eq!(ce["id"], id.as_str());
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["type"], "transport.request.offered");
    assert_eq!(ce["subject"], "VC-AAA111");
    assert_eq!(ce["tenantid"], w.tenant_id.as_str());
    assert_eq!(ce["providereventid"], "01JM0000000000000000000001");
    assert_eq!(got["status"], "pending");
}

#[tokio::test]
async fn the_customer_id_url_reaches_the_same_tenant() {
    let w = world().await;
    let body = vectorcare_event(
        "01JM0000000000000000000002",
        "VC-AAA222",
        "ASSIGNED",
        "BROADCAST_ACCEPTED",
    );
    let res = w
        .app
        .post_vectorcare(
            "/webhooks/vectorcare?customer_id=123",
            &body,
            VECTORCARE_PRIVATE_PEM,
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let by_id = w
        .app
        .post_vectorcare(
            &format!("/webhooks/vectorcare/{}", w.tenant_id),
            &body,
            VECTORCARE_PRIVATE_PEM,
        )
        .await;
    let ack: Value = by_id.json().await.unwrap();
    assert_eq!(
        ack["status"], "duplicate",
        "the tenant id form is the same tenant"
    );
    let res = w
        .app
        .post_vectorcare(
            "/webhooks/vectorcare?customer_id=999",
            &body,
            VECTORCARE_PRIVATE_PEM,
        )
        .await;
    assert_problem(res, 404, "tenant_not_found").await;
    let res = w
        .app
        .post_vectorcare("/webhooks/vectorcare", &body, VECTORCARE_PRIVATE_PEM)
        .await;
    assert_problem(res, 404, "tenant_not_found").await;
    let res = w
        .app
        .post_vectorcare(
            "/webhooks/acmebank?customer_id=123",
            &body,
            VECTORCARE_PRIVATE_PEM,
        )
        .await;
    assert_problem(res, 404, "unknown_provider").await;
}

#[tokio::test]
async fn a_retried_webhook_is_acknowledged_again_and_stores_and_fans_out_nothing_new() {
    let w = world().await;
    let body = vectorcare_event(
        "01JM0000000000000000000003",
        "VC-AAA333",
        "ASSIGNED",
        "BROADCAST_ACCEPTED",
    );
    let first: Value = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
        .await
        .json()
        .await
        .unwrap();
    let again = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
        .await;
    assert_eq!(again.status().as_u16(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["event_id"], first["event_id"]);
    assert_eq!(w.app.event_count().await, 1);
    assert_eq!(
        w.app
            .delivery_count(first["event_id"].as_str().unwrap())
            .await,
        1
    );

    // Vital: the same svix-id is the same event, even concurrently.
    let body = br#"{"event_type":"labtest.order.updated","data":{"id":"ord-1","events":[{"id":1,"created_at":"2026-01-01T00:00:00Z","status":"received.at_home_phlebotomy.ordered"}]}}"#;
    let (id, ts, sig) = sign_vital(&SigningSecret::parse(VITAL_SECRET).unwrap(), body);
    let send = || {
        w.app
            .client
            .post(w.app.url("/webhooks/vital/acme"))
            .header("svix-id", &id)
            .header("svix-timestamp", ts.to_string())
            .header("svix-signature", &sig)
            .body(body.to_vec())
            .send()
    };
    let (a, b, c) = tokio::join!(send(), send(), send());
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for r in [a, b, c] {
        let v: Value = r.unwrap().json().await.unwrap();
        statuses.push(v["status"].as_str().unwrap().to_owned());
        ids.push(v["event_id"].as_str().unwrap().to_owned());
    }
    statuses.sort();
    assert_eq!(statuses, ["accepted", "duplicate", "duplicate"]);
    assert!(ids.iter().all(|i| i == &ids[0]));
    assert_eq!(w.app.event_count().await, 2);
}

#[tokio::test]
async fn an_older_event_for_the_same_request_is_stored_stale_and_not_fanned_out() {
    let w = world().await;
    let all = w
        .app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &w.admin,
            json!({"url": "https://audit.example.com/", "include_stale": true}),
        )
        .await;
    assert_eq!(all.status().as_u16(), 201);
    let newer = vectorcare_event(
        "01JM0000000000000000000020",
        "VC-STALE1",
        "ASSIGNED",
        "REQUEST_DATA_UPDATED",
    );
    let older = vectorcare_event(
        "01JM0000000000000000000010",
        "VC-STALE1",
        "AVAILABLE",
        "BROADCAST_RECEIVED",
    );
    let n: Value = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &newer, VECTORCARE_PRIVATE_PEM)
        .await
        .json()
        .await
        .unwrap();
    let o: Value = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &older, VECTORCARE_PRIVATE_PEM)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(n["stale"], false);
    assert_eq!(o["status"], "accepted");
    assert_eq!(o["stale"], true);
    assert_eq!(
        w.app.delivery_count(n["event_id"].as_str().unwrap()).await,
        2
    );
    assert_eq!(
        w.app.delivery_count(o["event_id"].as_str().unwrap()).await,
        1,
        "only the endpoint that asks for stale events"
    );

    // Another request's events are not compared with this one's.
    let other = vectorcare_event(
        "01JM0000000000000000000005",
        "VC-OTHER",
        "AVAILABLE",
        "BROADCAST_RECEIVED",
    );
    let x: Value = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &other, VECTORCARE_PRIVATE_PEM)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(x["stale"], false);

    let timeline: Value = w
        .app
        .get_as("/api/v1/tenants/acme/subjects/VC-STALE1/timeline", &w.admin)
        .await
        .json()
        .await
        .unwrap();
    let events = timeline["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events.iter().filter(|e| e["stale"] == true).count(), 1);
}

#[tokio::test]
async fn concurrent_events_of_one_request_are_judged_stale_in_the_order_they_were_stored() {
    let w = world().await;
    let all = w
        .app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &w.admin,
            json!({"url": "https://audit.example.com/", "include_stale": true}),
        )
        .await;
    assert_eq!(all.status().as_u16(), 201);
    // Sent at once, so the gateway writes them in shared batches; their order keys are shuffled.
    let ids: Vec<String> = [
        7, 3, 15, 1, 12, 9, 4, 18, 2, 11, 6, 16, 10, 5, 17, 8, 14, 13,
    ]
    .iter()
    .map(|i| format!("01JM0000000000000000000B{i:02}"))
    .collect();
    let answers: Vec<Value> = futures_util::future::join_all(ids.iter().map(|id| {
        let body = vectorcare_event(id, "VC-BURST", "ASSIGNED", "REQUEST_DATA_UPDATED");
        let app = &w.app;
        async move {
            app.post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    }))
    .await;
    let max = ids.iter().max().unwrap();
    for (id, a) in ids.iter().zip(&answers) {
        let deliveries = w.app.delivery_count(a["event_id"].as_str().unwrap()).await;
        if a["stale"] == true {
            assert!(id < max, "{id} is the newest yet stale");
            assert_eq!(
                deliveries, 1,
                "a stale event reaches only the include_stale endpoint"
            );
        } else {
            assert_eq!(deliveries, 2, "{id}: a fresh event reaches both endpoints");
        }
    }
    let newest = &answers[ids.iter().position(|i| i == max).unwrap()];
    assert_eq!(newest["stale"], false);

    // The head ends at the newest key, whatever order the batch had: just below it is stale,
    // above it is not.
    let below = vectorcare_event(
        "01JM0000000000000000000B17X",
        "VC-BURST",
        "ASSIGNED",
        "REQUEST_DATA_UPDATED",
    );
    let b: Value = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &below, VECTORCARE_PRIVATE_PEM)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["stale"], true, "{b}");
    let above = vectorcare_event(
        "01JM0000000000000000000B19",
        "VC-BURST",
        "ASSIGNED",
        "REQUEST_DATA_UPDATED",
    );
    let a: Value = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &above, VECTORCARE_PRIVATE_PEM)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["stale"], false, "{a}");
}

#[tokio::test]
async fn events_are_listed_with_filters_and_pages() {
    let w = world().await;
    for (i, (status, action)) in [
        ("AVAILABLE", "BROADCAST_RECEIVED"),
        ("ASSIGNED", "BROADCAST_ACCEPTED"),
        ("COMPLETED", "REQUEST_DATA_UPDATED"),
    ]
    .iter()
    .enumerate()
    {
        let body = vectorcare_event(
            &format!("01JM00000000000000000001{i}"),
            "VC-LIST1",
            status,
            action,
        );
        w.app
            .post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
            .await;
    }
    let order = serde_json::to_vec(&json!({"event_type": "labtest.order.updated", "data": serde_json::from_str::<Value>(ORDER).unwrap()})).unwrap();
    assert_eq!(
        w.app
            .post_vital("/webhooks/vital/acme", &order, VITAL_SECRET)
            .await
            .status()
            .as_u16(),
        200
    );

    let get = |q: &str| {
        let path = format!("/api/v1/tenants/acme/events{q}");
        let app = &w.app;
        let admin = w.admin.clone();
        async move {
            app.get_as(&path, &admin)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(get("").await["data"].as_array().unwrap().len(), 4);
    assert_eq!(
        get("?provider=vital").await["data"][0]["type"],
        "lab.order.updated"
    );
    assert_eq!(
        get("?type=transport.*").await["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        get("?status=completed").await["data"][0]["type"],
        "transport.request.completed"
    );
    assert_eq!(
        get("?subject=VC-LIST1").await["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let page = get("?limit=3").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    let rest = get(&format!(
        "?limit=3&cursor={}",
        page["next_cursor"].as_str().unwrap()
    ))
    .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let until = get("?until=2000-01-01T00:00:00Z").await;
    assert!(until["data"].as_array().unwrap().is_empty());

    // Tenants see their own events only.
    let other = w.app.create_tenant(&w.admin, "other", None).await;
    let other_token = w.app.tenant_token(other["id"].as_str().unwrap()).await;
    assert_problem(
        w.app
            .get_as("/api/v1/tenants/acme/events", &other_token)
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn vital_webhooks_verify_with_svix_or_webhook_headers_and_any_listed_signature() {
    let w = world().await;
    let body = serde_json::to_vec(&json!({"event_type": "labtest.order.created", "data": serde_json::from_str::<Value>(ORDER).unwrap()})).unwrap();
    let secret = SigningSecret::parse(VITAL_SECRET).unwrap();
    let (id, ts, sig) = sign_vital(&secret, &body);
    // Rotation on Vital's side: several signatures, one of them ours.
    let header = format!("v1,Zm9yZWlnbg== {sig} v1,YW5vdGhlcg==");
    let res = w
        .app
        .client
        .post(w.app.url("/webhooks/vital/acme"))
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", header)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let ack: Value = res.json().await.unwrap();
    let got: Value = w
        .app
        .get_as(
            &format!(
                "/api/v1/tenants/acme/events/{}",
                ack["event_id"].as_str().unwrap()
            ),
            &w.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        got["provider_event_id"],
        id.as_str(),
        "deduplicated on the svix id"
    );
    assert_eq!(got["type"], "lab.order.created");
}

#[tokio::test]
async fn vital_timestamps_beyond_five_minutes_either_way_are_refused() {
    let w = world().await;
    let body = br#"{"event_type":"labtest.order.updated","data":{"id":"ord-t"}}"#;
    let key = SigningSecret::parse(VITAL_SECRET).unwrap().key_bytes();
    // Ten seconds past the limit, so a second ticking over between here and the gateway's
    // check cannot bring the timestamp back within it.
    for offset in [-310i64, 310] {
        let ts = chrono::Utc::now().timestamp() + offset;
        let sig = gateway::signature::sign(&key, "msg_t", ts, body);
        let res = w
            .app
            .client
            .post(w.app.url("/webhooks/vital/acme"))
            .header("svix-id", "msg_t")
            .header("svix-timestamp", ts.to_string())
            .header("svix-signature", sig)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "timestamp_out_of_tolerance").await;
    }
    let ts = chrono::Utc::now().timestamp() - 240;
    let sig = gateway::signature::sign(&key, "msg_ok", ts, body);
    let res = w
        .app
        .client
        .post(w.app.url("/webhooks/vital/acme"))
        .header("svix-id", "msg_ok")
        .header("svix-timestamp", ts.to_string())
        .header("svix-signature", sig)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        200,
        "four minutes old is within tolerance"
    );
}

#[tokio::test]
async fn a_webhook_signed_by_openssl_verifies() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let body = vectorcare_event(
        "01JM0000000000000000000099",
        "VC-OPENSSL",
        "AVAILABLE",
        "BROADCAST_RECEIVED",
    );
    std::fs::write(dir.path().join("body.json"), &body).unwrap();
    std::fs::write(dir.path().join("key.pem"), VECTORCARE_PRIVATE_PEM).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-sign",
            "key.pem",
            "-out",
            "sig.bin",
            "body.json",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        std::fs::read(dir.path().join("sig.bin")).unwrap(),
    );
    let res = w
        .app
        .client
        .post(w.app.url("/webhooks/vectorcare/acme"))
        .header("x-vectorcare-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn during_key_rotation_both_keys_verify_and_a_removed_key_stops_at_once() {
    let w = world().await;
    let body = vectorcare_event(
        "01JM0000000000000000000050",
        "VC-ROT",
        "AVAILABLE",
        "BROADCAST_RECEIVED",
    );
    let res = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &body, ROTATED_PRIVATE_PEM)
        .await;
    assert_problem(res, 401, "invalid_signature").await;

    let keys = "/api/v1/tenants/acme/providers/vectorcare/keys";
    let added: Value = w
        .app
        .post_as(
            keys,
            &w.admin,
            json!({"public_key_pem": crate::helpers::VECTORCARE_ROTATED_PUBLIC_PEM}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        w.app
            .post_vectorcare("/webhooks/vectorcare/acme", &body, ROTATED_PRIVATE_PEM)
            .await
            .status()
            .as_u16(),
        200
    );
    let body2 = vectorcare_event(
        "01JM0000000000000000000051",
        "VC-ROT",
        "ASSIGNED",
        "BROADCAST_ACCEPTED",
    );
    assert_eq!(
        w.app
            .post_vectorcare("/webhooks/vectorcare/acme", &body2, VECTORCARE_PRIVATE_PEM)
            .await
            .status()
            .as_u16(),
        200
    );

    let conn: Value = w
        .app
        .get_as("/api/v1/tenants/acme/providers/vectorcare", &w.admin)
        .await
        .json()
        .await
        .unwrap();
    let old = conn["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] != added["id"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        w.app
            .delete_as(&format!("{keys}/{old}"), &w.admin)
            .await
            .status()
            .as_u16(),
        204
    );
    let body3 = vectorcare_event(
        "01JM0000000000000000000052",
        "VC-ROT",
        "ASSIGNED",
        "REQUEST_DATA_UPDATED",
    );
    let res = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &body3, VECTORCARE_PRIVATE_PEM)
        .await;
    assert_problem(res, 401, "invalid_signature").await;
}

#[tokio::test]
async fn every_rejection_answers_its_problem_stores_nothing_and_is_counted() {
    let w = world_with(|s| s.webhook_max_body_bytes = 8192).await;
    let app = &w.app;
    let good = vectorcare_event(
        "01JM0000000000000000000060",
        "VC-REJ",
        "AVAILABLE",
        "BROADCAST_RECEIVED",
    );
    let post = |path: &str, sig: Option<String>, body: Vec<u8>| {
        let mut req = app.client.post(app.url(path)).body(body);
        if let Some(s) = sig {
            req = req.header("x-vectorcare-signature", s);
        }
        req.send()
    };

    assert_problem(
        post("/webhooks/vectorcare/acme", None, good.clone())
            .await
            .unwrap(),
        401,
        "missing_signature",
    )
    .await;
    assert_problem(
        post(
            "/webhooks/vectorcare/acme",
            Some("bm90IGEgc2lnbmF0dXJl".into()),
            good.clone(),
        )
        .await
        .unwrap(),
        401,
        "invalid_signature",
    )
    .await;
    assert_problem(
        post(
            "/webhooks/vectorcare/acme",
            Some("***".into()),
            good.clone(),
        )
        .await
        .unwrap(),
        401,
        "invalid_signature",
    )
    .await;
    let mut tampered = good.clone();
    let sig = sign_vectorcare(VECTORCARE_PRIVATE_PEM, &good).unwrap();
    tampered[10] ^= 1;
    assert_problem(
        post("/webhooks/vectorcare/acme", Some(sig), tampered)
            .await
            .unwrap(),
        401,
        "invalid_signature",
    )
    .await;

    assert_problem(
        post("/webhooks/vectorcare/nobody", None, good.clone())
            .await
            .unwrap(),
        404,
        "tenant_not_found",
    )
    .await;
    assert_problem(
        post("/webhooks/acmebank/acme", None, good.clone())
            .await
            .unwrap(),
        404,
        "unknown_provider",
    )
    .await;
    app.create_tenant(&w.admin, "bare", None).await;
    assert_problem(
        post("/webhooks/vectorcare/bare", None, good.clone())
            .await
            .unwrap(),
        404,
        "tenant_not_found",
    )
    .await;

    let not_json = b"this is not json".to_vec();
    let sig = sign_vectorcare(VECTORCARE_PRIVATE_PEM, &not_json).unwrap();
    assert_problem(
        post("/webhooks/vectorcare/acme", Some(sig), not_json)
            .await
            .unwrap(),
        400,
        "invalid_payload",
    )
    .await;
    let wrong_shape = br#"{"event_id":"x","request_status":"AVAILABLE"}"#.to_vec();
    let sig = sign_vectorcare(VECTORCARE_PRIVATE_PEM, &wrong_shape).unwrap();
    let body = assert_problem(
        post("/webhooks/vectorcare/acme", Some(sig), wrong_shape)
            .await
            .unwrap(),
        400,
        "invalid_payload",
    )
    .await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("service_request_id"));

    let big = vec![b' '; 9000];
    assert_problem(
        post("/webhooks/vectorcare/acme", None, big).await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;

    let res = app
        .client
        .post(app.url("/webhooks/vital/acme"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "missing_signature").await;

    app.patch_as(
        "/api/v1/tenants/acme",
        &w.admin,
        json!({"status": "disabled"}),
    )
    .await;
    let sig = sign_vectorcare(VECTORCARE_PRIVATE_PEM, &good).unwrap();
    assert_problem(
        post("/webhooks/vectorcare/acme", Some(sig), good.clone())
            .await
            .unwrap(),
        403,
        "tenant_disabled",
    )
    .await;

    assert_eq!(app.event_count().await, 0, "nothing refused is stored");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"gateway_webhooks_rejected_total{provider="vectorcare",reason="invalid_signature"} 3"#,
        r#"gateway_webhooks_rejected_total{provider="vectorcare",reason="missing_signature"} 1"#,
        r#"gateway_webhooks_rejected_total{provider="vectorcare",reason="tenant_not_found"} 2"#,
        r#"gateway_webhooks_rejected_total{provider="unknown",reason="unknown_provider"} 1"#,
        r#"gateway_webhooks_rejected_total{provider="vectorcare",reason="invalid_payload"} 2"#,
        r#"gateway_webhooks_rejected_total{provider="vectorcare",reason="payload_too_large"} 1"#,
        r#"gateway_webhooks_rejected_total{provider="vital",reason="missing_signature"} 1"#,
        r#"gateway_webhooks_rejected_total{provider="vectorcare",reason="tenant_disabled"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing `{line}` in\n{metrics}");
    }
}

#[tokio::test]
async fn a_source_address_outside_the_allowlist_is_refused_and_a_trusted_proxy_header_is_honoured()
{
    let w = world().await;
    w.app
        .put_as(
            "/api/v1/tenants/acme/providers/vectorcare",
            &w.admin,
            json!({"ip_allowlist": ["203.0.113.0/24"]}),
        )
        .await;
    let body = vectorcare_event(
        "01JM0000000000000000000070",
        "VC-IP",
        "AVAILABLE",
        "BROADCAST_RECEIVED",
    );
    let res = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
        .await;
    let problem = assert_problem(res, 403, "source_ip_not_allowed").await;
    assert!(problem["detail"].as_str().unwrap().contains("127.0.0.1"));

    // Without a configured proxy header, a spoofed X-Forwarded-For changes nothing.
    let sig = sign_vectorcare(VECTORCARE_PRIVATE_PEM, &body).unwrap();
    let res = w
        .app
        .client
        .post(w.app.url("/webhooks/vectorcare/acme"))
        .header("x-vectorcare-signature", &sig)
        .header("x-forwarded-for", "203.0.113.9")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "source_ip_not_allowed").await;

    let proxied = world_with(|s| s.trusted_proxy_header = Some("X-Forwarded-For".into())).await;
    proxied
        .app
        .put_as(
            "/api/v1/tenants/acme/providers/vectorcare",
            &proxied.admin,
            json!({"ip_allowlist": ["203.0.113.0/24"]}),
        )
        .await;
    // Each string is one X-Forwarded-For header line.
    let send_lines = |lines: &[&'static str]| {
        let mut req = proxied
            .app
            .client
            .post(proxied.app.url("/webhooks/vectorcare/acme"))
            .header("x-vectorcare-signature", &sig);
        for line in lines {
            req = req.header("x-forwarded-for", *line);
        }
        req.body(body.clone()).send()
    };
    let send = |xff: &'static str| send_lines(&[xff]);
    assert_eq!(
        send("10.9.9.9, 203.0.113.9")
            .await
            .unwrap()
            .status()
            .as_u16(),
        200,
        "the proxy's entry is the rightmost"
    );
    assert_eq!(
        send("203.0.113.9, 10.9.9.9")
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    // Two header lines are one list: the proxy's entry is still the rightmost of the last line.
    let res = send_lines(&["203.0.113.9", "10.9.9.9"]).await.unwrap();
    assert_problem(res, 403, "source_ip_not_allowed").await;
    let res = send_lines(&["10.9.9.9", "203.0.113.9"]).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn ingest_is_rate_limited_per_tenant_and_provider_with_retry_after() {
    let w = world_with(|s| {
        s.ingest_rate_limit_per_second = 1;
        s.ingest_rate_limit_burst = 2;
    })
    .await;
    for i in 0..2 {
        let body = vectorcare_event(
            &format!("01JM00000000000000000008{i}"),
            "VC-RL",
            "AVAILABLE",
            "BROADCAST_RECEIVED",
        );
        assert_eq!(
            w.app
                .post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
                .await
                .status()
                .as_u16(),
            200
        );
    }
    let body = vectorcare_event(
        "01JM0000000000000000000089",
        "VC-RL",
        "AVAILABLE",
        "BROADCAST_RECEIVED",
    );
    let res = w
        .app
        .post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
        .await;
    assert!(res.headers().get("retry-after").is_some());
    assert_problem(res, 429, "rate_limited").await;
    let vital = br#"{"event_type":"labtest.order.updated","data":{"id":"ord-rl"}}"#;
    assert_eq!(
        w.app
            .post_vital("/webhooks/vital/acme", vital, VITAL_SECRET)
            .await
            .status()
            .as_u16(),
        200,
        "another provider has its own budget"
    );
}

#[tokio::test]
async fn an_older_vital_order_update_is_stale_by_its_last_event() {
    let w = world().await;
    let order: Value = serde_json::from_str(ORDER).unwrap();
    let with_events = |n: usize| {
        let mut o = order.clone();
        o["events"] = json!(o["events"].as_array().unwrap()[..n].to_vec());
        serde_json::to_vec(&json!({"event_type": "labtest.order.updated", "data": o})).unwrap()
    };
    let newer: Value = w
        .app
        .post_vital("/webhooks/vital/acme", &with_events(3), VITAL_SECRET)
        .await
        .json()
        .await
        .unwrap();
    let older: Value = w
        .app
        .post_vital("/webhooks/vital/acme", &with_events(2), VITAL_SECRET)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(newer["stale"], false);
    assert_eq!(older["stale"], true);
    assert_eq!(
        w.app
            .delivery_count(older["event_id"].as_str().unwrap())
            .await,
        0
    );
}

#[tokio::test]
async fn the_simulator_sends_signed_scenarios_that_the_gateway_accepts() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("vc.pem");
    std::fs::write(&key, VECTORCARE_PRIVATE_PEM).unwrap();
    let bin = env!("CARGO_BIN_EXE_gateway");
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(bin)
                .args(args)
                .env("GATEWAY_LOG_FORMAT", "json")
                .output()
                .unwrap()
        })
    };
    let out = run(vec![
        "simulate".into(),
        "vectorcare".into(),
        "--url".into(),
        w.app.url("/webhooks/vectorcare?customer_id=123"),
        "--key".into(),
        key.display().to_string(),
        "--scenario".into(),
        "lifecycle".into(),
    ])
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("200 "))
            .count(),
        4
    );

    let out = run(vec![
        "simulate".into(),
        "vital".into(),
        "--url".into(),
        w.app.url("/webhooks/vital/acme"),
        "--key".into(),
        VITAL_SECRET.into(),
        "--scenario".into(),
        "phlebotomy".into(),
    ])
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let events: Value = w
        .app
        .get_as("/api/v1/tenants/acme/events?limit=50", &w.admin)
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "transport.request.offered",
            "transport.request.assigned",
            "transport.request.updated",
            "transport.request.completed",
            "lab.order.created",
            "lab.appointment.created",
            "lab.appointment.updated",
            "lab.order.updated",
            "lab.order.updated",
            "lab.order.updated",
        ]
    );
    assert!(events["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["stale"] == false));

    // A wrong key is refused by the gateway and reported by the simulator.
    std::fs::write(&key, ROTATED_PRIVATE_PEM).unwrap();
    let out = run(vec![
        "simulate".into(),
        "vectorcare".into(),
        "--url".into(),
        w.app.url("/webhooks/vectorcare/acme"),
        "--key".into(),
        key.display().to_string(),
        "--scenario".into(),
        "broadcast".into(),
    ])
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("401 "));
}
