//! The committed OpenAPI document is the served one. `UPDATE_OPENAPI=1 cargo test openapi`
//! rewrites `openapi/openapi.json` after a route or schema changed.

use serde_json::Value;

use crate::helpers::spawn_app;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

#[tokio::test]
async fn the_served_openapi_document_matches_the_committed_file() {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status().as_u16(), 200);
    let served: Value = res.json().await.unwrap();
    assert_eq!(
        served,
        serde_json::to_value(gateway::web::openapi::document()).unwrap()
    );

    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
        std::fs::write(COMMITTED, text).unwrap();
        return;
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(COMMITTED)
            .expect("openapi/openapi.json exists; run UPDATE_OPENAPI=1 cargo test openapi"),
    )
    .unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test openapi` and commit the file"
    );
}

#[tokio::test]
async fn the_document_describes_bearer_auth_problems_and_every_admin_route() {
    let doc = serde_json::to_value(gateway::web::openapi::document()).unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let ops: Vec<(&String, &Value)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(_, item)| item.as_object().unwrap().iter())
        .collect();
    assert!(ops.len() >= 25, "{}", ops.len());
    for (_, op) in ops {
        assert!(
            op["summary"].is_string(),
            "every operation has a summary: {op}"
        );
        assert!(!op["responses"].as_object().unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_docs_ui_is_served_offline_from_the_binary() {
    let app = spawn_app().await;
    let res = app.get("/docs/").await;
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("://cdn") && !html.contains("unpkg.com"),
        "nothing from a CDN"
    );
    let css = app.get("/docs/swagger-ui.css").await;
    assert_eq!(css.status().as_u16(), 200);
}
