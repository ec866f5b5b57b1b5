//! The UniFFI surface for the Android app: thin, no logic of its own.
//!
//! One object, [`ScannerSession`], wraps a [`SharedSession`] (`&self` methods, callable
//! from any thread); each method converts its arguments, calls the session and converts
//! the answer. Calls are coarse (one per scan) and bulk data crosses as
//! bytes. Internal errors map to the small public [`CoreError`] in one place
//! ([`From<SessionError>`]); panics are caught at every entry point and returned as
//! [`CoreError::Internal`], so none crosses the boundary.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::doc::{self, DocError, Expected, ExpectedLine, ExpectedUnit, TaskKind};
use crate::model::{ReferenceData, ReferenceDelta};
use crate::rules;
use crate::session::{self, Session, SessionError, SessionOptions, SharedSession};
use crate::store::StoreError;
use crate::sync::{SyncError, SyncReport};

/// The logged-in user and tokens: the session's own type, a UniFFI record.
pub use crate::session::Identity;

/// Errors the app can act on.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum CoreError {
    /// The call's arguments are invalid (bad id, malformed JSON, duplicate…).
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
    /// No such task, scan or reference data on this device.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Log in first: scans must be attributable to a user.
    #[error("not logged in")]
    NotLoggedIn,
    /// The device storage failed (disk full, I/O error, unreadable file).
    #[error("storage: {reason}")]
    Storage {
        /// The underlying error.
        reason: String,
    },
    /// The server could not be reached, broke the connection, was busy or answered
    /// something unreadable: retry later (with backoff). Nothing recorded is lost.
    #[error("network: {reason}")]
    Network {
        /// The underlying error.
        reason: String,
    },
    /// The server refused the request for good (wrong user name or password, device not
    /// allowed, too many attempts…): show `reason`; retrying as is will not help.
    #[error("refused by the server ({code}): {reason}")]
    Refused {
        /// The server's machine-readable code (`invalid_credentials`,
        /// `device_not_allowed`, …).
        code: String,
        /// The server's message.
        reason: String,
    },
    /// This device still holds writes by another Automerge actor than the one the
    /// server registered for it, so it cannot sign in as that device; nothing changed.
    #[error("actor conflict: {reason}")]
    ActorConflict {
        /// Details.
        reason: String,
    },
    /// A bug: the core caught a panic or found its state poisoned. Report it.
    #[error("internal error: {reason}")]
    Internal {
        /// What happened.
        reason: String,
    },
}

impl From<SessionError> for CoreError {
    fn from(e: SessionError) -> Self {
        let reason = e.to_string();
        match e {
            SessionError::NotLoggedIn => CoreError::NotLoggedIn,
            SessionError::UnknownTask(what) | SessionError::UnknownScan(what) => {
                CoreError::NotFound { what }
            }
            SessionError::InvalidInput(reason) => CoreError::InvalidInput { reason },
            SessionError::DocumentFull(_) => CoreError::InvalidInput { reason },
            SessionError::Record(_) => CoreError::InvalidInput { reason },
            SessionError::Meta(..) => CoreError::Storage { reason },
            SessionError::Doc(d) => doc_error(d, reason),
            SessionError::ActorConflict { .. } => CoreError::ActorConflict { reason },
            SessionError::Sync(e) => sync_error(e),
            SessionError::Store(s) => store_error(s, reason),
        }
    }
}

/// Maps a sync client error: transient ones are `Network` (retry), an expired or
/// revoked session is `NotLoggedIn` (sign in again), a refusal is `Refused`.
fn sync_error(e: SyncError) -> CoreError {
    let reason = e.to_string();
    let transient = e.is_transient();
    match e {
        SyncError::Network(_) | SyncError::Protocol(_) => CoreError::Network { reason },
        SyncError::Unauthorized(_) => CoreError::NotLoggedIn,
        SyncError::Rejected { .. } if transient => CoreError::Network { reason },
        SyncError::Rejected { code, message, .. } => CoreError::Refused {
            code,
            reason: message,
        },
        SyncError::Store(s) => store_error(s, reason),
        SyncError::Unavailable(_) => CoreError::Internal { reason },
    }
}

