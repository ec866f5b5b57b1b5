//! The server-owned `results` section: the server's outcome per scan (verification,
//! projection, exceptions and its own verdict), written field by field.

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value};

use super::{DocError, K_RESULTS, TaskDocument, get_obj, str_at};
use crate::codes::Code;
use crate::model::ScanId;
use crate::rules::{Reason, Verdict};

crate::code_table! {
    /// What the projection did with a scan (`results.projection`).
    pub enum ProjectionOutcome {
        /// Events and state written.
        Projected = "projected",
        /// Voided before projection: nothing written.
        Voided = "voided",
        /// Not projectable (unreadable, not serialised, refused by the rules…); why is in
        /// the scan's `exceptions`.
        Rejected = "rejected",
    }
    /// The stable code.
    fn as_str;
}

crate::code_table! {
    /// Where a returned pack's verification stands (`results.verification`), as the
    /// scanner shows it.
    pub enum VerificationOutcome {
        /// Not decided yet (never asked, or the responder could not be reached).
        Pending = "pending",
        /// Verified: back to sellable stock.
        Verified = "verified",
        /// Verified with additional information: held for a person to review.
        Review = "review",
        /// Not verified: quarantined.
        NotVerified = "not_verified",
        /// The synced scan was not the one verified (other device, user, task or product
        /// identifier): that verdict was set aside and the pack is held.
        IdentifiersMismatch = "identifiers_mismatch",
    }
    /// The stable code.
    fn as_str;
}

crate::code_table! {
    /// Exceptions the projection raises for a scan: what no single scanner can see.
    pub enum ExceptionKind {
        /// The same serial picked for two different orders (typically on two offline
        /// scanners).
        DoublePick = "double_pick",
        /// A pack or container shipped again after it was shipped.
        DoubleShip = "double_ship",
        /// A scanned child is, by what the server knows (manufacturer data or earlier
        /// scans), in another container than the scan says.
        AggregationMismatch = "aggregation_mismatch",
        /// A child packed into a new container while still in another (applied as a move).
        Reparented = "reparented",
        /// A scan on a destroyed object (possible counterfeit or stray scan).
        AfterDestroyed = "after_destroyed",
        /// The scanning user took the scan back after it was projected.
        VoidedAfterProjection = "voided_after_projection",
        /// A saleable return failed product-identifier verification: quarantined.
        ReturnNotVerified = "return_not_verified",
        /// A saleable return verified with additional information (recalled, expired,
        /// suspect…): held for a person to decide.
        ReturnNeedsReview = "return_needs_review",
        /// The scan's device clock was outside the trusted window: its events carry the
        /// server's time and the device time is kept as evidence.
        DeviceClockSkew = "device_clock_skew",
        /// The scan's id was already projected from another document of the organisation
        /// (a device reusing its own ids): this occurrence is not projected.
        DuplicateScanId = "duplicate_scan_id",
        /// A returns scan synced with another device, user, task or product identifier
        /// than the verification stored under its scan id: that verdict was not applied,
        /// the pack is held and verified afresh.
        ReturnIdentifiersMismatch = "return_identifiers_mismatch",
        /// The scanner counted a scan that the scan rules, run on the server's current
        /// reference data, reject (e.g. a pack picked offline from a lot recalled
        /// meanwhile): the goods moved against a rule; a person decides.
        VerdictOverturned = "verdict_overturned",
    }
    /// The stable code (stored, returned by the API, written into `results`).
    fn as_str;
}

crate::code_table! {
    /// Why the projection could not project a scan (its outcome is then `rejected`).
    pub enum Rejection {
        /// No identifier was read.
        Unreadable = "unreadable",
        /// A GTIN without serial: not a serialised pack (nothing instance-level to trace).
        NotSerialised = "not_serialised",
        /// Pack/unpack without a known parent container.
        UnknownParent = "unknown_parent",
        /// The parent field is not an identifier.
        BadParent = "bad_parent",
        /// An action code this server does not know.
        UnknownAction = "unknown_action",
    }
    /// The stable code.
    fn as_str;
}

/// One code of a scan's `results.exceptions`: an exception raised for it, why it was not
/// projected, or a code this build does not know (a newer server), kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Issue {
    /// An exception the projection raised.
    Exception(ExceptionKind),
    /// Why the projection could not project the scan.
    Rejection(Rejection),
    /// The scanner refused the scan for this reason: nothing moved, nothing projected.
    Refused(Reason),
    /// A code neither table has.
    Unknown(String),
}

impl Issue {
    /// Reads a code (the three tables share no code).
    pub fn read(code: &str) -> Self {
        if let Some(k) = ExceptionKind::parse(code) {
            Self::Exception(k)
        } else if let Some(r) = Rejection::parse(code) {
            Self::Rejection(r)
        } else if let Some(r) = Reason::parse(code) {
            Self::Refused(r)
        } else {
            Self::Unknown(code.to_owned())
        }
    }

    /// The code as stored.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Exception(k) => k.as_str(),
            Self::Rejection(r) => r.as_str(),
            Self::Refused(r) => r.code(),
            Self::Unknown(c) => c,
        }
    }
}

impl From<ExceptionKind> for Issue {
    fn from(k: ExceptionKind) -> Self {
        Self::Exception(k)
    }
}

