//! The FHIR resources of one normalized event, read from its CloudEvent (the documented
//! schema, the same body every endpoint is sent): per kind, which resources, with stable ids
//! derived from the tenant and the provider's ids, so that a receiver can upsert them.
//!
//! - transport request (VectorCare request, Uber Health trip): `ServiceRequest` (the order for
//!   transport) + `Task` (its fulfilment; provider status as `businessStatus`) + `Location`s for
//!   pickup and destination + `Patient` when the provider sent one;
//! - lab order: `ServiceRequest` (category laboratory) + `Task` + `Patient`;
//! - lab appointment: `Appointment` (its `basedOn` the order, when known);
//! - lab result (Vital's critical result): `Communication` about the order. A critical result
//!   is news to be told to someone, not work to be done: FHIR's `Communication` conveys it with
//!   `priority` `stat`, `basedOn` the order; the result values themselves are not in the
//!   webhook (Vital sends them through its API), so no `Observation` is made up.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// FHIR's id: `[A-Za-z0-9\-\.]{1,64}`. A prefix per resource type and 32 hex digits of a hash
/// of the tenant, the provider and the provider's id: the same subject gives the same id.
pub fn stable_id(prefix: &str, tenant: &str, provider: &str, provider_id: &str) -> String {
    let digest = Sha256::digest(format!("{tenant}\u{0}{provider}\u{0}{provider_id}").as_bytes());
    format!("{prefix}-{}", &hex::encode(digest)[..32])
}

/// The `system` of a provider's identifiers of one kind.
pub fn identifier_system(provider: &str, what: &str) -> String {
    format!("urn:webhook-gateway:{provider}:{what}")
}

/// One resource with the URL a bundle entry gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub resource_type: &'static str,
    pub id: String,
    pub body: Value,
}

impl Resource {
    fn new(resource_type: &'static str, id: String, mut body: Value) -> Self {
        if let Some(map) = body.as_object_mut() {
            map.insert("resourceType".into(), resource_type.into());
            map.insert("id".into(), id.clone().into());
        }
        Self {
            resource_type,
            id,
            body,
        }
    }

    /// `Type/id`: a relative reference to it.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Drops `null`s and empty objects and arrays: FHIR forbids them.
fn prune(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let kept: Map<String, Value> = map
                .into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect();
            Value::Object(kept)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(prune)
                .filter(|v| !is_empty(v))
                .collect(),
        ),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// The unified status as a `ServiceRequest.status`.
pub fn service_request_status(status: &str) -> &'static str {
    match status {
        "pending" | "scheduled" | "in_progress" => "active",
        "completed" => "completed",
        "cancelled" | "failed" => "revoked",
        _ => "unknown",
    }
}

/// The unified status as a `Task.status` (which has no "unknown": a status the gateway does not
/// know is `requested`, the provider's own word in `businessStatus`).
pub fn task_status(status: &str) -> &'static str {
    match status {
        "scheduled" => "accepted",
        "in_progress" => "in-progress",
        "completed" => "completed",
        "cancelled" => "cancelled",
        "failed" => "failed",
        _ => "requested",
    }
}

/// The unified status as an `Appointment.status`.
pub fn appointment_status(status: &str) -> &'static str {
    match status {
        "pending" => "pending",
        "scheduled" => "booked",
        "in_progress" => "arrived",
        "completed" => "fulfilled",
        "cancelled" | "failed" => "cancelled",
        _ => "proposed",
    }
}

fn address(a: &Value) -> Value {
    prune(json!({
        "text": text(a, "formatted"),
        "line": [text(a, "line1"), text(a, "line2")],
        "city": text(a, "city"),
        "state": text(a, "state"),
        "postalCode": text(a, "postal_code"),
        "country": text(a, "country"),
    }))
}

fn location(id: String, a: &Value) -> Resource {
    let position = match (
        a.get("lat").and_then(Value::as_f64),
        a.get("lng").and_then(Value::as_f64),
    ) {
        (Some(lat), Some(lng)) => json!({"latitude": lat, "longitude": lng}),
        _ => Value::Null,
    };
    Resource::new(
        "Location",
        id,
        prune(json!({
            "status": "active",
            "name": text(a, "name"),
            "address": address(a),
            "position": position,
        })),
    )
}

fn patient(id: String, p: &Value) -> Resource {
    let given: Vec<&str> = [text(p, "first_name"), text(p, "middle_name")]
        .into_iter()
        .flatten()
        .collect();
    let name = prune(json!({
        "text": text(p, "full_name"),
        "family": text(p, "last_name"),
        "given": given,
    }));
    let gender = match text(p, "gender") {
        Some("male") => Some("male"),
        Some("female") => Some("female"),
        Some("other") => Some("other"),
        Some(_) => Some("unknown"),
        None => None,
    };
    Resource::new(
        "Patient",
        id,
        prune(json!({
            "name": [name],
            "gender": gender,
            "birthDate": text(p, "date_of_birth"),
            "telecom": text(p, "phone").map(|v| json!([{"system": "phone", "value": v}])),
        })),
    )
}