fn store_error(s: StoreError, reason: String) -> CoreError {
    match s {
        StoreError::UnknownDoc(what) | StoreError::NoReference(what) => {
            CoreError::NotFound { what }
        }
        StoreError::InvalidId(_)
        | StoreError::DocExists(_)
        | StoreError::Delta(_)
        | StoreError::Unsynced(..) => CoreError::InvalidInput { reason },
        StoreError::Doc(d) => doc_error(d, reason),
        StoreError::Io { .. } | StoreError::Json(_) => CoreError::Storage { reason },
    }
}

fn doc_error(d: DocError, reason: String) -> CoreError {
    match d {
        // A task whose sections have not arrived yet (sync first).
        DocError::Missing(_) => CoreError::NotFound { what: reason },
        DocError::DuplicateScan(_)
        | DocError::UnknownScan(_)
        | DocError::AlreadyVoided(_)
        | DocError::NotOwnScan(_)
        | DocError::Record { .. } => CoreError::InvalidInput { reason },
        // A document Automerge refuses, or whose stored values do not fit the schema.
        DocError::Automerge(_) | DocError::WrongType(_) | DocError::Invalid { .. } => {
            CoreError::Storage { reason }
        }
    }
}

/// Accept, warn or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Verdict {
    /// Taken.
    Accept,
    /// Taken; the picker must look.
    Warn,
    /// Not taken (still recorded).
    Reject,
}

impl From<rules::Verdict> for Verdict {
    fn from(v: rules::Verdict) -> Self {
        match v {
            rules::Verdict::Accept => Verdict::Accept,
            rules::Verdict::Warn => Verdict::Warn,
            rules::Verdict::Reject => Verdict::Reject,
        }
    }
}

/// One rule that fired.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Finding {
    /// Stable reason code (`duplicate`, `expired`, …).
    pub code: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// Message for the picker.
    pub message: String,
}

/// Task progress.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TaskProgress {
    /// Expected lines.
    pub lines_total: u64,
    /// Lines complete.
    pub lines_complete: u64,
    /// Packs expected.
    pub units_expected: u64,
    /// Packs counted toward that (capped per line).
    pub units_counted: u64,
    /// All packs counted.
    pub packs_counted: u64,
    /// Containers counted.
    pub containers_counted: u64,
    /// Scans recorded.
    pub scans_total: u64,
    /// Scans rejected.
    pub scans_rejected: u64,
    /// Scans voided.
    pub scans_voided: u64,
    /// E.g. "12 of 40 lines complete, 130 of 400 units".
    pub summary: String,
}

impl From<rules::Progress> for TaskProgress {
    fn from(p: rules::Progress) -> Self {
        Self {
            summary: p.to_string(),
            lines_total: p.lines_total,
            lines_complete: p.lines_complete,
            units_expected: p.units_expected,
            units_counted: p.units_counted,
            packs_counted: p.packs_counted,
            containers_counted: p.containers_counted,
            scans_total: p.scans_total,
            scans_rejected: p.scans_rejected,
            scans_voided: p.scans_voided,
        }
    }
}

/// The answer to one scan.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ScanFeedback {
    /// The recorded scan's id (to void it).
    pub scan_id: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Primary reason code (`ok`, `duplicate`, `invalid_barcode`, …).
    pub code: String,
    /// The one-byte feedback code stored in the scan record.
    pub feedback_code: u8,
    /// Message for the picker.
    pub message: String,
    /// Every rule that fired, most important first.
    pub findings: Vec<Finding>,
    /// GS1 error code for an unreadable barcode (e.g. `invalid_check_digit`).
    pub gs1_error_code: Option<String>,
    /// GS1 error message.
    pub gs1_error_message: Option<String>,
    /// GTIN read.
    pub gtin: Option<String>,
    /// Serial read.
    pub serial: Option<String>,
    /// Lot read.
    pub lot: Option<String>,
    /// Expiry read (YYMMDD).
    pub expiry: Option<String>,
    /// SSCC read.
    pub sscc: Option<String>,
    /// Task progress after the scan.
    pub progress: TaskProgress,
    /// Returns tasks only: the pack's verification (`verified`, `review`,
    /// `not_verified` or `pending` when it could not be checked online).
    pub verification: Option<String>,
    /// Returns tasks only: a short line about the verification for the clerk.
    pub verification_message: Option<String>,
}

