//! [`SharedSession`]: a session used from several threads (the app's session object).
//! Each call takes the session only for its local steps: a sync or a returns check waits
//! on the network without it, so scanning goes on meanwhile; one sync runs at a time.

use std::sync::Mutex;

use std::collections::BTreeSet;

use super::sync::{TaskList, sync_shared_with};
use super::{CheckedScan, Recorded, ReturnCheckCall, Session, SessionAccess, SessionError};
use crate::sync::{SyncError, SyncReport};

/// A session shared between threads.
#[derive(Debug)]
pub struct SharedSession {
    session: Mutex<Session>,
    /// One sync at a time: a run keeps its documents' sync states until it saves them.
    /// Held across the sync's network I/O, unlike `session`.
    syncing: Mutex<()>,
}

impl SharedSession {
    /// Shares `session`.
    pub fn new(session: Session) -> Self {
        Self {
            session: Mutex::new(session),
            syncing: Mutex::new(()),
        }
    }

    /// Runs `f` with exclusive access to the session (a local step: no network I/O).
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, SessionError>,
    ) -> Result<R, SessionError> {
        self.session.with_session(f)
    }

    /// [`Session::sync_now`] without holding the session across the network; a second
    /// call waits for the first to finish.
    pub fn sync_now(&self) -> Result<SyncReport, SessionError> {
        self.sync_with(None, false)
    }

    /// [`Session::open_task`], then that task's sync alone, so the app can show and scan
    /// it after one round trip. If the sync fails the task stays opened (empty until a
    /// sync brings it) and the error is returned.
    pub fn open_task(&self, task_id: &str) -> Result<SyncReport, SessionError> {
        self.with(|s| s.open_task(task_id))?;
        self.sync_with(Some(BTreeSet::from([task_id.to_owned()])), false)
    }

    /// [`Session::refresh_task_list`] without holding the session across the network.
    pub fn refresh_task_list(&self) -> Result<TaskList, SessionError> {
        self.sync_with(Some(BTreeSet::new()), true)?;
        self.with(|s| s.task_list())
    }

    fn sync_with(
        &self,
        only: Option<BTreeSet<String>>,
        fetch_list: bool,
    ) -> Result<SyncReport, SessionError> {
        let _one = self.syncing.lock().map_err(|_| {
            SyncError::Unavailable("sync lock poisoned by an earlier panic; reopen it".into())
        })?;
        sync_shared_with(&self.session, only, fetch_list)
    }

    /// Records a scan made at `now_ms` ([`Session::record_for_check`]) and, for a returns
    /// scan, verifies it online after releasing the session: the scan is already durable,
    /// and a slow network only leaves the check `pending`.
    pub fn record_scan(
        &self,
        task_id: &str,
        raw: &[u8],
        now_ms: u64,
    ) -> Result<CheckedScan, SessionError> {
        self.record(|s| s.record_for_check(task_id, raw, now_ms))
    }

    /// [`SharedSession::record_scan`] of a key typed by hand
    /// ([`Session::record_keyed_for_check`]).
    pub fn record_keyed(
        &self,
        task_id: &str,
        typed: &str,
        now_ms: u64,
    ) -> Result<CheckedScan, SessionError> {
        self.record(|s| s.record_keyed_for_check(task_id, typed, now_ms))
    }

    fn record(
        &self,
        record: impl FnOnce(&mut Session) -> Result<Recorded, SessionError>,
    ) -> Result<CheckedScan, SessionError> {
        let recorded = self.with(record)?;
        Ok(CheckedScan {
            check: recorded.check.map(ReturnCheckCall::run),
            feedback: recorded.feedback,
        })
    }
}

impl SessionAccess for SharedSession {
    fn with_session<R>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, SessionError>,
    ) -> Result<R, SessionError> {
        self.with(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::TaskKind;
    use crate::session::Identity;
    use crate::session::testing::{add_tasks, temp_session};

    #[test]
    fn a_returns_scan_is_checked_and_other_scans_are_not() {
        let (_dir, mut s) = temp_session();
        // Signed in, but no server known: the check answers `pending` at once.
        s.set_identity(Identity {
            user: "u1".into(),
            device: "d1".into(),
            ..Identity::default()
        })
        .unwrap();
        add_tasks(
            &mut s,
            &[("ret", TaskKind::Returns), ("pick", TaskKind::Picking)],
        );
        let shared = SharedSession::new(s);
        let pack = b"]d2010950600013435221SER1";

        let returned = shared.record_scan("ret", pack, 2_000).unwrap();
        let check = returned.check.unwrap();
        assert_eq!(check.result, "pending");
        let picked = shared.record_scan("pick", pack, 2_000).unwrap();
        assert_eq!(picked.check, None);
        let keyed = shared
            .record_keyed("pick", "09506000134352", 2_000)
            .unwrap();
        assert_eq!(
            keyed.feedback.identifiers.gtin.as_ref().map(|g| g.as_str()),
            Some("09506000134352")
        );

        let counted = shared.with(|s| s.progress("ret")).unwrap().scans_total;
        assert_eq!(counted, 1);
        assert!(matches!(
            shared.record_scan("nope", pack, 2_000),
            Err(SessionError::UnknownTask(_))
        ));
    }

    #[test]
    fn sync_without_a_login_is_refused_and_recorded() {
        let (_dir, s) = temp_session();
        let shared = SharedSession::new(s);
        assert!(matches!(shared.sync_now(), Err(SessionError::NotLoggedIn)));
        let status = shared.with(|s| s.sync_status()).unwrap();
        assert!(status.outcome.last_attempt_ms.is_some());
        assert_eq!(
            status.outcome.last_error.as_deref(),
            Some("no user logged in")
        );
    }
}
