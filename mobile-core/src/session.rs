//! The scanner's session: one façade over the device store, the task documents and the
//! scan rules, for the app (through `ffi`) and for the sync client.
//!
//! Owns the install identity (Automerge actor, scan-id counter), the logged-in user and
//! tokens (persisted, so scans recorded offline after a token expired still sync after
//! the next login), one [`TaskState`] per task (rules indexes, O(1) per scan) and the
//! sync status shown to the user. [`Session::login`] signs in and binds the install to
//! the device's registered Automerge actor; [`Session::sync_now`] runs the sync client
//! (`crate::sync`) over the store and reports back through [`Session::sync_finished`].
//!
//! **Actor.** A fresh install writes with a random actor until its first sign-in. At
//! sign-in the server names the device's registered actor (`device.actor_id`); the
//! session adopts it for every document and persists it in the install file, so every
//! later open writes with it ("fixed at first login"). A scan id is
//! `<actor hex>.<install nonce>.<counter>`: the server refuses a scan whose id does not
//! start with the writing actor (no device can take another's ids), and the nonce (the
//! first 8 hex digits of the install's original random actor) keeps ids unique when a
//! reinstalled device gets the same registered actor and counts from 0 again. Scans still
//! in the pending log are written into Automerge only later, so they are re-authored by
//! the new actor for free, and renamed into its id space (`rename_pending_scans`); a
//! store whose documents already hold *applied* writes by another actor that the server
//! has not acknowledged cannot adopt a new actor (the server would refuse those writes as
//! `foreign_actor`): sign-in then fails with [`SessionError::ActorConflict`] and nothing
//! changes.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use automerge::ActorId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::api::{self, SignedIn};
use crate::doc::{DocError, Header, TaskDocument, TaskKind};
use crate::gs1::{self, ParseOptions};
use crate::model::{
    Action, MAX_RAW_LEN, RecordError, ReferenceData, ReferenceDelta, Scan, ScanId, Void,
};
use crate::rules::{self, Finding, Outcome, Progress, Reason, TaskState, Verdict};
use crate::store::{Durability, Store, StoreError, StoreEvent, StoreOptions};
use crate::sync::{self, Client, StoreAccess, SyncError, SyncReport};

/// Timeout of one whole HTTP request of sign-in or sync (a first sync of a large
/// document is a few MB).
const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// A clerk waits for an online returns check: longer than this, it stays pending.
const RETURN_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// Scan ids are reserved in blocks persisted ahead of use: one durable write per block,
/// and a restart skips the rest of the block (ids only need to be unique, not dense).
const ID_BLOCK: u64 = 4096;

const META_INSTALL: &str = "install";
const META_IDENTITY: &str = "identity";
const META_SYNC: &str = "sync-status";

/// Errors of the session.
#[derive(Debug, Error)]
pub enum SessionError {
    /// The store failed (disk, damaged files, unknown document…).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A task document is unreadable or incomplete.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// A record could not be built (e.g. a user id longer than 64 bytes).
    #[error(transparent)]
    Record(#[from] RecordError),
    /// No user is set: scans must be attributable.
    #[error("no user logged in")]
    NotLoggedIn,
    /// No such task on this device.
    #[error("unknown task {0}")]
    UnknownTask(String),
    /// No such scan in the task.
    #[error("unknown scan {0}")]
    UnknownScan(String),
    /// The caller passed something invalid.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The task's document holds the most scans one document takes
    /// ([`crate::doc::limits::MAX_SCANS`]); the server would refuse more. Continue the
    /// work in a follow-on task.
    #[error("task {0} is full: continue in a follow-on task")]
    DocumentFull(String),
    /// A session file does not parse.
    #[error("session file {0}: {1}")]
    Meta(&'static str, String),
    /// Sign-in or sync failed (network, expired session, refusal, bad answer).
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The store holds writes by another Automerge actor that the server has not
    /// acknowledged, so the device cannot switch to its registered actor (the server
    /// would refuse them). Nothing was changed.
    #[error(
        "this device holds {writes} unsynced writes by actor {current}, but the server registered actor {registered}; they cannot be synced"
    )]
    ActorConflict {
        /// The actor the store writes with now (hex).
        current: String,
        /// The actor the server registered for the device (hex).
        registered: String,
        /// Applied, unacknowledged writes by `current`.
        writes: u64,
    },
}

/// What a device holds of a site's reference data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceStatus {
    /// Site id.
    pub site: String,
    /// Version held.
    pub version: u64,
    /// When the server last confirmed or updated it, ms since the Unix epoch.
    pub fetched_at_ms: Option<u64>,
}

fn reference_meta(site: &str) -> String {
    format!("reference-fetched-{site}")
}

/// Who scans: the logged-in user on this device, and the tokens for sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// User id, written into every scan (1–64 bytes).
    pub user: String,
    /// Registered device id, written into every scan (1–64 bytes).
    pub device: String,
    /// Site the device is bound to, if known.
    pub site: Option<String>,
    /// Access token (JWT); kept after it expires so the user can be shown as "logged
    /// in, offline".
    pub access_token: Option<String>,
    /// Refresh token.
    pub refresh_token: Option<String>,
    /// Access token expiry, ms since the Unix epoch.
    pub access_expires_ms: Option<u64>,
    /// The server signed in to ([`Session::login`]); [`Session::sync_now`] syncs with it.
    #[serde(default)]
    pub server_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Install {
    /// Automerge actor of this install, hex: random until the first sign-in, then the
    /// device's registered actor.
    actor: String,
    /// Scan-id counters below this are reserved (possibly used).
    reserved_until: u64,
    /// Scan-id prefix when it differs from `actor` (the install's first, random actor,
    /// kept after adopting the registered actor so ids stay unique per install).
    #[serde(default)]
    id_prefix: Option<String>,
}

