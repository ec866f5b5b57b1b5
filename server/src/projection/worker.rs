//! The projector: turns merged scans into EPCIS events, stock state and exceptions
//! (`crate::projection`, exactly once), then writes each scan's outcome back into its
//! task document so scanners see it after their next sync.
//!
//! It runs beside the HTTP server, woken after every merge that brought scans or voids
//! and every few seconds for documents left half-done (a crash, another process). Sync
//! answers do not wait for it: a sync round stays fast however much projection costs.

use std::sync::Arc;
use std::time::Duration;

use crate::reference::cache::ReferenceCache;
use automerge::ActorId;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use tokio::sync::Notify;

use crate::db::entity::task_document;
use crate::projection::{self, ProjectionError, ProjectionInput, ProjectionOptions};
use crate::tasks::documents::{self, DocumentCache, DocumentError, Persist};

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
    docs: &DocumentCache,
    references: &ReferenceCache,
    actor: &ActorId,
    doc_id: &str,
) -> Result<Done, ProjectorError> {
    let mut done = Done::default();
    let damaged = |e: String| ProjectorError::Document(doc_id.to_owned(), e);
    let doc_error = |e: DocumentError| match e {
        DocumentError::Db(e) => ProjectorError::Db(e),
        e => ProjectorError::Document(doc_id.to_owned(), e.to_string()),
    };
    'project: for _ in 0..MAX_ATTEMPTS {
        let mut lock = docs.lock(doc_id).await;
        let Some(head) = documents::head(db, doc_id).await? else {
            return Ok(done);
        };
        if !head.needs_projection {
            return Ok(done);
        }
        let Some((projected_at, doc)) = lock
            .get(db, doc_id, head.version, actor)
            .await
            .map_err(doc_error)?
        else {
            return Ok(done);
        };
        // The site's reference data for the rules, at the current version.
        let site = doc.header().map_err(|e| damaged(e.to_string()))?.site;
        let reference = references
            .get(db, &head.organisation_id, &site)
            .await
            .map_err(|e| match e {
                crate::reference::ReferenceError::Db(e) => ProjectorError::Db(e),
                e => damaged(e.to_string()),
            })?;
        // Decode what the projection needs and give the document back at once, so syncs
        // keep finding it in the cache while the database work runs.
        let id = doc_id.to_owned();
        let (doc, input) = tokio::task::spawn_blocking(move || {
            let input = ProjectionInput::read(&id, &doc, &reference);
            (doc, input)
        })
        .await
        .map_err(|e| damaged(e.to_string()))?;
        lock.keep(projected_at, doc);
        drop(lock);
        let input = input.map_err(|e| damaged(e.to_string()))?;
        let report = projection::project_input(
            db,
            &head.organisation_id,
            doc_id,
            &input,
            &ProjectionOptions::default(),
        )
        .await?;
        done.projected += report.newly_projected;
        let report = Arc::new(report);

        // Write the results back into the newest version: they are per scan, so they hold
        // there too. Only if nothing was merged since the projection read the document is
        // it fully projected.
        for _ in 0..MAX_ATTEMPTS {
            let mut lock = docs.lock(doc_id).await;
            let Some(now_head) = documents::head(db, doc_id).await? else {
                return Ok(done);
            };
            let Some((stored, doc)) = lock
                .get(db, doc_id, now_head.version, actor)
                .await
                .map_err(doc_error)?
            else {
                return Ok(done);
            };
            let caught_up = stored.version == projected_at.version;
            let report = Arc::clone(&report);
            let (doc, written) = tokio::task::spawn_blocking(move || {
                let mut doc = doc;
                let before = doc.heads();
                let written = report.write_back(&mut doc).map(|changed| {
                    (changed > 0).then(|| {
                        doc.commit(Utc::now().timestamp());
                        (changed, Persist::of(&mut doc, &before, stored))
                    })
                });
                (doc, written)
            })
            .await
            .map_err(|e| damaged(e.to_string()))?;
            let written = match written {
                Ok(w) => w,
                Err(e) => return Err(damaged(e.to_string())),
            };
            let Some((changed, persist)) = written else {
                lock.keep(stored, doc);
                drop(lock);
                if !caught_up {
                    continue 'project;
                }
                let cleared = task_document::Entity::update_many()
                    .col_expr(task_document::Column::NeedsProjection, Expr::value(false))
                    .filter(task_document::Column::Id.eq(doc_id))
                    .filter(task_document::Column::Version.eq(stored.version))
                    .exec(db)
                    .await?;
                if cleared.rows_affected == 1 {
                    return Ok(done);
                }
                // A scanner merged in between: project again on its version (the
                // projection is idempotent, so only the new scans cost anything).
                continue 'project;
            };
            let turn = crate::db::Policy::of(db)
                .write_turn(crate::db::Writer::Background)
                .await;
            let txn = db.begin().await?;
            let saved = documents::write(&txn, doc_id, stored, persist, |u| {
                if caught_up {
                    u.col_expr(task_document::Column::NeedsProjection, Expr::value(false))
                } else {
                    u
                }
            })
            .await?;
            let Some(now_stored) = saved else {
                // A scanner merged in between: write back on its version.
                txn.rollback().await?;
                continue;
            };
            txn.commit().await?;
            drop(turn);
            lock.keep(now_stored, doc);
            drop(lock);
            done.written_back += changed;
            if caught_up {
                return Ok(done);
            }
            continue 'project;
        }
    }
    Ok(done)
}

