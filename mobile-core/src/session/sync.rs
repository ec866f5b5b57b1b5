//! Sync with the server: the run over a shared session (token refresh, reference data),
//! its recorded outcome, refused tasks and the status the app shows.

use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;

use super::login::expiry_ms;
use super::{HTTP_TIMEOUT, META_SCOPE, META_SYNC, META_TASK_LIST, Session, SessionError, now_ms};
use crate::api::TaskSummary as ListedTask;
use crate::doc::TaskDocument;
use crate::store::Store;
use crate::sync::{self, Client, StoreAccess, SyncError, SyncPlan, SyncReport, SyncScope};

/// How old the light task list may grow before a sync run fetches it again on its own
/// (ms). Fetching it costs the server a query over the site's open tasks, so a device
/// syncing every few seconds does not ask each time; [`Session::refresh_task_list`]
/// asks at once (the app's task picker).
pub const TASK_LIST_EVERY_MS: u64 = 30_000;

/// The site's open tasks as the server last listed them: ids, kinds, titles, status,
/// versions, scan counts, without their documents. Kept on the device, so the picker's
/// list shows offline too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskList {
    /// When the list was fetched, ms since the Unix epoch (0: never).
    pub fetched_ms: u64,
    /// The tasks.
    pub tasks: Vec<ListedTask>,
}

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

impl Session {
    /// Which documents this device syncs (persisted; [`SyncScope::Working`] unless set).
    pub fn sync_scope(&self) -> SyncScope {
        self.scope
    }

    /// Chooses which documents this device syncs from the next run on (persisted).
    /// Going from [`SyncScope::Site`] to [`SyncScope::Working`] keeps the documents
    /// held: they leave as their tasks finish.
    pub fn set_sync_scope(&mut self, scope: SyncScope) -> Result<(), SessionError> {
        let json = serde_json::to_vec(&scope)
            .map_err(|e| SessionError::Meta(META_SCOPE, e.to_string()))?;
        self.store.put_meta(META_SCOPE, &json)?;
        self.scope = scope;
        Ok(())
    }

    /// The site's open tasks as last listed by the server (empty before the first
    /// sync). A damaged copy reads as empty and is fetched again by the next sync.
    pub fn task_list(&mut self) -> Result<TaskList, SessionError> {
        Ok(self
            .store
            .meta(META_TASK_LIST)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }

    fn save_task_list(&mut self, tasks: Vec<ListedTask>, at_ms: u64) -> Result<(), SessionError> {
        let list = TaskList {
            fetched_ms: at_ms,
            tasks,
        };
        let json = serde_json::to_vec(&list)
            .map_err(|e| SessionError::Meta(META_TASK_LIST, e.to_string()))?;
        self.store.put_meta(META_TASK_LIST, &json)?;
        Ok(())
    }

    /// Starts working on a task: from now on the device holds and syncs it. A task not
    /// on the device yet is added empty, and the next sync (or
    /// [`Session::sync_tasks`] with its id: one round trip) brings it whole. Returns
    /// whether it was new here. Refuses an id that cannot be a task's.
    pub fn open_task(&mut self, task_id: &str) -> Result<bool, SessionError> {
        if self.store.doc(task_id).is_some() {
            return Ok(false);
        }
        let doc = TaskDocument::empty(self.store.actor().clone());
        self.store.insert_doc(task_id, doc)?;
        self.tasks.remove(task_id);
        Ok(true)
    }

    /// Syncs only the given tasks held on the device (e.g. the one just opened), without
    /// fetching the task list or reference data.
    pub fn sync_tasks(&mut self, task_ids: &[String]) -> Result<SyncReport, SessionError> {
        let only = task_ids.iter().cloned().collect();
        sync_shared_with(&std::cell::RefCell::new(self), Some(only), false)
    }

    /// Fetches the site's task list now (one request; no document is synced).
    pub fn refresh_task_list(&mut self) -> Result<TaskList, SessionError> {
        sync_shared_with(
            &std::cell::RefCell::new(&mut *self),
            Some(BTreeSet::new()),
            true,
        )?;
        self.task_list()
    }

    /// Syncs the tasks this device holds (every open task of the site with
    /// [`SyncScope::Site`]) with the server signed in to: applies pending scans, fetches
    /// the light task list when it is older than [`TASK_LIST_EVERY_MS`], exchanges sync
    /// messages in batches, and lets finished tasks leave the device. On `401` the tokens are
    /// refreshed once (the new pair is persisted before use: refresh tokens are one-time)
    /// and the sync is retried. The outcome is recorded ([`Session::sync_status`]); on
    /// any error everything recorded stays and syncs next time. Refused documents are
    /// reported in the [`SyncReport`] and in [`SyncStatus::refused`] and not offered
    /// again; other per-document failures are in the report and recorded as the last error.
    pub fn sync_now(&mut self) -> Result<SyncReport, SessionError> {
        sync_now_shared(&std::cell::RefCell::new(self))
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

    /// Scans and voids made here that the server has not acknowledged, over every task.
    fn unsent_total(&mut self) -> Result<u64, SessionError> {
        let mut total = 0;
        for id in self.store.doc_ids() {
            total += self.store.unsynced_writes(&id)?;
        }
        Ok(total)
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
    sync_shared_with(access, None, false)
}

/// A sync run on a shared session: `only` these of the tasks held (`None`: all), and the
/// task list fetched if `fetch_list` or if it is older than [`TASK_LIST_EVERY_MS`] (a
/// run for chosen tasks fetches it only when asked). The outcome is recorded as by
/// [`Session::sync_now`].
pub fn sync_shared_with(
    access: &impl SessionAccess,
    only: Option<BTreeSet<String>>,
    fetch_list: bool,
) -> Result<SyncReport, SessionError> {
    let plan = access.with_session(|s| {
        let stale = now_ms().saturating_sub(s.task_list()?.fetched_ms) >= TASK_LIST_EVERY_MS;
        Ok(SyncPlan {
            scope: s.scope,
            fetch_list: fetch_list || (only.is_none() && stale),
            only,
        })
    })?;
    let result = sync_shared_inner(access, &plan);
    if let Ok(report) = &result
        && let Some(list) = &report.task_list
    {
        access.with_session(|s| s.save_task_list(list.clone(), now_ms()))?;
    }
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

fn sync_shared_inner(
    access: &impl SessionAccess,
    plan: &SyncPlan,
) -> Result<SyncReport, SessionError> {
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
        let mut report = sync::sync_shared(&store, &client, token, &actor, plan)?;
        // A run for chosen tasks (opening one, say) leaves reference data to the next
        // full run.
        if let Some(site) = site.as_ref().filter(|_| plan.only.is_none()) {
            report.reference_version = Some(refresh_reference(access, &client, token, site)?);
        }
        if plan.only.is_none() {
            report_unsent(access, &client, token);
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

/// After a full run, tells the server what this device still holds undelivered, when the
/// figure changed since the server last took it. Best effort: the run's outcome does not
/// depend on it, and a failed report is made again after the next run.
fn report_unsent(access: &impl SessionAccess, client: &Client, token: &str) {
    let Ok((now, reported)) = access.with_session(|s| Ok((s.unsent_total()?, s.reported_unsent)))
    else {
        return;
    };
    if reported == Some(now) {
        return;
    }
    if client.report_unsent(token, now).is_ok() {
        // Ignored: a session closed meanwhile reports again when it is next opened.
        let _ = access.with_session(|s| {
            s.reported_unsent = Some(now);
            Ok(())
        });
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
