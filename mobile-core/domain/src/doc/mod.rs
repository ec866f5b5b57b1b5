//! Task documents over Automerge: the only module that knows Automerge paths.
//!
//! One [`TaskDocument`] per unit of warehouse work, with five owned sections (`header`,
//! `expected`, `results` written by the server; `scans`, `voids` written by devices).
//! Also the sync helpers both sides use and the server's vetting of incoming device
//! changes ([`vet_and_apply`]). No I/O here: persistence is `store`'s job.
//! The schema is specified for other implementations in `docs/task-document.md`.
//!
//! By section: `sections` (`header`, `expected`), `scans` (`scans`, `voids`),
//! `built_change` (the fast path for large batches of scans) and `results`.

mod built_change;
mod results;
mod scans;
mod sections;
mod sync;
#[cfg(test)]
mod tests;
mod vet;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, AutomergeError, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value,
};
use thiserror::Error;

use crate::model::{RecordError, ScanId};

pub use self::results::{
    ExceptionKind, Issue, ProjectionOutcome, Rejection, ScanResult, VerificationOutcome,
};
pub use self::scans::StoredRecord;
pub use self::sections::{
    CONTINUED_IN_REF, Expected, ExpectedLine, ExpectedUnit, Header, TaskKind, TaskStatus,
};
pub use self::sync::{SyncError, SyncState, sync_in_memory};
pub use self::vet::{
    Accepted, Caller, Refusal, RefusalReason, VetError, limits, scan_id_prefix, vet_and_apply,
};

/// Document schema version written at `ROOT.schema`.
pub const SCHEMA_VERSION: u64 = 1;

/// Root keys of the sections; `pub(crate)` so only this module tree uses them.
pub(crate) const K_SCHEMA: &str = "schema";
pub(crate) const K_HEADER: &str = "header";
pub(crate) const K_EXPECTED: &str = "expected";
pub(crate) const K_SCANS: &str = "scans";
pub(crate) const K_VOIDS: &str = "voids";
pub(crate) const K_RESULTS: &str = "results";

/// Errors of the typed document API.
#[derive(Debug, Error)]
pub enum DocError {
    /// Automerge refused an operation or could not load bytes.
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
    /// A section or field is absent (e.g. a device that has not synced the document yet).
    #[error("missing {0}")]
    Missing(&'static str),
    /// A value has another type than the schema says.
    #[error("wrong type at {0}")]
    WrongType(String),
    /// A stored value is not a valid value of its field.
    #[error("invalid value at {path}: {why}")]
    Invalid {
        /// Where.
        path: String,
        /// Why.
        why: String,
    },
    /// A scan or void record could not be encoded or decoded.
    #[error("record {id}: {source}")]
    Record {
        /// The scan id.
        id: String,
        /// The record error.
        source: RecordError,
    },
    /// A scan with this id is already in the document (scans are immutable).
    #[error("scan {0} already recorded")]
    DuplicateScan(ScanId),
    /// The scan to void is not in the document.
    #[error("scan {0} not in document")]
    UnknownScan(ScanId),
    /// The scan was already voided.
    #[error("scan {0} already voided")]
    AlreadyVoided(ScanId),
    /// Only the user who made a scan may void it.
    #[error("scan {0} belongs to another user")]
    NotOwnScan(ScanId),
}

/// A task document: the typed view over one Automerge document.
pub struct TaskDocument {
    pub(crate) doc: AutoCommit,
    scans: Option<ObjId>,
    voids: Option<ObjId>,
    /// Actor and sequence number of the last change [`TaskDocument::append_scan_records`]
    /// built. The actor may have made later changes (then Automerge refuses the next
    /// built change as a duplicate sequence number and we ask it), never fewer.
    built_tip: Option<(ActorId, u64)>,
}

impl std::fmt::Debug for TaskDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskDocument")
            .field("actor", self.doc.get_actor())
            .field("scans", &self.scan_count())
            .finish()
    }
}

fn get_obj(doc: &AutoCommit, parent: &ObjId, key: &'static str) -> Option<ObjId> {
    match doc.get(parent, key) {
        Ok(Some((Value::Object(_), id))) => Some(id),
        _ => None,
    }
}

fn str_at(
    doc: &AutoCommit,
    obj: &ObjId,
    key: &str,
    path: &str,
) -> Result<Option<String>, DocError> {
    match doc.get(obj, key)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(v) => Ok(Some(v.to_string())),
            _ => Err(DocError::WrongType(format!("{path}.{key}"))),
        },
        Some(_) => Err(DocError::WrongType(format!("{path}.{key}"))),
    }
}

fn bytes_value(v: &Value<'_>) -> Option<Vec<u8>> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Bytes(b) => Some(b.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn bytes_ref<'a>(v: &'a automerge::ValueRef<'_>) -> Option<&'a [u8]> {
    match v {
        automerge::ValueRef::Scalar(automerge::ScalarValueRef::Bytes(b)) => Some(b),
        _ => None,
    }
}

