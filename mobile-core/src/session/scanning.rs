//! Recording scans and voids: parse, rules, durable append, and the feedback the picker
//! sees.

use super::{Session, SessionError, now_ms};
use crate::doc::{TaskDocument, TaskKind};
use crate::gs1;
use crate::model::{Action, MAX_RAW_LEN, Scan, ScanId, Void};
use crate::rules::{self, Finding, Outcome, Progress, Reason, Verdict};

/// The answer to one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFeedback {
    /// The id the scan was recorded under (use it to void).
    pub scan_id: ScanId,
    /// Accept, warn or reject.
    pub verdict: Verdict,
    /// Primary reason.
    pub reason: Reason,
    /// Short message for the picker.
    pub message: String,
    /// Every rule that fired, most important first.
    pub findings: Vec<Finding>,
    /// GS1 error code and message for an unreadable barcode.
    pub gs1_error: Option<(String, String)>,
    /// What was read.
    pub identifiers: crate::model::Identifiers,
    /// Task progress after this scan.
    pub progress: Progress,
}

/// How the bytes of a read reached the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// From the scanner: any form of GS1 data, read per [`SessionOptions::parse`].
    Scanned,
    /// Typed by hand: a GS1 key only.
    Keyed,
}

fn action_for(kind: TaskKind) -> Action {
    match kind {
        TaskKind::Receiving => Action::Receive,
        TaskKind::Picking => Action::Pick,
        TaskKind::Packing => Action::Pack,
        TaskKind::Shipping => Action::Ship,
        TaskKind::Returns => Action::Return,
        TaskKind::StockCount => Action::Count,
    }
}

impl Session {
    /// Sets the location written into following scans (bin, dock door…), or clears it.
    pub fn set_location(&mut self, location: Option<String>) -> Result<(), SessionError> {
        if let Some(l) = &location
            && (l.is_empty() || l.len() > crate::model::MAX_NAME_LEN)
        {
            return Err(SessionError::InvalidInput(
                "location must be 1-64 bytes".into(),
            ));
        }
        self.location = location;
        Ok(())
    }

    /// Records one scan now: parse, rules, durable append. See [`Session::record_scan_at`].
    pub fn record_scan(&mut self, task_id: &str, raw: &[u8]) -> Result<ScanFeedback, SessionError> {
        self.record_scan_at(task_id, raw, now_ms())
    }

    /// Records one scan made at `now_ms` (device clock; "today" for the expiry rules is its
    /// UTC date). A barcode that does not parse is recorded too, with feedback
    /// `invalid_barcode` (the audit trail keeps failed reads); raw bytes beyond
    /// 2,048 (no GS1 symbol holds that many) are cut.
    pub fn record_scan_at(
        &mut self,
        task_id: &str,
        raw: &[u8],
        now_ms: u64,
    ) -> Result<ScanFeedback, SessionError> {
        self.record_read_at(task_id, raw, Read::Scanned, now_ms)
    }

    /// Records a GS1 key typed by hand (a GTIN-8/12/13/14 or an 18-digit SSCC, for a
    /// label that will not scan), like [`Session::record_scan_at`]. The typed text is read
    /// only as a key ([`gs1::parse_keyed`]), never guessed from scanner data: digits that
    /// are not a valid key give `invalid_barcode` with the reason (check digit, length).
    /// A valid key is stored as its bracketed form (`(01)09506000134352`), which every
    /// reader of the document parses back to the same key.
    pub fn record_keyed_at(
        &mut self,
        task_id: &str,
        typed: &str,
        now_ms: u64,
    ) -> Result<ScanFeedback, SessionError> {
        self.record_read_at(task_id, typed.trim().as_bytes(), Read::Keyed, now_ms)
    }

