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
            // Everything under it, depth first in id order (a case, then its packs).
            let mut contents = Vec::new();
            let root = format!("sscc:{sscc}");
            let below = |key: &str| children.get(key).into_iter().flatten().rev().copied();
            let mut stack: Vec<&str> = below(&root).collect();
            // Expected data names parents freely: a cycle must not loop.
            let mut seen: BTreeSet<&str> = BTreeSet::from([root.as_str()]);
            while let Some(key) = stack.pop() {
                if !seen.insert(key) {
                    continue;
                }
                contents.push(key.to_owned());
                stack.extend(below(key));
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

#[cfg(test)]
mod tests {
    use super::*;
    use swt_domain::doc::{Expected, ExpectedUnit, Header, TaskKind};
    use swt_domain::gs1::{Gtin, Sscc};
    use swt_domain::model::{Action, Feedback, Identifiers, Scan, ScanId};

    const GTIN: &str = "00361500231012";
    const PALLET: &str = "106141411234567897";

    fn scan(n: u64, ids: Identifiers) -> Scan {
        Scan {
            id: ScanId::from_device_counter("dev", n).unwrap(),
            raw: Vec::new(),
            ids,
            action: Action::Ship,
            user: "u".into(),
            device: "dev".into(),
            location: None,
            device_time_ms: 1_000 + n,
            feedback: Feedback::Ok,
            parent: None,
        }
    }

    fn pack(n: u64, serial: &str, lot: &str) -> Scan {
        scan(
            n,
            Identifiers {
                gtin: Some(Gtin::parse(GTIN).unwrap()),
                serial: Some(serial.into()),
                lot: Some(lot.into()),
                expiry: Some("301231".into()),
                sscc: None,
            },
        )
    }

    /// Packs count once each by GTIN, lot and expiry; a container lists what the
    /// expected data puts under it, to any depth; rejected and voided scans are counted,
    /// not moved; a scan the projection has not seen is left out.
    #[test]
    fn a_summary_counts_what_the_projection_took() {
        let header = Header {
            kind: TaskKind::Shipping,
            site: "site".into(),
            refs: Default::default(),
            status: TaskStatus::Closed,
        };
        let mut doc = TaskDocument::create(automerge::ActorId::random(), &header, 1).unwrap();
        let unit = |id: &str, parent: Option<&str>| ExpectedUnit {
            id: id.into(),
            parent: parent.map(str::to_owned),
        };
        let case = "sscc:006141411234567890";
        doc.set_expected(
            &Expected {
                lines: Vec::new(),
                units: vec![
                    unit(case, Some(&format!("sscc:{PALLET}"))),
                    unit(&format!("sgtin:{GTIN}:C1"), Some(case)),
                    unit(&format!("sgtin:{GTIN}:C2"), Some(case)),
                    // A cycle in the expected data ends the walk, not the worker.
                    unit("sscc:106141411234567880", Some("sscc:106141411234567873")),
                    unit("sscc:106141411234567873", Some("sscc:106141411234567880")),
                ],
            },
            1,
        )
        .unwrap();
        let pallet = scan(
            9,
            Identifiers {
                sscc: Some(Sscc::parse(PALLET).unwrap()),
                ..Identifiers::default()
            },
        );
        let looped = scan(
            10,
            Identifiers {
                sscc: Some(Sscc::parse("106141411234567880").unwrap()),
                ..Identifiers::default()
            },
        );
        let scans = [
            looped,
            pack(1, "S2", "L1"),
            pack(2, "S1", "L1"),
            pack(3, "S1", "L1"),
            pack(4, "S9", "L2"),
            pack(5, "R1", "L1"),
            pack(6, "V1", "L1"),
            pack(7, "N1", "L1"),
            pallet,
        ];
        doc.add_scans(&scans).unwrap();
        let mut outcomes = HashMap::new();
        for s in &scans {
            let outcome = match s.ids.serial.as_deref() {
                Some("R1") => ProjectionOutcome::Rejected,
                Some("V1") => ProjectionOutcome::Voided,
                Some("N1") => continue,
                _ => ProjectionOutcome::Projected,
            };
            outcomes.insert(s.id.to_string(), outcome);
        }
        let summary = summarise(&doc, &outcomes);
        let lines: Vec<(&str, Option<&str>, usize, Vec<&str>)> = summary
            .lines
            .iter()
            .map(|l| {
                (
                    l.gtin.as_str(),
                    l.lot.as_deref(),
                    l.quantity,
                    l.serials.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                (GTIN, Some("L1"), 2, vec!["S1", "S2"]),
                (GTIN, Some("L2"), 1, vec!["S9"]),
            ]
        );
        assert_eq!(
            summary.containers,
            vec![
                Container {
                    sscc: "106141411234567880".into(),
                    contents: vec!["sscc:106141411234567873".to_owned()],
                },
                Container {
                    sscc: PALLET.into(),
                    contents: vec![
                        case.to_owned(),
                        format!("sgtin:{GTIN}:C1"),
                        format!("sgtin:{GTIN}:C2"),
                    ],
                },
            ]
        );
        assert_eq!(
            (
                summary.scans_projected,
                summary.scans_rejected,
                summary.scans_voided
            ),
            (6, 1, 1)
        );
    }
}
