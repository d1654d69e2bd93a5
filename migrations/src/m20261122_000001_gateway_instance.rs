use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GatewayInstance::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(GatewayInstance::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(GatewayInstance::KeyFingerprint)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GatewayInstance::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GatewayInstance::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum GatewayInstance {
    Table,
    Id,
    KeyFingerprint,
    CreatedAt,
}
