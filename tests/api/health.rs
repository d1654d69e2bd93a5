use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_answers_ok_without_touching_the_database() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_reports_the_migrated_database_of_the_configured_backend() {
    let app = spawn_app().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let expected = if app.database.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(body["database"], expected);
}

#[tokio::test]
async fn readyz_answers_503_while_migrations_are_pending() {
    let app = spawn_app_with(|s| s.migrate_on_start = false).await;
    let body = assert_problem(app.get("/readyz").await, 503, "not_ready").await;
    assert!(
        body["detail"].as_str().unwrap().contains("pending"),
        "{body}"
    );

    gateway::store::migrate_up(&app.state.db).await.unwrap();
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
}

#[tokio::test]
async fn migrations_create_the_same_schema_and_can_be_reverted() {
    use migration::{Migrator, MigratorTrait};
    let app = spawn_app().await;
    let applied = Migrator::get_applied_migrations(&app.state.db)
        .await
        .unwrap();
    assert_eq!(applied.len(), Migrator::migrations().len());

    Migrator::down(&app.state.db, None).await.unwrap();
    assert_eq!(app.get("/readyz").await.status().as_u16(), 503);
    Migrator::up(&app.state.db, None).await.unwrap();
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let a = app.get("/healthz").await;
    let b = app.get("/no/such/route").await;
    let id_a = a.headers()["x-request-id"].to_str().unwrap().to_owned();
    let id_b = b.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id_a.starts_with("req_") && id_b.starts_with("req_"));
    assert_ne!(id_a, id_b);
}

#[tokio::test]
async fn a_callers_request_id_is_kept_and_a_hostile_one_replaced() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc_123");

    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "has spaces\tand tabs")
        .send()
        .await
        .unwrap();
    assert!(res.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
}
