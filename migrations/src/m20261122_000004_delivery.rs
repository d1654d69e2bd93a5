//! Delivery: attempt log, delivery outcomes, and endpoint settings for ordering, concurrency and
//! auto-disable.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeliveryAttempts::Table)
                    .col(
                        ColumnDef::new(DeliveryAttempts::Id)
                            .string_len(80)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::DeliveryId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::EndpointId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::TenantId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::Attempt)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::StatusCode)
                            .integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::DurationMs)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::ErrorClass)
                            .string_len(32)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::Error)
                            .string_len(1000)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::ResponseSnippet)
                            .string_len(2000)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(DeliveryAttempts::Success)
                            .boolean()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_delivery_attempts_delivery")
                            .from(DeliveryAttempts::Table, DeliveryAttempts::DeliveryId)
                            .to(Deliveries::Table, Deliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_delivery_attempts_delivery")
                    .table(DeliveryAttempts::Table)
                    .col(DeliveryAttempts::DeliveryId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_delivery_attempts_endpoint")
                    .table(DeliveryAttempts::Table)
                    .col(DeliveryAttempts::EndpointId)
                    .col(DeliveryAttempts::At)
                    .to_owned(),
            )
            .await?;
        for col in [
            ColumnDef::new(Deliveries::LastStatusCode)
                .integer()
                .null()
                .to_owned(),
            ColumnDef::new(Deliveries::LastError)
                .string_len(1000)
                .null()
                .to_owned(),
            ColumnDef::new(Deliveries::CompletedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Deliveries::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_deliveries_endpoint_subject")
                    .table(Deliveries::Table)
                    .col(Deliveries::EndpointId)
                    .col(Deliveries::Subject)
                    .col(Deliveries::Status)
                    .to_owned(),
            )
            .await?;
        for col in [
            ColumnDef::new(Endpoints::Ordering)
                .string_len(16)
                .not_null()
                .default("none")
                .to_owned(),
            ColumnDef::new(Endpoints::MaxConcurrency)
                .integer()
                .null()
                .to_owned(),
            ColumnDef::new(Endpoints::FailingSince)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Endpoints::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            Endpoints::Ordering,
            Endpoints::MaxConcurrency,
            Endpoints::FailingSince,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Endpoints::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("ix_deliveries_endpoint_subject")
                    .table(Deliveries::Table)
                    .to_owned(),
            )
            .await?;
        for col in [
            Deliveries::LastStatusCode,
            Deliveries::LastError,
            Deliveries::CompletedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Deliveries::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(DeliveryAttempts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    EndpointId,
    Subject,
    Status,
    LastStatusCode,
    LastError,
    CompletedAt,
}

#[derive(DeriveIden)]
enum Endpoints {
    Table,
    Ordering,
    MaxConcurrency,
    FailingSince,
}

#[derive(DeriveIden)]
enum DeliveryAttempts {
    Table,
    Id,
    DeliveryId,
    EndpointId,
    TenantId,
    Attempt,
    At,
    StatusCode,
    DurationMs,
    ErrorClass,
    Error,
    ResponseSnippet,
    Success,
}
