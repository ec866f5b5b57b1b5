//! Binds each returns verification to the scan it verified (issue #19): a verdict asked
//! for online is applied only once the projection has seen the synced scan and found the
//! same device, user, task and identifiers (`bound_at_ms`); when they differ the old
//! verdict is kept for the investigation (`mismatch`, JSON) and the scan is verified
//! afresh.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Decisions already applied were applied to their scans: they count as bound.
const BIND_APPLIED: &str =
    "UPDATE return_verification SET bound_at_ms = applied_at_ms WHERE applied_at_ms IS NOT NULL";

/// Documents with a decision not yet applied are projected again, so the projection
/// checks those records against their synced scans (nothing else would).
const REPROJECT_UNAPPLIED: &str = "UPDATE task_document SET needs_projection = TRUE WHERE id IN \
    (SELECT document_id FROM return_verification WHERE applied_at_ms IS NULL)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        m.alter_table(
            Table::alter()
                .table(ReturnVerification::Table)
                .add_column(big_integer_null(ReturnVerification::BoundAtMs))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ReturnVerification::Table)
                .add_column(text_null(ReturnVerification::Mismatch))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        db.execute_unprepared(BIND_APPLIED).await?;
        db.execute_unprepared(REPROJECT_UNAPPLIED).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [ReturnVerification::Mismatch, ReturnVerification::BoundAtMs] {
            m.alter_table(
                Table::alter()
                    .table(ReturnVerification::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ReturnVerification {
    Table,
    BoundAtMs,
    Mismatch,
}
