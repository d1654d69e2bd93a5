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
    // The address README gives, without the slash, leads there too.
    let res = app.get("/docs").await;
    assert_eq!(res.status().as_u16(), 308);
    assert_eq!(res.headers()["location"], "/docs/");
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

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/openapi/normalized-event.schema.json"
);

/// The provider names and the event types of the normalized event's JSON Schema come from the
/// registry; `UPDATE_OPENAPI=1 cargo test openapi` rewrites them after a provider changed.
#[test]
fn the_normalized_event_schema_lists_the_registrys_providers_and_types() {
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let expected = gateway::providers::catalog::normalized_event_schema(committed.clone());
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        // Only the registry's parts are rewritten, in place: the rest keeps its hand-kept layout.
        let mut text = std::fs::read_to_string(SCHEMA).unwrap();
        let props = &expected["properties"];
        let words = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|w| w.to_string())
                .collect()
        };
        for (anchor, list) in [
            (
                "\"provider\": { \"enum\": ",
                format!("[{}]", words(&props["provider"]["enum"]).join(", ")),
            ),
            (
                "\"enum\": ",
                format!(
                    "[\n        {}\n      ]",
                    words(&props["type"]["enum"]).join(",\n        ")
                ),
            ),
        ] {
            let start = text.find(anchor).unwrap() + anchor.len();
            let end = start + text[start..].find(']').unwrap() + 1;
            text.replace_range(start..end, &list);
        }
        let anchor = "\"pattern\": \"^/providers/";
        let start = text.find(anchor).unwrap() + "\"pattern\": ".len();
        let end = start + 1 + text[start + 1..].find('"').unwrap() + 1;
        let pattern = serde_json::to_string(&props["source"]["pattern"]).unwrap();
        text.replace_range(start..end, &pattern);
        std::fs::write(SCHEMA, text).unwrap();
        return;
    }
    assert!(
        expected == committed,
        "openapi/normalized-event.schema.json is out of date: run `UPDATE_OPENAPI=1 cargo test openapi`"
    );
    let providers: Vec<&str> = gateway::providers::Provider::all()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(
        committed["properties"]["provider"]["enum"],
        serde_json::json!(providers)
    );
    assert!(providers.len() >= 2);
    let types = committed["properties"]["type"]["enum"].as_array().unwrap();
    for p in gateway::providers::Provider::all() {
        for t in p.plugin().event_types() {
            assert!(types.iter().any(|v| v == t), "{t} of {p} is in the schema");
        }
    }
}

#[test]
fn the_connection_bodies_are_one_variant_per_provider_named_and_built_from_the_registry() {
    let doc = serde_json::to_value(gateway::web::openapi::document()).unwrap();
    let put = &doc["paths"]["/api/v1/tenants/{tenant}/providers/{provider}"]["put"];
    let param = put["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "provider")
        .expect("a provider parameter");
    assert_eq!(
        param["schema"]["$ref"], "#/components/schemas/Provider",
        "{param}"
    );
    let names: Vec<&str> = gateway::providers::Provider::all()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(
        doc["components"]["schemas"]["Provider"]["enum"],
        serde_json::json!(names)
    );
    for (component, of) in [("ConnectionInput", "anyOf"), ("AddKeyInput", "oneOf")] {
        let variants = doc["components"]["schemas"][component][of]
            .as_array()
            .expect("one body per provider");
        assert_eq!(variants.len(), names.len());
        for (variant, p) in variants.iter().zip(gateway::providers::Provider::all()) {
            assert_eq!(variant["x-provider"], p.as_str(), "{component}");
            assert_eq!(variant["additionalProperties"], false);
            let spec = p.plugin().credentials();
            let mut fields: Vec<&str> = variant["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            fields.sort();
            let mut expected: Vec<&str> = if component == "AddKeyInput" {
                vec![spec.keys.add_field]
            } else {
                spec.fields
                    .iter()
                    .map(|f| f.name)
                    .chain([spec.keys.field])
                    .collect()
            };
            expected.sort();
            assert_eq!(fields, expected, "{component} of {p}");
        }
    }
}

#[tokio::test]
async fn every_action_of_every_provider_is_a_documented_route_of_its_method() {
    let app = spawn_app().await;
    let doc = serde_json::to_value(gateway::web::openapi::document()).unwrap();
    let admin = app.admin_token().await;
    let catalog: Value = app
        .get_as("/api/v1/providers", &admin)
        .await
        .json()
        .await
        .unwrap();
    let mut seen = 0;
    for provider in catalog.as_array().unwrap() {
        for action in provider["actions"].as_array().unwrap() {
            let path = action["path"].as_str().unwrap();
            let method = action["method"].as_str().unwrap();
            let op = &doc["paths"][path][method.to_lowercase()];
            assert_eq!(
                op["operationId"],
                format!(
                    "{}_{}",
                    provider["name"].as_str().unwrap().replace('-', "_"),
                    action["name"].as_str().unwrap()
                ),
                "{method} {path} is documented"
            );
            assert_eq!(
                op["requestBody"].is_object(),
                !action["fields"].as_array().unwrap().is_empty(),
                "{method} {path}: a body exactly when the action has fields"
            );
            // Routed: without a token the route answers 401, where an unknown one answers 404.
            let concrete = path.replace(['{', '}'], "");
            let res = reqwest::Client::new()
                .request(method.parse().unwrap(), app.url(&concrete))
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 401, "{method} {path} is routed");
            seen += 1;
        }
    }
    assert!(seen >= 7, "{seen} actions");
}
