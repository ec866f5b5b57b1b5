//! Helpers for the session's unit tests.

use std::path::Path;

use super::{Session, SessionOptions, build_task_document};
use crate::doc::{Expected, TaskKind};

/// Opens the session in `dir` with default options.
pub(super) fn open(dir: &Path) -> Session {
    Session::open(dir, SessionOptions::default()).unwrap()
}

/// A fresh session in a temporary directory, which lives as long as the returned guard.
pub(super) fn temp_session() -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    (dir, s)
}

/// Adds tasks with nothing expected at site `s1`, as the server creates them.
pub(super) fn add_tasks(s: &mut Session, tasks: &[(&str, TaskKind)]) {
    for &(id, kind) in tasks {
        let doc = build_task_document(kind, "s1", &Expected::default(), 1_000).unwrap();
        s.add_task_bytes(id, &doc).unwrap();
    }
}
