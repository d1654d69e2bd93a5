use sea_orm::entity::prelude::*;

use crate::domain::AuditId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: AuditId,
    pub at: DateTimeUtc,
    pub actor_token_id: Option<String>,
    pub actor_name: Option<String>,
    pub actor_role: Option<String>,
    pub tenant_id: Option<String>,
    /// e.g. `tenant.create`, `endpoint.rotate_secret`.
    pub action: String,
    pub method: String,
    pub path: String,
    pub target: Option<String>,
    pub status: i32,
    /// `success` or `failure`.
    pub outcome: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Every entry (`None`), or one tenant's: the audit log records the tenant as text, since an
/// entry outlives its tenant.
pub fn of(tenant: Option<&str>) -> Select<Entity> {
    match tenant {
        Some(t) => Entity::find().filter(Column::TenantId.eq(t)),
        None => Entity::find(),
    }
}
