//! The normalized event: one schema for every provider. A provider module turns its webhook into
//! a [`Normalized`]; [`cloud_event`] wraps it in the CloudEvents 1.0 envelope that is stored,
//! served and delivered. Documented in README ("The normalized schema") and as JSON Schema in
//! `openapi/normalized-event.schema.json`.

pub mod time;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::{Provider, TenantId};

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
    /// The provider's complete object, unchanged: nothing is ever lost in normalization.
    pub provider_data: Value,
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

/// The CloudEvents 1.0 envelope (structured JSON mode). The provider's body moves into the
/// event (`n.data.provider_data` is left `null`) instead of being copied: it is the largest part.
pub fn cloud_event(id: &str, tenant: &TenantId, provider: Provider, n: &mut Normalized) -> Value {
    let provider_data = std::mem::take(&mut n.data.provider_data);
    let mut ce = json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("/providers/{provider}/tenants/{tenant}"),
        "type": n.event_type,
        "subject": n.subject,
        "time": rfc3339(n.occurred_at),
        "datacontenttype": "application/json",
        "tenantid": tenant.as_str(),
        "provider": provider.as_str(),
        "providereventid": n.provider_event_id,
        "data": n.data,
    });
    ce["data"]["provider_data"] = provider_data;
    ce
}

/// Reads an optional string field.
pub fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

pub fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}
