//! What the manager's console reads that the trace API did not need:
//! - `scan_activity`: scans per site, task kind and hour, added up by the projection in the
//!   transaction that projects them (exactly once, like the events). The console's charts
//!   read a few hundred rows of it, never the events (10 million rows, no time index).
//! - `exception_note`: the audit of an exception's handling (assigned, commented,
//!   resolved: who, when, what), and `trace_exception.assigned_to`.
//! - partial indexes for the search box: a bare serial, an order number; and the GTIN at
//!   the end of `ix_trace_object_lot`, so that "which GTINs have lot X" reads the lot's
//!   own entries (without it, SQLite answered from the stock index, every object of the
//!   organisation: 0.35 s at 5 million objects).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn lot_index(with_gtin: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name("ix_trace_object_lot")
        .table(TraceObject::Table)
        .col(TraceObject::OrganisationId)
        .col(TraceObject::Lot)
        .col(TraceObject::SiteId)
        .col(TraceObject::Location)
        .col(TraceObject::Status);
    if with_gtin {
        index.col(TraceObject::Gtin);
    }
    index.to_owned()
}

async fn replace_lot_index(m: &SchemaManager<'_>, with_gtin: bool) -> Result<(), DbErr> {
    m.drop_index(
        Index::drop()
            .name("ix_trace_object_lot")
            .table(TraceObject::Table)
            .if_exists()
            .to_owned(),
    )
    .await?;
    m.create_index(lot_index(with_gtin)).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on every back-end: the index drop and create run on one
    /// connection (see `m20261125_120000_partial_parent_index`), and a failure leaves the
    /// schema as it was.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        replace_lot_index(m, true).await?;
        m.create_table(
            Table::create()
                .table(ScanActivity::Table)
                .col(string(ScanActivity::OrganisationId))
                .col(string(ScanActivity::SiteId))
                .col(string(ScanActivity::Kind))
                .col(big_integer(ScanActivity::HourMs))
                .col(big_integer(ScanActivity::Scans))
                .primary_key(
                    Index::create()
                        .col(ScanActivity::OrganisationId)
                        .col(ScanActivity::HourMs)
                        .col(ScanActivity::SiteId)
                        .col(ScanActivity::Kind),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ExceptionNote::Table)
                .col(string(ExceptionNote::Id).primary_key())
                .col(string(ExceptionNote::OrganisationId))
                .col(string(ExceptionNote::ExceptionId))
                .col(big_integer(ExceptionNote::AtMs))
                .col(string(ExceptionNote::UserId))
                .col(string(ExceptionNote::Action))
                .col(text(ExceptionNote::Note))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_exception_note_exception")
                .table(ExceptionNote::Table)
                .col(ExceptionNote::OrganisationId)
                .col(ExceptionNote::ExceptionId)
                .col(ExceptionNote::AtMs)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(TraceException::Table)
                .add_column(string_null(TraceException::AssignedTo))
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("ix_trace_object_serial", TraceObject::Serial),
            ("ix_trace_object_order", TraceObject::OrderRef),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(TraceObject::Table)
                    .col(TraceObject::OrganisationId)
                    .col(col.clone())
                    .and_where(Expr::col(col).is_not_null())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        replace_lot_index(m, false).await?;
        for name in ["ix_trace_object_serial", "ix_trace_object_order"] {
            m.drop_index(
                Index::drop()
                    .name(name)
                    .table(TraceObject::Table)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(TraceException::Table)
                .drop_column(TraceException::AssignedTo)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(ExceptionNote::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(ScanActivity::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ScanActivity {
    Table,
    OrganisationId,
    SiteId,
    Kind,
    HourMs,
    Scans,
}

#[derive(DeriveIden)]
enum ExceptionNote {
    Table,
    Id,
    OrganisationId,
    ExceptionId,
    AtMs,
    UserId,
    Action,
    Note,
}

#[derive(DeriveIden)]
enum TraceException {
    Table,
    AssignedTo,
}

#[derive(DeriveIden, Clone)]
enum TraceObject {
    Table,
    OrganisationId,
    Serial,
    OrderRef,
    Lot,
    SiteId,
    Location,
    Status,
    Gtin,
}
