//! Drops the event indexes no query reads. Each cost a B-tree insert per projected event,
//! and on SQLite's single writer the projection's throughput is its write volume. An
//! EPCIS query interface, when it comes, adds the indexes its queries need.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UNREAD: [&str; 3] = [
    "ix_epcis_event_org_time",
    "ix_epcis_event_org_bizstep_time",
    "ix_epcis_event_org_scan",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in UNREAD {
            m.drop_index(
                Index::drop()
                    .name(name)
                    .table(EpcisEvent::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(UNREAD[0])
                .table(EpcisEvent::Table)
                .col(EpcisEvent::OrganisationId)
                .col(EpcisEvent::EventTimeMs)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(UNREAD[1])
                .table(EpcisEvent::Table)
                .col(EpcisEvent::OrganisationId)
                .col(EpcisEvent::BizStep)
                .col(EpcisEvent::EventTimeMs)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(UNREAD[2])
                .table(EpcisEvent::Table)
                .col(EpcisEvent::OrganisationId)
                .col(EpcisEvent::ScanId)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum EpcisEvent {
    Table,
    OrganisationId,
    EventTimeMs,
    BizStep,
    ScanId,
}
