//! `task.completed` / `task.cancelled`: reported once a task has ended *and* every scan
//! merged into it is projected, so the quantities, lots and serials reported are those
//! the serialized stock holds. The outbox worker looks for such tasks; the report and
//! the task's `completion_event` are written in one transaction, on the condition that
//! the task is still unreported and nothing was merged since: exactly once, and a crash
//! in between only delays it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};
use serde::Serialize;
use swt_domain::doc::{TaskDocument, TaskStatus};

use super::{Outcome, OutcomeKind};
use crate::db::entity::{erp_order, projected_scan, task_document};
use crate::projection::ProjectionOutcome;

/// Tasks reported per look.
const PER_LOOK: u64 = 20;

/// One line of what a task moved: packs of one GTIN, lot and expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Line {
    /// GTIN-14.
    pub gtin: String,
    /// Lot (AI 10), if the packs carried one.
    pub lot: Option<String>,
    /// Expiry (AI 17, YYMMDD), if the packs carried one.
    pub expiry: Option<String>,
    /// Packs.
    pub quantity: usize,
    /// Their serials (AI 21), in order.
    pub serials: Vec<String>,
}

/// A container scanned as a whole, with the packs the task's expected data puts in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Container {
    /// SSCC (18 digits).
    pub sscc: String,
    /// Expected contents, as `sgtin:<gtin14>:<serial>` or `sscc:<18 digits>`.
    pub contents: Vec<String>,
}

/// What a task's projected scans moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Packs scanned one by one, by GTIN, lot and expiry.
    pub lines: Vec<Line>,
    /// Containers scanned as a whole.
    pub containers: Vec<Container>,
    /// Scans projected.
    pub scans_projected: usize,
    /// Scans refused by the projection (see the task's exceptions).
    pub scans_rejected: usize,
    /// Scans voided on the scanner.
    pub scans_voided: usize,
}

/// Summarises the scans of `doc` that the projection took (`projected`), counting the
/// others by outcome. Each pack is counted once however often it was scanned.
pub fn summarise(doc: &TaskDocument, outcomes: &HashMap<String, ProjectionOutcome>) -> Summary {
    let mut summary = Summary::default();
    let mut lines: BTreeMap<(String, Option<String>, Option<String>), BTreeSet<String>> =
        BTreeMap::new();
    let mut containers: BTreeSet<String> = BTreeSet::new();
    for scan in doc.scans().into_iter().flatten() {
        match outcomes.get(scan.id.as_str()) {
            Some(ProjectionOutcome::Projected) => summary.scans_projected += 1,
            Some(ProjectionOutcome::Rejected) => {
                summary.scans_rejected += 1;
                continue;
            }
            Some(ProjectionOutcome::Voided) => {
                summary.scans_voided += 1;
                continue;
            }
            None => continue,
        }
        let ids = &scan.ids;
        if let (Some(gtin), Some(serial)) = (&ids.gtin, &ids.serial) {
            lines
                .entry((gtin.to_string(), ids.lot.clone(), ids.expiry.clone()))
                .or_default()
                .insert(serial.clone());
        } else if let Some(sscc) = &ids.sscc {
            containers.insert(sscc.to_string());
        }
    }
    summary.lines = lines
        .into_iter()
        .map(|((gtin, lot, expiry), serials)| Line {
            gtin,
            lot,
            expiry,
            quantity: serials.len(),
            serials: serials.into_iter().collect(),
        })
        .collect();
    let expected = doc.expected().unwrap_or_default();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for u in &expected.units {
        if let Some(p) = &u.parent {
            children.entry(p.as_str()).or_default().push(u.id.as_str());
        }
    }
    summary.containers = containers
        .into_iter()
        .map(|sscc| {
            // Everything under it, depth first (a pallet's cases and their packs).
            let mut contents = Vec::new();
            let root = format!("sscc:{sscc}");
            let mut stack = vec![root.as_str()];
            while let Some(key) = stack.pop() {
                for c in children.get(key).into_iter().flatten().rev() {
                    contents.push((*c).to_owned());
                    stack.push(c);
                }
            }
            Container { sscc, contents }
        })
        .collect();
    summary
}

