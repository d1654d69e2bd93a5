//! Vital / Junction lab testing webhooks, delivered through Svix: `svix-*` (or `webhook-*`)
//! headers, HMAC-SHA256 over `{id}.{timestamp}.{body}`, 5 minutes of tolerance both ways. The
//! body is `{event_type, data, ...}`; some documented examples are the bare `data` object.

use chrono::{DateTime, Utc};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;

pub mod actions;
pub mod simulate;
pub mod spec;

use super::{About, Inbound, KeyMaterial, Rejection, Verified, VerifyKey, WebhookProvider};
use crate::domain::SigningSecret;
use crate::normalize::lenient::{is_object, read_error, Last, Number, Object, Seen, Text, UInt};
use crate::normalize::time::{normalize as norm_time, parse_utc};
use crate::normalize::{
    rfc3339, types, Address, Kind, Normalized, NormalizedData, Patient, Schedule, Status,
};
use crate::signature;

pub const TOLERANCE_SECS: i64 = 5 * 60;

pub struct Vital;

/// Vital in the registry.
pub const PROVIDER: super::Provider = super::Provider(&Vital);

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

/// The envelope. Read first; a body without one is read again as a bare [`Data`].
#[derive(Deserialize, Default)]
#[serde(default)]
struct Envelope {
    event_type: Text,
    data: Object<Data>,
}

