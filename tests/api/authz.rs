//! Every admin route against every kind of caller, and the token rules behind it.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use gateway::crypto::MasterKey;
use gateway::domain::TokenId;
use gateway::web::auth::jwt::JwtKeys;
use reqwest::Method;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, spawn_app, spawn_app_with, TestApp, VECTORCARE_PUBLIC_PEM,
    VECTORCARE_ROTATED_PUBLIC_PEM,
};

const EXTRA_PUBLIC_PEM: &str = include_str!("../fixtures/keys/vectorcare_extra_public.pem");

#[derive(Clone, Copy, Debug, PartialEq)]
enum Policy {
    /// Any valid token; a tenant token sees only its own data.
    AnyRole,
    /// Admin only, not about one tenant.
    Admin,
    /// About one tenant: its own tenant token or an admin.
    Tenant,
    /// About one tenant, but admins only (credentials, tenant lifecycle).
    TenantAdmin,
    /// A provider action of one tenant (its own token or an admin). The fixture's connections have
    /// no provider credentials, so a caller who gets past authorization is told exactly that.
    TenantAction,
}

struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    policy: Policy,
    /// The body passes the route's checks (false: `validation_failed` also means authorized).
    valid_body: bool,
}

fn route(method: Method, path: &'static str, body: Option<Value>, policy: Policy) -> Route {
    Route {
        method,
        path,
        body,
        policy,
        valid_body: true,
    }
}

fn routes() -> Vec<Route> {
    use Policy::*;
    vec![
        route(Method::GET, "/api/v1/tenants", None, AnyRole),
        route(
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"slug": "brand-new", "name": "New"})),
            Admin,
        ),
        route(Method::GET, "/api/v1/tenants/{tenant}", None, Tenant),
        route(
            Method::PATCH,
            "/api/v1/tenants/{tenant}",
            Some(json!({"name": "Renamed"})),
            TenantAdmin,
        ),
        route(
            Method::DELETE,
            "/api/v1/tenants/{tenant}",
            None,
            TenantAdmin,
        ),
        route(Method::GET, "/api/v1/providers", None, AnyRole),
        route(
            Method::PUT,
            "/api/v1/tenants/{tenant}/providers/{provider}",
            Some(json!({"client_id": "c2"})),
            TenantAdmin,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/providers/{provider}",
            None,
            Tenant,
        ),
        route(
            Method::DELETE,
            "/api/v1/tenants/{tenant}/providers/{provider}",
            None,
            TenantAdmin,
        ),
        route(
            Method::POST,
            "/api/v1/tenants/{tenant}/providers/{provider}/keys",
            Some(json!({"public_key_pem": EXTRA_PUBLIC_PEM})),
            TenantAdmin,
        ),
        route(
            Method::DELETE,
            "/api/v1/tenants/{tenant}/providers/{provider}/keys/{key}",
            None,
            TenantAdmin,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/endpoints",
            None,
            Tenant,
        ),
        route(
            Method::POST,
            "/api/v1/tenants/{tenant}/endpoints",
            Some(json!({"url": "https://new.example.com/"})),
            Tenant,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}",
            None,
            Tenant,
        ),
        route(
            Method::PATCH,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}",
            Some(json!({"enabled": false})),
            Tenant,
        ),
        route(
            Method::DELETE,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}",
            None,
            Tenant,
        ),
        route(
            Method::POST,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/rotate-secret",
            Some(json!({})),
            Tenant,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/secrets",
            None,
            Tenant,
        ),
        route(Method::GET, "/api/v1/tenants/{tenant}/events", None, Tenant),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/actions",
            None,
            Tenant,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/events/{event}",
            None,
            Tenant,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/subjects/{subject}/timeline",
            None,
            Tenant,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/subjects/{subject}/disclosures",
            None,
            Tenant,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/deliveries",
            None,
            Tenant,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/deliveries/{delivery}",
            None,
            Tenant,
        ),
        route(
            Method::POST,
            "/api/v1/tenants/{tenant}/deliveries/{delivery}/redeliver",
            Some(json!({})),
            Tenant,
        ),
        route(
            Method::POST,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/recover",
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
            Tenant,
        ),
        route(
            Method::POST,
            "/api/v1/tenants/{tenant}/events/{event}/resend",
            Some(json!({"endpoint_id": "{endpoint}"})),
            Tenant,
        ),
        route(
            Method::POST,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/test",
            Some(json!({})),
            Tenant,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/stats",
            None,
            Tenant,
        ),
        route(Method::GET, "/api/v1/tokens", None, Admin),
        route(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "n", "role": "admin"})),
            Admin,
        ),
        route(Method::GET, "/api/v1/tokens/{token}", None, Admin),
        route(Method::DELETE, "/api/v1/tokens/{token}", None, Admin),
        route(Method::GET, "/api/v1/audit", None, AnyRole),
        route(Method::GET, "/api/v1/stats", None, Admin),
        route(Method::GET, "/api/v1/access-log", None, Admin),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/data-keys",
            None,
            Tenant,
        ),
        route(
            Method::POST,
            "/api/v1/tenants/{tenant}/data-keys",
            Some(json!({})),
            TenantAdmin,
        ),
        route(
            Method::DELETE,
            "/api/v1/tenants/{tenant}/data-keys/{data_key}",
            None,
            TenantAdmin,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/events",
            None,
            Tenant,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/cursor",
            None,
            Tenant,
        ),
        route(
            Method::PUT,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/cursor",
            Some(json!({"cursor": 0})),
            Tenant,
        ),
        route(
            Method::POST,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/tokens",
            Some(json!({"name": "reader"})),
            Tenant,
        ),
        route(
            Method::GET,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/tokens",
            None,
            Tenant,
        ),
        route(
            Method::DELETE,
            "/api/v1/tenants/{tenant}/endpoints/{endpoint}/tokens/{token}",
            None,
            Tenant,
        ),
        route(Method::GET, "/api/v1/alerts", None, Admin),
    ]
    .into_iter()
    .chain(provider_actions())
    .collect()
}

