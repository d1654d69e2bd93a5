use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryFilter, QueryOrder};

use crate::domain::{EndpointId, SecretId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "endpoint_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SecretId,
    pub endpoint_id: EndpointId,
    pub secret_ciphertext: String,
    pub hint: String,
    pub created_at: DateTimeUtc,
    /// Set when a newer secret replaced this one; it signs until then (rotation grace).
    pub expires_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Secrets that still sign deliveries at `now`, newest first.
pub async fn active_for_endpoint(
    db: &impl ConnectionTrait,
    endpoint: &EndpointId,
    now: DateTimeUtc,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::EndpointId.eq(endpoint.clone()))
        .filter(
            sea_orm::Condition::any()
                .add(Column::ExpiresAt.is_null())
                .add(Column::ExpiresAt.gt(now)),
        )
        .order_by_desc(Column::Id)
        .all(db)
        .await
}
