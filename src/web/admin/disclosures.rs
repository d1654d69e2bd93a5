//! The accounting of disclosures of one subject (a service request, a trip, a lab order): which
//! endpoint received which of its events, when, with which outcome and payload mode. As JSON, or
//! exported as CSV or NDJSON for a records request.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::access::{self, Shown};
use crate::error::ApiError;
use crate::store::disclosures::{self, Disclosure};
use crate::web::auth::TenantScope;
use crate::web::export::{csv_field, export, ExportFormat};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_disclosures);
}

/// The most disclosures one answer lists.
const MAX_ROWS: u64 = 10_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DisclosureQuery {
    /// `json` (default), `csv` or `ndjson`.
    pub format: Option<ExportFormat>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosureList {
    pub subject: String,
    /// Oldest first; at most 10,000.
    pub data: Vec<Disclosure>,
}

const CSV_HEADER: &str = "at,event_id,event_type,endpoint_id,endpoint_host,delivery_id,attempt,outcome,status_code,payload_mode";

fn csv_line(d: &Disclosure) -> String {
    let fields = [
        d.at.to_rfc3339(),
        d.event_id.to_string(),
        d.event_type.clone(),
        d.endpoint_id.to_string(),
        d.endpoint_host.clone().unwrap_or_default(),
        d.delivery_id.to_string(),
        d.attempt.to_string(),
        d.outcome.to_owned(),
        d.status_code.map(|c| c.to_string()).unwrap_or_default(),
        d.payload_mode.as_str().to_owned(),
    ];
    let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    fields.join(",")
}

/// A subject's disclosures
///
/// Every time the subject's patient data left the gateway: each delivery attempt of each of its
/// events, with the receiving endpoint (id and host), the time, the outcome and the payload mode.
/// It outlives the payload purge. `?format=csv` or `?format=ndjson` exports it.
#[utoipa::path(
    tag = "events",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("subject" = String, Path, description = "The subject: a transport request, trip or order id"),
        DisclosureQuery
    ),
    responses(
        (status = 200, body = DisclosureList, description = "JSON; `text/csv` or `application/x-ndjson` with `format`"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/subjects/{subject}/disclosures")]
async fn list_disclosures(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    query: web::Query<DisclosureQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let subject = path.into_inner().1;
    access::record(
        &state,
        &req,
        &scope.principal,
        scope.id(),
        Shown::Disclosures,
        Some(&subject),
        None,
    )
    .await?;
    let data = disclosures::for_subject(&state.db, scope.id(), &subject, MAX_ROWS).await?;
    let format = query.format.unwrap_or_default();
    if let ExportFormat::Json = format {
        return Ok(HttpResponse::Ok().json(DisclosureList { subject, data }));
    }
    export(format, CSV_HEADER, &data, csv_line)
}
