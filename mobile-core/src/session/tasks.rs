//! The tasks on the device: adding documents, listing them with their progress, and the
//! rules' state of each task, built on first use.

use std::collections::BTreeMap;

use automerge::ActorId;

use super::identity::actor_from_hex;
use super::{META_INSTALL, Session, SessionError};
use crate::doc::{Expected, Header, TaskDocument, TaskKind, TaskStatus};
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

/// A new task document's saved bytes as the server creates one (open, no business
/// references, written by a random actor at `now_ms`), for tests and tooling without a
/// server: real tasks arrive by sync.
pub fn build_task_document(
    kind: TaskKind,
    site: &str,
    expected: &Expected,
    now_ms: u64,
) -> Result<Vec<u8>, SessionError> {
    let header = Header {
        kind,
        site: site.to_owned(),
        refs: BTreeMap::new(),
        status: TaskStatus::Open,
    };
    let time_s = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let mut doc = TaskDocument::create(ActorId::random(), &header, time_s)?;
    doc.set_expected(expected, time_s)?;
    Ok(doc.save())
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
            out.push(self.summary(id)?);
        }
        Ok(out)
    }

    /// One task with its header and progress.
    pub fn task(&mut self, task_id: &str) -> Result<TaskSummary, SessionError> {
        if !self.store.doc_ids().iter().any(|id| id == task_id) {
            return Err(SessionError::UnknownTask(task_id.to_owned()));
        }
        self.summary(task_id.to_owned())
    }

    fn summary(&mut self, task_id: String) -> Result<TaskSummary, SessionError> {
        let header = self.store.doc(&task_id).and_then(|d| d.header().ok());
        let progress = if header.is_some() {
            self.task_state(&task_id)?.progress()
        } else {
            Progress::default()
        };
        Ok(TaskSummary {
            task_id,
            header,
            progress,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::ExpectedLine;
    use crate::session::testing::temp_session;

    #[test]
    fn a_built_document_is_an_open_task_with_its_expectations() {
        let expected = Expected {
            lines: vec![ExpectedLine {
                gtin: "09506000134352".parse().unwrap(),
                quantity: 3,
                lot: None,
            }],
            units: vec![],
        };
        let bytes = build_task_document(TaskKind::Picking, "s1", &expected, 5_000).unwrap();
        let (_dir, mut s) = temp_session();
        s.add_task_bytes("t1", &bytes).unwrap();

        let t = s.task("t1").unwrap();
        let header = t.header.unwrap();
        assert_eq!(
            (header.kind, header.site.as_str()),
            (TaskKind::Picking, "s1")
        );
        assert_eq!(header.status, TaskStatus::Open);
        assert!(header.refs.is_empty());
        assert_eq!((t.progress.lines_total, t.progress.units_expected), (1, 3));
        assert_eq!(s.tasks().unwrap().len(), 1);
        assert!(matches!(s.task("t2"), Err(SessionError::UnknownTask(_))));
    }
}