impl From<Rejection> for Issue {
    fn from(r: Rejection) -> Self {
        Self::Rejection(r)
    }
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The server-owned outcome for one scan. Every field is typed by its table, and a code
/// from a newer server is kept as [`Code::Unknown`] / [`Issue::Unknown`]: a scanner of
/// an older build shows it as written instead of failing or dropping it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// Verification outcome of a returned pack.
    pub verification: Option<Code<VerificationOutcome>>,
    /// What the projection did with the scan.
    pub projection: Option<Code<ProjectionOutcome>>,
    /// Exceptions raised for the scan, and why it was not projected.
    pub exceptions: Vec<Issue>,
    /// The server's verdict on the scan by the scan rules on its current reference data,
    /// written only where it overrules the scanner's own (verdict or reason differ): the
    /// authoritative one. Absent on a projected scan means the server agrees.
    pub verdict: Option<Code<Verdict>>,
    /// The rules' primary reason for that verdict.
    pub reason: Option<Code<Reason>>,
}

impl TaskDocument {
    /// Writes the outcome for one scan (server only), without committing, so a projection
    /// pass can write many results in one change; call [`TaskDocument::commit`] after.
    pub fn put_result(&mut self, id: &ScanId, r: &ScanResult) -> Result<(), DocError> {
        self.update_result(id, |_| r.clone()).map(|_| ())
    }

    /// Replaces the outcome for one scan with `f(current)` (the default when none is
    /// recorded), writing only the fields that differ: every put grows the history.
    /// Reads the current outcome once, so deciding and writing cost one lookup (the
    /// server rewrites thousands of results per pass). Does not commit. Returns whether
    /// anything was written.
    pub fn update_result(
        &mut self,
        id: &ScanId,
        f: impl FnOnce(&ScanResult) -> ScanResult,
    ) -> Result<bool, DocError> {
        let results = self.section(K_RESULTS)?;
        let entry = self.result_entry(&results, id)?;
        let current = match &entry {
            Some(m) => self.read_result(m, id)?,
            None => ScanResult::default(),
        };
        let wanted = f(&current);
        if wanted == current {
            return Ok(false);
        }
        let m = match entry {
            Some(m) => m,
            None => self.doc.put_object(&results, id.as_str(), ObjType::Map)?,
        };
        for (key, cur, val) in [
            (
                "verification",
                current.verification.as_ref().map(Code::as_str),
                wanted.verification.as_ref().map(Code::as_str),
            ),
            (
                "projection",
                current.projection.as_ref().map(Code::as_str),
                wanted.projection.as_ref().map(Code::as_str),
            ),
            (
                "verdict",
                current.verdict.as_ref().map(Code::as_str),
                wanted.verdict.as_ref().map(Code::as_str),
            ),
            (
                "reason",
                current.reason.as_ref().map(Code::as_str),
                wanted.reason.as_ref().map(Code::as_str),
            ),
        ] {
            if cur != val {
                match val {
                    Some(v) => self.doc.put(&m, key, v)?,
                    None => self.doc.delete(&m, key)?,
                }
            }
        }
        if current.exceptions != wanted.exceptions {
            let list = self.doc.put_object(&m, "exceptions", ObjType::List)?;
            for (i, e) in wanted.exceptions.iter().enumerate() {
                self.doc.insert(&list, i, e.as_str())?;
            }
        }
        Ok(true)
    }

    /// The outcome recorded for a scan.
    pub fn result(&self, id: &ScanId) -> Result<Option<ScanResult>, DocError> {
        let results = self.section(K_RESULTS)?;
        match self.result_entry(&results, id)? {
            None => Ok(None),
            Some(m) => self.read_result(&m, id).map(Some),
        }
    }

    /// The map holding a scan's outcome, if there is one.
    fn result_entry(&self, results: &ObjId, id: &ScanId) -> Result<Option<ObjId>, DocError> {
        match self.doc.get(results, id.as_str())? {
            None => Ok(None),
            Some((Value::Object(ObjType::Map), m)) => Ok(Some(m)),
            Some(_) => Err(DocError::WrongType(format!("results.{id}"))),
        }
    }

    /// Decodes the outcome map of scan `id`.
    fn read_result(&self, m: &ObjId, id: &ScanId) -> Result<ScanResult, DocError> {
        let path = format!("results.{id}");
        let mut exceptions = Vec::new();
        if let Some(l) = get_obj(&self.doc, m, "exceptions") {
            for i in 0..self.doc.length(&l) {
                match self.doc.get(&l, i)? {
                    Some((Value::Scalar(s), _)) => match s.as_ref() {
                        ScalarValue::Str(v) => exceptions.push(Issue::read(v)),
                        _ => return Err(DocError::WrongType(format!("{path}.exceptions[{i}]"))),
                    },
                    _ => return Err(DocError::WrongType(format!("{path}.exceptions[{i}]"))),
                }
            }
        }
        let code =
            |key: &str| -> Result<Option<String>, DocError> { str_at(&self.doc, m, key, &path) };
        Ok(ScanResult {
            verification: code("verification")?.as_deref().map(Code::read),
            projection: code("projection")?.as_deref().map(Code::read),
            exceptions,
            verdict: code("verdict")?.as_deref().map(Code::read),
            reason: code("reason")?.as_deref().map(Code::read),
        })
    }
}
