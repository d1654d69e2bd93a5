//! Vital / Junction lab testing webhooks, delivered through Svix: `svix-*` (or `webhook-*`)
//! headers, HMAC-SHA256 over `{id}.{timestamp}.{body}`, 5 minutes of tolerance both ways. The
//! body is `{event_type, data, ...}`; some documented examples are the bare `data` object.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{Inbound, KeyMaterial, Rejection, Verified, VerifyKey, WebhookProvider};
use crate::domain::Provider;
use crate::normalize::time::{normalize as norm_time, parse_utc};
use crate::normalize::{
    number, rfc3339, text, types, Address, Kind, Normalized, NormalizedData, Patient, Schedule,
    Status,
};
use crate::signature;

pub const TOLERANCE_SECS: i64 = 5 * 60;

pub struct Vital;

/// An order's `HIGH.MODALITY.LOW` status → the unified status.
pub fn order_status(status: &str) -> Status {
    let mut parts = status.split('.');
    let high = parts.next().unwrap_or_default();
    let low = status.rsplit('.').next().unwrap_or_default();
    match high {
        "received" => Status::Pending,
        "collecting_sample" => match low {
            "appointment_scheduled" => Status::Scheduled,
            "ordered"
            | "requisition_created"
            | "requisition_bypassed"
            | "appointment_pending"
            | "appointment_cancelled"
            | "redraw_available"
            | "awaiting_registration" => Status::Pending,
            _ => Status::InProgress,
        },
        "sample_with_lab" => Status::InProgress,
        "completed" => Status::Completed,
        "cancelled" => Status::Cancelled,
        "failed" => Status::Failed,
        _ => Status::Unknown,
    }
}

/// An appointment's `status` → the unified status.
pub fn appointment_status(status: &str) -> Status {
    match status {
        "pending" | "reserved" => Status::Pending,
        "confirmed" | "scheduled" => Status::Scheduled,
        "in_progress" => Status::InProgress,
        "completed" => Status::Completed,
        "cancelled" => Status::Cancelled,
        _ => Status::Unknown,
    }
}

fn headers<'a>(inbound: &'a Inbound) -> Result<(&'a str, &'a str, &'a str), Rejection> {
    let pick = |name: &str| {
        inbound
            .header(&format!("svix-{name}"))
            .or_else(|| inbound.header(&format!("webhook-{name}")))
    };
    match (pick("id"), pick("timestamp"), pick("signature")) {
        (Some(id), Some(ts), Some(sig)) => Ok((id, ts, sig)),
        _ => Err(Rejection::MissingSignature(
            "svix-id, svix-timestamp and svix-signature (or webhook-*) are required".into(),
        )),
    }
}

/// The envelope's type and data; a bare object is an order or an appointment by its shape.
fn envelope(body: &Value) -> (String, &Value) {
    if let (Some(t), Some(data)) = (
        body.get("event_type").and_then(Value::as_str),
        body.get("data"),
    ) {
        if data.is_object() {
            // Vital's own example spells it `labtest.appointment.update`.
            let t = if t == "labtest.appointment.update" {
                "labtest.appointment.updated"
            } else {
                t
            };
            return (t.to_owned(), data);
        }
    }
    let inferred = if body.get("order_id").is_some() && body.get("start_at").is_some() {
        "labtest.appointment.updated"
    } else if body.get("order_id").is_some() && body.get("interpretation").is_some() {
        "labtest.result.critical"
    } else if last_event_status(body).is_some_and(|s| s.ends_with(".ordered")) {
        "labtest.order.created"
    } else {
        "labtest.order.updated"
    };
    (inferred.to_owned(), body)
}

fn last_event(data: &Value) -> Option<&Value> {
    data.get("last_event")
        .filter(|e| e.is_object())
        .or_else(|| {
            data.get("events")
                .and_then(Value::as_array)
                .and_then(|e| e.last())
        })
}

fn last_event_status(data: &Value) -> Option<String> {
    last_event(data).and_then(|e| text(e, "status"))
}

fn time_of(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    text(v, key).and_then(|t| parse_utc(&t))
}

