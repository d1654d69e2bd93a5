//! Provider actions: every call the gateway makes to a provider on a tenant's behalf; and the
//! time indexes the dashboard's per-minute statistics read.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProviderActions::Table)
                    .col(
                        ColumnDef::new(ProviderActions::Id)
                            .string_len(80)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::TenantId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::Provider)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::Action)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::Subject)
                            .string_len(255)
                            .null(),
                    )
                    .col(ColumnDef::new(ProviderActions::Request).json().not_null())
                    .col(
                        ColumnDef::new(ProviderActions::ActorTokenId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::ActorName)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::RequestId)
                            .string_len(80)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::Outcome)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::ProviderStatus)
                            .integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::ErrorCode)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::Message)
                            .string_len(2000)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProviderActions::CompletedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_provider_actions_tenant")
                            .from(ProviderActions::Table, ProviderActions::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_provider_actions_tenant_subject")
                    .table(ProviderActions::Table)
                    .col(ProviderActions::TenantId)
                    .col(ProviderActions::Subject)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_received_at")
                    .table(Events::Table)
                    .col(Events::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_delivery_attempts_at")
                    .table(DeliveryAttempts::Table)
                    .col(DeliveryAttempts::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_delivery_attempts_at")
                    .table(DeliveryAttempts::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_events_received_at")
                    .table(Events::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(ProviderActions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ProviderActions {
    Table,
    Id,
    TenantId,
    Provider,
    Action,
    Subject,
    Request,
    ActorTokenId,
    ActorName,
    RequestId,
    Outcome,
    ProviderStatus,
    ErrorCode,
    Message,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum DeliveryAttempts {
    Table,
    At,
}
