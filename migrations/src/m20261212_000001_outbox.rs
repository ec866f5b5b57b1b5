//! ERP results out (issue #24, "work out"):
//! - `outbox_event`: every business outcome (task completed, exception opened or
//!   resolved, pack quarantined, return verified), written in the transaction of the state
//!   that caused it. `id` orders inserts; `seq` is the delivery order, given by one
//!   sequencer after commit (see `server/src/outbox`), so a reader following `seq` never
//!   skips a row that committed late.
//! - `outbox_sequence`: the sequencer's one row, locked while it numbers events.
//! - `webhook_subscription`: where an organisation's outcomes are pushed, with the
//!   per-subscription signing secret, the last sequence delivered, and the retry state
//!   (`active`, `retrying`, `dead`).
//! - `task_document.completion_event`: the outbox event a closed task's completion was
//!   reported as, so it is reported once (`ended-before-outbox` for tasks that ended
//!   before this migration: not reported).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(OutboxEvent::Table)
                .col(big_pk_auto(OutboxEvent::Id))
                .col(string_uniq(OutboxEvent::EventId))
                .col(string(OutboxEvent::OrganisationId))
                .col(string_len(OutboxEvent::Kind, 32))
                // The order events of one stream (a task) are delivered in.
                .col(string(OutboxEvent::Stream))
                .col(big_integer_null(OutboxEvent::Seq))
                .col(big_integer(OutboxEvent::OccurredAtMs))
                .col(big_integer_null(OutboxEvent::SequencedAtMs))
                .col(text(OutboxEvent::Payload))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_outbox_event_seq")
                .table(OutboxEvent::Table)
                .col(OutboxEvent::Seq)
                .unique()
                .to_owned(),
        )
        .await?;
        // The change feed and each subscription read an organisation's events by `seq`.
        m.create_index(
            Index::create()
                .name("ix_outbox_event_org_seq")
                .table(OutboxEvent::Table)
                .col(OutboxEvent::OrganisationId)
                .col(OutboxEvent::Seq)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(OutboxSequence::Table)
                .col(integer(OutboxSequence::Id).primary_key())
                .col(big_integer(OutboxSequence::LastSeq))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(OutboxSequence::Table)
                .columns([OutboxSequence::Id, OutboxSequence::LastSeq])
                .values_panic([1.into(), 0i64.into()])
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WebhookSubscription::Table)
                .col(string(WebhookSubscription::Id).primary_key())
                .col(string(WebhookSubscription::OrganisationId))
                .col(string(WebhookSubscription::Url))
                .col(string(WebhookSubscription::Secret))
                // Comma-separated event kinds; empty for every kind.
                .col(string(WebhookSubscription::Kinds))
                .col(string_len(WebhookSubscription::State, 16))
                .col(big_integer(WebhookSubscription::DeliveredSeq))
                .col(integer(WebhookSubscription::Attempts))
                .col(big_integer(WebhookSubscription::NextAttemptAtMs))
                .col(big_integer(WebhookSubscription::LeaseUntilMs))
                .col(text_null(WebhookSubscription::LastError))
                .col(big_integer_null(WebhookSubscription::LastAttemptAtMs))
                .col(big_integer_null(WebhookSubscription::LastDeliveredAtMs))
                .col(string(WebhookSubscription::CreatedBy))
                .col(big_integer(WebhookSubscription::CreatedAtMs))
                .col(big_integer_null(WebhookSubscription::RemovedAtMs))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(TaskDocument::Table)
                .add_column(string_null(TaskDocument::CompletionEvent))
                .to_owned(),
        )
        .await?;
        // Tasks that ended before there was an outbox are not reported now: an ERP
        // subscribing after an upgrade would otherwise receive years of completions.
        m.exec_stmt(
            Query::update()
                .table(TaskDocument::Table)
                .value(TaskDocument::CompletionEvent, "ended-before-outbox")
                .and_where(Expr::col(TaskDocument::Status).is_in(["closed", "cancelled"]))
                .to_owned(),
        )
        .await?;
        // The outbox worker's look for ended tasks not reported yet: a seek, not a scan.
        m.create_index(
            Index::create()
                .name("ix_task_document_completion")
                .table(TaskDocument::Table)
                .col(TaskDocument::Status)
                .col(TaskDocument::CompletionEvent)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_task_document_completion")
                .table(TaskDocument::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(TaskDocument::Table)
                .drop_column(TaskDocument::CompletionEvent)
                .to_owned(),
        )
        .await?;
        for table in [
            WebhookSubscription::Table.into_iden(),
            OutboxSequence::Table.into_iden(),
            OutboxEvent::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum OutboxEvent {
    Table,
    Id,
    EventId,
    OrganisationId,
    Kind,
    Stream,
    Seq,
    OccurredAtMs,
    SequencedAtMs,
    Payload,
}

#[derive(DeriveIden)]
enum OutboxSequence {
    Table,
    Id,
    LastSeq,
}

#[derive(DeriveIden)]
enum WebhookSubscription {
    Table,
    Id,
    OrganisationId,
    Url,
    Secret,
    Kinds,
    State,
    DeliveredSeq,
    Attempts,
    NextAttemptAtMs,
    LeaseUntilMs,
    LastError,
    LastAttemptAtMs,
    LastDeliveredAtMs,
    CreatedBy,
    CreatedAtMs,
    RemovedAtMs,
}

#[derive(DeriveIden)]
enum TaskDocument {
    Table,
    Status,
    CompletionEvent,
}
