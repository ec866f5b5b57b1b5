//! Projection: turns every merged scan of a task document, exactly once, into EPCIS 2.0
//! events, the current state of each serial and container, and exceptions for the
//! manager. Not here: merging documents (sync), writing results back into documents (the
//! sync layer, with [`ProjectionReport::write_back`]), asking about returned packs
//! (`crate::verification`); applying a verification's decision is here ([`returns`]).
//!
//! # Exactly once, crash-safe, concurrent
//! Scans are projected in chunks, one transaction per chunk; each scan first inserts its
//! marker (`projected_scan`, primary key organisation + scan id) with `ON CONFLICT DO
//! NOTHING`. Whoever inserts the marker owns the scan; a second process blocks on the
//! same key (PostgreSQL) or on the write lock of an `IMMEDIATE` transaction (SQLite) and
//! then finds it taken. Events, state and exceptions are written in the marker's
//! transaction, so a crash leaves every scan of a chunk either fully projected or
//! untouched, and any later call finishes the rest.
//! State rows touched by a scan are locked (`SELECT … FOR UPDATE` on PostgreSQL, in key
//! order within a scan) so the business checks below see committed truth. Two chunks
//! that lock the same rows in different orders deadlock; PostgreSQL aborts one and it
//! is retried whole.
//!
//! # Voids
//! A scan voided before projection is marked `voided` and produces nothing. Events are
//! never edited, so a void that arrives after the scan was projected leaves events and
//! state alone and opens a `voided_after_projection` exception: a manager decides whether
//! stock must be corrected (by a new scan or an error declaration) — undoing a pick or
//! ship automatically could hide a real movement of goods.
//!
//! # Late scans
//! An offline scanner may sync a scan older than what the state already reflects. Its
//! events are still recorded (history is complete) and its business checks still run,
//! but it does not overwrite newer state (`last_event_time_ms` guard).

pub mod clock;
pub mod map;

pub(crate) mod store;
pub mod worker;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, TransactionOptions,
};
use swt_domain::doc::{self, DocError, Expected, Header, Issue, ScanResult, TaskDocument};
use swt_domain::model::{ReferenceData, Scan, ScanId};
use swt_domain::rules::{Judgement, Reason, TaskState};

use crate::db::entity::{
    organisation, projected_scan, site, trace_exception, trace_exception_scan,
};
use crate::epcis::HashError;

pub use map::{ExceptionKind, UnitStatus};

pub use crate::db::entity::projected_scan::ProjectionOutcome;

