//! What each scanner still held undelivered when it last said so: `device.unsent_writes`
//! (scans and voids recorded on it that the server had not acknowledged) and
//! `device.unsent_reported_at`. A scanner reports after a full sync run when the figure
//! changed, so a manager sees which scanner holds work the server does not have.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        m.alter_table(
            Table::alter()
                .table(Device::Table)
                .add_column(big_integer_null(Device::UnsentWrites))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Device::Table)
                .add_column(timestamp_with_time_zone_null(Device::UnsentReportedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [Device::UnsentReportedAt, Device::UnsentWrites] {
            m.alter_table(
                Table::alter()
                    .table(Device::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Device {
    Table,
    UnsentWrites,
    UnsentReportedAt,
}
