//! `ix_trace_object_parent` keeps only objects that have a parent. Every query on it asks
//! for the children of given containers (`parent_key = ?` or `IN (…)`), which both
//! databases answer from a partial index; the loose packs the projection creates by the
//! thousand no longer each cost an insert at a random place in it (one written page per
//! scan on SQLite's single writer, where the projection's throughput is its write volume).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "ix_trace_object_parent";

fn index(partial: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(NAME)
        .table(TraceObject::Table)
        .col(TraceObject::OrganisationId)
        .col(TraceObject::ParentKey)
        .col(TraceObject::EpcKey);
    if partial {
        index.and_where(Expr::col(TraceObject::ParentKey).is_not_null());
    }
    index.to_owned()
}

async fn replace(m: &SchemaManager<'_>, partial: bool) -> Result<(), DbErr> {
    m.drop_index(
        Index::drop()
            .name(NAME)
            .table(TraceObject::Table)
            .if_exists()
            .to_owned(),
    )
    .await?;
    m.create_index(index(partial)).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on every back-end (sea-orm runs SQLite migrations without one):
    /// the drop and the create then run on one connection, and a failure leaves the old
    /// index. Spread over the pool, a connection with the schema read before the drop
    /// refused the create ("already exists").
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        replace(m, true).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        replace(m, false).await
    }
}

#[derive(DeriveIden)]
enum TraceObject {
    Table,
    OrganisationId,
    ParentKey,
    EpcKey,
}