/// Why a projection run stopped. Scans finished before the error stay projected.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database failed.
    #[error("projection database error: {0}")]
    Db(#[from] DbErr),
    /// The document could not be read.
    #[error("projection: document unreadable: {0}")]
    Doc(#[from] DocError),
    /// The document's site is not a site of this organisation.
    #[error("projection: site {site} is not a site of organisation {org}")]
    UnknownSite {
        /// Site id from the header.
        site: String,
        /// Organisation.
        org: String,
    },
    /// An event could not be given its hash id.
    #[error("projection: {0}")]
    Hash(#[from] HashError),
    /// An event could not be serialised.
    #[error("projection: serialising an event: {0}")]
    Json(#[from] serde_json::Error),
    /// Fault injected by a test ([`ProjectionOptions::fail_after_scans`]).
    #[error("projection: injected fault after {0} scans")]
    Injected(usize),
}

/// The projection outcome of one scan, in the form the document's `results` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// The scan.
    pub scan_id: ScanId,
    /// `projection` and `exceptions` set; `verification` for returns scans with a
    /// verification record (see [`returns`]).
    pub result: ScanResult,
}

/// What a projection run did and the per-scan results to write back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectionReport {
    /// Document id.
    pub document_id: String,
    /// One entry per scan of the document (every scan, also those projected earlier,
    /// so a write-back lost in a crash is simply redone).
    pub results: Vec<ScanOutcome>,
    /// Scans this run projected (0 on a repeated run).
    pub newly_projected: usize,
    /// Events this run wrote.
    pub events_written: usize,
    /// Exceptions this run opened.
    pub exceptions_opened: usize,
    /// Scans that could not be decoded (kept in the document, reported in logs).
    pub undecodable: usize,
}

impl ProjectionReport {
    /// Writes the results into the document's `results` section, keeping each scan's
    /// verification outcome, and only where something changed. Does not commit: call
    /// [`TaskDocument::commit`] after. Returns how many scans changed.
    pub fn write_back(&self, doc: &mut TaskDocument) -> Result<usize, DocError> {
        let mut changed = 0;
        for o in &self.results {
            let written = doc.update_result(&o.scan_id, |current| ScanResult {
                // Returns verification state when the server has one for the scan.
                verification: o
                    .result
                    .verification
                    .clone()
                    .or_else(|| current.verification.clone()),
                projection: o.result.projection.clone(),
                exceptions: o.result.exceptions.clone(),
                verdict: o.result.verdict.clone(),
                reason: o.result.reason.clone(),
            })?;
            changed += usize::from(written);
        }
        Ok(changed)
    }

    /// The result for one scan.
    pub fn result(&self, id: &str) -> Option<&ScanResult> {
        self.results
            .iter()
            .find(|o| o.scan_id.as_str() == id)
            .map(|o| &o.result)
    }
}

/// Knobs for tests. Production calls [`project_document`].
#[derive(Debug, Clone, Default)]
pub struct ProjectionOptions {
    /// Crash simulation: after this many scans were committed in this run, the next
    /// scan's transaction writes everything and then fails before commit.
    pub fail_after_scans: Option<usize>,
}

/// What the projection reads from a task document, decoded once. Decoding is CPU work
/// that grows with the document: do it off the async workers, and without holding the
/// document during the database work.
#[derive(Debug, Clone)]
pub struct ProjectionInput {
    header: Header,
    expected: Expected,
    /// In projection order.
    scans: Vec<Scan>,
    voided: BTreeSet<ScanId>,
    undecodable: usize,
    /// Scans whose device clock was outside the trusted window: their time in `scans` is
    /// the server's, and this keeps the device's as evidence.
    skewed: BTreeMap<ScanId, u64>,
    /// The scan rules' verdict on each scan against the server's reference data, beside
    /// the scanner's.
    judged: BTreeMap<ScanId, Judgement>,
}

impl ProjectionInput {
    /// Decodes the document's header, expected data, scans and voids, and judges every
    /// scan by the scan rules against `reference` (the site's current reference data).
    pub fn read(
        doc_id: &str,
        doc: &TaskDocument,
        reference: &ReferenceData,
    ) -> Result<Self, DocError> {
        let header = doc.header()?;
        // A document without `expected` (e.g. a stock count) simply has no inferred contents.
        let expected = doc.expected().unwrap_or_default();
        let mut undecodable = 0;
        let mut scans: Vec<Scan> = Vec::new();
        let mut skewed = BTreeMap::new();
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        for s in doc.scans() {
            match s {
                Ok(mut s) => {
                    if let Some(trusted) = clock::trusted_time(s.device_time_ms, now_ms) {
                        skewed.insert(s.id.clone(), s.device_time_ms);
                        s.device_time_ms = trusted;
                    }
                    scans.push(s);
                }
                Err(e) => {
                    undecodable += 1;
                    tracing::warn!(document = doc_id, error = %e, "scan record does not decode; not projected");
                }
            }
        }
        // Device time order makes a document's own sequence (receive, unpack, store…)
        // apply in the order it happened; the id breaks ties deterministically. A clock
        // outside the trusted window was replaced by the server's time above, so one
        // scanner's wrong clock cannot put its scans after everyone else's.
        scans.sort_by(|a, b| (a.device_time_ms, &a.id).cmp(&(b.device_time_ms, &b.id)));
        let voided = doc
            .voids()
            .into_iter()
            .filter_map(Result::ok)
            .map(|v| v.scan_id)
            .collect();
        let judged = TaskState::judge_document(doc, reference)?
            .into_iter()
            .map(|j| (j.scan_id.clone(), j))
            .collect();
        Ok(Self {
            header,
            expected,
            scans,
            voided,
            undecodable,
            skewed,
            judged,
        })
    }
}

/// Projects every scan of `doc` not projected yet. Safe to call any number of times,
/// concurrently from several processes, and after a crash at any point.
pub async fn project_document(
    db: &DatabaseConnection,
    org_id: &str,
    doc_id: &str,
    doc: &TaskDocument,
) -> Result<ProjectionReport, ProjectionError> {
    project_document_with(db, org_id, doc_id, doc, &ProjectionOptions::default()).await
}

/// [`project_document`] with test options.
pub async fn project_document_with(
    db: &DatabaseConnection,
    org_id: &str,
    doc_id: &str,
    doc: &TaskDocument,
    opts: &ProjectionOptions,
) -> Result<ProjectionReport, ProjectionError> {
    let site = doc.header()?.site;
    let reference = crate::reference::snapshot(db, org_id, &site)
        .await
        .map_err(|e| match e {
            crate::reference::ReferenceError::Db(e) => ProjectionError::Db(e),
            _ => ProjectionError::UnknownSite {
                site: site.clone(),
                org: org_id.to_owned(),
            },
        })?;
    let input = ProjectionInput::read(doc_id, doc, &reference)?;
    project_input(db, org_id, doc_id, &input, opts).await
}

/// [`project_document`] on a document already decoded.
pub async fn project_input(
    db: &DatabaseConnection,
    org_id: &str,
    doc_id: &str,
    input: &ProjectionInput,
    opts: &ProjectionOptions,
) -> Result<ProjectionReport, ProjectionError> {
    let header = &input.header;
    let site = site::Entity::find_by_id(header.site.clone())
        .filter(site::Column::OrganisationId.eq(org_id))
        .one(db)
        .await?
        .ok_or_else(|| ProjectionError::UnknownSite {
            site: header.site.clone(),
            org: org_id.to_owned(),
        })?;
    let party_gln = organisation::Entity::find_by_id(org_id.to_owned())
        .one(db)
        .await?
        .and_then(|o| o.gln);
    let ctx = map::Context::new(
        org_id,
        party_gln.as_deref(),
        doc_id,
        &site,
        header,
        &input.expected,
    );

    let mut report = ProjectionReport {
        document_id: doc_id.to_owned(),
        undecodable: input.undecodable,
        ..Default::default()
    };
    let scans = &input.scans;
    let voided = &input.voided;

    let started = std::time::Instant::now();
    let mut markers = load_markers(db, org_id, doc_id).await?;
    let mut todo: Vec<(&Scan, bool)> = Vec::new();
    for scan in scans {
        let is_voided = voided.contains(&scan.id);
        match markers.get(scan.id.as_str()) {
            None => todo.push((scan, is_voided)),
            Some(m) if is_voided && m.outcome == ProjectionOutcome::Projected && !m.void_seen => {
                if with_retry(|| store::late_void(db, &ctx, scan)).await? {
                    report.exceptions_opened += 1;
                }
            }
            Some(_) => {}
        }
    }
    // Scans go in chunks, one transaction each: a commit per scan was most of the cost.
    let mut committed = 0usize;
    let mut rest = todo.as_slice();
    while !rest.is_empty() {
        let mut size = rest.len().min(crate::db::Policy::of(db).projection_chunk());
        let mut fault = None;
        if let Some(n) = opts.fail_after_scans {
            if committed < n {
                // End a chunk exactly where the injected crash is due.
                size = size.min(n - committed);
            } else {
                fault = Some(committed);
            }
        }
        let (chunk, tail) = rest.split_at(size);
        let done = with_retry(|| {
            store::project_chunk(db, &ctx, chunk, &input.skewed, &input.judged, fault)
        })
        .await?;
        for d in done.into_iter().flatten() {
            committed += 1;
            report.newly_projected += 1;
            report.events_written += d.events;
            report.exceptions_opened += d.exceptions;
        }
        rest = tail;
    }
    let chunks_done = started.elapsed();
    markers = load_markers(db, org_id, doc_id).await?;
    let duplicates = duplicate_scan_ids(db, &ctx, scans, &markers).await?;
    report.exceptions_opened += duplicates.opened;
    crate::returns::apply::enqueue(db, &ctx, scans, &markers).await?;
    let verification = crate::returns::store::result_codes(db, org_id, doc_id).await?;
    let open = open_exceptions_by_scan(db, org_id, scans).await?;
    tracing::debug!(
        document = doc_id,
        scans = scans.len(),
        new = report.newly_projected,
        chunks_ms = chunks_done.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "projection timing"
    );
    for scan in scans {
        let Some(m) = markers.get(scan.id.as_str()) else {
            if duplicates.scans.contains(&scan.id) {
                report.results.push(ScanOutcome {
                    scan_id: scan.id.clone(),
                    result: ScanResult {
                        verification: None,
                        projection: Some(doc::ProjectionOutcome::Rejected.into()),
                        exceptions: vec![ExceptionKind::DuplicateScanId.into()],
                        ..Default::default()
                    },
                });
            }
            continue;
        };
        let mut issues: Vec<Issue> = m
            .exceptions
            .split(',')
            .filter(|c| !c.is_empty())
            .map(Issue::read)
            .collect();
        for k in open.get(scan.id.as_str()).into_iter().flatten() {
            let k = Issue::read(k);
            if !issues.contains(&k) {
                issues.push(k);
            }
        }
        // The server's verdict is written only where it is not the scanner's own: the
        // scanner already shows its own, and two more fields per scan in every document
        // were most of the write-back's cost.
        let overruled = input.judged.get(&scan.id).filter(|j| {
            j.outcome.verdict != j.device
                || Reason::from_feedback(scan.feedback) != Some(j.outcome.reason)
        });
        report.results.push(ScanOutcome {
            scan_id: scan.id.clone(),
            result: ScanResult {
                verification: verification.get(scan.id.as_str()).map(|&v| v.into()),
                projection: Some(doc::ProjectionOutcome::from(m.outcome).into()),
                exceptions: issues,
                verdict: overruled.map(|j| j.outcome.verdict.into()),
                reason: overruled.map(|j| j.outcome.reason.into()),
            },
        });
    }
    Ok(report)
}

/// Scans of this document that another document of the organisation already projected
/// under the same id, and how many exceptions raising them opened.
#[derive(Default)]
struct Duplicates {
    scans: BTreeSet<ScanId>,
    opened: usize,
}

/// Finds the scans that have no marker of this document after the chunks ran: their id
/// is taken by another document (the marker is organisation-wide, as scan ids are). Each
/// becomes a `duplicate_scan_id` exception, raised once, and a `rejected` result, so
/// nothing a device sent disappears without a trace.
async fn duplicate_scan_ids(
    db: &DatabaseConnection,
    ctx: &map::Context,
    scans: &[Scan],
    markers: &BTreeMap<String, projected_scan::Model>,
) -> Result<Duplicates, ProjectionError> {
    let mut out = Duplicates::default();
    let unmarked: Vec<&Scan> = scans
        .iter()
        .filter(|s| !markers.contains_key(s.id.as_str()))
        .collect();
    for chunk in unmarked.chunks(500) {
        let ids: Vec<String> = chunk.iter().map(|s| s.id.to_string()).collect();
        let taken: BTreeMap<String, String> = projected_scan::Entity::find()
            .filter(projected_scan::Column::OrganisationId.eq(ctx.org.as_str()))
            .filter(projected_scan::Column::ScanId.is_in(ids))
            .all(db)
            .await?
            .into_iter()
            .filter(|m| m.document_id != ctx.doc_id)
            .map(|m| (m.scan_id, m.document_id))
            .collect();
        for scan in chunk {
            let Some(other) = taken.get(scan.id.as_str()) else {
                continue;
            };
            out.scans.insert(scan.id.clone());
            let key = map::subject(scan).map(|(k, _)| k.key()).unwrap_or_default();
            let opened =
                with_retry(|| store::open_exception_alone(db, ctx, scan, &key, other)).await?;
            out.opened += usize::from(opened);
        }
    }
    Ok(out)
}

async fn load_markers(
    db: &DatabaseConnection,
    org_id: &str,
    doc_id: &str,
) -> Result<BTreeMap<String, projected_scan::Model>, DbErr> {
    Ok(projected_scan::Entity::find()
        .filter(projected_scan::Column::OrganisationId.eq(org_id))
        .filter(projected_scan::Column::DocumentId.eq(doc_id))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.scan_id.clone(), m))
        .collect())
}

