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
async fn on_postgresql_event_bodies_are_compressed_with_lz4_when_the_server_has_it() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    if !app.database.is_postgres() {
        return;
    }
    let db = &app.state.db;
    let query = |sql: &str| Statement::from_string(db.get_database_backend(), sql.to_owned());
    let lz4 = db
        .query_one_raw(query(
            "SELECT 1 AS ok FROM pg_settings \
             WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
        ))
        .await
        .unwrap()
        .is_some();
    let methods: Vec<String> = db
        .query_all_raw(query(
            "SELECT attcompression::text AS m FROM pg_attribute \
             WHERE attrelid = 'events'::regclass AND attname IN ('raw_body', 'normalized')",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "m").unwrap())
        .collect();
    let expected = if lz4 { "l" } else { "" };
    assert_eq!(methods, vec![expected.to_owned(); 2]);
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

#[tokio::test]
async fn on_postgresql_the_stored_cloud_event_headers_and_verification_are_json_not_jsonb() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    if !app.database.is_postgres() {
        return;
    }
    let db = &app.state.db;
    let types: Vec<String> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT data_type::text AS t FROM information_schema.columns \
             WHERE table_name = 'events' \
             AND column_name IN ('normalized', 'raw_headers', 'verification') \
             ORDER BY column_name"
                .to_owned(),
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "t").unwrap())
        .collect();
    assert_eq!(types, vec!["json".to_owned(); 3]);
}
