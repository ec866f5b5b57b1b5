//! `site.time_zone`: the site's IANA time zone (`America/Chicago`). EPCIS events carry the
//! offset in force where they happened (`eventTimeZoneOffset`), and DSCSA partners read
//! local times from it. Sites created before this migration get `UTC`, the offset their
//! events always carried.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Site::Table)
                .add_column(string(Site::TimeZone).default("UTC"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Site::Table)
                .drop_column(Site::TimeZone)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Site {
    Table,
    TimeZone,
}
