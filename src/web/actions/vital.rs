//! Vital's resend of missed webhooks, as a route.

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{
    base_url, connection, interpret, open_secret, recorded, unreachable, ActionErrors,
    ActionResult, Called, Ctx,
};
use crate::error::{ApiError, FieldError};
use crate::providers::vital::PROVIDER;
use crate::web::auth::TenantScope;
use crate::web::http::ApiJson;
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(vital_resend);
}

/// Which Vital orders to replay: their ids, or a window of at most 60 days.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendEvents {
    /// 1 to 100 Vital order ids.
    pub order_ids: Option<Vec<String>>,
    /// Window start, RFC 3339 (with `end_at`, instead of `order_ids`).
    pub start_at: Option<DateTime<Utc>>,
    /// Window end, at most 60 days after `start_at`.
    pub end_at: Option<DateTime<Utc>>,
}

impl ResendEvents {
    /// The body for Vital, and the orders (timeline subjects) it concerns.
    fn provider_body(&self) -> Result<(Value, Vec<Option<String>>), ApiError> {
        let mut errors = Vec::new();
        let out = match (&self.order_ids, self.start_at, self.end_at) {
            (Some(ids), None, None) => {
                if ids.is_empty() || ids.len() > 100 {
                    errors.push(FieldError::new("order_ids", "needs 1 to 100 order ids"));
                }
                for (i, id) in ids.iter().enumerate() {
                    if id.trim().is_empty() || id.len() > 128 {
                        errors.push(FieldError::new(
                            format!("order_ids[{i}]"),
                            "must be a Vital order id",
                        ));
                    }
                }
                (
                    json!({"order_ids": ids}),
                    ids.iter().cloned().map(Some).collect(),
                )
            }
            (None, Some(start), Some(end)) => {
                if end <= start {
                    errors.push(FieldError::new("end_at", "must be after start_at"));
                } else if end - start > chrono::Duration::days(60) {
                    errors.push(FieldError::new(
                        "end_at",
                        "the window may span at most 60 days",
                    ));
                }
                (
                    json!({"start_at": crate::normalize::rfc3339(start), "end_at": crate::normalize::rfc3339(end)}),
                    vec![None],
                )
            }
            _ => {
                errors.push(FieldError::new(
                    "order_ids",
                    "give either order_ids or both start_at and end_at",
                ));
                (Value::Null, vec![])
            }
        };
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// Resend Vital webhooks
///
/// Asks Vital to replay the latest webhook of the given orders (`POST /v3/order/resend_events`
/// with the connection's API key), to recover events missed while an endpoint was down.
#[utoipa::path(
    tag = "provider actions",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = ResendEvents,
    responses((status = 200, body = ActionResult), ActionErrors, CommonErrors),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/vital/resend-events")]
async fn vital_resend(
    state: web::Data<AppState>,
    scope: TenantScope,
    req: HttpRequest,
    body: ApiJson<ResendEvents>,
) -> Result<HttpResponse, ApiError> {
    let (sent, subjects) = body.0.provider_body()?;
    let conn = connection(&state, &scope, PROVIDER).await?;
    let Some(key) = open_secret(&state, &conn)? else {
        return Err(ApiError::ConnectionIncomplete(
            "the Vital connection has no api_key; set it with PUT \
             /api/v1/tenants/{tenant}/providers/vital"
                .into(),
        ));
    };
    let url = base_url(&conn, "Vital")?
        .join("v3/order/resend_events")
        .map_err(|e| ApiError::internal(anyhow::anyhow!("building the Vital URL: {e}")))?;
    let call = async {
        match state
            .providers
            .http
            .post(url)
            .header("x-vital-api-key", key.expose_secret())
            .json(&sent)
            .send()
            .await
        {
            Ok(res) => interpret("Vital", res).await,
            Err(e) => Called::failed(unreachable("Vital", &e)),
        }
    };
    recorded(
        &Ctx::new(&state, &scope, &req),
        PROVIDER,
        "resend_events",
        subjects,
        &sent,
        call,
    )
    .await
}
