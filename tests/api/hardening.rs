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
