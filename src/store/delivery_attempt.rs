use sea_orm::entity::prelude::*;

use crate::domain::{AttemptId, DeliveryId, EndpointId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: AttemptId,
    pub delivery_id: DeliveryId,
    pub endpoint_id: EndpointId,
    pub tenant_id: TenantId,
    pub attempt: i32,
    pub at: DateTimeUtc,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    /// `timeout`, `connect`, `dns`, `tls`, `http_status`, `redirect`, `ssrf_refused`, `other`.
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub response_snippet: Option<String>,
    pub success: bool,
    /// What the endpoint was sent: `full` or `minimal`.
    pub payload_mode: crate::domain::PayloadMode,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
