//! The OpenAPI document: assembled from the routes' `#[utoipa::path]` annotations by
//! utoipa-actix-web, served at `/openapi.json`, browsable at `/docs`, committed at
//! `openapi/openapi.json` (a test fails when they differ; `UPDATE_OPENAPI=1 cargo test` rewrites it).

use actix_web::App;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::error::{FieldError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Webhook gateway",
        description = "Receives healthcare providers' webhooks per tenant (`GET /api/v1/providers` \
lists the providers), verifies, normalizes and stores them, and delivers them to tenant callback endpoints. Every error is \
`application/problem+json` with a stable `code`. Authenticate with `Authorization: Bearer <token>`; \
the first admin token comes from `gateway token create --role admin`.",
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "tenants", description = "Customer organizations"),
        (name = "providers", description = "The providers, and a tenant's connections to them: keys, credentials, webhook URLs"),
        (name = "endpoints", description = "A tenant's endpoints (push or pull), their signing secrets, their events in sequence order, cursors and endpoint tokens"),
        (name = "webhooks", description = "Where providers post: per-tenant webhook URLs"),
        (name = "events", description = "Stored events: normalized and raw, with subject timelines"),
        (name = "deliveries", description = "Deliveries to endpoints, their attempts, replay, test sends and statistics"),
        (name = "tokens", description = "API tokens (admin only)"),
        (name = "audit", description = "Every mutation of the admin API"),
        (name = "alerts", description = "Operational alerts for the gateway's operators (admin only)"),
        (name = "patient data", description = "Tenants' data keys: payloads sealed at rest, rotation and crypto-shredding"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An API token from POST /api/v1/tokens or `gateway token create`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The hand-written part of the document; paths and schemas are added from the routes.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The complete document as served, built without a socket or a database.
pub fn document() -> serde_json::Value {
    let api = App::new()
        .into_utoipa_app()
        .openapi(base())
        .configure(crate::web::configure)
        .split_for_parts()
        .1;
    crate::web::contract::complete(&api)
}