/// Every provider action of the registry, so a new provider's actions are covered without a
/// line here. A body that passes the action's checks is given where one is needed, so the caller
/// who gets past authorization hears `connection_incomplete`; an action with fields and no
/// example here may answer `validation_failed` instead (also past authorization).
fn provider_actions() -> Vec<Route> {
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let example = |path: &str| -> Option<Value> {
        Some(match path.rsplit('/').next()? {
            "accept" => json!({}),
            "decline" => json!({"response_notes": "no unit free"}),
            "state" => json!({"name": "en_route", "timestamp": now}),
            "locations" => {
                json!({"locations": [{"lat": 1.0, "lng": 2.0, "alt": 3.0, "timestamp": Utc::now().timestamp()}]})
            }
            "best-time" => json!({"proposed_agreed_dt": "2030-01-01T10:00:00Z"}),
            "change-request" => {
                json!({"agreed_dt": "2030-01-01T10:00:00Z", "change_reason": "Traffic"})
            }
            "resend-events" => json!({"order_ids": ["ord-1"]}),
            _ => return None,
        })
    };
    gateway::providers::Provider::all()
        .flat_map(|p| p.plugin().actions().iter())
        .map(|a| {
            let example = (!a.fields.is_empty()).then(|| example(a.path));
            Route {
                valid_body: !matches!(example, Some(None)),
                ..route(
                    Method::from_bytes(a.method.as_bytes()).unwrap(),
                    a.path,
                    example.map(|e| e.unwrap_or(json!({}))),
                    Policy::TenantAction,
                )
            }
        })
        .collect()
}

/// Two tenants; the first with a VectorCare connection (two keys), an endpoint, and tokens.
struct Fixture {
    admin: String,
    own: String,
    other: String,
    tenant: String,
    endpoint: String,
    key: String,
    token: String,
    event: String,
    delivery: String,
    data_key: String,
    /// A pull endpoint (its cursor routes) and a token of the push endpoint.
    pull: String,
    endpoint_token: String,
}

