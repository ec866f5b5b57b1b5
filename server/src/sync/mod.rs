//! Device sync: scanners send Automerge sync messages for their task documents; the
//! server vets every incoming change (device's own actor, device sections only, the
//! token's user) before anything is applied, merges, persists the new changes with
//! optimistic concurrency (two server processes on one database never lose an update;
//! storage and the per-process document cache are in [`documents`]), and answers with
//! its next message. The wire format is in `docs/sync-protocol.md`.

pub mod routes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::ActorId;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use swt_domain::doc::{Caller, RefusalReason, SyncState, TaskDocument, VetError};

use crate::tasks::documents::{self, DocumentCache};

use crate::auth::Principal;
use crate::db::entity::{sync_refusal, sync_state, task_document};

/// How often a merge is retried when another process saved the document in between.
const MAX_ATTEMPTS: usize = 8;

/// Why a sync message was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    /// The token is not a scanner session (no device).
    #[error("sync needs a scanner session: sign in with a registered device")]
    NotDevice,
    /// No such document for this caller.
    #[error("task document {0} not found")]
    NotFound(String),
    /// Not a valid sync message.
    #[error("malformed sync message: {0}")]
    Malformed(String),
    /// Refused by the vetting rules; nothing applied.
    #[error("sync message refused ({reason}): {detail}")]
    Refused {
        /// Machine-readable reason (`foreign_actor`, `server_section`, `wrong_user`, …).
        reason: &'static str,
        /// What was wrong, for people.
        detail: String,
        /// Hash of the offending change (hex).
        change: String,
    },
    /// Too much concurrent change; the device should retry.
    #[error("the document is busy; retry")]
    Busy,
    /// The stored document or a merge failed.
    #[error("sync failed: {0}")]
    Internal(String),
    /// Database error.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// What one sync exchange did.
#[derive(Debug, Default)]
pub struct SyncOutcome {
    /// The server's next message, or `None` when in sync.
    pub reply: Option<Vec<u8>>,
    /// Scans that arrived with this message.
    pub new_scans: usize,
    /// Voids that arrived with this message.
    pub new_voids: usize,
    /// Where the exchange's time went.
    pub timings: SyncTimings,
}

/// Where one sync exchange's time went on the server, phase by phase (a retried write
/// counts every attempt), so the next bottleneck of a fleet shows in `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncTimings {
    /// Waiting for this process's other requests on the same document.
    pub lock_wait: Duration,
    /// Reading the document's head and sync state, and the document unless cached.
    pub load: Duration,
    /// Vetting and merging the message and generating the reply.
    pub merge: Duration,
    /// Waiting for the write turn, writing the changes and sync state, committing.
    pub write: Duration,
    /// Whole documents read and parsed from the database (the cache did not hold the
    /// current version): a fleet's rounds should find their documents cached.
    pub document_loads: u32,
    /// Whole documents saved (a compaction of the appended changes).
    pub snapshots: u32,
}

struct Merged {
    persist: Option<documents::Persist>,
    state: Vec<u8>,
    reply: Option<Vec<u8>>,
    new_scans: usize,
    new_voids: usize,
    scan_count: usize,
}

