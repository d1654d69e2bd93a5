//! The normalized event: one schema for every provider. A provider module turns its webhook into
//! a [`Normalized`]; [`stored_cloud_event`] wraps it in the CloudEvents 1.0 envelope that is
//! stored, and [`with_provider_data`] completes it to be served and delivered. Documented in README ("The normalized schema") and as JSON Schema in
//! `openapi/normalized-event.schema.json`.

pub mod lenient;
pub mod minimal;
pub mod time;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::domain::TenantId;

/// What the event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    TransportRequest,
    LabOrder,
    LabAppointment,
    LabResult,
    Other,
}

/// One lifecycle both providers map onto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Offered or ordered, not yet committed to a time or a provider.
    Pending,
    /// Committed: assigned to the tenant, appointment booked.
    Scheduled,
    /// Under way: sample drawn, in transit, with the lab.
    InProgress,
    Completed,
    /// Withdrawn, cancelled, no longer available to the tenant.
    Cancelled,
    /// Failed for good (sample error, lost, failed order).
    Failed,
    /// A status the gateway does not know yet; the provider's own value is kept.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Scheduled => "scheduled",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Patient {
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    /// When the provider gives one name only (Vital's `receiver_name`).
    pub full_name: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    pub gender: Option<String>,
    pub phone: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Address {
    pub name: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    /// The provider's single-line form, when it has one.
    pub formatted: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
}

/// The authoritative time of the service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Schedule {
    /// When it happens (UTC): VectorCare `agreed_for_time`, else `pickup_date_time`; Vital
    /// appointment `start_at`.
    pub scheduled_at: Option<String>,
    /// Which provider field `scheduled_at` came from.
    pub source: Option<String>,
    /// End of the window (Vital appointments).
    pub window_end: Option<String>,
    /// IANA time zone of the place (Vital appointments).
    pub timezone: Option<String>,
}

/// What a provider module produces from one verified webhook.
#[derive(Clone, Debug)]
pub struct Normalized {
    /// The provider's id of this event (dedup key): VectorCare `event_id`, Vital `svix-id`.
    pub provider_event_id: String,
    pub event_type: &'static str,
    /// The provider's request, order or appointment id.
    pub subject: String,
    pub occurred_at: DateTime<Utc>,
    /// Events of one staleness key are ordered by this text; `None`: never stale.
    pub staleness_key: Option<String>,
    pub order_key: String,
    pub data: NormalizedData,
}

/// The longest identifier an event is stored and keyed by (event id, subject, order and
/// staleness keys): the columns' size on PostgreSQL, enforced alike on SQLite.
pub const MAX_KEY_CHARS: usize = 200;

/// The key events of one subject are ordered under: `<kind>:<id>`, or, when that would not fit
/// [`MAX_KEY_CHARS`] (an id near the limit), `<kind>:sha256:<hex of the id>`, so that every id
/// the event itself may carry can also be keyed.
pub fn staleness_key(kind: &str, id: &str) -> String {
    let key = format!("{kind}:{id}");
    if key.chars().count() <= MAX_KEY_CHARS {
        return key;
    }
    use sha2::Digest;
    format!(
        "{kind}:sha256:{}",
        hex::encode(sha2::Sha256::digest(id.as_bytes()))
    )
}

