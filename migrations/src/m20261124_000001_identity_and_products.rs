//! Organisations, sites (with GLN), users, devices and the product (GTIN) master.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Organisation::Table)
                .col(string(Organisation::Id).primary_key())
                .col(string(Organisation::Name))
                .col(timestamp_with_time_zone(Organisation::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Site::Table)
                .col(string(Site::Id).primary_key())
                .col(string(Site::OrganisationId))
                .col(string(Site::Name))
                // A GLN identifies one physical location worldwide.
                .col(string_len_uniq(Site::Gln, 13))
                .col(string_null(Site::Address))
                .col(timestamp_with_time_zone(Site::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Site::Table, Site::OrganisationId)
                        .to(Organisation::Table, Organisation::Id),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AppUser::Table)
                .col(string(AppUser::Id).primary_key())
                .col(string(AppUser::OrganisationId))
                .col(string_null(AppUser::SiteId))
                .col(string_uniq(AppUser::Username))
                .col(string(AppUser::DisplayName))
                .col(string(AppUser::Role))
                .col(string(AppUser::PasswordHash))
                .col(boolean(AppUser::Disabled).default(false))
                .col(timestamp_with_time_zone(AppUser::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(AppUser::Table, AppUser::OrganisationId)
                        .to(Organisation::Table, Organisation::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(AppUser::Table, AppUser::SiteId)
                        .to(Site::Table, Site::Id),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Device::Table)
                .col(string(Device::Id).primary_key())
                .col(string(Device::OrganisationId))
                .col(string(Device::SiteId))
                .col(string(Device::Name))
                // The device's own Automerge actor id (hex); one per install.
                .col(string_uniq(Device::ActorId))
                .col(boolean(Device::Disabled).default(false))
                .col(timestamp_with_time_zone(Device::RegisteredAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Device::Table, Device::OrganisationId)
                        .to(Organisation::Table, Organisation::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Device::Table, Device::SiteId)
                        .to(Site::Table, Site::Id),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Product::Table)
                .col(string(Product::Id).primary_key())
                .col(string(Product::OrganisationId))
                .col(string_len(Product::Gtin, 14))
                .col(string(Product::Name))
                .col(string_null(Product::Strength))
                .col(string_null(Product::PackSize))
                .col(string_len_null(Product::Ndc, 10))
                .col(timestamp_with_time_zone(Product::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Product::Table, Product::OrganisationId)
                        .to(Organisation::Table, Organisation::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_product_org_gtin")
                .table(Product::Table)
                .col(Product::OrganisationId)
                .col(Product::Gtin)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Product::Table.into_iden(),
            Device::Table.into_iden(),
            AppUser::Table.into_iden(),
            Site::Table.into_iden(),
            Organisation::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organisation {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Site {
    Table,
    Id,
    OrganisationId,
    Name,
    Gln,
    Address,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AppUser {
    Table,
    Id,
    OrganisationId,
    SiteId,
    Username,
    DisplayName,
    Role,
    PasswordHash,
    Disabled,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Device {
    Table,
    Id,
    OrganisationId,
    SiteId,
    Name,
    ActorId,
    Disabled,
    RegisteredAt,
}

#[derive(DeriveIden)]
enum Product {
    Table,
    Id,
    OrganisationId,
    Gtin,
    Name,
    Strength,
    PackSize,
    Ndc,
    CreatedAt,
}
