//! The projection's tables: EPCIS events (with an event ↔ identifier join table for
//! history queries), the current state of every serial and container, projected-scan
//! markers, and exceptions with the scans involved.
//!
//! Indexes are laid out for the trace queries at 10 million events: serial history is a
//! range scan on `epcis_event_epc (organisation_id, epc_key, event_time_ms, event_pk)`
//! then primary-key look-ups; container explosion walks `trace_object (organisation_id,
//! parent_key)`. Nothing scans JSON.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(EpcisEvent::Table)
                // A narrow surrogate key so the join table and history pages stay small.
                .col(big_pk_auto(EpcisEvent::Pk))
                .col(string(EpcisEvent::OrganisationId))
                .col(string(EpcisEvent::EventId))
                .col(string(EpcisEvent::EventType))
                .col(string(EpcisEvent::Action))
                .col(string_null(EpcisEvent::BizStep))
                .col(string_null(EpcisEvent::Disposition))
                // UTC milliseconds: one integer type on both back-ends, orders and pages exactly.
                .col(big_integer(EpcisEvent::EventTimeMs))
                .col(string(EpcisEvent::EventTimeZoneOffset))
                .col(big_integer(EpcisEvent::RecordTimeMs))
                .col(string_null(EpcisEvent::SiteId))
                .col(string_null(EpcisEvent::Location))
                .col(string_null(EpcisEvent::ReadPoint))
                .col(string_null(EpcisEvent::BizLocation))
                .col(string_null(EpcisEvent::DocumentId))
                .col(string_null(EpcisEvent::ScanId))
                .col(string_null(EpcisEvent::UserId))
                .col(string_null(EpcisEvent::DeviceId))
                // The event as EPCIS 2.0 JSON-LD, exactly as exported.
                .col(text(EpcisEvent::Body))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_epcis_event_org_event_id")
                .table(EpcisEvent::Table)
                .col(EpcisEvent::OrganisationId)
                .col(EpcisEvent::EventId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_epcis_event_org_time")
                .table(EpcisEvent::Table)
                .col(EpcisEvent::OrganisationId)
                .col(EpcisEvent::EventTimeMs)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_epcis_event_org_bizstep_time")
                .table(EpcisEvent::Table)
                .col(EpcisEvent::OrganisationId)
                .col(EpcisEvent::BizStep)
                .col(EpcisEvent::EventTimeMs)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_epcis_event_org_scan")
                .table(EpcisEvent::Table)
                .col(EpcisEvent::OrganisationId)
                .col(EpcisEvent::ScanId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(EpcisEventEpc::Table)
                .col(big_integer(EpcisEventEpc::EventPk))
                // `epc` (epcList), `parent` (parentID) or `child` (childEPCs).
                .col(string_len(EpcisEventEpc::Role, 8))
                .col(string(EpcisEventEpc::EpcKey))
                .col(string(EpcisEventEpc::OrganisationId))
                .col(big_integer(EpcisEventEpc::EventTimeMs))
                .primary_key(
                    Index::create()
                        .col(EpcisEventEpc::EventPk)
                        .col(EpcisEventEpc::Role)
                        .col(EpcisEventEpc::EpcKey),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(EpcisEventEpc::Table, EpcisEventEpc::EventPk)
                        .to(EpcisEvent::Table, EpcisEvent::Pk),
                )
                .to_owned(),
        )
        .await?;
        // History of one identifier: an index-only range scan, newest first or oldest first.
        m.create_index(
            Index::create()
                .name("ix_epcis_event_epc_history")
                .table(EpcisEventEpc::Table)
                .col(EpcisEventEpc::OrganisationId)
                .col(EpcisEventEpc::EpcKey)
                .col(EpcisEventEpc::EventTimeMs)
                .col(EpcisEventEpc::EventPk)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TraceObject::Table)
                .col(string(TraceObject::OrganisationId))
                .col(string(TraceObject::EpcKey))
                .col(string_len(TraceObject::Kind, 8))
                .col(string_null(TraceObject::Gtin))
                .col(string_null(TraceObject::Serial))
                .col(string_null(TraceObject::Sscc))
                .col(string_null(TraceObject::Lot))
                .col(string_null(TraceObject::Expiry))
                .col(string_null(TraceObject::SiteId))
                .col(string_null(TraceObject::Location))
                .col(string(TraceObject::Status))
                .col(string_null(TraceObject::ParentKey))
                .col(string_null(TraceObject::OrderRef))
                .col(big_integer(TraceObject::LastEventTimeMs))
                .col(string_null(TraceObject::LastScanId))
                .col(big_integer(TraceObject::UpdatedAtMs))
                .primary_key(
                    Index::create()
                        .col(TraceObject::OrganisationId)
                        .col(TraceObject::EpcKey),
                )
                .to_owned(),
        )
        .await?;
        // Container explosion: children of a parent.
        m.create_index(
            Index::create()
                .name("ix_trace_object_parent")
                .table(TraceObject::Table)
                .col(TraceObject::OrganisationId)
                .col(TraceObject::ParentKey)
                .col(TraceObject::EpcKey)
                .to_owned(),
        )
        .await?;
        // Where is a lot / stock by GTIN, lot, expiry, status.
        m.create_index(
            Index::create()
                .name("ix_trace_object_stock")
                .table(TraceObject::Table)
                .col(TraceObject::OrganisationId)
                .col(TraceObject::Gtin)
                .col(TraceObject::Lot)
                .col(TraceObject::Expiry)
                .col(TraceObject::Status)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_trace_object_lot")
                .table(TraceObject::Table)
                .col(TraceObject::OrganisationId)
                .col(TraceObject::Lot)
                .col(TraceObject::SiteId)
                .col(TraceObject::Location)
                .col(TraceObject::Status)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ProjectedScan::Table)
                .col(string(ProjectedScan::OrganisationId))
                .col(string(ProjectedScan::ScanId))
                .col(string(ProjectedScan::DocumentId))
                // `projected`, `voided` or `rejected`.
                .col(string_len(ProjectedScan::Outcome, 16))
                // Codes raised when the scan itself was projected, comma-separated.
                .col(string(ProjectedScan::Exceptions))
                // The void arrived after the events were written and was turned into an
                // exception (so a re-run does not raise it twice).
                .col(boolean(ProjectedScan::VoidSeen).default(false))
                .col(big_integer(ProjectedScan::ProjectedAtMs))
                .primary_key(
                    Index::create()
                        .col(ProjectedScan::OrganisationId)
                        .col(ProjectedScan::ScanId),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_projected_scan_document")
                .table(ProjectedScan::Table)
                .col(ProjectedScan::OrganisationId)
                .col(ProjectedScan::DocumentId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TraceException::Table)
                .col(string(TraceException::Id).primary_key())
                .col(string(TraceException::OrganisationId))
                .col(string_null(TraceException::SiteId))
                .col(string(TraceException::Kind))
                .col(string_len(TraceException::State, 16))
                .col(string_null(TraceException::EpcKey))
                // Makes raising idempotent: the same finding twice is one exception.
                .col(string(TraceException::DedupKey))
                .col(text(TraceException::Detail))
                .col(big_integer(TraceException::CreatedAtMs))
                .col(big_integer_null(TraceException::ResolvedAtMs))
                .col(string_null(TraceException::ResolvedBy))
                .col(text_null(TraceException::Resolution))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_trace_exception_dedup")
                .table(TraceException::Table)
                .col(TraceException::OrganisationId)
                .col(TraceException::DedupKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_trace_exception_org_state")
                .table(TraceException::Table)
                .col(TraceException::OrganisationId)
                .col(TraceException::State)
                .col(TraceException::CreatedAtMs)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TraceExceptionScan::Table)
                .col(string(TraceExceptionScan::ExceptionId))
                .col(string(TraceExceptionScan::ScanId))
                .col(string(TraceExceptionScan::OrganisationId))
                .primary_key(
                    Index::create()
                        .col(TraceExceptionScan::ExceptionId)
                        .col(TraceExceptionScan::ScanId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(TraceExceptionScan::Table, TraceExceptionScan::ExceptionId)
                        .to(TraceException::Table, TraceException::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_trace_exception_scan_scan")
                .table(TraceExceptionScan::Table)
                .col(TraceExceptionScan::OrganisationId)
                .col(TraceExceptionScan::ScanId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TraceExceptionScan::Table.into_iden(),
            TraceException::Table.into_iden(),
            ProjectedScan::Table.into_iden(),
            TraceObject::Table.into_iden(),
            EpcisEventEpc::Table.into_iden(),
            EpcisEvent::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum EpcisEvent {
    Table,
    Pk,
    OrganisationId,
    EventId,
    EventType,
    Action,
    BizStep,
    Disposition,
    EventTimeMs,
    EventTimeZoneOffset,
    RecordTimeMs,
    SiteId,
    Location,
    ReadPoint,
    BizLocation,
    DocumentId,
    ScanId,
    UserId,
    DeviceId,
    Body,
}

#[derive(DeriveIden)]
enum EpcisEventEpc {
    Table,
    EventPk,
    Role,
    EpcKey,
    OrganisationId,
    EventTimeMs,
}

#[derive(DeriveIden)]
enum TraceObject {
    Table,
    OrganisationId,
    EpcKey,
    Kind,
    Gtin,
    Serial,
    Sscc,
    Lot,
    Expiry,
    SiteId,
    Location,
    Status,
    ParentKey,
    OrderRef,
    LastEventTimeMs,
    LastScanId,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum ProjectedScan {
    Table,
    OrganisationId,
    ScanId,
    DocumentId,
    Outcome,
    Exceptions,
    VoidSeen,
    ProjectedAtMs,
}

#[derive(DeriveIden)]
enum TraceException {
    Table,
    Id,
    OrganisationId,
    SiteId,
    Kind,
    State,
    EpcKey,
    DedupKey,
    Detail,
    CreatedAtMs,
    ResolvedAtMs,
    ResolvedBy,
    Resolution,
}

#[derive(DeriveIden)]
enum TraceExceptionScan {
    Table,
    ExceptionId,
    ScanId,
    OrganisationId,
}
