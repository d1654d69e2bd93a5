//! PostgreSQL: an event's raw body and CloudEvent (a few KB each) are compressed with LZ4
//! instead of the default pglz, which profiles showed as the server's top cost on ingest.
//! Only where the server was built with LZ4; SQLite stores them as they are.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 2] = ["raw_body", "normalized"];

pub(crate) async fn set_compression(
    manager: &SchemaManager<'_>,
    method: &str,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let lz4 = db
        .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT 1 AS ok FROM pg_settings \
             WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
        ))
        .await?
        .is_some();
    if !lz4 {
        return Ok(());
    }
    for column in COLUMNS {
        db.execute_unprepared(&format!(
            "ALTER TABLE events ALTER COLUMN {column} SET COMPRESSION {method}"
        ))
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_compression(manager, "lz4").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_compression(manager, "pglz").await
    }
}
