//! `GET /metrics`: Prometheus text, with the queue's figures read at scrape time.

use actix_web::{get, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(metrics);
}

/// Prometheus metrics
///
/// Text exposition format (OpenMetrics).
#[utoipa::path(tag = "health", responses((status = 200, description = "Metrics in OpenMetrics text", content_type = "application/openmetrics-text")))]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Queue figures are read from the database at scrape time: they are shared by every replica.
    if let Ok((depth, oldest)) = crate::delivery::queue::stats(&state.db).await {
        state.metrics.queue_depth.set(depth);
        let age = oldest.map_or(0.0, |t| {
            (chrono::Utc::now() - t).num_milliseconds() as f64 / 1000.0
        });
        state.metrics.oldest_pending_seconds.set(age.max(0.0));
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}
