use serde_json::{json, Value};

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_mutation_is_audited_with_actor_action_target_and_outcome() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "acme", None).await;
    let tenant_id = tenant["id"].as_str().unwrap();
    app.connect_vectorcare(&admin, "acme").await;
    let ep = app
        .create_endpoint(&admin, "acme", "https://a.example.com/")
        .await;
    let ep_id = ep["id"].as_str().unwrap();
    app.post_as(
        &format!("/api/v1/tenants/acme/endpoints/{ep_id}/rotate-secret"),
        &admin,
        json!({}),
    )
    .await;
    // A refused mutation is audited too, as a failure.
    app.post_as(
        "/api/v1/tenants",
        &admin,
        json!({"slug": "acme", "name": "dup"}),
    )
    .await;
    // Reads are not audited.
    app.get_as("/api/v1/tenants", &admin).await;

    let log: Value = app
        .get_as("/api/v1/audit", &admin)
        .await
        .json()
        .await
        .unwrap();
    let entries = log["data"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "tenants.create",
            "tenants.endpoints.rotate-secret",
            "tenants.endpoints.create",
            "tenants.providers.vectorcare.set",
            "tenants.create",
        ],
        "newest first"
    );
    let failed = &entries[0];
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["status"], 409);
    let created = &entries[4];
    assert_eq!(created["outcome"], "success");
    assert_eq!(created["target"], tenant_id);
    assert_eq!(created["tenant_id"], tenant_id);
    assert_eq!(created["actor_role"], "admin");
    assert!(created["actor_token_id"]
        .as_str()
        .unwrap()
        .starts_with("tok_"));
    assert_eq!(entries[2]["target"], ep_id);
    assert_eq!(entries[1]["target"], ep_id);
    assert_eq!(entries[1]["tenant_id"], tenant_id);

    let only: Value = app
        .get_as(
            &format!("/api/v1/audit?action=tenants.create&outcome=success&target={tenant_id}"),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    let since = chrono::Utc::now() + chrono::Duration::minutes(1);
    let none: Value = app
        .get_as(
            &format!("/api/v1/audit?since={}", since.format("%Y-%m-%dT%H:%M:%SZ")),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(none["data"].as_array().unwrap().is_empty());
    let page: Value = app
        .get_as("/api/v1/audit?limit=2", &admin)
        .await
        .json()
        .await
        .unwrap();
    let next: Value = app
        .get_as(
            &format!(
                "/api/v1/audit?limit=2&cursor={}",
                page["next_cursor"].as_str().unwrap()
            ),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["data"][0]["id"], entries[2]["id"]);
}
