//! Vital's resend of missed webhooks (`POST /v3/order/resend_events` with the connection's API
//! key), to recover events missed while an endpoint was down.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat,
    Type,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use crate::error::{ApiError, FieldError};
use crate::providers::action::{Call, Request};

/// Which Vital orders to replay: their ids, or a window of at most 60 days.
#[derive(Debug, Deserialize)]
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
                    if !is_order_id(id) {
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

/// Vital's order ids are UUIDs; this admits any id made of URL-safe characters.
const ORDER_ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,128}$";

fn is_order_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Either form, written out: the fields of the other form may be absent or `null`. The window's
/// end is after its start and at most 60 days later (a rule between fields, which JSON Schema
/// cannot state).
impl utoipa::PartialSchema for ResendEvents {
    fn schema() -> RefOr<Schema> {
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let time = |d: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some(d))
        };
        let ids = ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(ORDER_ID_PATTERN)),
            )
            .min_items(Some(1))
            .max_items(Some(100))
            .description(Some("1 to 100 Vital order ids"));
        let by_orders = ObjectBuilder::new()
            .title(Some("By order"))
            .property("order_ids", ids)
            .property("start_at", null())
            .property("end_at", null())
            .required("order_ids");
        let by_window = ObjectBuilder::new()
            .title(Some("By window"))
            .property("order_ids", null())
            .property("start_at", time("Window start, RFC 3339"))
            .property(
                "end_at",
                time("Window end, RFC 3339: after `start_at`, at most 60 days later"),
            )
            .required("start_at")
            .required("end_at");
        let mut one_of = OneOfBuilder::new().description(Some(
            "Which Vital orders to replay: their ids, or a window of at most 60 days.",
        ));
        for variant in [by_orders, by_window] {
            one_of = one_of.item(
                variant
                    .schema_type(Type::Object)
                    .additional_properties(Some(AdditionalProperties::FreeForm(false))),
            );
        }
        one_of.into()
    }
}

impl ToSchema for ResendEvents {}

pub fn plan_resend(r: &Request) -> Result<Call, ApiError> {
    let (body, subjects) = r.body::<ResendEvents>()?.provider_body()?;
    Ok(Call {
        method: reqwest::Method::POST,
        path: "v3/order/resend_events".into(),
        body: Some(body),
        subjects,
    })
}
