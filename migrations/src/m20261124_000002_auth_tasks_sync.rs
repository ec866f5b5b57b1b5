//! Token signing keys, refresh tokens, login throttling, task documents, per-device sync
//! state and the log of refused sync messages.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SigningKey::Table)
                .col(string(SigningKey::Kid).primary_key())
                // PKCS#8 DER of the Ed25519 private key; servers share keys through here.
                .col(blob(SigningKey::PrivateDer))
                .col(blob(SigningKey::PublicRaw))
                .col(timestamp_with_time_zone(SigningKey::CreatedAt))
                // Set when a newer key takes over signing; verification continues until
                // the retired key's tokens have expired.
                .col(timestamp_with_time_zone_null(SigningKey::RetiredAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RefreshToken::Table)
                .col(string(RefreshToken::Id).primary_key())
                .col(string(RefreshToken::UserId))
                .col(string_null(RefreshToken::DeviceId))
                // SHA-256 of the token; the token itself is never stored.
                .col(string_uniq(RefreshToken::TokenHash))
                // All rotations of one login share a family; reuse of a rotated token
                // revokes the family (the token was stolen).
                .col(string(RefreshToken::FamilyId))
                .col(timestamp_with_time_zone(RefreshToken::ExpiresAt))
                .col(timestamp_with_time_zone_null(RefreshToken::UsedAt))
                .col(timestamp_with_time_zone_null(RefreshToken::RevokedAt))
                .col(timestamp_with_time_zone(RefreshToken::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_refresh_token_family")
                .table(RefreshToken::Table)
                .col(RefreshToken::FamilyId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(LoginFailure::Table)
                .col(pk_auto(LoginFailure::Id))
                .col(string(LoginFailure::Username))
                .col(timestamp_with_time_zone(LoginFailure::At))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_login_failure_user_at")
                .table(LoginFailure::Table)
                .col(LoginFailure::Username)
                .col(LoginFailure::At)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TaskDocument::Table)
                .col(string(TaskDocument::Id).primary_key())
                .col(string(TaskDocument::OrganisationId))
                .col(string(TaskDocument::SiteId))
                .col(string(TaskDocument::Kind))
                .col(string(TaskDocument::Status))
                .col(string(TaskDocument::Title))
                // The whole Automerge document (`save()`).
                .col(blob(TaskDocument::Doc))
                // Optimistic concurrency: every write is `WHERE version = read version`,
                // so two server processes never overwrite each other's merge.
                .col(big_integer(TaskDocument::Version))
                .col(boolean(TaskDocument::NeedsProjection).default(false))
                .col(integer(TaskDocument::ScanCount).default(0))
                .col(string(TaskDocument::CreatedBy))
                .col(timestamp_with_time_zone(TaskDocument::CreatedAt))
                .col(timestamp_with_time_zone(TaskDocument::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_task_document_org_site_status")
                .table(TaskDocument::Table)
                .col(TaskDocument::OrganisationId)
                .col(TaskDocument::SiteId)
                .col(TaskDocument::Status)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SyncState::Table)
                .col(string(SyncState::DeviceId))
                .col(string(SyncState::DocumentId))
                .col(blob(SyncState::State))
                .col(timestamp_with_time_zone(SyncState::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(SyncState::DeviceId)
                        .col(SyncState::DocumentId),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SyncRefusal::Table)
                .col(string(SyncRefusal::Id).primary_key())
                .col(string(SyncRefusal::OrganisationId))
                .col(string(SyncRefusal::DocumentId))
                .col(string(SyncRefusal::DeviceId))
                .col(string(SyncRefusal::UserId))
                .col(string(SyncRefusal::Reason))
                .col(text(SyncRefusal::Detail))
                .col(timestamp_with_time_zone(SyncRefusal::At))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sync_refusal_org_at")
                .table(SyncRefusal::Table)
                .col(SyncRefusal::OrganisationId)
                .col(SyncRefusal::At)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SyncRefusal::Table.into_iden(),
            SyncState::Table.into_iden(),
            TaskDocument::Table.into_iden(),
            LoginFailure::Table.into_iden(),
            RefreshToken::Table.into_iden(),
            SigningKey::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SigningKey {
    Table,
    Kid,
    PrivateDer,
    PublicRaw,
    CreatedAt,
    RetiredAt,
}

#[derive(DeriveIden)]
enum RefreshToken {
    Table,
    Id,
    UserId,
    DeviceId,
    TokenHash,
    FamilyId,
    ExpiresAt,
    UsedAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LoginFailure {
    Table,
    Id,
    Username,
    At,
}

#[derive(DeriveIden)]
enum TaskDocument {
    Table,
    Id,
    OrganisationId,
    SiteId,
    Kind,
    Status,
    Title,
    Doc,
    Version,
    NeedsProjection,
    ScanCount,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SyncState {
    Table,
    DeviceId,
    DocumentId,
    State,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SyncRefusal {
    Table,
    Id,
    OrganisationId,
    DocumentId,
    DeviceId,
    UserId,
    Reason,
    Detail,
    At,
}
