//! Delivery that receivers can trust: a sequence per endpoint (`endpoint_sequences`, and each
//! delivery's number), pull endpoints with their cursor and endpoint-scoped tokens, handshake
//! and heartbeat, superseded retries, and the operator's alerts with the lease that lets one
//! replica at a time run the monitor.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden, Clone)]
enum Endpoints {
    Table,
    Kind,
    Handshake,
    VerifiedAt,
    HeartbeatMinutes,
    Supersede,
}

#[derive(DeriveIden, Clone)]
enum Deliveries {
    Table,
    EndpointId,
    Seq,
}

#[derive(DeriveIden, Clone)]
enum ApiTokens {
    Table,
    EndpointId,
}

#[derive(DeriveIden)]
enum EndpointSequences {
    Table,
    EndpointId,
    LastSeq,
    Cursor,
    ReadAt,
    HeartbeatAt,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    Kind,
    DedupeKey,
    TenantId,
    EndpointId,
    Summary,
    Detail,
    Status,
    Attempts,
    NextAttemptAt,
    SentAt,
    LastError,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Leases {
    Table,
    Name,
    Holder,
    Until,
}

fn ts<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn ts_null<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn id<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c)
        .string_len(80)
        .not_null()
        .primary_key()
        .to_owned()
}

/// SQLite adds one column per `ALTER TABLE`.
async fn add_columns<T: IntoIden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    columns: Vec<ColumnDef>,
) -> Result<(), DbErr> {
    for mut c in columns {
        manager
            .alter_table(
                Table::alter()
                    .table(table.clone())
                    .add_column(&mut c)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            Endpoints::Table,
            vec![
                ColumnDef::new(Endpoints::Kind)
                    .string_len(8)
                    .not_null()
                    .default("push")
                    .to_owned(),
                ColumnDef::new(Endpoints::Handshake)
                    .boolean()
                    .not_null()
                    .default(false)
                    .to_owned(),
                ts_null(Endpoints::VerifiedAt),
                ColumnDef::new(Endpoints::HeartbeatMinutes)
                    .integer()
                    .null()
                    .to_owned(),
                ColumnDef::new(Endpoints::Supersede)
                    .boolean()
                    .not_null()
                    .default(false)
                    .to_owned(),
            ],
        )
        .await?;
        add_columns(
            manager,
            Deliveries::Table,
            vec![ColumnDef::new(Deliveries::Seq)
                .big_integer()
                .null()
                .to_owned()],
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_endpoint_seq")
                    .table(Deliveries::Table)
                    .col(Deliveries::EndpointId)
                    .col(Deliveries::Seq)
                    .to_owned(),
            )
            .await?;
        add_columns(
            manager,
            ApiTokens::Table,
            vec![ColumnDef::new(ApiTokens::EndpointId)
                .string_len(80)
                .null()
                .to_owned()],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(EndpointSequences::Table)
                    .col(id(EndpointSequences::EndpointId))
                    .col(
                        ColumnDef::new(EndpointSequences::LastSeq)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(EndpointSequences::Cursor)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ts_null(EndpointSequences::ReadAt))
                    .col(ts_null(EndpointSequences::HeartbeatAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alerts::Table)
                    .col(id(Alerts::Id))
                    .col(ColumnDef::new(Alerts::Kind).string_len(40).not_null())
                    .col(
                        ColumnDef::new(Alerts::DedupeKey)
                            .string_len(300)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Alerts::TenantId).string_len(80).null())
                    .col(ColumnDef::new(Alerts::EndpointId).string_len(80).null())
                    .col(ColumnDef::new(Alerts::Summary).string_len(500).not_null())
                    .col(ColumnDef::new(Alerts::Detail).text().not_null())
                    .col(ColumnDef::new(Alerts::Status).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Alerts::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ts(Alerts::NextAttemptAt))
                    .col(ts_null(Alerts::SentAt))
                    .col(ColumnDef::new(Alerts::LastError).text().null())
                    .col(ts(Alerts::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alerts_created")
                    .table(Alerts::Table)
                    .col(Alerts::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alerts_due")
                    .table(Alerts::Table)
                    .col(Alerts::Status)
                    .col(Alerts::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Leases::Table)
                    .col(
                        ColumnDef::new(Leases::Name)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Leases::Holder).string_len(80).not_null())
                    .col(ts(Leases::Until))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Leases::Table.into_iden(),
            Alerts::Table.into_iden(),
            EndpointSequences::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_deliveries_endpoint_seq")
                    .table(Deliveries::Table)
                    .to_owned(),
            )
            .await?;
        let drops: Vec<(DynIden, DynIden)> = vec![
            (
                ApiTokens::Table.into_iden(),
                ApiTokens::EndpointId.into_iden(),
            ),
            (Deliveries::Table.into_iden(), Deliveries::Seq.into_iden()),
            (
                Endpoints::Table.into_iden(),
                Endpoints::Supersede.into_iden(),
            ),
            (
                Endpoints::Table.into_iden(),
                Endpoints::HeartbeatMinutes.into_iden(),
            ),
            (
                Endpoints::Table.into_iden(),
                Endpoints::VerifiedAt.into_iden(),
            ),
            (
                Endpoints::Table.into_iden(),
                Endpoints::Handshake.into_iden(),
            ),
            (Endpoints::Table.into_iden(), Endpoints::Kind.into_iden()),
        ];
        for (table, column) in drops {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveMigrationName)]
pub struct Migration;