async fn fixture(app: &TestApp, n: usize) -> Fixture {
    let admin = app.admin_token().await;
    let a = app.create_tenant(&admin, &format!("alpha-{n}"), None).await;
    let b = app.create_tenant(&admin, &format!("beta-{n}"), None).await;
    let a_id = a["id"].as_str().unwrap().to_owned();
    let res = app
        .put_as(
            &format!("/api/v1/tenants/{a_id}/providers/vectorcare"),
            &admin,
            json!({"public_keys": [VECTORCARE_PUBLIC_PEM, VECTORCARE_ROTATED_PUBLIC_PEM]}),
        )
        .await;
    let conn: Value = res.json().await.unwrap();
    let ep = app
        .create_endpoint(&admin, &a_id, "https://receiver.example.com/")
        .await;
    let body = crate::webhooks::vectorcare_event(
        &format!("01JM{n:022}"),
        "VC-AUTHZ",
        "AVAILABLE",
        "BROADCAST_RECEIVED",
    );
    let ack: Value = app
        .post_vectorcare(
            &format!("/webhooks/vectorcare/{a_id}"),
            &body,
            crate::webhooks::VECTORCARE_PRIVATE_PEM,
        )
        .await
        .json()
        .await
        .unwrap();
    let spare: Value = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "spare", "role": "tenant", "tenant": a_id}),
        )
        .await
        .json()
        .await
        .unwrap();
    let pull: Value = app
        .post_as(
            &format!("/api/v1/tenants/{a_id}/endpoints"),
            &admin,
            json!({"kind": "pull"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let endpoint_token: Value = app
        .post_as(
            &format!(
                "/api/v1/tenants/{a_id}/endpoints/{}/tokens",
                ep["id"].as_str().unwrap()
            ),
            &admin,
            json!({"name": "reader"}),
        )
        .await
        .json()
        .await
        .unwrap();
    Fixture {
        pull: pull["id"].as_str().unwrap().to_owned(),
        endpoint_token: endpoint_token["id"].as_str().unwrap().to_owned(),
        own: app.tenant_token(&a_id).await,
        other: app.tenant_token(b["id"].as_str().unwrap()).await,
        admin,
        endpoint: ep["id"].as_str().unwrap().to_owned(),
        key: conn["keys"][1]["id"].as_str().unwrap().to_owned(),
        token: spare["id"].as_str().unwrap().to_owned(),
        delivery: {
            use sea_orm::{ColumnTrait, QueryFilter};
            gateway::store::delivery::Entity::find()
                .filter(
                    gateway::store::delivery::Column::EventId.eq(ack["event_id"].as_str().unwrap()),
                )
                .one(&app.state.db)
                .await
                .unwrap()
                .unwrap()
                .id
                .to_string()
        },
        event: ack["event_id"].as_str().unwrap().to_owned(),
        data_key: {
            let tenant = gateway::domain::TenantId::parse(&a_id).unwrap();
            gateway::store::data_key::list_for_tenant(&app.state.db, &tenant)
                .await
                .unwrap()[0]
                .id
                .to_string()
        },
        tenant: a_id,
    }
}

fn fill(path: &str, f: &Fixture) -> String {
    // A cursor is a pull endpoint's; an endpoint's tokens are endpoint tokens.
    path.replace("{endpoint}/cursor", &format!("{}/cursor", f.pull))
        .replace(
            "{endpoint}/tokens/{token}",
            &format!("{}/tokens/{}", f.endpoint, f.endpoint_token),
        )
        .replace("{tenant}", &f.tenant)
        .replace("{provider}", "vectorcare")
        .replace("{endpoint}", &f.endpoint)
        .replace("{key}", &f.key)
        .replace("{token}", &f.token)
        .replace("{event}", &f.event)
        .replace("{delivery}", &f.delivery)
        .replace("{data_key}", &f.data_key)
        .replace("{subject}", "VC-AUTHZ")
        .replace("{request}", "VC-AUTHZ")
}

/// A route's path with every placeholder filled, another provider's subject included.
fn fill_path(path: &str, f: &Fixture) -> String {
    fill(path, f)
        .split('/')
        .map(|segment| match segment.starts_with('{') {
            true => "AUTHZ-SUBJECT",
            false => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(app: &TestApp, r: &Route, f: &Fixture, auth: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .request(r.method.clone(), app.url(&fill_path(r.path, f)));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(b) = &r.body {
        let filled: Value = serde_json::from_str(&fill(&b.to_string(), f)).unwrap();
        req = req.json(&filled);
    }
    req.send().await.unwrap()
}

/// Tokens that must never get in: (label, Authorization header, expected code).
async fn refused_tokens(app: &TestApp) -> Vec<(&'static str, Option<String>, &'static str)> {
    let foreign = JwtKeys::new(&MasterKey::generate());
    let id = TokenId::generate();
    let now = Utc::now();
    let bad_signature = foreign
        .issue(&id, "admin", None, now, now + Duration::hours(1))
        .unwrap();
    let expired = app
        .state
        .jwt
        .issue(
            &TokenId::generate(),
            "admin",
            None,
            now - Duration::hours(2),
            now - Duration::hours(1),
        )
        .unwrap();
    let revoked = app.admin_token().await;
    let revoked_row = gateway::store::api_token::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .max_by(|a, b| a.id.cmp(&b.id))
        .unwrap();
    let mut m: gateway::store::api_token::ActiveModel = revoked_row.into();
    m.revoked_at = Set(Some(Utc::now()));
    m.update(&app.state.db).await.unwrap();
    vec![
        ("no token", None, "missing_token"),
        (
            "not a bearer header",
            Some("Basic YWRtaW46YWRtaW4=".into()),
            "malformed_token",
        ),
        (
            "malformed JWT",
            Some("Bearer not.a.jwt".into()),
            "malformed_token",
        ),
        (
            "bad signature",
            Some(format!("Bearer {bad_signature}")),
            "invalid_token",
        ),
        (
            "expired",
            Some(format!("Bearer {expired}")),
            "token_expired",
        ),
        (
            "revoked",
            Some(format!("Bearer {revoked}")),
            "token_revoked",
        ),
    ]
}

#[tokio::test]
async fn every_admin_route_answers_each_kind_of_caller_as_its_policy_says() {
    let app = spawn_app_with(|s| s.admin_rate_limit_burst = 100_000).await;
    let refused = refused_tokens(&app).await;
    let mut n = 0;
    for r in routes() {
        let what = format!("{} {}", r.method, r.path);
        n += 1;
        let f = fixture(&app, n).await;
        for (label, auth, code) in &refused {
            let res = send(&app, &r, &f, auth.as_deref()).await;
            assert_eq!(res.status().as_u16(), 401, "{what}: {label}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["code"], *code, "{what}: {label}");
        }

        let res = send(&app, &r, &f, Some(&format!("Bearer {}", f.other))).await;
        let expected = match r.policy {
            Policy::AnyRole => 200,
            Policy::Admin => 403,
            Policy::Tenant | Policy::TenantAdmin | Policy::TenantAction => 404,
        };
        assert_eq!(
            res.status().as_u16(),
            expected,
            "{what}: another tenant's token"
        );

        // A disabled tenant's own token gets nowhere, whatever the route.
        n += 1;
        let f = fixture(&app, n).await;
        let res = app
            .patch_as(
                &format!("/api/v1/tenants/{}", f.tenant),
                &f.admin,
                json!({"status": "disabled"}),
            )
            .await;
        assert_eq!(res.status().as_u16(), 200);
        let res = send(&app, &r, &f, Some(&format!("Bearer {}", f.own))).await;
        assert_eq!(
            res.status().as_u16(),
            403,
            "{what}: a disabled tenant's token"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["code"], "tenant_disabled",
            "{what}: a disabled tenant's token"
        );

        n += 1;
        let f = fixture(&app, n).await;
        let res = send(&app, &r, &f, Some(&format!("Bearer {}", f.own))).await;
        let status = res.status().as_u16();
        match r.policy {
            Policy::AnyRole | Policy::Tenant => assert!(
                (200..300).contains(&status),
                "{what}: own tenant token got {status}"
            ),
            Policy::Admin | Policy::TenantAdmin => {
                assert_eq!(status, 403, "{what}: own tenant token")
            }
            Policy::TenantAction => assert_authorized_action(&r, res, "own tenant token").await,
        }

        n += 1;
        let f = fixture(&app, n).await;
        let res = send(&app, &r, &f, Some(&format!("Bearer {}", f.admin))).await;
        let status = res.status().as_u16();
        if r.policy == Policy::TenantAction {
            assert_authorized_action(&r, res, "admin").await;
            continue;
        }
        assert!(
            (200..300).contains(&status),
            "{what}: admin got {status}: {}",
            res.text().await.unwrap()
        );
    }
}

/// Past authorization, a provider action of a tenant without provider credentials answers that
/// (or, for a body this table does not know, that the body is invalid).
async fn assert_authorized_action(r: &Route, res: reqwest::Response, who: &str) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    let got = (status, body["code"].as_str());
    let expected = (409, Some("connection_incomplete"));
    if r.valid_body {
        assert_eq!(got, expected, "{} {}: {who}", r.method, r.path);
    } else {
        assert!(
            got == expected || got == (422, Some("validation_failed")),
            "{} {}: {who} got {got:?}",
            r.method,
            r.path
        );
    }
}

#[tokio::test]
async fn the_policy_table_covers_every_documented_admin_route() {
    let doc = serde_json::to_value(gateway::web::openapi::document()).unwrap();
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with("/api/v1/"))
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {p}", m.to_uppercase()))
        })
        .collect();
    let tested: BTreeSet<String> = routes()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(documented, tested);
}

#[tokio::test]
async fn a_tenant_token_lists_only_its_own_tenant_and_audit_entries() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let a = app.create_tenant(&admin, "alpha", None).await;
    app.create_tenant(&admin, "beta", None).await;
    app.patch_as("/api/v1/tenants/beta", &admin, json!({"name": "Beta 2"}))
        .await;
    let own = app.tenant_token(a["id"].as_str().unwrap()).await;

    let list: Value = app
        .get_as("/api/v1/tenants", &own)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["slug"], "alpha");

    app.create_endpoint(&own, "alpha", "https://alpha.example.com/")
        .await;
    let audit: Value = app
        .get_as("/api/v1/audit?tenant_id=all", &own)
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["data"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["tenant_id"] == a["id"]), "{audit}");
}

