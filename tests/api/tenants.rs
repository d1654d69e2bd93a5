use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn an_admin_creates_reads_updates_disables_and_deletes_a_tenant() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let res = app
        .post_as(
            "/api/v1/tenants",
            &admin,
            json!({"slug": "acme-health", "name": "Acme Health", "customer_id": "123"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tn_"));
    assert_eq!(location, format!("/api/v1/tenants/{id}"));
    assert_eq!(created["status"], "active");
    assert_eq!(created["customer_id"], "123");

    // By id and by slug.
    for reference in [id.as_str(), "acme-health"] {
        let got: Value = app
            .get_as(&format!("/api/v1/tenants/{reference}"), &admin)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(got["id"], id.as_str());
    }

    let res = app
        .patch_as(
            &format!("/api/v1/tenants/{id}"),
            &admin,
            json!({"name": "Acme Health West", "status": "disabled"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["name"], "Acme Health West");
    assert_eq!(updated["status"], "disabled");
    assert_eq!(updated["slug"], "acme-health", "absent fields stay");

    let res = app
        .patch_as(
            &format!("/api/v1/tenants/{id}"),
            &admin,
            json!({"customer_id": ""}),
        )
        .await;
    let cleared: Value = res.json().await.unwrap();
    assert!(cleared["customer_id"].is_null());

    assert_eq!(
        app.delete_as(&format!("/api/v1/tenants/{id}"), &admin)
            .await
            .status()
            .as_u16(),
        204
    );
    assert_problem(
        app.get_as(&format!("/api/v1/tenants/{id}"), &admin).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn tenants_are_listed_in_pages_and_filtered_by_name_and_status() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for slug in [
        "north-clinic",
        "south-clinic",
        "east-labs",
        "west-labs",
        "central-labs",
    ] {
        app.create_tenant(&admin, slug, None).await;
    }
    app.patch_as(
        "/api/v1/tenants/west-labs",
        &admin,
        json!({"status": "disabled"}),
    )
    .await;

    let first: Value = app
        .get_as("/api/v1/tenants?limit=2", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second: Value = app
        .get_as(&format!("/api/v1/tenants?limit=2&cursor={cursor}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    let third: Value = app
        .get_as(
            &format!(
                "/api/v1/tenants?limit=2&cursor={}",
                second["next_cursor"].as_str().unwrap()
            ),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(third["next_cursor"].is_null());
    let slugs: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|p| {
            p["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["slug"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        slugs,
        [
            "north-clinic",
            "south-clinic",
            "east-labs",
            "west-labs",
            "central-labs"
        ]
    );

    let labs: Value = app
        .get_as("/api/v1/tenants?name=LABS", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(labs["data"].as_array().unwrap().len(), 3);
    let disabled: Value = app
        .get_as("/api/v1/tenants?status=disabled", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["data"][0]["slug"], "west-labs");
    assert_eq!(disabled["data"].as_array().unwrap().len(), 1);

    assert_problem(
        app.get_as("/api/v1/tenants?limit=0", &admin).await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn a_duplicate_slug_or_customer_id_answers_409_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", Some("c-1")).await;

    let res = app
        .post_as(
            "/api/v1/tenants",
            &admin,
            json!({"slug": "acme", "name": "Other"}),
        )
        .await;
    let body = assert_problem(res, 409, "conflict").await;
    assert_eq!(body["errors"][0]["field"], "slug");

    let res = app
        .post_as(
            "/api/v1/tenants",
            &admin,
            json!({"slug": "other", "name": "Other", "customer_id": "c-1"}),
        )
        .await;
    let body = assert_problem(res, 409, "conflict").await;
    assert_eq!(body["errors"][0]["field"], "customer_id");
}

#[tokio::test]
async fn invalid_tenant_fields_answer_422_naming_each_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let res = app
        .post_as(
            "/api/v1/tenants",
            &admin,
            json!({"slug": "Not A Slug", "name": "", "customer_id": "has space"}),
        )
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["slug", "name", "customer_id"]);

    // A missing field and a wrongly typed one are named by their path.
    let body = assert_problem(
        app.post_as("/api/v1/tenants", &admin, json!({"slug": "ok-slug"}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("name"),
        "{body}"
    );
    let body = assert_problem(
        app.post_as(
            "/api/v1/tenants",
            &admin,
            json!({"slug": "ok-slug", "name": 5}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "name");
    let body = assert_problem(
        app.post_as(
            "/api/v1/tenants",
            &admin,
            json!({"slug": "ok-slug", "name": "x", "nmae": "typo"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nmae"),
        "{body}"
    );

    // Not JSON at all.
    let res = app
        .client
        .post(app.url("/api/v1/tenants"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "invalid_json").await;
}