impl Install {
    /// The install's original random actor: the source of its nonce.
    fn first_actor(&self) -> &str {
        self.id_prefix.as_deref().unwrap_or(&self.actor)
    }

    /// `<actor>.<nonce>`: what every scan id of this install starts with.
    fn id_prefix(&self) -> String {
        let first = self.first_actor();
        let nonce = first.get(..INSTALL_NONCE_LEN).unwrap_or(first);
        format!("{}.{nonce}", self.actor)
    }
}

/// Hex digits of the install nonce in scan ids: 32 bits tell the installs of one device
/// apart, and the id stays within 64 bytes (32 + 1 + 8 + 1 + at most 13).
const INSTALL_NONCE_LEN: usize = 8;

/// The last sync outcome, persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOutcome {
    /// Last successful sync, ms since the Unix epoch.
    pub last_success_ms: Option<u64>,
    /// Last attempt, ms since the Unix epoch.
    pub last_attempt_ms: Option<u64>,
    /// Error of the last attempt, if it failed.
    pub last_error: Option<String>,
}

/// A document the server refused: it is left out of sync until someone looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedTask {
    /// Task id.
    pub task_id: String,
    /// The server's reason code (`foreign_actor`, `wrong_user`, …).
    pub reason: String,
}

/// Sync status of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSyncStatus {
    /// Task id.
    pub task_id: String,
    /// Scans and voids made here that the server has not acknowledged.
    pub pending: u64,
}

/// Sync status for the app's status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// Per task.
    pub tasks: Vec<TaskSyncStatus>,
    /// Sum over tasks.
    pub pending_total: u64,
    /// Tasks the server refused (not offered again until the marker is cleared).
    pub refused: Vec<RefusedTask>,
    /// Last outcome.
    pub outcome: SyncOutcome,
}

/// A task as listed on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSummary {
    /// Task (document) id.
    pub task_id: String,
    /// Header, if the document has been received.
    pub header: Option<Header>,
    /// Progress.
    pub progress: Progress,
}

/// The answer to one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFeedback {
    /// The id the scan was recorded under (use it to void).
    pub scan_id: ScanId,
    /// Accept, warn or reject.
    pub verdict: Verdict,
    /// Primary reason.
    pub reason: Reason,
    /// Short message for the picker.
    pub message: String,
    /// Every rule that fired, most important first.
    pub findings: Vec<Finding>,
    /// GS1 error code and message for an unreadable barcode.
    pub gs1_error: Option<(String, String)>,
    /// What was read.
    pub identifiers: crate::model::Identifiers,
    /// Task progress after this scan.
    pub progress: Progress,
}

/// A returned pack's verification as the scanner shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnCheck {
    /// `verified` (back to sellable stock), `review` (verified with information a
    /// person must look at), `not_verified` (quarantine) or `pending`.
    pub result: String,
    /// LMS `verificationFailureReason`, when not verified.
    pub failure_reason: Option<String>,
    /// LMS `additionalInfo` (`Recalled`, `Expired`, `Suspect`…).
    pub additional_info: Option<String>,
    /// A short line for the clerk.
    pub message: String,
}

impl ReturnCheck {
    fn pending(message: &str) -> ReturnCheck {
        ReturnCheck {
            result: "pending".to_owned(),
            failure_reason: None,
            additional_info: None,
            message: message.to_owned(),
        }
    }
}

/// Session tuning.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Store options (durability, batching).
    pub store: StoreOptions,
    /// GS1 parser options (e.g. a scanner's separator substitute).
    pub parse: ParseOptions,
}

/// The device-side session over one store directory.
pub struct Session {
    store: Store,
    install: Install,
    next_counter: u64,
    identity: Option<Identity>,
    location: Option<String>,
    tasks: HashMap<String, TaskState>,
    references: HashMap<String, ReferenceData>,
    sync: SyncOutcome,
    parse: ParseOptions,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("store", &self.store)
            .field("actor", &self.install.actor)
            .finish_non_exhaustive()
    }
}

/// How the bytes of a read reached the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// From the scanner: any form of GS1 data, read per [`SessionOptions::parse`].
    Scanned,
    /// Typed by hand: a GS1 key only.
    Keyed,
}

/// Wall clock in ms since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn action_for(kind: TaskKind) -> Action {
    match kind {
        TaskKind::Receiving => Action::Receive,
        TaskKind::Picking => Action::Pick,
        TaskKind::Packing => Action::Pack,
        TaskKind::Shipping => Action::Ship,
        TaskKind::Returns => Action::Return,
        TaskKind::StockCount => Action::Count,
    }
}

/// Access-token expiry from a sign-in answer's `expires_in` (seconds).
fn expiry_ms(now_ms: u64, expires_in: i64) -> u64 {
    now_ms.saturating_add(u64::try_from(expires_in).unwrap_or(0).saturating_mul(1000))
}

fn actor_from_hex(hex: &str) -> Option<ActorId> {
    ActorId::try_from(hex).ok()
}

