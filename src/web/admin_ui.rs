//! The admin web UI: static files from `admin-ui/`, compiled into the binary and served at
//! `/admin`. It talks only to the public API under `/api/v1` with the token pasted at login.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const INDEX: &str = include_str!("../../admin-ui/index.html");
const APP_JS: &str = include_str!("../../admin-ui/app.js");
const DELIVERY_JS: &str = include_str!("../../admin-ui/delivery.js");
const STYLE: &str = include_str!("../../admin-ui/style.css");

/// Everything comes from this origin: no CDN, no inline script.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn file(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("referrer-policy", "no-referrer"))
        .body(body)
}

async fn index() -> HttpResponse {
    file(INDEX, "text/html; charset=utf-8")
}

async fn app_js() -> HttpResponse {
    file(APP_JS, "text/javascript; charset=utf-8")
}

async fn delivery_js() -> HttpResponse {
    file(DELIVERY_JS, "text/javascript; charset=utf-8")
}

async fn style() -> HttpResponse {
    file(STYLE, "text/css; charset=utf-8")
}

/// Not in the OpenAPI document: these are pages, not API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(index))
        .route("/admin/", web::get().to(index))
        .route("/admin/app.js", web::get().to(app_js))
        .route("/admin/delivery.js", web::get().to(delivery_js))
        .route("/admin/style.css", web::get().to(style));
}
