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
//!
//! By subject: `identity` (user, tokens, install and scan ids), `login` (sign-in and actor
//! adoption), `reference` (the site's reference data), `tasks` (task list and rules
//! state), `scanning` (scans and voids), `returns` (the online check of returned packs)
//! and `sync`; `shared` is the session used from several threads (the app's).

mod identity;
mod login;
mod reference;
mod returns;
mod scanning;
mod shared;
mod sync;
mod tasks;
#[cfg(test)]
mod testing;

pub use self::identity::Identity;
pub use self::reference::ReferenceStatus;
pub use self::returns::{CheckedScan, Recorded, ReturnCheck, ReturnCheckCall};
pub use self::scanning::ScanFeedback;
pub use self::shared::SharedSession;
pub use self::sync::{
    RefusedTask, SessionAccess, SyncOutcome, SyncStatus, TASK_LIST_EVERY_MS, TaskList,
    TaskSyncStatus, sync_now_shared, sync_shared_with,
};
pub use self::tasks::{TaskSummary, build_task_document};

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use self::identity::{Install, actor_from_hex};
use crate::doc::DocError;
use crate::gs1::ParseOptions;
use crate::model::{RecordError, ReferenceData};
use crate::rules::TaskState;
use crate::store::{Durability, Store, StoreError, StoreEvent, StoreOptions};
use crate::sync::{SyncError, SyncScope};

/// Timeout of one whole HTTP request of sign-in or sync (a first sync of a large
/// document is a few MB).
const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

const META_INSTALL: &str = "install";
const META_IDENTITY: &str = "identity";
const META_SYNC: &str = "sync-status";
const META_SCOPE: &str = "sync-scope";
const META_TASK_LIST: &str = "task-list";

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
    scope: SyncScope,
    parse: ParseOptions,
    /// The undelivered count the server last accepted from this session (`None`: not
    /// reported since the session opened), so an unchanged figure costs no request.
    reported_unsent: Option<u64>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("store", &self.store)
            .field("actor", &self.install.actor)
            .finish_non_exhaustive()
    }
}

/// Wall clock in ms since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
        // An unreadable choice falls back to the default: the device then syncs what it
        // works on, which never loses anything.
        let scope = match store.meta(META_SCOPE)? {
            Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
            None => SyncScope::default(),
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
            scope,
            reported_unsent: None,
            parse: opts.parse,
        };
        // A crash may have come between adopting an actor and writing the renamed
        // pending scans: rename them again (a no-op otherwise, and no write).
        session.rename_pending_scans()?;
        Ok(session)
    }

    /// What opening found and handled (torn tails, quarantined files).
    pub fn events(&self) -> &[StoreEvent] {
        self.store.events()
    }

    /// Makes every batched write durable (with [`Durability::Batched`]).
    pub fn flush(&mut self) -> Result<(), SessionError> {
        Ok(self.store.flush()?)
    }

    /// Switches durability (bulk work), flushing when going back to each-append.
    pub fn set_durability(&mut self, d: Durability) -> Result<(), SessionError> {
        Ok(self.store.set_durability(d)?)
    }

    /// The store, read-only (documents, events, diagnostics).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, for the sync client. Call [`Session::sync_finished`] afterwards: the
    /// documents may have changed under the rules' indexes.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}