impl Session {
    /// Opens (creating if needed) a session directory: the store, the install identity,
    /// the saved user and the last sync outcome. Damaged files are quarantined and listed
    /// in [`Session::events`].
    pub fn open(dir: impl AsRef<Path>, opts: SessionOptions) -> Result<Self, SessionError> {
        let dir = dir.as_ref();
        // The actor must be known before the store opens its documents (opening may
        // apply pending scans as a change by that actor), so peek at the install file.
        let install = match Store::peek_meta(dir, META_INSTALL)
            .and_then(|b| serde_json::from_slice::<Install>(&b).ok())
            .filter(|i| actor_from_hex(&i.actor).is_some())
        {
            Some(i) => i,
            // New install, or a damaged install file (quarantined below by `meta`): a
            // fresh actor and id prefix keep every id unique either way.
            None => Install {
                actor: uuid::Uuid::new_v4().simple().to_string(),
                reserved_until: 0,
                id_prefix: None,
            },
        };
        let actor = actor_from_hex(&install.actor)
            .ok_or_else(|| SessionError::Meta(META_INSTALL, "actor is not hex".into()))?;
        let mut store = Store::open(dir, actor, opts.store)?;
        let _ = store.meta(META_INSTALL)?;
        let identity = match store.meta(META_IDENTITY)? {
            Some(b) => serde_json::from_slice(&b).ok(),
            None => None,
        };
        let sync = match store.meta(META_SYNC)? {
            Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
            None => SyncOutcome::default(),
        };
        // Ids from the previous run's block may have been used: start past it. The next
        // block is reserved (one fsync'd write) by the first scan, not here: opening
        // stays free of writes.
        let mut session = Self {
            store,
            next_counter: install.reserved_until,
            install,
            identity,
            location: None,
            tasks: HashMap::new(),
            references: HashMap::new(),
            sync,
            parse: opts.parse,
        };
        // A crash may have come between adopting an actor and writing the renamed
        // pending scans: rename them again (a no-op otherwise, and no write).
        session.rename_pending_scans()?;
        Ok(session)
    }

    fn reserve_ids(&mut self) -> Result<(), SessionError> {
        self.install.reserved_until = self.next_counter + ID_BLOCK;
        let json = serde_json::to_vec(&self.install)
            .map_err(|e| SessionError::Meta(META_INSTALL, e.to_string()))?;
        self.store.put_meta(META_INSTALL, &json)?;
        Ok(())
    }

    fn next_scan_id(&mut self) -> Result<ScanId, SessionError> {
        if self.next_counter >= self.install.reserved_until {
            self.reserve_ids()?;
        }
        let id = ScanId::from_device_counter(&self.install.id_prefix(), self.next_counter)?;
        self.next_counter += 1;
        Ok(id)
    }

    /// What opening found and handled (torn tails, quarantined files).
    pub fn events(&self) -> &[StoreEvent] {
        self.store.events()
    }

    /// This install's Automerge actor, hex: random before the first sign-in, the
    /// device's registered actor after it.
    pub fn actor_hex(&self) -> &str {
        &self.install.actor
    }

    /// The prefix of this install's scan ids: its actor (hex), a dot and the install
    /// nonce.
    pub fn scan_id_prefix(&self) -> String {
        self.install.id_prefix()
    }

    // ---- identity ----

    /// Sets the logged-in user, device and tokens, durably.
    pub fn set_identity(&mut self, identity: Identity) -> Result<(), SessionError> {
        for (field, v) in [("user", &identity.user), ("device", &identity.device)] {
            if v.is_empty() || v.len() > crate::model::MAX_NAME_LEN {
                return Err(SessionError::InvalidInput(format!(
                    "{field} must be 1-64 bytes"
                )));
            }
        }
        self.save_identity(Some(identity))
    }

    /// Replaces only the tokens (after a refresh or a new login of the same user).
    pub fn set_tokens(
        &mut self,
        access_token: Option<String>,
        refresh_token: Option<String>,
        access_expires_ms: Option<u64>,
    ) -> Result<(), SessionError> {
        let mut id = self.identity.clone().ok_or(SessionError::NotLoggedIn)?;
        id.access_token = access_token;
        id.refresh_token = refresh_token;
        id.access_expires_ms = access_expires_ms;
        self.save_identity(Some(id))
    }

    /// Forgets the user and tokens. Recorded scans stay and sync at the next login of
    /// the same user.
    pub fn logout(&mut self) -> Result<(), SessionError> {
        self.save_identity(None)
    }

    fn save_identity(&mut self, identity: Option<Identity>) -> Result<(), SessionError> {
        let json = serde_json::to_vec(&identity)
            .map_err(|e| SessionError::Meta(META_IDENTITY, e.to_string()))?;
        self.store.put_meta(META_IDENTITY, &json)?;
        self.identity = identity;
        Ok(())
    }

    /// The logged-in identity.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Sets the location written into following scans (bin, dock door…), or clears it.
    pub fn set_location(&mut self, location: Option<String>) -> Result<(), SessionError> {
        if let Some(l) = &location
            && (l.is_empty() || l.len() > crate::model::MAX_NAME_LEN)
        {
            return Err(SessionError::InvalidInput(
                "location must be 1-64 bytes".into(),
            ));
        }
        self.location = location;
        Ok(())
    }

    // ---- reference data ----

    /// Stores a full copy of a site's reference data.
    pub fn put_reference(&mut self, data: ReferenceData) -> Result<(), SessionError> {
        self.store.put_reference(&data)?;
        self.references.insert(data.site.clone(), data);
        Ok(())
    }

    /// Applies a reference-data delta (refused unless it starts at the stored version).
    pub fn apply_reference_delta(&mut self, delta: &ReferenceDelta) -> Result<(), SessionError> {
        let data = self.store.apply_reference_delta(delta)?;
        self.references.insert(data.site.clone(), data);
        Ok(())
    }

    /// Brings a site's reference data up to date with what the server sent, and records
    /// when (the age the app shows). Returns the version now held. A delta that does not
    /// start at the stored version is refused and changes nothing
    /// ([`SessionError::Store`]); the next sync then asks for a full copy.
    pub fn apply_reference_update(
        &mut self,
        update: &api::ReferenceUpdate,
        now_ms: u64,
    ) -> Result<u64, SessionError> {
        let site = match update {
            api::ReferenceUpdate::Current { site, .. } => site.clone(),
            api::ReferenceUpdate::Delta(d) => {
                self.apply_reference_delta(d)?;
                d.site.clone()
            }
            api::ReferenceUpdate::Full(d) => {
                self.put_reference(d.clone())?;
                d.site.clone()
            }
        };
        self.store
            .put_meta(&reference_meta(&site), now_ms.to_string().as_bytes())?;
        Ok(update.version())
    }

