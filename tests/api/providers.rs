use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, spawn_app, spawn_app_with, VECTORCARE_PUBLIC_PEM,
    VECTORCARE_ROTATED_PUBLIC_PEM, VITAL_SECRET, WEAK_1024_PUBLIC_PEM,
};

#[tokio::test]
async fn a_vectorcare_connection_answers_with_its_webhook_urls_and_a_masked_secret() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "acme", Some("123")).await;

    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/vectorcare",
            &admin,
            json!({
                "public_keys": [VECTORCARE_PUBLIC_PEM],
                "client_id": "client-123",
                "client_secret": "vc-client-secret-0123456789",
                "ip_allowlist": ["203.0.113.0/24", "198.51.100.7"],
            }),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let conn: Value = res.json().await.unwrap();
    assert!(conn["id"].as_str().unwrap().starts_with("pc_"));
    assert_eq!(conn["tenant_id"], tenant["id"]);
    assert_eq!(
        conn["webhook_urls"]["path"],
        "https://gateway.test/webhooks/vectorcare/acme"
    );
    assert_eq!(
        conn["webhook_urls"]["customer_id"],
        "https://gateway.test/webhooks/vectorcare?customer_id=123"
    );
    assert_eq!(
        conn["token_url"],
        "https://auth.vectorcare.com/v2.0/oauth2/token"
    );
    assert_eq!(
        conn["api_base_url"],
        "https://hub.vectorcare.com/openapi/v2.0/"
    );
    assert_eq!(
        conn["ip_allowlist"],
        json!(["203.0.113.0/24", "198.51.100.7/32"])
    );
    assert_eq!(conn["secret_hint"], "****6789");
    assert!(
        !conn.to_string().contains("vc-client-secret"),
        "the secret is never returned"
    );
    let key = &conn["keys"][0];
    assert_eq!(key["kind"], "rsa_public_key");
    assert_eq!(key["hint"], "RSA-2048");
    assert!(key["public_key_pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));

    // A second PUT updates (200) and keeps what it does not mention.
    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/vectorcare",
            &admin,
            json!({"api_base_url": "https://hub-uat.vectorcare.com/openapi/v2.0"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let conn: Value = res.json().await.unwrap();
    assert_eq!(
        conn["api_base_url"], "https://hub-uat.vectorcare.com/openapi/v2.0/",
        "trailing slash added"
    );
    assert_eq!(conn["secret_hint"], "****6789");
    assert_eq!(conn["keys"].as_array().unwrap().len(), 1);

    let got: Value = app
        .get_as("/api/v1/tenants/acme/providers/vectorcare", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], conn["id"]);

    assert_eq!(
        app.delete_as("/api/v1/tenants/acme/providers/vectorcare", &admin)
            .await
            .status()
            .as_u16(),
        204
    );
    assert_problem(
        app.get_as("/api/v1/tenants/acme/providers/vectorcare", &admin)
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn bad_keys_and_urls_answer_422_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let path = "/api/v1/tenants/acme/providers/vectorcare";

    let res = app
        .put_as(path, &admin, json!({"public_keys": [VECTORCARE_PUBLIC_PEM, "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", WEAK_1024_PUBLIC_PEM]}))
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "public_keys[1]");
    assert_eq!(body["errors"][1]["field"], "public_keys[2]");
    assert!(
        body["errors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("1024-bit"),
        "{body}"
    );

    // Valid as an update; the connection's absence is what it conflicts with.
    let res = app.put_as(path, &admin, json!({"client_id": "x"})).await;
    let body = assert_problem(res, 409, "conflict").await;
    assert_eq!(
        body["errors"][0]["field"], "public_keys",
        "a new connection needs a key"
    );
    let res = app
        .post_as(
            &format!("{path}/keys"),
            &admin,
            json!({"public_key_pem": VECTORCARE_PUBLIC_PEM}),
        )
        .await;
    assert_problem(res, 409, "conflict").await;
    // An empty key list is refused on update too: a connection always has a key.
    let res = app.put_as(path, &admin, json!({"public_keys": []})).await;
    assert_problem(res, 422, "validation_failed").await;

    let res = app
        .put_as(path, &admin, json!({"public_keys": [VECTORCARE_PUBLIC_PEM], "token_url": "ftp://x", "ip_allowlist": ["10.0.0.0/99"]}))
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["token_url", "ip_allowlist[0]"]);

    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/acme-bank",
            &admin,
            json!({}),
        )
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "provider");
    let res = app
        .get_as("/api/v1/tenants/acme/providers/acme-bank", &admin)
        .await;
    assert_problem(res, 422, "validation_failed").await;
}

