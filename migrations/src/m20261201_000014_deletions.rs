//! Deletions that keep what must outlive them.
//!
//! A tenant is marked deleted at once (gone from the API, its data keys destroyed, its slug and
//! customer id free again), and the purger removes its rows batch by batch, its own row last.
//!
//! An endpoint is marked deleted (gone from the API, never sent to again, its secrets erased)
//! and its row stays, with its deliveries and attempts: the accounting of disclosures must still
//! name where a subject's data went.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Endpoints {
    Table,
    DeletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Endpoints::Table)
                    .add_column(
                        ColumnDef::new(Endpoints::DeletedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(
                        ColumnDef::new(Tenants::DeletedAt)
                            .timestamp_with_time_zone()
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
                    .table(Endpoints::Table)
                    .drop_column(Endpoints::DeletedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .drop_column(Tenants::DeletedAt)
                    .to_owned(),
            )
            .await
    }
}
