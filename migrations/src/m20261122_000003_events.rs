//! Inbound events, the newest event per subject (staleness), and the delivery outbox.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text = |c: Events| ColumnDef::new(c).text().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(
                        ColumnDef::new(Events::Id)
                            .string_len(80)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Events::TenantId).string_len(80).not_null())
                    .col(ColumnDef::new(Events::Provider).string_len(32).not_null())
                    .col(
                        ColumnDef::new(Events::ProviderEventId)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Events::EventType).string_len(100).not_null())
                    .col(ColumnDef::new(Events::Subject).string_len(200).not_null())
                    .col(ColumnDef::new(Events::Status).string_len(32).not_null())
                    .col(ColumnDef::new(Events::OrderKey).string_len(200).not_null())
                    .col(ColumnDef::new(Events::Stale).boolean().not_null())
                    .col(
                        ColumnDef::new(Events::OccurredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Events::ReceivedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Events::Normalized).json_binary().not_null())
                    .col(text(Events::RawBody))
                    .col(ColumnDef::new(Events::RawHeaders).json_binary().not_null())
                    .col(
                        ColumnDef::new(Events::Verification)
                            .json_binary()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_events_tenant")
                            .from(Events::Table, Events::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_events_provider_event")
                    .table(Events::Table)
                    .col(Events::TenantId)
                    .col(Events::Provider)
                    .col(Events::ProviderEventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_tenant_id")
                    .table(Events::Table)
                    .col(Events::TenantId)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_subject")
                    .table(Events::Table)
                    .col(Events::TenantId)
                    .col(Events::Subject)
                    .col(Events::OrderKey)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SubjectHeads::Table)
                    .col(
                        ColumnDef::new(SubjectHeads::TenantId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SubjectHeads::Provider)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SubjectHeads::Subject)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SubjectHeads::OrderKey)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SubjectHeads::EventId)
                            .string_len(80)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(SubjectHeads::TenantId)
                            .col(SubjectHeads::Provider)
                            .col(SubjectHeads::Subject),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_subject_heads_tenant")
                            .from(SubjectHeads::Table, SubjectHeads::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(
                        ColumnDef::new(Deliveries::Id)
                            .string_len(80)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Deliveries::TenantId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Deliveries::EventId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Deliveries::EndpointId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Deliveries::Subject)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Deliveries::Status).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Deliveries::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Deliveries::NextAttemptAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Deliveries::LeasedUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Deliveries::LeasedBy).string_len(80).null())
                    .col(
                        ColumnDef::new(Deliveries::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Deliveries::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deliveries_event")
                            .from(Deliveries::Table, Deliveries::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deliveries_endpoint")
                            .from(Deliveries::Table, Deliveries::EndpointId)
                            .to(Endpoints::Table, Endpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_deliveries_due")
                    .table(Deliveries::Table)
                    .col(Deliveries::Status)
                    .col(Deliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_deliveries_event")
                    .table(Deliveries::Table)
                    .col(Deliveries::EventId)
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Endpoints::Table)
                    .add_column(
                        ColumnDef::new(Endpoints::IncludeStale)
                            .boolean()
                            .not_null()
                            .default(false),
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
                    .drop_column(Endpoints::IncludeStale)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Deliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SubjectHeads::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Endpoints {
    Table,
    Id,
    IncludeStale,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    Id,
    TenantId,
    Provider,
    ProviderEventId,
    EventType,
    Subject,
    Status,
    OrderKey,
    Stale,
    OccurredAt,
    ReceivedAt,
    Normalized,
    RawBody,
    RawHeaders,
    Verification,
}

#[derive(DeriveIden)]
enum SubjectHeads {
    Table,
    TenantId,
    Provider,
    Subject,
    OrderKey,
    EventId,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    TenantId,
    EventId,
    EndpointId,
    Subject,
    Status,
    Attempts,
    NextAttemptAt,
    LeasedUntil,
    LeasedBy,
    CreatedAt,
    UpdatedAt,
}
