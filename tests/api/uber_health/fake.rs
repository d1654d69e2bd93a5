//! Uber's token endpoint and trips API on 127.0.0.1, as `providers.md` documents them:
//! form-body client credentials with `scope=health`, 30-day tokens, 100 token requests an hour
//! (429 beyond) and more than 100 tokens invalidating the oldest, `GET`/`DELETE
//! /v1/health/trips/{id}` with their documented errors (chosen by the trip id).

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;

pub const CLIENT_ID: &str = "uber-client-id";
pub const CLIENT_SECRET: &str = "uber-client-secret-0123456789";

#[derive(Default)]
pub struct Uber {
    pub token_requests: Mutex<Vec<HashMap<String, String>>>,
    /// Live tokens, oldest first: a 101st pushes out the first.
    tokens: Mutex<VecDeque<String>>,
    calls: Mutex<Vec<(String, String, Option<String>)>>,
    pub token_limited: AtomicBool,
    pub refuse_all_tokens: AtomicBool,
}

pub struct FakeUber {
    pub base: String,
    pub state: Arc<Uber>,
}

impl FakeUber {
    pub async fn start() -> FakeUber {
        let state = Arc::new(Uber::default());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/oauth/v2/token", web::post().to(token))
                .route("/v1/health/trips/{id}", web::get().to(trip))
                .route("/v1/health/trips/{id}", web::delete().to(trip))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        FakeUber {
            base: format!("http://127.0.0.1:{port}"),
            state,
        }
    }
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.lock().unwrap().len()
    }
    pub fn calls(&self) -> Vec<(String, String, Option<String>)> {
        self.state.calls.lock().unwrap().clone()
    }
    /// Every token issued so far stops working (revoked, or pushed out by newer ones).
    pub fn forget_tokens(&self) {
        self.state.tokens.lock().unwrap().clear();
    }
}

async fn token(body: web::Bytes, s: web::Data<Arc<Uber>>) -> HttpResponse {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let n = {
        let mut requests = s.token_requests.lock().unwrap();
        requests.push(form.clone());
        requests.len()
    };
    if n > 100 || s.token_limited.load(Ordering::SeqCst) {
        return HttpResponse::TooManyRequests()
            .insert_header(("retry-after", "1800"))
            .json(json!({"code": "rate_limited", "message": "Too many token requests"}));
    }
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    if field("grant_type") != Some("client_credentials") || field("scope") != Some("health") {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_scope"}));
    }
    let token = format!("uber-token-{n}");
    let mut tokens = s.tokens.lock().unwrap();
    tokens.push_back(token.clone());
    if tokens.len() > 100 {
        tokens.pop_front();
    }
    HttpResponse::Ok().json(json!({
        "access_token": token, "expires_in": 2_592_000, "token_type": "Bearer", "scope": "health",
    }))
}

async fn trip(req: HttpRequest, path: web::Path<String>, s: web::Data<Arc<Uber>>) -> HttpResponse {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.calls.lock().unwrap().push((
        req.method().to_string(),
        req.path().to_owned(),
        auth.clone(),
    ));
    let bearer = auth.as_deref().and_then(|a| a.strip_prefix("Bearer "));
    let live = bearer.is_some_and(|t| s.tokens.lock().unwrap().iter().any(|k| k == t));
    if !live || s.refuse_all_tokens.load(Ordering::SeqCst) {
        return HttpResponse::Unauthorized().json(
            json!({"code": "unauthorized", "message": "Invalid OAuth 2.0 credentials provided."}),
        );
    }
    let id = path.into_inner();
    match id.as_str() {
        "trip-bad" => HttpResponse::BadRequest()
            .json(json!({"code": "validation_failed", "message": "request_id is not valid"})),
        "trip-forbidden" => HttpResponse::Forbidden().json(
            json!({"code": "forbidden", "message": "This trip belongs to another organization"}),
        ),
        "trip-missing" => {
            HttpResponse::NotFound().json(json!({"code": "not_found", "message": "Trip not found"}))
        }
        "trip-broken" => HttpResponse::InternalServerError().finish(),
        _ if req.method() == actix_web::http::Method::DELETE => HttpResponse::NoContent().finish(),
        _ => HttpResponse::Ok().json(json!({
            "request_id": id, "status": "accepted", "request_time": 1_767_264_000_000_i64,
            "guest": {"first_name": "Ada", "last_name": "Lovelace", "phone_number": "+15555550100"},
            "pickup": {"address": "1 Main St", "latitude": 40.7, "longitude": -74.0},
            "destination": {"address": "2 Clinic Ave", "latitude": 40.8, "longitude": -73.9},
            "driver": {"name": "Sam"},
        })),
    }
}