impl From<session::ScanFeedback> for ScanFeedback {
    fn from(f: session::ScanFeedback) -> Self {
        let (gs1_error_code, gs1_error_message) = match f.gs1_error {
            Some((c, m)) => (Some(c), Some(m)),
            None => (None, None),
        };
        Self {
            scan_id: f.scan_id.to_string(),
            verdict: f.verdict.into(),
            code: f.reason.code().to_owned(),
            feedback_code: f.reason.feedback().code(),
            message: f.message,
            findings: f
                .findings
                .into_iter()
                .map(|x| Finding {
                    code: x.reason.code().to_owned(),
                    verdict: x.verdict.into(),
                    message: x.message,
                })
                .collect(),
            gs1_error_code,
            gs1_error_message,
            gtin: f.identifiers.gtin.map(|g| g.to_string()),
            serial: f.identifiers.serial,
            lot: f.identifiers.lot,
            expiry: f.identifiers.expiry,
            sscc: f.identifiers.sscc.map(|s| s.to_string()),
            progress: f.progress.into(),
            verification: None,
            verification_message: None,
        }
    }
}

impl From<session::CheckedScan> for ScanFeedback {
    fn from(c: session::CheckedScan) -> Self {
        let mut out = ScanFeedback::from(c.feedback);
        if let Some(check) = c.check {
            out.verification = Some(check.result);
            out.verification_message = Some(check.message);
        }
        out
    }
}

/// A task on the device.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TaskInfo {
    /// Task id.
    pub task_id: String,
    /// Kind (`receiving`, `picking`, …), None until the task arrived by sync.
    pub kind: Option<String>,
    /// Site.
    pub site: Option<String>,
    /// Status (`open`, `closed`, …).
    pub status: Option<String>,
    /// Business references (`order`, `asn`, …).
    pub refs: HashMap<String, String>,
    /// Progress.
    pub progress: TaskProgress,
}

impl From<session::TaskSummary> for TaskInfo {
    fn from(t: session::TaskSummary) -> Self {
        Self {
            task_id: t.task_id,
            kind: t.header.as_ref().map(|h| h.kind.as_str().to_owned()),
            site: t.header.as_ref().map(|h| h.site.clone()),
            status: t.header.as_ref().map(|h| h.status.as_str().to_owned()),
            refs: t
                .header
                .map(|h| h.refs.into_iter().collect())
                .unwrap_or_default(),
            progress: t.progress.into(),
        }
    }
}

/// Pending writes of one task.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TaskPending {
    /// Task id.
    pub task_id: String,
    /// Scans and voids not yet acknowledged by the server.
    pub pending: u64,
}

/// Sync status for the status bar.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncStatus {
    /// Per task.
    pub tasks: Vec<TaskPending>,
    /// Sum.
    pub pending_total: u64,
    /// Last successful sync, ms since the epoch.
    pub last_success_ms: Option<u64>,
    /// Last attempt, ms since the epoch.
    pub last_attempt_ms: Option<u64>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Tasks the server refused; they are not synced again until someone looks.
    pub refused: Vec<TaskIssue>,
}

impl From<session::SyncStatus> for SyncStatus {
    fn from(st: session::SyncStatus) -> Self {
        Self {
            tasks: st
                .tasks
                .into_iter()
                .map(|t| TaskPending {
                    task_id: t.task_id,
                    pending: t.pending,
                })
                .collect(),
            pending_total: st.pending_total,
            last_success_ms: st.outcome.last_success_ms,
            last_attempt_ms: st.outcome.last_attempt_ms,
            last_error: st.outcome.last_error,
            refused: st
                .refused
                .into_iter()
                .map(|r| TaskIssue {
                    task_id: r.task_id,
                    reason: r.reason,
                })
                .collect(),
        }
    }
}

/// A task that did not sync, and why.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TaskIssue {
    /// Task id.
    pub task_id: String,
    /// Why: the server's reason code for a refusal (`foreign_actor`, `wrong_user`, …),
    /// or an error message for a failure.
    pub reason: String,
}

/// Which documents the device syncs: the session's own type, a UniFFI enum.
pub use crate::sync::SyncScope;

/// A task of the site as the server lists it (without its document).
#[derive(Debug, Clone, uniffi::Record)]
pub struct ListedTask {
    /// Task id: give it to `open_task` to work on it.
    pub task_id: String,
    /// Kind (`receiving`, `picking`, …).
    pub kind: String,
    /// Title.
    pub title: String,
    /// Status (`open`, …).
    pub status: String,
    /// Scans merged on the server so far.
    pub scan_count: i64,
    /// The document's version on the server when listed.
    pub version: i64,
    /// Whether this device holds the task (opened, or recorded into).
    pub on_device: bool,
}

