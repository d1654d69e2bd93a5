//! Liveness and readiness, for load balancers and orchestrators.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::startup::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `web::resource` (not `cfg.route`) so that another method answers 405, not 404.
    cfg.service(web::resource("/healthz").get(healthz))
        .service(web::resource("/readyz").get(readyz));
}

/// Alive: the process answers HTTP. Touches nothing else, so it stays cheap.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready: the database answers and every migration this binary knows is applied.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    crate::store::readiness(&state.db)
        .await
        .map_err(ApiError::NotReady)?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "database": crate::store::backend_name(&state.db),
    })))
}
