//! The device's sync client: signs in, learns the open tasks of its site, and syncs every
//! task document with the server over HTTP(S) using the Automerge sync protocol, many
//! documents per round trip (`crate::wire`). Blocking by design: the app calls it from a
//! worker thread, and an interrupted sync simply resumes next time from the stored
//! per-document sync state. Wire format: `docs/sync-protocol.md`.

mod backoff;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use backoff::Backoff;

use crate::api::ReferenceUpdate;
use crate::doc::TaskDocument;
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

/// The user of a session, as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteUser {
    /// User id: scans carry it.
    pub id: String,
    /// Sign-in name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// Organisation id.
    pub organisation_id: String,
    /// Site id, if bound to one.
    pub site_id: Option<String>,
}

/// The device of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteDevice {
    /// Device id.
    pub id: String,
    /// Its site.
    pub site_id: String,
    /// Its Automerge actor id (hex): the device must write with exactly this actor.
    pub actor_id: String,
    /// Its name.
    pub name: String,
}

/// Tokens and identity from a sign-in or refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Bearer token for API calls (short-lived).
    pub access_token: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// One-time refresh token (long-lived, rotated on use).
    pub refresh_token: String,
    /// The user.
    pub user: RemoteUser,
    /// The device.
    pub device: Option<RemoteDevice>,
}

/// A task as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteTask {
    /// Task (= document) id.
    pub id: String,
    /// Kind of work.
    pub kind: String,
    /// Site id.
    pub site_id: String,
    /// Status.
    pub status: String,
    /// Title.
    pub title: String,
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
    /// Documents learned from the server's task list and created locally.
    pub new_tasks: Vec<String>,
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

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    reason: Option<String>,
    message: String,
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
    ) -> Result<Tokens, SyncError> {
        self.post_json(
            "/auth/login",
            &serde_json::json!({"username": username, "password": password, "device_id": device_id}),
        )
    }

    /// Exchanges the refresh token for new tokens (the old one is spent).
    pub fn refresh(&self, refresh_token: &str) -> Result<Tokens, SyncError> {
        self.post_json(
            "/auth/refresh",
            &serde_json::json!({"refresh_token": refresh_token}),
        )
    }

    /// The open tasks of the device's site.
    pub fn open_tasks(&self, access_token: &str) -> Result<Vec<RemoteTask>, SyncError> {
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
        check: &ReturnCheckRequest,
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

/// A returned pack to verify now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReturnCheckRequest {
    /// The returns task.
    pub document_id: String,
    /// The recorded scan.
    pub scan_id: String,
    /// GTIN-14.
    pub gtin: String,
    /// Serial.
    pub serial: String,
    /// Lot.
    pub lot: Option<String>,
    /// Expiry, YYMMDD.
    pub expiry: Option<String>,
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

/// Syncs every local document (and the site's open tasks not yet local) with the server.
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
    sync_shared(&std::cell::RefCell::new(store), client, access_token, actor)
}

/// [`sync_store`] taking the store only for each local step: scans recorded between
/// rounds simply go out in the next round. Run one sync at a time per store (the sync
/// states of a run are its own until it saves them).
pub fn sync_shared(
    access: &impl StoreAccess,
    client: &Client,
    access_token: &str,
    actor: &automerge::ActorId,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let open = client.open_tasks(access_token)?;
    let (mut pending, mut states) = access.with_store(|store| {
        for task in open {
            if store.doc(&task.id).is_none() && !is_refused(store, &task.id) {
                store.insert_doc(&task.id, TaskDocument::empty(actor.clone()))?;
                report.new_tasks.push(task.id);
            }
        }
        let pending: BTreeSet<String> = store
            .doc_ids()
            .into_iter()
            .filter(|id| !is_refused(store, id))
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
    Ok(report)
}