/// The site's open tasks as last listed by the server.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TaskList {
    /// When the list was fetched, ms since the epoch (None: never).
    pub fetched_ms: Option<u64>,
    /// The tasks, newest first.
    pub tasks: Vec<ListedTask>,
}

impl TaskList {
    fn new(list: session::TaskList, held: &[String]) -> Self {
        Self {
            fetched_ms: (list.fetched_ms > 0).then_some(list.fetched_ms),
            tasks: list
                .tasks
                .into_iter()
                .map(|t| ListedTask {
                    on_device: held.contains(&t.id),
                    task_id: t.id,
                    kind: t.kind,
                    title: t.title,
                    status: t.status,
                    scan_count: t.scan_count,
                    version: t.version,
                })
                .collect(),
        }
    }
}

/// What one [`ScannerSession::sync_now`] did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncSummary {
    /// Tasks that ended the run in sync with the server.
    pub in_sync: Vec<String>,
    /// Tasks learned from the server in this run (now listed by `tasks()`): the site's
    /// open tasks with `SyncScope::Site`, and the follow-on of a nearly full task held
    /// (its `refs.continued_in`; the next sync fetches it).
    pub new_tasks: Vec<String>,
    /// Finished tasks that left the device: the server holds all of their scans.
    pub removed: Vec<String>,
    /// Tasks the server refused: not offered again until someone looks.
    pub refused: Vec<TaskIssue>,
    /// Tasks that failed this time for another reason (retried next run).
    pub failed: Vec<TaskIssue>,
    /// HTTP round trips made.
    pub round_trips: u32,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Version of the site's reference data held after the run.
    pub reference_version: Option<u64>,
}

impl From<SyncReport> for SyncSummary {
    fn from(r: SyncReport) -> Self {
        let issues = |m: std::collections::BTreeMap<String, String>| {
            m.into_iter()
                .map(|(task_id, reason)| TaskIssue { task_id, reason })
                .collect()
        };
        Self {
            in_sync: r.in_sync.into_iter().collect(),
            new_tasks: r.new_tasks,
            removed: r.removed,
            refused: issues(r.refused),
            failed: issues(r.failed),
            round_trips: u32::try_from(r.round_trips).unwrap_or(u32::MAX),
            bytes_sent: r.bytes_sent as u64,
            bytes_received: r.bytes_received as u64,
            reference_version: r.reference_version,
        }
    }
}

/// What the server wrote back for one scan (its `results` entry), after a sync.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ScanResultInfo {
    /// Verification outcome (`verified`, `not_verified`, `pending`, …).
    pub verification: Option<String>,
    /// Projection outcome (`projected`, `rejected`, …).
    pub projection: Option<String>,
    /// Exception codes raised for the scan.
    pub exceptions: Vec<String>,
    /// The server's verdict by the scan rules on its current reference data (`accept`,
    /// `warn`, `reject`), present only where it overrules the one given offline (None
    /// once `projection` is set: the server agrees). Authoritative.
    pub verdict: Option<String>,
    /// The rule's reason code for that verdict (`ok`, `recalled_lot`, …).
    pub reason: Option<String>,
}

impl From<doc::ScanResult> for ScanResultInfo {
    fn from(r: doc::ScanResult) -> Self {
        Self {
            // Codes as written, also those of a server newer than this build.
            verification: r.verification.map(|c| c.as_str().to_owned()),
            projection: r.projection.map(|c| c.as_str().to_owned()),
            exceptions: r.exceptions.iter().map(|e| e.as_str().to_owned()).collect(),
            verdict: r.verdict.map(|c| c.as_str().to_owned()),
            reason: r.reason.map(|c| c.as_str().to_owned()),
        }
    }
}

/// The site's reference data this device judges scans against offline.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ReferenceInfo {
    /// Site id.
    pub site: String,
    /// Version held (the server's version when last synced).
    pub version: u64,
    /// When the server last confirmed or updated it, ms since the Unix epoch.
    pub fetched_at_ms: Option<u64>,
    /// Milliseconds since then (None if never confirmed).
    pub age_ms: Option<u64>,
}

