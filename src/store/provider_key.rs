use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryFilter, QueryOrder};

use crate::domain::{ConnectionId, KeyId, TenantId};

pub const KIND_RSA_PUBLIC_KEY: &str = "rsa_public_key";
pub const KIND_SIGNING_SECRET: &str = "signing_secret";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: KeyId,
    pub connection_id: ConnectionId,
    pub tenant_id: TenantId,
    pub kind: String,
    /// RSA public keys are not secret and are kept as PEM.
    pub public_pem: Option<String>,
    /// Signing secrets are sealed with the master key.
    pub secret_ciphertext: Option<String>,
    pub hint: String,
    pub fingerprint: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub async fn list_for_connection(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::TenantId.eq(tenant.clone()))
        .filter(Column::ConnectionId.eq(connection.clone()))
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

pub async fn find_for_tenant(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    connection: &ConnectionId,
    id: &KeyId,
) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.clone())
        .filter(Column::TenantId.eq(tenant.clone()))
        .filter(Column::ConnectionId.eq(connection.clone()))
        .one(db)
        .await
}
