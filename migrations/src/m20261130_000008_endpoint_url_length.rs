//! PostgreSQL: an endpoint's URL column holds 8192 characters instead of 2048. The API takes
//! URLs of up to 2048 characters as sent; the parser's spelling, which is what is stored, can
//! be longer (a `/` added, characters percent-encoded), and a URL the API accepted must never
//! fail its insert. SQLite does not bound text lengths.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn set_length(manager: &SchemaManager<'_>, chars: u32) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    db.execute_unprepared(&format!(
        "ALTER TABLE endpoints ALTER COLUMN url TYPE varchar({chars})"
    ))
    .await
    .map(drop)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_length(manager, 8192).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_length(manager, 2048).await
    }
}
