//! Every rejection, including actix-web's own, is problem+json with a stable code.

use actix_web::{test, web, HttpResponse};
use serde::Deserialize;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_unknown_route_answers_404_problem() {
    let app = spawn_app().await;
    let body = assert_problem(app.get("/no/such/route").await, 404, "route_not_found").await;
    assert!(body["detail"].as_str().unwrap().contains("/no/such/route"));
}

#[tokio::test]
async fn a_wrong_method_answers_405_problem_naming_the_allowed_methods() {
    let app = spawn_app().await;
    let res = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    assert_problem(res, 405, "method_not_allowed").await;
    let trace = reqwest::Method::from_bytes(b"TRACE").unwrap();
    let res = app
        .client
        .request(trace, app.url("/api/v1/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    assert_problem(res, 405, "method_not_allowed").await;
    let res = app
        .client
        .put(app.url("/api/v1/tenants/acme"))
        .send()
        .await
        .unwrap();
    let mut allow: Vec<&str> = res.headers()["allow"]
        .to_str()
        .unwrap()
        .split(", ")
        .collect();
    allow.sort();
    assert_eq!(allow, ["DELETE", "GET", "PATCH"]);
    assert_problem(res, 405, "method_not_allowed").await;
    // A route documented once per provider answers what each of its documented paths lists.
    let res = app
        .client
        .post(app.url("/api/v1/tenants/acme/providers/vital"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, PUT, DELETE");
    assert_problem(res, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn too_many_or_too_large_headers_answer_431_problem_with_a_request_id() {
    let app = spawn_app().await;
    let mut many = app.client.get(app.url("/healthz"));
    for i in 0..70 {
        many = many.header(format!("x-extra-{i}"), "1");
    }
    let res = many.send().await.unwrap();
    assert!(res.headers().contains_key("x-request-id"));
    assert_problem(res, 431, "headers_too_large").await;

    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-big", "a".repeat(70 * 1024))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-request-id"));
    assert_problem(res, 431, "headers_too_large").await;

    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-fine", "a".repeat(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "an 8 KiB header is fine");
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Probe {
    name: String,
    count: u32,
}

/// The gateway's own app (middleware and extractor configuration) with one extra JSON route,
/// driven through `actix_web::test` without a socket.
async fn probe_service(
    app: &crate::helpers::TestApp,
) -> impl actix_web::dev::Service<
    actix_http::Request,
    Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(gateway::web::build_app(app.state.clone()).route(
        "/probe",
        web::post().to(|_: web::Json<Probe>| async { HttpResponse::NoContent().finish() }),
    ))
    .await
}

async fn problem_of(
    svc: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
    req: test::TestRequest,
) -> (u16, String, serde_json::Value) {
    let res = test::call_service(svc, req.to_request()).await;
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = test::read_body_json(res).await;
    (status, ct, body)
}

#[tokio::test]
async fn malformed_json_answers_400_invalid_json() {
    let app = spawn_app().await;
    let svc = probe_service(&app).await;
    let req = test::TestRequest::post()
        .uri("/probe")
        .insert_header(("content-type", "application/json"))
        .set_payload("{\"name\": ");
    let (status, ct, body) = problem_of(&svc, req).await;
    assert_eq!((status, ct.as_str()), (400, "application/problem+json"));
    assert_eq!(body["code"], "invalid_json");
}

#[tokio::test]
async fn json_of_the_wrong_shape_answers_400_naming_the_field() {
    let app = spawn_app().await;
    let svc = probe_service(&app).await;
    let req = test::TestRequest::post()
        .uri("/probe")
        .insert_header(("content-type", "application/json"))
        .set_payload(r#"{"name": "x", "count": "many"}"#);
    let (status, _, body) = problem_of(&svc, req).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_json");
    assert!(
        body["detail"].as_str().unwrap().contains("invalid type"),
        "{body}"
    );
}

#[tokio::test]
async fn a_non_json_content_type_answers_415() {
    let app = spawn_app().await;
    let svc = probe_service(&app).await;
    let req = test::TestRequest::post()
        .uri("/probe")
        .insert_header(("content-type", "text/plain"))
        .set_payload("hello");
    let (status, _, body) = problem_of(&svc, req).await;
    assert_eq!(status, 415);
    assert_eq!(body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn a_body_over_the_configured_limit_answers_413() {
    let app = spawn_app_with(|s| s.max_body_bytes = 2048).await;
    let svc = probe_service(&app).await;
    let big = format!(r#"{{"name": "{}", "count": 1}}"#, "x".repeat(4096));
    let req = test::TestRequest::post()
        .uri("/probe")
        .insert_header(("content-type", "application/json"))
        .set_payload(big);
    let (status, _, body) = problem_of(&svc, req).await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "payload_too_large");
    assert!(body["detail"].as_str().unwrap().contains("2048"), "{body}");
}

#[tokio::test]
async fn a_delivery_status_filter_that_is_not_a_status_answers_invalid_query() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let res = app
        .get_as("/api/v1/tenants/acme/deliveries?status=bogus", &admin)
        .await;
    assert_problem(res, 400, "invalid_query").await;
    let res = app
        .get_as("/api/v1/tenants/acme/deliveries?status=dead", &admin)
        .await;
    assert_eq!(res.status().as_u16(), 200);
}