    /// The version of a site's reference data this device holds and when it last heard
    /// from the server about it (`None`: never downloaded).
    pub fn reference_status(
        &mut self,
        site: &str,
    ) -> Result<Option<ReferenceStatus>, SessionError> {
        let version = match self.store.reference(site) {
            Ok(Some(d)) => d.version,
            Ok(None) | Err(StoreError::InvalidId(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let fetched_at_ms = self
            .store
            .meta(&reference_meta(site))?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.parse().ok());
        Ok(Some(ReferenceStatus {
            site: site.to_owned(),
            version,
            fetched_at_ms,
        }))
    }

    /// The site this device works at, once known from a sign-in.
    pub fn site(&self) -> Option<&str> {
        self.identity.as_ref().and_then(|i| i.site.as_deref())
    }

    fn reference(&mut self, site: &str) -> Result<&ReferenceData, SessionError> {
        if !self.references.contains_key(site) {
            // Never downloaded (or damaged): an empty copy for the site, so every rule
            // that needs data warns (unknown product) rather than silently passing.
            let data = match self.store.reference(site) {
                Ok(Some(d)) => d,
                Ok(None) | Err(StoreError::InvalidId(_)) => ReferenceData::default(),
                Err(e) => return Err(e.into()),
            };
            self.references.insert(site.to_owned(), data);
        }
        self.references
            .get(site)
            .ok_or_else(|| SessionError::UnknownTask(site.to_owned()))
    }

    // ---- tasks ----

    /// Adds a task document received whole (or an empty one to sync into).
    pub fn add_task(&mut self, task_id: &str, doc: TaskDocument) -> Result<(), SessionError> {
        self.store.insert_doc(task_id, doc)?;
        self.tasks.remove(task_id);
        Ok(())
    }

    /// Adds a task from a document's saved bytes (e.g. downloaded by the app).
    pub fn add_task_bytes(&mut self, task_id: &str, bytes: &[u8]) -> Result<(), SessionError> {
        let actor = actor_from_hex(&self.install.actor)
            .ok_or_else(|| SessionError::Meta(META_INSTALL, "actor is not hex".into()))?;
        let doc = TaskDocument::load(bytes, actor)
            .map_err(|e| SessionError::InvalidInput(format!("task document: {e}")))?;
        self.add_task(task_id, doc)
    }

    /// Ids of the tasks on this device.
    pub fn task_ids(&self) -> Vec<String> {
        self.store.doc_ids()
    }

    /// Every task with its header and progress.
    pub fn tasks(&mut self) -> Result<Vec<TaskSummary>, SessionError> {
        let mut out = Vec::new();
        for id in self.store.doc_ids() {
            let header = self.store.doc(&id).and_then(|d| d.header().ok());
            let progress = if header.is_some() {
                self.task_state(&id)?.progress()
            } else {
                Progress::default()
            };
            out.push(TaskSummary {
                task_id: id,
                header,
                progress,
            });
        }
        Ok(out)
    }

    /// The task's header.
    pub fn task_header(&self, task_id: &str) -> Result<Header, SessionError> {
        let doc = self
            .store
            .doc(task_id)
            .ok_or_else(|| SessionError::UnknownTask(task_id.to_owned()))?;
        Ok(doc.header()?)
    }

    fn task_state(&mut self, task_id: &str) -> Result<&mut TaskState, SessionError> {
        if !self.tasks.contains_key(task_id) {
            let site = self.task_header(task_id)?.site;
            let reference = self.reference(&site)?.clone();
            let doc = self
                .store
                .doc(task_id)
                .ok_or_else(|| SessionError::UnknownTask(task_id.to_owned()))?;
            let mut st = TaskState::from_document(doc, &reference)?;
            for s in self.store.pending_scans(task_id) {
                st.replay(s, &reference);
            }
            self.tasks.insert(task_id.to_owned(), st);
        }
        self.tasks
            .get_mut(task_id)
            .ok_or_else(|| SessionError::UnknownTask(task_id.to_owned()))
    }

    /// What the server wrote back for a scan (its `results` entry), if anything yet.
    pub fn scan_result(
        &self,
        task_id: &str,
        scan_id: &str,
    ) -> Result<Option<crate::doc::ScanResult>, SessionError> {
        let id =
            ScanId::parse(scan_id).map_err(|_| SessionError::UnknownScan(scan_id.to_owned()))?;
        let doc = self
            .store
            .doc(task_id)
            .ok_or_else(|| SessionError::UnknownTask(task_id.to_owned()))?;
        Ok(doc.result(&id)?)
    }

    /// Progress of a task.
    pub fn progress(&mut self, task_id: &str) -> Result<Progress, SessionError> {
        Ok(self.task_state(task_id)?.progress())
    }

    // ---- scanning ----

    /// Records one scan now: parse, rules, durable append. See [`Session::record_scan_at`].
    pub fn record_scan(&mut self, task_id: &str, raw: &[u8]) -> Result<ScanFeedback, SessionError> {
        self.record_scan_at(task_id, raw, now_ms())
    }

    /// Records one scan made at `now_ms` (device clock; "today" for the expiry rules is its
    /// UTC date). A barcode that does not parse is recorded too, with feedback
    /// `invalid_barcode` (the audit trail keeps failed reads); raw bytes beyond
    /// 2,048 (no GS1 symbol holds that many) are cut.
    pub fn record_scan_at(
        &mut self,
        task_id: &str,
        raw: &[u8],
        now_ms: u64,
    ) -> Result<ScanFeedback, SessionError> {
        self.record_read_at(task_id, raw, Read::Scanned, now_ms)
    }

    /// Records a GS1 key typed by hand (a GTIN-8/12/13/14 or an 18-digit SSCC, for a
    /// label that will not scan), like [`Session::record_scan_at`]. The typed text is read
    /// only as a key ([`gs1::parse_keyed`]), never guessed from scanner data: digits that
    /// are not a valid key give `invalid_barcode` with the reason (check digit, length).
    /// A valid key is stored as its bracketed form (`(01)09506000134352`), which every
    /// reader of the document parses back to the same key.
    pub fn record_keyed_at(
        &mut self,
        task_id: &str,
        typed: &str,
        now_ms: u64,
    ) -> Result<ScanFeedback, SessionError> {
        self.record_read_at(task_id, typed.trim().as_bytes(), Read::Keyed, now_ms)
    }

    fn record_read_at(
        &mut self,
        task_id: &str,
        raw: &[u8],
        read: Read,
        now_ms: u64,
    ) -> Result<ScanFeedback, SessionError> {
        let (user, device) = match &self.identity {
            Some(i) => (i.user.clone(), i.device.clone()),
            None => return Err(SessionError::NotLoggedIn),
        };
        let raw = &raw[..raw.len().min(MAX_RAW_LEN)];
        let held = self.store.doc(task_id).map_or(0, TaskDocument::scan_count)
            + self.store.pending_scans(task_id).len();
        if held >= crate::doc::limits::MAX_SCANS {
            return Err(SessionError::DocumentFull(task_id.to_owned()));
        }
        let today = rules::date_from_unix_ms(now_ms);
        let parsed = match read {
            Read::Scanned => gs1::parse(raw, &self.parse),
            Read::Keyed => gs1::parse_keyed(raw),
        };
        // Borrow dance: the rules need the task state and the site's reference together.
        let site = {
            let st = self.task_state(task_id)?;
            st.site().to_owned()
        };
        self.reference(&site)?;
        let reference = self
            .references
            .get(&site)
            .ok_or_else(|| SessionError::UnknownTask(task_id.to_owned()))?;
        let st = self
            .tasks
            .get(task_id)
            .ok_or_else(|| SessionError::UnknownTask(task_id.to_owned()))?;
        let outcome: Outcome = st.evaluate(raw, &parsed, reference, today);
        let kind = st.kind();
        let id = self.next_scan_id()?;
        // A typed key is recorded in bracketed AI syntax, `(01)…`: the server re-judges
        // every stored scan with the default reading, in which bare digits are AI data,
        // and must find the same key. Typed text that is no key is recorded as typed.
        let stored = match (read, &parsed) {
            (Read::Keyed, Ok(d)) => d.to_bracketed().into_bytes(),
            _ => raw.to_vec(),
        };
        let scan = Scan {
            id,
            raw: stored,
            ids: outcome.identifiers.clone(),
            action: action_for(kind),
            user,
            device,
            location: self.location.clone(),
            device_time_ms: now_ms,
            feedback: outcome.reason.feedback(),
            parent: None,
        };
        self.store.record_scan(task_id, &scan)?;
        let st = self.task_state(task_id)?;
        st.apply(&scan.id, &outcome);
        let progress = st.progress();
        Ok(ScanFeedback {
            scan_id: scan.id,
            verdict: outcome.verdict,
            reason: outcome.reason,
            message: outcome.message,
            findings: outcome.findings,
            gs1_error: outcome.gs1_error,
            identifiers: outcome.identifiers,
            progress,
        })
    }

    /// The kind of a task on the device.
    pub fn task_kind(&mut self, task_id: &str) -> Result<TaskKind, SessionError> {
        Ok(self.task_state(task_id)?.kind())
    }

    /// Verifies a returned pack with the server now (saleable returns, online path), for
    /// a scan just recorded in a returns task. Never fails for lack of network: offline,
    /// signed out or with the server unreachable the answer is `pending`, and the server
    /// verifies the scan when it syncs, writing the outcome back into the task document
    /// ([`Session::scan_result`] after the next sync).
    pub fn verify_return(
        &mut self,
        task_id: &str,
        feedback: &ScanFeedback,
    ) -> Result<ReturnCheck, SessionError> {
        Ok(self.return_check(task_id, feedback)?.run())
    }

    /// The local half of [`Session::verify_return`]: decides whether the scan can be
    /// verified online and builds the request. [`ReturnCheckCall::run`] then does the
    /// network part without the session, so other calls need not wait for it.
    pub fn return_check(
        &mut self,
        task_id: &str,
        feedback: &ScanFeedback,
    ) -> Result<ReturnCheckCall, SessionError> {
        if self.task_state(task_id)?.kind() != TaskKind::Returns {
            return Err(SessionError::InvalidInput(format!(
                "task {task_id} is not a returns task"
            )));
        }
        let settled = |why: &str| {
            Ok(ReturnCheckCall(CheckCall::Settled(ReturnCheck::pending(
                why,
            ))))
        };
        let ids = &feedback.identifiers;
        let (Some(gtin), Some(serial)) = (ids.gtin.clone(), ids.serial.clone()) else {
            return settled("not a serialized pack: nothing to verify");
        };
        let identity = self.identity.clone().ok_or(SessionError::NotLoggedIn)?;
        let (Some(url), Some(token)) = (identity.server_url, identity.access_token) else {
            return settled("offline: verified by the server at the next sync");
        };
        if identity.access_expires_ms.is_some_and(|t| t <= now_ms()) {
            return settled("session expired: verified by the server at the next sync");
        }
        Ok(ReturnCheckCall(CheckCall::Online {
            url,
            token,
            request: api::VerifyReturn {
                document_id: task_id.to_owned(),
                scan_id: feedback.scan_id.to_string(),
                gtin,
                serial,
                lot: ids.lot.clone(),
                expiry: ids.expiry.clone(),
            },
        }))
    }

    /// Voids a scan of the logged-in user (the scan stays in the audit trail).
    pub fn void_scan(&mut self, task_id: &str, scan_id: &str) -> Result<Progress, SessionError> {
        self.void_scan_at(task_id, scan_id, now_ms())
    }

    /// [`Session::void_scan`] at a given device time.
    pub fn void_scan_at(
        &mut self,
        task_id: &str,
        scan_id: &str,
        now_ms: u64,
    ) -> Result<Progress, SessionError> {
        let (user, device) = match &self.identity {
            Some(i) => (i.user.clone(), i.device.clone()),
            None => return Err(SessionError::NotLoggedIn),
        };
        let id =
            ScanId::parse(scan_id).map_err(|_| SessionError::UnknownScan(scan_id.to_owned()))?;
        if !self.task_state(task_id)?.is_live(&id) {
            return Err(SessionError::UnknownScan(scan_id.to_owned()));
        }
        let void = Void {
            scan_id: id.clone(),
            user,
            device,
            device_time_ms: now_ms,
        };
        self.store.void_scan(task_id, &void)?;
        let st = self.task_state(task_id)?;
        st.void(&id);
        Ok(st.progress())
    }

    /// Makes every batched write durable (with [`Durability::Batched`]).
    pub fn flush(&mut self) -> Result<(), SessionError> {
        Ok(self.store.flush()?)
    }

    /// Switches durability (bulk work), flushing when going back to each-append.
    pub fn set_durability(&mut self, d: Durability) -> Result<(), SessionError> {
        Ok(self.store.set_durability(d)?)
    }

    // ---- sign-in and sync ----

    /// Signs in at `server_url` as `username` on the registered device `device_id`:
    /// stores the tokens and the identity (user id and device id go into every scan),
    /// and adopts the device's registered Automerge actor (see the module docs).
    pub fn login(
        &mut self,
        server_url: &str,
        username: &str,
        password: &str,
        device_id: &str,
    ) -> Result<Identity, SessionError> {
        let client = Client::new(server_url, HTTP_TIMEOUT);
        let tokens = client
            .login(username, password, device_id)
            .map_err(|e| match e {
                // At sign-in a 401 means wrong credentials, not an expired session.
                SyncError::Unauthorized(_) => SyncError::Rejected {
                    status: 401,
                    code: "invalid_credentials".into(),
                    message: "wrong user name or password".into(),
                },
                other => other,
            })?;
        self.apply_login(server_url, tokens, now_ms())
    }

    /// Takes the answer of a sign-in made elsewhere (e.g. by the app's own HTTP stack, or
    /// a test): adopts the registered actor, then stores identity and tokens durably.
    pub fn apply_login(
        &mut self,
        server_url: &str,
        tokens: SignedIn,
        now_ms: u64,
    ) -> Result<Identity, SessionError> {
        let device = tokens.device.clone().ok_or_else(|| {
            SyncError::Protocol("the sign-in answer names no device (not a device login)".into())
        })?;
        let registered = device.actor_id.to_ascii_lowercase();
        let actor = actor_from_hex(&registered).ok_or_else(|| {
            SyncError::Protocol(format!("device actor {registered:?} is not hex"))
        })?;
        self.adopt_actor(&registered, actor)?;
        let identity = Identity {
            user: tokens.user.id.clone(),
            device: device.id.clone(),
            site: Some(device.site_id.clone()),
            access_token: Some(tokens.access_token.clone()),
            refresh_token: Some(tokens.refresh_token.clone()),
            access_expires_ms: Some(expiry_ms(now_ms, tokens.expires_in)),
            server_url: Some(server_url.trim_end_matches('/').to_owned()),
        };
        self.set_identity(identity.clone())?;
        Ok(identity)
    }

    /// Switches every document (and later ones) to `actor` and persists it, unless the
    /// store holds applied writes by the current actor that the server has not seen.
    fn adopt_actor(&mut self, hex: &str, actor: ActorId) -> Result<(), SessionError> {
        if self.install.actor == hex {
            return Ok(());
        }
        let mut writes = 0;
        for id in self.store.doc_ids() {
            writes += self.store.unsynced_applied_writes(&id)?;
        }
        if writes > 0 {
            return Err(SessionError::ActorConflict {
                current: self.install.actor.clone(),
                registered: hex.to_owned(),
                writes,
            });
        }
        // Persist first: if this write fails nothing changed; once it is durable every
        // open uses the registered actor, and the in-memory switch below cannot fail.
        let mut install = self.install.clone();
        install.id_prefix = Some(self.install.first_actor().to_owned());
        install.actor = hex.to_owned();
        let json = serde_json::to_vec(&install)
            .map_err(|e| SessionError::Meta(META_INSTALL, e.to_string()))?;
        self.store.put_meta(META_INSTALL, &json)?;
        self.install = install;
        self.store.set_actor(actor);
        self.rename_pending_scans()?;
        Ok(())
    }

    /// Gives pending scans recorded under an earlier actor (before the first sign-in)
    /// the current actor's id prefix, so the server takes them; they are then written
    /// into the documents under the new ids right away. Deterministic, so it is simply
    /// redone at the next open if a crash comes first.
    fn rename_pending_scans(&mut self) -> Result<(), SessionError> {
        let actor = format!("{}.", self.install.actor);
        for doc in self.store.doc_ids() {
            let renamed = self.store.rename_pending(&doc, |id| {
                let s = id.as_str();
                if s.starts_with(&actor) {
                    return None;
                }
                let (_, rest) = s.split_once('.')?;
                ScanId::parse(&format!("{actor}{rest}")).ok()
            })?;
            if renamed > 0 {
                self.store.apply_pending(&doc)?;
                self.tasks.remove(&doc);
            }
        }
        Ok(())
    }

    /// Syncs every task with the server signed in to: applies pending scans, learns the
    /// site's open tasks, exchanges sync messages in batches. On `401` the tokens are
    /// refreshed once (the new pair is persisted before use: refresh tokens are one-time)
    /// and the sync is retried. The outcome is recorded ([`Session::sync_status`]); on
    /// any error everything recorded stays and syncs next time. Refused documents are
    /// reported in the [`SyncReport`] and in [`SyncStatus::refused`] and not offered
    /// again; other per-document failures are in the report and recorded as the last error.
    pub fn sync_now(&mut self) -> Result<SyncReport, SessionError> {
        sync_now_shared(&std::cell::RefCell::new(self))
    }

    // ---- sync hooks ----

    /// The store, read-only (documents, events, diagnostics).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, for the sync client. Call [`Session::sync_finished`] afterwards: the
    /// documents may have changed under the rules' indexes.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Records a sync outcome (persisted) and drops the rules' indexes so they are rebuilt
    /// from the synced documents (new scans from other devices, status changes).
    pub fn sync_finished(&mut self, at_ms: u64, error: Option<String>) -> Result<(), SessionError> {
        self.sync.last_attempt_ms = Some(at_ms);
        match error {
            None => {
                self.sync.last_success_ms = Some(at_ms);
                self.sync.last_error = None;
            }
            Some(e) => self.sync.last_error = Some(e),
        }
        let json = serde_json::to_vec(&self.sync)
            .map_err(|e| SessionError::Meta(META_SYNC, e.to_string()))?;
        self.store.put_meta(META_SYNC, &json)?;
        self.tasks.clear();
        Ok(())
    }

    /// Gets a task the server refused going again: its local document (which keeps the
    /// refused change, so every later message would be refused too) is set aside in the
    /// store's `quarantine/` folder, whole, for a person to examine, and the refusal
    /// marker is cleared, so the next sync fetches the server's copy and the device can
    /// scan on. Scans in the set-aside copy that the server never took are not replayed:
    /// the refusal said something about them was wrong, and re-attributing them is a
    /// person's decision. Returns the folder the local copy was moved to.
    pub fn reset_refused_task(&mut self, task_id: &str) -> Result<String, SessionError> {
        let marker = self.store.root().join(sync::refused_marker(task_id));
        let reason = std::fs::read_to_string(&marker)
            .map_err(|_| SessionError::InvalidInput(format!("task {task_id} was not refused")))?;
        let to = self
            .store
            .set_aside(task_id, &format!("refused ({reason})"))?;
        // The copy is safe in quarantine: only now may the marker go.
        std::fs::remove_file(&marker).map_err(|e| {
            SessionError::Meta("refused marker", format!("{}: {e}", marker.display()))
        })?;
        self.tasks.remove(task_id);
        Ok(to.display().to_string())
    }

    /// Unsynced writes per task, and the last sync outcome.
    pub fn sync_status(&mut self) -> Result<SyncStatus, SessionError> {
        let mut tasks = Vec::new();
        let mut total = 0;
        for id in self.store.doc_ids() {
            let pending = self.store.unsynced_writes(&id)?;
            total += pending;
            tasks.push(TaskSyncStatus {
                task_id: id,
                pending,
            });
        }
        let mut refused = Vec::new();
        for id in self.store.doc_ids() {
            // The sync client's marker holds the reason; it is the source of truth (a
            // person clears it to offer the document again).
            if let Ok(reason) = std::fs::read(self.store.root().join(sync::refused_marker(&id))) {
                refused.push(RefusedTask {
                    task_id: id,
                    reason: String::from_utf8_lossy(&reason).into_owned(),
                });
            }
        }
        Ok(SyncStatus {
            tasks,
            pending_total: total,
            refused,
            outcome: self.sync.clone(),
        })
    }
}

/// Access to a session shared between threads, for work that does network I/O between
/// local steps: the session is taken per step, never across I/O.
pub trait SessionAccess {
    /// Runs `f` with exclusive access to the session.
    fn with_session<R>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, SessionError>,
    ) -> Result<R, SessionError>;
}

/// A session behind a lock (the app's session object).
impl SessionAccess for std::sync::Mutex<Session> {
    fn with_session<R>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, SessionError>,
    ) -> Result<R, SessionError> {
        let mut s = self.lock().map_err(|_| {
            SyncError::Unavailable("poisoned by an earlier panic; reopen it".into())
        })?;
        f(&mut s)
    }
}

