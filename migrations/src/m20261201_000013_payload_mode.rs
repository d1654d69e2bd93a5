//! Minimum necessary per endpoint: what an endpoint is sent (`full`, the normalized event with
//! its patient data, or `minimal`: ids, type, status, times, links and a reference to fetch the
//! rest through the API), and on each attempt the mode it was made in, for the accounting of
//! disclosures.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Endpoints {
    Table,
    PayloadMode,
}

#[derive(DeriveIden)]
enum DeliveryAttempts {
    Table,
    PayloadMode,
}

fn mode<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column)
        .string_len(16)
        .not_null()
        .default("full")
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Endpoints::Table)
                    .add_column(mode(Endpoints::PayloadMode))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DeliveryAttempts::Table)
                    .add_column(mode(DeliveryAttempts::PayloadMode))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DeliveryAttempts::Table)
                    .drop_column(DeliveryAttempts::PayloadMode)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Endpoints::Table)
                    .drop_column(Endpoints::PayloadMode)
                    .to_owned(),
            )
            .await
    }
}
