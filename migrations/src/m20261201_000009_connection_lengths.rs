//! PostgreSQL: a provider connection's URL columns hold 8192 characters instead of 2048, and its
//! client id 1000 instead of 500: what the API takes (URLs of up to 2048 characters, stored in
//! the parser's spelling with a `/` added, possibly percent-encoded; text fields of up to 1000
//! characters) must never fail its insert. Found by schemathesis on PostgreSQL. SQLite does not
//! bound text lengths.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn set_lengths(manager: &SchemaManager<'_>, url: u32, client_id: u32) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    db.execute_unprepared(&format!(
        "ALTER TABLE provider_connections \
         ALTER COLUMN token_url TYPE varchar({url}), \
         ALTER COLUMN api_base_url TYPE varchar({url}), \
         ALTER COLUMN client_id TYPE varchar({client_id})"
    ))
    .await
    .map(drop)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_lengths(manager, 8192, 1000).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_lengths(manager, 2048, 500).await
    }
}
