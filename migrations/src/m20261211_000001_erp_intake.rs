//! ERP orders in (issue #24, "work in"):
//! - `integration_account`: an ERP's credential, one organisation each, separate from
//!   people's logins. Only the SHA-256 of its key is stored; revoking sets `revoked_at`.
//! - `erp_order`: one row per order an ERP sent, `(organisation, kind, order_ref)`
//!   unique, naming the task made from it and the hash of its current content.
//! - `erp_order_request`: the answer given to each `Idempotency-Key`, so a retried
//!   request is answered again instead of applied again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IntegrationAccount::Table)
                .col(string(IntegrationAccount::Id).primary_key())
                .col(string(IntegrationAccount::OrganisationId))
                .col(string(IntegrationAccount::Name))
                // Every request looks its key up by this.
                .col(string_uniq(IntegrationAccount::KeyHash))
                .col(string(IntegrationAccount::CreatedBy))
                .col(timestamp_with_time_zone(IntegrationAccount::CreatedAt))
                .col(timestamp_with_time_zone_null(IntegrationAccount::RevokedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ErpOrder::Table)
                .col(string(ErpOrder::Id).primary_key())
                .col(string(ErpOrder::OrganisationId))
                .col(string_len(ErpOrder::Kind, 16))
                .col(string(ErpOrder::OrderRef))
                .col(string(ErpOrder::SiteId))
                .col(string(ErpOrder::PartnerGln))
                .col(string(ErpOrder::TaskId))
                .col(string(ErpOrder::ContentHash))
                .col(string(ErpOrder::CreatedBy))
                .col(timestamp_with_time_zone(ErpOrder::CreatedAt))
                .col(timestamp_with_time_zone(ErpOrder::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // The same order sent twice makes one task: the database says so, not a check
        // that two requests could both pass.
        m.create_index(
            Index::create()
                .name("ux_erp_order_ref")
                .table(ErpOrder::Table)
                .col(ErpOrder::OrganisationId)
                .col(ErpOrder::Kind)
                .col(ErpOrder::OrderRef)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ErpOrderRequest::Table)
                .col(string(ErpOrderRequest::OrganisationId))
                .col(string(ErpOrderRequest::IdempotencyKey))
                .col(string(ErpOrderRequest::RequestHash))
                .col(integer(ErpOrderRequest::Status))
                .col(text(ErpOrderRequest::Response))
                .col(timestamp_with_time_zone(ErpOrderRequest::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(ErpOrderRequest::OrganisationId)
                        .col(ErpOrderRequest::IdempotencyKey),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ErpOrderRequest::Table.into_iden(),
            ErpOrder::Table.into_iden(),
            IntegrationAccount::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum IntegrationAccount {
    Table,
    Id,
    OrganisationId,
    Name,
    KeyHash,
    CreatedBy,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum ErpOrder {
    Table,
    Id,
    OrganisationId,
    Kind,
    OrderRef,
    SiteId,
    PartnerGln,
    TaskId,
    ContentHash,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ErpOrderRequest {
    Table,
    OrganisationId,
    IdempotencyKey,
    RequestHash,
    Status,
    Response,
    CreatedAt,
}
