//! Incremental document persistence: a merge appends its new Automerge changes to
//! `task_document_change` instead of re-saving the whole document; every so often the
//! whole document is saved again (`task_document.doc`, at `snapshot_version`) and the
//! changes it now contains are deleted. A document is its snapshot followed by the
//! changes with `snapshot_version < version <= task_document.version`, exactly one row
//! per version, so a reader can tell when a compaction raced it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(TaskDocument::Table)
                .add_column(big_integer(TaskDocument::SnapshotVersion).default(0))
                .to_owned(),
        )
        .await?;
        // Every existing document is whole in `doc`.
        m.exec_stmt(
            Query::update()
                .table(TaskDocument::Table)
                .value(
                    TaskDocument::SnapshotVersion,
                    Expr::col(TaskDocument::Version),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TaskDocumentChange::Table)
                .col(string(TaskDocumentChange::DocumentId))
                // The document version this write produced.
                .col(big_integer(TaskDocumentChange::Version))
                // `save_after(heads before the write)`: the write's new changes.
                .col(blob(TaskDocumentChange::Changes))
                .primary_key(
                    Index::create()
                        .col(TaskDocumentChange::DocumentId)
                        .col(TaskDocumentChange::Version),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(TaskDocumentChange::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(TaskDocument::Table)
                .drop_column(TaskDocument::SnapshotVersion)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum TaskDocument {
    Table,
    Version,
    SnapshotVersion,
}

#[derive(DeriveIden)]
enum TaskDocumentChange {
    Table,
    DocumentId,
    Version,
    Changes,
}
