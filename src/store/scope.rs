//! Tenancy by construction: every read of a tenant-owned table outside `store/` starts from a
//! tenant's scope, so the tenant filter is written once, here, and cannot be forgotten.
//! `tests/api/layers.rs` fails when a tenant filter or a query on a tenant-owned table is
//! written outside `store/`.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select, UpdateMany};

use super::{audit_entry, delivery, delivery_attempt, endpoint, event, provider_action};
use crate::domain::TenantId;

/// One tenant's rows.
#[derive(Clone, Copy)]
pub struct ForTenant<'a>(&'a TenantId);

pub fn for_tenant(tenant: &TenantId) -> ForTenant<'_> {
    ForTenant(tenant)
}

impl ForTenant<'_> {
    pub fn events(self) -> Select<event::Entity> {
        event::Entity::find().filter(event::Column::TenantId.eq(self.0.clone()))
    }

    /// The tenant's endpoints, deleted ones excepted.
    pub fn endpoints(self) -> Select<endpoint::Entity> {
        self.endpoints_ever()
            .filter(endpoint::Column::DeletedAt.is_null())
    }

    /// Deleted endpoints too: what the accounting of disclosures names.
    pub fn endpoints_ever(self) -> Select<endpoint::Entity> {
        endpoint::Entity::find().filter(endpoint::Column::TenantId.eq(self.0.clone()))
    }

    pub fn deliveries(self) -> Select<delivery::Entity> {
        delivery::Entity::find().filter(delivery::Column::TenantId.eq(self.0.clone()))
    }

    /// Changes to the tenant's deliveries (redelivery, recovery).
    pub fn update_deliveries(self) -> UpdateMany<delivery::Entity> {
        delivery::Entity::update_many().filter(delivery::Column::TenantId.eq(self.0.clone()))
    }

    pub fn attempts(self) -> Select<delivery_attempt::Entity> {
        delivery_attempt::Entity::find()
            .filter(delivery_attempt::Column::TenantId.eq(self.0.clone()))
    }

    pub fn actions(self) -> Select<provider_action::Entity> {
        provider_action::Entity::find().filter(provider_action::Column::TenantId.eq(self.0.clone()))
    }

    pub fn audit(self) -> Select<audit_entry::Entity> {
        audit_entry::Entity::find().filter(audit_entry::Column::TenantId.eq(self.0.to_string()))
    }
}
