use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, QueryFilter, Select};

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
    /// Deleted: invisible everywhere; the purger removes its rows in batches, this one last.
    pub deleted_at: Option<DateTimeUtc>,
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
        return live().filter(Column::Id.eq(id)).one(db).await;
    }
    match Slug::parse(reference) {
        Ok(slug) => live().filter(Column::Slug.eq(slug)).one(db).await,
        Err(_) => Ok(None),
    }
}

/// Every tenant not deleted: the only way the API and the ingest see tenants.
pub fn live() -> Select<Entity> {
    Entity::find().filter(Column::DeletedAt.is_null())
}

/// Marks the tenant deleted: gone from every lookup at once, disabled (no delivery is claimed
/// for it), its slug and customer id free for a new tenant. The purger removes its rows.
pub async fn mark_deleted(db: &impl ConnectionTrait, id: &TenantId) -> Result<(), DbErr> {
    let now = chrono::Utc::now();
    // A slug no live tenant can have (the id's hex is unique), so the old one is free.
    let freed = format!("deleted-{}", id.as_str().trim_start_matches("tn_"));
    let freed = Slug::parse(&freed).map_err(DbErr::Custom)?;
    Entity::update_many()
        .col_expr(Column::DeletedAt, Expr::value(now))
        .col_expr(Column::Disabled, Expr::value(true))
        .col_expr(Column::Slug, Expr::value(freed))
        .col_expr(Column::CustomerId, Expr::value(Option::<String>::None))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id.clone()))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether the tenant is disabled (a tenant that no longer exists counts as disabled).
pub async fn is_disabled(db: &impl ConnectionTrait, id: &TenantId) -> Result<bool, DbErr> {
    Ok(live()
        .filter(Column::Id.eq(id.clone()))
        .one(db)
        .await?
        .is_none_or(|t| t.disabled))
}

pub async fn find_by_customer_id(
    db: &impl ConnectionTrait,
    customer_id: &str,
) -> Result<Option<Model>, DbErr> {
    live()
        .filter(Column::CustomerId.eq(customer_id))
        .one(db)
        .await
}
