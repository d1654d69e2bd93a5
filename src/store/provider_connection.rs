use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryFilter};

use crate::domain::{ConnectionId, TenantId};
use crate::providers::Provider;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub provider: crate::providers::Provider,
    /// VectorCare OAuth2 client id.
    pub client_id: Option<String>,
    /// VectorCare client secret or Vital API key, sealed with the master key.
    pub secret_ciphertext: Option<String>,
    pub secret_hint: Option<String>,
    pub token_url: Option<String>,
    pub api_base_url: Option<String>,
    /// JSON array of CIDR strings; empty allows every source address.
    pub ip_allowlist: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The only way to read a connection: through the tenant that owns it.
pub async fn find_for_tenant(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    provider: Provider,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TenantId.eq(tenant.clone()))
        .filter(Column::Provider.eq(provider.as_str()))
        .one(db)
        .await
}

/// What a connection's sealed secret is bound to: its kind (VectorCare client secret or Vital API
/// key) and its row, so a ciphertext copied elsewhere does not open.
pub fn secret_context(provider: Provider, id: &ConnectionId) -> String {
    format!("{}:{id}", provider.plugin().credentials().secret_context)
}
