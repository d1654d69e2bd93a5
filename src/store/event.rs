use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryFilter, QuerySelect};

use crate::domain::{EventId, TenantId};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: EventId,
    pub tenant_id: TenantId,
    pub provider: crate::providers::Provider,
    pub provider_event_id: String,
    pub event_type: String,
    pub subject: String,
    pub status: String,
    pub order_key: String,
    /// Older than an event already seen for the same subject: stored, not fanned out.
    pub stale: bool,
    pub occurred_at: DateTimeUtc,
    pub received_at: DateTimeUtc,
    /// The CloudEvent.
    pub normalized: Json,
    /// The body exactly as received.
    #[sea_orm(column_type = "Text")]
    pub raw_body: String,
    pub raw_headers: Json,
    pub verification: Json,
    /// When the payload (raw body, headers, normalized data) was purged: the skeleton stays.
    pub purged_at: Option<DateTimeUtc>,
    /// The tenant's data key that sealed the payload; `None`: stored before payloads were
    /// sealed, and held in the plain columns above until the gateway seals it.
    pub data_key_id: Option<crate::domain::DataKeyId>,
    /// The payload sealed ([`crate::crypto::payload`]); the plain columns then hold only `{}`/"".
    pub sealed_payload: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub async fn find_for_tenant(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &EventId,
) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.clone())
        .filter(Column::TenantId.eq(tenant.clone()))
        .one(db)
        .await
}

/// The event stored the first time for a provider's event id, and whether it was stale: what a
/// retried webhook is answered with.
pub async fn first_stored(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    provider: &str,
    provider_event_id: &str,
) -> Result<Option<(EventId, bool)>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::Id)
        .column(Column::Stale)
        .filter(Column::TenantId.eq(tenant.clone()))
        .filter(Column::Provider.eq(provider))
        .filter(Column::ProviderEventId.eq(provider_event_id))
        .into_tuple()
        .one(db)
        .await
}
