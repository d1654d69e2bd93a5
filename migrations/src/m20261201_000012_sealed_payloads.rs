//! Payloads sealed per tenant: each tenant's data keys (random, stored sealed under the master
//! key; `sealed` is emptied when a key is destroyed, which shreds what it sealed), and on each
//! event the key and the sealed payload. Events stored before keep their plain columns until
//! the gateway seals them (in the background, in batches).
//!
//! Also the API token signing key, stored sealed like every other secret so that a master key
//! rotation re-seals it instead of invalidating every token.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DataKeys {
    Table,
    Id,
    TenantId,
    Sealed,
    CreatedAt,
    DestroyedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    DataKeyId,
    SealedPayload,
}

#[derive(DeriveIden)]
enum GatewayInstance {
    Table,
    TokenKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DataKeys::Table)
                    .col(
                        ColumnDef::new(DataKeys::Id)
                            .string_len(80)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(DataKeys::TenantId).string_len(80).not_null())
                    .col(ColumnDef::new(DataKeys::Sealed).string_len(200).null())
                    .col(
                        ColumnDef::new(DataKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DataKeys::DestroyedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_data_keys_tenant")
                    .table(DataKeys::Table)
                    .col(DataKeys::TenantId)
                    .col(DataKeys::Id)
                    .to_owned(),
            )
            .await?;
        // SQLite adds one column per statement.
        for col in [
            ColumnDef::new(Events::DataKeyId)
                .string_len(80)
                .null()
                .to_owned(),
            ColumnDef::new(Events::SealedPayload)
                .binary()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            // Ciphertext does not compress: PostgreSQL should not try, only move large values
            // out of line.
            db.execute_unprepared(
                "ALTER TABLE events ALTER COLUMN sealed_payload SET STORAGE EXTERNAL",
            )
            .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(GatewayInstance::Table)
                    .add_column(
                        ColumnDef::new(GatewayInstance::TokenKey)
                            .string_len(200)
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(GatewayInstance::Table)
                    .drop_column(GatewayInstance::TokenKey)
                    .to_owned(),
            )
            .await?;
        for col in [Events::SealedPayload, Events::DataKeyId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(DataKeys::Table).to_owned())
            .await
    }
}
