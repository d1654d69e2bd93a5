//! Vital's resend of missed webhooks (`POST /v3/order/resend_events` with the connection's API
//! key), to recover events missed while an endpoint was down.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::error::{ApiError, FieldError};
use crate::providers::action::{Call, Request};

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
    pub fn provider_body(&self) -> Result<(Value, Vec<Option<String>>), ApiError> {
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

pub fn plan_resend(r: &Request) -> Result<Call, ApiError> {
    let (body, subjects) = r.body::<ResendEvents>()?.provider_body()?;
    Ok(Call {
        method: reqwest::Method::POST,
        path: "v3/order/resend_events".into(),
        body: Some(body),
        subjects,
    })
}
