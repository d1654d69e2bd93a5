//! Tenants, provider connections and their keys, endpoints and their secrets, API tokens, audit.
//! Constraint names are stable: the API maps them to 409/422 answers.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(80)
        .not_null()
        .primary_key()
        .to_owned()
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(id(Tenants::Id))
                    .col(ColumnDef::new(Tenants::Slug).string_len(63).not_null())
                    .col(ColumnDef::new(Tenants::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Tenants::CustomerId).string_len(200).null())
                    .col(
                        ColumnDef::new(Tenants::Disabled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ts(Tenants::CreatedAt))
                    .col(ts(Tenants::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_tenants_slug")
                    .table(Tenants::Table)
                    .col(Tenants::Slug)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_tenants_customer_id")
                    .table(Tenants::Table)
                    .col(Tenants::CustomerId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProviderConnections::Table)
                    .col(id(ProviderConnections::Id))
                    .col(
                        ColumnDef::new(ProviderConnections::TenantId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProviderConnections::Provider)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProviderConnections::ClientId)
                            .string_len(500)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ProviderConnections::SecretCiphertext)
                            .text()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ProviderConnections::SecretHint)
                            .string_len(40)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ProviderConnections::TokenUrl)
                            .string_len(2048)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ProviderConnections::ApiBaseUrl)
                            .string_len(2048)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ProviderConnections::IpAllowlist)
                            .json_binary()
                            .not_null(),
                    )
                    .col(ts(ProviderConnections::CreatedAt))
                    .col(ts(ProviderConnections::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_provider_connections_tenant",
                        (ProviderConnections::Table, ProviderConnections::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_provider_connections_tenant_provider")
                    .table(ProviderConnections::Table)
                    .col(ProviderConnections::TenantId)
                    .col(ProviderConnections::Provider)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProviderKeys::Table)
                    .col(id(ProviderKeys::Id))
                    .col(
                        ColumnDef::new(ProviderKeys::ConnectionId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProviderKeys::TenantId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ProviderKeys::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(ProviderKeys::PublicPem).text().null())
                    .col(ColumnDef::new(ProviderKeys::SecretCiphertext).text().null())
                    .col(ColumnDef::new(ProviderKeys::Hint).string_len(80).not_null())
                    .col(
                        ColumnDef::new(ProviderKeys::Fingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ts(ProviderKeys::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_provider_keys_connection",
                        (ProviderKeys::Table, ProviderKeys::ConnectionId),
                        (ProviderConnections::Table, ProviderConnections::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_provider_keys_fingerprint")
                    .table(ProviderKeys::Table)
                    .col(ProviderKeys::ConnectionId)
                    .col(ProviderKeys::Fingerprint)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Endpoints::Table)
                    .col(id(Endpoints::Id))
                    .col(
                        ColumnDef::new(Endpoints::TenantId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Endpoints::Url).string_len(2048).not_null())
                    .col(
                        ColumnDef::new(Endpoints::Description)
                            .string_len(500)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Endpoints::EventTypes)
                            .json_binary()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Endpoints::Enabled).boolean().not_null())
                    .col(ColumnDef::new(Endpoints::Headers).json_binary().not_null())
                    .col(
                        ColumnDef::new(Endpoints::RateLimitPerSecond)
                            .integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Endpoints::DisabledReason)
                            .string_len(500)
                            .null(),
                    )
                    .col(ts(Endpoints::CreatedAt))
                    .col(ts(Endpoints::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_endpoints_tenant",
                        (Endpoints::Table, Endpoints::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_endpoints_tenant")
                    .table(Endpoints::Table)
                    .col(Endpoints::TenantId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EndpointSecrets::Table)
                    .col(id(EndpointSecrets::Id))
                    .col(
                        ColumnDef::new(EndpointSecrets::EndpointId)
                            .string_len(80)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EndpointSecrets::SecretCiphertext)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EndpointSecrets::Hint)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(ts(EndpointSecrets::CreatedAt))
                    .col(
                        ColumnDef::new(EndpointSecrets::ExpiresAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_endpoint_secrets_endpoint",
                        (EndpointSecrets::Table, EndpointSecrets::EndpointId),
                        (Endpoints::Table, Endpoints::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(id(ApiTokens::Id))
                    .col(ColumnDef::new(ApiTokens::Name).string_len(200).not_null())
                    .col(ColumnDef::new(ApiTokens::Role).string_len(16).not_null())
                    .col(ColumnDef::new(ApiTokens::TenantId).string_len(80).null())
                    .col(ColumnDef::new(ApiTokens::CreatedBy).string_len(80).null())
                    .col(ts(ApiTokens::CreatedAt))
                    .col(ts(ApiTokens::ExpiresAt))
                    .col(
                        ColumnDef::new(ApiTokens::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_api_tokens_tenant",
                        (ApiTokens::Table, ApiTokens::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(id(AuditLog::Id))
                    .col(ts(AuditLog::At))
                    .col(ColumnDef::new(AuditLog::ActorTokenId).string_len(80).null())
                    .col(ColumnDef::new(AuditLog::ActorName).string_len(200).null())
                    .col(ColumnDef::new(AuditLog::ActorRole).string_len(16).null())
                    .col(ColumnDef::new(AuditLog::TenantId).string_len(80).null())
                    .col(ColumnDef::new(AuditLog::Action).string_len(100).not_null())
                    .col(ColumnDef::new(AuditLog::Method).string_len(10).not_null())
                    .col(ColumnDef::new(AuditLog::Path).string_len(2048).not_null())
                    .col(ColumnDef::new(AuditLog::Target).string_len(200).null())
                    .col(ColumnDef::new(AuditLog::Status).integer().not_null())
                    .col(ColumnDef::new(AuditLog::Outcome).string_len(16).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_log_tenant")
                    .table(AuditLog::Table)
                    .col(AuditLog::TenantId)
                    .col(AuditLog::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            EndpointSecrets::Table.into_iden(),
            Endpoints::Table.into_iden(),
            ProviderKeys::Table.into_iden(),
            ProviderConnections::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Slug,
    Name,
    CustomerId,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProviderConnections {
    Table,
    Id,
    TenantId,
    Provider,
    ClientId,
    SecretCiphertext,
    SecretHint,
    TokenUrl,
    ApiBaseUrl,
    IpAllowlist,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProviderKeys {
    Table,
    Id,
    ConnectionId,
    TenantId,
    Kind,
    PublicPem,
    SecretCiphertext,
    Hint,
    Fingerprint,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Endpoints {
    Table,
    Id,
    TenantId,
    Url,
    Description,
    EventTypes,
    Enabled,
    Headers,
    RateLimitPerSecond,
    DisabledReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EndpointSecrets {
    Table,
    Id,
    EndpointId,
    SecretCiphertext,
    Hint,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    Name,
    Role,
    TenantId,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    ActorTokenId,
    ActorName,
    ActorRole,
    TenantId,
    Action,
    Method,
    Path,
    Target,
    Status,
    Outcome,
}
