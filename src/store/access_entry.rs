use sea_orm::entity::prelude::*;

use crate::domain::AccessId;

/// One read of patient data through the API.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: AccessId,
    pub at: DateTimeUtc,
    pub token_id: Option<String>,
    pub role: Option<String>,
    pub tenant_id: Option<String>,
    pub subject: Option<String>,
    pub event_id: Option<String>,
    /// What was shown: `event`, `timeline`, `disclosures`, `delivery`.
    pub what: String,
    pub address: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Every entry (`None`), or one tenant's (kept as text: an entry outlives its tenant).
pub fn of(tenant: Option<&str>) -> Select<Entity> {
    match tenant {
        Some(t) => Entity::find().filter(Column::TenantId.eq(t)),
        None => Entity::find(),
    }
}
