//! Task documents over Automerge: the only module that knows Automerge paths.
//!
//! One [`TaskDocument`] per unit of warehouse work, with five owned sections (`header`,
//! `expected`, `results` written by the server; `scans`, `voids` written by devices).
//! Also the sync helpers both sides use and the server's vetting of incoming device
//! changes ([`vet_and_apply`]). No I/O here: persistence is `store`'s job.
//! The schema is specified for other implementations in `docs/task-document.md`.

mod sync;
mod vet;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, AutomergeError, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value,
};
use thiserror::Error;

use crate::model::{RecordError, Scan, ScanId, Void};

pub use self::sync::{SyncError, SyncState, sync_in_memory};
pub use self::vet::{
    Accepted, Caller, Refusal, RefusalReason, VetError, limits, scan_id_prefix, vet_and_apply,
};

/// Batches of at least this many scans may be applied as one built change (see
/// [`TaskDocument::append_scan_records`]) …
const BUILT_CHANGE_MIN_SCANS: usize = 64;
/// … if they hold at least one scan per this many ops already in the document: a built
/// change costs ~0.2 µs per existing op on top of ~1.5 µs per scan, a transaction ~16 µs
/// per scan, so it wins from about one scan per 75 ops.
const BUILT_CHANGE_OPS_PER_SCAN: u64 = 64;

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

crate::code_table! {
    /// Kind of warehouse work a document covers.
    pub enum TaskKind {
        /// Inbound shipment / ASN.
        Receiving = "receiving",
        /// Pick order.
        Picking = "picking",
        /// Packing / aggregation job.
        Packing = "packing",
        /// Outbound shipment.
        Shipping = "shipping",
        /// Returns session.
        Returns = "returns",
        /// Stock count.
        StockCount = "stock_count",
    }
    /// Stable name as stored in the document.
    fn as_str;
}

crate::code_table! {
    /// Lifecycle of a task, set by the server.
    pub enum TaskStatus {
        /// Created, scanning allowed.
        Open = "open",
        /// Closed: no more scans expected; late scans still merge and are flagged.
        Closed = "closed",
        /// Cancelled.
        Cancelled = "cancelled",
        /// Full: continue in a follow-on document (documents are kept bounded).
        Continued = "continued",
    }
    /// Stable name as stored in the document.
    fn as_str;
}

/// The server-owned `header` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Kind of work.
    pub kind: TaskKind,
    /// Site id.
    pub site: String,
    /// Business references: `po`, `asn`, `order`, `shipment`, … → value.
    pub refs: BTreeMap<String, String>,
    /// Status.
    pub status: TaskStatus,
}

/// One expected line: a GTIN and a quantity, optionally a required lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedLine {
    /// GTIN-14.
    pub gtin: String,
    /// Expected number of packs.
    pub quantity: u64,
    /// If set, only this lot is acceptable.
    pub lot: Option<String>,
}

/// A known serialized unit or container, with its parent in the packing hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedUnit {
    /// `sscc:<18 digits>` or `sgtin:<gtin14>:<serial>`.
    pub id: String,
    /// The unit id of its parent container, if any.
    pub parent: Option<String>,
}

/// The server-owned `expected` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Quantity lines.
    pub lines: Vec<ExpectedLine>,
    /// Known units (parent → children is derived from each unit's parent); read back in
    /// id order.
    pub units: Vec<ExpectedUnit>,
}

/// The server-owned outcome for one scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// Verification outcome code (`verified`, `not_verified`, `pending`, …).
    pub verification: Option<String>,
    /// Projection outcome code (`projected`, `rejected`, …).
    pub projection: Option<String>,
    /// Exception codes raised for this scan.
    pub exceptions: Vec<String>,
    /// The server's verdict on the scan by the scan rules on its current reference data
    /// (`accept`, `warn`, `reject`): the authoritative one, which the scanner shows where
    /// it differs from its own.
    pub verdict: Option<String>,
    /// The rules' primary reason code for that verdict (`ok`, `recalled_lot`, …).
    pub reason: Option<String>,
}