/// What one event maps to, its focus (the resource the notification is about) first.
pub fn of_event(event: &Value) -> Vec<Resource> {
    let data = event.get("data").cloned().unwrap_or(Value::Null);
    let tenant = text(event, "tenantid").unwrap_or_default();
    let provider = text(event, "provider").unwrap_or("unknown");
    let subject = text(event, "subject").unwrap_or_default();
    let status = text(&data, "status").unwrap_or("unknown");
    let provider_status = text(&data, "provider_status");
    let id = |prefix: &str, what: &str| {
        stable_id(prefix, tenant, provider, &format!("{what}:{subject}"))
    };
    let business_status = provider_status.map(|s| {
        json!({"coding": [{"system": identifier_system(provider, "status"), "code": s}], "text": s})
    });
    let identifier =
        |what: &str| json!([{"system": identifier_system(provider, what), "value": subject}]);
    let mut out = Vec::new();
    let patient = data
        .get("patient")
        .filter(|p| p.is_object())
        .map(|p| patient(id("pat", "patient"), p));
    let scheduled = data
        .get("schedule")
        .and_then(|s| text(s, "scheduled_at"))
        .map(str::to_owned);
    match text(&data, "kind") {
        Some(kind @ ("transport_request" | "lab_order")) => {
            let lab = kind == "lab_order";
            let what = if lab { "order" } else { "request" };
            let request_id = id("sr", what);
            let mut places = Vec::new();
            for (key, prefix) in [
                ("pickup", "pickup"),
                ("destination", "destination"),
                ("collection", "collection"),
            ] {
                if let Some(a) = data.get(key).filter(|a| a.is_object()) {
                    places.push((key, location(id("loc", prefix), a)));
                }
            }
            let category = if lab {
                json!([{"coding": [{"system": "http://snomed.info/sct", "code": "108252007", "display": "Laboratory procedure"}]}])
            } else {
                json!([{"coding": [{"system": "http://snomed.info/sct", "code": "409971007", "display": "Emergency medical services"}], "text": "non-emergency medical transport"}])
            };
            let location_refs: Vec<Value> = places
                .iter()
                .map(|(_, l)| json!({"reference": l.reference()}))
                .collect();
            let request = Resource::new(
                "ServiceRequest",
                request_id,
                prune(json!({
                    "identifier": identifier(what),
                    "status": service_request_status(status),
                    "intent": "order",
                    "category": category,
                    "code": {"text": if lab { "laboratory test order" } else { "patient transport" }},
                    "subject": patient.as_ref().map(|p| json!({"reference": p.reference()})).unwrap_or(json!({"display": "patient not sent by the provider"})),
                    "occurrenceDateTime": scheduled,
                    "locationReference": location_refs,
                })),
            );
            let task = Resource::new(
                "Task",
                id("task", what),
                prune(json!({
                    "identifier": identifier(what),
                    "status": task_status(status),
                    "businessStatus": business_status,
                    "intent": "order",
                    "basedOn": [{"reference": request.reference()}],
                    "focus": {"reference": request.reference()},
                    "for": patient.as_ref().map(|p| json!({"reference": p.reference()})),
                    "lastModified": text(event, "time"),
                })),
            );
            out.push(task);
            out.push(request);
            out.extend(places.into_iter().map(|(_, l)| l));
        }
        Some("lab_appointment") => {
            let order = data
                .get("links")
                .and_then(|l| text(l, "order_id"))
                .map(|o| stable_id("sr", tenant, provider, &format!("order:{o}")));
            let appointment = Resource::new(
                "Appointment",
                id("appt", "appointment"),
                prune(json!({
                    "identifier": identifier("appointment"),
                    "status": appointment_status(status),
                    "start": scheduled,
                    "end": data.get("schedule").and_then(|s| text(s, "window_end")),
                    "basedOn": order.map(|o| json!([{"reference": format!("ServiceRequest/{o}")}])),
                    "participant": [{"actor": patient.as_ref().map(|p| json!({"reference": p.reference()})), "status": "accepted"}],
                })),
            );
            out.push(appointment);
            if let Some(a) = data.get("collection").filter(|a| a.is_object()) {
                out.push(location(id("loc", "collection"), a));
            }
        }
        _ => {
            // A lab result (or any other kind): news about the order it names.
            let order = data
                .get("links")
                .and_then(|l| text(l, "order_id"))
                .unwrap_or(subject);
            let critical = text(event, "type").is_some_and(|t| t.ends_with(".critical"));
            out.push(Resource::new(
                "Communication",
                id("comm", &format!("result:{}", text(event, "id").unwrap_or_default())),
                prune(json!({
                    "identifier": identifier("result"),
                    "status": "completed",
                    "basedOn": [{"reference": format!("ServiceRequest/{}", stable_id("sr", tenant, provider, &format!("order:{order}")))}],
                    "priority": if critical { "stat" } else { "routine" },
                    "sent": text(event, "time"),
                    "subject": patient.as_ref().map(|p| json!({"reference": p.reference()})),
                    "payload": [{"contentString": format!("{} result of order {order}: {}", if critical { "critical" } else { "new" }, provider_status.unwrap_or("status unknown"))}],
                })),
            ));
        }
    }
    out.extend(patient);
    out
}