/// Open exception kinds per scan id, for the scans given.
async fn open_exceptions_by_scan(
    db: &DatabaseConnection,
    org_id: &str,
    scans: &[Scan],
) -> Result<BTreeMap<String, Vec<String>>, DbErr> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Bounded IN lists: both back-ends limit bound parameters per statement.
    for chunk in scans.chunks(500) {
        let ids: Vec<String> = chunk.iter().map(|s| s.id.to_string()).collect();
        let links = trace_exception_scan::Entity::find()
            .filter(trace_exception_scan::Column::OrganisationId.eq(org_id))
            .filter(trace_exception_scan::Column::ScanId.is_in(ids))
            .all(db)
            .await?;
        if links.is_empty() {
            continue;
        }
        let ex_ids: BTreeSet<String> = links.iter().map(|l| l.exception_id.clone()).collect();
        let open: BTreeMap<String, String> = trace_exception::Entity::find()
            .filter(trace_exception::Column::OrganisationId.eq(org_id))
            .filter(trace_exception::Column::Id.is_in(ex_ids))
            .filter(trace_exception::Column::State.eq("open"))
            .all(db)
            .await?
            .into_iter()
            .map(|e| (e.id, e.kind))
            .collect();
        for l in links {
            if let Some(kind) = open.get(&l.exception_id) {
                let v = out.entry(l.scan_id).or_default();
                if !v.contains(kind) {
                    v.push(kind.clone());
                }
            }
        }
    }
    Ok(out)
}

/// Options for every projection write transaction: `IMMEDIATE` on SQLite so the write
/// lock is taken up front (a deferred read-then-write transaction fails at once with
/// "database is locked" under contention, without waiting).
pub(crate) fn write_txn_options() -> TransactionOptions {
    TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..Default::default()
    }
}

/// Re-runs a transaction that lost a race the database resolved by aborting it
/// (PostgreSQL deadlock/serialisation failure, SQLite busy). Each attempt is a whole
/// transaction, so retrying is safe.
async fn with_retry<T, F, Fut>(mut f: F) -> Result<T, ProjectionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProjectionError>>,
{
    let mut attempt = 0u32;
    loop {
        match f().await {
            Err(ProjectionError::Db(e)) if attempt < 5 && crate::db::failure::transient(&e) => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "projection transaction retried");
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}
