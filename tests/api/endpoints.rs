use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn an_endpoint_shows_its_signing_secret_once_at_creation() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;

    let res = app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &admin,
            json!({
                "url": "https://dispatch.example.com/hooks",
                "event_types": ["transport.*", "lab.order.updated"],
                "headers": {"X-Api-Key": "abc"},
                "rate_limit_per_second": 50,
            }),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let ep: Value = res.json().await.unwrap();
    let id = ep["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ep_"));
    let secret = ep["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &secret[6..])
            .unwrap()
            .len(),
        32
    );
    assert_eq!(ep["enabled"], true);
    assert_eq!(
        ep["event_types"],
        json!(["transport.*", "lab.order.updated"])
    );
    assert_eq!(
        ep["headers"]["X-Api-Key"], "****",
        "a header value is answered masked"
    );

    let got: Value = app
        .get_as(&format!("/api/v1/tenants/acme/endpoints/{id}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["url"], "https://dispatch.example.com/hooks");
    assert!(got.get("signing_secret").is_none());
    let listed: Value = app
        .get_as("/api/v1/tenants/acme/endpoints", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert!(!listed.to_string().contains(&secret[6..]));
    let secrets: Value = app
        .get_as(
            &format!("/api/v1/tenants/acme/endpoints/{id}/secrets"),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(secrets.as_array().unwrap().len(), 1);
    assert!(secrets[0]["hint"]
        .as_str()
        .unwrap()
        .starts_with("whsec_****"));
    assert!(!secrets.to_string().contains(&secret[6..]));
}

#[tokio::test]
async fn endpoints_are_disabled_enabled_updated_and_deleted() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let ep = app
        .create_endpoint(&admin, "acme", "https://a.example.com/")
        .await;
    let path = format!(
        "/api/v1/tenants/acme/endpoints/{}",
        ep["id"].as_str().unwrap()
    );

    let off: Value = app
        .patch_as(&path, &admin, json!({"enabled": false}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(off["enabled"], false);
    let changed: Value = app
        .patch_as(
            &path,
            &admin,
            json!({"url": "https://b.example.com/x", "enabled": true, "rate_limit_per_second": 0}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["enabled"], true);
    assert_eq!(changed["url"], "https://b.example.com/x");
    assert!(changed["rate_limit_per_second"].is_null());

    assert_eq!(app.delete_as(&path, &admin).await.status().as_u16(), 204);
    assert_problem(app.get_as(&path, &admin).await, 404, "not_found").await;
}

#[tokio::test]
async fn endpoint_input_is_validated_field_by_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let res = app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &admin,
            json!({
                "url": "http://plain.example.com/",
                "event_types": ["Bad Type"],
                "headers": {"webhook-signature": "forged", "X-Ok": "fine"},
                "rate_limit_per_second": 100000,
            }),
        )
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "url",
            "event_types[0]",
            "headers.webhook-signature",
            "rate_limit_per_second"
        ]
    );
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("https"));
}

#[tokio::test]
async fn rotating_the_secret_keeps_the_previous_one_signing_for_the_grace_period() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let ep = app
        .create_endpoint(&admin, "acme", "https://a.example.com/")
        .await;
    let path = format!(
        "/api/v1/tenants/acme/endpoints/{}",
        ep["id"].as_str().unwrap()
    );

    let res = app
        .post_as(
            &format!("{path}/rotate-secret"),
            &admin,
            json!({"grace_period": "2h"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let rotated: Value = res.json().await.unwrap();
    let new_secret = rotated["signing_secret"].as_str().unwrap();
    assert!(
        new_secret.starts_with("whsec_") && new_secret != ep["signing_secret"].as_str().unwrap()
    );
    let expires: chrono::DateTime<chrono::Utc> = rotated["previous_secrets_expire_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let in_two_hours = chrono::Utc::now() + chrono::Duration::hours(2);
    assert!((expires - in_two_hours).num_seconds().abs() < 60);

    let secrets: Value = app
        .get_as(&format!("{path}/secrets"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        secrets.as_array().unwrap().len(),
        2,
        "old and new both sign during the grace period"
    );
    assert!(secrets[0]["expires_at"].is_null(), "the newest is current");
    assert!(secrets[1]["expires_at"].is_string());

    // Without a body: the default grace (24h), which does not extend the first secret's 2h.
    let res = app
        .call(
            reqwest::Method::POST,
            &format!("{path}/rotate-secret"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let secrets: Value = app
        .get_as(&format!("{path}/secrets"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(secrets.as_array().unwrap().len(), 3);
    let second_end: chrono::DateTime<chrono::Utc> =
        secrets[1]["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (second_end - (chrono::Utc::now() + chrono::Duration::hours(24)))
            .num_seconds()
            .abs()
            < 60
    );
    let first_end: chrono::DateTime<chrono::Utc> =
        secrets[2]["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (first_end - in_two_hours).num_seconds().abs() < 60,
        "still its 2h end"
    );

    // After a leak: 0s retires every previous secret at once.
    app.post_as(
        &format!("{path}/rotate-secret"),
        &admin,
        json!({"grace_period": "0s"}),
    )
    .await;
    let secrets: Value = app
        .get_as(&format!("{path}/secrets"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        secrets.as_array().unwrap().len(),
        1,
        "only the newest signs"
    );

    let res = app
        .post_as(
            &format!("{path}/rotate-secret"),
            &admin,
            json!({"grace_period": "soon"}),
        )
        .await;
    assert_eq!(
        assert_problem(res, 422, "validation_failed").await["errors"][0]["field"],
        "grace_period"
    );
}
