//! The online check of a returned pack: prepared under the session, run without it (it
//! waits on the network), `pending` whenever it cannot be done now.

use super::{ScanFeedback, Session, SessionError, now_ms};
use crate::api;
use crate::doc::TaskKind;
use crate::rules::Verdict;
use crate::sync::Client;

/// A clerk waits for an online returns check: longer than this, it stays pending.
const RETURN_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

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

impl Session {
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
        let (Some(gtin), Some(serial)) = (ids.gtin.map(|g| g.to_string()), ids.serial.clone())
        else {
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

/// A scan recorded and, for a returns scan, verified: what the scanner shows
/// ([`SharedSession::record_scan`](super::SharedSession::record_scan)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedScan {
    /// The rules' feedback.
    pub feedback: ScanFeedback,
    /// Returns scans the rules took: the pack's verification (`pending` when it could
    /// not be done online).
    pub check: Option<ReturnCheck>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Identity;
    use crate::session::testing::{add_tasks, temp_session};

    /// A serialized pack (GTIN and serial) and a pack with no serial.
    const SERIALIZED: &[u8] = b"]d2010950600013435221SER1";
    const PLAIN: &[u8] = b"]d20109506000134352";

    /// A session signed in as `identity` with a returns task and a picking task.
    fn session(identity: Identity) -> (tempfile::TempDir, Session) {
        let (dir, mut s) = temp_session();
        s.set_identity(identity).unwrap();
        add_tasks(
            &mut s,
            &[("ret", TaskKind::Returns), ("pick", TaskKind::Picking)],
        );
        (dir, s)
    }

    fn online(expires_ms: u64) -> Identity {
        Identity {
            user: "u1".into(),
            device: "d1".into(),
            site: Some("s1".into()),
            access_token: Some("token".into()),
            refresh_token: None,
            access_expires_ms: Some(expires_ms),
            server_url: Some("http://127.0.0.1:9".into()),
        }
    }

    fn settled(call: ReturnCheckCall) -> ReturnCheck {
        match call.0 {
            CheckCall::Settled(c) => c,
            CheckCall::Online { .. } => panic!("expected an answer without the network"),
        }
    }

    #[test]
    fn only_returns_scans_the_rules_took_get_a_check() {
        let (_dir, mut s) = session(online(u64::MAX));
        assert!(
            s.record_for_check("pick", SERIALIZED, 2_000)
                .unwrap()
                .check
                .is_none()
        );
        // Unreadable: rejected by the rules, nothing to verify.
        let garbage = s.record_for_check("ret", b"]d2garbage", 2_000).unwrap();
        assert_eq!(garbage.feedback.verdict, Verdict::Reject);
        assert!(garbage.check.is_none());
        let taken = s.record_for_check("ret", SERIALIZED, 2_000).unwrap();
        assert_ne!(taken.feedback.verdict, Verdict::Reject);
        match taken.check.map(|c| c.0) {
            Some(CheckCall::Online { request, .. }) => {
                assert_eq!(request.document_id, "ret");
                assert_eq!(request.scan_id, taken.feedback.scan_id.to_string());
                assert_eq!(
                    (request.gtin.as_str(), request.serial.as_str()),
                    ("09506000134352", "SER1")
                );
            }
            other => panic!("expected an online check, got {other:?}"),
        }
    }

    #[test]
    fn a_check_that_cannot_run_now_is_pending() {
        let (_dir, mut s) = session(online(u64::MAX));
        let plain = s.record_scan_at("ret", PLAIN, 2_000).unwrap();
        let c = settled(s.return_check("ret", &plain).unwrap());
        assert_eq!(c.result, "pending");
        assert!(c.message.contains("not a serialized pack"), "{}", c.message);

        let pack = s.record_scan_at("ret", SERIALIZED, 2_000).unwrap();
        s.set_identity(online(1)).unwrap();
        let c = settled(s.return_check("ret", &pack).unwrap());
        assert!(c.message.contains("session expired"), "{}", c.message);

        let offline = Identity {
            server_url: None,
            ..online(u64::MAX)
        };
        s.set_identity(offline).unwrap();
        let c = settled(s.return_check("ret", &pack).unwrap());
        assert!(c.message.starts_with("offline"), "{}", c.message);

        let picked = s.record_scan_at("pick", SERIALIZED, 2_000).unwrap();
        assert!(matches!(
            s.return_check("pick", &picked),
            Err(SessionError::InvalidInput(_))
        ));
    }
}
