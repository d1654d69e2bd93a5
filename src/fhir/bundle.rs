//! Subscription notification bundles as the HL7 Subscriptions R5 Backport guide defines them:
//! `Bundle.type` `history`, the subscription's status first (a `Parameters` resource in R4, a
//! `SubscriptionStatus` in R4B), then the event's resources as the payload content asks. Every
//! entry carries `request` and `response` (invariants bdl-3 and bdl-4 of a history bundle).

use serde_json::{json, Value};

use super::resources::Resource;

/// Which FHIR release the bundle follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    R4,
    R4B,
}

/// What a notification carries besides the status (the subscription's `payload content`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// The status only: no patient data.
    Empty,
    /// The status and references to the resources (`focus`, `fullUrl`s): no patient data.
    IdOnly,
    /// The resources themselves.
    FullResource,
}

/// Why the notification is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Handshake,
    Heartbeat,
    EventNotification,
    QueryEvent,
    QueryStatus,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Handshake => "handshake",
            Kind::Heartbeat => "heartbeat",
            Kind::EventNotification => "event-notification",
            Kind::QueryEvent => "query-event",
            Kind::QueryStatus => "query-status",
        }
    }
}

pub const PROFILE_R4: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4";
pub const PROFILE_R4B: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification";
pub const STATUS_PROFILE_R4: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4";

/// The subscription a notification is about: the endpoint, seen from FHIR.
pub struct Subscription<'a> {
    /// `Subscription/{id}`: the endpoint's id.
    pub id: &'a str,
    /// The topic's canonical URL.
    pub topic: &'a str,
    /// The base the resources' `fullUrl`s are under (the gateway's FHIR base for the tenant).
    pub base: &'a str,
    /// `active`, `error`, `off` or `requested`.
    pub status: &'a str,
}

/// One event of a notification: its number in the endpoint's sequence, when, and its resources
/// (the focus first).
pub struct Event<'a> {
    pub number: i64,
    pub timestamp: &'a str,
    pub resources: &'a [Resource],
}

fn status_entry(
    release: Release,
    sub: &Subscription<'_>,
    kind: Kind,
    since_start: i64,
    events: &[Event<'_>],
    content: Content,
) -> Value {
    let focus = |e: &Event<'_>| {
        (content != Content::Empty)
            .then(|| e.resources.first())
            .flatten()
            .map(|r| json!({"reference": format!("{}/{}", sub.base, r.reference())}))
    };
    let subscription = json!({"reference": format!("{}/Subscription/{}", sub.base, sub.id)});
    let resource = match release {
        Release::R4 => {
            let mut parameter = vec![
                json!({"name": "subscription", "valueReference": subscription}),
                json!({"name": "topic", "valueCanonical": sub.topic}),
                json!({"name": "status", "valueCode": sub.status}),
                json!({"name": "type", "valueCode": kind.code()}),
                // The guide's R4 profile carries the 64-bit counts as strings.
                json!({"name": "events-since-subscription-start", "valueString": since_start.to_string()}),
            ];
            for e in events {
                let mut part = vec![
                    json!({"name": "event-number", "valueString": e.number.to_string()}),
                    json!({"name": "timestamp", "valueInstant": e.timestamp}),
                ];
                if let Some(f) = focus(e) {
                    part.push(json!({"name": "focus", "valueReference": f}));
                }
                parameter.push(json!({"name": "notification-event", "part": part}));
            }
            json!({
                "resourceType": "Parameters",
                "meta": {"profile": [STATUS_PROFILE_R4]},
                "parameter": parameter,
            })
        }
        Release::R4B => {
            let notification_event: Vec<Value> = events
                .iter()
                .map(|e| {
                    let mut n =
                        json!({"eventNumber": e.number.to_string(), "timestamp": e.timestamp});
                    if let (Some(f), Some(map)) = (focus(e), n.as_object_mut()) {
                        map.insert("focus".into(), f);
                    }
                    n
                })
                .collect();
            let mut status = json!({
                "resourceType": "SubscriptionStatus",
                "status": sub.status,
                "type": kind.code(),
                "eventsSinceSubscriptionStart": since_start.to_string(),
                "subscription": subscription,
                "topic": sub.topic,
            });
            if let (false, Some(map)) = (notification_event.is_empty(), status.as_object_mut()) {
                map.insert("notificationEvent".into(), notification_event.into());
            }
            status
        }
    };
    json!({
        "fullUrl": format!("urn:uuid:{}", notification_id(sub, kind, since_start, "status")),
        "resource": resource,
        "request": {"method": "GET", "url": format!("Subscription/{}/$status", sub.id)},
        "response": {"status": "200"},
    })
}

/// The same notification (a retry of it) has the same ids; another has others.
fn notification_id(sub: &Subscription<'_>, kind: Kind, since_start: i64, what: &str) -> uuid::Uuid {
    use sha2::Digest;
    let digest =
        sha2::Sha256::digest(format!("{}/{}/{since_start}/{what}", sub.id, kind.code()).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// A notification bundle: the status entry, then each event's resources as `content` asks
/// (`id-only`: the entries without their resources).
pub fn notification(
    release: Release,
    content: Content,
    sub: &Subscription<'_>,
    kind: Kind,
    since_start: i64,
    events: &[Event<'_>],
    timestamp: &str,
) -> Value {
    let mut entry = vec![status_entry(
        release,
        sub,
        kind,
        since_start,
        events,
        content,
    )];
    if content != Content::Empty {
        for e in events {
            for r in e.resources {
                let mut item = json!({
                    "fullUrl": format!("{}/{}", sub.base, r.reference()),
                    "request": {"method": "PUT", "url": r.reference()},
                    "response": {"status": "200"},
                });
                if let (Content::FullResource, Some(map)) = (content, item.as_object_mut()) {
                    map.insert("resource".into(), r.body.clone());
                }
                entry.push(item);
            }
        }
    }
    json!({
        "resourceType": "Bundle",
        "id": notification_id(sub, kind, since_start, "bundle").to_string(),
        "meta": {"profile": [match release { Release::R4 => PROFILE_R4, Release::R4B => PROFILE_R4B }]},
        "type": "history",
        "timestamp": timestamp,
        "entry": entry,
    })
}
