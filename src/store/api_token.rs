use sea_orm::entity::prelude::*;
use sea_orm::ConnectionTrait;

use crate::domain::{TenantId, TokenId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TokenId,
    pub name: String,
    /// `admin`, `tenant`, or `endpoint` (reads one pull endpoint's events).
    pub role: String,
    pub tenant_id: Option<TenantId>,
    pub created_by: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// The endpoint an `endpoint` token reads.
    pub endpoint_id: Option<crate::domain::EndpointId>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// An endpoint's tokens, revoked and expired ones included, oldest first.
pub async fn of_endpoint(
    db: &impl ConnectionTrait,
    endpoint: &crate::domain::EndpointId,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::QueryOrder;
    Entity::find()
        .filter(Column::EndpointId.eq(endpoint.clone()))
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// One of an endpoint's tokens.
pub async fn find_of_endpoint(
    db: &impl ConnectionTrait,
    endpoint: &crate::domain::EndpointId,
    id: &TokenId,
) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.clone())
        .filter(Column::EndpointId.eq(endpoint.clone()))
        .one(db)
        .await
}