impl ReferenceInfo {
    fn new(r: session::ReferenceStatus, now_ms: u64) -> Self {
        Self {
            age_ms: r.age_ms(now_ms),
            site: r.site,
            version: r.version,
            fetched_at_ms: r.fetched_at_ms,
        }
    }
}

/// One expected line (for [`build_task_document`]).
#[derive(Debug, Clone, uniffi::Record)]
pub struct ExpectedLineSpec {
    /// GTIN-14.
    pub gtin: String,
    /// Quantity.
    pub quantity: u64,
    /// Required lot.
    pub lot: Option<String>,
}

/// One known unit (for [`build_task_document`]): `sscc:<18>` or `sgtin:<gtin>:<serial>`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ExpectedUnitSpec {
    /// Unit id.
    pub id: String,
    /// Parent container unit id.
    pub parent: Option<String>,
}

fn guard<T>(f: impl FnOnce() -> Result<T, CoreError>) -> Result<T, CoreError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let reason = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            Err(CoreError::Internal { reason })
        }
    }
}

/// Builds a task document's saved bytes, as the server would create it. For tests and
/// tooling without a server; real tasks arrive by sync.
#[uniffi::export]
pub fn build_task_document(
    kind: String,
    site: String,
    lines: Vec<ExpectedLineSpec>,
    units: Vec<ExpectedUnitSpec>,
) -> Result<Vec<u8>, CoreError> {
    guard(|| {
        let kind = TaskKind::parse(&kind).ok_or_else(|| CoreError::InvalidInput {
            reason: format!("unknown task kind {kind:?}"),
        })?;
        let expected = Expected {
            lines: lines
                .into_iter()
                .map(|l| {
                    let gtin =
                        crate::gs1::Gtin::parse(&l.gtin).map_err(|e| CoreError::InvalidInput {
                            reason: format!("GTIN {:?}: {e}", l.gtin),
                        })?;
                    Ok(ExpectedLine {
                        gtin,
                        quantity: l.quantity,
                        lot: l.lot,
                    })
                })
                .collect::<Result<_, CoreError>>()?,
            units: units
                .into_iter()
                .map(|u| ExpectedUnit {
                    id: u.id,
                    parent: u.parent,
                })
                .collect(),
        };
        Ok(session::build_task_document(
            kind,
            &site,
            &expected,
            session::now_ms(),
        )?)
    })
}

/// A scanner session over one directory (the app's private storage). Thread-safe.
#[derive(uniffi::Object)]
pub struct ScannerSession {
    inner: SharedSession,
}

impl ScannerSession {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, SessionError>,
    ) -> Result<T, CoreError> {
        guard(|| Ok(self.inner.with(f)?))
    }
}

#[uniffi::export]
impl ScannerSession {
    /// Opens (creating if needed) the session directory.
    #[uniffi::constructor]
    pub fn open(dir: String) -> Result<Arc<Self>, CoreError> {
        guard(|| {
            let s = Session::open(&dir, SessionOptions::default())?;
            Ok(Arc::new(Self {
                inner: SharedSession::new(s),
            }))
        })
    }

    /// Sets the logged-in user, device and tokens (persisted).
    pub fn set_identity(&self, identity: Identity) -> Result<(), CoreError> {
        self.with(|s| s.set_identity(identity))
    }

    /// The logged-in identity, if any.
    pub fn identity(&self) -> Result<Option<Identity>, CoreError> {
        self.with(|s| Ok(s.identity().cloned()))
    }

    /// Replaces the tokens of the logged-in user.
    pub fn set_tokens(
        &self,
        access_token: Option<String>,
        refresh_token: Option<String>,
        access_expires_ms: Option<u64>,
    ) -> Result<(), CoreError> {
        self.with(|s| s.set_tokens(access_token, refresh_token, access_expires_ms))
    }

    /// Signs in at `server_url` (e.g. `https://swt.example.com`) as `username` on the
    /// registered device `device_id` (blocking: call it off the main thread). Stores
    /// the tokens and identity and binds this install to the device's registered
    /// Automerge actor. Errors: `Refused` (`invalid_credentials`, `device_not_allowed`,
    /// …), `Network`, `ActorConflict`.
    pub fn login(
        &self,
        server_url: String,
        username: String,
        password: String,
        device_id: String,
    ) -> Result<Identity, CoreError> {
        self.with(|s| s.login(&server_url, &username, &password, &device_id))
    }