/// Orders by their last event (time, then id); appointments by their last event's time and
/// count, falling back to `updated_at`, then to the delivery's timestamp.
fn order_key(data: &Value, fallback: DateTime<Utc>) -> (String, DateTime<Utc>) {
    if let Some(e) = last_event(data) {
        let at = time_of(e, "created_at")
            .or_else(|| time_of(data, "updated_at"))
            .unwrap_or(fallback);
        let seq = e
            .get("id")
            .and_then(Value::as_u64)
            .or_else(|| {
                data.get("events")
                    .and_then(Value::as_array)
                    .map(|a| a.len() as u64)
            })
            .unwrap_or(0);
        return (format!("{}#{seq:020}", rfc3339(at)), at);
    }
    let at = time_of(data, "updated_at").unwrap_or(fallback);
    (format!("{}#{:020}", rfc3339(at), 0), at)
}

fn order_address(v: Option<&Value>) -> Option<Address> {
    let v = v.filter(|v| v.is_object())?;
    Some(Address {
        name: text(v, "receiver_name"),
        line1: text(v, "first_line"),
        line2: text(v, "second_line"),
        city: text(v, "city"),
        state: text(v, "state"),
        postal_code: text(v, "zip").or_else(|| text(v, "zip_code")),
        country: text(v, "country"),
        formatted: None,
        lat: None,
        lng: None,
    })
}

impl WebhookProvider for Vital {
    fn provider(&self) -> Provider {
        Provider::Vital
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[
            "svix-id",
            "svix-timestamp",
            "svix-signature",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "content-type",
            "user-agent",
        ]
    }

    fn verify(&self, inbound: &Inbound, keys: &[VerifyKey]) -> Result<Verified, Rejection> {
        let (id, ts, sig) = headers(inbound)?;
        let ts: i64 = ts.trim().parse().map_err(|_| {
            Rejection::InvalidSignature("svix-timestamp is not a Unix timestamp".into())
        })?;
        let now = inbound.now.timestamp();
        if (now - ts).abs() > TOLERANCE_SECS {
            return Err(Rejection::TimestampOutOfTolerance(format!(
                "svix-timestamp is {} s away from now; at most {TOLERANCE_SECS} s are accepted",
                (now - ts).abs()
            )));
        }
        for key in keys {
            if let KeyMaterial::Secret(secret) = &key.material {
                if signature::matches(sig, secret, id, ts, inbound.body) {
                    return Ok(Verified {
                        method: "hmac-sha256-standard-webhooks",
                        key_id: key.id.clone(),
                        delivery_id: Some(id.to_owned()),
                        timestamp: DateTime::from_timestamp(ts, 0),
                    });
                }
            }
        }
        Err(Rejection::InvalidSignature(
            "no v1 signature matches any of the tenant's Vital signing secrets".into(),
        ))
    }