/// Takes one sync message from a scanner for one document and returns the answer.
pub async fn sync_document(
    db: &DatabaseConnection,
    docs: &DocumentCache,
    server_actor: &ActorId,
    principal: &Principal,
    doc_id: &str,
    message: Vec<u8>,
) -> Result<SyncOutcome, SyncFailure> {
    let (Some(device_id), Some(actor_hex)) = (&principal.device_id, &principal.actor_id) else {
        return Err(SyncFailure::NotDevice);
    };
    let device_actor = hex::decode(actor_hex)
        .map(|b| ActorId::from(b.as_slice()))
        .map_err(|_| SyncFailure::NotDevice)?;
    let message = Arc::new(message);
    let not_found = || SyncFailure::NotFound(doc_id.to_owned());
    // Requests of this process on this document take turns (see `documents`).
    let waited = std::time::Instant::now();
    let total = waited;
    let mut lock = docs.lock(doc_id).await;
    let waited = waited.elapsed();
    let mut timings = SyncTimings {
        lock_wait: waited,
        ..Default::default()
    };
    for _ in 0..MAX_ATTEMPTS {
        let phase = Instant::now();
        let head = documents::head(db, doc_id)
            .await?
            .filter(|h| {
                h.organisation_id == principal.org_id
                    && principal.site_id.as_deref() == Some(h.site_id.as_str())
            })
            .ok_or_else(not_found)?;
        let stored_state = sync_state::Entity::find_by_id((device_id.clone(), doc_id.to_owned()))
            .one(db)
            .await?
            .map(|s| s.state);
        if lock.kept_version() != Some(head.version) {
            timings.document_loads += 1;
        }
        let (stored, doc) = lock
            .get(db, doc_id, head.version, server_actor)
            .await
            .map_err(|e| match e {
                documents::DocumentError::Db(e) => SyncFailure::Db(e),
                documents::DocumentError::Busy(_) => SyncFailure::Busy,
                e => SyncFailure::Internal(e.to_string()),
            })?
            .ok_or_else(not_found)?;
        timings.load += phase.elapsed();

        let phase = Instant::now();
        let (doc, merged) = {
            let message = Arc::clone(&message);
            let device_actor = device_actor.clone();
            let user = principal.user_id.clone();
            let device = device_id.clone();
            let stored_state = stored_state.clone();
            // Vetting and merging are CPU work that grows with the message and the
            // document: keep them off the async workers.
            tokio::task::spawn_blocking(move || {
                let mut doc = doc;
                let merged = merge(
                    &mut doc,
                    stored,
                    stored_state.as_deref(),
                    &message,
                    Caller {
                        actor: &device_actor,
                        user: &user,
                        device: &device,
                    },
                );
                (doc, merged)
            })
            .await
            .map_err(|e| SyncFailure::Internal(e.to_string()))?
        };
        timings.merge += phase.elapsed();
        let merged = match merged {
            Ok(m) => m,
            Err(e) => {
                // A refused or malformed message left the document as it was.
                let full = matches!(&e, SyncFailure::Refused { reason, .. }
                    if *reason == RefusalReason::DocumentFull.code())
                .then(|| (doc.header(), doc.expected()));
                if matches!(e, SyncFailure::Refused { .. } | SyncFailure::Malformed(_)) {
                    lock.keep(stored, doc);
                }
                drop(lock);
                if let Some((Ok(header), Ok(expected))) = full {
                    // Normally made when the document crossed the threshold; this covers
                    // a crash in between.
                    follow_on_task(db, docs, server_actor, doc_id, &header, &expected).await;
                }
                if let SyncFailure::Refused {
                    reason,
                    detail,
                    change,
                } = e
                {
                    record_refusal(db, principal, device_id, doc_id, reason, &detail, &change)
                        .await?;
                    return Err(SyncFailure::Refused {
                        reason,
                        detail,
                        change,
                    });
                }
                return Err(e);
            }
        };

        let Some(persist) = merged.persist else {
            // Nothing merged: only the sync state may have moved, and an exchange between
            // peers already in step does not even change that.
            let phase = Instant::now();
            if stored_state.as_deref() != Some(merged.state.as_slice()) {
                save_state(db, device_id, doc_id, merged.state).await?;
            }
            timings.write += phase.elapsed();
            lock.keep(stored, doc);
            return Ok(SyncOutcome {
                reply: merged.reply,
                new_scans: 0,
                new_voids: 0,
                timings,
            });
        };
        let write_started = Instant::now();
        let turn = crate::db::Policy::of(db)
            .write_turn(crate::db::Writer::Sync)
            .await;
        let txn = db.begin().await?;
        let scan_count = i32::try_from(merged.scan_count).unwrap_or(i32::MAX);
        if matches!(persist, documents::Persist::Snapshot(_)) {
            timings.snapshots += 1;
        }
        let written = documents::write(&txn, doc_id, stored, persist, |u| {
            u.col_expr(task_document::Column::NeedsProjection, Expr::value(true))
                .col_expr(task_document::Column::ScanCount, Expr::value(scan_count))
        })
        .await?;
        let Some(now_stored) = written else {
            // Another process merged first: start again from its version.
            txn.rollback().await?;
            timings.write += write_started.elapsed();
            continue;
        };
        save_state(&txn, device_id, doc_id, merged.state).await?;
        let commit = Instant::now();
        txn.commit().await?;
        drop(turn);
        timings.write += write_started.elapsed();
        let crossed = merged.scan_count >= crate::tasks::FOLLOW_ON_AT
            && merged.scan_count - merged.new_scans < crate::tasks::FOLLOW_ON_AT;
        let follow_on = crossed.then(|| (doc.header(), doc.expected()));
        lock.keep(now_stored, doc);
        // The follow-on writes into this document too: let go of it first.
        drop(lock);
        if let Some((Ok(header), Ok(expected))) = follow_on {
            follow_on_task(db, docs, server_actor, doc_id, &header, &expected).await;
        }
        tracing::debug!(
            document = doc_id,
            lock_wait_ms = waited.as_millis() as u64,
            commit_ms = commit.elapsed().as_millis() as u64,
            write_ms = write_started.elapsed().as_millis() as u64,
            total_ms = total.elapsed().as_millis() as u64,
            "sync timing"
        );
        return Ok(SyncOutcome {
            reply: merged.reply,
            new_scans: merged.new_scans,
            new_voids: merged.new_voids,
            timings,
        });
    }
    Err(SyncFailure::Busy)
}