impl Normalized {
    /// Refuses what the database would refuse: an identifier over [`MAX_KEY_CHARS`] or with a NUL
    /// character. Checked before the event joins a write batch, so both backends answer alike
    /// and no batch fails on one event.
    pub fn check_storable(&self) -> Result<(), String> {
        let keys = [
            ("the event id", Some(&self.provider_event_id)),
            ("the subject", Some(&self.subject)),
            ("the order key", Some(&self.order_key)),
            ("the staleness key", self.staleness_key.as_ref()),
        ];
        for (what, value) in keys {
            let Some(value) = value else { continue };
            if value.contains('\0') {
                return Err(format!("{what} contains a NUL character"));
            }
            if value.chars().count() > MAX_KEY_CHARS {
                return Err(format!("{what} is longer than {MAX_KEY_CHARS} characters"));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct NormalizedData {
    pub kind: Kind,
    pub status: Status,
    /// The provider's own status (VectorCare `request_status`, Vital order `last_event.status`,
    /// appointment `status`, result `status`).
    pub provider_status: Option<String>,
    /// VectorCare `action`.
    pub provider_action: Option<String>,
    /// Vital `event_type` as received (or inferred when the body had no envelope).
    pub provider_event_type: Option<String>,
    pub patient: Option<Patient>,
    pub schedule: Option<Schedule>,
    pub pickup: Option<Address>,
    pub destination: Option<Address>,
    /// Where a sample is collected (Vital at-home phlebotomy).
    pub collection: Option<Address>,
    pub links: Value,
    // `provider_data`, the provider's complete body unchanged, is not held here: it is the
    // event's raw body, put in place by `with_provider_data` (see `stored_cloud_event`).
}

impl NormalizedData {
    /// A kind and a status, and nothing else known yet.
    pub fn bare(kind: Kind, status: Status) -> Self {
        Self {
            kind,
            status,
            provider_status: None,
            provider_action: None,
            provider_event_type: None,
            patient: None,
            schedule: None,
            pickup: None,
            destination: None,
            collection: None,
            links: Value::Null,
        }
    }
}

/// The event type vocabulary. Stable: endpoints filter on these.
pub mod types {
    pub const TRANSPORT_OFFERED: &str = "transport.request.offered";
    pub const TRANSPORT_ASSIGNED: &str = "transport.request.assigned";
    pub const TRANSPORT_UPDATED: &str = "transport.request.updated";
    pub const TRANSPORT_COMPLETED: &str = "transport.request.completed";
    pub const TRANSPORT_WITHDRAWN: &str = "transport.request.withdrawn";
    pub const LAB_ORDER_CREATED: &str = "lab.order.created";
    pub const LAB_ORDER_UPDATED: &str = "lab.order.updated";
    pub const LAB_APPOINTMENT_CREATED: &str = "lab.appointment.created";
    pub const LAB_APPOINTMENT_UPDATED: &str = "lab.appointment.updated";
    pub const LAB_RESULT_CRITICAL: &str = "lab.result.critical";
    pub const LAB_OTHER: &str = "lab.other";

    /// Every type of a transport request, in its lifecycle's order.
    pub const TRANSPORT: &[&str] = &[
        TRANSPORT_OFFERED,
        TRANSPORT_ASSIGNED,
        TRANSPORT_UPDATED,
        TRANSPORT_COMPLETED,
        TRANSPORT_WITHDRAWN,
    ];

    pub const ALL: &[&str] = &[
        TRANSPORT_OFFERED,
        TRANSPORT_ASSIGNED,
        TRANSPORT_UPDATED,
        TRANSPORT_COMPLETED,
        TRANSPORT_WITHDRAWN,
        LAB_ORDER_CREATED,
        LAB_ORDER_UPDATED,
        LAB_APPOINTMENT_CREATED,
        LAB_APPOINTMENT_UPDATED,
        LAB_RESULT_CRITICAL,
        LAB_OTHER,
    ];
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The CloudEvents 1.0 envelope (structured JSON mode) as it is stored: JSON text whose last
/// value is `data.provider_data`, left `null`. The provider's body is stored once, as the event's
/// raw body, and [`with_provider_data`] puts it back where it belongs whenever the event is
/// served or delivered. Stored twice, it made each event row ~40 % larger, and writing those
/// bytes was the largest single cost of the SQLite write path (README "Performance").
pub fn stored_cloud_event(
    id: &str,
    tenant: &TenantId,
    provider: &str,
    n: &Normalized,
) -> Result<String, serde_json::Error> {
    // Field order is the text's order: `data` last, and in it `provider_data` last.
    #[derive(Serialize)]
    struct Envelope<'a> {
        specversion: &'static str,
        id: &'a str,
        source: String,
        #[serde(rename = "type")]
        event_type: &'a str,
        subject: &'a str,
        time: String,
        datacontenttype: &'static str,
        tenantid: &'a str,
        provider: &'a str,
        providereventid: &'a str,
        data: StoredData<'a>,
    }
    #[derive(Serialize)]
    struct StoredData<'a> {
        #[serde(flatten)]
        normalized: &'a NormalizedData,
        /// Always `null` here: the text must end with [`STORED_TAIL`].
        provider_data: (),
    }
    serde_json::to_string(&Envelope {
        specversion: "1.0",
        id,
        source: format!("/providers/{provider}/tenants/{tenant}"),
        event_type: n.event_type,
        subject: &n.subject,
        time: rfc3339(n.occurred_at),
        datacontenttype: "application/json",
        tenantid: tenant.as_str(),
        provider,
        providereventid: &n.provider_event_id,
        data: StoredData {
            normalized: &n.data,
            provider_data: (),
        },
    })
}

/// How every stored CloudEvent written by [`stored_cloud_event`] ends.
const STORED_TAIL: &str = "\"provider_data\":null}}";

/// The CloudEvent as served and delivered: the stored text with the provider's body (verified
/// JSON, kept byte for byte) as `data.provider_data`. Events stored before the body was kept
/// once already hold it and are returned as they are.
pub fn with_provider_data(stored: &str, raw_body: &str) -> String {
    match stored.strip_suffix(STORED_TAIL) {
        Some(head) => {
            let body = raw_body.trim();
            let mut text = String::with_capacity(head.len() + body.len() + 20);
            text.push_str(head);
            text.push_str("\"provider_data\":");
            text.push_str(body);
            text.push_str("}}");
            text
        }
        None => stored.to_owned(),
    }
}

/// [`with_provider_data`] for a CloudEvent already parsed (the admin API's event detail).
pub fn restore_provider_data(ce: &mut Value, raw_body: &str) {
    if let Some(slot) = ce.get_mut("data").and_then(|d| d.get_mut("provider_data")) {
        if slot.is_null() {
            if let Ok(body) = serde_json::from_str(raw_body) {
                *slot = body;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized() -> Normalized {
        Normalized {
            provider_event_id: "pe_1".into(),
            event_type: types::LAB_OTHER,
            subject: "order_1".into(),
            occurred_at: DateTime::from_timestamp(1_760_000_000, 0).unwrap(),
            staleness_key: None,
            order_key: "k".into(),
            data: NormalizedData {
                provider_status: Some("provider_data\":null}}".into()),
                ..NormalizedData::bare(Kind::LabOrder, Status::Unknown)
            },
        }
    }

    #[test]
    fn the_stored_text_leaves_the_body_out_and_the_served_text_puts_it_back_verbatim() {
        let n = normalized();
        let tenant = TenantId::parse("tn_1").unwrap();
        let stored = stored_cloud_event("evt_1", &tenant, "vital", &n).unwrap();
        assert!(stored.ends_with(STORED_TAIL), "{stored}");
        let body = "{ \"b\" : [1, 2.50], \"a\": \"x\" }\n";
        let served = with_provider_data(&stored, body);
        assert!(
            served.contains("\"provider_data\":{ \"b\" : [1, 2.50]"),
            "{served}"
        );
        let v: Value = serde_json::from_str(&served).unwrap();
        assert_eq!(
            v["data"]["provider_data"],
            serde_json::json!({"b": [1, 2.5], "a": "x"})
        );
        assert_eq!(v["data"]["provider_status"], "provider_data\":null}}");
        assert_eq!(v["id"], "evt_1");
        assert_eq!(v["type"], "lab.other");

        let mut parsed: Value = serde_json::from_str(&stored).unwrap();
        restore_provider_data(&mut parsed, body);
        assert_eq!(parsed, v);
    }

    #[test]
    fn an_event_stored_with_its_body_inside_is_served_as_stored() {
        let old = r#"{"data": {"provider_data": {"a": 1}}, "id": "evt_1"}"#;
        assert_eq!(with_provider_data(old, r#"{"other":2}"#), old);
        let mut v: Value = serde_json::from_str(old).unwrap();
        restore_provider_data(&mut v, r#"{"other":2}"#);
        assert_eq!(v["data"]["provider_data"], serde_json::json!({"a": 1}));
    }
}