    fn normalize(&self, inbound: &Inbound, verified: &Verified) -> Result<Normalized, Rejection> {
        let body: Value = serde_json::from_slice(inbound.body)
            .map_err(|e| Rejection::InvalidPayload(format!("the body is not JSON ({e})")))?;
        if !body.is_object() {
            return Err(Rejection::InvalidPayload(
                "the body is not a JSON object".into(),
            ));
        }
        let delivery_id = verified
            .delivery_id
            .clone()
            .ok_or_else(|| Rejection::InvalidPayload("no svix-id".into()))?;
        let fallback = verified.timestamp.unwrap_or(inbound.now);
        let (event_type, data) = envelope(&body);
        let id_of = |key: &str| {
            text(data, key).ok_or_else(|| {
                Rejection::InvalidPayload(format!("`data.{key}` is missing or not a string"))
            })
        };

        let (
            normalized_type,
            kind,
            subject,
            staleness_key,
            status,
            provider_status,
            schedule,
            collection,
            patient,
            links,
            key_at,
        ) = match event_type.as_str() {
            "labtest.order.created" | "labtest.order.updated" => {
                let id = id_of("id")?;
                let provider_status = last_event_status(data).or_else(|| text(data, "status"));
                let status = provider_status
                    .as_deref()
                    .map_or(Status::Unknown, order_status);
                let dob = data.get("patient_details").and_then(|p| text(p, "dob"));
                let gender = data.get("patient_details").and_then(|p| text(p, "gender"));
                let addr = data.get("patient_address");
                let patient = Patient {
                    full_name: addr.and_then(|a| text(a, "receiver_name")),
                    date_of_birth: dob,
                    gender,
                    phone: addr.and_then(|a| text(a, "phone_number")),
                    ..Patient::default()
                };
                let t = if event_type == "labtest.order.created" {
                    types::LAB_ORDER_CREATED
                } else {
                    types::LAB_ORDER_UPDATED
                };
                let appointment_id = data
                    .get("details")
                    .and_then(|d| d.get("data"))
                    .and_then(|d| text(d, "appointment_id"));
                (
                    t,
                    Kind::LabOrder,
                    id.clone(),
                    Some(format!("lab_order:{id}")),
                    status,
                    provider_status,
                    None,
                    order_address(addr),
                    (patient != Patient::default()).then_some(patient),
                    json!({"order_id": id, "appointment_id": appointment_id, "sample_id": text(data, "sample_id")}),
                    order_key(data, fallback),
                )
            }
            "labtest.appointment.created" | "labtest.appointment.updated" => {
                let id = id_of("id")?;
                let order = text(data, "order_id").unwrap_or_else(|| id.clone());
                let provider_status = text(data, "status");
                let status = provider_status
                    .as_deref()
                    .map_or(Status::Unknown, appointment_status);
                let mut collection = order_address(data.get("address")).unwrap_or_default();
                if let Some(loc) = data.get("location") {
                    collection.lat = number(loc, "lat");
                    collection.lng = number(loc, "lng");
                }
                let schedule = Schedule {
                    scheduled_at: text(data, "start_at").map(|t| norm_time(&t)),
                    source: text(data, "start_at").map(|_| "start_at".to_owned()),
                    window_end: text(data, "end_at").map(|t| norm_time(&t)),
                    timezone: text(data, "iana_timezone"),
                };
                let t = if event_type == "labtest.appointment.created" {
                    types::LAB_APPOINTMENT_CREATED
                } else {
                    types::LAB_APPOINTMENT_UPDATED
                };
                (
                    t,
                    Kind::LabAppointment,
                    order.clone(),
                    Some(format!("lab_appointment:{id}")),
                    status,
                    provider_status,
                    Some(schedule),
                    Some(collection),
                    None,
                    json!({"order_id": order, "appointment_id": id, "appointment_provider": text(data, "provider"), "event_status": text(data, "event_status")}),
                    order_key(data, fallback),
                )
            }
            "labtest.result.critical" => {
                let order = id_of("order_id")?;
                let provider_status = text(data, "status");
                let status = match provider_status.as_deref() {
                    Some("final") => Status::Completed,
                    Some("partial") => Status::InProgress,
                    _ => Status::Unknown,
                };
                (
                    types::LAB_RESULT_CRITICAL,
                    Kind::LabResult,
                    order.clone(),
                    None,
                    status,
                    provider_status,
                    None,
                    None,
                    None,
                    json!({"order_id": order, "sample_id": text(data, "sample_id")}),
                    (rfc3339(fallback), fallback),
                )
            }
            _ => {
                let subject = text(data, "order_id")
                    .or_else(|| text(data, "id"))
                    .unwrap_or_else(|| delivery_id.clone());
                (
                    types::LAB_OTHER,
                    Kind::Other,
                    subject,
                    None,
                    Status::Unknown,
                    text(data, "status"),
                    None,
                    None,
                    None,
                    json!({}),
                    (rfc3339(fallback), fallback),
                )
            }
        };
        let (order_key, occurred_at) = key_at;
        Ok(Normalized {
            provider_event_id: delivery_id,
            event_type: normalized_type,
            subject,
            occurred_at,
            staleness_key,
            order_key,
            data: NormalizedData {
                kind,
                status,
                provider_status,
                provider_action: None,
                provider_event_type: Some(event_type),
                patient,
                schedule,
                pickup: None,
                destination: None,
                collection,
                links,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statuses_map_by_level() {
        assert_eq!(
            order_status("received.at_home_phlebotomy.ordered"),
            Status::Pending
        );
        assert_eq!(
            order_status("collecting_sample.at_home_phlebotomy.appointment_scheduled"),
            Status::Scheduled
        );
        assert_eq!(
            order_status("collecting_sample.at_home_phlebotomy.draw_completed"),
            Status::InProgress
        );
        assert_eq!(
            order_status("completed.at_home_phlebotomy.completed"),
            Status::Completed
        );
        assert_eq!(
            order_status("failed.at_home_phlebotomy.sample_error"),
            Status::Failed
        );
        assert_eq!(order_status("teleported.somewhere.new"), Status::Unknown);
    }
}