/// Asks the worker to project a document again (within the caller's transaction): for
/// a change the projection has not seen, such as a returns decision whose outcome must be
/// written back into the document. Projection is idempotent, so asking twice is harmless.
pub async fn request<C: ConnectionTrait>(txn: &C, org: &str, doc_id: &str) -> Result<(), DbErr> {
    task_document::Entity::update_many()
        .col_expr(task_document::Column::NeedsProjection, Expr::value(true))
        .filter(task_document::Column::Id.eq(doc_id))
        .filter(task_document::Column::OrganisationId.eq(org))
        .exec(txn)
        .await?;
    Ok(())
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

/// Documents projected at once: two, so one document's decoding, planning and
/// write-back overlap another's database work. PostgreSQL locks rows, so both also write
/// at once. SQLite has one writer: the two take turns, with the sync rounds, for each
/// transaction ([`crate::db::Policy::write_turn`]) on the projector's connection. Two project
/// faster than one; a third, on two cores, adds sync latency without adding throughput.
/// Figures: `docs/benchmarks.md`, "Projector workers".
const WORKERS: usize = 2;

/// Runs until `stop` is notified: projects whatever is pending, then sleeps until woken
/// by a merge or the sweep interval passes.
pub async fn run(
    db: DatabaseConnection,
    docs: Arc<DocumentCache>,
    actor: Arc<ActorId>,
    wake: Arc<Notify>,
    stop: Arc<Notify>,
) {
    // The sites' reference data the rules judge against, kept current by deltas.
    let references = Arc::new(ReferenceCache::default());
    loop {
        match pending(&db, SWEEP_BATCH).await {
            Ok(ids) => {
                let mut ids = ids.into_iter();
                let mut running = tokio::task::JoinSet::new();
                loop {
                    while running.len() < WORKERS {
                        let Some(id) = ids.next() else { break };
                        let (db, docs, actor) = (db.clone(), Arc::clone(&docs), Arc::clone(&actor));
                        let refs = Arc::clone(&references);
                        running.spawn(async move {
                            let r = project_one(&db, &docs, &refs, &actor, &id).await;
                            (id, r)
                        });
                    }
                    let Some(joined) = running.join_next().await else {
                        break;
                    };
                    match joined {
                        Ok((id, Ok(done))) if done.projected > 0 || done.written_back > 0 => {
                            tracing::debug!(document = %id, projected = done.projected, written_back = done.written_back, "projected");
                        }
                        Ok((_, Ok(_))) => {}
                        Ok((id, Err(e))) => {
                            tracing::error!(document = %id, error = %e, "projection failed; will retry")
                        }
                        Err(e) => tracing::error!(error = %e, "projection task failed; will retry"),
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
