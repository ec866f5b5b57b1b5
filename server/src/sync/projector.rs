//! The projector: turns merged scans into EPCIS events, stock state and exceptions
//! (`crate::projection`, exactly once), then writes each scan's outcome back into its
//! task document so scanners see it after their next sync.
//!
//! It runs beside the HTTP server, woken after every merge that brought scans or voids
//! and every few seconds for documents left half-done (a crash, another process). Sync
//! answers do not wait for it: a sync round stays fast however much projection costs.

use std::sync::Arc;
use std::time::Duration;

use automerge::ActorId;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, ExprTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use swt_core::doc::TaskDocument;
use tokio::sync::Notify;

use crate::db::entity::task_document;
use crate::projection::{self, ProjectionError};

/// How often the projector looks for unfinished documents when nobody wakes it.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Documents taken per sweep.
const SWEEP_BATCH: u64 = 64;
/// Retries when a document changes under the write-back.
const MAX_ATTEMPTS: usize = 8;

/// Why projecting one document failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The projection failed.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The stored document does not load or the write-back failed.
    #[error("document {0}: {1}")]
    Document(String, String),
    /// Database error.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// What one document's projection did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Scans projected now.
    pub projected: usize,
    /// Scan results written back into the document.
    pub written_back: usize,
}

/// Projects one document and writes the outcomes back, unless nothing is pending.
pub async fn project_one(
    db: &DatabaseConnection,
    actor: &ActorId,
    doc_id: &str,
) -> Result<Done, ProjectorError> {
    let mut done = Done::default();
    for _ in 0..MAX_ATTEMPTS {
        let Some(row) = task_document::Entity::find_by_id(doc_id).one(db).await? else {
            return Ok(done);
        };
        if !row.needs_projection {
            return Ok(done);
        }
        let bytes = row.doc.clone();
        let actor = actor.clone();
        let id = row.id.clone();
        let doc = tokio::task::spawn_blocking(move || TaskDocument::load(&bytes, actor))
            .await
            .map_err(|e| ProjectorError::Document(id.clone(), e.to_string()))?
            .map_err(|e| ProjectorError::Document(row.id.clone(), e.to_string()))?;
        let report = projection::project_document(db, &row.organisation_id, &row.id, &doc).await?;
        done.projected += report.newly_projected;

        let (changed, saved) = tokio::task::spawn_blocking(move || {
            let mut doc = doc;
            let changed = report.write_back(&mut doc).map_err(|e| e.to_string())?;
            if changed == 0 {
                return Ok::<_, String>((0, None));
            }
            doc.commit(Utc::now().timestamp());
            Ok((changed, Some(doc.save())))
        })
        .await
        .map_err(|e| ProjectorError::Document(row.id.clone(), e.to_string()))?
        .map_err(|e| ProjectorError::Document(row.id.clone(), e))?;

        let mut update = task_document::Entity::update_many()
            .col_expr(task_document::Column::NeedsProjection, Expr::value(false))
            .filter(task_document::Column::Id.eq(row.id.as_str()))
            .filter(task_document::Column::Version.eq(row.version));
        if let Some(bytes) = saved {
            update = update
                .col_expr(task_document::Column::Doc, Expr::value(bytes))
                .col_expr(
                    task_document::Column::Version,
                    Expr::col(task_document::Column::Version).add(1),
                )
                .col_expr(task_document::Column::UpdatedAt, Expr::value(Utc::now()));
        }
        if update.exec(db).await?.rows_affected == 1 {
            done.written_back += changed;
            return Ok(done);
        }
        // A scanner merged in between: project again on its version (the projection is
        // idempotent, so only the new scans cost anything).
    }
    Ok(done)
}

/// The ids of documents with merged scans not yet projected.
pub async fn pending(db: &DatabaseConnection, limit: u64) -> Result<Vec<String>, DbErr> {
    task_document::Entity::find()
        .select_only()
        .column(task_document::Column::Id)
        .filter(task_document::Column::NeedsProjection.eq(true))
        .order_by_asc(task_document::Column::UpdatedAt)
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await
}

/// Runs until `stop` is notified: projects whatever is pending, then sleeps until woken
/// by a merge or the sweep interval passes.
pub async fn run(
    db: DatabaseConnection,
    actor: Arc<ActorId>,
    wake: Arc<Notify>,
    stop: Arc<Notify>,
) {
    loop {
        match pending(&db, SWEEP_BATCH).await {
            Ok(ids) => {
                for id in ids {
                    match project_one(&db, &actor, &id).await {
                        Ok(done) if done.projected > 0 || done.written_back > 0 => {
                            tracing::debug!(document = %id, projected = done.projected, written_back = done.written_back, "projected");
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(document = %id, error = %e, "projection failed; will retry")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list documents to project; will retry"),
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = stop.notified() => return,
        }
    }
}
