//! Every action of the registry as a route and as an OpenAPI operation, from the one declaration
//! in its provider's folder: adding a provider's action touches nothing here.

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, Route};
use chrono::Utc;
use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponsesBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Object, RefOr, Required, Schema, Type};
use utoipa::ToSchema;
use utoipa_actix_web::OpenApiFactory;

use super::{call, recorded, ActionErrors, ActionResult, Ctx};
use crate::error::ApiError;
use crate::providers::action::{self, Action, Request};
use crate::providers::Provider;
use crate::web::auth::TenantScope;
use crate::web::http::ApiJson;
use crate::web::responses::CommonErrors;
use crate::web::AppState;

/// The routes of every provider's actions, below `/api/v1`.
pub struct Routes;

fn all() -> impl Iterator<Item = (Provider, &'static Action)> {
    Provider::all().flat_map(|p| p.plugin().actions().iter().map(move |a| (p, a)))
}

/// The action's route below the API scope.
fn route_path(a: &Action) -> &'static str {
    a.path.strip_prefix("/api/v1").unwrap_or(a.path)
}

fn method(a: &Action) -> Method {
    Method::from_bytes(a.method.as_bytes()).unwrap_or(Method::POST)
}

impl HttpServiceFactory for Routes {
    fn register(self, config: &mut AppService) {
        for (p, a) in all() {
            web::resource(route_path(a))
                .route(route(p, a))
                .register(config);
        }
    }
}

fn route(p: Provider, a: &'static Action) -> Route {
    let route = web::method(method(a));
    if a.input.is_some() {
        route.to(
            move |state: web::Data<AppState>,
                  scope: TenantScope,
                  req: HttpRequest,
                  body: ApiJson<Value>| async move {
                perform(&state, &scope, &req, p, a, Some(body.0)).await
            },
        )
    } else {
        route.to(
            move |state: web::Data<AppState>, scope: TenantScope, req: HttpRequest| async move {
                perform(&state, &scope, &req, p, a, None).await
            },
        )
    }
}

/// Checks the input (nothing is sent when it fails), then the connection, then calls the
/// provider and records the call.
async fn perform(
    state: &AppState,
    scope: &TenantScope,
    req: &HttpRequest,
    provider: Provider,
    a: &'static Action,
    body: Option<Value>,
) -> Result<HttpResponse, ApiError> {
    // A disabled tenant acts toward no provider, whoever asks.
    if scope.tenant.disabled {
        return Err(ApiError::TenantDisabled);
    }
    let request = Request {
        subject: a.subject.and_then(|(name, _)| req.match_info().get(name)),
        body,
        now: Utc::now(),
    };
    let planned = (a.plan)(&request)?;
    let prepared = call::prepare(state, scope, provider, &planned).await?;
    let sent = planned.body.clone().unwrap_or(Value::Null);
    recorded(
        &Ctx::new(state, scope, req),
        provider,
        a.name,
        planned.subjects.clone(),
        &sent,
        call::send(state, provider, prepared, &planned),
    )
    .await
}

fn path_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(Object::with_type(Type::String)))
        .build()
}

fn http_method(a: &Action) -> HttpMethod {
    match method(a) {
        Method::GET => HttpMethod::Get,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::PATCH => HttpMethod::Patch,
        _ => HttpMethod::Post,
    }
}

impl OpenApiFactory for Routes {
    fn paths(&self) -> Paths {
        let mut paths = Paths::new();
        for (p, a) in all() {
            let mut op = OperationBuilder::new()
                .tag("provider actions")
                .summary(Some(a.description.trim_end_matches('.')))
                .description(Some(a.details))
                .operation_id(Some(format!("{}_{}", p.as_str().replace('-', "_"), a.name)))
                .parameter(path_param("tenant", "Tenant id or slug"));
            if let Some((name, description)) = a.subject {
                op = op.parameter(path_param(name, description));
            }
            if let Some(input) = a.input {
                let schema = input(&mut Vec::new());
                op = op.request_body(Some(
                    RequestBodyBuilder::new()
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(schema)).build(),
                        )
                        .required(Some(Required::True))
                        .build(),
                ));
            }
            let ok = ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ActionResult::name(),
                ))))
                .build();
            let responses = ResponsesBuilder::new()
                .response(
                    "200",
                    utoipa::openapi::ResponseBuilder::new()
                        .description("The call succeeded; the provider's answer is included")
                        .content("application/json", ok),
                )
                .responses_from_into_responses::<ActionErrors>()
                .responses_from_into_responses::<CommonErrors>()
                .build();
            op = op
                .responses(responses)
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()));
            paths.add_path_operation(route_path(a), vec![http_method(a)], op.build());
        }
        paths
    }

    fn schemas(&self, schemas: &mut Vec<(String, RefOr<Schema>)>) {
        action::input::<ActionResult>(schemas);
        for (_, a) in all() {
            if let Some(input) = a.input {
                input(schemas);
            }
        }
    }
}
