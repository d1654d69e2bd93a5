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

/// Ends pending deliveries as dead without an attempt (what they would send, or where, is
/// gone), with the reason; the caller says which.
pub fn end_pending(reason: &str, now: DateTimeUtc) -> sea_orm::UpdateMany<Entity> {
    use sea_orm::sea_query::Expr;
    use sea_orm::QueryFilter;
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(DeliveryStatus::Dead))
        .col_expr(Column::LastError, Expr::value(reason))
        .col_expr(Column::CompletedAt, Expr::value(now))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Status.eq(DeliveryStatus::Pending))
}
