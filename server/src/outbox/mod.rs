//! Business outcomes out to ERPs (issue #24, "results out"): the transactional outbox, its
//! sequencer, and the change feed read from it. Webhook delivery is [`webhooks`].
//!
//! # One outcome, one row, in the transaction that caused it
//! Whoever changes business state (the projection opening an exception or quarantining
//! a pack, the projection worker finishing a closed task, a manager resolving an
//! exception, a returns decision) calls [`record`] with its own transaction: the outcome
//! exists if and only if the state does. Nothing is sent from inside a transaction.
//!
//! # Delivery order: `seq`, given after commit
//! Insert ids are not a safe cursor on PostgreSQL: a transaction can take id 5, another
//! id 6 and commit first; a reader that saw 6 and moved on would never see 5. So rows are
//! inserted without a `seq`, and one sequencer ([`sequence`], under the lock of the
//! `outbox_sequence` row) numbers the committed ones in id order. A reader that follows
//! `seq` (the change feed, each webhook subscription) therefore never skips a row. Events
//! of one task are numbered in the order they happened: the writers of a task's outcomes
//! (its projection, its completion, a decision on its scan) hold the task's locks until
//! they commit, so a later outcome of the task is inserted, and numbered, after the
//! earlier one committed.

pub mod completion;
pub mod routes;
pub mod webhooks;

use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::entity::{outbox_event, outbox_sequence};

swt_domain::code_table! {
    /// What happened. The names are the `type` of an event, stable for integrators.
    pub enum OutcomeKind {
        /// A task was closed: what was received, picked or shipped, with quantities,
        /// lots and serials (reported once all its synced scans are projected).
        TaskCompleted = "task.completed",
        /// A task was cancelled: the scans it had, for the record.
        TaskCancelled = "task.cancelled",
        /// The projection opened an exception for a manager.
        ExceptionOpened = "exception.opened",
        /// A manager resolved an exception.
        ExceptionResolved = "exception.resolved",
        /// A pack or container was put in quarantine (a quarantine scan, or a returned
        /// pack that was not verified).
        PackQuarantined = "pack.quarantined",
        /// A returned pack's verification was decided and applied.
        ReturnVerified = "return.verified",
    }
    /// The stable name.
    fn as_str;
}

/// One outcome to record: its kind, the stream it is ordered in (a task id; or another
/// stable key for outcomes of no task) and its data (the event's `data` member).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// What happened.
    pub kind: OutcomeKind,
    /// Events of one stream are delivered in the order they were recorded.
    pub stream: String,
    /// The event's `data`: see the JSON Schemas in `docs/schemas/webhooks/`.
    pub data: serde_json::Value,
}

/// Writes `outcomes` into the outbox with the caller's transaction; returns their event
/// ids.
pub async fn record<C: ConnectionTrait>(
    txn: &C,
    org: &str,
    outcomes: Vec<Outcome>,
    now_ms: i64,
) -> Result<Vec<String>, DbErr> {
    if outcomes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = outcomes
        .iter()
        .map(|_| format!("evt_{}", uuid::Uuid::new_v4().simple()))
        .collect();
    let rows = outcomes
        .into_iter()
        .zip(&ids)
        .map(|(o, id)| outbox_event::ActiveModel {
            event_id: Set(id.clone()),
            organisation_id: Set(org.to_owned()),
            kind: Set(o.kind.as_str().to_owned()),
            stream: Set(o.stream),
            seq: Set(None),
            occurred_at_ms: Set(now_ms),
            sequenced_at_ms: Set(None),
            payload: Set(o.data.to_string()),
            ..Default::default()
        });
    outbox_event::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await?;
    Ok(ids)
}

/// [`record`] for one outcome; returns its event id.
pub async fn record_one<C: ConnectionTrait>(
    txn: &C,
    org: &str,
    outcome: Outcome,
    now_ms: i64,
) -> Result<String, DbErr> {
    let mut ids = record(txn, org, vec![outcome], now_ms).await?;
    ids.pop()
        .ok_or_else(|| DbErr::Custom("the outbox recorded nothing".to_owned()))
}

/// Most rows numbered in one sequencer transaction.
const SEQUENCE_BATCH: u64 = 2_000;