    fn record_read_at(
        &mut self,
        task_id: &str,
        raw: &[u8],
        read: Read,
        now_ms: u64,
    ) -> Result<ScanFeedback, SessionError> {
        let (user, device) = match &self.identity {
            Some(i) => (i.user.clone(), i.device.clone()),
            None => return Err(SessionError::NotLoggedIn),
        };
        let raw = &raw[..raw.len().min(MAX_RAW_LEN)];
        let held = self.store.doc(task_id).map_or(0, TaskDocument::scan_count)
            + self.store.pending_scans(task_id).len();
        if held >= crate::doc::limits::MAX_SCANS {
            return Err(SessionError::DocumentFull(task_id.to_owned()));
        }
        let today = rules::date_from_unix_ms(now_ms);
        let parsed = match read {
            Read::Scanned => gs1::parse(raw, &self.parse),
            Read::Keyed => gs1::parse_keyed(raw),
        };
        // Borrow dance: the rules need the task state and the site's reference together.
        let site = {
            let st = self.task_state(task_id)?;
            st.site().to_owned()
        };
        self.reference(&site)?;
        let reference = self
            .references
            .get(&site)
            .ok_or_else(|| SessionError::UnknownTask(task_id.to_owned()))?;
        let st = self
            .tasks
            .get(task_id)
            .ok_or_else(|| SessionError::UnknownTask(task_id.to_owned()))?;
        let outcome: Outcome = st.evaluate(raw, &parsed, reference, today);
        let kind = st.kind();
        let id = self.next_scan_id()?;
        // A typed key is recorded in bracketed AI syntax, `(01)…`: the server re-judges
        // every stored scan with the default reading, in which bare digits are AI data,
        // and must find the same key. Typed text that is no key is recorded as typed.
        let stored = match (read, &parsed) {
            (Read::Keyed, Ok(d)) => d.to_bracketed().into_bytes(),
            _ => raw.to_vec(),
        };
        let scan = Scan {
            id,
            raw: stored,
            ids: outcome.identifiers.clone(),
            action: action_for(kind),
            user,
            device,
            location: self.location.clone(),
            device_time_ms: now_ms,
            feedback: outcome.reason.feedback(),
            parent: None,
        };
        self.store.record_scan(task_id, &scan)?;
        let st = self.task_state(task_id)?;
        st.apply(&scan.id, &outcome);
        let progress = st.progress();
        Ok(ScanFeedback {
            scan_id: scan.id,
            verdict: outcome.verdict,
            reason: outcome.reason,
            message: outcome.message,
            findings: outcome.findings,
            gs1_error: outcome.gs1_error,
            identifiers: outcome.identifiers,
            progress,
        })
    }

    /// Voids a scan of the logged-in user (the scan stays in the audit trail).
    pub fn void_scan(&mut self, task_id: &str, scan_id: &str) -> Result<Progress, SessionError> {
        self.void_scan_at(task_id, scan_id, now_ms())
    }

    /// [`Session::void_scan`] at a given device time.
    pub fn void_scan_at(
        &mut self,
        task_id: &str,
        scan_id: &str,
        now_ms: u64,
    ) -> Result<Progress, SessionError> {
        let (user, device) = match &self.identity {
            Some(i) => (i.user.clone(), i.device.clone()),
            None => return Err(SessionError::NotLoggedIn),
        };
        let id =
            ScanId::parse(scan_id).map_err(|_| SessionError::UnknownScan(scan_id.to_owned()))?;
        if !self.task_state(task_id)?.is_live(&id) {
            return Err(SessionError::UnknownScan(scan_id.to_owned()));
        }
        let void = Void {
            scan_id: id.clone(),
            user,
            device,
            device_time_ms: now_ms,
        };
        self.store.void_scan(task_id, &void)?;
        let st = self.task_state(task_id)?;
        st.void(&id);
        Ok(st.progress())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::testing::temp_session;

    #[test]
    fn location_is_one_to_64_bytes_or_none() {
        let (_dir, mut s) = temp_session();
        for bad in [String::new(), "x".repeat(crate::model::MAX_NAME_LEN + 1)] {
            assert!(matches!(
                s.set_location(Some(bad)),
                Err(SessionError::InvalidInput(_))
            ));
        }
        s.set_location(Some("dock-1".into())).unwrap();
        assert_eq!(s.location.as_deref(), Some("dock-1"));
        s.set_location(None).unwrap();
        assert_eq!(s.location, None);
    }

    #[test]
    fn each_task_kind_records_its_own_action() {
        let actions: std::collections::HashSet<Action> =
            TaskKind::ALL.iter().map(|&k| action_for(k)).collect();
        assert_eq!(actions.len(), TaskKind::ALL.len(), "{actions:?}");
        assert_eq!(action_for(TaskKind::Returns), Action::Return);
        assert_eq!(action_for(TaskKind::StockCount), Action::Count);
    }
}
