//! The access log: every read of patient data through the API (an event's payload, a subject's
//! timeline or disclosures) writes who read it, for which tenant, subject and event, what was
//! shown, when and from which address, before the data is answered; if the record cannot be
//! written the data is not shown. Admins query it (`GET /api/v1/access-log`) and export it.
//! Lists that show no patient fields write nothing.

use actix_web::{get, web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::audit::fit;
use crate::domain::{AccessId, TenantId};
use crate::error::{ApiError, FieldError};
use crate::store::access_entry;
use crate::web::auth::Principal;
use crate::web::export::{csv_field, export, ExportFormat};
use crate::web::http::RequestId;
use crate::web::pagination::{finish, PageQuery};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_access);
}

/// What a read showed.
#[derive(Debug, Clone, Copy)]
pub enum Shown {
    /// One event's normalized data and webhook as received.
    Event,
    /// A subject's events and provider actions.
    Timeline,
    /// A subject's disclosures.
    Disclosures,
    /// Events read in an endpoint's sequence (a pull endpoint's receiver, a gap filled).
    EndpointEvents,
}

impl Shown {
    fn as_str(self) -> &'static str {
        match self {
            Shown::Event => "event",
            Shown::Timeline => "timeline",
            Shown::Disclosures => "disclosures",
            Shown::EndpointEvents => "endpoint_events",
        }
    }
}

/// Writes the access record of a read about to be answered.
pub async fn record(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
    tenant: &TenantId,
    shown: Shown,
    subject: Option<&str>,
    event: Option<&str>,
) -> Result<(), ApiError> {
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    access_entry::ActiveModel {
        id: Set(AccessId::generate()),
        at: Set(Utc::now()),
        token_id: Set(Some(principal.token_id.to_string())),
        role: Set(Some(principal.role.name().to_owned())),
        tenant_id: Set(Some(tenant.to_string())),
        subject: Set(subject.map(|s| fit(s, 256))),
        event_id: Set(event.map(|e| fit(e, 80))),
        what: Set(shown.as_str().to_owned()),
        address: Set(crate::web::webhooks::client_ip(state, req).map(|ip| ip.to_string())),
        request_id: Set(request_id.map(|r| fit(&r, 160))),
    }
    .insert(&state.db)
    .await?;
    Ok(())
}

/// One read of patient data.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntry {
    pub id: AccessId,
    pub at: DateTime<Utc>,
    /// The caller's token id.
    pub token_id: Option<String>,
    /// `admin`, `tenant` or `endpoint`.
    pub role: Option<String>,
    pub tenant_id: Option<String>,
    pub subject: Option<String>,
    pub event_id: Option<String>,
    /// What was shown: `event`, `timeline`, `disclosures` or `endpoint_events`.
    pub what: String,
    /// The caller's address.
    pub address: Option<String>,
    pub request_id: Option<String>,
}

impl From<access_entry::Model> for AccessEntry {
    fn from(m: access_entry::Model) -> Self {
        Self {
            id: m.id,
            at: m.at,
            token_id: m.token_id,
            role: m.role,
            tenant_id: m.tenant_id,
            subject: m.subject,
            event_id: m.event_id,
            what: m.what,
            address: m.address,
            request_id: m.request_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessList {
    pub data: Vec<AccessEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessFilter {
    /// Tenant id.
    pub tenant_id: Option<String>,
    /// The subject read (a request, trip or order id).
    pub subject: Option<String>,
    /// Token id of the caller.
    pub principal: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Entries before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// `json` (default), `csv` or `ndjson`.
    pub format: Option<ExportFormat>,
}

const CSV_HEADER: &str = "id,at,token_id,role,tenant_id,subject,event_id,what,address,request_id";

fn csv_line(e: &AccessEntry) -> String {
    let text = |v: &Option<String>| csv_field(v.as_deref().unwrap_or_default());
    [
        e.id.to_string(),
        e.at.to_rfc3339(),
        text(&e.token_id),
        text(&e.role),
        text(&e.tenant_id),
        text(&e.subject),
        text(&e.event_id),
        csv_field(&e.what),
        text(&e.address),
        text(&e.request_id),
    ]
    .join(",")
}

/// List the access log
///
/// Admin only. Every read of patient data through the API, newest first: who (token id and
/// role), tenant, subject, event, what was shown, when, from which address. `?format=csv` or
/// `?format=ndjson` exports the page.
#[utoipa::path(
    tag = "audit",
    params(PageQuery, AccessFilter),
    responses(
        (status = 200, body = AccessList, description = "JSON; `text/csv` or `application/x-ndjson` with `format`"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[get("/access-log")]
async fn list_access(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
    filter: web::Query<AccessFilter>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    let limit = page.limit()?;
    let mut query =
        access_entry::of(filter.tenant_id.as_deref()).order_by_desc(access_entry::Column::Id);
    if let Some(cursor) = &page.cursor {
        let cursor = AccessId::parse(cursor)
            .map_err(|m| ApiError::Validation(vec![FieldError::new("cursor", m)]))?;
        query = query.filter(access_entry::Column::Id.lt(cursor));
    }
    if let Some(v) = &filter.subject {
        query = query.filter(access_entry::Column::Subject.eq(v.clone()));
    }
    if let Some(v) = &filter.principal {
        query = query.filter(access_entry::Column::TokenId.eq(v.clone()));
    }
    if let Some(v) = filter.since {
        query = query.filter(access_entry::Column::At.gte(v));
    }
    if let Some(v) = filter.until {
        query = query.filter(access_entry::Column::At.lt(v));
    }
    let rows = query.limit(limit + 1).all(&state.db).await?;
    let (rows, next_cursor) = finish(rows, limit, |a| a.id.clone());
    let data: Vec<AccessEntry> = rows.into_iter().map(AccessEntry::from).collect();
    match filter.format.unwrap_or_default() {
        ExportFormat::Json => Ok(HttpResponse::Ok().json(AccessList { data, next_cursor })),
        format => export(format, CSV_HEADER, &data, csv_line),
    }
}
