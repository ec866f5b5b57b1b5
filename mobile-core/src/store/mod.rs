//! Device-local crash-safe persistence of task documents.
//!
//! One directory per session. Per document: a snapshot (`save()`, written as temp file +
//! fsync + rename + fsync(dir)), an append-only log of framed Automerge changes
//! (length + CRC32, see [`frame`]) and a *pending* log of framed scan records.
//!
//! A scan is durable once its encoded record is in the pending log (one small frame,
//! fsynced before [`Store::record_scan`] returns unless the caller chose batched
//! durability). Scans reach the Automerge document in batches ([`Store::apply_pending`]:
//! before a sync ([`Store::update_doc`]), a void, a compaction, on open, and otherwise
//! only once [`StoreOptions::apply_after_scans`] scans wait), as one change whose frame is
//! fsynced into the change log *before* the pending log is emptied; replaying a pending
//! record that is already in the document is skipped, so a crash at any point neither
//! loses nor doubles a scan. This keeps Automerge off the per-scan path: the picker waits
//! for parse, rules and one small append; the Automerge cost is paid in the batch, where
//! it is much lower (a large batch becomes one change applied in one pass, ~2–5 µs per
//! scan in a 10k–30k-scan document on our test machine, against ~16 µs per put in a
//! transaction; see `TaskDocument::append_scan_records`).
//! Duplicate ids are refused from an in-memory set of the document's scan ids (built on
//! the first scan after open or sync), not by an Automerge lookup per scan.
//! Note: [`Store::doc`] shows applied scans only.
//!
//! Opening never crashes on bad files: a torn tail is truncated (never acknowledged), a
//! damaged file is moved to `quarantine/` and reported as a [`StoreEvent`], with every
//! intact frame still loaded. Also per-document sync state, per-site reference data and
//! small session files (`meta/`). No Automerge paths here: that is `doc`'s job.
//!
//! ```text
//! <root>/docs/<doc id>/snapshot   one frame: the saved document
//! <root>/docs/<doc id>/log        frames: one Automerge change (or change batch) each
//! <root>/docs/<doc id>/pending    frames: one scan (id + encoded record) each
//! <root>/docs/<doc id>/sync       one frame: encoded SyncState with the server
//! <root>/reference/<site>         one frame: ReferenceData as JSON
//! <root>/meta/<name>              one frame: session files (identity, install, …)
//! <root>/quarantine/              damaged files, renamed here, never deleted
//! ```

pub mod frame;

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use automerge::ActorId;
use thiserror::Error;

use crate::doc::{DocError, SyncState, TaskDocument};
use crate::model::{DeltaError, ReferenceData, ReferenceDelta, Scan, ScanId, Void};

/// Errors of the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("i/o on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The document refused the operation (duplicate scan, invalid record, …); nothing
    /// was written.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// No such document in this store.
    #[error("unknown document {0}")]
    UnknownDoc(String),
    /// A document with this id already exists.
    #[error("document {0} already exists")]
    DocExists(String),
    /// Ids must be 1–64 of `[A-Za-z0-9_-]` (they become file names).
    #[error("invalid id {0:?}")]
    InvalidId(String),
    /// A reference delta was refused; stored data unchanged.
    #[error(transparent)]
    Delta(#[from] DeltaError),
    /// The document holds writes the server has not acknowledged (count given); it
    /// cannot be removed until they are synced.
    #[error("document {0} holds {1} writes the server has not acknowledged")]
    Unsynced(String, u64),
    /// No reference data stored for the site (download a full copy first).
    #[error("no reference data for site {0}")]
    NoReference(String),
    /// Reference data failed to serialise.
    #[error("reference data: {0}")]
    Json(String),
}

/// Something the store found and handled while opening; list it to the user/manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// An incomplete last frame (a write cut by a crash, never acknowledged) was cut off.
    TornTailDropped {
        /// The file.
        path: PathBuf,
        /// Bytes dropped.
        bytes: u64,
    },
    /// A damaged file was moved to `quarantine/`. Intact frames in it were still loaded.
    Quarantined {
        /// Where it was.
        from: PathBuf,
        /// Where it is now.
        to: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// When appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before every append returns: an acknowledged scan survives a crash.
    EachAppend,
    /// Appends are written but only fsynced by [`Store::flush`] (bulk imports).
    Batched,
}

/// Store tuning.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Durability of appends.
    pub durability: Durability,
    /// Compact a document's log into its snapshot after this many frames.
    pub compact_after_frames: u32,
    /// … or after this many log bytes.
    pub compact_after_bytes: u64,
    /// Apply pending scans to the Automerge document once this many are waiting (they
    /// are applied before every sync, void, compaction and on open anyway). The default,
    /// 4096, keeps Automerge off the scan path between syncs; the scan that fills a batch
    /// waits for it (~10–20 ms for 4096 scans on our test machine, plus one fsync).
    pub apply_after_scans: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::EachAppend,
            compact_after_frames: 2000,
            compact_after_bytes: 4 << 20,
            apply_after_scans: 4096,
        }
    }
}

