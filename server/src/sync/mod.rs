//! Device sync: scanners send Automerge sync messages for their task documents; the
//! server vets every incoming change (device's own actor, device sections only, the
//! token's user) before anything is applied, merges, persists with optimistic
//! concurrency (two server processes on one database never lose an update), and
//! answers with its next message. The wire format is in `docs/sync-protocol.md`.

pub mod projector;
pub mod routes;

use std::sync::Arc;

use automerge::ActorId;
use chrono::Utc;
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, TransactionTrait,
};
use swt_core::doc::{SyncState, TaskDocument, VetError};

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
}

struct Merged {
    saved: Option<Vec<u8>>,
    state: Vec<u8>,
    reply: Option<Vec<u8>>,
    new_scans: usize,
    new_voids: usize,
    scan_count: usize,
}

/// Takes one sync message from a scanner for one document and returns the answer.
pub async fn sync_document(
    db: &DatabaseConnection,
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
    for _ in 0..MAX_ATTEMPTS {
        let row = task_document::Entity::find_by_id(doc_id)
            .filter(task_document::Column::OrganisationId.eq(principal.org_id.as_str()))
            .one(db)
            .await?
            .filter(|r| principal.site_id.as_deref() == Some(r.site_id.as_str()))
            .ok_or_else(|| SyncFailure::NotFound(doc_id.to_owned()))?;
        let stored_state = sync_state::Entity::find_by_id((device_id.clone(), doc_id.to_owned()))
            .one(db)
            .await?
            .map(|s| s.state);

        let merged = {
            let message = Arc::clone(&message);
            let server_actor = server_actor.clone();
            let device_actor = device_actor.clone();
            let user = principal.user_id.clone();
            let doc_bytes = row.doc.clone();
            // Loading and merging are CPU work that grows with the document: keep them
            // off the async workers.
            tokio::task::spawn_blocking(move || {
                merge(
                    &doc_bytes,
                    stored_state.as_deref(),
                    &message,
                    server_actor,
                    &device_actor,
                    &user,
                )
            })
            .await
            .map_err(|e| SyncFailure::Internal(e.to_string()))?
        };
        let merged = match merged {
            Ok(m) => m,
            Err(SyncFailure::Refused { reason, detail }) => {
                record_refusal(db, principal, device_id, doc_id, reason, &detail).await?;
                return Err(SyncFailure::Refused { reason, detail });
            }
            Err(e) => return Err(e),
        };

        let txn = db.begin().await?;
        if let Some(bytes) = merged.saved {
            let updated = task_document::Entity::update_many()
                .col_expr(task_document::Column::Doc, Expr::value(bytes))
                .col_expr(
                    task_document::Column::Version,
                    Expr::col(task_document::Column::Version).add(1),
                )
                .col_expr(task_document::Column::NeedsProjection, Expr::value(true))
                .col_expr(
                    task_document::Column::ScanCount,
                    Expr::value(i32::try_from(merged.scan_count).unwrap_or(i32::MAX)),
                )
                .col_expr(task_document::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(task_document::Column::Id.eq(doc_id))
                .filter(task_document::Column::Version.eq(row.version))
                .exec(&txn)
                .await?;
            if updated.rows_affected != 1 {
                // Another process merged first: start again from its version.
                txn.rollback().await?;
                continue;
            }
        }
        save_state(&txn, device_id, doc_id, merged.state).await?;
        txn.commit().await?;
        return Ok(SyncOutcome {
            reply: merged.reply,
            new_scans: merged.new_scans,
            new_voids: merged.new_voids,
        });
    }
    Err(SyncFailure::Busy)
}

fn merge(
    doc_bytes: &[u8],
    stored_state: Option<&[u8]>,
    message: &[u8],
    server_actor: ActorId,
    device_actor: &ActorId,
    user: &str,
) -> Result<Merged, SyncFailure> {
    let mut doc = TaskDocument::load(doc_bytes, server_actor)
        .map_err(|e| SyncFailure::Internal(format!("stored document does not load: {e}")))?;
    // A state that does not decode only costs a longer exchange.
    let mut state = stored_state
        .and_then(|b| SyncState::decode(b).ok())
        .unwrap_or_default();
    let accepted =
        match swt_core::doc::vet_and_apply(&mut doc, &mut state, message, device_actor, user) {
            Ok(a) => a,
            Err(VetError::Malformed(e)) => return Err(SyncFailure::Malformed(e.to_string())),
            Err(VetError::Refused(r)) => {
                return Err(SyncFailure::Refused {
                    reason: r.reason.code(),
                    detail: format!("{} (change {})", r.detail, r.change),
                });
            }
            Err(e @ VetError::Merge(_)) => return Err(SyncFailure::Internal(e.to_string())),
        };
    let saved = (accepted.changes > 0).then(|| doc.save());
    let reply = doc.generate_sync_message(&mut state);
    Ok(Merged {
        saved,
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

async fn record_refusal(
    db: &DatabaseConnection,
    principal: &Principal,
    device_id: &str,
    doc_id: &str,
    reason: &str,
    detail: &str,
) -> Result<(), DbErr> {
    tracing::warn!(document = %doc_id, device = %device_id, user = %principal.user_id, %reason, %detail, "sync message refused");
    sync_refusal::Entity::insert(sync_refusal::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        organisation_id: Set(principal.org_id.clone()),
        document_id: Set(doc_id.to_owned()),
        device_id: Set(device_id.to_owned()),
        user_id: Set(principal.user_id.clone()),
        reason: Set(reason.to_owned()),
        detail: Set(detail.to_owned()),
        at: Set(Utc::now()),
    })
    .exec(db)
    .await?;
    Ok(())
}