/// The fields of an order, appointment or result the gateway reads; everything else stays in
/// the raw body, which is kept and delivered byte for byte.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Data {
    id: Text,
    order_id: Seen<Text>,
    status: Text,
    sample_id: Text,
    updated_at: Text,
    last_event: Object<OrderEvent>,
    events: Last<OrderEvent>,
    patient_details: Object<PatientDetails>,
    patient_address: Object<VitalAddress>,
    details: Object<Details>,
    // Appointments.
    address: Object<VitalAddress>,
    location: Object<Location>,
    start_at: Seen<Text>,
    end_at: Text,
    iana_timezone: Text,
    provider: Text,
    event_status: Text,
    // Results.
    interpretation: Seen<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OrderEvent {
    id: UInt,
    status: Text,
    created_at: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PatientDetails {
    dob: Text,
    gender: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct VitalAddress {
    receiver_name: Text,
    first_line: Text,
    second_line: Text,
    city: Text,
    state: Text,
    zip: Text,
    zip_code: Text,
    country: Text,
    phone_number: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Details {
    data: Object<DetailsData>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DetailsData {
    appointment_id: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Location {
    lat: Number,
    lng: Number,
}

impl Data {
    /// The order's last event: `last_event`, else the last of `events` (an element that is not
    /// an object counts, with nothing in it).
    fn last_event(&self) -> Option<&OrderEvent> {
        const NOTHING: &OrderEvent = &OrderEvent {
            id: UInt(None),
            status: Text(None),
            created_at: Text(None),
        };
        self.last_event.0.as_ref().or_else(|| {
            self.events
                .last
                .as_ref()
                .map(|e| e.0.as_ref().unwrap_or(NOTHING))
        })
    }

    fn last_event_status(&self) -> Option<String> {
        self.last_event().and_then(|e| e.status.0.clone())
    }
}

/// The envelope's type and data; a bare object is an order or an appointment by its shape.
fn envelope(body: &[u8]) -> Result<(String, Data), serde_json::Error> {
    if let Envelope {
        event_type: Text(Some(t)),
        data: Object(Some(data)),
    } = serde_json::from_slice(body)?
    {
        // Vital's own example spells it `labtest.appointment.update`.
        let t = if t == "labtest.appointment.update" {
            "labtest.appointment.updated".to_owned()
        } else {
            t
        };
        return Ok((t, data));
    }
    let data: Data = serde_json::from_slice(body)?;
    let inferred = if data.order_id.0 && data.start_at.0 {
        "labtest.appointment.updated"
    } else if data.order_id.0 && data.interpretation.0 {
        "labtest.result.critical"
    } else if data
        .last_event_status()
        .is_some_and(|s| s.ends_with(".ordered"))
    {
        "labtest.order.created"
    } else {
        "labtest.order.updated"
    };
    Ok((inferred.to_owned(), data))
}

fn time_of(t: &Text) -> Option<DateTime<Utc>> {
    t.0.as_deref().and_then(parse_utc)
}

/// Orders by their last event (time, then id); appointments by their last event's time and
/// count, falling back to `updated_at`, then to the delivery's timestamp.
fn order_key(data: &Data, fallback: DateTime<Utc>) -> (String, DateTime<Utc>) {
    if let Some(e) = data.last_event() {
        let at = time_of(&e.created_at)
            .or_else(|| time_of(&data.updated_at))
            .unwrap_or(fallback);
        let seq =
            e.id.0
                .or_else(|| data.events.len.map(|n| n as u64))
                .unwrap_or(0);
        return (format!("{}#{seq:020}", rfc3339(at)), at);
    }
    let at = time_of(&data.updated_at).unwrap_or(fallback);
    (format!("{}#{:020}", rfc3339(at), 0), at)
}

fn order_address(a: &VitalAddress) -> Address {
    Address {
        name: a.receiver_name.0.clone(),
        line1: a.first_line.0.clone(),
        line2: a.second_line.0.clone(),
        city: a.city.0.clone(),
        state: a.state.0.clone(),
        postal_code: a.zip.0.clone().or_else(|| a.zip_code.0.clone()),
        country: a.country.0.clone(),
        formatted: None,
        lat: None,
        lng: None,
    }
}

impl WebhookProvider for Vital {
    fn about(&self) -> &'static About {
        &spec::ABOUT
    }

    fn scenario(&self, name: &str) -> Option<Vec<serde_json::Value>> {
        simulate::scenario(name)
    }

    fn sign(&self, material: &str, body: &[u8]) -> Result<Vec<(String, String)>, String> {
        let secret = SigningSecret::parse(material.trim())?;
        let (id, ts, sig) = simulate::sign(&secret, body);
        Ok(vec![
            ("svix-id".to_owned(), id),
            ("svix-timestamp".to_owned(), ts.to_string()),
            ("svix-signature".to_owned(), sig),
        ])
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
        // `abs_diff` cannot overflow, whatever the client sent (`now - ts` did for ts = -2^63).
        let away = inbound.now.timestamp().abs_diff(ts);
        if away > TOLERANCE_SECS.unsigned_abs() {
            return Err(Rejection::TimestampOutOfTolerance(format!(
                "svix-timestamp is {away} s away from now; at most {TOLERANCE_SECS} s are accepted"
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
        if !is_object(inbound.body) {
            return Err(Rejection::InvalidPayload(
                "the body is not a JSON object".into(),
            ));
        }
        let (event_type, data) =
            envelope(inbound.body).map_err(|e| Rejection::InvalidPayload(read_error(&e)))?;
        let delivery_id = verified
            .delivery_id
            .clone()
            .ok_or_else(|| Rejection::InvalidPayload("no svix-id".into()))?;
        let fallback = verified.timestamp.unwrap_or(inbound.now);
        // An empty id keys nothing: refused like a missing one (found by the fuzz targets).
        let required = |field: &Text, key: &str| {
            Rejection::unless_present(field.clone(), &format!("data.{key}"))
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
                let id = required(&data.id, "id")?;
                let provider_status = data.last_event_status().or_else(|| data.status.0.clone());
                let status = provider_status
                    .as_deref()
                    .map_or(Status::Unknown, order_status);
                let details = data.patient_details.0.as_ref();
                let addr = data.patient_address.0.as_ref();
                let patient = Patient {
                    full_name: addr.and_then(|a| a.receiver_name.0.clone()),
                    date_of_birth: details.and_then(|p| p.dob.0.clone()),
                    gender: details.and_then(|p| p.gender.0.clone()),
                    phone: addr.and_then(|a| a.phone_number.0.clone()),
                    ..Patient::default()
                };
                let t = if event_type == "labtest.order.created" {
                    types::LAB_ORDER_CREATED
                } else {
                    types::LAB_ORDER_UPDATED
                };
                let appointment_id = data
                    .details
                    .0
                    .as_ref()
                    .and_then(|d| d.data.0.as_ref())
                    .and_then(|d| d.appointment_id.0.clone());
                (
                    t,
                    Kind::LabOrder,
                    id.clone(),
                    Some(crate::normalize::staleness_key("lab_order", &id)),
                    status,
                    provider_status,
                    None,
                    addr.map(order_address),
                    (patient != Patient::default()).then_some(patient),
                    json!({"order_id": id, "appointment_id": appointment_id, "sample_id": data.sample_id.0}),
                    order_key(&data, fallback),
                )
            }
            "labtest.appointment.created" | "labtest.appointment.updated" => {
                let id = required(&data.id, "id")?;
                // The appointment's order is its subject; without one (or an empty one), itself.
                let order = data
                    .order_id
                    .1
                     .0
                    .clone()
                    .filter(|o| !o.is_empty())
                    .unwrap_or_else(|| id.clone());
                let provider_status = data.status.0.clone();
                let status = provider_status
                    .as_deref()
                    .map_or(Status::Unknown, appointment_status);
                let mut collection = data
                    .address
                    .0
                    .as_ref()
                    .map(order_address)
                    .unwrap_or_default();
                if let Some(loc) = &data.location.0 {
                    collection.lat = loc.lat.0;
                    collection.lng = loc.lng.0;
                }
                let start_at = &data.start_at.1 .0;
                let schedule = Schedule {
                    scheduled_at: start_at.as_deref().map(norm_time),
                    source: start_at.as_ref().map(|_| "start_at".to_owned()),
                    window_end: data.end_at.0.as_deref().map(norm_time),
                    timezone: data.iana_timezone.0.clone(),
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
                    Some(crate::normalize::staleness_key("lab_appointment", &id)),
                    status,
                    provider_status,
                    Some(schedule),
                    Some(collection),
                    None,
                    json!({"order_id": order, "appointment_id": id, "appointment_provider": data.provider.0, "event_status": data.event_status.0}),
                    order_key(&data, fallback),
                )
            }
            "labtest.result.critical" => {
                let order = required(&data.order_id.1, "order_id")?;
                let provider_status = data.status.0.clone();
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
                    json!({"order_id": order, "sample_id": data.sample_id.0}),
                    (rfc3339(fallback), fallback),
                )
            }
            _ => {
                // Other event types name their order, else their object, else the delivery: the
                // first that is a non-empty string.
                let subject = [&data.order_id.1 .0, &data.id.0]
                    .into_iter()
                    .flatten()
                    .find(|s| !s.is_empty())
                    .cloned()
                    .unwrap_or_else(|| delivery_id.clone());
                (
                    types::LAB_OTHER,
                    Kind::Other,
                    subject,
                    None,
                    Status::Unknown,
                    data.status.0.clone(),
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
mod tests;
