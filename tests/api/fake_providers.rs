//! VectorCare's token endpoint and Open API, and Vital's resend endpoint, played on 127.0.0.1
//! exactly as `providers.md` documents them: form-body client credentials, `invalid_client` as a
//! 401, bearer tokens that expire, trailing-slash paths with their documented success codes, and
//! the documented error answers (400, 403, 404, 429 with Retry-After) for chosen request ids.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

pub const CLIENT_ID: &str = "gateway-test-client";
pub const CLIENT_SECRET: &str = "vc-secret-0123456789";
pub const VITAL_KEY: &str = "sk_us_test_0123456789";

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub vital_key: Option<String>,
    pub body: Value,
}

#[derive(Default)]
pub struct State {
    /// Token lifetime announced in `expires_in` (seconds).
    pub expires_in: AtomicU64,
    /// How long the token endpoint takes to answer (ms).
    pub token_delay_ms: AtomicU64,
    pub token_requests: Mutex<Vec<HashMap<String, String>>>,
    /// Issued tokens and when they expire.
    tokens: Mutex<HashMap<String, Instant>>,
    /// Tokens the server stopped accepting before their time.
    revoked: Mutex<HashSet<String>>,
    pub calls: Mutex<Vec<Call>>,
}

pub struct FakeProviders {
    pub base: String,
    pub state: Arc<State>,
}

impl FakeProviders {
    pub fn token_url(&self) -> String {
        format!("{}/v2.0/oauth2/token", self.base)
    }
    pub fn api_base(&self) -> String {
        format!("{}/openapi/v2.0/", self.base)
    }
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.lock().unwrap().len()
    }
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }
    /// Every token issued so far stops working, as if it had expired early.
    pub fn expire_tokens(&self) {
        let tokens = self.state.tokens.lock().unwrap();
        self.state
            .revoked
            .lock()
            .unwrap()
            .extend(tokens.keys().cloned());
    }

    pub async fn start() -> FakeProviders {
        let state = Arc::new(State::default());
        state.expires_in.store(3600, Ordering::SeqCst);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v2.0/oauth2/token", web::post().to(token))
                .route("/v3/order/resend_events", web::post().to(vital_resend))
                .default_service(web::to(api))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        FakeProviders {
            base: format!("http://127.0.0.1:{port}"),
            state,
        }
    }
}

async fn token(body: web::Bytes, s: web::Data<Arc<State>>) -> HttpResponse {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    s.token_requests.lock().unwrap().push(form.clone());
    let delay = s.token_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let good = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    if !good {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    let n = s.token_requests.lock().unwrap().len();
    let token = format!("vc-token-{n}");
    let lifetime = s.expires_in.load(Ordering::SeqCst);
    s.tokens.lock().unwrap().insert(
        token.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    );
    HttpResponse::Ok().json(json!({
        "access_token": token, "token_type": "bearer", "expires_in": lifetime,
    }))
}

/// `requests/{id}/{call}/` with the documented methods and success codes.
async fn api(req: HttpRequest, body: web::Bytes, s: web::Data<Arc<State>>) -> HttpResponse {
    let path = req.path().to_owned();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.calls.lock().unwrap().push(Call {
        method: req.method().to_string(),
        path: path.clone(),
        authorization: authorization.clone(),
        vital_key: None,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let valid = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| {
            let live = s
                .tokens
                .lock()
                .unwrap()
                .get(t)
                .is_some_and(|exp| Instant::now() < *exp);
            live && !s.revoked.lock().unwrap().contains(t)
        });
    if !valid {
        return HttpResponse::Unauthorized().json(json!({"detail": "Invalid or expired token."}));
    }
    let Some(rest) = path.strip_prefix("/openapi/v2.0/requests/") else {
        return HttpResponse::NotFound().finish();
    };
    let mut parts = rest.split('/');
    let (id, call, end) = (parts.next(), parts.next(), parts.next());
    let (Some(id), Some(call), Some("")) = (id, call, end) else {
        return HttpResponse::NotFound().json(json!({"detail": "Not found."}));
    };
    match id {
        "VC-GONE" => {
            return HttpResponse::Forbidden()
                .json(json!({"detail": "This request is no longer available to you."}))
        }
        "VC-MISSING" => return HttpResponse::NotFound().json(json!({"detail": "Not found."})),
        "VC-BUSY" => {
            return HttpResponse::TooManyRequests()
                .insert_header(("retry-after", "7"))
                .json(json!({"detail": "Request was throttled."}))
        }
        "VC-BAD" => return HttpResponse::BadRequest().json(
            json!({"detail": "response_notes: Ensure this field has no more than 450 characters."}),
        ),
        _ => {}
    }
    let method = req.method().as_str();
    let status = match (method, call) {
        ("PUT", "accept") | ("PUT", "decline") | ("POST", "state") | ("PUT", "best-time") => 201,
        ("POST", "locations") | ("POST", "change-request") => 200,
        _ => return HttpResponse::MethodNotAllowed().finish(),
    };
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(json!({"id": id, "result": call}))
}

async fn vital_resend(
    req: HttpRequest,
    body: web::Bytes,
    s: web::Data<Arc<State>>,
) -> HttpResponse {
    let key = req
        .headers()
        .get("x-vital-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.calls.lock().unwrap().push(Call {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        authorization: None,
        vital_key: key.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    if key.as_deref() != Some(VITAL_KEY) {
        return HttpResponse::Unauthorized().json(json!({"detail": "Invalid API key"}));
    }
    HttpResponse::Ok().json(json!({"success": true}))
}