/// Reports ended, fully projected, unreported tasks; returns how many.
pub async fn report(db: &DatabaseConnection, actor: &automerge::ActorId) -> Result<usize, DbErr> {
    let due: Vec<(String, String, i64)> = task_document::Entity::find()
        .select_only()
        .columns([
            task_document::Column::Id,
            task_document::Column::OrganisationId,
            task_document::Column::Version,
        ])
        .filter(
            task_document::Column::Status
                .is_in([TaskStatus::Closed.as_str(), TaskStatus::Cancelled.as_str()]),
        )
        .filter(task_document::Column::CompletionEvent.is_null())
        .filter(task_document::Column::NeedsProjection.eq(false))
        .limit(PER_LOOK)
        .into_tuple()
        .all(db)
        .await?;
    let mut reported = 0;
    for (id, org, version) in due {
        match report_one(db, actor, &id, &org, version).await {
            Ok(true) => reported += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(task = %id, error = %e, "task completion not reported yet"),
        }
    }
    Ok(reported)
}

async fn report_one(
    db: &DatabaseConnection,
    actor: &automerge::ActorId,
    id: &str,
    org: &str,
    version: i64,
) -> Result<bool, DbErr> {
    let (stored, doc) = match crate::tasks::documents::load(db, id, actor).await {
        Ok(Some(got)) => got,
        Ok(None) => return Ok(false),
        Err(crate::tasks::documents::DocumentError::Db(e)) => return Err(e),
        Err(e) => return Err(DbErr::Custom(e.to_string())),
    };
    if stored.version != version {
        // Changed since the look: the next look sees it again.
        return Ok(false);
    }
    let outcomes: HashMap<String, ProjectionOutcome> = projected_scan::Entity::find()
        .select_only()
        .columns([
            projected_scan::Column::ScanId,
            projected_scan::Column::Outcome,
        ])
        .filter(projected_scan::Column::OrganisationId.eq(org))
        .filter(projected_scan::Column::DocumentId.eq(id))
        .into_tuple()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let (header, summary) = tokio::task::spawn_blocking(move || {
        let header = doc.header();
        (header, summarise(&doc, &outcomes))
    })
    .await
    .map_err(|e| DbErr::Custom(e.to_string()))?;
    let header = header.map_err(|e| DbErr::Custom(format!("task {id}: {e}")))?;
    let order = erp_order::Entity::find()
        .filter(erp_order::Column::OrganisationId.eq(org))
        .filter(erp_order::Column::TaskId.eq(id))
        .one(db)
        .await?;
    let kind = if header.status == TaskStatus::Cancelled {
        OutcomeKind::TaskCancelled
    } else {
        OutcomeKind::TaskCompleted
    };
    let data = serde_json::json!({
        "task_id": id,
        "kind": header.kind.as_str(),
        "status": header.status.as_str(),
        "site_id": header.site,
        "refs": header.refs,
        "order": order.map(|o| serde_json::json!({
            "kind": o.kind, "order_ref": o.order_ref, "partner_gln": o.partner_gln,
        })),
        "lines": summary.lines,
        "containers": summary.containers,
        "scans_projected": summary.scans_projected,
        "scans_rejected": summary.scans_rejected,
        "scans_voided": summary.scans_voided,
    });
    let _turn = crate::db::Policy::of(db)
        .write_turn(crate::db::Writer::Background)
        .await;
    let txn = db
        .begin_with_options(crate::projection::write_txn_options())
        .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let event = super::record_one(
        &txn,
        org,
        Outcome {
            kind,
            stream: id.to_owned(),
            data,
        },
        now,
    )
    .await?;
    // Only if still unreported, ended and unchanged: else the event goes with the rollback.
    let claimed = task_document::Entity::update_many()
        .col_expr(task_document::Column::CompletionEvent, Expr::value(event))
        .filter(task_document::Column::Id.eq(id))
        .filter(task_document::Column::CompletionEvent.is_null())
        .filter(task_document::Column::NeedsProjection.eq(false))
        .filter(task_document::Column::Version.eq(version))
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(false);
    }
    txn.commit().await?;
    Ok(true)
}