#[tokio::test]
async fn a_revoked_token_is_refused_from_the_next_request_on() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created: Value = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "ci bot", "role": "admin", "expires_in": "1h"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let jwt = created["token"].as_str().unwrap();
    assert_eq!(
        app.get_as("/api/v1/tenants", jwt).await.status().as_u16(),
        200
    );

    let listed: Value = app
        .get_as("/api/v1/tokens", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == created["id"]));
    assert!(
        !listed.to_string().contains(jwt),
        "the JWT is shown only at creation"
    );

    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.delete_as(&format!("/api/v1/tokens/{id}"), &admin)
            .await
            .status()
            .as_u16(),
        204
    );
    assert_problem(
        app.get_as("/api/v1/tenants", jwt).await,
        401,
        "token_revoked",
    )
    .await;
    let info: Value = app
        .get_as(&format!("/api/v1/tokens/{id}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(info["revoked_at"].is_string());
}

#[tokio::test]
async fn token_input_is_validated() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let res = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "t", "role": "tenant"}),
        )
        .await;
    assert_eq!(
        assert_problem(res, 422, "validation_failed").await["errors"][0]["field"],
        "tenant"
    );
    let res = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "t", "role": "tenant", "tenant": "ghost"}),
        )
        .await;
    // Like any other resource that is not there: 404, with the field that named it.
    let body = assert_problem(res, 404, "reference_not_found").await;
    assert_eq!(body["errors"][0]["field"], "tenant");
    assert_eq!(body["errors"][0]["message"], "no such tenant");
    let res = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "t", "role": "admin", "expires_in": "forever"}),
        )
        .await;
    assert_eq!(
        assert_problem(res, 422, "validation_failed").await["errors"][0]["field"],
        "expires_in"
    );
    let res = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "t", "role": "root"}),
        )
        .await;
    assert_eq!(
        assert_problem(res, 422, "validation_failed").await["errors"][0]["field"],
        "role"
    );
}

