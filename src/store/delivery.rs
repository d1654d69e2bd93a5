use sea_orm::entity::prelude::*;

use crate::domain::{DeliveryId, DeliveryStatus, EndpointId, EventId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
    pub subject: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub leased_until: Option<DateTimeUtc>,
    pub leased_by: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