/// Numbers committed, unnumbered outbox rows in insert order; returns how many. Safe to
/// run from several processes at once: the `outbox_sequence` row is locked (PostgreSQL)
/// or the write lock held (SQLite) while numbering.
pub async fn sequence(db: &DatabaseConnection) -> Result<usize, DbErr> {
    let policy = crate::db::Policy::of(db);
    let waiting = outbox_event::Entity::find()
        .select_only()
        .column(outbox_event::Column::Id)
        .filter(outbox_event::Column::Seq.is_null())
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    if waiting.is_none() {
        return Ok(0);
    }
    let _turn = policy.write_turn(crate::db::Writer::Background).await;
    let txn = db
        .begin_with_options(crate::projection::write_txn_options())
        .await?;
    let mut last = outbox_sequence::Entity::find_by_id(1);
    if policy.locks_rows() {
        last = last.lock(LockType::Update);
    }
    let Some(last) = last.one(&txn).await? else {
        txn.rollback().await?;
        return Err(DbErr::RecordNotFound("outbox_sequence row 1".to_owned()));
    };
    let ids: Vec<i64> = outbox_event::Entity::find()
        .select_only()
        .column(outbox_event::Column::Id)
        .filter(outbox_event::Column::Seq.is_null())
        .order_by_asc(outbox_event::Column::Id)
        .limit(SEQUENCE_BATCH)
        .into_tuple()
        .all(&txn)
        .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut next = last.last_seq;
    for chunk in ids.chunks(500) {
        let first = next + 1;
        // seq = first + (the row's place in the chunk), as one statement.
        let mut case = Expr::case(outbox_event::Column::Id.eq(chunk[0]), first);
        for (i, id) in chunk.iter().enumerate().skip(1) {
            case = case.case(
                outbox_event::Column::Id.eq(*id),
                first + i64::try_from(i).unwrap_or(i64::MAX),
            );
        }
        outbox_event::Entity::update_many()
            .col_expr(outbox_event::Column::Seq, case.into())
            .col_expr(outbox_event::Column::SequencedAtMs, Expr::value(now))
            .filter(outbox_event::Column::Id.is_in(chunk.to_vec()))
            .exec(&txn)
            .await?;
        next += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
    }
    outbox_sequence::Entity::update_many()
        .col_expr(outbox_sequence::Column::LastSeq, Expr::value(next))
        .filter(outbox_sequence::Column::Id.eq(1))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(ids.len())
}

/// The highest sequence number given so far.
pub async fn last_seq<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    Ok(outbox_sequence::Entity::find_by_id(1)
        .one(db)
        .await?
        .map_or(0, |r| r.last_seq))
}

/// One outcome as integrators receive it, in a webhook delivery or the change feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutboxEvent {
    /// Unique id (`evt_…`): the same outcome delivered twice has the same id.
    pub id: String,
    /// What happened: `task.completed`, `task.cancelled`, `exception.opened`,
    /// `exception.resolved`, `pack.quarantined`, `return.verified`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Position in the organisation's outcomes: increasing, the change feed's cursor.
    pub seq: i64,
    /// When swt recorded it (RFC 3339, UTC).
    pub occurred_at: String,
    /// The task (or other stream) it belongs to; events of one stream come in order.
    pub stream: String,
    /// What happened, by `type`: see `docs/schemas/webhooks/`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl OutboxEvent {
    fn of(row: outbox_event::Model) -> Self {
        let data = serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null);
        Self {
            id: row.event_id,
            kind: row.kind,
            seq: row.seq.unwrap_or(0),
            occurred_at: crate::epcis::format_time_ms(row.occurred_at_ms),
            stream: row.stream,
            data,
        }
    }
}

/// Up to `limit` numbered events of `org` after `after`, in order, with the `seq` of the
/// last row read (which may be past the last event returned when `kinds` filtered some
/// out: a reader resumes from there).
pub async fn read<C: ConnectionTrait>(
    db: &C,
    org: &str,
    after: i64,
    limit: u64,
    kinds: &[OutcomeKind],
) -> Result<(Vec<OutboxEvent>, i64), DbErr> {
    let rows = outbox_event::Entity::find()
        .filter(outbox_event::Column::OrganisationId.eq(org))
        .filter(outbox_event::Column::Seq.gt(after))
        .order_by_asc(outbox_event::Column::Seq)
        .limit(limit)
        .all(db)
        .await?;
    let last = rows.last().and_then(|r| r.seq).unwrap_or(after);
    let events = rows
        .into_iter()
        .filter(|r| kinds.is_empty() || kinds.iter().any(|k| k.as_str() == r.kind))
        .map(OutboxEvent::of)
        .collect();
    Ok((events, last))
}

/// The organisation's `n` newest numbered events, newest first.
pub async fn newest<C: ConnectionTrait>(
    db: &C,
    org: &str,
    n: u64,
) -> Result<Vec<OutboxEvent>, DbErr> {
    Ok(outbox_event::Entity::find()
        .filter(outbox_event::Column::OrganisationId.eq(org))
        .filter(outbox_event::Column::Seq.is_not_null())
        .order_by_desc(outbox_event::Column::Seq)
        .limit(n)
        .all(db)
        .await?
        .into_iter()
        .map(OutboxEvent::of)
        .collect())
}

/// Parses a comma-separated list of event types; empty means every type.
pub fn parse_kinds(list: &str) -> Result<Vec<OutcomeKind>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            OutcomeKind::parse(k).ok_or_else(|| {
                format!(
                    "unknown event type {k:?}: expected {}",
                    OutcomeKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        })
        .collect()
}