#[tokio::test]
async fn keys_are_added_and_removed_one_at_a_time_for_rotation() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let conn = app.connect_vectorcare(&admin, "acme").await;
    let old_key = conn["keys"][0]["id"].as_str().unwrap().to_owned();
    let keys = "/api/v1/tenants/acme/providers/vectorcare/keys";

    let res = app
        .post_as(
            keys,
            &admin,
            json!({"public_key_pem": VECTORCARE_ROTATED_PUBLIC_PEM}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let new_key: Value = res.json().await.unwrap();
    assert!(new_key["id"].as_str().unwrap().starts_with("key_"));

    let res = app
        .post_as(
            keys,
            &admin,
            json!({"public_key_pem": VECTORCARE_ROTATED_PUBLIC_PEM}),
        )
        .await;
    assert_problem(res, 409, "conflict").await;
    let res = app
        .post_as(keys, &admin, json!({"signing_secret": VITAL_SECRET}))
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "signing_secret");

    let conn: Value = app
        .get_as("/api/v1/tenants/acme/providers/vectorcare", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        conn["keys"].as_array().unwrap().len(),
        2,
        "both keys valid during the overlap"
    );

    assert_eq!(
        app.delete_as(&format!("{keys}/{old_key}"), &admin)
            .await
            .status()
            .as_u16(),
        204
    );
    let conn: Value = app
        .get_as("/api/v1/tenants/acme/providers/vectorcare", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(conn["keys"].as_array().unwrap().len(), 1);
    assert_eq!(conn["keys"][0]["id"], new_key["id"]);

    let last = new_key["id"].as_str().unwrap();
    let body = assert_problem(
        app.delete_as(&format!("{keys}/{last}"), &admin).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "key");
    assert_problem(
        app.delete_as(&format!("{keys}/{old_key}"), &admin).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_vital_connection_validates_its_secrets_and_masks_them_and_the_api_key() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "labco", None).await;
    let path = "/api/v1/tenants/labco/providers/vital";

    let res = app
        .put_as(
            path,
            &admin,
            json!({"signing_secrets": ["C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "whsec_c2hvcnQ="]}),
        )
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "signing_secrets[0]");
    assert_eq!(body["errors"][1]["field"], "signing_secrets[1]");
    let res = app
        .put_as(
            path,
            &admin,
            json!({"signing_secrets": [VITAL_SECRET], "region": "mars"}),
        )
        .await;
    assert_eq!(
        assert_problem(res, 422, "validation_failed").await["errors"][0]["field"],
        "region"
    );

    let res = app
        .put_as(path, &admin, json!({"signing_secrets": [VITAL_SECRET], "api_key": "sk_us_live_abcdef123456", "region": "eu-sandbox"}))
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let conn: Value = res.json().await.unwrap();
    assert_eq!(conn["provider"], "vital");
    assert_eq!(conn["api_base_url"], "https://api.sandbox.eu.junction.com/");
    assert_eq!(conn["secret_hint"], "****3456");
    assert_eq!(conn["keys"][0]["kind"], "signing_secret");
    assert_eq!(conn["keys"][0]["hint"], "whsec_****b7oD");
    assert!(conn["keys"][0]["public_key_pem"].is_null());
    assert_eq!(
        conn["webhook_urls"]["path"],
        "https://gateway.test/webhooks/vital/labco"
    );
    assert!(conn["webhook_urls"]["customer_id"].is_null());
    let text = conn.to_string();
    assert!(!text.contains("C2FVsBQIhrscChlQIMV") && !text.contains("abcdef123456"));
}

#[tokio::test]
async fn provider_urls_may_use_http_only_when_configured() {
    let strict = spawn_app().await;
    let admin = strict.admin_token().await;
    strict.create_tenant(&admin, "acme", None).await;
    let body =
        json!({"public_keys": [VECTORCARE_PUBLIC_PEM], "token_url": "http://127.0.0.1:9/token"});
    let res = strict
        .put_as(
            "/api/v1/tenants/acme/providers/vectorcare",
            &admin,
            body.clone(),
        )
        .await;
    assert_eq!(
        assert_problem(res, 422, "validation_failed").await["errors"][0]["field"],
        "token_url"
    );

    let lax = spawn_app_with(|s| s.allow_http_endpoints = true).await;
    let admin = lax.admin_token().await;
    lax.create_tenant(&admin, "acme", None).await;
    let res = lax
        .put_as("/api/v1/tenants/acme/providers/vectorcare", &admin, body)
        .await;
    assert_eq!(res.status().as_u16(), 201);
}

#[tokio::test]
async fn the_catalog_lists_every_provider_with_its_fields_types_and_actions_to_any_token() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let t = app.create_tenant(&admin, "acme", None).await;
    let tenant = app.tenant_token(t["id"].as_str().unwrap()).await;
    let res = app.get("/api/v1/providers").await;
    assert_problem(res, 401, "missing_token").await;
    for token in [&admin, &tenant] {
        let res = app.get_as("/api/v1/providers", token).await;
        assert_eq!(res.status().as_u16(), 200);
        let catalog: Value = res.json().await.unwrap();
        let names: Vec<&str> = catalog
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let registry: Vec<&str> = gateway::providers::Provider::all()
            .map(|p| p.as_str())
            .collect();
        assert_eq!(names, registry);
        assert_eq!(&names[..2], ["vectorcare", "vital"]);
        let vc = &catalog[0];
        let fields: Vec<(&str, bool, bool)> = vc["credential_fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap(),
                    f["secret"].as_bool().unwrap(),
                    f["required_on_create"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("public_keys", false, true),
                ("client_id", false, false),
                ("client_secret", true, false),
                ("token_url", false, false),
                ("api_base_url", false, false),
                ("ip_allowlist", false, false),
            ]
        );
        assert_eq!(vc["add_key_field"], "public_key_pem");
        assert_eq!(vc["key_kind"], "rsa_public_key");
        assert!(vc["event_types"]
            .as_array()
            .unwrap()
            .contains(&json!("transport.request.offered")));
        assert_eq!(vc["actions"][0]["name"], "accept");
        assert_eq!(
            vc["webhook_urls"][0],
            "https://gateway.test/webhooks/vectorcare/{tenant}"
        );
        let vital = &catalog[1];
        assert_eq!(vital["key_kind"], "standard_webhooks_secret");
        let region = vital["credential_fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "region")
            .unwrap();
        assert_eq!(region["kind"], "choice");
        assert_eq!(
            region["choices"],
            json!(["us", "eu", "us-sandbox", "eu-sandbox"])
        );
        assert_eq!(vital["actions"][0]["name"], "resend_events");
        assert_eq!(vital["scenarios"][0]["name"], "phlebotomy");
    }
}

#[tokio::test]
async fn a_connection_body_with_a_field_of_another_provider_or_type_is_refused_naming_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/vital",
            &admin,
            json!({"signing_secrets": [VITAL_SECRET], "client_id": "x", "api_key": 5}),
        )
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["client_id", "api_key"], "{body}");
    let res = app
        .put_as("/api/v1/tenants/acme/providers/vital", &admin, json!(["x"]))
        .await;
    assert_problem(res, 422, "validation_failed").await;
}
