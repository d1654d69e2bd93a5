use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryFilter};

use crate::domain::{Slug, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TenantId,
    pub slug: Slug,
    pub name: String,
    pub customer_id: Option<String>,
    pub disabled: bool,
    /// Days its payloads are kept; `None`: the configured default (`retention_days`).
    pub retention_days: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Finds a tenant by id (`tn_...`) or slug: both appear in URLs.
pub async fn find_by_ref(
    db: &impl ConnectionTrait,
    reference: &str,
) -> Result<Option<Model>, DbErr> {
    if let Ok(id) = TenantId::parse(reference) {
        return Entity::find_by_id(id).one(db).await;
    }
    match Slug::parse(reference) {
        Ok(slug) => Entity::find().filter(Column::Slug.eq(slug)).one(db).await,
        Err(_) => Ok(None),
    }
}

/// Whether the tenant is disabled (a tenant that no longer exists counts as disabled).
pub async fn is_disabled(db: &impl ConnectionTrait, id: &TenantId) -> Result<bool, DbErr> {
    Ok(Entity::find_by_id(id.clone())
        .one(db)
        .await?
        .is_none_or(|t| t.disabled))
}

pub async fn find_by_customer_id(
    db: &impl ConnectionTrait,
    customer_id: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::CustomerId.eq(customer_id))
        .one(db)
        .await
}
