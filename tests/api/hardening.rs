//! What an attacker tried, each as a test that failed before its fix: private data files, bounded
//! client durations, and the rest of issue "Security hardening".

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, spawn_sqlite_app_with};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_data_folder_the_database_its_wal_and_the_master_key_are_private() {
    let app = spawn_sqlite_app_with(|s| {
        s.data_dir = s.data_dir.join("fresh").join("data");
        s.database_url = None;
        s.master_key = None;
    })
    .await;
    // A write, so the WAL holds something.
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let dir = app.data_dir.join("fresh").join("data");
    assert_eq!(mode(&dir), 0o700, "the data folder");
    for file in [
        "gateway.db",
        "gateway.db-wal",
        "gateway.db-shm",
        "master.key",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
}

#[tokio::test]
async fn a_grace_period_beyond_its_bounds_answers_422_and_never_a_500() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let ep = app
        .create_endpoint(&admin, "acme", "https://receiver.example.com/hooks")
        .await;
    let rotate = format!(
        "/api/v1/tenants/acme/endpoints/{}/rotate-secret",
        ep["id"].as_str().unwrap()
    );
    for grace in ["1000000y", "100000y", "5000000000y", "31d", "-1s"] {
        let res = app
            .post_as(&rotate, &admin, json!({ "grace_period": grace }))
            .await;
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "grace_period", "{grace}");
    }
    let res = app
        .post_as(&rotate, &admin, json!({"grace_period": "30d"}))
        .await;
    assert_eq!(res.status().as_u16(), 200);
}

/// A listener standing in for a proxy: counts the connections it gets.
fn fake_proxy() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, seen)
}

