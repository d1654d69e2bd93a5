//! The web layer: everything HTTP. Request ids and access logs (`http`), token extractors
//! (`auth`), the admin API (`admin`), the webhook routes (`webhooks`), provider actions
//! (`actions`), health, metrics, the OpenAPI document and the admin UI. Handlers stay thin: they
//! parse, check the caller, and call the layers below.

pub mod actions;
pub mod admin;
pub mod admin_ui;
pub mod auth;
pub mod contract;
pub mod export;
pub mod health;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod responses;
mod state;
pub mod webhooks;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

pub use state::AppState;

/// Every route of the gateway. Used by the server, by `actix_web::test`, and by the OpenAPI dump.
pub fn configure(cfg: &mut ServiceConfig) {
    health::configure(cfg);
    metrics::configure(cfg);
    webhooks::configure(cfg);
    cfg.service(
        utoipa_actix_web::scope("/api/v1")
            .wrap(from_fn(admin::forget_caches_after_change))
            .wrap(from_fn(admin::audit_mutations))
            .configure(admin::configure)
            .configure(actions::configure),
    );
}

/// The complete application with its middleware, ready for `HttpServer` or `actix_web::test`.
pub fn build_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.settings.max_body_bytes;
    let (app, api) = App::new()
        .into_utoipa_app()
        .openapi(openapi::base())
        .app_data(web::Data::new(state))
        .app_data(http::json_config(limit))
        .app_data(http::path_config())
        .app_data(http::query_config())
        .app_data(web::PayloadConfig::new(limit))
        .configure(configure)
        .split_for_parts();
    let doc = contract::complete(&api);
    app.app_data(web::Data::new(http::AllowedMethods::from_document(&doc)))
        .route("/docs", web::get().to(docs_without_slash))
        .service(SwaggerUi::new("/docs/{_:.*}").external_url_unchecked("/openapi.json", doc))
        .configure(admin_ui::configure)
        .wrap(ErrorHandlers::new().default_handler(http::problem_fallback))
        .wrap(from_fn(http::request_limits))
        .wrap(from_fn(http::request_context))
}

/// `/docs` leads to the Swagger UI, which is served under `/docs/` (its files are relative).
async fn docs_without_slash() -> actix_web::HttpResponse {
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
        .finish()
}
