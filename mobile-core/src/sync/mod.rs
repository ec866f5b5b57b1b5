//! The device's sync client: signs in, learns the open tasks of its site, and syncs task
//! documents with the server over HTTP(S) using the Automerge sync protocol, many
//! documents per round trip (`crate::wire`). Blocking by design: the app calls it from a
//! worker thread, and an interrupted sync simply resumes next time from the stored
//! per-document sync state. Wire format: `docs/sync-protocol.md`.
//!
//! **What a device syncs** ([`SyncScope`]). By default the documents it holds: the tasks
//! it opened or recorded into. The site's open tasks are learned from a light list (ids,
//! kinds, titles, status, versions; [`SyncPlan::fetch_list`]) without their documents, so
//! a round's cost follows what the device works on, not the size of the fleet: fifty
//! pickers each on their own task do not pull each other's scans, while two receivers on
//! one truck share its document and see each other's scans. A finished task (closed,
//! cancelled or continued) leaves the device once a run ends in sync with nothing of the
//! device's unacknowledged. [`SyncScope::Site`] keeps the old behaviour, every open task
//! of the site, for a supervisor's device.

mod backoff;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

pub use backoff::Backoff;

use crate::api::{ErrorBody, ReferenceUpdate, SignedIn, TaskSummary, UnsentReport, VerifyReturn};
use crate::doc::{TaskDocument, TaskStatus};
use crate::store::{Store, StoreError};
use crate::wire::{self, ItemStatus, RequestItem};

/// Rounds of message exchange per sync run; a first sync of a big document needs ~4.
const MAX_ROUNDS: usize = 24;
/// Largest response body read (a whole large document on first sync).
const MAX_RESPONSE: u64 = 64 << 20;

/// Why a sync call failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server could not be reached or the connection broke: retry with backoff.
    #[error("network: {0}")]
    Network(String),
    /// The access token is missing, expired or revoked: refresh or sign in again.
    /// Nothing recorded is lost; it syncs after the next sign-in.
    #[error("not signed in (or the session expired): {0}")]
    Unauthorized(String),
    /// The server refused the request as a whole (bad credentials, device not allowed…).
    #[error("refused by the server ({code}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's machine-readable code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server answered something this client cannot read.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session holding the store is unusable (an earlier call panicked).
    #[error("session unavailable: {0}")]
    Unavailable(String),
}

impl SyncError {
    /// Whether trying again later may succeed without anyone doing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network(_) => true,
            Self::Rejected { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            _ => false,
        }
    }
}

/// What a sync run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Documents that ended the run in sync with the server.
    pub in_sync: BTreeSet<String>,
    /// Documents the server refused, with its reason code; they are not offered again
    /// until someone looks (see [`refused_marker`]).
    pub refused: BTreeMap<String, String>,
    /// Documents that failed for another reason this time (retried next run).
    pub failed: BTreeMap<String, String>,
    /// Documents created locally in this run: the site's open tasks not yet held
    /// ([`SyncScope::Site`]), and follow-on tasks the server named in a task held (fetched
    /// by the next run).
    pub new_tasks: Vec<String>,
    /// Finished tasks (closed, cancelled, continued) that left the device: in sync, with
    /// nothing of the device's unacknowledged.
    pub removed: Vec<String>,
    /// The site's open tasks as listed by the server in this run (None if the run did not
    /// fetch the list).
    pub task_list: Option<Vec<TaskSummary>>,
    /// HTTP round trips made.
    pub round_trips: usize,
    /// Bytes sent and received (bodies).
    pub bytes_sent: usize,
    /// Bytes received.
    pub bytes_received: usize,
    /// The version of the site's reference data the device holds after the run (None if
    /// the run did not get that far or the device has no site).
    pub reference_version: Option<u64>,
}