struct Slot {
    doc: TaskDocument,
    log: File,
    log_frames: u32,
    log_bytes: u64,
    unsynced: bool,
    /// Scans durable in the pending log, not yet in `doc`.
    pending: Vec<Scan>,
    /// Their encoded records (index for index), so a batch apply does not re-encode.
    pending_records: Vec<Vec<u8>>,
    pending_ids: HashSet<ScanId>,
    /// Ids of the scans in `doc`, for the duplicate check on the scan path; `None` until
    /// first needed and after a sync (which may bring other devices' scans).
    known: Option<HashSet<ScanId>>,
    plog: File,
    /// Framed pending entries not yet written (batched durability only).
    plog_buf: Vec<u8>,
    plog_unsynced: bool,
}

/// Pending-log entry: `1 | id len u8 | id | scan record`.
const ENTRY_SCAN: u8 = 1;

fn encode_entry(out: &mut Vec<u8>, id: &ScanId, record: &[u8]) {
    let id = id.as_str().as_bytes();
    // Frame header written in place: one allocation-free append per scan.
    let len = (2 + id.len() + record.len()) as u32;
    let start = out.len();
    out.extend_from_slice(&frame::MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let payload_at = out.len();
    out.push(ENTRY_SCAN);
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(record);
    let crc = frame::crc32_update(
        frame::crc32_update(0, &len.to_le_bytes()),
        &out[payload_at..],
    );
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

fn decode_entry(p: &[u8]) -> Option<(Scan, Vec<u8>)> {
    let (&kind, rest) = p.split_first()?;
    let (&n, rest) = rest.split_first()?;
    if kind != ENTRY_SCAN || rest.len() < usize::from(n) {
        return None;
    }
    let (id, record) = rest.split_at(usize::from(n));
    let id = ScanId::parse(std::str::from_utf8(id).ok()?).ok()?;
    let scan = Scan::decode_record(id, record).ok()?;
    Some((scan, record.to_vec()))
}

/// The device's store for one session directory.
pub struct Store {
    root: PathBuf,
    actor: ActorId,
    opts: StoreOptions,
    docs: BTreeMap<String, Slot>,
    events: Vec<StoreEvent>,
}

impl Drop for Store {
    /// Best effort for batched durability: hand buffered scans to the OS, so only a
    /// machine crash (not an app exit) can lose scans not yet flushed.
    fn drop(&mut self) {
        for slot in self.docs.values_mut() {
            if !slot.plog_buf.is_empty() && slot.plog.write_all(&slot.plog_buf).is_ok() {
                slot.plog_buf.clear();
            }
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .field("docs", &self.docs.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn check_id(id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidId(id.to_owned()))
    }
}

/// fsync a directory so a rename or a new file in it is durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes `payload` as one frame to `path` atomically: temp file, fsync, rename, fsync dir.
fn write_atomic(path: &Path, payload: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&frame::encode(payload)).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err(path))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Outcome of reading a one-frame file.
enum Single {
    Missing,
    Good(Vec<u8>),
    Bad(String),
}

fn read_single(path: &Path) -> Result<Single, StoreError> {
    let buf = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Single::Missing),
        Err(e) => return Err(io_err(path)(e)),
    };
    let (frames, tail) = frame::decode_all(&buf);
    match (frames.as_slice(), tail) {
        ([one], frame::Tail::Clean) => Ok(Single::Good(one.to_vec())),
        _ => Ok(Single::Bad(format!(
            "expected one intact frame, file has {} bytes",
            buf.len()
        ))),
    }
}

impl Store {
    /// Opens (creating if needed) the session directory and loads every document.
    /// `actor` is this device install's Automerge actor, used for every document.
    /// Problems found are handled and listed in [`Store::events`].
    pub fn open(
        root: impl AsRef<Path>,
        actor: ActorId,
        opts: StoreOptions,
    ) -> Result<Self, StoreError> {
        let root = root.as_ref().to_path_buf();
        for d in ["docs", "reference", "quarantine", "meta"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let mut store = Self {
            root,
            actor,
            opts,
            docs: BTreeMap::new(),
            events: Vec::new(),
        };
        let docs_dir = store.root.join("docs");
        let mut ids = Vec::new();
        for entry in fs::read_dir(&docs_dir).map_err(io_err(&docs_dir))? {
            let entry = entry.map_err(io_err(&docs_dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with(".removed-") {
                // A removal interrupted by a crash: the document was already forgotten.
                let _ = fs::remove_dir_all(entry.path());
            } else if check_id(&name).is_ok() && entry.path().is_dir() {
                ids.push(name);
            }
        }
        ids.sort();
        for id in ids {
            store.load_doc(&id)?;
        }
        Ok(store)
    }

    fn doc_dir(&self, id: &str) -> PathBuf {
        self.root.join("docs").join(id)
    }

    /// Moves a damaged file into `quarantine/` and records the event.
    fn quarantine(&mut self, path: &Path, reason: String) -> Result<(), StoreError> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let rel = path
            .strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace(['/', '\\'], "_");
        let qdir = self.root.join("quarantine");
        let mut to = qdir.join(format!("{stamp}-{rel}"));
        let mut n = 1;
        while to.exists() {
            to = qdir.join(format!("{stamp}-{n}-{rel}"));
            n += 1;
        }
        fs::rename(path, &to).map_err(io_err(path))?;
        sync_dir(&qdir)?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        self.events.push(StoreEvent::Quarantined {
            from: path.to_path_buf(),
            to,
            reason,
        });
        Ok(())
    }

    fn load_doc(&mut self, id: &str) -> Result<(), StoreError> {
        let dir = self.doc_dir(id);
        let snap_path = dir.join("snapshot");
        let log_path = dir.join("log");
        let mut rewrite = false;

        let mut doc = match read_single(&snap_path)? {
            Single::Good(bytes) => match TaskDocument::load_trusted(&bytes, self.actor.clone()) {
                Ok(d) => d,
                Err(e) => {
                    self.quarantine(&snap_path, format!("snapshot does not load: {e}"))?;
                    rewrite = true;
                    TaskDocument::empty(self.actor.clone())
                }
            },
            Single::Bad(why) => {
                self.quarantine(&snap_path, format!("snapshot damaged: {why}"))?;
                rewrite = true;
                TaskDocument::empty(self.actor.clone())
            }
            Single::Missing => TaskDocument::empty(self.actor.clone()),
        };

        let log_buf = match fs::read(&log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&log_path)(e)),
        };
        let (frames, tail) = frame::decode_all(&log_buf);
        let mut bad_frames = 0usize;
        if !frames.is_empty() {
            // Fast path: one load of the whole concatenation; on failure, frame by frame so
            // one bad change cannot hide the good ones.
            let joined: Vec<u8> = frames.concat();
            if doc.load_incremental(&joined).is_err() {
                for f in &frames {
                    if doc.load_incremental(f).is_err() {
                        bad_frames += 1;
                    }
                }
            }
        }
        let log_frames = frames.len() as u32;
        match tail {
            frame::Tail::Clean if bad_frames == 0 => {}
            frame::Tail::Torn { good_len } if bad_frames == 0 => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&log_path)
                    .map_err(io_err(&log_path))?;
                f.set_len(good_len).map_err(io_err(&log_path))?;
                f.sync_all().map_err(io_err(&log_path))?;
                self.events.push(StoreEvent::TornTailDropped {
                    path: log_path.clone(),
                    bytes: log_buf.len() as u64 - good_len,
                });
            }
            other => {
                let reason = match other {
                    frame::Tail::Corrupt {
                        at,
                        recovered_after,
                    } => format!(
                        "log damaged at byte {at}; {} intact frames loaded, {recovered_after} of them after the damage",
                        frames.len()
                    ),
                    _ => format!("{bad_frames} frames with valid CRC failed to load"),
                };
                self.quarantine(&log_path, reason)?;
                rewrite = true;
            }
        }
        let (log, log_bytes, log_frames) = if rewrite {
            // Write what was recovered as a fresh snapshot so the store is whole again.
            let bytes = doc.save();
            write_atomic(&snap_path, &bytes)?;
            let mut log = Self::create_log(&log_path, true)?;
            // Keep every intact frame: changes whose dependency was in the damaged part
            // wait in Automerge's queue (not in `save()`) until sync brings that change.
            let mut kept = 0u64;
            for f in &frames {
                let framed = frame::encode(f);
                log.write_all(&framed).map_err(io_err(&log_path))?;
                kept += framed.len() as u64;
            }
            log.sync_all().map_err(io_err(&log_path))?;
            (log, kept, frames.len() as u32)
        } else {
            let log = Self::create_log(&log_path, false)?;
            let len = log.metadata().map_err(io_err(&log_path))?.len();
            (log, len, log_frames)
        };
        let pending_path = dir.join("pending");
        let plog = Self::create_log(&pending_path, false)?;
        self.docs.insert(
            id.to_owned(),
            Slot {
                doc,
                log,
                log_frames,
                log_bytes,
                unsynced: false,
                pending: Vec::new(),
                pending_records: Vec::new(),
                pending_ids: HashSet::new(),
                known: None,
                plog,
                plog_buf: Vec::new(),
                plog_unsynced: false,
            },
        );
        self.replay_pending(id, &pending_path)
    }

    /// Moves the scans of the pending log into the document (as one change, durable in
    /// the change log) and empties the pending log. Records already applied are skipped.
    fn replay_pending(&mut self, id: &str, path: &Path) -> Result<(), StoreError> {
        let buf = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(path)(e)),
        };
        if buf.is_empty() {
            return Ok(());
        }
        let (frames, tail) = frame::decode_all(&buf);
        let mut bad = 0usize;
        let mut scans = Vec::with_capacity(frames.len());
        let mut records = Vec::with_capacity(frames.len());
        let mut seen = HashSet::new();
        let slot = self.slot(id)?;
        for f in &frames {
            match decode_entry(f) {
                // Skip repeats and records already applied (a crash between the change's
                // fsync and the pending log's truncation).
                Some((s, r)) => {
                    if seen.insert(s.id.clone()) && !slot.doc.has_scan(&s.id) {
                        scans.push(s);
                        records.push(r);
                    }
                }
                None => bad += 1,
            }
        }
        slot.pending_ids = scans.iter().map(|s| s.id.clone()).collect();
        slot.pending = scans;
        slot.pending_records = records;
        // Damage report before the file is emptied: the intact records are applied below.
        match tail {
            frame::Tail::Clean if bad == 0 => {}
            frame::Tail::Torn { good_len } if bad == 0 => {
                self.events.push(StoreEvent::TornTailDropped {
                    path: path.to_path_buf(),
                    bytes: buf.len() as u64 - good_len,
                });
            }
            other => {
                let reason = match other {
                    frame::Tail::Corrupt { at, .. } => format!(
                        "pending log damaged at byte {at}; {} intact scans kept",
                        frames.len() - bad
                    ),
                    _ => format!("{bad} pending entries with valid CRC do not decode"),
                };
                // Keep the damaged file for the record, applying what was intact.
                let copy = path.with_extension("damaged");
                fs::copy(path, &copy).map_err(io_err(path))?;
                self.quarantine(&copy, reason)?;
            }
        }
        self.apply_pending(id)?;
        let slot = self.slot(id)?;
        slot.plog.set_len(0).map_err(io_err(path))?;
        slot.plog.sync_all().map_err(io_err(path))?;
        Ok(())
    }

    fn create_log(path: &Path, truncate: bool) -> Result<File, StoreError> {
        let f = OpenOptions::new()
            .create(true)
            .append(!truncate)
            .write(true)
            .truncate(truncate)
            .open(path)
            .map_err(io_err(path))?;
        if truncate {
            f.sync_all().map_err(io_err(path))?;
            // Reopen in append mode so every write goes to the end.
            drop(f);
            return OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(io_err(path));
        }
        Ok(f)
    }

    /// What opening found and handled (torn tails, quarantined files).
    pub fn events(&self) -> &[StoreEvent] {
        &self.events
    }

    /// Takes the events (e.g. after showing them).
    pub fn take_events(&mut self) -> Vec<StoreEvent> {
        std::mem::take(&mut self.events)
    }

    /// The session directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Ids of the stored documents.
    pub fn doc_ids(&self) -> Vec<String> {
        self.docs.keys().cloned().collect()
    }

    /// A stored document, read-only.
    pub fn doc(&self, id: &str) -> Option<&TaskDocument> {
        self.docs.get(id).map(|s| &s.doc)
    }

    /// Adds a document (a fresh empty one to sync into, or one received whole) and writes
    /// its snapshot durably.
    pub fn insert_doc(&mut self, id: &str, mut doc: TaskDocument) -> Result<(), StoreError> {
        check_id(id)?;
        if self.docs.contains_key(id) {
            return Err(StoreError::DocExists(id.to_owned()));
        }
        let dir = self.doc_dir(id);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        write_atomic(&dir.join("snapshot"), &doc.save())?;
        let log = Self::create_log(&dir.join("log"), true)?;
        let plog = Self::create_log(&dir.join("pending"), true)?;
        sync_dir(&dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        self.docs.insert(
            id.to_owned(),
            Slot {
                doc,
                log,
                log_frames: 0,
                log_bytes: 0,
                unsynced: false,
                pending: Vec::new(),
                pending_records: Vec::new(),
                pending_ids: HashSet::new(),
                known: None,
                plog,
                plog_buf: Vec::new(),
                plog_unsynced: false,
            },
        );
        Ok(())
    }

    fn slot(&mut self, id: &str) -> Result<&mut Slot, StoreError> {
        self.docs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownDoc(id.to_owned()))
    }

    /// Appends one frame to a document's log and makes it durable per the options.
    fn append(&mut self, id: &str, payload: &[u8]) -> Result<(), StoreError> {
        if payload.is_empty() {
            return Ok(());
        }
        let durability = self.opts.durability;
        let (frames_limit, bytes_limit) = (
            self.opts.compact_after_frames,
            self.opts.compact_after_bytes,
        );
        let log_path = self.doc_dir(id).join("log");
        let slot = self.slot(id)?;
        let framed = frame::encode(payload);
        slot.log.write_all(&framed).map_err(io_err(&log_path))?;
        slot.log_frames += 1;
        slot.log_bytes += framed.len() as u64;
        if durability == Durability::EachAppend {
            slot.log.sync_data().map_err(io_err(&log_path))?;
        } else {
            slot.unsynced = true;
        }
        let compact = slot.log_frames >= frames_limit || slot.log_bytes >= bytes_limit;
        if compact {
            self.compact(id)?;
        }
        Ok(())
    }

    /// Records one scan: appends its encoded record to the document's pending log,
    /// fsynced before returning (with [`Durability::EachAppend`]); the document gets it
    /// with the next batch. Refuses a scan id already recorded and an invalid record; on
    /// error nothing was acknowledged or written.
    pub fn record_scan(&mut self, id: &str, scan: &Scan) -> Result<(), StoreError> {
        let durability = self.opts.durability;
        let apply_after = self.opts.apply_after_scans.max(1);
        let path = self.doc_dir(id).join("pending");
        let slot = self.slot(id)?;
        if !slot.doc.is_initialised() {
            return Err(DocError::Missing("scans").into());
        }
        let known = slot
            .known
            .get_or_insert_with(|| TaskDocument::scan_ids(&slot.doc));
        if slot.pending_ids.contains(&scan.id) || known.contains(&scan.id) {
            return Err(DocError::DuplicateScan(scan.id.clone()).into());
        }
        let record = scan.encode_record().map_err(|source| DocError::Record {
            id: scan.id.to_string(),
            source,
        })?;
        encode_entry(&mut slot.plog_buf, &scan.id, &record);
        match durability {
            Durability::EachAppend => {
                let r = slot
                    .plog
                    .write_all(&slot.plog_buf)
                    .and_then(|()| slot.plog.sync_data());
                slot.plog_buf.clear();
                r.map_err(io_err(&path))?;
            }
            Durability::Batched => {
                // Hand full blocks to the OS; `flush` makes them durable.
                if slot.plog_buf.len() >= 64 << 10 {
                    let r = slot.plog.write_all(&slot.plog_buf);
                    slot.plog_buf.clear();
                    r.map_err(io_err(&path))?;
                }
                slot.plog_unsynced = true;
            }
        }
        slot.pending_ids.insert(scan.id.clone());
        slot.pending.push(scan.clone());
        slot.pending_records.push(record);
        if slot.pending.len() >= apply_after {
            self.apply_pending(id)?;
        }
        Ok(())
    }

    /// Records several scans as one change and one append (bulk import).
    pub fn record_scans(&mut self, id: &str, scans: &[Scan]) -> Result<(), StoreError> {
        self.apply_pending(id)?;
        let slot = self.slot(id)?;
        slot.doc.add_scans(scans)?;
        if let Some(known) = &mut slot.known {
            known.extend(scans.iter().map(|s| s.id.clone()));
        }
        let change = slot.doc.last_local_change().unwrap_or_default();
        self.append(id, &change)
    }

    /// Moves a document (its snapshot, change log, pending log and sync state) aside into
    /// `quarantine/`, where it stays for a person to examine, and forgets it: the next
    /// sync fetches the server's copy afresh. For a document the server refused, whose
    /// local copy keeps the refused change (every later message would be refused too).
    /// Returns where the document now lies.
    pub fn set_aside(&mut self, id: &str, reason: &str) -> Result<PathBuf, StoreError> {
        // Pending scans are flushed to their log first so the quarantined copy is whole.
        let path = self.doc_dir(id).join("pending");
        if let Some(slot) = self.docs.get_mut(id)
            && !slot.plog_buf.is_empty()
        {
            slot.plog.write_all(&slot.plog_buf).map_err(io_err(&path))?;
            slot.plog_buf.clear();
        }
        if self.docs.remove(id).is_none() {
            return Err(StoreError::UnknownDoc(id.to_owned()));
        }
        let dir = self.doc_dir(id);
        self.quarantine(&dir, format!("set aside: {reason}"))?;
        match self.events.last() {
            Some(StoreEvent::Quarantined { to, .. }) => Ok(to.clone()),
            _ => Ok(dir),
        }
    }

    /// Removes a document the server holds whole: a finished task leaves the device after
    /// its last sync. Refused while the device holds writes to it that the server has not
    /// acknowledged ([`StoreError::Unsynced`]): nothing recorded is ever dropped. The
    /// directory is first renamed out of the id space (`docs/.removed-…`, which opening
    /// never loads and clears), so a crash mid-delete cannot bring back half a document.
    pub fn remove_doc(&mut self, id: &str) -> Result<(), StoreError> {
        let writes = self.unsynced_writes(id)?;
        if writes > 0 {
            return Err(StoreError::Unsynced(id.to_owned(), writes));
        }
        let dir = self.doc_dir(id);
        let gone = self.root.join("docs").join(format!(".removed-{id}"));
        if gone.exists() {
            fs::remove_dir_all(&gone).map_err(io_err(&gone))?;
        }
        fs::rename(&dir, &gone).map_err(io_err(&dir))?;
        sync_dir(&self.root.join("docs"))?;
        self.docs.remove(id);
        // Best effort: a left-over directory is cleared at the next open.
        let _ = fs::remove_dir_all(&gone);
        Ok(())
    }

    /// Renames the pending scans of a document in memory: `rename` gives a scan's new id,
    /// or `None` to keep it. A renamed scan whose new id is already in the document (it
    /// was applied under that name before a crash emptied the pending log) is dropped,
    /// not written twice. The pending log keeps the names scans were recorded with, so a
    /// caller renames again after every open until [`Store::apply_pending`] has run.
    /// Returns how many scans were renamed.
    pub fn rename_pending(
        &mut self,
        id: &str,
        rename: impl Fn(&ScanId) -> Option<ScanId>,
    ) -> Result<usize, StoreError> {
        let slot = self.slot(id)?;
        if slot.pending.is_empty() {
            return Ok(0);
        }
        let known = slot
            .known
            .get_or_insert_with(|| TaskDocument::scan_ids(&slot.doc));
        let mut renamed = 0;
        let mut keep = Vec::with_capacity(slot.pending.len());
        for (mut scan, record) in std::mem::take(&mut slot.pending)
            .into_iter()
            .zip(std::mem::take(&mut slot.pending_records))
        {
            if let Some(new) = rename(&scan.id) {
                renamed += 1;
                scan.id = new;
                if known.contains(&scan.id) {
                    continue;
                }
            }
            keep.push((scan, record));
        }
        slot.pending_ids = keep.iter().map(|(s, _)| s.id.clone()).collect();
        (slot.pending, slot.pending_records) = keep.into_iter().unzip();
        Ok(renamed)
    }

    /// Scans recorded but not yet applied to the document (in record order).
    pub fn pending_scans(&self, id: &str) -> &[Scan] {
        self.docs
            .get(id)
            .map(|s| s.pending.as_slice())
            .unwrap_or(&[])
    }

    /// Applies the pending scans to the document as one change, fsyncs that change into
    /// the change log, then empties the pending log. Called by the store when enough
    /// scans wait; call it before reading [`Store::doc`] for a complete view.
    pub fn apply_pending(&mut self, id: &str) -> Result<(), StoreError> {
        let dir = self.doc_dir(id);
        let (frames_limit, bytes_limit) = (
            self.opts.compact_after_frames,
            self.opts.compact_after_bytes,
        );
        let slot = self.slot(id)?;
        if slot.pending.is_empty() {
            return Ok(());
        }
        let time_s = slot
            .pending
            .last()
            .map_or(0, |s| (s.device_time_ms / 1000) as i64);
        // Every pending id was checked against the document's ids and the other pending
        // ids when it was recorded (and replay skips ids already in the document).
        let change = slot.doc.append_scan_records(
            slot.pending
                .iter()
                .map(|s| &s.id)
                .zip(slot.pending_records.iter().map(Vec::as_slice)),
            time_s,
        )?;
        let framed = frame::encode(&change);
        let log_path = dir.join("log");
        slot.log.write_all(&framed).map_err(io_err(&log_path))?;
        // Always fsync here, even with batched durability: the pending log is emptied
        // next, and its records must never be gone before the change holding them is
        // on disk.
        slot.log.sync_data().map_err(io_err(&log_path))?;
        slot.log_frames += 1;
        slot.log_bytes += framed.len() as u64;
        slot.pending.clear();
        slot.pending_records.clear();
        let applied = std::mem::take(&mut slot.pending_ids);
        if let Some(known) = &mut slot.known {
            known.extend(applied);
        }
        slot.plog_buf.clear();
        slot.plog_unsynced = false;
        // No fsync needed: if the truncation is lost in a crash, replay skips records
        // already in the document; the next fsync of this file persists it anyway.
        let plog_path = dir.join("pending");
        slot.plog.set_len(0).map_err(io_err(&plog_path))?;
        if slot.log_frames >= frames_limit || slot.log_bytes >= bytes_limit {
            self.compact(id)?;
        }
        Ok(())
    }

    /// Voids a scan durably (pending scans are applied first, so the void can find it).
    pub fn void_scan(&mut self, id: &str, void: &Void) -> Result<(), StoreError> {
        self.apply_pending(id)?;
        let slot = self.slot(id)?;
        slot.doc.void_scan(void)?;
        let change = slot.doc.last_local_change().unwrap_or_default();
        self.append(id, &change)
    }

    /// Runs `f` on a document (e.g. receiving a sync message) and durably appends every
    /// change it brought in.
    pub fn update_doc<R>(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut TaskDocument) -> R,
    ) -> Result<R, StoreError> {
        // A sync must never send a change that is not yet durable here.
        self.apply_pending(id)?;
        let slot = self.slot(id)?;
        // A sync may bring other devices' scans: rebuild the id set when next needed.
        slot.known = None;
        let before = slot.doc.heads();
        let r = f(&mut slot.doc);
        let bytes = slot.doc.save_after(&before);
        self.append(id, &bytes)?;
        Ok(r)
    }

    /// fsyncs every log with unsynced appends ([`Durability::Batched`]).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let root = self.root.join("docs");
        for (id, slot) in self.docs.iter_mut() {
            if slot.plog_unsynced {
                let path = root.join(id).join("pending");
                slot.plog.write_all(&slot.plog_buf).map_err(io_err(&path))?;
                slot.plog_buf.clear();
                slot.plog.sync_data().map_err(io_err(&path))?;
                slot.plog_unsynced = false;
            }
            if slot.unsynced {
                slot.log
                    .sync_data()
                    .map_err(io_err(&root.join(id).join("log")))?;
                slot.unsynced = false;
            }
        }
        Ok(())
    }

    /// Sets the durability (e.g. `Batched` for a bulk import, then back). Switching to
    /// `EachAppend` flushes first.
    pub fn set_durability(&mut self, d: Durability) -> Result<(), StoreError> {
        if d == Durability::EachAppend {
            self.flush()?;
        }
        self.opts.durability = d;
        Ok(())
    }

    /// Folds the log into a new snapshot. Crash-safe at every step: the snapshot is
    /// replaced atomically before the log is emptied, and replaying a log whose changes
    /// are already in the snapshot is harmless (Automerge ignores known changes).
    pub fn compact(&mut self, id: &str) -> Result<(), StoreError> {
        self.apply_pending(id)?;
        let dir = self.doc_dir(id);
        let slot = self.slot(id)?;
        let bytes = slot.doc.save();
        write_atomic(&dir.join("snapshot"), &bytes)?;
        let log_path = dir.join("log");
        slot.log.set_len(0).map_err(io_err(&log_path))?;
        slot.log.sync_all().map_err(io_err(&log_path))?;
        slot.log_frames = 0;
        slot.log_bytes = 0;
        slot.unsynced = false;
        Ok(())
    }

    /// The stored sync state with the server for a document (fresh if none or damaged;
    /// a damaged file is quarantined and reported).
    pub fn sync_state(&mut self, id: &str) -> Result<SyncState, StoreError> {
        check_id(id)?;
        let path = self.doc_dir(id).join("sync");
        match read_single(&path)? {
            Single::Missing => Ok(SyncState::new()),
            Single::Good(b) => match SyncState::decode(&b) {
                Ok(s) => Ok(s),
                Err(e) => {
                    self.quarantine(&path, format!("sync state does not decode: {e}"))?;
                    Ok(SyncState::new())
                }
            },
            Single::Bad(why) => {
                self.quarantine(&path, format!("sync state damaged: {why}"))?;
                Ok(SyncState::new())
            }
        }
    }

    /// Stores the sync state with the server for a document.
    pub fn save_sync_state(&mut self, id: &str, state: &SyncState) -> Result<(), StoreError> {
        if !self.docs.contains_key(id) {
            return Err(StoreError::UnknownDoc(id.to_owned()));
        }
        write_atomic(&self.doc_dir(id).join("sync"), &state.encode())
    }

    /// The stored reference data of a site (None if never downloaded or damaged; a
    /// damaged file is quarantined and reported).
    pub fn reference(&mut self, site: &str) -> Result<Option<ReferenceData>, StoreError> {
        check_id(site)?;
        let path = self.root.join("reference").join(site);
        match read_single(&path)? {
            Single::Missing => Ok(None),
            Single::Good(b) => match serde_json::from_slice(&b) {
                Ok(r) => Ok(Some(r)),
                Err(e) => {
                    self.quarantine(&path, format!("reference data does not parse: {e}"))?;
                    Ok(None)
                }
            },
            Single::Bad(why) => {
                self.quarantine(&path, format!("reference data damaged: {why}"))?;
                Ok(None)
            }
        }
    }

    /// Writes a small session file `meta/<name>` atomically and durably.
    pub fn put_meta(&mut self, name: &str, payload: &[u8]) -> Result<(), StoreError> {
        check_id(name)?;
        write_atomic(&self.root.join("meta").join(name), payload)
    }

    /// Reads `meta/<name>` of a store directory without opening the store: the payload
    /// if the file is one intact frame, else None (nothing is moved or reported).
    pub fn peek_meta(root: &Path, name: &str) -> Option<Vec<u8>> {
        check_id(name).ok()?;
        match read_single(&root.join("meta").join(name)) {
            Ok(Single::Good(b)) => Some(b),
            _ => None,
        }
    }

    /// Reads `meta/<name>` (None if absent or damaged; a damaged file is quarantined and
    /// reported).
    pub fn meta(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_id(name)?;
        let path = self.root.join("meta").join(name);
        match read_single(&path)? {
            Single::Missing => Ok(None),
            Single::Good(b) => Ok(Some(b)),
            Single::Bad(why) => {
                self.quarantine(&path, format!("{name} damaged: {why}"))?;
                Ok(None)
            }
        }
    }

    /// Writes this device made to a document that the server has not acknowledged:
    /// pending scans plus the operations of this actor's changes that are not under the
    /// stored sync state's shared heads (one scan or void = one operation). Falls to 0
    /// once sync stores a state whose shared heads cover them.
    pub fn unsynced_writes(&mut self, id: &str) -> Result<u64, StoreError> {
        let ops = self.unsynced_applied_writes(id)?;
        Ok(ops + self.slot(id)?.pending.len() as u64)
    }

    /// The part of [`Store::unsynced_writes`] already applied to the Automerge document
    /// (pending scans excluded): writes bound to the current actor for good.
    pub fn unsynced_applied_writes(&mut self, id: &str) -> Result<u64, StoreError> {
        let state = self.sync_state(id)?;
        let actor = self.actor.clone();
        let slot = self.slot(id)?;
        Ok(slot.doc.ops_by_since(&actor, state.shared_heads()))
    }

    /// The Automerge actor this store writes with.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Writes with `actor` from now on, in every document and in documents added later
    /// (the device's registered actor after sign-in). Scans still pending are applied
    /// by it. The caller persists the choice (the store keeps no actor on disk).
    pub fn set_actor(&mut self, actor: ActorId) {
        for slot in self.docs.values_mut() {
            slot.doc.set_actor(actor.clone());
        }
        self.actor = actor;
    }

    /// Stores a full copy of a site's reference data (first download, or a reset).
    pub fn put_reference(&mut self, data: &ReferenceData) -> Result<(), StoreError> {
        check_id(&data.site)?;
        let json = serde_json::to_vec(data).map_err(|e| StoreError::Json(e.to_string()))?;
        write_atomic(&self.root.join("reference").join(&data.site), &json)
    }

    /// Applies a delta to the stored reference data; refused (nothing changed) unless it
    /// starts at the stored version.
    pub fn apply_reference_delta(
        &mut self,
        delta: &ReferenceDelta,
    ) -> Result<ReferenceData, StoreError> {
        let mut data = self
            .reference(&delta.site)?
            .ok_or_else(|| StoreError::NoReference(delta.site.clone()))?;
        data.apply_delta(delta)?;
        self.put_reference(&data)?;
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swt_domain::testing::{header, scan, server_actor};

    fn actor() -> ActorId {
        ActorId::from(b"dev-install-1".as_slice())
    }

    fn new_store(dir: &Path) -> Store {
        let mut s = Store::open(dir, actor(), StoreOptions::default()).unwrap();
        let mut server = TaskDocument::create(server_actor(), &header(), 1).unwrap();
        let doc = TaskDocument::load(&server.save(), actor()).unwrap();
        s.insert_doc("t1", doc).unwrap();
        s
    }

    #[test]
    fn scans_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = new_store(dir.path());
        for n in 0..10 {
            s.record_scan("t1", &scan("d", "u", n)).unwrap();
        }
        assert!(s.record_scan("t1", &scan("d", "u", 3)).is_err());
        drop(s);
        let mut s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
        assert!(s.events().is_empty(), "{:?}", s.events());
        assert_eq!(s.doc("t1").unwrap().scan_count(), 10);
        s.compact("t1").unwrap();
        s.record_scan("t1", &scan("d", "u", 10)).unwrap();
        drop(s);
        let s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
        assert_eq!(s.doc("t1").unwrap().scan_count(), 11);
        assert_eq!(s.doc("t1").unwrap().header().unwrap(), header());
    }

    #[test]
    fn automatic_compaction_and_batched_durability() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            compact_after_frames: 7,
            durability: Durability::Batched,
            ..Default::default()
        };
        let mut s = Store::open(dir.path(), actor(), opts.clone()).unwrap();
        let mut server = TaskDocument::create(server_actor(), &header(), 1).unwrap();
        s.insert_doc("t1", TaskDocument::load(&server.save(), actor()).unwrap())
            .unwrap();
        for n in 0..20 {
            s.record_scan("t1", &scan("d", "u", n)).unwrap();
        }
        s.record_scans("t1", &[scan("d", "u", 20), scan("d", "u", 21)])
            .unwrap();
        s.flush().unwrap();
        let log_len = fs::metadata(dir.path().join("docs/t1/log")).unwrap().len();
        assert!(log_len < 2000, "log was compacted: {log_len}");
        drop(s);
        let s = Store::open(dir.path(), actor(), opts).unwrap();
        assert_eq!(s.doc("t1").unwrap().scan_count(), 22);
    }

    #[test]
    fn sync_state_and_update_doc_persist() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
        s.insert_doc("t2", TaskDocument::empty(actor())).unwrap();
        let mut server = TaskDocument::create(server_actor(), &header(), 1).unwrap();
        let mut ss = SyncState::new();
        let mut ds = s.sync_state("t2").unwrap();
        for _ in 0..10 {
            if let Some(m) = server.generate_sync_message(&mut ss) {
                s.update_doc("t2", |d| d.receive_sync_message(&mut ds, &m))
                    .unwrap()
                    .unwrap();
            }
            let msg = s
                .update_doc("t2", |d| d.generate_sync_message(&mut ds))
                .unwrap();
            if let Some(m) = msg {
                server.receive_sync_message(&mut ss, &m).unwrap();
            }
        }
        s.save_sync_state("t2", &ds).unwrap();
        drop(s);
        let mut s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
        assert_eq!(s.doc("t2").unwrap().header().unwrap(), header());
        assert_eq!(s.sync_state("t2").unwrap().encode(), ds.encode());
    }

    #[test]
    fn reference_data_deltas() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
        let d = ReferenceDelta {
            site: "s1".into(),
            from_version: 1,
            to_version: 2,
            ..Default::default()
        };
        assert!(matches!(
            s.apply_reference_delta(&d),
            Err(StoreError::NoReference(_))
        ));
        s.put_reference(&ReferenceData {
            site: "s1".into(),
            version: 1,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.apply_reference_delta(&d).unwrap().version, 2);
        assert!(matches!(
            s.apply_reference_delta(&d),
            Err(StoreError::Delta(DeltaError::VersionMismatch {
                stored: 2,
                from: 1
            }))
        ));
        drop(s);
        let mut s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
        assert_eq!(s.reference("s1").unwrap().unwrap().version, 2);
        assert!(s.reference("../x").is_err());
    }
}
