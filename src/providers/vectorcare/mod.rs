//! VectorCare webhooks v2.0: RSA PKCS#1 v1.5 SHA-256 over the raw body in
//! `X-VectorCare-Signature`; body `{event_id, event_timestamp, service_request_id,
//! request_status, action, data}` where `data` is the request's complete current state (or
//! `null` when UNAVAILABLE).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

pub mod actions;
pub mod simulate;
pub mod spec;

use super::{About, Inbound, KeyMaterial, Rejection, Verified, VerifyKey, WebhookProvider};
use crate::normalize::lenient::{is_object, read_error, Number, Object, ObjectOrNull, Text};
use crate::normalize::time::{normalize as norm_time, parse_utc};
use crate::normalize::{
    types, Address, Kind, Normalized, NormalizedData, Patient, Schedule, Status,
};

pub const SIGNATURE_HEADER: &str = "x-vectorcare-signature";

pub struct VectorCare;

/// VectorCare in the registry.
pub const PROVIDER: super::Provider = super::Provider(&VectorCare);

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

/// The fields of a webhook the gateway reads; everything else stays in the raw body, which is
/// kept and delivered byte for byte.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Body {
    event_id: Text,
    event_timestamp: Text,
    service_request_id: Text,
    request_status: Text,
    action: Text,
    data: ObjectOrNull<Request>,
}

/// The request's current state (`data`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Request {
    patient_first_name: Text,
    patient_middle_name: Text,
    patient_last_name: Text,
    patient_date_of_birth: Text,
    patient_gender: Text,
    agreed_for_time: Text,
    pickup_date_time: Text,
    pickup_location: Object<Location>,
    destination_location: Object<Location>,
    service_request_web_url: Option<Value>,
    round_trip_other_service_request_id: Option<Value>,
    collection_id: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Location {
    name: Text,
    street: Text,
    city: Text,
    state: Text,
    zip: Text,
    country: Text,
    address: Text,
    lat: Number,
    lng: Number,
}

impl From<Location> for Address {
    fn from(l: Location) -> Address {
        Address {
            name: l.name.0,
            line1: l.street.0,
            line2: None,
            city: l.city.0,
            state: l.state.0,
            postal_code: l.zip.0,
            country: l.country.0,
            formatted: l.address.0,
            lat: l.lat.0,
            lng: l.lng.0,
        }
    }
}

impl WebhookProvider for VectorCare {
    fn about(&self) -> &'static About {
        &spec::ABOUT
    }

    fn scenario(&self, name: &str) -> Option<Vec<Value>> {
        simulate::scenario(name)
    }

    fn sign(&self, material: &str, body: &[u8]) -> Result<Vec<(String, String)>, String> {
        Ok(vec![(
            SIGNATURE_HEADER.to_owned(),
            simulate::sign(material, body)?,
        )])
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
        if !is_object(inbound.body) {
            return Err(Rejection::InvalidPayload(
                "the body is not a JSON object".into(),
            ));
        }
        let body: Body = serde_json::from_slice(inbound.body)
            .map_err(|e| Rejection::InvalidPayload(read_error(&e)))?;
        let event_id = Rejection::unless_present(body.event_id, "event_id")?;
        let subject = Rejection::unless_present(body.service_request_id, "service_request_id")?;
        let request_status = Rejection::unless_present(body.request_status, "request_status")?;
        let action = Rejection::unless_present(body.action, "action")?;
        let occurred_at = body
            .event_timestamp
            .0
            .and_then(|t| parse_utc(&t))
            .unwrap_or(inbound.now);

        let (patient, schedule, pickup, destination, links) = match body.data.0 {
            Some(data) => {
                let patient = Patient {
                    first_name: data.patient_first_name.0,
                    middle_name: data.patient_middle_name.0,
                    last_name: data.patient_last_name.0,
                    full_name: None,
                    date_of_birth: data.patient_date_of_birth.0,
                    gender: data.patient_gender.0,
                    phone: None,
                };
                let (scheduled_at, source) = match (data.agreed_for_time.0, data.pickup_date_time.0)
                {
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
                    data.pickup_location.0.map(Address::from),
                    data.destination_location.0.map(Address::from),
                    json!({
                        "web_url": data.service_request_web_url,
                        "round_trip_other_service_request_id": data.round_trip_other_service_request_id,
                        "collection_id": data.collection_id,
                    }),
                )
            }
            None => (
                None,
                None,
                None,
                None,
                json!({
                    "web_url": null,
                    "round_trip_other_service_request_id": null,
                    "collection_id": null,
                }),
            ),
        };

        Ok(Normalized {
            provider_event_id: event_id.clone(),
            event_type: type_of(&request_status, &action),
            subject: subject.clone(),
            occurred_at,
            staleness_key: Some(crate::normalize::staleness_key(
                "transport_request",
                &subject,
            )),
            order_key: event_id,
            data: NormalizedData {
                kind: Kind::TransportRequest,
                status: status_of(&request_status),
                provider_status: Some(request_status),
                provider_action: Some(action),
                provider_event_type: None,
                patient,
                schedule,
                pickup,
                destination,
                collection: None,
                links,
            },
        })
    }
}
