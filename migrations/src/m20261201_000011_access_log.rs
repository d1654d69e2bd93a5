//! The access log: one row per read of patient data through the API (who, which tenant, subject
//! and event, what was shown, when, from where). Tenant, subject and event are kept as text: an
//! entry outlives what it names.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccessLog {
    Table,
    Id,
    At,
    TokenId,
    Role,
    TenantId,
    Subject,
    EventId,
    What,
    Address,
    RequestId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text = |c: AccessLog, n: u32| ColumnDef::new(c).string_len(n).null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(AccessLog::Table)
                    .col(
                        ColumnDef::new(AccessLog::Id)
                            .string_len(80)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AccessLog::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(text(AccessLog::TokenId, 80))
                    .col(text(AccessLog::Role, 16))
                    .col(text(AccessLog::TenantId, 80))
                    .col(text(AccessLog::Subject, 256))
                    .col(text(AccessLog::EventId, 80))
                    .col(ColumnDef::new(AccessLog::What).string_len(40).not_null())
                    .col(text(AccessLog::Address, 64))
                    .col(text(AccessLog::RequestId, 160))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ix_access_log_tenant",
                vec![AccessLog::TenantId, AccessLog::Id],
            ),
            (
                "ix_access_log_subject",
                vec![AccessLog::Subject, AccessLog::Id],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(AccessLog::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccessLog::Table).to_owned())
            .await
    }
}