/// A scan id and its encoded record as stored (borrowed from the document where
/// Automerge allows).
pub type StoredRecord<'a> = (ScanId, Cow<'a, [u8]>);

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

    fn write_header(&mut self, h: &Header) -> Result<(), DocError> {
        let header = self.section(K_HEADER)?;
        self.doc.put(&header, "kind", h.kind.as_str())?;
        self.doc.put(&header, "site", h.site.as_str())?;
        self.doc.put(&header, "status", h.status.as_str())?;
        let refs = self.doc.put_object(&header, "refs", ObjType::Map)?;
        for (k, v) in &h.refs {
            self.doc.put(&refs, k.as_str(), v.as_str())?;
        }
        Ok(())
    }

    /// Replaces the header (server only) and commits.
    pub fn set_header(&mut self, h: &Header, time_s: i64) -> Result<(), DocError> {
        self.write_header(h)?;
        self.doc
            .commit_with(CommitOptions::default().with_time(time_s));
        Ok(())
    }

    /// Sets only the status (server only) and commits.
    pub fn set_status(&mut self, status: TaskStatus, time_s: i64) -> Result<(), DocError> {
        let header = self.section(K_HEADER)?;
        self.doc.put(&header, "status", status.as_str())?;
        self.doc
            .commit_with(CommitOptions::default().with_time(time_s));
        Ok(())
    }

    /// Reads the header.
    pub fn header(&self) -> Result<Header, DocError> {
        let header = self.section(K_HEADER)?;
        let p = K_HEADER;
        let kind_s =
            str_at(&self.doc, &header, "kind", p)?.ok_or(DocError::Missing("header.kind"))?;
        let kind = TaskKind::parse(&kind_s).ok_or_else(|| DocError::Invalid {
            path: "header.kind".into(),
            why: format!("unknown kind {kind_s:?}"),
        })?;
        let status_s =
            str_at(&self.doc, &header, "status", p)?.ok_or(DocError::Missing("header.status"))?;
        let status = TaskStatus::parse(&status_s).ok_or_else(|| DocError::Invalid {
            path: "header.status".into(),
            why: format!("unknown status {status_s:?}"),
        })?;
        let site =
            str_at(&self.doc, &header, "site", p)?.ok_or(DocError::Missing("header.site"))?;
        let mut refs = BTreeMap::new();
        if let Some(r) = get_obj(&self.doc, &header, "refs") {
            for item in self.doc.map_range(&r, ..) {
                let key = item.key.to_string();
                if let Some(v) = str_at(&self.doc, &r, &key, "header.refs")? {
                    refs.insert(key, v);
                }
            }
        }
        Ok(Header {
            kind,
            site,
            refs,
            status,
        })
    }

    // ---- expected (server) ----

    /// Replaces the expected lines and units (server only) and commits.
    pub fn set_expected(&mut self, e: &Expected, time_s: i64) -> Result<(), DocError> {
        let expected = self.section(K_EXPECTED)?;
        let lines = self.doc.put_object(&expected, "lines", ObjType::List)?;
        for (i, l) in e.lines.iter().enumerate() {
            let m = self.doc.insert_object(&lines, i, ObjType::Map)?;
            self.doc.put(&m, "gtin", l.gtin.as_str())?;
            self.doc.put(&m, "qty", l.quantity)?;
            if let Some(lot) = &l.lot {
                self.doc.put(&m, "lot", lot.as_str())?;
            }
        }
        let units = self.doc.put_object(&expected, "units", ObjType::Map)?;
        for u in &e.units {
            self.doc
                .put(&units, u.id.as_str(), u.parent.as_deref().unwrap_or(""))?;
        }
        self.doc
            .commit_with(CommitOptions::default().with_time(time_s));
        Ok(())
    }

    /// Reads the expected section.
    pub fn expected(&self) -> Result<Expected, DocError> {
        let expected = self.section(K_EXPECTED)?;
        let mut out = Expected::default();
        if let Some(lines) = get_obj(&self.doc, &expected, "lines") {
            for i in 0..self.doc.length(&lines) {
                let m = match self.doc.get(&lines, i)? {
                    Some((Value::Object(ObjType::Map), id)) => id,
                    _ => return Err(DocError::WrongType(format!("expected.lines[{i}]"))),
                };
                let path = format!("expected.lines[{i}]");
                let gtin = str_at(&self.doc, &m, "gtin", &path)?
                    .ok_or(DocError::Missing("expected.lines[].gtin"))?;
                let quantity = match self.doc.get(&m, "qty")? {
                    Some((Value::Scalar(s), _)) => match s.as_ref() {
                        ScalarValue::Uint(v) => *v,
                        ScalarValue::Int(v) if *v >= 0 => *v as u64,
                        _ => return Err(DocError::WrongType(format!("{path}.qty"))),
                    },
                    _ => return Err(DocError::Missing("expected.lines[].qty")),
                };
                let lot = str_at(&self.doc, &m, "lot", &path)?;
                out.lines.push(ExpectedLine {
                    gtin,
                    quantity,
                    lot,
                });
            }
        }
        if let Some(units) = get_obj(&self.doc, &expected, "units") {
            for item in self.doc.map_range(&units, ..) {
                let id = item.key.to_string();
                let parent =
                    str_at(&self.doc, &units, &id, "expected.units")?.filter(|p| !p.is_empty());
                out.units.push(ExpectedUnit { id, parent });
            }
        }
        Ok(out)
    }

    // ---- scans (devices) ----

    fn scans_obj(&self) -> Result<&ObjId, DocError> {
        self.scans.as_ref().ok_or(DocError::Missing(K_SCANS))
    }

    fn voids_obj(&self) -> Result<&ObjId, DocError> {
        self.voids.as_ref().ok_or(DocError::Missing(K_VOIDS))
    }

    fn put_scan(&mut self, scan: &Scan) -> Result<(), DocError> {
        let record = scan.encode_record().map_err(|source| DocError::Record {
            id: scan.id.to_string(),
            source,
        })?;
        let scans = self.scans_obj()?.clone();
        if self.doc.get(&scans, scan.id.as_str())?.is_some() {
            return Err(DocError::DuplicateScan(scan.id.clone()));
        }
        self.doc
            .put(&scans, scan.id.as_str(), ScalarValue::Bytes(record))?;
        Ok(())
    }

    /// Adds one scan as one value and commits it as one change. Refuses an id already
    /// present (scans are immutable) and an invalid record; on error nothing is kept.
    pub fn add_scan(&mut self, scan: &Scan) -> Result<(), DocError> {
        if let Err(e) = self.put_scan(scan) {
            self.doc.rollback();
            return Err(e);
        }
        self.doc
            .commit_with(CommitOptions::default().with_time((scan.device_time_ms / 1000) as i64));
        Ok(())
    }

    /// Adds several scans in one change (bulk import); all or nothing.
    pub fn add_scans(&mut self, scans: &[Scan]) -> Result<(), DocError> {
        let scans_obj = self.scans_obj()?.clone();
        let mut ids = HashSet::with_capacity(scans.len());
        let mut records = Vec::with_capacity(scans.len());
        for s in scans {
            if !ids.insert(&s.id) || self.doc.get(&scans_obj, s.id.as_str())?.is_some() {
                return Err(DocError::DuplicateScan(s.id.clone()));
            }
            let record = s.encode_record().map_err(|source| DocError::Record {
                id: s.id.to_string(),
                source,
            })?;
            records.push(record);
        }
        let time_s = scans
            .last()
            .map(|s| (s.device_time_ms / 1000) as i64)
            .unwrap_or(0);
        self.append_scan_records(
            scans
                .iter()
                .map(|s| &s.id)
                .zip(records.iter().map(Vec::as_slice)),
            time_s,
        )?;
        Ok(())
    }

    /// Adds scans whose records are already encoded and valid, as one change by this
    /// document's actor, and returns that change's bytes (for the store's change log);
    /// all or nothing. The caller guarantees that no id is in the document or repeated
    /// (the store's id sets, or the checks of [`TaskDocument::add_scans`]): nothing here
    /// looks them up, which would cost about a third of a put.
    ///
    /// Why two ways: a put in a local transaction splices the new op into each of ~20
    /// columns of Automerge's op set, ~16 µs per scan (automerge 0.12, our test machine)
    /// whatever the batch size. Applying a ready-made change merges all its ops into the
    /// columns in one pass: ~1.5 µs per scan plus ~0.2 µs per op already in the
    /// document. So a large batch is built as a change (the same ops a transaction would
    /// make: one `put` of a bytes value per new key, no predecessors) and applied; a small
    /// one goes through a transaction.
    pub fn append_scan_records<'a>(
        &mut self,
        entries: impl ExactSizeIterator<Item = (&'a ScanId, &'a [u8])>,
        time_s: i64,
    ) -> Result<Vec<u8>, DocError> {
        let n = entries.len();
        let built = n >= BUILT_CHANGE_MIN_SCANS
            && (n as u64).saturating_mul(BUILT_CHANGE_OPS_PER_SCAN) >= self.doc.stats().num_ops;
        self.append_records_with(entries, time_s, built)
    }

    /// [`TaskDocument::append_scan_records`] with the way chosen by the caller.
    fn append_records_with<'a>(
        &mut self,
        entries: impl ExactSizeIterator<Item = (&'a ScanId, &'a [u8])>,
        time_s: i64,
        built: bool,
    ) -> Result<Vec<u8>, DocError> {
        if entries.len() == 0 {
            return Ok(Vec::new());
        }
        let scans = self.scans_obj()?.clone();
        if !built {
            for (id, record) in entries {
                if let Err(e) =
                    self.doc
                        .put(&scans, id.as_str(), ScalarValue::Bytes(record.to_vec()))
                {
                    self.doc.rollback();
                    return Err(e.into());
                }
            }
            self.doc
                .commit_with(CommitOptions::default().with_time(time_s));
            return Ok(self.last_local_change().unwrap_or_default());
        }
        let entries: Vec<_> = entries.collect();
        let mut use_tip = true;
        loop {
            let change = self.build_put_change(&scans, &entries, time_s, use_tip)?;
            let (hash, actor, seq) = (change.hash(), change.actor_id().clone(), change.seq());
            let bytes = change.raw_bytes().to_vec();
            match self.doc.apply_changes([change]) {
                Ok(()) => {}
                // A sequence number taken from `built_tip` is too low if this actor
                // committed since (a void, say): Automerge refuses the change whole, and
                // we ask Automerge for the number.
                Err(_) if use_tip && self.built_tip.take().is_some() => {
                    use_tip = false;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            if !self.doc.get_heads().contains(&hash) {
                // Cannot happen (the deps are the current heads); never report a scan as
                // applied if it is not.
                return Err(DocError::Invalid {
                    path: K_SCANS.into(),
                    why: "built change was not applied".into(),
                });
            }
            // Again (see `build_put_change`): if this was the actor's first change,
            // Automerge only now finds it among the document's actors, so that
            // `last_local_change` sees this change.
            self.doc.set_actor(actor.clone());
            self.built_tip = Some((actor, seq));
            return Ok(bytes);
        }
    }

    /// One change by this document's actor on top of the current heads, putting each
    /// record under its key in `scans` (`obj`) as a new value. With `use_tip`, the
    /// sequence number follows the last built change by the same actor, if any.
    fn build_put_change(
        &mut self,
        obj: &ObjId,
        entries: &[(&ScanId, &[u8])],
        time_s: i64,
        use_tip: bool,
    ) -> Result<automerge::Change, DocError> {
        use automerge::legacy;
        let obj = match obj {
            ObjId::Id(counter, actor, _) => {
                legacy::ObjectId::Id(legacy::OpId(*counter, actor.clone()))
            }
            ObjId::Root => return Err(DocError::WrongType(K_SCANS.into())),
        };
        // Re-setting the actor makes Automerge look it up among the document's actors:
        // until then an actor that only appears in applied (rather than committed)
        // changes is not recognised as local, and its last change is not found.
        let actor = self.doc.get_actor().clone();
        self.doc.set_actor(actor.clone());
        // Automerge finds the actor's last sequence number by rebuilding its last change
        // (~0.5 µs per op: milliseconds after a large batch), so remember our own.
        let last_seq = match &self.built_tip {
            Some((a, seq)) if use_tip && *a == actor => *seq,
            _ => self.doc.get_last_local_change().map_or(0, |c| c.seq()),
        };
        let seq = last_seq + 1;
        let deps = self.doc.get_heads();
        // Op counters continue after the largest in the document, which is the largest
        // `max_op` of the heads (every change's ops come after those of its deps).
        let max_op = deps
            .iter()
            .filter_map(|h| self.doc.get_change_meta_by_hash(h).map(|m| m.max_op))
            .max()
            .unwrap_or(0);
        let start_op = max_op
            .checked_add(1)
            .and_then(std::num::NonZeroU64::new)
            .ok_or_else(|| DocError::Invalid {
                path: K_SCANS.into(),
                why: "op counter exhausted".into(),
            })?;
        let operations = entries
            .iter()
            .map(|(id, record)| legacy::Op {
                action: legacy::OpType::Put(ScalarValue::Bytes(record.to_vec())),
                obj: obj.clone(),
                key: legacy::Key::Map(id.as_str().into()),
                pred: legacy::SortedVec::new(),
                insert: false,
            })
            .collect();
        Ok(automerge::Change::from(automerge::ExpandedChange {
            operations,
            actor_id: actor,
            hash: None,
            seq,
            start_op,
            time: time_s,
            message: None,
            deps,
            extra_bytes: Vec::new(),
            author: None,
        }))
    }

    /// Number of scans.
    pub fn scan_count(&self) -> usize {
        match &self.scans {
            Some(s) => self.doc.length(s),
            None => 0,
        }
    }

    /// True if a scan with this id is recorded.
    pub fn has_scan(&self, id: &ScanId) -> bool {
        match &self.scans {
            Some(s) => matches!(self.doc.get(s, id.as_str()), Ok(Some(_))),
            None => false,
        }
    }

    /// Every scan id in the document (one pass over the keys, no record decoding; keys
    /// that are not scan ids are skipped).
    pub fn scan_ids(&self) -> std::collections::HashSet<ScanId> {
        match &self.scans {
            Some(s) => self
                .doc
                .keys(s)
                .filter_map(|k| ScanId::parse(&k).ok())
                .collect(),
            None => std::collections::HashSet::new(),
        }
    }

    pub(crate) fn has_scan_key(&self, key: &str) -> bool {
        match &self.scans {
            Some(s) => matches!(self.doc.get(s, key), Ok(Some(_))),
            None => false,
        }
    }

    pub(crate) fn has_void_key(&self, key: &str) -> bool {
        match &self.voids {
            Some(s) => matches!(self.doc.get(s, key), Ok(Some(_))),
            None => false,
        }
    }

    /// The encoded record stored for `id`.
    pub fn scan_record(&self, id: &ScanId) -> Result<Option<Vec<u8>>, DocError> {
        let scans = self.scans_obj()?;
        match self.doc.get(scans, id.as_str())? {
            None => Ok(None),
            Some((v, _)) => bytes_value(&v)
                .map(Some)
                .ok_or_else(|| DocError::WrongType(format!("scans.{id}"))),
        }
    }

    /// Reads one scan.
    pub fn scan(&self, id: &ScanId) -> Result<Option<Scan>, DocError> {
        match self.scan_record(id)? {
            None => Ok(None),
            Some(b) => Scan::decode_record(id.clone(), &b)
                .map(Some)
                .map_err(|source| DocError::Record {
                    id: id.to_string(),
                    source,
                }),
        }
    }

    /// Every scan in id order; a value that does not decode is returned as its error so
    /// one bad entry never hides the others.
    pub fn scans(&self) -> Vec<Result<Scan, DocError>> {
        let Some(scans) = &self.scans else {
            return Vec::new();
        };
        self.decode_section(scans, K_SCANS, Scan::decode_record)
    }

    /// Every scan's id and encoded record, in id order, without decoding: the bytes are
    /// borrowed from the document (decode them with [`crate::model::ScanRecord::decode`]
    /// to read a large document without allocating per field). A key that is not a scan
    /// id or a value that is not bytes is returned as its error.
    pub fn scan_records(&self) -> Vec<Result<StoredRecord<'_>, DocError>> {
        let Some(scans) = &self.scans else {
            return Vec::new();
        };
        self.doc
            .map_range(scans, ..)
            .map(|item| {
                let id = ScanId::parse(&item.key).map_err(|source| DocError::Record {
                    id: item.key.to_string(),
                    source,
                })?;
                match item.value {
                    automerge::ValueRef::Scalar(automerge::ScalarValueRef::Bytes(b)) => Ok((id, b)),
                    _ => Err(DocError::WrongType(format!("{K_SCANS}.{id}"))),
                }
            })
            .collect()
    }

    // ---- voids (devices) ----

    /// Voids a scan: only the user who made it, only once. The scan itself stays.
    pub fn void_scan(&mut self, void: &Void) -> Result<(), DocError> {
        let scan = self
            .scan(&void.scan_id)?
            .ok_or_else(|| DocError::UnknownScan(void.scan_id.clone()))?;
        if scan.user != void.user {
            return Err(DocError::NotOwnScan(void.scan_id.clone()));
        }
        let voids = self.voids_obj()?.clone();
        if self.doc.get(&voids, void.scan_id.as_str())?.is_some() {
            return Err(DocError::AlreadyVoided(void.scan_id.clone()));
        }
        let record = void.encode_record().map_err(|source| DocError::Record {
            id: void.scan_id.to_string(),
            source,
        })?;
        self.doc
            .put(&voids, void.scan_id.as_str(), ScalarValue::Bytes(record))?;
        self.doc
            .commit_with(CommitOptions::default().with_time((void.device_time_ms / 1000) as i64));
        Ok(())
    }

    /// The void of a scan, if it was voided.
    pub fn void(&self, id: &ScanId) -> Result<Option<Void>, DocError> {
        let voids = self.voids_obj()?;
        match self.doc.get(voids, id.as_str())? {
            None => Ok(None),
            Some((v, _)) => {
                let b =
                    bytes_value(&v).ok_or_else(|| DocError::WrongType(format!("voids.{id}")))?;
                Void::decode_record(id.clone(), &b)
                    .map(Some)
                    .map_err(|source| DocError::Record {
                        id: id.to_string(),
                        source,
                    })
            }
        }
    }

    /// Every void, in scan id order.
    pub fn voids(&self) -> Vec<Result<Void, DocError>> {
        let Some(voids) = &self.voids else {
            return Vec::new();
        };
        self.decode_section(voids, K_VOIDS, Void::decode_record)
    }

    /// Decodes every record of a section keyed by scan id (`scans` or `voids`); a value
    /// that does not decode is returned as its error so one bad entry never hides others.
    fn decode_section<T>(
        &self,
        obj: &ObjId,
        section: &str,
        decode: fn(ScanId, &[u8]) -> Result<T, RecordError>,
    ) -> Vec<Result<T, DocError>> {
        self.doc
            .map_range(obj, ..)
            .map(|item| {
                let key = item.key.to_string();
                let id = ScanId::parse(&key).map_err(|source| DocError::Record {
                    id: key.clone(),
                    source,
                })?;
                let bytes = bytes_ref(&item.value)
                    .ok_or_else(|| DocError::WrongType(format!("{section}.{key}")))?;
                decode(id, bytes).map_err(|source| DocError::Record { id: key, source })
            })
            .collect()
    }

    // ---- results (server) ----

    /// Writes the outcome for one scan (server only), without committing, so a projection
    /// pass can write many results in one change; call [`TaskDocument::commit`] after.
    pub fn put_result(&mut self, id: &ScanId, r: &ScanResult) -> Result<(), DocError> {
        self.update_result(id, |_| r.clone()).map(|_| ())
    }

    /// Replaces the outcome for one scan with `f(current)` (the default when none is
    /// recorded), writing only the fields that differ: every put grows the history.
    /// Reads the current outcome once, so deciding and writing cost one lookup (the
    /// server rewrites thousands of results per pass). Does not commit. Returns whether
    /// anything was written.
    pub fn update_result(
        &mut self,
        id: &ScanId,
        f: impl FnOnce(&ScanResult) -> ScanResult,
    ) -> Result<bool, DocError> {
        let results = self.section(K_RESULTS)?;
        let entry = self.result_entry(&results, id)?;
        let current = match &entry {
            Some(m) => self.read_result(m, id)?,
            None => ScanResult::default(),
        };
        let wanted = f(&current);
        if wanted == current {
            return Ok(false);
        }
        let m = match entry {
            Some(m) => m,
            None => self.doc.put_object(&results, id.as_str(), ObjType::Map)?,
        };
        for (key, cur, val) in [
            ("verification", &current.verification, &wanted.verification),
            ("projection", &current.projection, &wanted.projection),
            ("verdict", &current.verdict, &wanted.verdict),
            ("reason", &current.reason, &wanted.reason),
        ] {
            if cur != val {
                match val {
                    Some(v) => self.doc.put(&m, key, v.as_str())?,
                    None => self.doc.delete(&m, key)?,
                }
            }
        }
        if current.exceptions != wanted.exceptions {
            let list = self.doc.put_object(&m, "exceptions", ObjType::List)?;
            for (i, e) in wanted.exceptions.iter().enumerate() {
                self.doc.insert(&list, i, e.as_str())?;
            }
        }
        Ok(true)
    }

    /// The outcome recorded for a scan.
    pub fn result(&self, id: &ScanId) -> Result<Option<ScanResult>, DocError> {
        let results = self.section(K_RESULTS)?;
        match self.result_entry(&results, id)? {
            None => Ok(None),
            Some(m) => self.read_result(&m, id).map(Some),
        }
    }

    /// The map holding a scan's outcome, if there is one.
    fn result_entry(&self, results: &ObjId, id: &ScanId) -> Result<Option<ObjId>, DocError> {
        match self.doc.get(results, id.as_str())? {
            None => Ok(None),
            Some((Value::Object(ObjType::Map), m)) => Ok(Some(m)),
            Some(_) => Err(DocError::WrongType(format!("results.{id}"))),
        }
    }

    /// Decodes the outcome map of scan `id`.
    fn read_result(&self, m: &ObjId, id: &ScanId) -> Result<ScanResult, DocError> {
        let path = format!("results.{id}");
        let mut exceptions = Vec::new();
        if let Some(l) = get_obj(&self.doc, m, "exceptions") {
            for i in 0..self.doc.length(&l) {
                match self.doc.get(&l, i)? {
                    Some((Value::Scalar(s), _)) => match s.as_ref() {
                        ScalarValue::Str(v) => exceptions.push(v.to_string()),
                        _ => return Err(DocError::WrongType(format!("{path}.exceptions[{i}]"))),
                    },
                    _ => return Err(DocError::WrongType(format!("{path}.exceptions[{i}]"))),
                }
            }
        }
        Ok(ScanResult {
            verification: str_at(&self.doc, m, "verification", &path)?,
            projection: str_at(&self.doc, m, "projection", &path)?,
            exceptions,
            verdict: str_at(&self.doc, m, "verdict", &path)?,
            reason: str_at(&self.doc, m, "reason", &path)?,
        })
    }

    /// Commits pending server writes as one change.
    pub fn commit(&mut self, time_s: i64) {
        self.doc
            .commit_with(CommitOptions::default().with_time(time_s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::{header, scan, server_actor};

    #[test]
    fn header_expected_scans_voids_results_round_trip() {
        let mut d = TaskDocument::create(server_actor(), &header(), 1).unwrap();
        assert_eq!(d.header().unwrap(), header());
        assert_eq!(d.schema_version().unwrap(), SCHEMA_VERSION);
        let e = Expected {
            lines: vec![ExpectedLine {
                gtin: "09506000134352".into(),
                quantity: 12,
                lot: Some("LOT1".into()),
            }],
            units: vec![
                ExpectedUnit {
                    id: "sscc:001234567890123457".into(),
                    parent: None,
                },
                ExpectedUnit {
                    id: "sgtin:09506000134352:S1".into(),
                    parent: Some("sscc:001234567890123457".into()),
                },
            ],
        };
        d.set_expected(&e, 2).unwrap();
        let mut sorted = e.clone();
        sorted.units.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(d.expected().unwrap(), sorted, "units come back in id order");

        let s = scan("dev", "u1", 1);
        d.add_scan(&s).unwrap();
        assert!(matches!(d.add_scan(&s), Err(DocError::DuplicateScan(_))));
        assert_eq!(d.scan_count(), 1);
        assert_eq!(d.scan(&s.id).unwrap().unwrap(), s);

        let v = Void {
            scan_id: s.id.clone(),
            user: "u2".into(),
            device: "dev".into(),
            device_time_ms: 9,
        };
        assert!(matches!(d.void_scan(&v), Err(DocError::NotOwnScan(_))));
        let v = Void {
            user: "u1".into(),
            ..v
        };
        d.void_scan(&v).unwrap();
        assert!(matches!(d.void_scan(&v), Err(DocError::AlreadyVoided(_))));
        assert_eq!(d.void(&s.id).unwrap().unwrap(), v);
        assert_eq!(d.scan_count(), 1, "a void never deletes the scan");

        let r = ScanResult {
            verification: Some("verified".into()),
            projection: None,
            exceptions: vec!["double_pick".into()],
            verdict: Some("reject".into()),
            reason: Some("recalled_lot".into()),
        };
        d.put_result(&s.id, &r).unwrap();
        d.commit(3);
        assert_eq!(d.result(&s.id).unwrap().unwrap(), r);

        let bytes = d.save();
        let d2 = TaskDocument::load(&bytes, ActorId::random()).unwrap();
        assert_eq!(
            d2.scans()
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .unwrap(),
            vec![s]
        );
        assert_eq!(d2.voids().len(), 1);
        assert_eq!(d2.result(&scan("dev", "u1", 1).id).unwrap().unwrap(), r);
    }

    #[test]
    fn update_result_writes_only_what_changed() {
        let mut d = TaskDocument::create(server_actor(), &header(), 1).unwrap();
        let id = scan("dev", "u1", 1).id;
        let projected = |current: &ScanResult| ScanResult {
            projection: Some("projected".into()),
            ..current.clone()
        };
        // Nothing recorded and nothing wanted: no entry is created.
        assert!(!d.update_result(&id, |c| c.clone()).unwrap());
        assert_eq!(d.result(&id).unwrap(), None);

        assert!(d.update_result(&id, projected).unwrap());
        d.commit(2);
        let heads = d.heads();
        // The same outcome again writes nothing, so the next commit is empty.
        assert!(!d.update_result(&id, projected).unwrap());
        d.commit(3);
        assert_eq!(d.heads(), heads);

        // The closure sees the current outcome: a field it keeps survives a change.
        d.put_result(
            &id,
            &ScanResult {
                verification: Some("verified".into()),
                projection: Some("projected".into()),
                exceptions: vec![],
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            d.update_result(&id, |c| ScanResult {
                exceptions: vec!["double_pick".into()],
                ..c.clone()
            })
            .unwrap()
        );
        assert_eq!(
            d.result(&id).unwrap().unwrap(),
            ScanResult {
                verification: Some("verified".into()),
                projection: Some("projected".into()),
                exceptions: vec!["double_pick".into()],
                ..Default::default()
            }
        );
        // A field set to nothing is removed.
        assert!(
            d.update_result(&id, |c| ScanResult {
                verification: None,
                ..c.clone()
            })
            .unwrap()
        );
        assert_eq!(d.result(&id).unwrap().unwrap().verification, None);
    }

    #[test]
    fn invalid_scan_is_refused_and_nothing_kept() {
        let mut d = TaskDocument::create(server_actor(), &header(), 1).unwrap();
        let mut s = scan("dev", "u1", 1);
        s.user = String::new();
        assert!(d.add_scan(&s).is_err());
        let good = scan("dev", "u1", 2);
        assert!(d.add_scans(&[good.clone(), s]).is_err());
        assert_eq!(d.scan_count(), 0);
        d.add_scan(&good).unwrap();
        assert_eq!(d.scan_count(), 1);
    }

    /// A device copy of a fresh server document, writing as `actor`.
    fn device_doc(actor: &[u8]) -> TaskDocument {
        let mut server = TaskDocument::create(server_actor(), &header(), 1).unwrap();
        TaskDocument::load(&server.save(), ActorId::from(actor)).unwrap()
    }

    fn append(d: &mut TaskDocument, scans: &[Scan], built: bool) -> Vec<u8> {
        let records: Vec<Vec<u8>> = scans.iter().map(|s| s.encode_record().unwrap()).collect();
        d.append_records_with(
            scans
                .iter()
                .map(|s| &s.id)
                .zip(records.iter().map(Vec::as_slice)),
            7,
            built,
        )
        .unwrap()
    }

    #[test]
    fn built_change_is_the_change_a_transaction_makes() {
        // Same document, same actor, same scans: the built change must be byte for byte
        // the transaction's (same hash), before and after other local changes.
        let mut a = device_doc(b"dev-a");
        let mut b = device_doc(b"dev-a");
        let first: Vec<Scan> = (0..100).map(|n| scan("dev", "u1", n)).collect();
        let ca = append(&mut a, &first, false);
        let cb = append(&mut b, &first, true);
        assert_eq!(ca, cb);
        assert_eq!(a.heads(), b.heads());
        // A local transaction after a built change continues the actor's sequence.
        let v = Void {
            scan_id: first[3].id.clone(),
            user: "u1".into(),
            device: "dev".into(),
            device_time_ms: 9,
        };
        a.void_scan(&v).unwrap();
        b.void_scan(&v).unwrap();
        assert_eq!(a.heads(), b.heads());
        assert_eq!(a.last_local_change(), b.last_local_change());
        // And a built change after a local transaction.
        let second: Vec<Scan> = (100..300).map(|n| scan("dev", "u1", n)).collect();
        assert_eq!(
            append(&mut a, &second, false),
            append(&mut b, &second, true)
        );
        assert_eq!(b.scan_count(), 300);
        assert_eq!(b.scan(&second[5].id).unwrap().unwrap(), second[5]);
        // Another implementation sees the same document.
        let other = TaskDocument::load(&b.save(), ActorId::random()).unwrap();
        assert_eq!(other.scans().len(), 300);
        assert_eq!(other.voids().len(), 1);
    }

    #[test]
    fn built_change_is_the_last_local_change() {
        // The actor's first change is a built one: the store logs `last_local_change`
        // after `add_scans`.
        let mut d = device_doc(b"dev-new");
        let scans: Vec<Scan> = (0..100).map(|n| scan("dev", "u1", n)).collect();
        let bytes = append(&mut d, &scans, true);
        assert_eq!(d.last_local_change(), Some(bytes));
        let more: Vec<Scan> = (100..200).map(|n| scan("dev", "u1", n)).collect();
        d.add_scans(&more).unwrap();
        let last = d.last_local_change().unwrap();
        let mut other = device_doc(b"dev-other");
        other.load_incremental(&d.save()).unwrap();
        assert_eq!(other.scan_count(), 200);
        assert!(last.len() > 100 * 20, "the whole batch is one change");
    }

    #[test]
    fn built_change_after_a_sync_depends_on_every_head() {
        // Two devices' changes merged: the built change must depend on both heads.
        let mut a = device_doc(b"dev-a");
        let mut b = device_doc(b"dev-b");
        append(&mut a, &[scan("da", "u1", 1)], false);
        append(&mut b, &[scan("db", "u2", 1)], true);
        a.doc.merge(&mut b.doc).unwrap();
        assert_eq!(a.heads().len(), 2);
        let more: Vec<Scan> = (10..80).map(|n| scan("da", "u1", n)).collect();
        let bytes = append(&mut a, &more, true);
        assert_eq!(a.heads().len(), 1);
        assert_eq!(a.scan_count(), 72);
        // The change alone applies on top of b once b has a's first change.
        let mut c = device_doc(b"dev-c");
        c.doc.merge(&mut a.doc.fork()).unwrap();
        assert_eq!(c.scan_count(), 72);
        let mut d = device_doc(b"dev-d");
        d.doc.merge(&mut b.doc).unwrap();
        d.load_incremental(&bytes).unwrap();
        assert_eq!(d.scan_count(), 1, "missing dep: queued, not applied");
    }

    #[test]
    fn add_scans_refuses_repeats_and_known_ids_in_a_large_batch() {
        let mut d = device_doc(b"dev-a");
        let scans: Vec<Scan> = (0..200).map(|n| scan("dev", "u1", n)).collect();
        d.add_scans(&scans).unwrap();
        assert_eq!(d.scan_count(), 200);
        let mut again: Vec<Scan> = (200..400).map(|n| scan("dev", "u1", n)).collect();
        again.push(scans[0].clone());
        assert!(matches!(
            d.add_scans(&again),
            Err(DocError::DuplicateScan(_))
        ));
        again.pop();
        again.push(again[0].clone());
        assert!(matches!(
            d.add_scans(&again),
            Err(DocError::DuplicateScan(_))
        ));
        assert_eq!(d.scan_count(), 200, "nothing of a refused batch is kept");
    }

    #[test]
    fn empty_document_has_no_sections() {
        let mut d = TaskDocument::empty(ActorId::random());
        assert!(!d.is_initialised());
        assert!(matches!(
            d.add_scan(&scan("d", "u", 1)),
            Err(DocError::Missing(_))
        ));
        assert!(d.scans().is_empty());
    }
}
