//! Reference data for the scanners, by version (issue #20).
//!
//! `reference_item` holds, per organisation, every entry a scanner's rules judge against
//! (a product, a recalled lot, a blocked serial, a site's expiry policy or location), each
//! with the version that last changed it; an entry that no longer applies stays as a
//! tombstone (`removed`) so a delta can say so. `reference_version` is the organisation's
//! counter: a writer raises it in its own transaction, which holds the row until commit,
//! so versions become visible in the order they were given and a delta never skips one.
//! `product.serialized` joins the product master (existing products are serialized: every
//! product swt handled so far was).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ReferenceVersion::Table)
                .col(string(ReferenceVersion::OrganisationId).primary_key())
                .col(big_integer(ReferenceVersion::Version))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ReferenceItem::Table)
                .col(string(ReferenceItem::OrganisationId))
                // '' for entries of every site of the organisation.
                .col(string(ReferenceItem::SiteId))
                // product, lot, serial, held, policy, location.
                .col(string_len(ReferenceItem::Kind, 16))
                .col(string(ReferenceItem::Key1))
                .col(string(ReferenceItem::Key2))
                // The entry as JSON (product fields, policy, location name); '' if none.
                .col(text(ReferenceItem::Payload))
                .col(big_integer(ReferenceItem::Version))
                .col(boolean(ReferenceItem::Removed))
                .primary_key(
                    Index::create()
                        .col(ReferenceItem::OrganisationId)
                        .col(ReferenceItem::Kind)
                        .col(ReferenceItem::SiteId)
                        .col(ReferenceItem::Key1)
                        .col(ReferenceItem::Key2),
                )
                .to_owned(),
        )
        .await?;
        // Deltas: everything of an organisation changed after a version.
        m.create_index(
            Index::create()
                .name("ix_reference_item_version")
                .table(ReferenceItem::Table)
                .col(ReferenceItem::OrganisationId)
                .col(ReferenceItem::Version)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Product::Table)
                .add_column(boolean(Product::Serialized).default(true))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Product::Table)
                .drop_column(Product::Serialized)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(ReferenceItem::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(ReferenceVersion::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ReferenceVersion {
    Table,
    OrganisationId,
    Version,
}

#[derive(DeriveIden)]
enum ReferenceItem {
    Table,
    OrganisationId,
    SiteId,
    Kind,
    Key1,
    Key2,
    Payload,
    Version,
    Removed,
}

#[derive(DeriveIden)]
enum Product {
    Table,
    Serialized,
}
