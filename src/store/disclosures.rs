//! The accounting of disclosures: every time a subject's patient data left the gateway toward a
//! tenant's endpoint (each delivery attempt), read from what deliveries record. Attempts and
//! deliveries outlive the payload purge, so the accounting does too.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use super::scope::for_tenant;
use super::{delivery, delivery_attempt, endpoint, event};
use crate::domain::{DeliveryId, EndpointId, EventId, TenantId};

/// One disclosure: an event's payload sent to an endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Disclosure {
    /// When it was sent.
    pub at: DateTime<Utc>,
    pub event_id: EventId,
    /// The event's normalized type.
    pub event_type: String,
    pub endpoint_id: EndpointId,
    /// The receiving host (also of an endpoint deleted since).
    pub endpoint_host: Option<String>,
    pub delivery_id: DeliveryId,
    /// 1 for the first attempt of the delivery.
    pub attempt: i32,
    /// `delivered` (the endpoint answered 2xx) or `failed`; a failed attempt may still have
    /// reached the receiver, so it is listed too.
    pub outcome: &'static str,
    /// The endpoint's HTTP status, when it answered.
    pub status_code: Option<i32>,
    /// What was sent: `full` (the whole normalized event) or `minimal` (ids, type, status,
    /// times and links; no patient or address field).
    pub payload_mode: crate::domain::PayloadMode,
}

/// Every disclosure of `subject`'s events, oldest first, at most `limit`.
pub async fn for_subject(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    subject: &str,
    limit: u64,
) -> Result<Vec<Disclosure>, DbErr> {
    let scope = for_tenant(tenant);
    let deliveries: Vec<delivery::Model> = scope
        .deliveries()
        .filter(delivery::Column::Subject.eq(subject))
        .limit(limit)
        .all(db)
        .await?;
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<DeliveryId> = deliveries.iter().map(|d| d.id.clone()).collect();
    let attempts: Vec<delivery_attempt::Model> = scope
        .attempts()
        .filter(delivery_attempt::Column::DeliveryId.is_in(ids))
        .order_by_asc(delivery_attempt::Column::At)
        .order_by_asc(delivery_attempt::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let event_ids: Vec<EventId> = deliveries.iter().map(|d| d.event_id.clone()).collect();
    let types: HashMap<EventId, String> = scope
        .events()
        .select_only()
        .column(event::Column::Id)
        .column(event::Column::EventType)
        .filter(event::Column::Id.is_in(event_ids))
        .into_tuple::<(EventId, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let endpoint_ids: Vec<EndpointId> = deliveries.iter().map(|d| d.endpoint_id.clone()).collect();
    let hosts: HashMap<EndpointId, Option<String>> = scope
        .endpoints_ever()
        .select_only()
        .column(endpoint::Column::Id)
        .column(endpoint::Column::Url)
        .filter(endpoint::Column::Id.is_in(endpoint_ids))
        .into_tuple::<(EndpointId, String)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, url)| {
            let host = url::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned));
            (id, host)
        })
        .collect();
    let by_id: HashMap<&DeliveryId, &delivery::Model> =
        deliveries.iter().map(|d| (&d.id, d)).collect();
    Ok(attempts
        .into_iter()
        .filter_map(|a| {
            let d = by_id.get(&a.delivery_id)?;
            Some(Disclosure {
                at: a.at,
                event_type: types.get(&d.event_id).cloned().unwrap_or_default(),
                event_id: d.event_id.clone(),
                endpoint_host: hosts.get(&d.endpoint_id).cloned().flatten(),
                endpoint_id: d.endpoint_id.clone(),
                delivery_id: a.delivery_id,
                attempt: a.attempt,
                outcome: if a.success { "delivered" } else { "failed" },
                status_code: a.status_code,
                payload_mode: a.payload_mode,
            })
        })
        .collect())
}
