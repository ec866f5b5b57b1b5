//! The tasks on the device: adding documents, listing them with their progress, and the
//! rules' state of each task, built on first use.

use super::identity::actor_from_hex;
use super::{META_INSTALL, Session, SessionError};
use crate::doc::{Header, TaskDocument, TaskKind};
use crate::model::ScanId;
use crate::rules::{Progress, TaskState};

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

impl Session {
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

    pub(super) fn task_state(&mut self, task_id: &str) -> Result<&mut TaskState, SessionError> {
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

    /// The kind of a task on the device.
    pub fn task_kind(&mut self, task_id: &str) -> Result<TaskKind, SessionError> {
        Ok(self.task_state(task_id)?.kind())
    }
}
