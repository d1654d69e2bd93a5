//! Schema migrations, applied in order. The same schema on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;
pub use sea_orm_migration::MigrationStatus;

mod m20261122_000001_gateway_instance;
mod m20261122_000002_admin;
mod m20261122_000003_events;
mod m20261122_000004_delivery;
mod m20261122_000005_provider_actions;
mod m20261123_000006_event_compression;
mod m20261123_000007_event_json;
mod m20261130_000008_endpoint_url_length;
mod m20261201_000009_connection_lengths;
mod m20261201_000010_retention;
mod m20261201_000011_access_log;
mod m20261201_000012_sealed_payloads;
mod m20261201_000013_payload_mode;
mod m20261201_000014_deletions;
mod m20261201_000015_delivery_guarantees;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_gateway_instance::Migration),
            Box::new(m20261122_000002_admin::Migration),
            Box::new(m20261122_000003_events::Migration),
            Box::new(m20261122_000004_delivery::Migration),
            Box::new(m20261122_000005_provider_actions::Migration),
            Box::new(m20261123_000006_event_compression::Migration),
            Box::new(m20261123_000007_event_json::Migration),
            Box::new(m20261130_000008_endpoint_url_length::Migration),
            Box::new(m20261201_000009_connection_lengths::Migration),
            Box::new(m20261201_000010_retention::Migration),
            Box::new(m20261201_000011_access_log::Migration),
            Box::new(m20261201_000012_sealed_payloads::Migration),
            Box::new(m20261201_000013_payload_mode::Migration),
            Box::new(m20261201_000014_deletions::Migration),
            Box::new(m20261201_000015_delivery_guarantees::Migration),
        ]
    }
}
