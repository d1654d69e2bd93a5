//! Uber Health (non-emergency medical transport through Uber). Webhooks carry
//! `X-Uber-Signature`, the lowercase hex HMAC-SHA256 of the raw body keyed by the app's signing
//! key as a plain string, and `X-Environment` (`production` or `sandbox`); the body
//! `{event_id, event_time, event_type, resource_href, meta: {user_id, org_uuid, resource_id,
//! status}}` names the trip and its current status, never the rider: the trip itself is read
//! with the tenant's OAuth2 token (the `get_trip` action).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub mod actions;
pub mod simulate;
pub mod spec;
#[cfg(test)]
mod tests;

use super::{About, Inbound, KeyMaterial, Rejection, Verified, VerifyKey, WebhookProvider};
use crate::normalize::lenient::{is_object, read_error, Object, Text, UInt};
use crate::normalize::{types, Kind, Normalized, NormalizedData, Status};

pub const SIGNATURE_HEADER: &str = "x-uber-signature";
pub const ENVIRONMENT_HEADER: &str = "x-environment";
/// The event type of a trip's status change; others are kept as updates of their resource.
pub const STATUS_CHANGED: &str = "health.status_changed";

pub struct UberHealth;

/// Uber Health in the registry.
pub const PROVIDER: super::Provider = super::Provider(&UberHealth);

/// A trip status → the unified status. The list is open: an unknown one is `unknown`.
pub fn status_of(status: &str) -> Status {
    match status {
        "processing" | "offered" | "driver_redispatched" => Status::Pending,
        "scheduled" | "accepted" => Status::Scheduled,
        "arriving" | "in_progress" => Status::InProgress,
        "completed" => Status::Completed,
        "driver_canceled" | "rider_canceled" | "expired" => Status::Cancelled,
        "no_drivers_available" | "failed" => Status::Failed,
        _ => Status::Unknown,
    }
}

/// A trip status → the event type.
pub fn type_of(status: &str) -> &'static str {
    match status {
        "processing" | "scheduled" | "offered" => types::TRANSPORT_OFFERED,
        "accepted" => types::TRANSPORT_ASSIGNED,
        "completed" => types::TRANSPORT_COMPLETED,
        "driver_canceled" | "rider_canceled" | "expired" | "no_drivers_available" | "failed" => {
            types::TRANSPORT_WITHDRAWN
        }
        _ => types::TRANSPORT_UPDATED,
    }
}

/// How far along a trip a status is. Two status changes of one trip within the same second are
/// ordered by it: a later stage wins, so a `completed` is not undone by an `in_progress` sent in
/// the same second. Statuses of one stage (and unknown ones, stage 0) tie, and a tie is never
/// stale: both are delivered, in arrival order.
pub fn stage(status: &str) -> u8 {
    match status {
        "processing" | "scheduled" | "offered" => 1,
        "accepted" | "driver_redispatched" => 2,
        "arriving" => 3,
        "in_progress" => 4,
        "completed"
        | "driver_canceled"
        | "rider_canceled"
        | "expired"
        | "no_drivers_available"
        | "failed" => 5,
        _ => 0,
    }
}

/// `X-Uber-Signature` of a body: lowercase hex HMAC-SHA256 keyed by the key's bytes.
pub fn signature(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Body {
    event_id: Text,
    event_time: UInt,
    event_type: Text,
    resource_href: Text,
    meta: Object<Meta>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Meta {
    resource_id: Text,
    status: Text,
}

impl WebhookProvider for UberHealth {
    fn about(&self) -> &'static About {
        &spec::ABOUT
    }

    fn scenario(&self, name: &str) -> Option<Vec<Value>> {
        simulate::scenario(name)
    }

    fn sign(&self, material: &str, body: &[u8]) -> Result<Vec<(String, String)>, String> {
        Ok(vec![
            (
                SIGNATURE_HEADER.to_owned(),
                hex::encode(signature(material.trim().as_bytes(), body)),
            ),
            (ENVIRONMENT_HEADER.to_owned(), "sandbox".to_owned()),
        ])
    }

    fn kept_headers(&self) -> &'static [&'static str] {
        &[
            SIGNATURE_HEADER,
            ENVIRONMENT_HEADER,
            "content-type",
            "user-agent",
        ]
    }

    fn verify(&self, inbound: &Inbound, keys: &[VerifyKey]) -> Result<Verified, Rejection> {
        let header = inbound
            .header(SIGNATURE_HEADER)
            .ok_or_else(|| Rejection::MissingSignature("X-Uber-Signature is missing".into()))?;
        let given = hex::decode(header.trim())
            .ok()
            .filter(|g| g.len() == 32)
            .ok_or_else(|| {
                Rejection::InvalidSignature(
                    "X-Uber-Signature is not a hex HMAC-SHA256 (64 hex digits)".into(),
                )
            })?;
        for key in keys {
            if let KeyMaterial::Secret(secret) = &key.material {
                if bool::from(signature(secret, inbound.body).ct_eq(&given)) {
                    return Ok(Verified {
                        method: "hmac-sha256-hex",
                        key_id: key.id.clone(),
                        delivery_id: None,
                        timestamp: None,
                    });
                }
            }
        }
        Err(Rejection::InvalidSignature(
            "the signature does not verify with any of the tenant's Uber Health signing keys"
                .into(),
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
        let meta = body.meta.0.unwrap_or_default();
        let trip = Rejection::unless_present(meta.resource_id, "meta.resource_id")?;
        let event_type = body.event_type.0.filter(|t| !t.is_empty());
        let status = meta.status.0.filter(|s| !s.is_empty());
        let occurred_at = body
            .event_time
            .0
            .and_then(|t| i64::try_from(t).ok())
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
        // Only a status change with its time moves the trip's state; anything else is never
        // judged stale (it says nothing about which state is newer).
        let ordered = event_type.as_deref() == Some(STATUS_CHANGED) && occurred_at.is_some();
        let occurred_at = occurred_at.unwrap_or(inbound.now);
        let stage_of_status = status.as_deref().map_or(0, stage);
        let (unified, event_type_out) = match &status {
            Some(s) => (status_of(s), type_of(s)),
            None => (Status::Unknown, types::TRANSPORT_UPDATED),
        };
        Ok(Normalized {
            provider_event_id: event_id,
            event_type: event_type_out,
            subject: trip.clone(),
            occurred_at,
            staleness_key: ordered.then(|| crate::normalize::staleness_key("uber_trip", &trip)),
            order_key: format!("{:012}.{stage_of_status}", occurred_at.timestamp().max(0)),
            data: NormalizedData {
                provider_status: status,
                provider_event_type: event_type,
                links: json!({ "resource_href": body.resource_href.0 }),
                ..NormalizedData::bare(Kind::TransportRequest, unified)
            },
        })
    }
}