/// A session owned by the caller for the whole call.
impl SessionAccess for std::cell::RefCell<&mut Session> {
    fn with_session<R>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, SessionError>,
    ) -> Result<R, SessionError> {
        f(&mut self.borrow_mut())
    }
}

/// The session's store, for the sync client.
struct SessionStore<'a, A>(&'a A);

impl<A: SessionAccess> StoreAccess for SessionStore<'_, A> {
    fn with_store<R>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, SyncError>,
    ) -> Result<R, SyncError> {
        self.0
            .with_session(|s| Ok(f(&mut s.store)))
            .unwrap_or_else(|e| Err(SyncError::Unavailable(e.to_string())))
    }
}

/// [`Session::sync_now`] on a shared session. The session is held only while documents
/// are read or written, so `record_scan` answers at once while a sync waits on the
/// network; scans recorded meanwhile go out in the sync's next round or the next sync.
/// Run one sync at a time per session.
pub fn sync_now_shared(access: &impl SessionAccess) -> Result<SyncReport, SessionError> {
    let result = sync_shared_inner(access);
    let now = now_ms();
    let error = match &result {
        Ok(r) if r.failed.is_empty() => None,
        Ok(r) => Some(format!(
            "{} task(s) failed to sync: {}",
            r.failed.len(),
            r.failed
                .iter()
                .map(|(id, why)| format!("{id}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Err(e) => Some(e.to_string()),
    };
    access.with_session(|s| s.sync_finished(now, error))?;
    result
}

fn sync_shared_inner(access: &impl SessionAccess) -> Result<SyncReport, SessionError> {
    let (identity, actor) = access.with_session(|s| {
        let identity = s.identity.clone().ok_or(SessionError::NotLoggedIn)?;
        Ok((identity, s.store.actor().clone()))
    })?;
    let url = identity
        .server_url
        .clone()
        .ok_or(SessionError::NotLoggedIn)?;
    let client = Client::new(&url, HTTP_TIMEOUT);
    let store = SessionStore(access);
    let site = identity.site.clone();
    let run = |token: &str| -> Result<SyncReport, SyncError> {
        let mut report = sync::sync_shared(&store, &client, token, &actor)?;
        if let Some(site) = &site {
            report.reference_version = Some(refresh_reference(access, &client, token, site)?);
        }
        Ok(report)
    };
    let first = match &identity.access_token {
        Some(token) => run(token),
        None => Err(SyncError::Unauthorized("no access token".into())),
    };
    // Tokens are stored only while the same user is signed in: someone may have signed
    // out (or in as someone else) while this sync waited on the network.
    let same_user = |s: &Session| s.identity.as_ref().is_some_and(|i| i.user == identity.user);
    match first {
        Err(SyncError::Unauthorized(why)) => {
            let refresh = identity
                .refresh_token
                .as_deref()
                .ok_or(SyncError::Unauthorized(why))?;
            let tokens = match client.refresh(refresh) {
                Ok(t) => t,
                // A spent or revoked refresh token: drop the tokens (they can never work
                // again) but keep the user; the next sign-in syncs everything.
                Err(e @ (SyncError::Unauthorized(_) | SyncError::Rejected { .. })) => {
                    if !e.is_transient() {
                        access.with_session(|s| {
                            if same_user(s) {
                                s.set_tokens(None, None, None)?;
                            }
                            Ok(())
                        })?;
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            // Persist before use: the old refresh token is spent now.
            access.with_session(|s| {
                if same_user(s) {
                    s.set_tokens(
                        Some(tokens.access_token.clone()),
                        Some(tokens.refresh_token.clone()),
                        Some(expiry_ms(now_ms(), tokens.expires_in)),
                    )?;
                }
                Ok(())
            })?;
            Ok(run(&tokens.access_token)?)
        }
        other => Ok(other?),
    }
}

/// One round trip for the site's reference data: a delta from the version held (or the
/// current version confirmed), a full copy when none is held or the delta does not fit.
fn refresh_reference(
    access: &impl SessionAccess,
    client: &Client,
    token: &str,
    site: &str,
) -> Result<u64, SyncError> {
    let held = access
        .with_session(|s| s.reference_status(site))
        .map_err(|e| SyncError::Protocol(e.to_string()))?
        .map(|r| r.version);
    let update = client.reference(token, site, held)?;
    let applied = access.with_session(|s| s.apply_reference_update(&update, now_ms()));
    match applied {
        Ok(v) => Ok(v),
        // The copy changed under us (or is damaged): start again from a full copy.
        Err(_) => {
            let full = client.reference(token, site, None)?;
            access
                .with_session(|s| s.apply_reference_update(&full, now_ms()))
                .map_err(|e| SyncError::Protocol(e.to_string()))
        }
    }
}

/// A scan just recorded, and for a returns scan the online verification still to run
/// (outside the session lock: it waits on the network).
#[derive(Debug)]
pub struct Recorded {
    /// What the scanner shows now.
    pub feedback: ScanFeedback,
    /// The verification to run with [`ReturnCheckCall::run`], if any.
    pub check: Option<ReturnCheckCall>,
}

impl Session {
    /// Records a scan ([`Session::record_scan_at`]) and, for a returns scan the rules did
    /// not reject, prepares its online verification ([`Session::return_check`]).
    pub fn record_for_check(
        &mut self,
        task_id: &str,
        raw: &[u8],
        now_ms: u64,
    ) -> Result<Recorded, SessionError> {
        let feedback = self.record_scan_at(task_id, raw, now_ms)?;
        self.with_check(task_id, feedback)
    }

    /// [`Session::record_for_check`] of a key typed by hand ([`Session::record_keyed_at`]).
    pub fn record_keyed_for_check(
        &mut self,
        task_id: &str,
        typed: &str,
        now_ms: u64,
    ) -> Result<Recorded, SessionError> {
        let feedback = self.record_keyed_at(task_id, typed, now_ms)?;
        self.with_check(task_id, feedback)
    }

    fn with_check(
        &mut self,
        task_id: &str,
        feedback: ScanFeedback,
    ) -> Result<Recorded, SessionError> {
        let check = if self.task_kind(task_id)? == TaskKind::Returns
            && feedback.verdict != Verdict::Reject
        {
            Some(self.return_check(task_id, &feedback)?)
        } else {
            None
        };
        Ok(Recorded { feedback, check })
    }
}

/// A returns verification ready to run: see [`Session::return_check`].
#[derive(Debug)]
pub struct ReturnCheckCall(CheckCall);

#[derive(Debug)]
enum CheckCall {
    /// Nothing to ask the server (offline, not serialized…): the answer is known.
    Settled(ReturnCheck),
    Online {
        url: String,
        token: String,
        request: api::VerifyReturn,
    },
}

impl ReturnCheckCall {
    /// Asks the server (at most [`RETURN_CHECK_TIMEOUT`]); any failure is `pending`: the
    /// server verifies the scan when it syncs.
    pub fn run(self) -> ReturnCheck {
        let (url, token, request) = match self.0 {
            CheckCall::Settled(c) => return c,
            CheckCall::Online {
                url,
                token,
                request,
            } => (url, token, request),
        };
        match Client::new(&url, RETURN_CHECK_TIMEOUT).verify_return(&token, &request) {
            Ok(a) => ReturnCheck {
                message: a
                    .additional_info
                    .clone()
                    .or(a.verification_failure_reason.clone())
                    .or(a.last_error.clone())
                    .unwrap_or_default(),
                result: a.result,
                failure_reason: a.verification_failure_reason,
                additional_info: a.additional_info,
            },
            Err(e) => ReturnCheck::pending(&format!(
                "not verified yet ({e}); the server verifies it at the next sync"
            )),
        }
    }
}
