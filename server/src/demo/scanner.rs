//! A demo scanner in-process: what the app's session does for one task, with swt-domain
//! only (the server does not link the device client, see server/Cargo.toml). It fetches
//! the task document by sync, records scans under its own Automerge actor with the
//! feedback the scan rules give, and hands its changes to the server's own sync code
//! ([`crate::sync::sync_document`], what `POST /api/v1/sync/{id}` calls) as that device.

use automerge::ActorId;
use swt_domain::doc::{SyncState, TaskDocument};
use swt_domain::gs1::{self, ParseOptions};
use swt_domain::model::{Action, ReferenceData, Scan, ScanId};
use swt_domain::rules::{self, TaskState};

use super::activity::{ActivityError, Server};
use crate::auth::Principal;

/// Rounds of one sync before giving up (a task's first sync takes two or three).
const MAX_ROUNDS: usize = 32;

/// A registered demo device signed in by its user.
pub(super) struct Scanner {
    pub(super) principal: Principal,
    actor: ActorId,
    device: String,
}

/// One task opened on the scanner.
pub(super) struct OpenTask {
    id: String,
    doc: TaskDocument,
    state: SyncState,
    rules: TaskState,
}

impl Scanner {
    /// The session a device token would carry: the device's site, its actor.
    pub(super) fn new(
        user_id: &str,
        role: crate::auth::Role,
        site_id: &str,
        device_id: &str,
        actor_hex: &str,
    ) -> Result<Self, ActivityError> {
        let actor = hex::decode(actor_hex)
            .map(|b| ActorId::from(b.as_slice()))
            .map_err(|e| ActivityError::Device(format!("actor {actor_hex}: {e}")))?;
        Ok(Self {
            principal: Principal {
                user_id: user_id.to_owned(),
                org_id: super::ORG_ID.to_owned(),
                site_id: Some(site_id.to_owned()),
                role,
                device_id: Some(device_id.to_owned()),
                actor_id: Some(actor_hex.to_owned()),
            },
            actor,
            device: device_id.to_owned(),
        })
    }

    /// Opens a task as the app does: an empty document that the first sync fills.
    pub(super) async fn open(
        &self,
        srv: &Server,
        id: &str,
        reference: &ReferenceData,
    ) -> Result<OpenTask, ActivityError> {
        let mut doc = TaskDocument::empty(self.actor.clone());
        let mut state = SyncState::new();
        self.exchange(srv, id, &mut doc, &mut state).await?;
        let rules = TaskState::from_document(&doc, reference)?;
        Ok(OpenTask {
            id: id.to_owned(),
            doc,
            state,
            rules,
        })
    }

    /// Records one scan at `time_ms` (device clock): parse, rules, append, as the app's
    /// session does; `action` and `parent` are what the app's mode for the task sets.
    /// The scan id is `<actor>.<counter>`: the device's id space, deterministic.
    #[allow(clippy::too_many_arguments)] // one scan's facts
    pub(super) fn record(
        &self,
        task: &mut OpenTask,
        counter: u64,
        raw: &str,
        action: Action,
        location: Option<&str>,
        parent: Option<&str>,
        time_ms: u64,
        reference: &ReferenceData,
    ) -> Result<(), ActivityError> {
        let id = ScanId::from_device_counter(&self.actor.to_string(), counter)?;
        if task.doc.has_scan(&id) {
            return Ok(());
        }
        let parsed = gs1::parse(raw.as_bytes(), &ParseOptions::default());
        let today = rules::date_from_unix_ms(time_ms);
        let outcome = task
            .rules
            .evaluate(raw.as_bytes(), &parsed, reference, today);
        let scan = Scan {
            id,
            raw: raw.as_bytes().to_vec(),
            ids: outcome.identifiers.clone(),
            action,
            user: self.principal.user_id.clone(),
            device: self.device.clone(),
            location: location.map(str::to_owned),
            device_time_ms: time_ms,
            feedback: outcome.reason.feedback(),
            parent: parent.map(str::to_owned),
        };
        task.doc.add_scan(&scan)?;
        task.rules.apply(&scan.id, &outcome);
        Ok(())
    }

    /// Syncs the task with the server until neither side has anything to say.
    pub(super) async fn sync(
        &self,
        srv: &Server,
        task: &mut OpenTask,
    ) -> Result<(), ActivityError> {
        self.exchange(srv, &task.id, &mut task.doc, &mut task.state)
            .await
    }

    async fn exchange(
        &self,
        srv: &Server,
        id: &str,
        doc: &mut TaskDocument,
        state: &mut SyncState,
    ) -> Result<(), ActivityError> {
        for _ in 0..MAX_ROUNDS {
            let Some(message) = doc.generate_sync_message(state) else {
                return Ok(());
            };
            let out = crate::sync::sync_document(
                &srv.db,
                &srv.docs,
                &srv.actor,
                &self.principal,
                id,
                message,
            )
            .await?;
            match out.reply {
                Some(reply) => doc.receive_sync_message(state, &reply)?,
                None => return Ok(()),
            }
        }
        Err(ActivityError::Device(format!(
            "task {id}: sync did not settle in {MAX_ROUNDS} rounds"
        )))
    }
}