    /// Syncs the tasks on the device with the server signed in to (blocking: call it
    /// from a worker thread): with `SyncScope::Working` (the default) the tasks opened
    /// here or recorded into, with `SyncScope::Site` every open task of the site.
    /// Refreshes the task list when it is over 30 s old; finished tasks whose scans the
    /// server holds leave the device (`removed`). Scanning goes on meanwhile: the
    /// session is taken only for local steps, and scans recorded during a sync go out in
    /// its next round or the next sync. A second `sync_now` waits for the first.
    /// Refreshes the tokens once if they expired. Errors: `NotLoggedIn` (sign in again:
    /// nothing is lost), `Network` (retry later), `Refused`, `Storage`. Refused tasks are
    /// in the summary and in `sync_status()`, and are not synced again.
    pub fn sync_now(&self) -> Result<SyncSummary, CoreError> {
        guard(|| Ok(self.inner.sync_now()?.into()))
    }

    /// Starts working on a task from the task list (blocking): the device holds and
    /// syncs it from now on, and this call fetches it in one round trip. Returns it with
    /// its progress. On a `Network` error the task stays opened and arrives with the
    /// next sync. Errors: `InvalidInput` (not a task id), `NotFound` (the server has no
    /// such task for this device), `Network`, `NotLoggedIn`.
    pub fn open_task(&self, task_id: String) -> Result<TaskInfo, CoreError> {
        guard(|| {
            let report = self.inner.open_task(&task_id)?;
            if let Some(why) = report.failed.get(&task_id) {
                let what = format!("task {task_id}: {why}");
                return Err(if why.starts_with("not_found") {
                    CoreError::NotFound { what }
                } else {
                    CoreError::Network { reason: what }
                });
            }
            Ok(self.inner.with(|s| s.task(&task_id))?.into())
        })
    }

    /// The site's open tasks as last listed by the server (works offline; empty before
    /// the first sync).
    pub fn task_list(&self) -> Result<TaskList, CoreError> {
        self.with(|s| Ok(TaskList::new(s.task_list()?, &s.task_ids())))
    }

    /// Fetches the site's task list now (blocking; one request, no documents).
    pub fn refresh_task_list(&self) -> Result<TaskList, CoreError> {
        guard(|| {
            let list = self.inner.refresh_task_list()?;
            Ok(TaskList::new(list, &self.inner.with(|s| Ok(s.task_ids()))?))
        })
    }

    /// Which documents this device syncs.
    pub fn sync_scope(&self) -> Result<SyncScope, CoreError> {
        self.with(|s| Ok(s.sync_scope()))
    }

    /// Chooses which documents this device syncs (persisted): `Working` for a scanner,
    /// `Site` for a supervisor's device that follows every open task.
    pub fn set_sync_scope(&self, scope: SyncScope) -> Result<(), CoreError> {
        self.with(|s| s.set_sync_scope(scope))
    }

    /// What the server wrote back for a scan after a sync (verification, projection,
    /// exceptions), or None if nothing yet.
    pub fn scan_result(
        &self,
        task_id: String,
        scan_id: String,
    ) -> Result<Option<ScanResultInfo>, CoreError> {
        self.with(|s| s.scan_result(&task_id, &scan_id))
            .map(|r| r.map(Into::into))
    }

    /// The reference data of the device's site held on this device (None before the
    /// first sync brought it, or when signed out). Each sync refreshes it.
    pub fn reference_status(&self) -> Result<Option<ReferenceInfo>, CoreError> {
        self.with(|s| s.site_reference_status())
            .map(|r| r.map(|r| ReferenceInfo::new(r, session::now_ms())))
    }

    /// Logs out; recorded scans stay and sync at the next login.
    pub fn logout(&self) -> Result<(), CoreError> {
        self.with(|s| s.logout())
    }

    /// Sets the location written into following scans, or clears it.
    pub fn set_location(&self, location: Option<String>) -> Result<(), CoreError> {
        self.with(|s| s.set_location(location))
    }

    /// Stores a site's reference data, given as JSON (`ReferenceData`).
    pub fn put_reference_json(&self, json: Vec<u8>) -> Result<(), CoreError> {
        let data: ReferenceData =
            serde_json::from_slice(&json).map_err(|e| CoreError::InvalidInput {
                reason: format!("reference data: {e}"),
            })?;
        self.with(|s| s.put_reference(data))
    }