fn merge(
    doc: &mut TaskDocument,
    stored: documents::Stored,
    stored_state: Option<&[u8]>,
    message: &[u8],
    caller: Caller<'_>,
) -> Result<Merged, SyncFailure> {
    // A state that does not decode only costs a longer exchange.
    let mut state = stored_state
        .and_then(|b| SyncState::decode(b).ok())
        .unwrap_or_default();
    let before = doc.heads();
    let accepted = match swt_domain::doc::vet_and_apply(doc, &mut state, message, caller) {
        Ok(a) => a,
        Err(VetError::Malformed(e)) => return Err(SyncFailure::Malformed(e.to_string())),
        Err(VetError::Refused(r)) => {
            return Err(SyncFailure::Refused {
                reason: r.reason.code(),
                detail: format!("{} (change {})", r.detail, r.change),
                change: r.change,
            });
        }
        Err(e @ VetError::Merge(_)) => return Err(SyncFailure::Internal(e.to_string())),
    };
    let persist = (accepted.changes > 0).then(|| documents::Persist::of(doc, &before, stored));
    let reply = doc.generate_sync_message(&mut state);
    Ok(Merged {
        persist,
        state: state.encode(),
        reply,
        new_scans: accepted.new_scans.len(),
        new_voids: accepted.new_voids.len(),
        scan_count: doc.scan_count(),
    })
}

async fn save_state<C: ConnectionTrait>(
    db: &C,
    device_id: &str,
    doc_id: &str,
    state: Vec<u8>,
) -> Result<(), DbErr> {
    sync_state::Entity::insert(sync_state::ActiveModel {
        device_id: Set(device_id.to_owned()),
        document_id: Set(doc_id.to_owned()),
        state: Set(state),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([sync_state::Column::DeviceId, sync_state::Column::DocumentId])
            .update_columns([sync_state::Column::State, sync_state::Column::UpdatedAt])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// Makes sure a nearly full task has its follow-on; a failure is logged, not the sync's.
async fn follow_on_task(
    db: &DatabaseConnection,
    docs: &DocumentCache,
    server_actor: &ActorId,
    doc_id: &str,
    header: &swt_domain::doc::Header,
    expected: &swt_domain::doc::Expected,
) {
    let full = match task_document::Entity::find_by_id(doc_id).one(db).await {
        Ok(Some(m)) => m,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(document = doc_id, error = %e, "follow-on task not created");
            return;
        }
    };
    match crate::tasks::ensure_follow_on(db, docs, server_actor, &full, header, expected).await {
        Ok(true) => tracing::info!(document = doc_id, "follow-on task created"),
        Ok(false) => {}
        Err(e) => tracing::error!(document = doc_id, error = %e, "follow-on task not created"),
    }
}

/// Records a refusal once per (device, document, reason, change): a client retrying the
/// same refused message in a loop bumps `occurrences` and `last_at` instead of adding rows.
async fn record_refusal(
    db: &DatabaseConnection,
    principal: &Principal,
    device_id: &str,
    doc_id: &str,
    reason: &str,
    detail: &str,
    change: &str,
) -> Result<(), DbErr> {
    tracing::warn!(document = %doc_id, device = %device_id, user = %principal.user_id, %reason, %detail, "sync message refused");
    let now = Utc::now();
    sync_refusal::Entity::insert(sync_refusal::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        organisation_id: Set(principal.org_id.clone()),
        document_id: Set(doc_id.to_owned()),
        device_id: Set(device_id.to_owned()),
        user_id: Set(principal.user_id.clone()),
        reason: Set(reason.to_owned()),
        detail: Set(detail.to_owned()),
        at: Set(now),
        change_hash: Set(change.to_owned()),
        occurrences: Set(1),
        last_at: Set(Some(now)),
    })
    .on_conflict(
        OnConflict::columns([
            sync_refusal::Column::DeviceId,
            sync_refusal::Column::DocumentId,
            sync_refusal::Column::Reason,
            sync_refusal::Column::ChangeHash,
        ])
        .value(
            sync_refusal::Column::Occurrences,
            Expr::col((sync_refusal::Entity, sync_refusal::Column::Occurrences)).add(1),
        )
        .value(sync_refusal::Column::LastAt, Expr::value(now))
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// An organisation's refused changes, newest first: `limit` of them with ids before
/// `before` (ids are UUIDv7, so id order is time order).
pub async fn refusals(
    db: &DatabaseConnection,
    org: &str,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<sync_refusal::Model>, DbErr> {
    let mut sel = sync_refusal::Entity::find().filter(sync_refusal::Column::OrganisationId.eq(org));
    if let Some(last) = before {
        sel = sel.filter(sync_refusal::Column::Id.lt(last));
    }
    sel.order_by_desc(sync_refusal::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