impl TaskDocument {
    /// Creates a new document with every section (server side). Sections must be created
    /// exactly once, by one actor: two devices creating `scans` concurrently would make
    /// two conflicting maps and one would hide the other's scans.
    pub fn create(actor: ActorId, header: &Header, time_s: i64) -> Result<Self, DocError> {
        let mut doc = AutoCommit::new().with_actor(actor);
        doc.put(ROOT, K_SCHEMA, SCHEMA_VERSION)?;
        doc.put_object(ROOT, K_HEADER, ObjType::Map)?;
        let expected = doc.put_object(ROOT, K_EXPECTED, ObjType::Map)?;
        doc.put_object(&expected, "lines", ObjType::List)?;
        doc.put_object(&expected, "units", ObjType::Map)?;
        doc.put_object(ROOT, K_SCANS, ObjType::Map)?;
        doc.put_object(ROOT, K_VOIDS, ObjType::Map)?;
        doc.put_object(ROOT, K_RESULTS, ObjType::Map)?;
        let mut td = Self::wrap(doc);
        td.write_header(header)?;
        td.doc.commit_with(
            CommitOptions::default()
                .with_message("create")
                .with_time(time_s),
        );
        Ok(td)
    }

    /// An empty document for a device that will receive the task through sync.
    pub fn empty(actor: ActorId) -> Self {
        Self::wrap(AutoCommit::new().with_actor(actor))
    }

    /// Loads saved bytes (`save()` output, optionally followed by incremental changes).
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, DocError> {
        let doc = AutoCommit::load(bytes)?.with_actor(actor);
        Ok(Self::wrap(doc))
    }

    /// Loads bytes whose integrity is already guaranteed (the store's CRC-framed
    /// snapshot), skipping Automerge's re-hash of the heads: faster opens on the device.
    pub fn load_trusted(bytes: &[u8], actor: ActorId) -> Result<Self, DocError> {
        let doc = AutoCommit::load_unverified_heads(bytes)?.with_actor(actor);
        Ok(Self::wrap(doc))
    }

    pub(crate) fn wrap(doc: AutoCommit) -> Self {
        let mut td = Self {
            doc,
            scans: None,
            voids: None,
            built_tip: None,
        };
        td.refresh_sections();
        td
    }

    /// Re-reads the section object ids (after a sync brought the sections in).
    pub(crate) fn refresh_sections(&mut self) {
        self.scans = get_obj(&self.doc, &ROOT, K_SCANS);
        self.voids = get_obj(&self.doc, &ROOT, K_VOIDS);
    }

    /// Applies saved or incremental bytes on top of this document (used by the store).
    pub fn load_incremental(&mut self, bytes: &[u8]) -> Result<(), DocError> {
        self.doc.load_incremental(bytes)?;
        self.refresh_sections();
        Ok(())
    }

    /// Whole document, compact and compressed.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Encoded changes that are not ancestors of `heads` (what a store must still append).
    pub fn save_after(&mut self, heads: &[automerge::ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// The bytes of the last change this document's actor made (one scan → one change).
    pub fn last_local_change(&mut self) -> Option<Vec<u8>> {
        self.doc
            .get_last_local_change()
            .map(|c| c.raw_bytes().to_vec())
    }

    /// Current heads.
    pub fn heads(&mut self) -> Vec<automerge::ChangeHash> {
        self.doc.get_heads()
    }

    /// This document's actor.
    pub fn actor(&self) -> &ActorId {
        self.doc.get_actor()
    }

    /// Writes with `actor` from now on (a device adopting its registered actor).
    pub fn set_actor(&mut self, actor: ActorId) {
        self.doc.set_actor(actor);
    }

    /// Operations `actor` wrote in changes the peer at `since` has not seen: what a
    /// device still has to deliver.
    pub fn ops_by_since(&mut self, actor: &ActorId, since: &[automerge::ChangeHash]) -> u64 {
        self.doc
            .get_changes_meta(since)
            .iter()
            .filter(|c| *c.actor == *actor)
            .map(|c| (c.max_op + 1).saturating_sub(c.start_op))
            .sum()
    }

    /// The underlying Automerge document, read-only (for diagnostics and tests).
    pub fn automerge(&self) -> &AutoCommit {
        &self.doc
    }

    /// True once the sections exist (created here or received by sync).
    pub fn is_initialised(&self) -> bool {
        self.scans.is_some() && self.voids.is_some()
    }

    /// Schema version at `ROOT.schema`.
    pub fn schema_version(&self) -> Result<u64, DocError> {
        match self.doc.get(ROOT, K_SCHEMA)? {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Uint(v) => Ok(*v),
                ScalarValue::Int(v) if *v >= 0 => Ok(*v as u64),
                _ => Err(DocError::WrongType(K_SCHEMA.into())),
            },
            Some(_) => Err(DocError::WrongType(K_SCHEMA.into())),
            None => Err(DocError::Missing(K_SCHEMA)),
        }
    }

    fn section(&self, key: &'static str) -> Result<ObjId, DocError> {
        get_obj(&self.doc, &ROOT, key).ok_or(DocError::Missing(key))
    }

    // ---- header (server) ----

    /// Commits pending server writes as one change.
    pub fn commit(&mut self, time_s: i64) {
        self.doc
            .commit_with(CommitOptions::default().with_time(time_s));
    }
}