#[tokio::test]
async fn a_token_of_another_algorithm_issuer_or_audience_is_refused() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use secrecy::ExposeSecret;
    let app = spawn_app().await;
    app.admin_token().await;
    // The real key, so only the checked property differs.
    let key = app.state.master_key.derive("api-token-hs256");
    let row = gateway::store::api_token::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let now = Utc::now().timestamp();
    let claims = |iss: &str, aud: &str| json!({"iss": iss, "aud": aud, "sub": row.id.to_string(), "role": "admin", "iat": now, "exp": now + 600});
    let forge = |alg: Algorithm, c: Value| {
        encode(
            &Header::new(alg),
            &c,
            &EncodingKey::from_secret(key.expose_secret()),
        )
        .unwrap()
    };
    let good = forge(
        Algorithm::HS256,
        claims("webhook-gateway", "webhook-gateway-api"),
    );
    assert_eq!(
        app.get_as("/api/v1/tenants", &good).await.status().as_u16(),
        200,
        "control: a correct token passes"
    );
    for (label, token) in [
        ("HS512", forge(Algorithm::HS512, claims("webhook-gateway", "webhook-gateway-api"))),
        ("issuer", forge(Algorithm::HS256, claims("someone-else", "webhook-gateway-api"))),
        ("audience", forge(Algorithm::HS256, claims("webhook-gateway", "another-api"))),
        ("no exp", encode(&Header::new(Algorithm::HS256), &json!({"iss": "webhook-gateway", "aud": "webhook-gateway-api", "sub": row.id.to_string()}), &EncodingKey::from_secret(key.expose_secret())).unwrap()),
    ] {
        let res = app.get_as("/api/v1/tenants", &token).await;
        assert_eq!(res.status().as_u16(), 401, "{label}");
    }
}

#[tokio::test]
async fn the_admin_api_rate_limits_each_token_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.admin_rate_limit_per_second = 1;
        s.admin_rate_limit_burst = 3;
    })
    .await;
    let a = app.admin_token().await;
    let b = app.admin_token().await;
    for _ in 0..3 {
        assert_eq!(
            app.get_as("/api/v1/tenants", &a).await.status().as_u16(),
            200
        );
    }
    let res = app.get_as("/api/v1/tenants", &a).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_problem(res, 429, "rate_limited").await;
    assert_eq!(
        app.get_as("/api/v1/tenants", &b).await.status().as_u16(),
        200,
        "limits are per token"
    );
}
