//! PostgreSQL: an event's CloudEvent, kept headers and verification are stored as `json` (the
//! text, checked) rather than `jsonb` (parsed into a binary tree). The gateway reads them only
//! whole, never queries inside them, and sends the CloudEvent as it was stored; parsing every
//! CloudEvent into `jsonb` was the server's top cost on ingest. SQLite stores text either way.
//! Changing a column's type rewrites the table: on a large table, run it in a quiet hour.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 3] = ["normalized", "raw_headers", "verification"];

async fn set_type(manager: &SchemaManager<'_>, ty: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let changes: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("ALTER COLUMN {c} TYPE {ty} USING {c}::{ty}"))
        .collect();
    db.execute_unprepared(&format!("ALTER TABLE events {}", changes.join(", ")))
        .await?;
    // A new type brings the default compression back; migration 0006's choice stands.
    crate::m20261123_000006_event_compression::set_compression(manager, "lz4").await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_type(manager, "json").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_type(manager, "jsonb").await
    }
}