/// Which task documents a device holds and syncs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize, uniffi::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum SyncScope {
    /// The tasks the device works on: those it opened or recorded into. Other tasks are
    /// known from the light task list only, and other devices' scans arrive only in the
    /// documents the device shares with them.
    #[default]
    Working,
    /// Every open task of the site, each with every device's scans: for a supervisor's
    /// device. Each round then costs more the more tasks and scanners the site has.
    Site,
}

/// What one sync run takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    /// Which documents.
    pub scope: SyncScope,
    /// Fetch the site's light task list in this run (always done in
    /// [`SyncScope::Site`], where the list decides the documents).
    pub fetch_list: bool,
    /// Only these of the documents held (e.g. a task just opened); `None`: all of them.
    pub only: Option<BTreeSet<String>>,
}

impl SyncPlan {
    /// The whole site, every run: what [`sync_store`] does.
    pub fn site() -> Self {
        Self {
            scope: SyncScope::Site,
            fetch_list: true,
            only: None,
        }
    }
}

/// An HTTP client for one swt server.
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `https://swt.example.com`), with a
    /// timeout for each whole request.
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn read(resp: ureq::http::Response<ureq::Body>) -> Result<(u16, Vec<u8>), SyncError> {
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let bytes = body
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| SyncError::Network(e.to_string()))?;
        Ok((status, bytes))
    }

    fn error_for(status: u16, body: &[u8]) -> SyncError {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let (code, message) = parsed.map_or_else(
            || {
                (
                    "http_error".to_owned(),
                    String::from_utf8_lossy(body).into_owned(),
                )
            },
            |b| (b.code, b.message),
        );
        if status == 401 {
            SyncError::Unauthorized(message)
        } else {
            SyncError::Rejected {
                status,
                code,
                message,
            }
        }
    }

    fn post_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, SyncError> {
        let resp = self
            .agent
            .post(&self.url(path))
            .send_json(body)
            .map_err(|e| SyncError::Network(e.to_string()))?;
        let (status, bytes) = Self::read(resp)?;
        if status != 200 {
            return Err(Self::error_for(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// Signs in on this device.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        device_id: &str,
    ) -> Result<SignedIn, SyncError> {
        self.post_json(
            "/auth/login",
            &serde_json::json!({"username": username, "password": password, "device_id": device_id}),
        )
    }

    /// Exchanges the refresh token for new tokens (the old one is spent).
    pub fn refresh(&self, refresh_token: &str) -> Result<SignedIn, SyncError> {
        self.post_json(
            "/auth/refresh",
            &serde_json::json!({"refresh_token": refresh_token}),
        )
    }

    /// The open tasks of the device's site.
    pub fn open_tasks(&self, access_token: &str) -> Result<Vec<TaskSummary>, SyncError> {
        let resp = self
            .agent
            .get(&self.url("/tasks?status=open&limit=500"))
            .header("Authorization", &format!("Bearer {access_token}"))
            .call()
            .map_err(|e| SyncError::Network(e.to_string()))?;
        let (status, bytes) = Self::read(resp)?;
        if status != 200 {
            return Err(Self::error_for(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// What the device needs to bring its copy of `site`'s reference data from `since`
    /// (None: it has none) to the current version: `GET /api/v1/reference/{site}`.
    pub fn reference(
        &self,
        access_token: &str,
        site: &str,
        since: Option<u64>,
    ) -> Result<ReferenceUpdate, SyncError> {
        if site.is_empty()
            || !site
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(SyncError::Protocol(format!(
                "site id {site:?} is not a path segment"
            )));
        }
        let path = match since {
            Some(v) => format!("/reference/{site}?since={v}"),
            None => format!("/reference/{site}"),
        };
        let resp = self
            .agent
            .get(&self.url(&path))
            .header("Authorization", &format!("Bearer {access_token}"))
            .call()
            .map_err(|e| SyncError::Network(e.to_string()))?;
        let (status, bytes) = Self::read(resp)?;
        if status != 200 {
            return Err(Self::error_for(status, &bytes));
        }
        let update: ReferenceUpdate =
            serde_json::from_slice(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let for_site = match &update {
            ReferenceUpdate::Current { site, .. } => site,
            ReferenceUpdate::Delta(d) => &d.site,
            ReferenceUpdate::Full(d) => &d.site,
        };
        if for_site != site {
            return Err(SyncError::Protocol(format!(
                "asked for the reference data of site {site}, got site {for_site}"
            )));
        }
        Ok(update)
    }

    /// Asks the server to verify a returned pack now (saleable returns, online path):
    /// `POST /api/v1/returns/verify`. The server keys the check by scan id, so the later
    /// sync of the same scan finds the decision made.
    pub fn verify_return(
        &self,
        access_token: &str,
        check: &VerifyReturn,
    ) -> Result<ReturnCheckAnswer, SyncError> {
        let resp = self
            .agent
            .post(&self.url("/returns/verify"))
            .header("Authorization", &format!("Bearer {access_token}"))
            .send_json(check)
            .map_err(|e| SyncError::Network(e.to_string()))?;
        let (status, bytes) = Self::read(resp)?;
        if status != 200 {
            return Err(Self::error_for(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// Tells the server how many scans and voids this device holds that the server has
    /// not acknowledged: `PUT /api/v1/devices/self/unsent` (managers see it).
    pub fn report_unsent(&self, access_token: &str, writes: u64) -> Result<(), SyncError> {
        let resp = self
            .agent
            .put(&self.url("/devices/self/unsent"))
            .header("Authorization", &format!("Bearer {access_token}"))
            .send_json(&UnsentReport { writes })
            .map_err(|e| SyncError::Network(e.to_string()))?;
        let (status, bytes) = Self::read(resp)?;
        if status != 204 {
            return Err(Self::error_for(status, &bytes));
        }
        Ok(())
    }

    /// One batch round trip.
    pub fn sync_batch(
        &self,
        access_token: &str,
        items: &[RequestItem],
    ) -> Result<(Vec<wire::ResponseItem>, usize, usize), SyncError> {
        let body = wire::encode_request(items).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let sent = body.len();
        let resp = self
            .agent
            .post(&self.url("/sync"))
            .header("Authorization", &format!("Bearer {access_token}"))
            .content_type(wire::CONTENT_TYPE)
            .send(&body[..])
            .map_err(|e| SyncError::Network(e.to_string()))?;
        let (status, bytes) = Self::read(resp)?;
        if status != 200 {
            return Err(Self::error_for(status, &bytes));
        }
        let received = bytes.len();
        let items =
            wire::decode_response(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))?;
        Ok((items, sent, received))
    }
}

/// The server's verification of a returned pack (the fields the scanner shows).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReturnCheckAnswer {
    /// `verified` (sellable), `review`, `not_verified` (quarantine) or `pending`.
    pub result: String,
    /// LMS `verificationFailureReason`, when not verified.
    #[serde(default)]
    pub verification_failure_reason: Option<String>,
    /// LMS `additionalInfo`.
    #[serde(default)]
    pub additional_info: Option<String>,
    /// Why it is still pending or could not be verified.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// The name of the marker file that keeps a refused document out of sync runs; a
/// support person removes it (or the app offers "retry") after looking at why.
pub fn refused_marker(doc_id: &str) -> String {
    format!("{doc_id}.refused")
}

fn is_refused(store: &Store, doc_id: &str) -> bool {
    store.root().join(refused_marker(doc_id)).exists()
}

fn mark_refused(store: &Store, doc_id: &str, reason: &str) {
    // Best effort: failing to write the marker only means we offer the document again.
    let _ = std::fs::write(store.root().join(refused_marker(doc_id)), reason.as_bytes());
}

/// Access to the local store for one step of a sync run. The sync client takes it only
/// to read or write documents and never holds it across network I/O, so a picker keeps
/// scanning while a sync waits on a slow network.
pub trait StoreAccess {
    /// Runs `f` with exclusive access to the store.
    fn with_store<R>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, SyncError>,
    ) -> Result<R, SyncError>;
}

/// Exclusive access for the whole run (a caller that owns the store).
impl StoreAccess for std::cell::RefCell<&mut Store> {
    fn with_store<R>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, SyncError>,
    ) -> Result<R, SyncError> {
        f(&mut self.borrow_mut())
    }
}

/// Syncs every local document and the site's open tasks not yet local
/// ([`SyncPlan::site`]) with the server.
///
/// Documents the server refuses are reported, marked, and not offered again; other
/// per-document failures are reported and retried next run. A network failure or an
/// expired token ends the run with an error: everything recorded stays in the store.
/// `actor` is the device's registered Automerge actor (the store was opened with it).
pub fn sync_store(
    store: &mut Store,
    client: &Client,
    access_token: &str,
    actor: &automerge::ActorId,
) -> Result<SyncReport, SyncError> {
    sync_store_with(store, client, access_token, actor, &SyncPlan::site())
}

/// [`sync_store`] with a chosen plan: which documents, and whether to fetch the list.
pub fn sync_store_with(
    store: &mut Store,
    client: &Client,
    access_token: &str,
    actor: &automerge::ActorId,
    plan: &SyncPlan,
) -> Result<SyncReport, SyncError> {
    sync_shared(
        &std::cell::RefCell::new(store),
        client,
        access_token,
        actor,
        plan,
    )
}

/// [`sync_store_with`] taking the store only for each local step: scans recorded between
/// rounds simply go out in the next round. Run one sync at a time per store (the sync
/// states of a run are its own until it saves them).
pub fn sync_shared(
    access: &impl StoreAccess,
    client: &Client,
    access_token: &str,
    actor: &automerge::ActorId,
    plan: &SyncPlan,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let open = if plan.fetch_list || plan.scope == SyncScope::Site {
        Some(client.open_tasks(access_token)?)
    } else {
        None
    };
    let (mut pending, mut states) = access.with_store(|store| {
        if plan.scope == SyncScope::Site {
            for task in open.iter().flatten() {
                if store.doc(&task.id).is_none() && !is_refused(store, &task.id) {
                    store.insert_doc(&task.id, TaskDocument::empty(actor.clone()))?;
                    report.new_tasks.push(task.id.clone());
                }
            }
        }
        let pending: BTreeSet<String> = store
            .doc_ids()
            .into_iter()
            .filter(|id| !is_refused(store, id))
            .filter(|id| plan.only.as_ref().is_none_or(|only| only.contains(id)))
            .collect();
        let mut states = BTreeMap::new();
        for id in &pending {
            states.insert(id.clone(), store.sync_state(id)?);
        }
        Ok((pending, states))
    })?;

    let mut failed_receive = BTreeMap::new();
    for _ in 0..MAX_ROUNDS {
        let items = access.with_store(|store| {
            let mut items = Vec::new();
            for id in &pending {
                let Some(state) = states.get_mut(id) else {
                    continue;
                };
                match store.update_doc(id, |d| d.generate_sync_message(state))? {
                    Some(message) => items.push(RequestItem {
                        doc_id: id.clone(),
                        message,
                    }),
                    None => {
                        report.in_sync.insert(id.clone());
                    }
                }
            }
            Ok(items)
        })?;
        pending.retain(|id| !report.in_sync.contains(id));
        if items.is_empty() {
            break;
        }
        let (answers, sent, received) = client.sync_batch(access_token, &items)?;
        report.round_trips += 1;
        report.bytes_sent += sent;
        report.bytes_received += received;
        access.with_store(|store| {
            for answer in answers {
                let id = answer.doc_id;
                let Some(state) = states.get_mut(&id) else {
                    continue;
                };
                match answer.status {
                    ItemStatus::Message => {
                        match store
                            .update_doc(&id, |d| d.receive_sync_message(state, &answer.payload))?
                        {
                            Ok(()) => store.save_sync_state(&id, state)?,
                            Err(e) => {
                                failed_receive.insert(id.clone(), e.to_string());
                                pending.remove(&id);
                            }
                        }
                    }
                    ItemStatus::InSync => {
                        store.save_sync_state(&id, state)?;
                        report.in_sync.insert(id.clone());
                        pending.remove(&id);
                    }
                    ItemStatus::Refused => {
                        let reason = serde_json::from_slice::<ErrorBody>(&answer.payload)
                            .ok()
                            .and_then(|b| b.reason.or(Some(b.code)))
                            .unwrap_or_else(|| "refused".to_owned());
                        mark_refused(store, &id, &reason);
                        report.refused.insert(id.clone(), reason);
                        pending.remove(&id);
                    }
                    ItemStatus::NotFound if store.doc(&id).is_some_and(|d| !d.is_initialised()) => {
                        // Opened here but unknown to the server (a mistyped or foreign
                        // id): the empty copy holds nothing, so it goes.
                        if store.pending_scans(&id).is_empty() {
                            store.remove_doc(&id)?;
                            report.removed.push(id.clone());
                        }
                        report
                            .failed
                            .insert(id.clone(), "not_found: no such task".to_owned());
                        pending.remove(&id);
                    }
                    ItemStatus::Malformed | ItemStatus::NotFound | ItemStatus::Error => {
                        let why = serde_json::from_slice::<ErrorBody>(&answer.payload)
                            .map(|b| format!("{}: {}", b.code, b.message))
                            .unwrap_or_else(|_| format!("{:?}", answer.status));
                        report.failed.insert(id.clone(), why);
                        pending.remove(&id);
                    }
                }
            }
            Ok(())
        })?;
        if pending.is_empty() {
            break;
        }
    }
    for (id, why) in failed_receive {
        report
            .failed
            .insert(id, format!("server message did not apply: {why}"));
    }
    let (finished, follow_ons) = access.with_store(|store| {
        let follow_ons = open_follow_ons(store, &report.in_sync, actor)?;
        Ok((remove_finished(store, &report.in_sync)?, follow_ons))
    })?;
    report.removed.extend(finished);
    report.new_tasks.extend(follow_ons);
    report.task_list = open;
    Ok(report)
}

/// Opens the follow-on tasks the server named in the tasks among `in_sync`
/// (`refs.continued_in`, written once a task is nearly full), so a device working on a
/// task gets its follow-on before the task is full; the next run fetches them.
fn open_follow_ons(
    store: &mut Store,
    in_sync: &BTreeSet<String>,
    actor: &automerge::ActorId,
) -> Result<Vec<String>, SyncError> {
    let named: BTreeSet<String> = in_sync
        .iter()
        .filter_map(|id| store.doc(id)?.header().ok())
        .filter_map(|h| h.refs.get(crate::doc::CONTINUED_IN_REF).cloned())
        .collect();
    let mut opened = Vec::new();
    for id in named {
        if store.doc(&id).is_none() && !is_refused(store, &id) {
            store.insert_doc(&id, TaskDocument::empty(actor.clone()))?;
            opened.push(id);
        }
    }
    Ok(opened)
}

/// Removes the finished tasks among `in_sync` that hold nothing the server lacks (the
/// store refuses to remove anything else).
fn remove_finished(
    store: &mut Store,
    in_sync: &BTreeSet<String>,
) -> Result<Vec<String>, SyncError> {
    let mut removed = Vec::new();
    for id in in_sync {
        let finished = store
            .doc(id)
            .and_then(|d| d.header().ok())
            .is_some_and(|h| h.status != TaskStatus::Open);
        if finished && store.pending_scans(id).is_empty() && store.unsynced_writes(id)? == 0 {
            store.remove_doc(id)?;
            removed.push(id.clone());
        }
    }
    Ok(removed)
}
