//! `ix_trace_object_stock` (organisation, GTIN, lot, expiry, status) served the stock
//! list, which `stock_level` now answers. What still reads packs by GTIN and lot wants
//! them in key order: a lot's packs page by page, its trace report, "is this GTIN or lot
//! known". So the index becomes (organisation, GTIN, lot, key): each of those is a range
//! of it (a lot's page walked the GTIN's whole key range before: 60 ms for a GTIN of many
//! lots at 10 million events), and a pack's status change no longer rewrites its entry.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn index(name: &str, cols: &[TraceObject]) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(TraceObject::Table);
    for c in cols {
        i.col(c.clone());
    }
    i.to_owned()
}

fn drop(name: &str) -> IndexDropStatement {
    Index::drop()
        .name(name)
        .table(TraceObject::Table)
        .if_exists()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction: the drop and create run on one connection and a failure leaves
    /// the schema as it was.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(drop("ix_trace_object_stock")).await?;
        m.create_index(index(
            "ix_trace_object_gtin_lot",
            &[
                TraceObject::OrganisationId,
                TraceObject::Gtin,
                TraceObject::Lot,
                TraceObject::EpcKey,
            ],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(drop("ix_trace_object_gtin_lot")).await?;
        m.create_index(index(
            "ix_trace_object_stock",
            &[
                TraceObject::OrganisationId,
                TraceObject::Gtin,
                TraceObject::Lot,
                TraceObject::Expiry,
                TraceObject::Status,
            ],
        ))
        .await
    }
}

#[derive(DeriveIden, Clone)]
enum TraceObject {
    Table,
    OrganisationId,
    Gtin,
    Lot,
    Expiry,
    Status,
    EpcKey,
}