    /// Applies a reference-data delta, given as JSON (`ReferenceDelta`).
    pub fn apply_reference_delta_json(&self, json: Vec<u8>) -> Result<(), CoreError> {
        let delta: ReferenceDelta =
            serde_json::from_slice(&json).map_err(|e| CoreError::InvalidInput {
                reason: format!("reference delta: {e}"),
            })?;
        self.with(|s| s.apply_reference_delta(&delta))
    }

    /// Adds a task from a document's saved bytes.
    pub fn add_task(&self, task_id: String, document: Vec<u8>) -> Result<(), CoreError> {
        self.with(|s| s.add_task_bytes(&task_id, &document))
    }

    /// Gets a task the server refused going again: the local copy is set aside (kept in
    /// the store's quarantine for a person to examine) and the next sync fetches the
    /// server's copy. Returns where the local copy now lies.
    pub fn reset_refused_task(&self, task_id: String) -> Result<String, CoreError> {
        self.with(|s| s.reset_refused_task(&task_id))
    }

    /// Every task on the device.
    pub fn tasks(&self) -> Result<Vec<TaskInfo>, CoreError> {
        self.with(|s| s.tasks())
            .map(|t| t.into_iter().map(Into::into).collect())
    }

    /// One task.
    pub fn task(&self, task_id: String) -> Result<TaskInfo, CoreError> {
        self.with(|s| s.task(&task_id)).map(Into::into)
    }

    /// Records one scan now: parse, rules, durable append; returns the feedback to show.
    /// An unreadable barcode is recorded too (code `invalid_barcode`).
    pub fn record_scan(&self, task_id: String, raw: Vec<u8>) -> Result<ScanFeedback, CoreError> {
        self.record_scan_at(task_id, raw, session::now_ms())
    }

    /// [`ScannerSession::record_scan`] with an explicit device time (ms since the epoch).
    pub fn record_scan_at(
        &self,
        task_id: String,
        raw: Vec<u8>,
        device_time_ms: u64,
    ) -> Result<ScanFeedback, CoreError> {
        guard(|| {
            Ok(self
                .inner
                .record_scan(&task_id, &raw, device_time_ms)?
                .into())
        })
    }

    /// Records a GTIN or SSCC typed by hand for a label that will not scan (digits only;
    /// GTIN-8/12/13/14 or 18-digit SSCC, with its check digit), like a scan otherwise.
    /// `record_scan` never guesses that bare digits are a typed key: the GS1 engine reads
    /// them as AI data, so a typed key must come through here. A wrong check digit or
    /// length gives `invalid_barcode` with the reason in `gs1_error_code`.
    pub fn record_keyed(&self, task_id: String, typed: String) -> Result<ScanFeedback, CoreError> {
        self.record_keyed_at(task_id, typed, session::now_ms())
    }

    /// [`ScannerSession::record_keyed`] with an explicit device time (ms since the epoch).
    pub fn record_keyed_at(
        &self,
        task_id: String,
        typed: String,
        device_time_ms: u64,
    ) -> Result<ScanFeedback, CoreError> {
        guard(|| {
            Ok(self
                .inner
                .record_keyed(&task_id, &typed, device_time_ms)?
                .into())
        })
    }

    /// Voids one of the user's scans; returns the progress after it.
    pub fn void_scan(&self, task_id: String, scan_id: String) -> Result<TaskProgress, CoreError> {
        self.with(|s| s.void_scan(&task_id, &scan_id))
            .map(Into::into)
    }

    /// Progress of a task.
    pub fn progress(&self, task_id: String) -> Result<TaskProgress, CoreError> {
        self.with(|s| s.progress(&task_id)).map(Into::into)
    }

    /// Pending writes per task and the last sync outcome.
    pub fn sync_status(&self) -> Result<SyncStatus, CoreError> {
        self.with(|s| s.sync_status()).map(Into::into)
    }

    /// Makes batched writes durable.
    pub fn flush(&self) -> Result<(), CoreError> {
        self.with(|s| s.flush())
    }

    /// This install's actor id (hex), the prefix of its scan ids.
    pub fn install_id(&self) -> Result<String, CoreError> {
        self.with(|s| Ok(s.actor_hex().to_owned()))
    }
}
