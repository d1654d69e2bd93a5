//! Operator alerts: listed here (admin only); raised by the workers (a delivery died, an
//! endpoint disabled), the monitor (failing endpoints, backlogs, old pending deliveries) and the
//! webhook routes (a burst of failed verifications on one tenant's URL, counted here).

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::{AlertId, AlertKind, AlertStatus, EndpointId, TenantId};
use crate::error::{ApiError, FieldError};
use crate::store::alert;
use crate::web::auth::Principal;
use crate::web::pagination::{finish, PageQuery};
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_alerts);
}

/// Failed verifications per tenant in the current minute (this process's).
#[derive(Default)]
pub struct VerificationWatch {
    minutes: Mutex<HashMap<TenantId, (i64, u32)>>,
}

impl VerificationWatch {
    /// Counts one failure; `true` exactly when the tenant's count this minute reaches
    /// `threshold`.
    pub fn failed(&self, tenant: &TenantId, minute: i64, threshold: u32) -> bool {
        let mut map = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (m, _)| *m == minute);
        }
        let entry = map.entry(tenant.clone()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 == threshold
    }
}

/// A webhook to `tenant`'s URL failed verification: past the threshold within a minute, an
/// alert (raised in the background; the webhook's answer does not wait for it).
pub fn verification_failed(state: &AppState, provider: &str, tenant: &TenantId) {
    let now = Utc::now();
    let minute = now.timestamp().div_euclid(60);
    let threshold = state.settings.monitor.alert_verification_failures;
    if !state.verification_watch.failed(tenant, minute, threshold) {
        return;
    }
    let raise = alert::Raise {
        kind: AlertKind::VerificationFailures,
        dedupe_key: format!("verification_failures:{tenant}:{minute}"),
        tenant_id: Some(tenant.clone()),
        endpoint_id: None,
        summary: format!(
            "failed verifications on tenant {tenant}'s {provider} URL reached {threshold} within a minute"
        ),
        detail: serde_json::json!({"provider": provider, "failures": threshold, "window_seconds": 60}),
    };
    let (db, metrics) = (state.db.clone(), state.metrics.clone());
    tokio::spawn(async move {
        if let Err(e) = crate::delivery::monitor::raise(&db, &metrics, raise).await {
            tracing::warn!(error = %e, "raising an alert failed");
        }
    });
}

/// An operational alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alert {
    pub id: AlertId,
    pub kind: AlertKind,
    pub tenant_id: Option<TenantId>,
    pub endpoint_id: Option<EndpointId>,
    pub summary: String,
    /// The figures behind it.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Its delivery to the operator endpoint (`pending` while none is configured).
    pub status: AlertStatus,
    pub attempts: i32,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<alert::Model> for Alert {
    fn from(m: alert::Model) -> Self {
        Self {
            detail: serde_json::from_str(&m.detail).unwrap_or_default(),
            id: m.id,
            kind: m.kind,
            tenant_id: m.tenant_id,
            endpoint_id: m.endpoint_id,
            summary: m.summary,
            status: m.status,
            attempts: m.attempts,
            sent_at: m.sent_at,
            last_error: m.last_error,
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    pub data: Vec<Alert>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertFilter {
    pub kind: Option<AlertKind>,
    /// One tenant's alerts (its id).
    pub tenant_id: Option<TenantId>,
}

/// List operator alerts
///
/// Admin only; newest first. The same alerts go to the operator endpoint (`operator_url`),
/// signed with `operator_secret` like every callback.
#[utoipa::path(
    tag = "alerts",
    params(PageQuery, AlertFilter),
    responses((status = 200, body = AlertList), CommonErrors),
    security(("bearer" = []))
)]
#[get("/alerts")]
async fn list_alerts(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
    filter: web::Query<AlertFilter>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    let limit = page.limit()?;
    let cursor = match &page.cursor {
        Some(c) => Some(
            AlertId::parse(c)
                .map_err(|m| ApiError::Validation(vec![FieldError::new("cursor", m)]))?,
        ),
        None => None,
    };
    let rows = alert::list(
        &state.db,
        filter.kind,
        filter.tenant_id.as_ref(),
        cursor,
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = finish(rows, limit, |a| a.id.clone());
    Ok(HttpResponse::Ok().json(AlertList {
        data: rows.into_iter().map(Alert::from).collect(),
        next_cursor,
    }))
}
