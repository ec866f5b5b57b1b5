//! A sync refusal is recorded once per (device, document, reason, change): a client that
//! retries a refused message in a loop bumps a counter instead of writing a row per try.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One statement per column: SQLite's ALTER TABLE adds one at a time.
        for col in [
            string(SyncRefusal::ChangeHash).default("").to_owned(),
            integer(SyncRefusal::Occurrences).default(1).to_owned(),
            timestamp_with_time_zone_null(SyncRefusal::LastAt).to_owned(),
        ] {
            let mut col = col;
            m.alter_table(
                Table::alter()
                    .table(SyncRefusal::Table)
                    .add_column(&mut col)
                    .to_owned(),
            )
            .await?;
        }
        // Rows from before this migration name their change only in the detail: each
        // stays its own record (its id as the key), so the unique index below holds.
        m.exec_stmt(
            Query::update()
                .table(SyncRefusal::Table)
                .value(SyncRefusal::ChangeHash, Expr::col(SyncRefusal::Id))
                .value(SyncRefusal::LastAt, Expr::col(SyncRefusal::At))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_sync_refusal_once")
                .table(SyncRefusal::Table)
                .col(SyncRefusal::DeviceId)
                .col(SyncRefusal::DocumentId)
                .col(SyncRefusal::Reason)
                .col(SyncRefusal::ChangeHash)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ux_sync_refusal_once")
                .table(SyncRefusal::Table)
                .to_owned(),
        )
        .await?;
        for col in [
            SyncRefusal::ChangeHash,
            SyncRefusal::Occurrences,
            SyncRefusal::LastAt,
        ] {
            m.alter_table(
                Table::alter()
                    .table(SyncRefusal::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SyncRefusal {
    Table,
    Id,
    DeviceId,
    DocumentId,
    Reason,
    At,
    ChangeHash,
    Occurrences,
    LastAt,
}
