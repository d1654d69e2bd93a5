//! VectorCare webhooks v2.0: RSA PKCS#1 v1.5 SHA-256 over the raw body in
//! `X-VectorCare-Signature`; body `{event_id, event_timestamp, service_request_id,
//! request_status, action, data}` where `data` is the request's complete current state (or
//! `null` when UNAVAILABLE).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::{Inbound, KeyMaterial, Rejection, Verified, VerifyKey, WebhookProvider};
use crate::domain::Provider;
use crate::normalize::time::{normalize as norm_time, parse_utc};
use crate::normalize::{
    number, text, types, Address, Kind, Normalized, NormalizedData, Patient, Schedule, Status,
};

pub const SIGNATURE_HEADER: &str = "x-vectorcare-signature";

pub struct VectorCare;

/// `request_status` → the unified status.
pub fn status_of(request_status: &str) -> Status {
    match request_status {
        "AVAILABLE" => Status::Pending,
        "ASSIGNED" => Status::Scheduled,
        "COMPLETED" => Status::Completed,
        "UNAVAILABLE" => Status::Cancelled,
        _ => Status::Unknown,
    }
}

/// `request_status` and `action` → the event type. The status decides; data and change-request
/// actions on a live request are updates.
pub fn type_of(request_status: &str, action: &str) -> &'static str {
    let update_action = matches!(
        action,
        "REQUEST_DATA_UPDATED" | "CHANGE_REQUEST_ACCEPTED" | "CHANGE_REQUEST_DECLINED"
    );
    match request_status {
        "AVAILABLE" if update_action => types::TRANSPORT_UPDATED,
        "AVAILABLE" => types::TRANSPORT_OFFERED,
        "ASSIGNED" if update_action => types::TRANSPORT_UPDATED,
        "ASSIGNED" => types::TRANSPORT_ASSIGNED,
        "COMPLETED" => types::TRANSPORT_COMPLETED,
        "UNAVAILABLE" => types::TRANSPORT_WITHDRAWN,
        _ => types::TRANSPORT_UPDATED,
    }
}

fn address(v: Option<&Value>) -> Option<Address> {
    let v = v.filter(|v| v.is_object())?;
    Some(Address {
        name: text(v, "name"),
        line1: text(v, "street"),
        line2: None,
        city: text(v, "city"),
        state: text(v, "state"),
        postal_code: text(v, "zip"),
        country: text(v, "country"),
        formatted: text(v, "address"),
        lat: number(v, "lat"),
        lng: number(v, "lng"),
    })
}

fn required<'a>(body: &'a Value, key: &str) -> Result<&'a str, Rejection> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Rejection::InvalidPayload(format!("`{key}` is missing or not a string")))
}

impl WebhookProvider for VectorCare {
    fn provider(&self) -> Provider {
        Provider::Vectorcare
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[
            SIGNATURE_HEADER,
            "vectorcare-environment",
            "vectorcare-namespace",
            "content-type",
            "user-agent",
        ]
    }

    fn verify(&self, inbound: &Inbound, keys: &[VerifyKey]) -> Result<Verified, Rejection> {
        let header = inbound.header(SIGNATURE_HEADER).ok_or_else(|| {
            Rejection::MissingSignature("X-VectorCare-Signature is missing".into())
        })?;
        let raw = STANDARD.decode(header.trim()).map_err(|_| {
            Rejection::InvalidSignature("X-VectorCare-Signature is not base64".into())
        })?;
        for key in keys {
            if let KeyMaterial::RsaPublicPkcs1(pkcs1_der) = &key.material {
                let public = ring::signature::UnparsedPublicKey::new(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    pkcs1_der,
                );
                if public.verify(inbound.body, &raw).is_ok() {
                    return Ok(Verified {
                        method: "rsa-pkcs1v15-sha256",
                        key_id: key.id.clone(),
                        delivery_id: None,
                        timestamp: None,
                    });
                }
            }
        }
        Err(Rejection::InvalidSignature(
            "the signature does not verify with any of the tenant's VectorCare public keys".into(),
        ))
    }

    fn normalize(&self, inbound: &Inbound, _verified: &Verified) -> Result<Normalized, Rejection> {
        let body: Value = serde_json::from_slice(inbound.body)
            .map_err(|e| Rejection::InvalidPayload(format!("the body is not JSON ({e})")))?;
        if !body.is_object() {
            return Err(Rejection::InvalidPayload(
                "the body is not a JSON object".into(),
            ));
        }
        let event_id = required(&body, "event_id")?;
        let subject = required(&body, "service_request_id")?;
        let request_status = required(&body, "request_status")?;
        let action = required(&body, "action")?;
        let null = Value::Null;
        let data = body.get("data").unwrap_or(&null);
        if !(data.is_null() || data.is_object()) {
            return Err(Rejection::InvalidPayload(
                "`data` must be an object or null".into(),
            ));
        }
        let occurred_at = text(&body, "event_timestamp")
            .and_then(|t| parse_utc(&t))
            .unwrap_or(inbound.now);

        let (patient, schedule, pickup, destination) = if data.is_object() {
            let patient = Patient {
                first_name: text(data, "patient_first_name"),
                middle_name: text(data, "patient_middle_name"),
                last_name: text(data, "patient_last_name"),
                full_name: None,
                date_of_birth: text(data, "patient_date_of_birth"),
                gender: text(data, "patient_gender"),
                phone: None,
            };
            let (scheduled_at, source) = match (
                text(data, "agreed_for_time"),
                text(data, "pickup_date_time"),
            ) {
                (Some(t), _) => (Some(norm_time(&t)), Some("agreed_for_time")),
                (None, Some(t)) => (Some(norm_time(&t)), Some("pickup_date_time")),
                (None, None) => (None, None),
            };
            let schedule = Schedule {
                scheduled_at,
                source: source.map(str::to_owned),
                window_end: None,
                timezone: None,
            };
            (
                (patient != Patient::default()).then_some(patient),
                Some(schedule),
                address(data.get("pickup_location")),
                address(data.get("destination_location")),
            )
        } else {
            (None, None, None, None)
        };

        Ok(Normalized {
            provider_event_id: event_id.to_owned(),
            event_type: type_of(request_status, action),
            subject: subject.to_owned(),
            occurred_at,
            staleness_key: Some(format!("transport_request:{subject}")),
            order_key: event_id.to_owned(),
            data: NormalizedData {
                kind: Kind::TransportRequest,
                status: status_of(request_status),
                provider_status: Some(request_status.to_owned()),
                provider_action: Some(action.to_owned()),
                provider_event_type: None,
                patient,
                schedule,
                pickup,
                destination,
                collection: None,
                links: json!({
                    "web_url": data.get("service_request_web_url"),
                    "round_trip_other_service_request_id": data.get("round_trip_other_service_request_id"),
                    "collection_id": data.get("collection_id"),
                }),
                provider_data: body,
            },
        })
    }
}
