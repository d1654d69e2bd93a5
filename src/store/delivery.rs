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
    /// Its number in the endpoint's sequence; `None` for a resend (out of sequence) and for
    /// deliveries made before sequences existed.
    pub seq: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Ends pending deliveries as dead without an attempt (what they would send, or where, is
/// gone), with the reason; the caller says which.
pub fn end_pending(reason: &str, now: DateTimeUtc) -> sea_orm::UpdateMany<Entity> {
    end_pending_as(DeliveryStatus::Dead, reason, now)
}

/// Ends pending deliveries in `status` without an attempt, with the reason.
pub fn end_pending_as(
    status: DeliveryStatus,
    reason: &str,
    now: DateTimeUtc,
) -> sea_orm::UpdateMany<Entity> {
    use sea_orm::sea_query::Expr;
    use sea_orm::QueryFilter;
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::LastError, Expr::value(reason))
        .col_expr(Column::CompletedAt, Expr::value(now))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Status.eq(DeliveryStatus::Pending))
}

/// Why a delivery ended `superseded`.
pub const SUPERSEDED: &str = "a newer event of its subject was delivered to the endpoint";

/// Whether a newer event (by the provider's order) of the delivery's subject was delivered to
/// its endpoint: then retrying it would overwrite newer data with older.
pub async fn newer_delivered(
    db: &impl sea_orm::ConnectionTrait,
    id: &DeliveryId,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT 1 AS found FROM deliveries mine \
         JOIN events me ON me.id = mine.event_id \
         JOIN deliveries d ON d.endpoint_id = mine.endpoint_id AND d.subject = mine.subject \
           AND d.status = 'succeeded' AND d.id <> mine.id \
         JOIN events e ON e.id = d.event_id \
         WHERE mine.id = {} AND e.order_key > me.order_key LIMIT 1",
        super::placeholder(backend, 1)
    );
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [id.to_string().into()],
        ))
        .await?;
    Ok(row.is_some())
}