#[tokio::test]
async fn an_ambient_proxy_is_never_used_and_a_pinned_internal_name_stays_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, connections) = fake_proxy();
    let key = gateway::crypto::MasterKey::generate().to_base64();
    let command = |args: &[&str]| {
        let mut cmd = crate::process::gateway(dir.path());
        cmd.env("GATEWAY_MASTER_KEY", &key)
            .env("GATEWAY_ALLOW_HTTP_ENDPOINTS", "true")
            // Through the gateway's own resolver: the internal name is an internal address.
            .env("GATEWAY_SSRF_RESOLVE", "internal-db.corp=10.1.2.3")
            .args(args);
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
        ] {
            cmd.env(var, &proxy);
        }
        cmd.env_remove("NO_PROXY").env_remove("no_proxy");
        cmd
    };
    let out = command(&["token", "create", "--role", "admin", "--name", "ops"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (mut child, addr) = crate::process::serve(&mut command(&[]));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let api = |path: &str| format!("http://{addr}/api/v1{path}");
    let post = |path: String, body: serde_json::Value| {
        client
            .post(api(&path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let res = post("/tenants".into(), json!({"slug": "acme", "name": "Acme"}))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let ep: serde_json::Value = post(
        "/tenants/acme/endpoints".into(),
        json!({"url": "http://internal-db.corp:5432/x"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let test = format!(
        "/tenants/acme/endpoints/{}/test",
        ep["id"].as_str().unwrap()
    );
    let sent: serde_json::Value = post(test, json!({})).await.unwrap().json().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(sent["success"], false, "{sent}");
    assert_eq!(sent["error_class"], "ssrf_refused", "{sent}");
    assert!(sent["response_snippet"].is_null(), "{sent}");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing went to the proxy of the environment"
    );
}

#[tokio::test]
async fn unsigned_junk_spends_no_tenant_quota_and_failed_verifications_are_limited_per_address() {
    let w = crate::webhooks::world_with(|s| {
        s.ingest_rate_limit_per_second = 1;
        s.ingest_rate_limit_burst = 2;
        s.ingest_failed_verifications_per_minute = 1;
        s.ingest_failed_verifications_burst = 5;
    })
    .await;
    let junk = |i: usize| {
        w.app
            .client
            .post(w.app.url("/webhooks/vectorcare/acme"))
            .header("x-vectorcare-signature", "bm90IGEgc2lnbmF0dXJl")
            .body(format!("{{\"junk\": {i}}}"))
            .send()
    };
    let mut answers = Vec::new();
    for i in 0..8 {
        answers.push(junk(i).await.unwrap().status().as_u16());
    }
    assert_eq!(
        answers,
        [401, 401, 401, 401, 401, 429, 429, 429],
        "five failures, then this address waits"
    );
    // The tenant's own quota (a burst of 2) is untouched by all that.
    for (i, expected) in [(1, 200), (2, 200), (3, 429)] {
        let body = crate::webhooks::vectorcare_event(
            &format!("01JM00000000000000000009{i:02}"),
            "VC-QUOTA",
            "AVAILABLE",
            "BROADCAST_RECEIVED",
        );
        let res = w
            .app
            .post_vectorcare(
                "/webhooks/vectorcare/acme",
                &body,
                crate::webhooks::VECTORCARE_PRIVATE_PEM,
            )
            .await;
        assert_eq!(res.status().as_u16(), expected, "genuine webhook {i}");
    }
}

#[tokio::test]
async fn a_disabled_tenant_loses_its_api_access_and_its_deliveries_wait_until_it_is_enabled() {
    let s = crate::delivery::setup_with(|_| {}).await;
    let rx = crate::receiver::Receiver::start().await;
    s.endpoint(&rx.url, json!({})).await;
    let tenant: serde_json::Value = s
        .app
        .get_as("/api/v1/tenants/acme", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    let token = s.app.tenant_token(tenant["id"].as_str().unwrap()).await;
    s.event(1, "VC-PAUSE").await;

    let status = |value: &'static str| {
        s.app
            .patch_as("/api/v1/tenants/acme", &s.admin, json!({ "status": value }))
    };
    assert_eq!(status("disabled").await.status().as_u16(), 200);

    // Its tokens are refused, for reads and writes alike.
    let res = s.app.get_as("/api/v1/tenants/acme/events", &token).await;
    assert_problem(res, 403, "tenant_disabled").await;
    let res = s
        .app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &token,
            json!({"url": "https://receiver.example.com/"}),
        )
        .await;
    assert_problem(res, 403, "tenant_disabled").await;
    // No provider is called on its behalf, even by an admin.
    let res = s
        .app
        .post_as(
            "/api/v1/tenants/acme/vectorcare/requests/VC-PAUSE/accept",
            &s.admin,
            json!({}),
        )
        .await;
    assert_problem(res, 403, "tenant_disabled").await;
    // Its deliveries are kept and wait; admins still read everything.
    assert_eq!(s.drain().await, 0);
    assert!(rx.received().is_empty());
    let pending = s.deliveries("?status=pending").await;
    assert_eq!(pending.len(), 1, "kept, not dropped");
    let res = s.app.get_as("/api/v1/tenants/acme/events", &s.admin).await;
    assert_eq!(res.status().as_u16(), 200);

    // Enabled again: the token works and the delivery goes out.
    assert_eq!(status("active").await.status().as_u16(), 200);
    let res = s.app.get_as("/api/v1/tenants/acme/events", &token).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(s.drain().await, 1);
    assert_eq!(rx.received().len(), 1);
}

#[tokio::test]
async fn endpoint_headers_are_sealed_at_rest_answered_masked_and_sent_in_full() {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let s = crate::delivery::setup_with(|_| {}).await;
    let rx = crate::receiver::Receiver::start().await;
    let credential = "Bearer receiver-credential-0123456789";
    let ep = s
        .endpoint(&rx.url, json!({"headers": {"Authorization": credential}}))
        .await;
    assert_eq!(ep["headers"]["Authorization"], "****6789");
    let id = ep["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/tenants/acme/endpoints/{id}");
    let read: serde_json::Value = s.app.get_as(&path, &s.admin).await.json().await.unwrap();
    assert_eq!(read["headers"]["Authorization"], "****6789");
    assert!(!read.to_string().contains("receiver-credential"));

    let rows = gateway::store::endpoint::Entity::find()
        .into_json()
        .all(&s.app.state.db)
        .await
        .unwrap();
    let dump = serde_json::to_string(&rows).unwrap();
    assert!(!dump.contains("receiver-credential"), "{dump}");

    s.event(1, "VC-HDR").await;
    s.drain().await;
    assert_eq!(rx.received()[0].headers["authorization"], credential);

    // Sending back the hint keeps the credential; a new header is sealed beside it.
    let res = s
        .app
        .patch_as(
            &path,
            &s.admin,
            json!({"headers": {"Authorization": "****6789", "X-Team": "dispatch-team-7"}}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    s.event(2, "VC-HDR").await;
    s.drain().await;
    let second = &rx.received()[1];
    assert_eq!(second.headers["authorization"], credential);
    assert_eq!(second.headers["x-team"], "dispatch-team-7");

    // A row written before headers were sealed is sealed when the gateway starts.
    let row = gateway::store::endpoint::Entity::find_by_id(
        gateway::domain::EndpointId::parse(&id).unwrap(),
    )
    .one(&s.app.state.db)
    .await
    .unwrap()
    .unwrap();
    let mut legacy: gateway::store::endpoint::ActiveModel = row.into();
    legacy.headers = Set(json!({"Authorization": credential}));
    legacy.update(&s.app.state.db).await.unwrap();
    let changed =
        gateway::store::endpoint_headers::seal_plain(&s.app.state.db, &s.app.state.cipher)
            .await
            .unwrap();
    assert_eq!(changed, 1);
    let rows = gateway::store::endpoint::Entity::find()
        .into_json()
        .all(&s.app.state.db)
        .await
        .unwrap();
    assert!(!serde_json::to_string(&rows)
        .unwrap()
        .contains("receiver-credential"));
    s.app.state.delivery.forget_endpoints();
    s.event(3, "VC-HDR").await;
    s.drain().await;
    assert_eq!(rx.received()[2].headers["authorization"], credential);
}
